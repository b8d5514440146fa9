/* fuzz_grpcframe: gRPC framing on arbitrary bytes in fuzz-chosen chunks, plus the status
 * helpers. Invariants: no crash; the messages (count, lengths, bytes) and the final rc do not
 * depend on how the input is split; no message exceeds the cap; decoded grpc-message text has
 * no control characters and fits its buffer. */
#include <string.h>

#include "fuzz.h"
#include "parse/grpcframe.h"

#define CAP 4096

struct acc {
    uint32_t hash;
    size_t count;
    size_t bytes;
};

static enum rc
on_msg(void *ctx, const char *p, size_t len)
{
    struct acc *a = ctx;
    FUZZ_ASSERT(len <= CAP);
    a->hash = fuzz_hash(a->hash, &len, sizeof(len));
    a->hash = fuzz_hash(a->hash, p, len);
    a->count++;
    a->bytes += len;
    return RC_OK;
}

static enum rc
feed_split(const uint8_t *data, size_t size, uint32_t seed, struct acc *a, bool *boundary)
{
    struct grpcframe f;
    enum rc rc = RC_OK;
    grpcframe_init(&f, CAP);
    size_t i = 0;
    while (i < size && rc == RC_OK) {
        size_t n = seed ? 1 + fuzz_rand(&seed) % 17 : size - i;
        if (n > size - i)
            n = size - i;
        rc = grpcframe_feed(&f, (const char *)data + i, n, on_msg, a);
        i += n;
    }
    *boundary = grpcframe_at_boundary(&f);
    grpcframe_fini(&f);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acc whole = {2166136261u, 0, 0}, split = {2166136261u, 0, 0};
    bool b1, b2;
    enum rc r1 = feed_split(data, size, 0, &whole, &b1);
    enum rc r2 = feed_split(data, size, 0x9e3779b9u ^ (uint32_t)size, &split, &b2);
    FUZZ_ASSERT(r1 == r2);
    FUZZ_ASSERT(whole.count == split.count && whole.hash == split.hash);
    FUZZ_ASSERT(b1 == b2);
    FUZZ_ASSERT(whole.bytes + whole.count * GRPCFRAME_HDR_LEN <= size);

    char msg[64];
    size_t n = grpcframe_percent_decode((struct span){(const char *)data, size}, msg, sizeof(msg));
    FUZZ_ASSERT(n < sizeof(msg) && msg[n] == '\0' && strlen(msg) == n);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f);
    int code = -1;
    if (grpcframe_parse_status((struct span){(const char *)data, size}, &code))
        FUZZ_ASSERT(code >= 0 && code <= 99);
    struct grpcframe_meta meta = {0};
    FUZZ_ASSERT(grpcframe_meta_line(&meta, (const char *)data, size) == RC_OK);
    FUZZ_ASSERT(strlen(meta.message) < sizeof(meta.message));
    grpcframe_meta_fini(&meta);
    return 0;
}
