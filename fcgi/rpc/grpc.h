/* grpc: a gRPC client over libcurl HTTP/2 (unary and server-streaming calls), with retries
 * by the caller's policy.
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
 *
 * Retries. grpc_unary knows no retry rule of its own: the caller passes a struct grpc_retry,
 * whose hooks add metadata to each attempt and decide, from a failed attempt's status and
 * grpc-status-details-bin, whether and after how long to try again. grpc_unary only enforces
 * the deadlines and never sleeps past the total one.
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
    int code;          /* enum grpc_code */
    char message[512]; /* grpc-message or a transport explanation; never request data */
};

/* Called once per response message of a call, p borrowed until return. A non-RC_OK return
 * aborts the call (it then ends with code INTERNAL and the rc's name as message). */
typedef enum rc grpc_msg_fn(void *ctx, const char *p, size_t len);

#define GRPC_KEEPALIVE_MS 30000 /* default keepalive interval: the SDKs' PING interval */

/* grpc_client_new: a client for base_url (scheme http or https, host, optional port, no
 * path). NULL on a bad URL or OOM. grpc_client_free ends every call still open and frees
 * them; NULL-safe. */
struct grpc_client *grpc_client_new(const char *base_url, unsigned flags);
void grpc_client_free(struct grpc_client *c);

/* grpc_client_set_ca: check TLS servers against the CAs in the PEM file path (NULL or "": the
 * system's roots), for calls started afterwards. RC_NOMEM only. */
enum rc grpc_client_set_ca(struct grpc_client *c, const char *path) LB_MUST_CHECK;

/* grpc_client_set_keepalive: keep the client's connections alive while calls (a long stream)
 * are quiet: an HTTP/2 PING once a connection was quiet for interval_ms (libcurl's upkeep, see
 * grpc_keepalive_pings) and TCP keepalive probes after as long idle (every 10 s then). Applies
 * to calls started afterwards; 0 turns both off. Default GRPC_KEEPALIVE_MS. */
void grpc_client_set_keepalive(struct grpc_client *c, int64_t interval_ms);
/* grpc_keepalive_pings: whether this libcurl sends the PINGs: curl_easy_upkeep reaches the
 * connections of a multi handle only from libcurl 8.10 on (before, it walks only the private
 * pool of curl_easy_perform, and nothing is sent); the TCP keepalive works with any. */
bool grpc_keepalive_pings(void);

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
/* grpc_call_cut: the call ended after the server had accepted it (response headers with HTTP
 * 200 arrived) but without a status from the server: the connection, or something on its way
 * (a proxy, a load balancer), cut it. The server answered; it did not refuse. */
bool grpc_call_cut(const struct grpc_call *call);
/* grpc_call_timed_out: the call ended because its own timeout_ms passed (no server status). */
bool grpc_call_timed_out(const struct grpc_call *call);
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

/* ---- Unary calls with the caller's retry policy ---- */

#define GRPC_RETRY_META_MAX 6 /* metadata lines a grpc_retry_meta_fn may add */

/* One failed attempt of a grpc_unary call, as a retry hook sees it (all borrowed for the
 * duration of the hook). */
struct grpc_attempt {
    unsigned n;                   /* attempt number, 0 = the first */
    int64_t elapsed_ms;           /* since grpc_unary began */
    int64_t time_left_ms;         /* until total_deadline_ms; -1 = no deadline */
    const struct grpc_status *st; /* its status, never OK */
    const unsigned char *details; /* grpc-status-details-bin, base64-decoded; NULL if absent */
    size_t details_len;           /* bytes of details */
};

/* grpc_retry_meta_fn: metadata lines ("name: value") for attempt n (0 = the first), elapsed_ms
 * after grpc_unary began, sent after the caller's meta. Writes at most cap (at least
 * GRPC_RETRY_META_MAX) pointers to out and their count to *out_n; the lines must stay valid
 * until the hook is called again or grpc_unary returns. A non-RC_OK return ends grpc_unary
 * with that rc. */
typedef enum rc grpc_retry_meta_fn(void *ctx, unsigned n, int64_t elapsed_ms, const char **out,
                                   size_t cap, size_t *out_n);
/* grpc_retry_delay_fn: after the failed attempt a, the delay in ms before the next attempt, or
 * -1 to give up (a delay that would end past the total deadline gives up as well). */
typedef int64_t grpc_retry_delay_fn(void *ctx, const struct grpc_attempt *a);
/* grpc_retry_wait_fn: the call is still waiting for its answer elapsed_ms after grpc_unary
 * began (for telling a person about a long wait). */
typedef void grpc_retry_wait_fn(void *ctx, int64_t elapsed_ms);

/* A caller's retry policy for grpc_unary. */
struct grpc_retry {
    grpc_retry_meta_fn *meta;    /* NULL: no per-attempt metadata */
    grpc_retry_delay_fn *delay;  /* NULL: one attempt only */
    void *ctx;                   /* passed to meta and delay */
    grpc_retry_wait_fn *waiting; /* NULL: nobody is told about long waits */
    int64_t waiting_ms;          /* waiting is called every waiting_ms of waiting (> 0) */
    void *waiting_ctx;           /* passed to waiting */
};

/* grpc_unary runs one unary call to completion, with retries as retry decides (NULL = one
 * attempt), running the client (and so its other calls) meanwhile. Each attempt gets
 * attempt_timeout_ms (0 = none); all attempts end by total_deadline_ms (CLOCK_MONOTONIC ms,
 * 0 = none). On grpc status OK, *out_p / *out_len hold the response message (heap, caller
 * frees; an empty message gives a non-NULL zero-length buffer). Returns RC_OK with st->code ==
 * OK on success; RC_BACKEND with st filled for any gRPC error (the last attempt's); RC_NOMEM;
 * or the meta hook's error. */
enum rc grpc_unary(struct grpc_client *c, const char *path, const void *req, size_t len,
                   const char *const *meta, const struct grpc_retry *retry,
                   int64_t attempt_timeout_ms, int64_t total_deadline_ms, char **out_p,
                   size_t *out_len, struct grpc_status *st) LB_MUST_CHECK;

#endif
