/* test_fcgirec: FastCGI record framing and the bounded output buffer of detached requests,
 * checked by decoding what would go on the wire with an independent record reader. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/fcgirec.h"

/* What a FastCGI client (nginx) reads: the stdout bytes, the records, the end. */
struct wire {
    unsigned char *stdout_bytes;
    size_t stdout_len;
    size_t records;  /* FCGI_STDOUT records with content */
    bool stdout_eof; /* the empty FCGI_STDOUT record came */
    bool ended;      /* FCGI_END_REQUEST came, last */
    uint32_t status; /* its application status */
    bool bad;        /* malformed, wrong id, or bytes after the end */
};

static void
decode(const unsigned char *p, size_t n, uint16_t reqid, struct wire *w)
{
    memset(w, 0, sizeof(*w));
    w->stdout_bytes = malloc(n + 1);
    size_t i = 0;
    while (i < n) {
        if (n - i < 8 || w->ended || p[i] != 1 || (((unsigned)p[i + 2] << 8) | p[i + 3]) != reqid) {
            w->bad = true;
            return;
        }
        size_t len = ((size_t)p[i + 4] << 8) | p[i + 5], pad = p[i + 6];
        if (n - i - 8 < len + pad) {
            w->bad = true;
            return;
        }
        const unsigned char *c = p + i + 8;
        if (p[i + 1] == FCGI_STDOUT && len > 0 && !w->stdout_eof) {
            memcpy(w->stdout_bytes + w->stdout_len, c, len);
            w->stdout_len += len;
            w->records++;
        } else if (p[i + 1] == FCGI_STDOUT && len == 0 && !w->stdout_eof) {
            w->stdout_eof = true;
        } else if (p[i + 1] == FCGI_END_REQUEST && len == 8 && w->stdout_eof &&
                   c[4] == FCGI_REQUEST_COMPLETE) {
            w->ended = true;
            w->status =
                ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | c[3];
        } else {
            w->bad = true;
            return;
        }
        i += 8 + len + pad;
    }
}

/* Everything pending is "sent" into sink. */
static void
send_all(struct fcgi_out *o, unsigned char *sink, size_t *sunk)
{
    size_t n = fcgi_out_pending(o);
    memcpy(sink + *sunk, fcgi_out_next(o), n);
    *sunk += n;
    fcgi_out_consume(o, n);
}

static void
test_coalesce(void)
{
    struct fcgi_out o;
    struct wire w;
    unsigned char sink[256];
    size_t sunk = 0;
    fcgi_out_init(&o, 0x1234, 4096);
    CHECK_INT(fcgi_out_stdout(&o, "ab", 2), RC_OK);
    CHECK_INT(fcgi_out_stdout(&o, "", 0), RC_OK);
    CHECK_INT(fcgi_out_stdout(&o, "cde", 3), RC_OK);
    CHECK_INT(fcgi_out_pending(&o), 8 + 5); /* one header for both writes */
    /* Part of the header is sent: the record may no longer grow. */
    memcpy(sink, fcgi_out_next(&o), 3);
    sunk = 3;
    fcgi_out_consume(&o, 3);
    CHECK_INT(fcgi_out_stdout(&o, "f", 1), RC_OK);
    CHECK_INT(fcgi_out_pending(&o), 8 + 5 - 3 + 8 + 1);
    CHECK_INT(fcgi_out_end(&o, 7), RC_OK);
    CHECK_INT(fcgi_out_end(&o, 7), RC_CONFLICT);
    CHECK_INT(fcgi_out_stdout(&o, "g", 1), RC_CONFLICT);
    CHECK_INT(fcgi_out_room(&o), 0);
    send_all(&o, sink, &sunk);
    decode(sink, sunk, 0x1234, &w);
    CHECK(!w.bad);
    CHECK_MEM(w.stdout_bytes, w.stdout_len, "abcdef", 6);
    CHECK_INT(w.records, 2);
    CHECK(w.ended);
    CHECK_INT(w.status, 7);
    free(w.stdout_bytes);
    fcgi_out_fini(&o);
}

static void
test_large_and_room(void)
{
    struct fcgi_out o;
    struct wire w;
    size_t max = 300000;
    unsigned char *data = malloc(max), *sink = malloc(max);
    for (size_t i = 0; i < max; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    fcgi_out_init(&o, 1, max);
    size_t room = fcgi_out_room(&o);
    CHECK(room > 290000 && room < max);
    CHECK_INT(fcgi_out_stdout(&o, data, room + 1), RC_TOOBIG);
    CHECK_INT(fcgi_out_pending(&o), 0); /* all or nothing */
    CHECK_INT(fcgi_out_stdout(&o, data, room), RC_OK);
    CHECK_INT(fcgi_out_room(&o), 0);
    CHECK_INT(fcgi_out_stdout(&o, "x", 1), RC_TOOBIG);
    CHECK_INT(fcgi_out_end(&o, 0), RC_OK); /* the end always fits */
    CHECK_INT(fcgi_out_pending(&o), max);  /* room was exact */
    size_t sunk = 0;
    send_all(&o, sink, &sunk);
    CHECK(o.data == NULL); /* a drained large buffer is freed */
    decode(sink, sunk, 1, &w);
    CHECK(!w.bad && w.ended);
    CHECK_MEM(w.stdout_bytes, w.stdout_len, data, room);
    CHECK_INT(w.records, (room + FCGI_CONTENT_MAX - 1) / FCGI_CONTENT_MAX);
    free(w.stdout_bytes);
    fcgi_out_fini(&o);
    free(data);
    free(sink);
}

/* Random writes and partial sends: what goes out decodes to what was written, in order, and
 * the unsent bytes never exceed max. */
static void
test_random(void)
{
    enum { TOTAL = 3000000, MAX = 100000 };
    struct fcgi_out o;
    struct wire w;
    unsigned char *in = malloc(TOTAL), *sink = malloc(TOTAL * 2);
    size_t written = 0, sunk = 0;
    unsigned seed = 12345;
    for (size_t i = 0; i < TOTAL; i++)
        in[i] = (unsigned char)(i % 251);
    fcgi_out_init(&o, 65535, MAX);
    bool over = false;
    while (written < TOTAL) {
        seed = seed * 1103515245u + 12345u;
        size_t want = (seed >> 8) % (seed & 1 ? 70000 : 300);
        size_t room = fcgi_out_room(&o);
        if (want > TOTAL - written)
            want = TOTAL - written;
        if (want > room) {
            CHECK_INT(fcgi_out_stdout(&o, in + written, want), RC_TOOBIG);
            want = room;
        }
        CHECK_INT(fcgi_out_stdout(&o, in + written, want), RC_OK);
        written += want;
        over |= fcgi_out_pending(&o) > MAX;
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 4) % (fcgi_out_pending(&o) + 1);
        memcpy(sink + sunk, fcgi_out_next(&o), n);
        sunk += n;
        fcgi_out_consume(&o, n);
    }
    CHECK(!over);
    CHECK_INT(fcgi_out_end(&o, 0), RC_OK);
    send_all(&o, sink, &sunk);
    decode(sink, sunk, 65535, &w);
    CHECK(!w.bad && w.ended);
    CHECK_MEM(w.stdout_bytes, w.stdout_len, in, (size_t)TOTAL);
    free(w.stdout_bytes);
    fcgi_out_fini(&o);
    free(in);
    free(sink);
}

int
main(void)
{
    test_coalesce();
    test_large_and_room();
    test_random();
    return check_done("fcgirec");
}
