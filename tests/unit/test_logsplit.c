/* test_logsplit: line splitting, cutting, UTF-8 repair, flush, and exact resume offsets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse/logsplit.h"

/* REQUIRE_VOID_LS: a splitter was made, or the test function stops. */
#define REQUIRE_VOID_LS(ls)                                                                        \
    do {                                                                                           \
        check_count++;                                                                             \
        if ((ls) == NULL) {                                                                        \
            check_fail(__FILE__, __LINE__, #ls, "logsplit_new failed");                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A transcript of emitted lines: "text|c@consumed\n" per line (c = cut, - = not), with NUL
 * bytes of the text shown as "<NUL>". Line text never contains '\n' (checked), so the
 * transcript is unambiguous enough. */
struct tr {
    char s[65536];
    size_t len;
    size_t lines;
    uint64_t last_consumed;
    int errors;     /* non-monotonic consumed */
    size_t fail_at; /* 1-based line whose callback fails, 0 = never */
};

static enum rc
on_line(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed)
{
    struct tr *t = ctx;
    int n;
    if (memchr(line, '\n', len) != NULL || consumed < t->last_consumed)
        t->errors++;
    t->last_consumed = consumed;
    for (size_t i = 0; i < len; i++) {
        const char *rep = line[i] == '\0' ? "<NUL>" : NULL;
        size_t k = rep ? 5 : 1;
        if (t->len + k >= sizeof(t->s))
            abort();
        memcpy(t->s + t->len, rep ? rep : line + i, k);
        t->len += k;
    }
    n = snprintf(t->s + t->len, sizeof(t->s) - t->len, "|%c@%llu\n", cut ? 'c' : '-',
                 (unsigned long long)consumed);
    if (n < 0 || (size_t)n >= sizeof(t->s) - t->len)
        abort();
    t->len += (size_t)n;
    t->lines++;
    if (t->fail_at != 0 && t->lines == t->fail_at)
        return RC_IO;
    return RC_OK;
}

/* split: runs in through a fresh splitter (max_line, start offset start), fed whole (cut ==
 * SIZE_MAX), in two pieces at cut, or byte by byte (cut == SIZE_MAX - 1); then finish. */
static void
split(const char *in, size_t len, size_t max_line, uint64_t start, size_t cut, struct tr *t)
{
    struct logsplit *ls = logsplit_new(max_line, start, on_line, t);
    if (ls == NULL)
        abort();
    if (cut == SIZE_MAX - 1) {
        for (size_t i = 0; i < len; i++)
            if (logsplit_feed(ls, in + i, 1) != RC_OK)
                abort();
    } else if (cut == SIZE_MAX) {
        if (logsplit_feed(ls, in, len) != RC_OK)
            abort();
    } else {
        if (logsplit_feed(ls, in, cut) != RC_OK || logsplit_feed(ls, in + cut, len - cut) != RC_OK)
            abort();
    }
    if (logsplit_finish(ls) != RC_OK)
        abort();
    logsplit_free(ls);
}

/* check_split: in splits to want (with finish), whole, at every cut, byte by byte; and a
 * splitter restarted at any line's consumed offset emits exactly the lines after it. */
static void
check_split_at(const char *in, size_t len, size_t max_line, const char *want, int line)
{
    static struct tr whole, t;
    int bad = 0;
    memset(&whole, 0, sizeof(whole));
    split(in, len, max_line, 0, SIZE_MAX, &whole);
    check_count++;
    if (strcmp(whole.s, want) != 0 || whole.errors != 0)
        check_fail(__FILE__, line, "split", "got:\n%swant:\n%s", whole.s, want);
    for (size_t k = 0; k <= len + 1; k++) {
        memset(&t, 0, sizeof(t));
        split(in, len, max_line, 0, k == len + 1 ? SIZE_MAX - 1 : k, &t);
        if (strcmp(t.s, whole.s) != 0 || t.errors != 0) {
            if (bad++ == 0)
                fprintf(stderr, "line %d: cut %zu gives:\n%s", line, k, t.s);
        }
    }
    check_count++;
    if (bad != 0)
        check_fail(__FILE__, line, "every cut", "%d runs differ", bad);
    /* Resume: for each line, restart at its consumed offset (with that start offset). */
    bad = 0;
    for (const char *l = whole.s; *l != '\0';) {
        const char *nl = strchr(l, '\n'), *at = nl;
        while (*at != '@')
            at--;
        unsigned long long off = strtoull(at + 1, NULL, 10);
        memset(&t, 0, sizeof(t));
        split(in + off, len - off, max_line, off, SIZE_MAX, &t);
        if (strcmp(t.s, nl + 1) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "line %d: resume at %llu gives:\n%swant:\n%s", line, off, t.s,
                        nl + 1);
        }
        l = nl + 1;
    }
    check_count++;
    if (bad != 0)
        check_fail(__FILE__, line, "resume", "%d resumes differ", bad);
}
#define check_split(in, max, want) check_split_at(in, sizeof(in) - 1, max, want, __LINE__)

#define FFFD "\xef\xbf\xbd"

static void
test_basic(void)
{
    check_split("", 16, "");
    check_split("\n", 16, "|-@1\n");
    check_split("a\nbc\n\n", 16, "a|-@2\nbc|-@5\n|-@6\n");
    check_split("no newline", 16, "no newline|-@10\n");
    check_split("a\r\nb\r\n", 16, "a|-@3\nb|-@6\n");
    check_split("a\rb\n", 16, "a\rb|-@4\n");
    check_split("a\r\r\n", 16, "a\r|-@4\n");
    check_split("\r\n\r\n", 16, "|-@2\n|-@4\n");
    check_split("tail\r", 16, "tail|-@5\n"); /* finish drops a final CR */
    check_split("\rprogress 1\rprogress 2\r\n", 32, "\rprogress 1\rprogress 2|-@24\n");
    check_split("tab\tand\x01"
                "ctl\n",
                16,
                "tab\tand\x01"
                "ctl|-@12\n");
    check_split("nul\0byte\n", 16, "nul<NUL>byte|-@9\n");
}

static void
test_long_lines(void)
{
    /* Exactly max_line is one line; one more byte cuts. */
    check_split("0123456789abcdef\n", 16, "0123456789abcdef|-@17\n");
    check_split("0123456789abcdefg\n", 16, "0123456789abcdef|c@16\ng|-@18\n");
    check_split("0123456789abcdef0123456789abcdef0123\nx\n", 16,
                "0123456789abcdef|c@16\n0123456789abcdef|c@32\n0123|-@37\nx|-@39\n");
    /* A CR at the cut point waits for its LF: no piece ends in a lone CR. */
    check_split("0123456789abcdef\r\n", 16, "0123456789abcdef|-@18\n");
    check_split("0123456789abcdef\rX\n", 16, "0123456789abcdef|c@16\n\rX|-@19\n");
    /* Multibyte characters are never split: pieces end on a character boundary. */
    check_split("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\n", 16,
                "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac|c@15\n"
                "\xe2\x82\xac|-@19\n");
    check_split("0123456789abcd\xf0\x9f\x98\x80x\n", 16,
                "0123456789abcd|c@14\n\xf0\x9f\x98\x80x|-@20\n");
    /* Replacement characters count as 3 bytes of output. */
    check_split("0123456789abcd\xff\xff\n", 16, "0123456789abcd|c@14\n" FFFD FFFD "|-@17\n");

    /* A long line with a small max: every piece within bounds, and resumable. */
    char big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    big[1500] = '\n';
    struct tr t;
    memset(&t, 0, sizeof(t));
    split(big, sizeof(big), 100, 0, SIZE_MAX, &t);
    CHECK_INT(t.lines, 15 + 15);
    CHECK_INT(t.errors, 0);
}

static void
test_utf8(void)
{
    check_split("caf\xc3\xa9\n", 16, "caf\xc3\xa9|-@6\n");
    check_split("\xf0\x9f\x98\x80\n", 16, "\xf0\x9f\x98\x80|-@5\n");
    check_split("\xff\n", 16, FFFD "|-@2\n");
    check_split("a\x80z\n", 16, "a" FFFD "z|-@4\n");
    check_split("\xc0\xaf\n", 16, FFFD FFFD "|-@3\n");                   /* overlong */
    check_split("\xe0\x80\xaf\n", 16, FFFD FFFD FFFD "|-@4\n");          /* overlong */
    check_split("\xed\xa0\x80\n", 16, FFFD FFFD FFFD "|-@4\n");          /* surrogate */
    check_split("\xf4\x90\x80\x80\n", 32, FFFD FFFD FFFD FFFD "|-@5\n"); /* > U+10FFFF */
    check_split("\xf5\n", 16, FFFD "|-@2\n");
    check_split("\xe2\x82z\n", 16, FFFD "z|-@4\n"); /* maximal subpart: one U+FFFD */
    check_split("\xf0\x9f\x98z\n", 16, FFFD "z|-@5\n");
    check_split("\xe2\x82\n", 16, FFFD "|-@3\n"); /* cut short by the newline */
    check_split("\xe2\x82\r\n", 16, FFFD "|-@4\n");
    check_split("\xe2\x82\xe2\x82\xac\n", 16, FFFD "\xe2\x82\xac|-@6\n");
    check_split("x\xe2\x82", 16, "x" FFFD "|-@3\n"); /* finish: held bytes become U+FFFD */
    check_split("\xc3", 16, FFFD "|-@1\n");
    check_split("\xed\x9f\xbf\xee\x80\x80\n", 16, "\xed\x9f\xbf\xee\x80\x80|-@7\n");
}

/* Flush: emits the partial line; held bytes stay held; a newline right after ends it. */
static void
test_flush(void)
{
    struct tr t;
    struct logsplit *ls;

    memset(&t, 0, sizeof(t));
    ls = logsplit_new(16, 100, on_line, &t);
    REQUIRE_VOID_LS(ls);
    CHECK_INT(logsplit_feed(ls, "abc", 3), RC_OK);
    CHECK_INT(logsplit_pending(ls), 3);
    CHECK_INT(logsplit_flush(ls), RC_OK);
    CHECK_INT(logsplit_pending(ls), 0);
    CHECK_INT(logsplit_flush(ls), RC_OK);         /* nothing to do */
    CHECK_INT(logsplit_feed(ls, "\n", 1), RC_OK); /* ends the flushed line: no empty line */
    CHECK_INT(logsplit_feed(ls, "de\xe2\x82", 4), RC_OK);
    CHECK_INT(logsplit_pending(ls), 2);
    CHECK_INT(logsplit_flush(ls), RC_OK); /* the held sequence is not broken */
    CHECK_INT(logsplit_feed(ls, "\xac\r", 2), RC_OK);
    CHECK_INT(logsplit_flush(ls), RC_OK); /* the held CR is not emitted */
    CHECK_INT(logsplit_feed(ls, "\n\n", 2), RC_OK);
    CHECK_INT(logsplit_feed(ls, "x\r", 2), RC_OK);
    CHECK_INT(logsplit_flush(ls), RC_OK);
    CHECK_INT(logsplit_feed(ls, "y\n", 2), RC_OK); /* the CR was content after all */
    CHECK_INT(logsplit_feed(ls, "tail\xe2", 5), RC_OK);
    CHECK_INT(logsplit_finish(ls), RC_OK);
    CHECK_INT(logsplit_pending(ls), 0);
    CHECK_INT(logsplit_finish(ls), RC_OK); /* nothing more */
    CHECK_STR(t.s, "abc|-@103\n"
                   "de|-@106\n"
                   "\xe2\x82\xac|-@109\n"
                   "|-@112\n"
                   "x|-@113\n"
                   "\ry|-@116\n"
                   "tail" FFFD "|-@121\n");
    CHECK_INT(t.errors, 0);
    logsplit_free(ls);
    logsplit_free(NULL);
}

static void
test_errors(void)
{
    struct tr t;
    struct logsplit *ls;
    CHECK(logsplit_new(15, 0, on_line, &t) == NULL);
    CHECK(logsplit_new(16, 0, NULL, &t) == NULL);
    /* A failing callback stops the splitter for good. */
    memset(&t, 0, sizeof(t));
    t.fail_at = 2;
    ls = logsplit_new(16, 0, on_line, &t);
    REQUIRE_VOID_LS(ls);
    CHECK_INT(logsplit_feed(ls, "a\nb\nc\n", 6), RC_IO);
    CHECK_INT(t.lines, 2);
    CHECK_INT(logsplit_feed(ls, "d\n", 2), RC_IO);
    CHECK_INT(logsplit_flush(ls), RC_IO);
    CHECK_INT(logsplit_finish(ls), RC_IO);
    CHECK_INT(t.lines, 2);
    logsplit_free(ls);
}

/* A mixed stream: every cut, byte by byte, and resume at every line. */
static void
test_mixed(void)
{
    static const char in[] = "first\r\n\xe2\x82\xac uro\n\xff\xfe bad\n"
                             "a line that is longer than thirty-two bytes for sure\r\n"
                             "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                             "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                             "\xf0\x9f\x98\x80\r\r\n\n\xc3";
    check_split(in, 32,
                "first|-@7\n"
                "\xe2\x82\xac uro|-@15\n" FFFD FFFD " bad|-@22\n"
                "a line that is longer than thirt|c@54\n"
                "y-two bytes for sure|-@76\n"
                "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80|c@108\n"
                "\xf0\x9f\x98\x80\r|-@115\n"
                "|-@116\n" FFFD "|-@117\n");
}

int
main(void)
{
    test_basic();
    test_long_lines();
    test_utf8();
    test_flush();
    test_errors();
    test_mixed();
    return check_done("logsplit");
}
