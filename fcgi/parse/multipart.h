/* multipart: a streaming multipart/form-data parser (RFC 7578 on RFC 2046 section 5.1).
 *
 * Pure: bytes in, callbacks out, no I/O, no globals. Feed the body in chunks of any size
 * (even one byte); memory use is bounded by PART_HEADERS_MAX and BOUNDARY_MAX whatever the
 * body size. Part data is delivered in pieces as it arrives, never accumulated.
 */
#ifndef LABBOX_MULTIPART_H
#define LABBOX_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"
#include "util/span.h"

/* The headers of one part, borrowed until the on_part_end callback returns. */
struct multipart_part {
    struct span name;         /* Content-Disposition name="..." (unquoted, unescaped) */
    struct span filename;     /* filename="..." ; p == NULL when the parameter is absent */
    struct span content_type; /* Content-Type header value, or len 0 */
};

struct multipart_callbacks {
    /* on_part_begin: the headers of a new part are complete. */
    enum rc (*on_part_begin)(void *ctx, const struct multipart_part *part);
    /* on_part_data: the next len bytes of the current part's body (len > 0). */
    enum rc (*on_part_data)(void *ctx, const char *p, size_t len);
    /* on_part_end: the current part's body is complete. */
    enum rc (*on_part_end)(void *ctx);
    void *ctx;
};

struct multipart; /* opaque */

/* multipart_boundary extracts the boundary parameter from a Content-Type header value
 * ("multipart/form-data; boundary=..." , quoted or not). RC_UNSUPPORTED when the type is not
 * multipart/form-data, RC_BADREQ when the boundary is missing, empty, longer than BOUNDARY_MAX
 * or has characters RFC 2046 forbids. *out borrows from content_type. */
enum rc multipart_boundary(struct span content_type, struct span *out) LB_MUST_CHECK;

/* multipart_new: a parser for the given boundary (copied; cb is copied too, and a NULL callback
 * is skipped). NULL on OOM, or when boundary is not one multipart_boundary() accepts (1..
 * BOUNDARY_MAX RFC 2046 bchars, not ending in a space). Free with multipart_free (NULL-safe).
 * Deliberate choices (details atop multipart.c): bare-LF line endings are RC_BADREQ; header
 * folding is RC_BADREQ; "filename*" (RFC 5987) is ignored; in quoted strings a backslash
 * escapes only '"' and '\\' (old IE sends C:\x\y.csv unescaped); "\r\n--boundary"
 * followed by a byte other than '-', SP, HT, CR or LF is part data, not a delimiter. */
struct multipart *multipart_new(struct span boundary, const struct multipart_callbacks *cb);
void multipart_free(struct multipart *mp);

/* multipart_feed: parse the next len bytes. Returns RC_OK, RC_BADREQ for a malformed body
 * (a message in multipart_error), RC_TOOBIG when a part's headers exceed PART_HEADERS_MAX, or
 * whatever a callback returned (parsing stops at the first non-OK result and the parser is
 * then dead: every later feed returns the same rc). */
enum rc multipart_feed(struct multipart *mp, const char *p, size_t len) LB_MUST_CHECK;

/* multipart_finish: the body has ended. RC_OK only when the closing delimiter was seen;
 * RC_BADREQ for a truncated body. Bytes after the closing delimiter (epilogue) are ignored. */
enum rc multipart_finish(struct multipart *mp) LB_MUST_CHECK;

/* multipart_error: a static, human-readable reason for the last RC_BADREQ/RC_TOOBIG. */
const char *multipart_error(const struct multipart *mp);

#endif
