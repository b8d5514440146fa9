/* test_multipart: the streaming multipart/form-data parser, whole, split at every byte and
 * fed one byte at a time, on valid bodies and on every malformed shape we could think of. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "defaults.h"
#include "parse/multipart.h"

/*** A growable byte buffer ***/

struct buf {
    char *p;
    size_t len, cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void
buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/*** Recording callbacks ***/

struct rpart {
    struct buf name, filename, ct, data;
    bool has_filename;
    bool ended;
};

struct rec {
    struct rpart *parts;
    size_t n, cap;
    bool open;         /* begin seen, end not yet */
    int seq_errors;    /* callbacks in an impossible order, or empty data */
    size_t data_total; /* bytes delivered */
    int fail_begin_at; /* 1-based part index whose begin fails, 0 = never */
    int fail_data_at;  /* 1-based data call that fails, 0 = never */
    int fail_end_at;   /* 1-based part index whose end fails, 0 = never */
    size_t data_calls;
};

static enum rc
on_begin(void *ctx, const struct multipart_part *part)
{
    struct rec *r = ctx;
    struct rpart *rp;
    if (r->open)
        r->seq_errors++;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->parts = realloc(r->parts, r->cap * sizeof(*r->parts));
        if (r->parts == NULL)
            abort();
    }
    rp = &r->parts[r->n++];
    memset(rp, 0, sizeof(*rp));
    buf_add(&rp->name, part->name.p, part->name.len);
    rp->has_filename = part->filename.p != NULL;
    buf_add(&rp->filename, part->filename.p, part->filename.len);
    buf_add(&rp->ct, part->content_type.p, part->content_type.len);
    buf_add(&rp->data, "", 0);
    r->open = true;
    if (r->fail_begin_at > 0 && (size_t)r->fail_begin_at == r->n)
        return RC_UNSUPPORTED;
    return RC_OK;
}

static enum rc
on_data(void *ctx, const char *p, size_t len)
{
    struct rec *r = ctx;
    r->data_calls++;
    if (!r->open || len == 0 || r->n == 0) {
        r->seq_errors++;
        return RC_OK;
    }
    buf_add(&r->parts[r->n - 1].data, p, len);
    r->data_total += len;
    if (r->fail_data_at > 0 && (size_t)r->fail_data_at == r->data_calls)
        return RC_TOOBIG;
    return RC_OK;
}

static enum rc
on_end(void *ctx)
{
    struct rec *r = ctx;
    if (!r->open || r->n == 0) {
        r->seq_errors++;
        return RC_OK;
    }
    r->open = false;
    r->parts[r->n - 1].ended = true;
    if (r->fail_end_at > 0 && (size_t)r->fail_end_at == r->n)
        return RC_CONFLICT;
    return RC_OK;
}

static void
rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        buf_free(&r->parts[i].name);
        buf_free(&r->parts[i].filename);
        buf_free(&r->parts[i].ct);
        buf_free(&r->parts[i].data);
    }
    free(r->parts);
    memset(r, 0, sizeof(*r));
}

/*** Running the parser ***/

#define BND "XbOuNdArY"

/* run: parses body with boundary bnd, fed in pieces: step 0 = whole, step 1 = byte by byte,
 * otherwise two chunks split at cut. Returns the first non-OK feed rc, else finish's. */
static enum rc
run(const char *bnd, const char *body, size_t len, size_t step, size_t cut, struct rec *r,
    const char **out_err)
{
    struct multipart_callbacks cb = {on_begin, on_data, on_end, r};
    struct multipart *mp = multipart_new(span_of(bnd), &cb);
    enum rc rc = RC_OK;
    if (mp == NULL)
        abort();
    if (step == 1) {
        for (size_t i = 0; i < len && rc == RC_OK; i++)
            rc = multipart_feed(mp, body + i, 1);
    } else if (step == 0) {
        rc = multipart_feed(mp, body, len);
    } else {
        rc = multipart_feed(mp, body, cut);
        if (rc == RC_OK)
            rc = multipart_feed(mp, body + cut, len - cut);
    }
    if (rc == RC_OK)
        rc = multipart_finish(mp);
    if (out_err != NULL)
        *out_err = multipart_error(mp);
    multipart_free(mp);
    return rc;
}

