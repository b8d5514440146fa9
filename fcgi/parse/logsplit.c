/* logsplit: splits a byte stream into valid UTF-8 lines with exact resume offsets.
 *
 * Theory of operation. Bytes are decoded one at a time. A byte may be held (not yet part of
 * the line buffer) for two reasons: it begins a multibyte UTF-8 sequence that is not complete
 * yet (seq), or it is a '\r' that may be the one before '\n' (cr). Everything else becomes
 * output characters in buf (at most max_line bytes). acc is the stream offset just after the
 * last input byte whose effect is fully in buf or in lines already emitted; held bytes lie at
 * or after acc. Every emitted line reports as consumed either the offset after its '\n' or
 * acc, so a splitter restarted at that offset sees exactly the held bytes and the rest again.
 *
 * Decoding follows the Unicode "maximal subpart" practice (as the WHATWG decoder does): a
 * well-formed prefix of a sequence that is cut short by a bad byte becomes one U+FFFD and the
 * bad byte is decoded afresh; a byte that cannot start a sequence (80..BF, C0, C1, F5..FF)
 * becomes one U+FFFD. Overlongs, surrogates and code points above U+10FFFF are thus refused.
 *
 * A line longer than max_line is emitted in pieces when the character that does not fit
 * arrives (so a line of exactly max_line bytes is one uncut line); pieces end on a character
 * boundary, so one may be up to 3 bytes shorter than max_line.
 *
 * Flush emits the buffered part of a line; the held bytes stay held, so a flush never breaks a
 * multibyte sequence. If the next thing after a flush is the line's "\n" (or "\r\n"), it just
 * ends the line that was flushed: no empty line is emitted. (A splitter restarted at the
 * flushed line's offset does not know that and emits an empty line for that "\n": the only
 * case where a restart is not invisible.) logsplit_finish, at the end of the stream, turns a
 * held incomplete sequence into U+FFFD and drops a held final '\r'.
 */
#include "parse/logsplit.h"

#include <stdlib.h>
#include <string.h>

struct logsplit {
    size_t max_line;      /* longest line piece, bytes */
    uint64_t off;         /* stream offset of the next byte fed */
    uint64_t acc;         /* stream offset accounted for by buf and emitted lines */
    logsplit_line_fn *fn; /* line callback */
    void *ctx;            /* its context */
    enum rc rc;           /* first callback failure; the splitter is dead once set */
    bool cr;              /* a '\r' (at offset acc) is held */
    bool after_flush;     /* a flush emitted the line so far and nothing came since */
    unsigned char seq[4]; /* held bytes of an incomplete UTF-8 sequence */
    size_t seq_len;       /* bytes in seq; 0 when none is held */
    size_t seq_need;      /* length the sequence will have */
    size_t len;           /* bytes in buf */
    char buf[];           /* max_line bytes: the current line, valid UTF-8 */
};

static const char FFFD[3] = {'\xef', '\xbf', '\xbd'}; /* U+FFFD REPLACEMENT CHARACTER */

struct logsplit *
logsplit_new(size_t max_line, uint64_t start_offset, logsplit_line_fn *fn, void *ctx)
{
    struct logsplit *ls = NULL;
    if (max_line < 16 || max_line > SIZE_MAX / 2 || fn == NULL)
        goto out;
    ls = calloc(1, sizeof(*ls) + max_line);
    if (ls == NULL)
        goto out;
    ls->max_line = max_line;
    ls->off = start_offset;
    ls->acc = start_offset;
    ls->fn = fn;
    ls->ctx = ctx;
    ls->rc = RC_OK;
out:
    return ls;
}

void
logsplit_free(struct logsplit *ls)
{
    free(ls);
}

size_t
logsplit_pending(const struct logsplit *ls)
{
    return ls->len;
}

/* emit: hands buf to the callback and empties it; a failure kills the splitter. */
static enum rc
emit(struct logsplit *ls, bool cut, uint64_t consumed)
{
    enum rc rc = ls->fn(ls->ctx, ls->buf, ls->len, cut, consumed);
    ls->len = 0;
    if (rc != RC_OK)
        ls->rc = rc;
    return rc;
}

/* put_char: appends one output character of k bytes whose input ends at end_off, first
 * emitting a cut piece when it would not fit. */
