/* test_names: upload names, their basename and relative output paths. */
#include <string.h>

#include "check.h"
#include "defaults.h"
#include "parse/names.h"

static enum rc
up(const char *s, size_t n)
{
    const char *why = "unset";
    enum rc rc = names_check_upload((struct span){s, n}, &why);
    if (rc == RC_OK && why != NULL)
        return RC__MAX; /* *out_why must be NULL on success */
    if (rc != RC_OK && (why == NULL || why[0] == '\0'))
        return RC__MAX; /* and a reason on failure */
    return rc;
}

static enum rc
rel(const char *s, size_t n)
{
    const char *why = "unset";
    enum rc rc = names_check_relpath((struct span){s, n}, &why);
    if (rc == RC_OK && why != NULL)
        return RC__MAX;
    if (rc != RC_OK && (why == NULL || why[0] == '\0'))
        return RC__MAX;
    return rc;
}

#define UP(s)  up((s), sizeof(s) - 1)
#define REL(s) rel((s), sizeof(s) - 1)

static void
test_upload(void)
{
    char longn[NAME_MAX_BYTES + 2];
    const char *why = NULL;

    CHECK_INT(UP("data.csv"), RC_OK);
    CHECK_INT(UP("a"), RC_OK);
    CHECK_INT(UP("a b c.txt"), RC_OK);
    CHECK_INT(UP("r\xc3\xa9sum\xc3\xa9.pdf"), RC_OK); /* é */
    CHECK_INT(UP("\xe2\x82\xac.txt"), RC_OK);         /* € */
    CHECK_INT(UP("\xf0\x9f\x98\x80"), RC_OK);         /* U+1F600 */
    CHECK_INT(UP("\xf4\x8f\xbf\xbf"), RC_OK);         /* U+10FFFF */
    CHECK_INT(UP("\xc2\xa0x"), RC_OK);                /* U+00A0, first non-C1 */
    CHECK_INT(UP("\xed\x9f\xbf"), RC_OK);             /* U+D7FF */
    CHECK_INT(UP("\xee\x80\x80"), RC_OK);             /* U+E000 */
    CHECK_INT(UP("a.b.c"), RC_OK);
    CHECK_INT(UP("a..b"), RC_OK);
    CHECK_INT(UP("~$x"), RC_OK);
    CHECK_INT(UP("-rf"), RC_OK);

    /* Empty, dots, slashes. */
    CHECK_INT(up("", 0), RC_BADREQ);
    CHECK_INT(up(NULL, 0), RC_BADREQ);
    CHECK_INT(UP("."), RC_BADREQ);
    CHECK_INT(UP(".."), RC_BADREQ);
    CHECK_INT(UP(".hidden"), RC_BADREQ);
    CHECK_INT(UP("a/b"), RC_BADREQ);
    CHECK_INT(UP("/etc"), RC_BADREQ);
    CHECK_INT(UP("a\\b"), RC_BADREQ);
    CHECK_INT(UP("..\\..\\x"), RC_BADREQ);
    CHECK_INT(UP("name."), RC_BADREQ);
    CHECK_INT(UP("name "), RC_BADREQ);
    CHECK_INT(UP(" "), RC_BADREQ);
    /* Control characters: NUL, C0, DEL, C1 (U+0080..U+009F as UTF-8). */
    CHECK_INT(UP("a\0b"), RC_BADREQ);
    CHECK_INT(UP("a\nb"), RC_BADREQ);
    CHECK_INT(UP("a\rb"), RC_BADREQ);
    CHECK_INT(UP("a\tb"), RC_BADREQ);
    CHECK_INT(UP("\x1f"), RC_BADREQ);
    CHECK_INT(UP("a\x7f"), RC_BADREQ);
    CHECK_INT(UP("a\xc2\x80"), RC_BADREQ);
    CHECK_INT(UP("a\xc2\x9f"), RC_BADREQ);
    CHECK_INT(UP("a\xc2\x85"), RC_BADREQ);
    /* Invalid UTF-8. */
    CHECK_INT(UP("\x80"), RC_BADREQ); /* lone continuation */
    CHECK_INT(UP("a\xbf"), RC_BADREQ);
    CHECK_INT(UP("\xc0\xaf"), RC_BADREQ);         /* overlong '/' */
    CHECK_INT(UP("\xc1\xbf"), RC_BADREQ);         /* overlong */
    CHECK_INT(UP("\xe0\x80\xaf"), RC_BADREQ);     /* overlong '/' */
    CHECK_INT(UP("\xe0\x9f\xbf"), RC_BADREQ);     /* overlong */
    CHECK_INT(UP("\xf0\x80\x80\xaf"), RC_BADREQ); /* overlong '/' */
    CHECK_INT(UP("\xf0\x8f\xbf\xbf"), RC_BADREQ); /* overlong */
    CHECK_INT(UP("\xed\xa0\x80"), RC_BADREQ);     /* U+D800 */
    CHECK_INT(UP("\xed\xbf\xbf"), RC_BADREQ);     /* U+DFFF */
    CHECK_INT(UP("\xf4\x90\x80\x80"), RC_BADREQ); /* U+110000 */
    CHECK_INT(UP("\xf5\x80\x80\x80"), RC_BADREQ);
    CHECK_INT(UP("\xff"), RC_BADREQ);
    CHECK_INT(UP("\xfe"), RC_BADREQ);
    CHECK_INT(UP("a\xe2\x82"), RC_BADREQ); /* truncated at the end */
    CHECK_INT(UP("\xe2\x82z"), RC_BADREQ); /* truncated in the middle */
    CHECK_INT(UP("\xf0\x9f\x98"), RC_BADREQ);
    CHECK_INT(UP("\xc3"), RC_BADREQ);
    CHECK_INT(UP("\xc3\xc3\xa9"), RC_BADREQ);
    /* A span is not NUL-terminated: bytes past len do not count. */
    CHECK_INT(up("ab/c", 2), RC_OK);
    CHECK_INT(up("\xc3\xa9", 1), RC_BADREQ);

    /* Length: NAME_MAX_BYTES bytes pass, one more does not. */
    memset(longn, 'x', sizeof(longn));
    CHECK_INT(up(longn, NAME_MAX_BYTES), RC_OK);
    CHECK_INT(up(longn, NAME_MAX_BYTES + 1), RC_BADREQ);
    /* ... counted in bytes, not characters. */
    for (size_t i = 0; i + 1 < NAME_MAX_BYTES; i += 2) {
        longn[i] = '\xc3';
        longn[i + 1] = '\xa9';
    }
    CHECK_INT(up(longn, NAME_MAX_BYTES), RC_OK);
    CHECK_INT(up(longn, NAME_MAX_BYTES - 1), RC_BADREQ); /* cuts a sequence in half */

    /* Reasons are specific. */
    CHECK_INT(names_check_upload(SPAN_LIT("a/b"), &why), RC_BADREQ);
    CHECK(strstr(why, "slash") != NULL);
    CHECK_INT(names_check_upload(SPAN_LIT("\xff"), &why), RC_BADREQ);
    CHECK(strstr(why, "UTF-8") != NULL);
    CHECK_INT(names_check_upload(SPAN_LIT(".x"), &why), RC_BADREQ);
    CHECK(strstr(why, "dot") != NULL);
}

