/* test_grpcframe: gRPC message framing fed whole and split at every byte; status helpers. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse/grpcframe.h"

struct msgs {
    char buf[4096];
    size_t len;
    size_t count;
    size_t lens[16];
};

static enum rc
collect(void *ctx, const char *p, size_t len)
{
    struct msgs *m = ctx;
    if (m->len + len > sizeof(m->buf) || m->count >= 16)
        return RC_TOOBIG;
    memcpy(m->buf + m->len, p, len);
    m->len += len;
    m->lens[m->count++] = len;
    return RC_OK;
}

static size_t
frame(unsigned char *out, const char *msg, size_t len)
{
    grpcframe_header((uint32_t)len, out);
    memcpy(out + GRPCFRAME_HDR_LEN, msg, len);
    return GRPCFRAME_HDR_LEN + len;
}

/* Three messages (one empty) split into two chunks at every position. */
static void
test_splits(void)
{
    unsigned char wire[256];
    size_t n = 0;
    n += frame(wire + n, "hello", 5);
    n += frame(wire + n, "", 0);
    n += frame(wire + n, "\0\1binary\377", 10);
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t cut2 = cut; cut2 <= n; cut2 += 3) {
            struct grpcframe f;
            struct msgs m = {0};
            grpcframe_init(&f, 0);
            CHECK_INT(grpcframe_feed(&f, (const char *)wire, cut, collect, &m), RC_OK);
            CHECK_INT(grpcframe_feed(&f, (const char *)wire + cut, cut2 - cut, collect, &m), RC_OK);
            CHECK_INT(grpcframe_feed(&f, (const char *)wire + cut2, n - cut2, collect, &m), RC_OK);
            CHECK_INT(m.count, 3);
            CHECK_INT(m.lens[0], 5);
            CHECK_INT(m.lens[1], 0);
            CHECK_INT(m.lens[2], 10);
            CHECK_MEM(m.buf, m.len, "hello\0\1binary\377", 15);
            CHECK(grpcframe_at_boundary(&f));
            grpcframe_fini(&f);
        }
    }
    /* Byte by byte. */
    struct grpcframe f;
    struct msgs m = {0};
    grpcframe_init(&f, 0);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(grpcframe_feed(&f, (const char *)wire + i, 1, collect, &m), RC_OK);
        CHECK(grpcframe_at_boundary(&f) == (i + 1 == 10 || i + 1 == 15 || i + 1 == n));
    }
    CHECK_INT(m.count, 3);
    grpcframe_fini(&f);
}

static void
test_errors(void)
{
    struct grpcframe f;
    struct msgs m = {0};
    unsigned char comp[] = {1, 0, 0, 0, 1, 'x'};
    grpcframe_init(&f, 0);
    CHECK_INT(grpcframe_feed(&f, (const char *)comp, sizeof(comp), collect, &m), RC_UNSUPPORTED);
    CHECK_INT(grpcframe_feed(&f, "", 0, collect, &m), RC_BADREQ);
    CHECK(!grpcframe_at_boundary(&f));
    grpcframe_reset(&f);
    unsigned char bad[] = {2, 0, 0, 0, 0};
    CHECK_INT(grpcframe_feed(&f, (const char *)bad, sizeof(bad), collect, &m), RC_BADREQ);
    grpcframe_fini(&f);

    grpcframe_init(&f, 8);
    unsigned char big[] = {0, 0, 0, 0, 9};
    CHECK_INT(grpcframe_feed(&f, (const char *)big, sizeof(big), collect, &m), RC_TOOBIG);
    grpcframe_fini(&f);
    /* The default cap: 100 MiB + 1 is refused from the header alone. */
    grpcframe_init(&f, 0);
    unsigned char huge[5];
    grpcframe_header(GRPCFRAME_MAX_MSG + 1, huge);
    CHECK_INT(grpcframe_feed(&f, (const char *)huge, 5, collect, &m), RC_TOOBIG);
    grpcframe_fini(&f);
    /* A truncated message is not at a boundary. */
    grpcframe_init(&f, 0);
    unsigned char part[] = {0, 0, 0, 0, 4, 'a', 'b'};
    CHECK_INT(grpcframe_feed(&f, (const char *)part, sizeof(part), collect, &m), RC_OK);
    CHECK(!grpcframe_at_boundary(&f));
    grpcframe_fini(&f);
    /* A callback error stops the feed. */
    struct msgs full = {0};
    full.count = 16;
    unsigned char one[8];
    size_t n = frame(one, "abc", 3);
    grpcframe_init(&f, 0);
    CHECK_INT(grpcframe_feed(&f, (const char *)one, n, collect, &full), RC_TOOBIG);
    grpcframe_fini(&f);
}

