/* dockerframe: demultiplexer of the Docker Engine's 8-byte-header stream framing. */
#include "parse/dockerframe.h"

#include <string.h>

void
dockerframe_init(struct dockerframe *d)
{
    memset(d, 0, sizeof(*d));
}

enum rc
dockerframe_feed(struct dockerframe *d, const char *p, size_t n, dockerframe_fn *fn, void *ctx)
{
    if (d->failed)
        return RC_BADREQ;
    while (n > 0) {
        if (d->remaining > 0) {
            size_t take = n < d->remaining ? n : d->remaining;
            fn(ctx, d->stream, p, take);
            d->remaining -= (uint32_t)take;
            p += take;
            n -= take;
            continue;
        }
        size_t want = sizeof(d->hdr) - d->hdr_len;
        size_t take = n < want ? n : want;
        memcpy(d->hdr + d->hdr_len, p, take);
        d->hdr_len += take;
        p += take;
        n -= take;
        if (d->hdr_len < sizeof(d->hdr))
            break;
        /* A whole header: type, three zero bytes, big-endian length. */
        if (d->hdr[0] >= DOCKERFRAME__MAX || d->hdr[1] != 0 || d->hdr[2] != 0 || d->hdr[3] != 0) {
            d->failed = true;
            return RC_BADREQ;
        }
        d->stream = (enum dockerframe_stream)d->hdr[0];
        d->remaining = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
                       (uint32_t)d->hdr[6] << 8 | (uint32_t)d->hdr[7];
        d->hdr_len = 0;
        d->frames++;
    }
    return RC_OK;
}

bool
dockerframe_at_boundary(const struct dockerframe *d)
{
    return !d->failed && d->hdr_len == 0 && d->remaining == 0;
}
