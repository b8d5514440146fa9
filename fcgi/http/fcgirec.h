/* fcgirec: FastCGI response records written without libfcgi, for requests taken out of it
 * (http/park.c): stdout bytes framed as FCGI_STDOUT records and the end of a request, in a
 * bounded output buffer. Pure: no I/O, no libfcgi.
 *
 * A record (FastCGI 1.0, section 3.3) is an 8-byte header (version 1, type, request id and
 * content length as two big-endian bytes each, padding length, a reserved byte), the content
 * (at most 65535 bytes) and the padding (none here: padding is optional). Stdout bytes appended
 * while the last record of the buffer is an FCGI_STDOUT record whose header has not been sent
 * yet extend that record, so many small writes between two sends cost one header. The end of a
 * request (section 5.1, 5.5) is an empty FCGI_STDOUT record (the end of the stream) and an
 * FCGI_END_REQUEST record (application status, FCGI_REQUEST_COMPLETE).
 */
#ifndef LABBOX_FCGIREC_H
#define LABBOX_FCGIREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

#define FCGI_HEADER_LEN       8
#define FCGI_VERSION_1        1
#define FCGI_END_REQUEST      3
#define FCGI_STDOUT           6
#define FCGI_REQUEST_COMPLETE 0
#define FCGI_CONTENT_MAX      65535
#define FCGI_OUT_KEEP         4096 /* a drained buffer up to this size is kept, larger is freed */

struct fcgi_out {
    unsigned char *data; /* bytes [head, len) are unsent */
    size_t head;         /* first unsent byte */
    size_t len;          /* end of the buffered bytes */
    size_t cap;          /* bytes allocated */
    size_t max;          /* unsent bytes (headers included) never exceed this */
    size_t open;         /* offset of the open FCGI_STDOUT record's header, or SIZE_MAX */
    uint16_t reqid;      /* the FastCGI request id */
    bool ended;          /* fcgi_out_end was called */
};

/* fcgi_out_init: an empty buffer for request reqid holding at most max unsent bytes. */
void fcgi_out_init(struct fcgi_out *o, uint16_t reqid, size_t max);
/* fcgi_out_fini: frees the buffer; o is left empty (init it again to reuse). */
void fcgi_out_fini(struct fcgi_out *o);

/* fcgi_out_room: stdout bytes that fcgi_out_stdout accepts now (headers accounted for). */
size_t fcgi_out_room(const struct fcgi_out *o);
/* fcgi_out_stdout: append n stdout bytes, all or nothing. RC_TOOBIG when they do not fit in
 * the room, RC_NOMEM, RC_CONFLICT after fcgi_out_end. n = 0 appends nothing (an empty
 * FCGI_STDOUT record would end the stream). */
enum rc fcgi_out_stdout(struct fcgi_out *o, const void *p, size_t n) LB_MUST_CHECK;
/* fcgi_out_end: append the end of the request (empty FCGI_STDOUT, FCGI_END_REQUEST with
 * app_status); always fits (the last 24 bytes of max are kept for it). RC_NOMEM, RC_CONFLICT
 * when already ended. */
enum rc fcgi_out_end(struct fcgi_out *o, uint32_t app_status) LB_MUST_CHECK;

/* fcgi_out_pending: unsent bytes; fcgi_out_next: the first of them (borrowed until the next
 * call on o). */
size_t fcgi_out_pending(const struct fcgi_out *o);
const unsigned char *fcgi_out_next(const struct fcgi_out *o);
/* fcgi_out_consume: n bytes (at most pending) were sent. A drained buffer larger than
 * FCGI_OUT_KEEP is freed. */
void fcgi_out_consume(struct fcgi_out *o, size_t n);

#endif
