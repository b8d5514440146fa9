/* logsplit: turns a stream of output bytes into lines. Pure: no I/O, no clock.
 *
 * Bytes are fed as they arrive; complete lines ("\n"-terminated; a trailing "\r" is removed)
 * are emitted at once. A line longer than max_line is emitted in max_line pieces, the first
 * ones flagged cut. A partial line waits; logsplit_flush emits it (the caller calls flush
 * when the partial line has waited log_flush_ms, or at the end of the stream). Invalid UTF-8
 * is replaced by U+FFFD, so every emitted line is valid UTF-8 and a JSON string can carry it;
 * a multibyte sequence split across feeds is never broken.
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

/* logsplit_new: max_line >= 16; start_offset is the stream offset of the first byte fed.
 * NULL on OOM. */
struct logsplit *logsplit_new(size_t max_line, uint64_t start_offset, logsplit_line_fn *fn,
                              void *ctx);
void logsplit_free(struct logsplit *ls);
/* logsplit_feed: consume len bytes, emitting complete lines; returns the first non-OK rc of
 * the callback. */
enum rc logsplit_feed(struct logsplit *ls, const char *p, size_t len) LB_MUST_CHECK;
/* logsplit_flush: emit the pending partial line, if any. */
enum rc logsplit_flush(struct logsplit *ls) LB_MUST_CHECK;
/* logsplit_pending: bytes of a partial line waiting. */
size_t logsplit_pending(const struct logsplit *ls);

#endif