/* utf8_put: the UTF-8 encoding of cp (below U+10000) at p; returns its length. */
static size_t
utf8_put(char *p, unsigned cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xc0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    p[0] = (char)(0xe0 | (cp >> 12));
    p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* Bidi controls and invisible characters are refused wherever they stand: at the start, in
 * the middle and at the end of a name, and in every component of a path; their neighbours in
 * the code space pass. */
static void
test_invisible(void)
{
    static const unsigned ranges[][2] = {
        {0x061c, 0x061c}, {0x200b, 0x200f}, {0x2028, 0x202e}, {0x2060, 0x206f}, {0xfeff, 0xfeff}};
    static const unsigned allowed[] = {0x061b, 0x061d, 0x200a, 0x2010, 0x2027,
                                       0x202f, 0x205f, 0x2070, 0xfefe, 0xff00};
    static const char base[] = "ab.png";
    char buf[64], cp8[4];
    const char *why = NULL;
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (unsigned cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
            size_t k = utf8_put(cp8, cp);
            /* Every position in "ab.png": before a, between, ..., after g. */
            for (size_t at = 0; at <= 6; at++) {
                memcpy(buf, base, at);
                memcpy(buf + at, cp8, k);
                memcpy(buf + at + k, base + at, 6 - at);
                CHECK_INT(up(buf, 6 + k), RC_BADREQ);
                CHECK_INT(rel(buf, 6 + k), RC_BADREQ);
            }
            /* In each component of a three-deep path. */
            for (int comp = 0; comp < 3; comp++) {
                size_t n = 0;
                for (int c = 0; c < 3; c++) {
                    if (c > 0)
                        buf[n++] = '/';
                    buf[n++] = 'd';
                    if (c == comp) {
                        memcpy(buf + n, cp8, k);
                        n += k;
                    }
                    buf[n++] = 'x';
                }
                CHECK_INT(rel(buf, n), RC_BADREQ);
            }
        }
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        size_t k = utf8_put(buf + 1, allowed[i]);
        buf[0] = 'a';
        buf[k + 1] = 'b';
        CHECK_INT(up(buf, k + 2), RC_OK);
        CHECK_INT(rel(buf, k + 2), RC_OK);
    }
    /* The name of issue 9: "uni-" U+202E "gnp.exe" shows as "uni-exe.png". */
    CHECK_INT(UP("uni-\xe2\x80\xaegnp.exe"), RC_BADREQ);
    CHECK_INT(names_check_upload(SPAN_LIT("uni-\xe2\x80\xaegnp.exe"), &why), RC_BADREQ);
    CHECK(why != NULL && strstr(why, "bidirectional") != NULL);
}

