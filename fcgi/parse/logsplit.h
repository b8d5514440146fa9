/* logsplit: turns a stream of output bytes into lines. Pure: no I/O, no clock.
 *
 * Bytes are fed as they arrive; complete lines ("\n"-terminated; a trailing "\r" is removed)
 * are emitted at once. A line longer than max_line is emitted in max_line pieces, the first
 * ones flagged cut. A partial line waits; logsplit_flush emits it (the caller calls flush
 * when the partial line has waited log_flush_ms) and logsplit_finish emits it at the end of
 * the stream. Invalid UTF-8 is replaced by U+FFFD (one per maximal ill-formed subpart), so
 * every emitted line is valid UTF-8 and a JSON string can carry it; a multibyte sequence split
 * across feeds is never broken, not even by a flush.
 */
#ifndef LABBOX_LOGSPLIT_H
#define LABBOX_LOGSPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

/* on_line: one line (without its newline), valid UTF-8, borrowed for the call. consumed is the
 * number of input bytes (since the splitter was created, plus its start offset) fully
 * accounted for once this line is logged: feeding resumes exactly there after a restart. */
typedef enum rc logsplit_line_fn(void *ctx, const char *line, size_t len, bool cut,
                                 uint64_t consumed);

struct logsplit; /* opaque */

/* logsplit_new: max_line >= 16 (bytes of UTF-8 per emitted line; a cut piece may be up to 3
 * bytes shorter, to end on a character boundary); start_offset is the stream offset of the
 * first byte fed (a restarted supervisor passes the last consumed it logged). fn and ctx are
 * borrowed. NULL on OOM, max_line < 16 or fn == NULL. Free with logsplit_free (NULL-safe). */
struct logsplit *logsplit_new(size_t max_line, uint64_t start_offset, logsplit_line_fn *fn,
                              void *ctx);
void logsplit_free(struct logsplit *ls);
/* logsplit_feed: consume len bytes, emitting complete lines; returns the first non-OK rc of
 * the callback. After a callback failure the splitter is dead: the rest of p is not looked at
 * and every later feed/flush/finish returns that rc. */
enum rc logsplit_feed(struct logsplit *ls, const char *p, size_t len) LB_MUST_CHECK;
/* logsplit_flush: emit the pending partial line, if any (cut false). Held bytes (an incomplete
 * UTF-8 sequence, a '\r' that may precede '\n') stay held and are not counted in consumed. A
 * "\n" or "\r\n" arriving right after a flush only ends the flushed line: no empty line is
 * emitted for it (a splitter restarted at the flushed line's consumed offset cannot know
 * this and does emit one empty line there). */
enum rc logsplit_flush(struct logsplit *ls) LB_MUST_CHECK;
/* logsplit_finish: the stream has ended: a held incomplete UTF-8 sequence becomes U+FFFD, a
 * held final '\r' is dropped as a line end, and the partial line is emitted with consumed =
 * every byte fed. Feeding may go on afterwards: the next byte starts a new line. */
enum rc logsplit_finish(struct logsplit *ls) LB_MUST_CHECK;
/* logsplit_pending: bytes logsplit_flush would emit now (held bytes are not counted). */
size_t logsplit_pending(const struct logsplit *ls);

#endif