struct exp {
    const char *name;
    const char *filename; /* NULL: parameter absent */
    const char *ct;
    const char *data;
    size_t dlen; /* 0: strlen(data) */
};

/* rec_matches: does r hold exactly the expected parts, all ended, in a legal order? */
static bool
rec_matches(const struct rec *r, const struct exp *e, size_t ne)
{
    if (r->seq_errors != 0 || r->open || r->n != ne)
        return false;
    for (size_t i = 0; i < ne; i++) {
        const struct rpart *p = &r->parts[i];
        size_t dlen = e[i].dlen ? e[i].dlen : strlen(e[i].data);
        if (!p->ended || strcmp(p->name.p, e[i].name) != 0 || strcmp(p->ct.p, e[i].ct) != 0)
            return false;
        if (p->has_filename != (e[i].filename != NULL))
            return false;
        if (e[i].filename != NULL && strcmp(p->filename.p, e[i].filename) != 0)
            return false;
        if (p->data.len != dlen || memcmp(p->data.p, e[i].data, dlen) != 0)
            return false;
    }
    return true;
}

/* check_valid: body parses to e whole, split in two at every byte, and byte by byte. */
static void
check_valid_at(const char *bnd, const char *body, size_t len, const struct exp *e, size_t ne,
               int line)
{
    int bad = 0;
    for (size_t k = 0; k <= len + 1; k++) {
        struct rec r = {0};
        const char *err = NULL;
        size_t step = k == len + 1 ? 1 : 2;
        enum rc rc = run(bnd, body, len, k == 0 ? 0 : step, k, &r, &err);
        if (rc != RC_OK || !rec_matches(&r, e, ne) || r.data_total > len) {
            if (bad++ == 0)
                fprintf(stderr, "line %d: mismatch at step %zu cut %zu: %s (%s), %zu parts\n", line,
                        step, k, rc_str(rc), err, r.n);
        }
        rec_free(&r);
    }
    check_count++;
    if (bad != 0)
        check_fail(__FILE__, line, "check_valid", "%d of %zu runs differ", bad, len + 2);
}
#define check_valid(bnd, body, len, e)                                                             \
    check_valid_at(bnd, body, len, e, sizeof(e) / sizeof(e[0]), __LINE__)

/* check_bad: body fails with want whole, at every split and byte by byte; the whole run's
 * message contains why. */
static void
check_bad_at(const char *bnd, const char *body, size_t len, enum rc want, const char *why, int line)
{
    int bad = 0;
    for (size_t k = 0; k <= len + 1; k++) {
        struct rec r = {0};
        const char *err = NULL;
        size_t step = k == len + 1 ? 1 : 2;
        enum rc rc = run(bnd, body, len, k == 0 ? 0 : step, k, &r, &err);
        bool ok = rc == want && r.seq_errors == 0 && r.data_total <= len;
        if (k == 0 && (err == NULL || strstr(err, why) == NULL))
            ok = false;
        if (!ok && bad++ == 0)
            fprintf(stderr, "line %d: step %zu cut %zu: got %s (%s), want %s (%s)\n", line, step, k,
                    rc_str(rc), err, rc_str(want), why);
        rec_free(&r);
    }
    check_count++;
    if (bad != 0)
        check_fail(__FILE__, line, "check_bad", "%d of %zu runs differ", bad, len + 2);
}
#define check_bad(bnd, body, want, why) check_bad_at(bnd, body, strlen(body), want, why, __LINE__)

#define CD(n) "Content-Disposition: form-data; name=\"" n "\""
#define D     "--" BND

/*** The boundary parameter ***/

