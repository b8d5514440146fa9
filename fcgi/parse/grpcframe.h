/* grpcframe: gRPC length-prefixed message framing and status trailers, pure (no I/O).
 *
 * Spec: gRPC PROTOCOL-HTTP2.md, "Length-Prefixed-Message": 1 byte Compressed-Flag, 4 bytes
 * big-endian Message-Length, then the message. We never negotiate compression, so a flag of 1
 * (or any other non-zero value) is a protocol error. The decoder accepts the body in arbitrary
 * chunks (a message may span DATA frames, a frame may hold several messages) and calls back
 * once per complete message. Status helpers parse grpc-status, percent-decode grpc-message
 * and map HTTP statuses of proxies to gRPC codes.
 */
#ifndef LABBOX_GRPCFRAME_H
#define LABBOX_GRPCFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"
#include "util/span.h"

#define GRPCFRAME_HDR_LEN 5
#define GRPCFRAME_MAX_MSG (100u * 1024 * 1024) /* what the Modal SDKs allow each way */

/* gRPC status codes (google.rpc.Code). */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
    GRPC_CODE__MAX
};

/* Called once per complete message; p is borrowed until the callback returns. A non-RC_OK
 * return stops grpcframe_feed, which returns it. */
typedef enum rc grpcframe_msg_fn(void *ctx, const char *p, size_t len);

struct grpcframe {
    size_t max_msg;                       /* cap on one message, bytes */
    unsigned char hdr[GRPCFRAME_HDR_LEN]; /* header bytes collected so far */
    size_t hdr_len;                       /* 0..5 */
    char *buf;                            /* message reassembly, heap */
    size_t cap;                           /* allocated bytes of buf */
    size_t len;                           /* bytes of the current message so far */
    size_t need;                          /* length announced by the header */
    bool failed;                          /* a previous feed returned an error */
};

/* grpcframe_init prepares f with a per-message cap (0 = GRPCFRAME_MAX_MSG). */
void grpcframe_init(struct grpcframe *f, size_t max_msg);
/* grpcframe_fini frees the reassembly buffer and zeroes f; NULL-safe. */
void grpcframe_fini(struct grpcframe *f);
/* grpcframe_reset drops any partial message so f can decode a new stream. */
void grpcframe_reset(struct grpcframe *f);

/* grpcframe_feed decodes len bytes (any split). Returns RC_OK; RC_UNSUPPORTED for a
 * compressed message (flag 1); RC_BADREQ for a flag other than 0/1; RC_TOOBIG when a message
 * announces more than max_msg bytes; RC_NOMEM; or the callback's error. After an error every
 * later feed returns RC_BADREQ until grpcframe_reset. */
enum rc grpcframe_feed(struct grpcframe *f, const char *p, size_t len, grpcframe_msg_fn *fn,
                       void *ctx) LB_MUST_CHECK;

/* grpcframe_at_boundary: true when no partial message is pending (a clean end of stream). */
bool grpcframe_at_boundary(const struct grpcframe *f);

/* grpcframe_header fills out[5] with the prefix of an uncompressed message of len bytes. */
void grpcframe_header(uint32_t len, unsigned char out[GRPCFRAME_HDR_LEN]);

/* grpcframe_parse_status parses a grpc-status value (decimal, 0..99 accepted, surrounding
 * blanks allowed). false if it is not a number; *out_code gets the value otherwise (codes
 * beyond 16 are passed through as given, callers treat them as UNKNOWN). */
bool grpcframe_parse_status(struct span v, int *out_code);

/* grpcframe_percent_decode decodes a grpc-message value ("%XX" escapes, spec: percent-encoded
 * UTF-8; a malformed escape is kept literally, deliberately lenient) into out (NUL-terminated,
 * truncated to outlen - 1 bytes; control characters become '?'). Returns the length written. */
size_t grpcframe_percent_decode(struct span v, char *out, size_t outlen);

/* grpcframe_code_from_http maps a non-200 HTTP status to a gRPC code as the gRPC spec's
 * "HTTP to gRPC Status Code Mapping" says (400 INTERNAL, 401 UNAUTHENTICATED, 403
 * PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, others UNKNOWN). */
int grpcframe_code_from_http(int http_status);

/* grpcframe_code_name: "UNAVAILABLE", ... (static), "UNKNOWN" beyond the table. */
const char *grpcframe_code_name(int code);

/* One response header or trailer line as libcurl hands it to CURLOPT_HEADERFUNCTION. */
struct grpcframe_meta {
    int http_status;       /* from the status line, 0 until seen */
    bool has_status;       /* grpc-status seen */
    int grpc_status;       /* its value */
    char message[512];     /* decoded grpc-message */
    char content_type[64]; /* content-type value */
    char *details_b64;     /* grpc-status-details-bin value, heap, or NULL */
};

/* grpcframe_meta_line interprets one raw header line (with or without CRLF): an "HTTP/2 200"
 * status line resets meta (a new response), grpc-status, grpc-message, content-type and
 * grpc-status-details-bin are recorded, others ignored. RC_NOMEM only. */
enum rc grpcframe_meta_line(struct grpcframe_meta *meta, const char *line,
                            size_t len) LB_MUST_CHECK;
/* grpcframe_meta_fini frees details_b64 and zeroes meta. */
void grpcframe_meta_fini(struct grpcframe_meta *meta);

#endif
