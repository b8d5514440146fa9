/* httpc: a small HTTP/1.1 client on libcurl for local engine APIs (the Docker Engine).
 *
 * Theory of operation. A `struct httpc` is one target (a unix socket or a plain-TCP
 * host:port) plus one curl easy handle reused for blocking requests, so the connection is kept
 * alive between them. httpc_do() runs one request to the end: the request body comes from
 * memory or from a read callback, the response body goes into a bounded buffer or, for a 2xx
 * answer, to a write callback as it arrives (non-2xx bodies are always buffered, capped, so the
 * caller can quote the server's error). httpc_stream_*() run one request on its own easy handle
 * inside a curl multi handle, so a caller can wait on a long response (a log stream) for at
 * most timeout_ms at a time without a thread.
 *
 * No TLS, no redirects, no proxies, no cookies: only http:// to the target named here.
 * Not thread-safe: one struct httpc per thread.
 */
#ifndef LABBOX_HTTPC_H
#define LABBOX_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

#define HTTPC_ERRBODY_MAX 4096 /* bytes of a non-2xx body kept */

struct httpc_target {
    char unix_path[108]; /* socket path, or "" for TCP */
    char base[300];      /* "http://localhost" (unix) or "http://host:port" (tcp) */
    bool is_unix;        /* true for a unix socket */
    bool is_loopback;    /* unix, or tcp to 127.0.0.0/8, ::1 or "localhost" */
};

/* httpc_target_parse reads "unix:///path", "/path" or "tcp://host:port" (also "http://...").
 * RC_BADREQ with a message in err for anything else (empty, relative path, missing port,
 * over-long). Pure. */
enum rc httpc_target_parse(const char *spec, struct httpc_target *out, char *err,
                           size_t errlen) LB_MUST_CHECK;

/* Request body source: copy up to cap bytes to buf; *out_n = 0 means the end. */
typedef enum rc httpc_read_fn(void *ctx, char *buf, size_t cap, size_t *out_n);
/* Response body sink for 2xx answers: a non-RC_OK result aborts the transfer with that rc. */
typedef enum rc httpc_write_fn(void *ctx, const char *p, size_t n);

struct httpc_req {
    const char *method;       /* "GET", "POST", "PUT", "DELETE", "HEAD" */
    const char *path;         /* absolute path with query, e.g. "/v1.41/_ping"; caller escapes */
    const char *content_type; /* Content-Type of the body, NULL for none */
    const void *body;         /* in-memory body (borrowed), or NULL */
    size_t body_len;          /* its length */
    httpc_read_fn *read_fn;   /* streaming body instead of body, or NULL */
    void *read_ctx;
    int64_t read_len;         /* its length, or -1 for chunked transfer encoding */
    httpc_write_fn *write_fn; /* 2xx body sink, or NULL to buffer into httpc_resp.body */
    void *write_ctx;
    size_t max_body;         /* cap of a buffered 2xx body; over it: RC_TOOBIG */
    long timeout_ms;         /* whole request, 0 = none (streams) */
    long connect_timeout_ms; /* 0 = 5000 */
};

struct httpc_resp {
    long status; /* HTTP status, 0 if no answer */
    char *body;  /* buffered body, NUL-terminated (owned; httpc_resp_fini frees), may be NULL */
    size_t len;  /* its length */
};

struct httpc;

/* httpc_new makes a client for target (copied); NULL on OOM or if curl cannot start. */
struct httpc *httpc_new(const struct httpc_target *target);
/* httpc_free closes the connection and frees h; NULL is fine. */
void httpc_free(struct httpc *h);

/* httpc_do runs rq to completion. RC_OK when an HTTP answer came, whatever its status (the
 * caller checks out->status); RC_TIMEOUT when timeout_ms passed; RC_BACKEND when no connection
 * or a transfer error (text in httpc_error); RC_TOOBIG over max_body; or the rc a callback
 * returned. out is filled in every case (status 0 without an answer); free with
 * httpc_resp_fini. */
enum rc httpc_do(struct httpc *h, const struct httpc_req *rq, struct httpc_resp *out) LB_MUST_CHECK;
/* httpc_resp_fini frees out->body and zeroes out. */
void httpc_resp_fini(struct httpc_resp *r);
/* httpc_error: the last transfer error of h or of a stream opened from it, one line (borrowed,
 * valid until the next call on h). */
const char *httpc_error(const struct httpc *h);

struct httpc_stream;

/* httpc_stream_open starts rq without waiting: a 2xx body goes to write_fn (or is buffered,
 * capped by max_body, if NULL); a request body only from memory. *out is the caller's, freed
 * with httpc_stream_free. RC_NOMEM or RC_BACKEND. */
enum rc httpc_stream_open(struct httpc *h, const struct httpc_req *rq,
                          struct httpc_stream **out) LB_MUST_CHECK;
/* httpc_stream_poll waits up to timeout_ms for progress, calling write_fn with whatever
 * arrives; it returns after the first bytes are delivered, at the end of the transfer, or at
 * the timeout. *out_done is set when the transfer has ended; then httpc_stream_result tells
 * how. RC_OK, or RC_BACKEND if curl itself failed. */
enum rc httpc_stream_poll(struct httpc_stream *st, int timeout_ms, bool *out_done) LB_MUST_CHECK;
/* httpc_stream_result, after done: RC_OK for a complete HTTP answer (the status in
 * *out_status; in *out_body the buffered body: a non-2xx body, or a 2xx body when the request
 * had no write_fn; "" if none; borrowed until httpc_stream_free), RC_BACKEND for a broken
 * transfer (httpc_error), RC_TOOBIG for a buffered 2xx body over max_body, or a write_fn's rc.
 * RC_BUSY before the transfer has ended. */
enum rc httpc_stream_result(const struct httpc_stream *st, long *out_status,
                            const char **out_body) LB_MUST_CHECK;
/* httpc_stream_free aborts the transfer if still running and frees st; NULL is fine. */
void httpc_stream_free(struct httpc_stream *st);

/* httpc_escape percent-encodes s for a query value into out (cap bytes, NUL-terminated).
 * RC_TOOBIG if it does not fit. */
enum rc httpc_escape(const char *s, char *out, size_t cap) LB_MUST_CHECK;

#endif