static void
test_boundary(void)
{
    struct span b;
    char longb[128];
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=abc"), &b), RC_OK);
    CHECK(span_eq(b, "abc"));
    CHECK_INT(multipart_boundary(span_of("Multipart/Form-Data;BOUNDARY=\"a b:c\""), &b), RC_OK);
    CHECK(span_eq(b, "a b:c"));
    CHECK_INT(multipart_boundary(span_of("  multipart/form-data ; charset=utf-8; "
                                         "boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW ;"),
                                 &b),
              RC_OK);
    CHECK(span_eq(b, "----WebKitFormBoundary7MA4YWxkTrZu0gW"));
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=\"'()+_,-./:=?\""), &b),
              RC_OK);
    CHECK(span_eq(b, "'()+_,-./:=?"));
    /* Not multipart/form-data. */
    CHECK_INT(multipart_boundary(span_of("text/plain"), &b), RC_UNSUPPORTED);
    CHECK_INT(multipart_boundary(span_of("multipart/mixed; boundary=abc"), &b), RC_UNSUPPORTED);
    CHECK_INT(multipart_boundary(span_of("multipart/form-datax; boundary=abc"), &b),
              RC_UNSUPPORTED);
    CHECK_INT(multipart_boundary(span_of(""), &b), RC_UNSUPPORTED);
    CHECK_INT(multipart_boundary((struct span){NULL, 0}, &b), RC_UNSUPPORTED);
    CHECK_INT(multipart_boundary(span_of("application/x-www-form-urlencoded"), &b), RC_UNSUPPORTED);
    CHECK(b.p == NULL && b.len == 0);
    /* Bad or missing boundary. */
    CHECK_INT(multipart_boundary(span_of("multipart/form-data"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; charset=utf-8"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary="), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=\"\""), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=\"abc"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=\"ab \""), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=\"a\\\"b\""), &b),
              RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=a;boundary=b"), &b),
              RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=ab@c"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary=ab c"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data boundary=abc"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; =abc"), &b), RC_BADREQ);
    CHECK_INT(multipart_boundary(span_of("multipart/form-data; boundary"), &b), RC_BADREQ);
    /* 70 bytes is the most RFC 2046 allows. */
    memcpy(longb, "multipart/form-data; boundary=", 30);
    memset(longb + 30, 'x', 70);
    CHECK_INT(multipart_boundary((struct span){longb, 100}, &b), RC_OK);
    CHECK_INT(b.len, 70);
    longb[100] = 'x';
    CHECK_INT(multipart_boundary((struct span){longb, 101}, &b), RC_BADREQ);
    /* Not NUL-terminated: the span's end is respected. */
    CHECK_INT(multipart_boundary((struct span){"multipart/form-data; boundary=abcdef", 33}, &b),
              RC_OK);
    CHECK(span_eq(b, "abc"));
}

static void
test_new(void)
{
    struct rec r = {0};
    struct multipart_callbacks cb = {on_begin, on_data, on_end, &r};
    char longb[72];
    memset(longb, 'a', sizeof(longb));
    CHECK(multipart_new(span_of(""), &cb) == NULL);
    CHECK(multipart_new((struct span){NULL, 0}, &cb) == NULL);
    CHECK(multipart_new(span_of("a\r\nb"), &cb) == NULL);
    CHECK(multipart_new(span_of("ab "), &cb) == NULL);
    CHECK(multipart_new((struct span){longb, 71}, &cb) == NULL);
    struct multipart *mp = multipart_new((struct span){longb, 70}, &cb);
    CHECK(mp != NULL);
    CHECK_STR(multipart_error(mp), "no error");
    multipart_free(mp);
    multipart_free(NULL);
}

/*** Valid bodies ***/

