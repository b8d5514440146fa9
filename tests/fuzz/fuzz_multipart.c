/* fuzz_multipart: the multipart parser on arbitrary bodies, fed whole and in fuzz-chosen
 * chunks. Input: byte 0 picks the boundary (bits 0-1) and which begin/end callback fails
 * (bits 2-4, 0 = none), byte 1 seeds the chunk sizes, the rest is the body; the whole input
 * is also tried as a Content-Type header value.
 * Invariants: no crash or leak; callbacks in order (begin, data*, end), data len > 0; data
 * bytes delivered <= body length; the same events and result whatever the chunking; a failed
 * parse has a message; multipart_boundary's result is inside its input and accepted by
 * multipart_new. */
#include <string.h>

#include "defaults.h"
#include "fuzz.h"
#include "parse/multipart.h"

struct events {
    uint32_t hash;      /* over all events, data hashed bytewise (chunking-independent) */
    uint32_t part_hash; /* data of the open part */
    size_t data_total;  /* bytes delivered */
    size_t parts;
    bool open;
    unsigned events;  /* begin and end calls so far (data calls depend on chunking) */
    unsigned fail_at; /* 1-based begin/end call that returns RC_CONFLICT; 0 = none */
};

static enum rc
ev_begin(void *ctx, const struct multipart_part *part)
{
    struct events *ev = ctx;
    size_t lens[3] = {part->name.len, part->filename.len, part->content_type.len};
    bool has_fn = part->filename.p != NULL;
    FUZZ_ASSERT(!ev->open);
    FUZZ_ASSERT(part->name.len > 0 && part->name.p != NULL);
    FUZZ_ASSERT(part->name.len <= PART_HEADERS_MAX && part->filename.len <= PART_HEADERS_MAX &&
                part->content_type.len <= PART_HEADERS_MAX);
    ev->open = true;
    ev->parts++;
    ev->part_hash = 2166136261u;
    ev->hash = fuzz_hash(ev->hash, "B", 1);
    ev->hash = fuzz_hash(ev->hash, lens, sizeof(lens));
    ev->hash = fuzz_hash(ev->hash, &has_fn, sizeof(has_fn));
    ev->hash = fuzz_hash(ev->hash, part->name.p, part->name.len);
    if (has_fn)
        ev->hash = fuzz_hash(ev->hash, part->filename.p, part->filename.len);
    if (part->content_type.len > 0)
        ev->hash = fuzz_hash(ev->hash, part->content_type.p, part->content_type.len);
    return ++ev->events == ev->fail_at ? RC_CONFLICT : RC_OK;
}

static enum rc
ev_data(void *ctx, const char *p, size_t len)
{
    struct events *ev = ctx;
    FUZZ_ASSERT(ev->open);
    FUZZ_ASSERT(len > 0 && p != NULL);
    ev->part_hash = fuzz_hash(ev->part_hash, p, len);
    ev->data_total += len;
    return RC_OK;
}

static enum rc
ev_end(void *ctx)
{
    struct events *ev = ctx;
    FUZZ_ASSERT(ev->open);
    ev->open = false;
    ev->hash = fuzz_hash(ev->hash, "E", 1);
    ev->hash = fuzz_hash(ev->hash, &ev->part_hash, sizeof(ev->part_hash));
    return ++ev->events == ev->fail_at ? RC_CONFLICT : RC_OK;
}

/* parse: runs body through a parser; chunked when seed != 0. */
static enum rc
parse(struct span bnd, const char *body, size_t len, uint32_t seed, unsigned fail_at,
      struct events *ev)
{
    struct multipart_callbacks cb = {ev_begin, ev_data, ev_end, ev};
    struct multipart *mp = multipart_new(bnd, &cb);
    enum rc rc = RC_OK;
    size_t i = 0;

    memset(ev, 0, sizeof(*ev));
    ev->hash = 2166136261u;
    ev->fail_at = fail_at;
    FUZZ_ASSERT(mp != NULL);
    while (i < len && rc == RC_OK) {
        size_t n = len - i;
        if (seed != 0) {
            uint32_t r = fuzz_rand(&seed);
            switch (r % 4) {
            case 0:
                n = 1;
                break;
            case 1:
                n = 1 + (r >> 8) % 8;
                break;
            case 2:
                n = 1 + (r >> 8) % 128;
                break;
            default:
                n = 1 + (r >> 8) % 4096;
                break;
            }
            if (n > len - i)
                n = len - i;
        }
        rc = multipart_feed(mp, body + i, n);
        i += n;
    }
    if (rc == RC_OK)
        rc = multipart_finish(mp);
    FUZZ_ASSERT(ev->data_total <= len);
    if (rc == RC_OK)
        FUZZ_ASSERT(!ev->open && ev->parts > 0);
    if (rc == RC_BADREQ || rc == RC_TOOBIG) {
        const char *err = multipart_error(mp);
        FUZZ_ASSERT(err != NULL && err[0] != '\0' && strcmp(err, "no error") != 0);
    }
    FUZZ_ASSERT(rc == RC_OK || rc == RC_BADREQ || rc == RC_TOOBIG || rc == RC_CONFLICT);
    FUZZ_ASSERT((rc == RC_CONFLICT) == (fail_at != 0 && ev->events >= fail_at));
    /* A dead or finished parser stays so. */
    FUZZ_ASSERT(multipart_feed(mp, "x", 1) == (rc == RC_OK ? RC_OK : rc));
    FUZZ_ASSERT(multipart_finish(mp) == rc);
    multipart_free(mp);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const boundaries[] = {"b0undary", "-", "ab", "XbOuNdArY"};
    struct events whole, chunked;
    struct span ct = {(const char *)data, size}, b;
    enum rc rc1, rc2;
    uint32_t seed;
    unsigned fail_at;

    /* The input as a Content-Type header value. */
    if (multipart_boundary(ct, &b) == RC_OK) {
        struct multipart_callbacks cb = {NULL, NULL, NULL, NULL};
        struct multipart *mp = multipart_new(b, &cb);
        FUZZ_ASSERT(b.len >= 1 && b.len <= BOUNDARY_MAX);
        FUZZ_ASSERT(b.p >= ct.p && b.p + b.len <= ct.p + ct.len);
        FUZZ_ASSERT(mp != NULL);
        multipart_free(mp);
    }
    if (size < 2)
        return 0;
    b = span_of(boundaries[data[0] & 3u]);
    seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ (uint32_t)size;
    fail_at = (data[0] >> 2) & 7u;
    rc1 = parse(b, (const char *)data + 2, size - 2, 0, fail_at, &whole);
    rc2 = parse(b, (const char *)data + 2, size - 2, seed, fail_at, &chunked);
    FUZZ_ASSERT(rc1 == rc2);
    FUZZ_ASSERT(whole.parts == chunked.parts);
    FUZZ_ASSERT(whole.data_total == chunked.data_total);
    FUZZ_ASSERT(whole.hash == chunked.hash);
    return 0;
}