/* Input paths: what a browser sends for the files of a dropped folder. */
static void
test_input_path(void)
{
    static const struct {
        const char *path, *why; /* why: a word of the reason, NULL when accepted */
    } cases[] = {
        {"data.csv", NULL},
        {"run1/data.csv", NULL},
        {"Experiment 3/day 1/r\xc3\xa9sultats.tsv", NULL},
        {"a/b/c/d.csv", NULL},
        {"..a/b", "dot"},       /* a component starting with a dot, as in an upload name */
        {"a/.DS_Store", "dot"}, /* hidden files of a dropped folder */
        {"../x.csv", ". or .."},
        {"a/../x.csv", ". or .."},
        {"./x.csv", ". or .."},
        {"a/.", ". or .."},
        {"..", ". or .."},
        {"/etc/passwd", "absolute"},
        {"/Users/u/data.csv", "absolute"},
        {"C:\\x\\data.csv", "backslash"},
        {"a\\b.csv", "backslash"},
        {"a//b.csv", "empty"},
        {"a/", "empty"},
        {"", "empty"},
        {"a/b\n.csv", "control"},
        {"a /b.csv", "space or dot"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = "unset";
        enum rc rc = names_check_input_path(span_of(cases[i].path), &why);
        if (cases[i].why == NULL) {
            CHECK_INT(rc, RC_OK);
            CHECK(why == NULL);
        } else {
            CHECK_INT(rc, RC_BADREQ);
            CHECK(why != NULL && strstr(why, cases[i].why) != NULL);
        }
    }
    /* The caps of relative paths: OUTPUT_DEPTH_MAX components, OUTPUT_PATH_MAX bytes. */
    char buf[2 * OUTPUT_DEPTH_MAX + 4];
    size_t n = 0;
    for (int i = 0; i <= OUTPUT_DEPTH_MAX; i++) {
        buf[n++] = 'd';
        buf[n++] = '/';
    }
    const char *why = NULL;
    CHECK_INT(names_check_input_path((struct span){buf, 2 * OUTPUT_DEPTH_MAX - 1}, &why), RC_OK);
    CHECK_INT(names_check_input_path((struct span){buf, 2 * OUTPUT_DEPTH_MAX + 1}, &why),
              RC_BADREQ);
    /* Every accepted input path is an accepted output path; an upload name is an input path. */
    CHECK_INT(names_check_relpath(SPAN_LIT("run1/data.csv"), &why), RC_OK);
    CHECK_INT(names_check_input_path(SPAN_LIT("data.csv"), &why), RC_OK);
}

static void
test_relpath(void)
{
    char buf[OUTPUT_PATH_MAX + 8];

    CHECK_INT(REL("a"), RC_OK);
    CHECK_INT(REL("a/b/c.png"), RC_OK);
    CHECK_INT(REL(".hidden"), RC_OK);
    CHECK_INT(REL("dir/.hidden/x"), RC_OK);
    CHECK_INT(REL("..a/b"), RC_OK);
    CHECK_INT(REL("r\xc3\xa9sum\xc3\xa9/\xe2\x82\xac"), RC_OK);

    CHECK_INT(rel("", 0), RC_BADREQ);
    CHECK_INT(rel(NULL, 0), RC_BADREQ);
    CHECK_INT(REL("/a"), RC_BADREQ);
    CHECK_INT(REL("a/"), RC_BADREQ);
    CHECK_INT(REL("a//b"), RC_BADREQ);
    CHECK_INT(REL("/"), RC_BADREQ);
    CHECK_INT(REL("."), RC_BADREQ);
    CHECK_INT(REL(".."), RC_BADREQ);
    CHECK_INT(REL("./a"), RC_BADREQ);
    CHECK_INT(REL("a/./b"), RC_BADREQ);
    CHECK_INT(REL("a/../b"), RC_BADREQ);
    CHECK_INT(REL("a/.."), RC_BADREQ);
    CHECK_INT(REL("a\\b"), RC_BADREQ);
    CHECK_INT(REL("a/b\0c"), RC_BADREQ);
    CHECK_INT(REL("a/b\n"), RC_BADREQ);
    CHECK_INT(REL("a./b"), RC_BADREQ);
    CHECK_INT(REL("a /b"), RC_BADREQ);
    CHECK_INT(REL("a/\xed\xa0\x80"), RC_BADREQ);
    CHECK_INT(REL("a/\xc0\xaf"), RC_BADREQ);
    CHECK_INT(REL("a/\xc2\x9b"), RC_BADREQ);

    /* Depth: OUTPUT_DEPTH_MAX components pass, one more does not. */
    size_t n = 0;
    for (int i = 0; i < OUTPUT_DEPTH_MAX; i++) {
        buf[n++] = 'd';
        buf[n++] = '/';
    }
    buf[n - 1] = '\0';
    CHECK_INT(rel(buf, n - 1), RC_OK);
    buf[n - 1] = '/';
    buf[n] = 'x';
    CHECK_INT(rel(buf, n + 1), RC_BADREQ);

    /* Length: OUTPUT_PATH_MAX bytes pass, one more does not; components stay capped. */
    memset(buf, 'x', sizeof(buf));
    for (size_t i = 100; i < OUTPUT_PATH_MAX; i += 101)
        buf[i] = '/';
    CHECK_INT(rel(buf, OUTPUT_PATH_MAX), RC_OK);
    CHECK_INT(rel(buf, OUTPUT_PATH_MAX + 1), RC_BADREQ);
    memset(buf, 'x', sizeof(buf));
    buf[1] = '/';
    CHECK_INT(rel(buf, 2 + NAME_MAX_BYTES), RC_OK);
    CHECK_INT(rel(buf, 2 + NAME_MAX_BYTES + 1), RC_BADREQ);
}

static void
test_user(void)
{
    const char *why = NULL;
    static const char *const good[] = {"alice", "Zoë Müller", "CN=alice,O=Lab", "a@b.example",
                                       "用户"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_INT(names_check_user(span_of(good[i]), 128, &why), RC_OK);
        CHECK(why == NULL);
    }
    static const char *const bad[] = {"",           "a\tb",     "a\nb",         "a\x7f",
                                      "a\302\205b", /* U+0085, a C1 control */
                                      "\xff",       "\xc0\xaf", "\xed\xa0\x80", "ab\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(names_check_user(span_of(bad[i]), 128, &why), RC_BADREQ);
        CHECK(why != NULL);
    }
    char longest[130];
    memset(longest, 'u', sizeof(longest));
    CHECK_INT(names_check_user((struct span){longest, 128}, 128, &why), RC_OK);
    CHECK_INT(names_check_user((struct span){longest, 129}, 128, &why), RC_BADREQ);
    CHECK_STR(why, "it is too long");
}

int
main(void)
{
    test_user();
    test_upload();
    test_invisible();
    test_input_path();
    test_relpath();
    return check_done("names");
}