static void
test_valid(void)
{
    {
        static const char body[] = D "\r\n"
                                     "Content-Disposition: form-data; name=\"files\"; "
                                     "filename=\"data.csv\"\r\n"
                                     "Content-Type: text/csv\r\n"
                                     "\r\n"
                                     "a,b\r\n1,2\r\n" /* data ends with CRLF */
                                     "\r\n" D "--\r\n";
        static const struct exp e[] = {{"files", "data.csv", "text/csv", "a,b\r\n1,2\r\n", 0}};
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* Preamble, empty field, epilogue that even contains the boundary. */
        static const char body[] =
            "This is the preamble. --" BND " is not at a line start.\r\n"
            "--" BND "x is not a boundary either\r\n" D
            "\r\n" CD("params") "\r\n\r\n{\"a\":1}\r\n" D "\r\n" CD("empty") "\r\n\r\n\r\n" D
                                                                             "--\r\nepilogue \r\n" D
                                                                             "\r\nmore";
        static const struct exp e[] = {{"params", NULL, "", "{\"a\":1}", 0},
                                       {"empty", NULL, "", "", 0}};
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* The body may open with CRLF (empty preamble); transport padding after boundaries;
         * no CRLF after the close delimiter. */
        static const char body[] =
            "\r\n" D " \t \r\n" CD("a") "\r\n\r\nA\r\n" D "\t\r\n" CD("b") "\r\n\r\nB\r\n" D
                                                                           "-- \t";
        static const struct exp e[] = {{"a", NULL, "", "A", 0}, {"b", NULL, "", "B", 0}};
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* Things that look like a delimiter but are data. */
#define FAKES                                                                                      \
    "--" BND "\r\n" /* no CRLF before: data */                                                     \
    "\r\n--" BND "X\r\n--" BND "-x\r\n--" BND "-\r\r\n--" BND "Y--\r\n-\r\n--\r\n"                 \
    "--XbOuNdArZ\n--" BND "\r-\r\r\r\n\r"
        static const char body[] = D "\r\n" CD("f") "\r\n\r\n" FAKES "\r\n" D "--";
        static const struct exp e[] = {{"f", NULL, "", FAKES, 0}};
#undef FAKES
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* A part whose data is exactly CRLF, and one whose data is "\r". */
        static const char body[] =
            D "\r\n" CD("crlf") "\r\n\r\n\r\n\r\n" D "\r\n" CD("cr") "\r\n\r\n\r\r\n" D "--\r\n";
        static const struct exp e[] = {{"crlf", NULL, "", "\r\n", 0}, {"cr", NULL, "", "\r", 0}};
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* Parameters: escapes, IE paths, empty filename, filename* ignored, unquoted tokens,
         * case-insensitive names, whitespace, unknown headers, raw UTF-8. */
        static const char body[] =
            D "\r\n"
              "content-disposition: form-data; name=\"q\\\"uote\"; filename=\"a\\\"b\\\\c.txt\"\r\n"
              "\r\nx\r\n" D "\r\n"
              "CONTENT-DISPOSITION: Form-Data; filename=\"C:\\x\\y.csv\"; NAME=files\r\n"
              "content-TYPE:   text/csv ; charset=utf-8  \r\n"
              "Content-Transfer-Encoding: binary\r\n"
              "X-Unknown: whatever: with colons\r\n"
              "\r\ny\r\n" D "\r\n"
              "Content-Disposition:form-data;name = \"e\" ; filename=\"\";\r\n"
              "\r\n\r\n" D "\r\n"
              "Content-Disposition: form-data; name=\"u\"; filename*=UTF-8''%e2%82%ac.txt; "
              "filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"; size=123\r\n"
              "\r\nz\r\n" D "--";
        static const struct exp e[] = {
            {"q\"uote", "a\"b\\c.txt", "", "x", 0},
            {"files", "C:\\x\\y.csv", "text/csv ; charset=utf-8", "y", 0},
            {"e", "", "", "", 0},
            {"u", "r\xc3\xa9sum\xc3\xa9.pdf", "", "z", 0},
        };
        check_valid(BND, body, sizeof(body) - 1, e);
    }
    {
        /* A one-character boundary and one of 70 with every special bchar. */
        static const char body[] = "--b\r\n" CD("x") "\r\n\r\n-b\r\n-\r\n--\r\n--c\r\n--b--";
        static const struct exp e[] = {{"x", NULL, "", "-b\r\n-\r\n--\r\n--c", 0}};
        check_valid("b", body, sizeof(body) - 1, e);
#define B70 "'()+_,-./:=? 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
        static const char bnd[] = B70;
        static const char body2[] = "--" B70 "\r\n" CD("x") "\r\n\r\nhi\r\n--" B70 "--";
#undef B70
        static const struct exp e2[] = {{"x", NULL, "", "hi", 0}};
        CHECK_INT(strlen(bnd), 70);
        check_valid(bnd, body2, sizeof(body2) - 1, e2);
        /* A boundary of dashes overlaps its own "--" prefix. */
        static const char body3[] = "----\r\n" CD("x") "\r\n\r\n---\r\n---\r\n----x\r\n----"
                                                       "--";
        static const struct exp e3[] = {{"x", NULL, "", "---\r\n---\r\n----x", 0}};
        check_valid("--", body3, sizeof(body3) - 1, e3);
    }
    {
        /* Headers of exactly PART_HEADERS_MAX bytes (CRLFs and the blank line included). */
        struct buf b = {0};
        static const char cd[] = CD("big") "\r\n";
        size_t pad = PART_HEADERS_MAX - (sizeof(cd) - 1) - strlen("X-Pad: \r\n\r\n");
        buf_str(&b, D "\r\n" CD("big") "\r\nX-Pad: ");
        for (size_t i = 0; i < pad; i++)
            buf_add(&b, "p", 1);
        buf_str(&b, "\r\n\r\nok\r\n" D "--");
        struct rec r = {0};
        const struct exp e[] = {{"big", NULL, "", "ok", 0}};
        CHECK_INT(run(BND, b.p, b.len, 0, 0, &r, NULL), RC_OK);
        CHECK(rec_matches(&r, e, 1));
        rec_free(&r);
        CHECK_INT(run(BND, b.p, b.len, 1, 0, &r, NULL), RC_OK);
        CHECK(rec_matches(&r, e, 1));
        rec_free(&r);
        buf_free(&b);
    }
}