static enum rc
put_char(struct logsplit *ls, const char *c, size_t k, uint64_t end_off)
{
    enum rc rc = RC_OK;
    if (ls->len + k > ls->max_line) {
        rc = emit(ls, true, ls->acc);
        if (rc != RC_OK)
            goto out;
    }
    memcpy(ls->buf + ls->len, c, k);
    ls->len += k;
    ls->acc = end_off;
    ls->after_flush = false;
out:
    return rc;
}

/* end_line: a '\n' whose input ends at end_off. */
static enum rc
end_line(struct logsplit *ls, uint64_t end_off)
{
    enum rc rc = RC_OK;
    if (ls->after_flush && ls->len == 0) {
        ls->after_flush = false; /* it ends the line a flush already emitted */
    } else {
        rc = emit(ls, false, end_off);
    }
    ls->acc = end_off;
    return rc;
}

/* seq_accepts: may b be byte number seq_len (0-based) of the held sequence? */
static bool
seq_accepts(const struct logsplit *ls, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xbf;
    if (ls->seq_len == 1) {
        switch (ls->seq[0]) {
        case 0xe0:
            lo = 0xa0; /* overlong */
            break;
        case 0xed:
            hi = 0x9f; /* surrogates */
            break;
        case 0xf0:
            lo = 0x90; /* overlong */
            break;
        case 0xf4:
            hi = 0x8f; /* above U+10FFFF */
            break;
        default:
            break;
        }
    }
    return b >= lo && b <= hi;
}

/* put_byte: the input byte b at offset o. */
static enum rc
put_byte(struct logsplit *ls, unsigned char b, uint64_t o)
{
    enum rc rc = RC_OK;
    char ch = (char)b;

    if (ls->seq_len > 0) {
        if (seq_accepts(ls, b)) {
            ls->seq[ls->seq_len++] = b;
            if (ls->seq_len == ls->seq_need) {
                ls->seq_len = 0;
                rc = put_char(ls, (const char *)ls->seq, ls->seq_need, o + 1);
            }
            goto out;
        }
        ls->seq_len = 0;
        rc = put_char(ls, FFFD, sizeof(FFFD), o);
        if (rc != RC_OK)
            goto out;
    }
    if (ls->cr) {
        ls->cr = false;
        if (b == '\n') {
            rc = end_line(ls, o + 1);
            goto out;
        }
        rc = put_char(ls, "\r", 1, o);
        if (rc != RC_OK)
            goto out;
    }
    if (b == '\n') {
        rc = end_line(ls, o + 1);
    } else if (b == '\r') {
        ls->cr = true;
    } else if (b < 0x80) {
        rc = put_char(ls, &ch, 1, o + 1);
    } else if (b >= 0xc2 && b <= 0xf4) {
        ls->seq[0] = b;
        ls->seq_len = 1;
        ls->seq_need = b <= 0xdf ? 2 : b <= 0xef ? 3 : 4;
    } else {
        rc = put_char(ls, FFFD, sizeof(FFFD), o + 1);
    }
out:
    return rc;
}

enum rc
logsplit_feed(struct logsplit *ls, const char *p, size_t len)
{
    enum rc rc = ls->rc;
    for (size_t i = 0; i < len && rc == RC_OK; i++) {
        unsigned char b = (unsigned char)p[i];
        if (b >= 0x20 && b < 0x80 && ls->seq_len == 0 && !ls->cr && ls->len < ls->max_line) {
            /* Fast path: plain ASCII that fits. */
            ls->buf[ls->len++] = (char)b;
            ls->acc = ls->off + 1;
            ls->after_flush = false;
        } else {
            rc = put_byte(ls, b, ls->off);
        }
        ls->off++;
    }
    return rc;
}

enum rc
logsplit_flush(struct logsplit *ls)
{
    enum rc rc = ls->rc;
    if (rc != RC_OK || ls->len == 0)
        goto out;
    rc = emit(ls, false, ls->acc);
    ls->after_flush = true;
out:
    return rc;
}

enum rc
logsplit_finish(struct logsplit *ls)
{
    enum rc rc = ls->rc;
    if (rc != RC_OK)
        goto out;
    if (ls->seq_len > 0) {
        ls->seq_len = 0;
        rc = put_char(ls, FFFD, sizeof(FFFD), ls->off);
        if (rc != RC_OK)
            goto out;
    }
    ls->cr = false; /* a final '\r' ends the line like "\r\n" would */
    if (ls->len > 0)
        rc = emit(ls, false, ls->off);
    ls->acc = ls->off;
    ls->after_flush = false;
out:
    return rc;
}
