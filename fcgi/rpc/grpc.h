/* grpc: a gRPC client over libcurl HTTP/2 (unary and server-streaming calls), with retries.
 *
 * Theory of operation. A struct grpc_client talks to one base URL ("http://host:port" is h2c
 * with prior knowledge, "https://host:port" is TLS with ALPN h2; GRPC_CLIENT_H2C forces h2c for
 * an https URL, the loopback rule of docs/modal.md#http2-and-tls). It owns one CURLM and one
 * CURLSH, so all its calls multiplex over one connection. A call is one easy handle: POST
 * /<package>.<Service>/<Method>, content-type application/grpc, te: trailers, the caller's
 * metadata lines, grpc-timeout and a curl timeout when a deadline is given. Response bytes go
 * through a grpcframe decoder; each complete message is handed to the call's callback (or kept,
 * for unary calls). The status comes from grpc-status/grpc-message (trailers, or the headers of
 * a trailers-only response), else from the HTTP status or the curl error (connection failures
 * are UNAVAILABLE, curl timeouts DEADLINE_EXCEEDED).
 *
 * Calls progress only inside grpc_client_run (or grpc_unary, which runs the client until its
 * call ends), on the caller's thread. Nothing here is thread-safe.
 */
#ifndef LABBOX_GRPC_H
#define LABBOX_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse/grpcframe.h"
#include "rc.h"

#define GRPC_CLIENT_H2C 0x1u /* speak plaintext HTTP/2 even to an https:// URL */

struct grpc_client;
struct grpc_call;

/* A finished call's status. */
struct grpc_status {
    int code;               /* enum grpc_code */
    char message[512];      /* grpc-message or a transport explanation; never request data */
    int64_t retry_after_ms; /* server-directed retry (RPCRetryPolicy detail), else -1 */
};

/* Called once per response message of a call, p borrowed until return. A non-RC_OK return
 * aborts the call (it then ends with code INTERNAL and the rc's name as message). */
typedef enum rc grpc_msg_fn(void *ctx, const char *p, size_t len);

/* grpc_client_new: a client for base_url (scheme http or https, host, optional port, no
 * path). NULL on a bad URL or OOM. grpc_client_free ends every call still open and frees
 * them; NULL-safe. */
struct grpc_client *grpc_client_new(const char *base_url, unsigned flags);
void grpc_client_free(struct grpc_client *c);
/* grpc_client_url: the base URL as given (borrowed). */
const char *grpc_client_url(const struct grpc_client *c);

/* grpc_call_start begins a call of path ("/pkg.Service/Method") with one request message
 * (req, len bytes, copied) and metadata lines ("name: value", NULL-terminated array, copied).
 * timeout_ms > 0 bounds the whole call; 0 means none. on_msg may be NULL: then the first
 * response message is kept (see grpc_call_take_message) and later ones are an error.
 * The call is owned by the client until grpc_call_free. NULL on OOM. */
struct grpc_call *grpc_call_start(struct grpc_client *c, const char *path, const void *req,
                                  size_t len, const char *const *meta, int64_t timeout_ms,
                                  grpc_msg_fn *on_msg, void *ctx);
/* grpc_call_done: the call has ended; its status is then in grpc_call_status. */
bool grpc_call_done(const struct grpc_call *call);
/* grpc_call_status: the final status (borrowed; valid once done). */
const struct grpc_status *grpc_call_status(const struct grpc_call *call);
/* grpc_call_take_message moves the kept response message out: *out_p (heap, caller frees;
 * NULL if none arrived) and *out_len. */
void grpc_call_take_message(struct grpc_call *call, char **out_p, size_t *out_len);
/* grpc_call_free cancels the call if still running (RST_STREAM) and frees it; NULL-safe. */
void grpc_call_free(struct grpc_call *call);

/* grpc_client_run moves every call of c forward, waiting up to timeout_ms for network
 * activity (0 = do not wait). Message callbacks run from here. RC_OK, or RC_BACKEND if curl's
 * multi interface itself fails. */
enum rc grpc_client_run(struct grpc_client *c, int timeout_ms) LB_MUST_CHECK;
/* grpc_client_active: number of calls not yet done. */
size_t grpc_client_active(const struct grpc_client *c);

/* ---- Retries (pure) ---- */

struct grpc_retry_policy {
    unsigned max_retries;  /* attempts = max_retries + 1 */
    unsigned base_ms;      /* delay before the first retry */
    unsigned factor;       /* growth per retry */
    unsigned cap_ms;       /* 0 = no cap */
    bool idempotency_meta; /* add x-idempotency-key / x-retry-attempt / x-retry-delay */
};

/* Modal's control plane (docs/modal.md#retries-and-idempotency): 3 retries, 100 ms doubling,
 * cap 1 s, idempotency headers. */
extern const struct grpc_retry_policy GRPC_RETRY_CONTROL;
/* The task command router: 10 retries, 10 ms doubling, no cap, no idempotency headers. */
extern const struct grpc_retry_policy GRPC_RETRY_ROUTER;
/* No retries at all. */
extern const struct grpc_retry_policy GRPC_RETRY_NONE;

/* grpc_retry_is_retryable: CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE. */
bool grpc_retry_is_retryable(int code);

/* grpc_retry_delay_ms decides, after failed attempt number attempt (0 = the first), whether to
 * retry and after how long: -1 = give up. A server-directed retry_after_ms >= 0 wins (at least
 * 100 ms) and does not count against max_retries (throttle_retries counts those; more than 50,
 * or a delay past time_left_ms, gives up). Otherwise only retryable codes retry, at most
 * max_retries times, with delay base * factor^attempt capped at cap_ms, scaled by
 * 0.8 + 0.4 * jitter (jitter in [0,1)). A delay that would end past time_left_ms (>= 0; < 0 =
 * no deadline) gives up. Pure. */
int64_t grpc_retry_delay_ms(const struct grpc_retry_policy *p, int code, unsigned attempt,
                            int64_t retry_after_ms, unsigned throttle_retries, double jitter,
                            int64_t time_left_ms);

/* grpc_unary runs one unary call to completion with retries per policy, running the client
 * (and so its other calls) meanwhile. Each attempt gets attempt_timeout_ms (0 = none); all
 * attempts end by total_deadline_ms (CLOCK_MONOTONIC ms, 0 = none). On grpc status OK,
 * *out_p / *out_len hold the response message (heap, caller frees; an empty message gives a
 * non-NULL zero-length buffer). Returns RC_OK with st->code == OK on success; RC_BACKEND with
 * st filled for any gRPC error; RC_NOMEM. */
enum rc grpc_unary(struct grpc_client *c, const char *path, const void *req, size_t len,
                   const char *const *meta, const struct grpc_retry_policy *policy,
                   int64_t attempt_timeout_ms, int64_t total_deadline_ms, char **out_p,
                   size_t *out_len, struct grpc_status *st) LB_MUST_CHECK;

/* grpc_uuid4 writes a random UUIDv4 (36 chars + NUL). RC_IO if getrandom fails. */
enum rc grpc_uuid4(char out[37]) LB_MUST_CHECK;

#endif