/* Many parts, each split at every byte. */
static void
test_many_parts(void)
{
    enum { N = 60 };
    struct buf body = {0};
    struct exp e[N];
    char names[N][16], datas[N][40];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        snprintf(datas[i], sizeof(datas[i]), "%.*s", i % 7 == 0 ? 0 : i % 23,
                 "0123456789\r\n--XbOuNdAr\r\nabc");
        buf_str(&body, D "\r\nContent-Disposition: form-data; name=\"");
        buf_str(&body, names[i]);
        buf_str(&body, "\"\r\n\r\n");
        buf_str(&body, datas[i]);
        buf_str(&body, "\r\n");
        e[i] = (struct exp){names[i], NULL, "", datas[i], 0};
    }
    buf_str(&body, D "--\r\n");
    check_valid_at(BND, body.p, body.len, e, N, __LINE__);
    buf_free(&body);

    /* Many more parts, whole and byte by byte only. */
    enum { M = 2000 };
    struct rec r = {0};
    for (int i = 0; i < M; i++)
        buf_str(&body, D "\r\n" CD("n") "\r\n\r\nv\r\n");
    buf_str(&body, D "--");
    CHECK_INT(run(BND, body.p, body.len, 0, 0, &r, NULL), RC_OK);
    CHECK_INT(r.n, M);
    CHECK_INT(r.data_total, M);
    CHECK_INT(r.seq_errors, 0);
    rec_free(&r);
    CHECK_INT(run(BND, body.p, body.len, 1, 0, &r, NULL), RC_OK);
    CHECK_INT(r.n, M);
    CHECK_INT(r.data_total, M);
    rec_free(&r);
    buf_free(&body);
}

/* Binary data: every byte value, NULs, CR/LF runs and delimiter fragments. */
static void
test_binary(void)
{
    struct buf data = {0}, body = {0};
    for (int rep = 0; rep < 2; rep++)
        for (int c = 0; c < 256; c++) {
            unsigned char ch = (unsigned char)(c * 7 + rep);
            buf_add(&data, &ch, 1);
        }
    buf_add(&data, "\0\0\r\r\n\n\r\n\0--\r\n--XbOuNdAr\0\r\n--XbOuNdArY\0\r\n--XbOuNdArY-\0", 48);
    buf_str(&body, D "\r\nContent-Disposition: form-data; name=\"bin\"; filename=\"b.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n");
    buf_add(&body, data.p, data.len);
    buf_str(&body, "\r\n" D "--\r\n");
    const struct exp e[] = {{"bin", "b.bin", "application/octet-stream", data.p, data.len}};
    check_valid_at(BND, body.p, body.len, e, 1, __LINE__);

    /* The hold-back is bounded: fed byte by byte, at most dlen + 1 data bytes are held. */
    struct rec r = {0};
    struct multipart_callbacks cb = {on_begin, on_data, on_end, &r};
    struct multipart *mp = multipart_new(span_of(BND), &cb);
    const char *start = memmem(body.p, body.len, "stream\r\n\r\n", 10);
    size_t ds = (size_t)(start - body.p) + 10, worst = 0, dlen = 4 + strlen(BND);
    REQUIRE_VOID(mp != NULL);
    for (size_t i = 0; i < body.len; i++) {
        CHECK_INT(multipart_feed(mp, body.p + i, 1), RC_OK);
        if (i >= ds && i < ds + data.len) {
            size_t held = (i + 1 - ds) - r.data_total;
            if (held > worst)
                worst = held;
        }
    }
    CHECK_INT(multipart_finish(mp), RC_OK);
    CHECK(worst <= dlen + 1);
    CHECK(worst >= dlen); /* the test data does exercise a full false match */
    multipart_free(mp);
    rec_free(&r);
    buf_free(&data);
    buf_free(&body);
}

