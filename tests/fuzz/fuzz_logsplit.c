/* fuzz_logsplit: the line splitter on arbitrary output streams.
 * Input: byte 0 picks max_line (16..79), byte 1 seeds the chunking, the rest is the stream.
 * Invariants: every line is valid UTF-8 (independent check), has no '\n', fits max_line and,
 * when cut, is at most 3 bytes short of it; consumed never decreases and never passes the
 * bytes fed; whole and chunked feeding give the same lines; a splitter restarted at any
 * line's consumed offset emits exactly the lines that followed it; with flushes at random
 * points the per-line invariants still hold. */
#include <string.h>

#include "fuzz.h"
#include "parse/logsplit.h"

struct lines {
    size_t max_line;
    uint64_t start, fed_end; /* consumed must lie in [start, fed_end] */
    uint64_t last;           /* last consumed */
    size_t n, cap;
    uint32_t *hash; /* per line: text, cut flag and consumed */
    uint64_t *consumed;
};

static enum rc
on_line(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed)
{
    struct lines *l = ctx;
    uint32_t h = 2166136261u;
    FUZZ_ASSERT(line != NULL || len == 0);
    FUZZ_ASSERT(fuzz_utf8_valid((const unsigned char *)line, len));
    FUZZ_ASSERT(len == 0 || memchr(line, '\n', len) == NULL);
    FUZZ_ASSERT(len <= l->max_line);
    if (cut)
        FUZZ_ASSERT(len + 3 >= l->max_line);
    FUZZ_ASSERT(consumed >= l->last && consumed >= l->start && consumed <= l->fed_end);
    l->last = consumed;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->hash = realloc(l->hash, l->cap * sizeof(*l->hash));
        l->consumed = realloc(l->consumed, l->cap * sizeof(*l->consumed));
        FUZZ_ASSERT(l->hash != NULL && l->consumed != NULL);
    }
    h = fuzz_hash(h, line, len);
    h = fuzz_hash(h, &cut, sizeof(cut));
    h = fuzz_hash(h, &consumed, sizeof(consumed));
    l->hash[l->n] = h;
    l->consumed[l->n] = consumed;
    l->n++;
    return RC_OK;
}

/* run: splits s[0..len) (stream offset start); chunked when seed != 0, with random flushes
 * when flushes is true; then finish. */
static void
run(struct lines *l, size_t max_line, uint64_t start, const char *s, size_t len, uint32_t seed,
    bool flushes)
{
    struct logsplit *ls;
    size_t i = 0;
    memset(l, 0, sizeof(*l));
    l->max_line = max_line;
    l->start = l->last = start;
    ls = logsplit_new(max_line, start, on_line, l);
    FUZZ_ASSERT(ls != NULL);
    while (i < len) {
        size_t n = len - i;
        if (seed != 0) {
            uint32_t r = fuzz_rand(&seed);
            n = (r & 1) ? 1 : 1 + (r >> 8) % 97;
            if (n > len - i)
                n = len - i;
        }
        l->fed_end = start + i + n;
        FUZZ_ASSERT(logsplit_feed(ls, s + i, n) == RC_OK);
        i += n;
        FUZZ_ASSERT(logsplit_pending(ls) <= max_line);
        if (flushes && (fuzz_rand(&seed) & 3) == 0) {
            FUZZ_ASSERT(logsplit_flush(ls) == RC_OK);
            FUZZ_ASSERT(logsplit_pending(ls) == 0);
        }
    }
    l->fed_end = start + len;
    FUZZ_ASSERT(logsplit_finish(ls) == RC_OK);
    FUZZ_ASSERT(logsplit_pending(ls) == 0);
    logsplit_free(ls);
}

static void
lines_free(struct lines *l)
{
    free(l->hash);
    free(l->consumed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lines whole, chunked, resumed, flushed;
    const char *s = (const char *)data + 2;
    size_t len, max_line, k;
    uint32_t seed;

    if (size < 2)
        return 0;
    len = size - 2;
    max_line = 16 + data[0] % 64;
    seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ (uint32_t)size;
    run(&whole, max_line, 0, s, len, 0, false);
    run(&chunked, max_line, 0, s, len, seed, false);
    FUZZ_ASSERT(whole.n == chunked.n);
    FUZZ_ASSERT(whole.n == 0 ||
                memcmp(whole.hash, chunked.hash, whole.n * sizeof(*whole.hash)) == 0);
    if (whole.n > 0) {
        /* Resume after a seed-chosen line. */
        k = fuzz_rand(&seed) % whole.n;
        uint64_t off = whole.consumed[k];
        run(&resumed, max_line, off, s + off, len - off, seed, false);
        FUZZ_ASSERT(resumed.n == whole.n - k - 1);
        FUZZ_ASSERT(resumed.n == 0 || memcmp(resumed.hash, whole.hash + k + 1,
                                             resumed.n * sizeof(*resumed.hash)) == 0);
        lines_free(&resumed);
    }
    run(&flushed, max_line, 0, s, len, seed | 1, true);
    lines_free(&flushed);
    lines_free(&whole);
    lines_free(&chunked);
    return 0;
}