static void
test_status(void)
{
    int code = -1;
    CHECK(grpcframe_parse_status(SPAN_LIT("14"), &code));
    CHECK_INT(code, 14);
    CHECK(grpcframe_parse_status(SPAN_LIT(" 0\r\n"), &code));
    CHECK_INT(code, 0);
    CHECK(!grpcframe_parse_status(SPAN_LIT(""), &code));
    CHECK(!grpcframe_parse_status(SPAN_LIT("1a"), &code));
    CHECK(!grpcframe_parse_status(SPAN_LIT("123"), &code));

    char out[64];
    CHECK_INT(grpcframe_percent_decode(SPAN_LIT("Token%20ID%20is%20invalid"), out, sizeof(out)),
              19);
    CHECK_STR(out, "Token ID is invalid");
    (void)grpcframe_percent_decode(SPAN_LIT("caf%C3%A9 100%"), out, sizeof(out));
    CHECK_STR(out, "caf\xc3\xa9 100%");
    (void)grpcframe_percent_decode(SPAN_LIT("a%0Ab%zz"), out, sizeof(out));
    CHECK_STR(out, "a?b%zz");
    CHECK_INT(grpcframe_percent_decode(SPAN_LIT("abcdef"), out, 4), 3);
    CHECK_STR(out, "abc");

    CHECK_INT(grpcframe_code_from_http(401), GRPC_UNAUTHENTICATED);
    CHECK_INT(grpcframe_code_from_http(503), GRPC_UNAVAILABLE);
    CHECK_INT(grpcframe_code_from_http(404), GRPC_UNIMPLEMENTED);
    CHECK_INT(grpcframe_code_from_http(418), GRPC_UNKNOWN);
    CHECK_STR(grpcframe_code_name(14), "UNAVAILABLE");
    CHECK_STR(grpcframe_code_name(99), "UNKNOWN");

    struct grpcframe_meta meta = {0};
    static const char *const lines[] = {"HTTP/2 200 \r\n",
                                        "content-type: application/grpc+proto\r\n",
                                        "\r\n",
                                        "grpc-status: 16\r\n",
                                        "Grpc-Message: Token%20bad\r\n",
                                        "grpc-status-details-bin: CAESAA\r\n",
                                        NULL};
    for (size_t i = 0; lines[i] != NULL; i++)
        CHECK_INT(grpcframe_meta_line(&meta, lines[i], strlen(lines[i])), RC_OK);
    CHECK_INT(meta.http_status, 200);
    CHECK(meta.has_status);
    CHECK_INT(meta.grpc_status, 16);
    CHECK_STR(meta.message, "Token bad");
    CHECK_STR(meta.content_type, "application/grpc+proto");
    CHECK_STR(meta.details_b64, "CAESAA");
    /* A new status line starts over. */
    CHECK_INT(grpcframe_meta_line(&meta, "HTTP/2 503\r\n", 12), RC_OK);
    CHECK_INT(meta.http_status, 503);
    CHECK(!meta.has_status);
    CHECK(meta.details_b64 == NULL);
    grpcframe_meta_fini(&meta);
}

int
main(void)
{
    test_splits();
    test_errors();
    test_status();
    return check_done("grpcframe");
}