/*** Malformed bodies ***/

static void
test_malformed(void)
{
    /* No or wrong boundary, empty body. */
    check_bad(BND, "", RC_BADREQ, "no boundary");
    check_bad(BND, "hello world\r\n", RC_BADREQ, "no boundary");
    check_bad(BND, "--WrongBoundary\r\n" CD("a") "\r\n\r\nx\r\n--WrongBoundary--\r\n", RC_BADREQ,
              "no boundary");
    check_bad(BND, "--XbOuNdAr\r\n" CD("a") "\r\n\r\nx\r\n--XbOuNdAr--\r\n", RC_BADREQ,
              "no boundary");
    check_bad(BND, " --" BND "\r\n" CD("a") "\r\n\r\nx\r\n", RC_BADREQ, "no boundary");
    /* Truncated or unclosed. */
    check_bad(BND, D, RC_BADREQ, "before the closing boundary");
    check_bad(BND, D "-", RC_BADREQ, "before the closing boundary");
    check_bad(BND, D "\r", RC_BADREQ, "ends on a boundary line");
    check_bad(BND, D "\r\n", RC_BADREQ, "inside a part's headers");
    check_bad(BND, D "\r\n" CD("a"), RC_BADREQ, "inside a part's headers");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r", RC_BADREQ, "inside a part's headers");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\n", RC_BADREQ, "before the closing boundary");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz", RC_BADREQ, "before the closing boundary");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz\r\n--" BND, RC_BADREQ,
              "before the closing boundary");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz\r\n--" BND "-", RC_BADREQ,
              "before the closing boundary");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz\r\n--" BND "\r\n", RC_BADREQ,
              "inside a part's headers");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz\r\n--" BND "X--", RC_BADREQ,
              "before the closing boundary");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nxyz--" BND "--", RC_BADREQ,
              "before the closing boundary");
    /* A close delimiter before any part, junk after a boundary. */
    check_bad(BND, D "--\r\n", RC_BADREQ, "closing boundary before any part");
    check_bad(BND, "preamble\r\n" D "--", RC_BADREQ, "closing boundary before any part");
    check_bad(BND, D "  x\r\n" CD("a") "\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "unexpected bytes after a boundary");
    check_bad(BND, D "\rx" CD("a") "\r\n\r\nx\r\n" D "--", RC_BADREQ, "CR without LF");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nx\r\n" D "\r\r\n", RC_BADREQ, "CR without LF");
    /* LF-only line endings are rejected, wherever they show. */
    check_bad(BND, D "\n" CD("a") "\n\nx\n" D "--\n", RC_BADREQ, "bare LF after a boundary");
    check_bad(BND, D " \n", RC_BADREQ, "bare LF after a boundary");
    check_bad(BND, D "\r\n" CD("a") "\n\r\nx\r\n" D "--", RC_BADREQ, "bare LF in part headers");
    check_bad(BND, D "\r\n" CD("a") "\r\n\nx\r\n" D "--", RC_BADREQ, "bare LF in part headers");
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nx\r\n" D "\n" CD("b") "\r\n\r\n\r\n" D "--", RC_BADREQ,
              "bare LF after a boundary");
    check_bad(BND, D "\r\n" CD("a") "\rX\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "CR without LF in part headers");
    /* Header lines. */
    check_bad(BND, D "\r\n\r\nx\r\n" D "--", RC_BADREQ, "no Content-Disposition");
    check_bad(BND, D "\r\nContent-Type: text/plain\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "no Content-Disposition");
    check_bad(BND, D "\r\nContent-Disposition: form-data\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "no name");
    check_bad(BND, D "\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "no name");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "empty name");
    check_bad(BND, D "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "not form-data");
    check_bad(BND, D "\r\nContent-Disposition: ; name=\"a\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "not form-data");
    check_bad(BND, D "\r\nContent-Disposition:\r\n\r\nx\r\n" D "--", RC_BADREQ, "not form-data");
    check_bad(BND, D "\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "folded");
    check_bad(BND, D "\r\n\tContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "folded");
    check_bad(BND, D "\r\nContent-Disposition form-data; name=\"a\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "malformed part header line");
    check_bad(BND, D "\r\nContent-Disposition : form-data; name=\"a\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "malformed part header line");
    check_bad(BND, D "\r\n: form-data; name=\"a\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "malformed part header line");
    check_bad(BND, D "\r\n" CD("a") "\r\n" CD("b") "\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "repeated Content-Disposition");
    check_bad(BND,
              D "\r\n" CD("a") "\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "repeated Content-Type");
    check_bad(BND, D "\r\n" CD("a") "\r\nX-A: \x01\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "control character");
    check_bad_at(BND, D "\r\nContent-Disposition: form-data; name=\"a\0\"\r\n\r\nx\r\n" D "--",
                 sizeof(D "\r\nContent-Disposition: form-data; name=\"a\0\"\r\n\r\nx\r\n" D "--") -
                     1,
                 RC_BADREQ, "control character", __LINE__);
    /* Bad quoting and parameters. */
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=\"abc\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "unterminated quoted string");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=\"abc\\\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "unterminated quoted string");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=\"a\"b\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "malformed Content-Disposition parameters");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=a\"b\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "malformed Content-Disposition parameters");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "missing parameter value");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name=;x=y\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "missing parameter value");
    check_bad(BND, D "\r\nContent-Disposition: form-data; name\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "malformed Content-Disposition parameter");
    check_bad(BND, D "\r\nContent-Disposition: form-data; =\"a\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "malformed Content-Disposition parameter");
    check_bad(BND, D "\r\nContent-Disposition: form-data name=\"a\"\r\n\r\nx\r\n" D "--", RC_BADREQ,
              "malformed Content-Disposition parameters");
    check_bad(BND,
              D "\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nx\r\n" D "--",
              RC_BADREQ, "repeated name");
    check_bad(BND,
              D "\r\nContent-Disposition: form-data; name=a; filename=b; Filename=c\r\n\r\n"
                "x\r\n" D "--",
              RC_BADREQ, "repeated filename");
    /* The second part is bad: the first still was delivered in full. */
    check_bad(BND, D "\r\n" CD("a") "\r\n\r\nx\r\n" D "\r\n\r\ny\r\n" D "--", RC_BADREQ,
              "no Content-Disposition");
}

static void
test_header_limit(void)
{
    struct buf b = {0};
    static const char cd[] = CD("big") "\r\n";
    size_t pad = PART_HEADERS_MAX - (sizeof(cd) - 1) - strlen("X-Pad: \r\n\r\n") + 1;
    buf_str(&b, D "\r\n" CD("big") "\r\nX-Pad: ");
    for (size_t i = 0; i < pad; i++)
        buf_add(&b, "p", 1);
    buf_str(&b, "\r\n\r\nok\r\n" D "--");
    check_bad_at(BND, b.p, b.len, RC_TOOBIG, "too large", __LINE__);
    buf_free(&b);
    /* One endless header line: stopped at the cap, whatever comes after. */
    buf_str(&b, D "\r\n" CD("big") "\r\nX-Pad: ");
    for (size_t i = 0; i < 3 * PART_HEADERS_MAX; i++)
        buf_add(&b, "p", 1);
    struct rec r = {0};
    const char *err = NULL;
    CHECK_INT(run(BND, b.p, b.len, 0, 0, &r, &err), RC_TOOBIG);
    CHECK(strstr(err, "too large") != NULL);
    rec_free(&r);
    buf_free(&b);
    /* Many short lines add up too. */
    buf_str(&b, D "\r\n" CD("big") "\r\n");
    for (size_t i = 0; i < PART_HEADERS_MAX / 4; i++)
        buf_str(&b, "A:\r\n");
    buf_str(&b, "\r\nx\r\n" D "--");
    CHECK_INT(run(BND, b.p, b.len, 0, 0, &r, &err), RC_TOOBIG);
    rec_free(&r);
    buf_free(&b);
}

/* Truncation at every length: only prefixes that include the close delimiter succeed. */
static void
test_every_prefix(void)
{
    static const char body[] =
        "pre\r\n" D "\r\n" CD("a") "\r\n\r\nx\r\n--" BND "\r\n" CD("b") "\r\n\r\n\r\n" D
                                                                        "--\r\nepilogue";
    const char *close = strstr(body, D "--");
    size_t need = (size_t)(close - body) + strlen(D "--");
    int bad = 0;
    for (size_t n = 0; n <= sizeof(body) - 1; n++) {
        struct rec r = {0};
        enum rc rc = run(BND, body, n, 0, 0, &r, NULL);
        if ((n >= need) != (rc == RC_OK) || (rc != RC_OK && rc != RC_BADREQ) || r.seq_errors != 0)
            bad++;
        rec_free(&r);
    }
    CHECK_INT(bad, 0);
}

/* Callback failures stop the parser, and it stays stopped. */
static void
test_callback_failure(void)
{
    static const char body[] =
        D "\r\n" CD("a") "\r\n\r\nxyz\r\n" D "\r\n" CD("b") "\r\n\r\nuvw\r\n" D "--";
    struct multipart_callbacks cb;
    struct multipart *mp;
    struct rec r = {0};

    r.fail_begin_at = 2;
    cb = (struct multipart_callbacks){on_begin, on_data, on_end, &r};
    mp = multipart_new(span_of(BND), &cb);
    REQUIRE_VOID(mp != NULL);
    CHECK_INT(multipart_feed(mp, body, sizeof(body) - 1), RC_UNSUPPORTED);
    CHECK(strstr(multipart_error(mp), "rejected") != NULL);
    CHECK_INT(r.n, 2);
    CHECK(r.parts[0].ended);
    CHECK_INT(r.data_total, 3);
    CHECK_INT(multipart_feed(mp, "more", 4), RC_UNSUPPORTED);
    CHECK_INT(multipart_feed(mp, "", 0), RC_UNSUPPORTED);
    CHECK_INT(multipart_finish(mp), RC_UNSUPPORTED);
    CHECK_INT(r.n, 2);
    multipart_free(mp);
    rec_free(&r);

    r.fail_data_at = 1;
    cb.ctx = &r;
    mp = multipart_new(span_of(BND), &cb);
    REQUIRE_VOID(mp != NULL);
    CHECK_INT(multipart_feed(mp, body, sizeof(body) - 1), RC_TOOBIG);
    CHECK_INT(r.n, 1);
    CHECK(!r.parts[0].ended);
    CHECK_INT(multipart_finish(mp), RC_TOOBIG);
    multipart_free(mp);
    rec_free(&r);

    r.fail_end_at = 1;
    cb.ctx = &r;
    mp = multipart_new(span_of(BND), &cb);
    REQUIRE_VOID(mp != NULL);
    for (size_t i = 0; i < sizeof(body) - 1; i++)
        if (multipart_feed(mp, body + i, 1) != RC_OK)
            break;
    CHECK_INT(multipart_finish(mp), RC_CONFLICT);
    CHECK_INT(r.n, 1);
    multipart_free(mp);
    rec_free(&r);

    /* NULL callbacks are allowed. */
    cb = (struct multipart_callbacks){NULL, NULL, NULL, NULL};
    mp = multipart_new(span_of(BND), &cb);
    REQUIRE_VOID(mp != NULL);
    CHECK_INT(multipart_feed(mp, body, sizeof(body) - 1), RC_OK);
    CHECK_INT(multipart_finish(mp), RC_OK);
    CHECK_INT(multipart_finish(mp), RC_OK);
    CHECK_INT(multipart_feed(mp, "epilogue", 8), RC_OK);
    multipart_free(mp);
}

int
main(void)
{
    test_boundary();
    test_new();
    test_valid();
    test_many_parts();
    test_binary();
    test_malformed();
    test_header_limit();
    test_every_prefix();
    test_callback_failure();
    return check_done("multipart");
}
