/* dockerframe: demultiplexer of the Docker Engine's stdout/stderr stream framing, fed in chunks.
 *
 * Format (Docker Engine API, "Attach to a container" / "Get container logs", non-TTY mode):
 * every frame is an 8-byte header {STREAM_TYPE, 0, 0, 0, SIZE1, SIZE2, SIZE3, SIZE4} followed
 * by SIZE bytes of payload, SIZE big-endian. STREAM_TYPE is 0 stdin, 1 stdout, 2 stderr, and 3
 * for the engine's own system error text (newer engines). Anything else, or non-zero padding,
 * is a framing error. Pure: no I/O, no allocation, no globals.
 */
#ifndef LABBOX_DOCKERFRAME_H
#define LABBOX_DOCKERFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

enum dockerframe_stream {
    DOCKERFRAME_STDIN,  /* 0: never sent for our containers, passed on all the same */
    DOCKERFRAME_STDOUT, /* 1 */
    DOCKERFRAME_STDERR, /* 2 */
    DOCKERFRAME_SYSERR, /* 3: the engine's own error message */
    DOCKERFRAME__MAX
};

struct dockerframe {
    unsigned char hdr[8];           /* header bytes gathered so far */
    size_t hdr_len;                 /* 0..8 */
    uint32_t remaining;             /* payload bytes left in the current frame */
    enum dockerframe_stream stream; /* stream of the current frame */
    bool failed;                    /* a framing error was seen; every later feed fails */
    uint64_t frames;                /* complete headers parsed */
};

/* Called once per payload piece, in order; a frame may arrive in several pieces. p is borrowed
 * for the call only; n > 0. */
typedef void dockerframe_fn(void *ctx, enum dockerframe_stream s, const char *p, size_t n);

/* dockerframe_init readies d for a new stream. */
void dockerframe_init(struct dockerframe *d);

/* dockerframe_feed consumes n bytes (any split), calling fn for payload. RC_BADREQ on a bad
 * header (unknown stream type or non-zero padding); the parser then stays failed. */
enum rc dockerframe_feed(struct dockerframe *d, const char *p, size_t n, dockerframe_fn *fn,
                         void *ctx) LB_MUST_CHECK;

/* dockerframe_at_boundary: true when the bytes fed so far end exactly after a whole frame
 * (so an end of stream here is clean, not a truncation). */
bool dockerframe_at_boundary(const struct dockerframe *d);

#endif
