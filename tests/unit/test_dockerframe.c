/* test_dockerframe: the Docker stream demultiplexer, whole and split at every byte. */
#include "parse/dockerframe.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

struct sink {
    char out[DOCKERFRAME__MAX][256];
    size_t len[DOCKERFRAME__MAX];
    int calls;
};

static void
collect(void *ctx, enum dockerframe_stream s, const char *p, size_t n)
{
    struct sink *k = ctx;
    k->calls++;
    if (k->len[s] + n <= sizeof(k->out[s])) {
        memcpy(k->out[s] + k->len[s], p, n);
        k->len[s] += n;
    }
}

/* frame appends a frame header plus payload to buf at *off. */
static void
frame(unsigned char *buf, size_t *off, int stream, const char *payload, size_t n)
{
    buf[*off] = (unsigned char)stream;
    buf[*off + 1] = buf[*off + 2] = buf[*off + 3] = 0;
    buf[*off + 4] = (unsigned char)(n >> 24);
    buf[*off + 5] = (unsigned char)(n >> 16);
    buf[*off + 6] = (unsigned char)(n >> 8);
    buf[*off + 7] = (unsigned char)n;
    memcpy(buf + *off + 8, payload, n);
    *off += 8 + n;
}

static size_t
sample(unsigned char *buf)
{
    size_t off = 0;
    frame(buf, &off, 1, "hello ", 6);
    frame(buf, &off, 2, "err\0\xff\n", 6);
    frame(buf, &off, 1, "", 0); /* an empty frame is legal */
    frame(buf, &off, 1, "world\n", 6);
    frame(buf, &off, 3, "boom", 4);
    return off;
}

static void
check_sink(const struct sink *k)
{
    CHECK_MEM(k->out[1], k->len[1], "hello world\n", 12);
    CHECK_MEM(k->out[2], k->len[2], "err\0\xff\n", 6);
    CHECK_MEM(k->out[3], k->len[3], "boom", 4);
    CHECK_INT(k->len[0], 0);
}

int
main(void)
{
    unsigned char buf[256];
    size_t n = sample(buf);

    /* Whole. */
    {
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)buf, n, collect, &k), RC_OK);
        check_sink(&k);
        CHECK(dockerframe_at_boundary(&d));
        CHECK_INT(d.frames, 5);
    }
    /* Split once at every byte. */
    for (size_t i = 0; i <= n; i++) {
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)buf, i, collect, &k), RC_OK);
        CHECK_INT(dockerframe_feed(&d, (const char *)buf + i, n - i, collect, &k), RC_OK);
        check_sink(&k);
        CHECK(dockerframe_at_boundary(&d));
    }
    /* Split twice at every pair of bytes. */
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct dockerframe d;
            struct sink k = {0};
            dockerframe_init(&d);
            enum rc a = dockerframe_feed(&d, (const char *)buf, i, collect, &k);
            enum rc b = dockerframe_feed(&d, (const char *)buf + i, j - i, collect, &k);
            enum rc c = dockerframe_feed(&d, (const char *)buf + j, n - j, collect, &k);
            /* Two-split feed: every piece accepted, both streams whole. */
            CHECK(a == RC_OK && b == RC_OK && c == RC_OK && k.len[1] == 12 && k.len[2] == 6);
        }
    }
    /* One byte at a time. */
    {
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(dockerframe_feed(&d, (const char *)buf + i, 1, collect, &k), RC_OK);
            if (i + 1 < n)
                CHECK(!dockerframe_at_boundary(&d) || i + 1 == 14 || i + 1 == 28 || i + 1 == 36 ||
                      i + 1 == 50);
        }
        check_sink(&k);
        CHECK(dockerframe_at_boundary(&d));
    }
    /* Truncated in a header and in a payload: not at a boundary. */
    {
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)buf, 3, collect, &k), RC_OK);
        CHECK(!dockerframe_at_boundary(&d));
        CHECK_INT(dockerframe_feed(&d, (const char *)buf + 3, 7, collect, &k), RC_OK);
        CHECK(!dockerframe_at_boundary(&d));
        CHECK_MEM(k.out[1], k.len[1], "he", 2);
    }
    /* Bad stream type, bad padding: fail and stay failed. */
    {
        static const unsigned char bad1[8] = {4, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char bad2[8] = {1, 0, 1, 0, 0, 0, 0, 1};
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)bad1, 8, collect, &k), RC_BADREQ);
        CHECK_INT(dockerframe_feed(&d, (const char *)buf, n, collect, &k), RC_BADREQ);
        CHECK(!dockerframe_at_boundary(&d));
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)bad2, 8, collect, &k), RC_BADREQ);
        CHECK_INT(k.calls, 0);
    }
    /* A large length is carried without overflow. */
    {
        static const unsigned char big[8] = {2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        struct dockerframe d;
        struct sink k = {0};
        dockerframe_init(&d);
        CHECK_INT(dockerframe_feed(&d, (const char *)big, 8, collect, &k), RC_OK);
        CHECK_INT(d.remaining, 0xffffffffu);
        CHECK_INT(dockerframe_feed(&d, "abc", 3, collect, &k), RC_OK);
        CHECK_INT(d.remaining, 0xffffffffu - 3);
        CHECK_MEM(k.out[2], k.len[2], "abc", 3);
    }
    return check_done("dockerframe");
}
