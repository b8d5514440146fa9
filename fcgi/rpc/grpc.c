/* grpc: gRPC over libcurl HTTP/2: calls on a shared multi handle, status mapping, unary calls
 * with the caller's retry hooks. */
#include "rpc/grpc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "parse/jwt.h"
#include "util/clock.h"

#define GRPC_META_MAX     32 /* metadata lines of one call */
#define GRPC_POOL         16 /* idle easy handles kept per client */
#define GRPC_USER_AGENT   "labbox/" LABBOX_VERSION " libcurl grpc"
#define GRPC_TCP_PROBE_S  10       /* TCP keepalive probe interval, as the SDKs' PING timeout */
#define GRPC_UPKEEP_MULTI 0x080a00 /* libcurl from which upkeep reaches a multi's connections */

struct grpc_client {
    CURLM *multi;
    CURLSH *share;
    char *curl_base; /* what curl dials: http:// when h2c */
    bool h2c;
    bool no_reuse;           /* one connection per call (see grpc_client_new) */
    struct grpc_call *calls; /* all calls not yet freed */
    size_t active;           /* calls not yet done */
    int64_t keepalive_ms;    /* HTTP/2 PING / TCP keepalive interval, 0 = off */
    char *ca_file;           /* CAs for TLS, NULL = the system's */
    int64_t last_upkeep;     /* CLOCK_MONOTONIC ms of the last curl_easy_upkeep */
    CURL *pool[GRPC_POOL];   /* finished easy handles kept for reuse */
    size_t npool;
};

struct grpc_call {
    struct grpc_client *client;
    struct grpc_call *prev, *next;
    CURL *easy;
    bool in_multi;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len;
    struct grpcframe fr;
    struct grpcframe_meta meta;
    grpc_msg_fn *on_msg;
    void *ctx;
    char *kept;
    size_t kept_len;
    bool have_kept;
    bool done;
    bool timed_out; /* ended by its own deadline (the curl timeout) */
    enum rc cb_rc;  /* first error from message handling */
    struct grpc_status st;
    char errbuf[CURL_ERROR_SIZE];
};

static bool curl_ready;

/* ------------------------------------------------------------------ client */

struct grpc_client *
grpc_client_new(const char *base_url, unsigned flags)
{
    struct grpc_client *c = NULL;
    const char *rest;
    bool https;
    char buf[600];

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = true;
    }
    if (strncmp(base_url, "http://", 7) == 0) {
        https = false;
        rest = base_url + 7;
    } else if (strncmp(base_url, "https://", 8) == 0) {
        https = true;
        rest = base_url + 8;
    } else {
        return NULL;
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || (rest[hl] != '\0' && strcmp(rest + hl, "/") != 0))
        return NULL;
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)rest[i] <= ' ' || rest[i] == '@')
            return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->h2c = !https || (flags & GRPC_CLIENT_H2C);
    /* libcurl before 8.0 breaks a reused prior-knowledge h2c connection ("Error in the HTTP2
     * framing layer", curl issue 10634, fixed by PR 10643): there, each h2c call gets its own
     * connection. TLS (ALPN h2), i.e. the real Modal, multiplexes normally. */
    c->no_reuse = c->h2c && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    bool has_port = memchr(rest, ':', hl) != NULL && rest[0] != '[';
    if (rest[0] == '[') {
        const char *rb = memchr(rest, ']', hl);
        has_port = rb != NULL && rb + 1 < rest + hl && rb[1] == ':';
    }
    int n = snprintf(buf, sizeof(buf), "%s://%.*s%s", c->h2c ? "http" : "https", (int)hl, rest,
                     (https && c->h2c && !has_port) ? ":443" : "");
    if (n < 0 || (size_t)n >= sizeof(buf))
        goto fail;
    c->curl_base = strdup(buf);
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (c->curl_base == NULL || c->multi == NULL || c->share == NULL)
        goto fail;
    (void)curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    (void)curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    (void)curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    c->keepalive_ms = GRPC_KEEPALIVE_MS;
    return c;
fail:
    grpc_client_free(c);
    return NULL;
}

enum rc
grpc_client_set_ca(struct grpc_client *c, const char *path)
{
    char *dup = path != NULL && path[0] != '\0' ? strdup(path) : NULL;
    if (path != NULL && path[0] != '\0' && dup == NULL)
        return RC_NOMEM;
    free(c->ca_file);
    c->ca_file = dup;
    return RC_OK;
}

void
grpc_client_set_keepalive(struct grpc_client *c, int64_t interval_ms)
{
    c->keepalive_ms = interval_ms > 0 ? interval_ms : 0;
}

bool
grpc_keepalive_pings(void)
{
    return curl_version_info(CURLVERSION_NOW)->version_num >= GRPC_UPKEEP_MULTI;
}

void
grpc_client_free(struct grpc_client *c)
{
    if (c == NULL)
        return;
    while (c->calls != NULL)
        grpc_call_free(c->calls);
    for (size_t i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    if (c->multi != NULL)
        (void)curl_multi_cleanup(c->multi);
    if (c->share != NULL)
        (void)curl_share_cleanup(c->share);
    free(c->curl_base);
    free(c->ca_file);
    free(c);
}

/* ------------------------------------------------------------------ call I/O */

static enum rc
deliver(void *ctx, const char *p, size_t len)
{
    struct grpc_call *call = ctx;
    if (call->on_msg != NULL)
        return call->on_msg(call->ctx, p, len);
    if (call->have_kept)
        return RC_BADREQ; /* a unary call answered with two messages */
    call->kept = malloc(len ? len : 1);
    if (call->kept == NULL)
        return RC_NOMEM;
    if (len > 0)
        memcpy(call->kept, p, len);
    call->kept_len = len;
    call->have_kept = true;
    return RC_OK;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct grpc_call *call = ud;
    size_t n = size * nmemb;
    if (call->cb_rc != RC_OK)
        return 0;
    enum rc rc = grpcframe_feed(&call->fr, p, n, deliver, call);
    if (rc != RC_OK) {
        call->cb_rc = rc;
        return 0;
    }
    return n;
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct grpc_call *call = ud;
    size_t n = size * nmemb;
    if (grpcframe_meta_line(&call->meta, p, n) != RC_OK)
        return 0;
    return n;
}

/* The request headers of call: gRPC's fixed ones, the caller's metadata, grpc-timeout. */
static bool
call_headers(struct grpc_call *call, const char *const *meta, int64_t timeout_ms)
{
    static const char *const fixed[] = {
        "content-type: application/grpc",
        "te: trailers",
        "grpc-accept-encoding: identity",
        "Expect:",
        "Accept:",
        NULL,
    };
    char line[64];
    for (size_t i = 0; fixed[i] != NULL; i++) {
        struct curl_slist *h = curl_slist_append(call->hdrs, fixed[i]);
        if (h == NULL)
            return false;
        call->hdrs = h;
    }
    for (size_t i = 0; meta != NULL && meta[i] != NULL && i < GRPC_META_MAX; i++) {
        struct curl_slist *h = curl_slist_append(call->hdrs, meta[i]);
        if (h == NULL)
            return false;
        call->hdrs = h;
    }
    if (timeout_ms > 0) {
        int k = timeout_ms <= 99999999
                    ? snprintf(line, sizeof(line), "grpc-timeout: %" PRId64 "m", timeout_ms)
                    : snprintf(line, sizeof(line), "grpc-timeout: %" PRId64 "S", timeout_ms / 1000);
        if (k < 0 || (size_t)k >= sizeof(line))
            return false;
        struct curl_slist *h = curl_slist_append(call->hdrs, line);
        if (h == NULL)
            return false;
        call->hdrs = h;
    }
    return true;
}

/* An easy handle for call (an idle one of the pool, else a new one), set up to POST to url. */
static CURLcode
call_easy(struct grpc_call *call, const char *url, int64_t timeout_ms)
{
    struct grpc_client *c = call->client;
    if (c->npool > 0) {
        call->easy = c->pool[--c->npool];
        curl_easy_reset(call->easy);
    } else {
        call->easy = curl_easy_init();
    }
    if (call->easy == NULL)
        return CURLE_OUT_OF_MEMORY;
    CURL *e = call->easy;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_SHARE, c->share);
    SET(CURLOPT_PRIVATE, call);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTP_VERSION,
        c->h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_PIPEWAIT, c->no_reuse ? 0L : 1L);
    if (c->no_reuse) {
        SET(CURLOPT_FRESH_CONNECT, 1L);
        SET(CURLOPT_FORBID_REUSE, 1L);
    }
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, call->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    SET(CURLOPT_HTTPHEADER, call->hdrs);
    SET(CURLOPT_USERAGENT, GRPC_USER_AGENT);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, call);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, call);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    if (c->keepalive_ms > 0) {
        long idle_s = (long)((c->keepalive_ms + 999) / 1000);
        SET(CURLOPT_TCP_KEEPIDLE, idle_s);
        SET(CURLOPT_TCP_KEEPINTVL, idle_s < GRPC_TCP_PROBE_S ? idle_s : (long)GRPC_TCP_PROBE_S);
        SET(CURLOPT_UPKEEP_INTERVAL_MS, (long)c->keepalive_ms);
    }
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file != NULL)
        SET(CURLOPT_CAINFO, c->ca_file);
    if (timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
#undef SET
    return cc;
}

struct grpc_call *
grpc_call_start(struct grpc_client *c, const char *path, const void *req, size_t len,
                const char *const *meta, int64_t timeout_ms, grpc_msg_fn *on_msg, void *ctx)
{
    struct grpc_call *call = calloc(1, sizeof(*call));
    char url[600];
    if (call == NULL)
        return NULL;
    call->client = c;
    call->on_msg = on_msg;
    call->ctx = ctx;
    grpcframe_init(&call->fr, GRPCFRAME_MAX_MSG);
    /* Link first so grpc_call_free can clean up a half-built call. */
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;

    if (len > UINT32_MAX)
        goto fail;
    call->body = malloc(len + GRPCFRAME_HDR_LEN);
    if (call->body == NULL)
        goto fail;
    grpcframe_header((uint32_t)len, (unsigned char *)call->body);
    if (len > 0)
        memcpy(call->body + GRPCFRAME_HDR_LEN, req, len);
    call->body_len = len + GRPCFRAME_HDR_LEN;
    int k = snprintf(url, sizeof(url), "%s%s", c->curl_base, path);
    if (k < 0 || (size_t)k >= sizeof(url) || !call_headers(call, meta, timeout_ms) ||
        call_easy(call, url, timeout_ms) != CURLE_OK ||
        curl_multi_add_handle(c->multi, call->easy) != CURLM_OK)
        goto fail;
    call->in_multi = true;
    c->active++;
    return call;
fail:
    grpc_call_free(call);
    return NULL;
}

bool
grpc_call_done(const struct grpc_call *call)
{
    return call->done;
}

bool
grpc_call_timed_out(const struct grpc_call *call)
{
    return call->done && call->timed_out;
}

bool
grpc_call_cut(const struct grpc_call *call)
{
    return call->done && call->meta.http_status == 200 && !call->meta.has_status &&
           call->cb_rc == RC_OK;
}

const struct grpc_status *
grpc_call_status(const struct grpc_call *call)
{
    return &call->st;
}

void
grpc_call_take_message(struct grpc_call *call, char **out_p, size_t *out_len)
{
    *out_p = call->kept;
    *out_len = call->kept_len;
    call->kept = NULL;
    call->kept_len = 0;
}

void
grpc_call_free(struct grpc_call *call)
{
    if (call == NULL)
        return;
    struct grpc_client *c = call->client;
    if (call->in_multi) {
        (void)curl_multi_remove_handle(c->multi, call->easy);
        if (!call->done)
            c->active--;
    }
    if (call->easy != NULL) {
        if (c->npool < GRPC_POOL)
            c->pool[c->npool++] = call->easy;
        else
            curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->hdrs);
    free(call->body);
    free(call->kept);
    grpcframe_fini(&call->fr);
    grpcframe_meta_fini(&call->meta);
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    free(call);
}

/* ------------------------------------------------------------------ status */

static void
finish(struct grpc_call *call, CURLcode res)
{
    struct grpc_status *st = &call->st;
    long http = 0;
    (void)curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &http);
    st->message[0] = '\0';
    if (call->cb_rc != RC_OK) {
        st->code = call->cb_rc == RC_TOOBIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "bad response message: %s",
                       call->cb_rc == RC_UNSUPPORTED ? "compressed message" : rc_str(call->cb_rc));
    } else if (call->meta.has_status && (res == CURLE_OK || call->meta.grpc_status != GRPC_OK)) {
        st->code = call->meta.grpc_status;
        (void)snprintf(st->message, sizeof(st->message), "%s", call->meta.message);
        if (st->code == GRPC_OK && !grpcframe_at_boundary(&call->fr)) {
            st->code = GRPC_INTERNAL;
            (void)snprintf(st->message, sizeof(st->message), "truncated response message");
        }
    } else if (res == CURLE_OK) {
        if (http != 200 && http != 0) {
            st->code = grpcframe_code_from_http((int)http);
            (void)snprintf(st->message, sizeof(st->message), "HTTP status %ld", http);
        } else {
            st->code = GRPC_UNKNOWN;
            (void)snprintf(st->message, sizeof(st->message), "response without grpc-status");
        }
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        call->timed_out = true;
        st->code = GRPC_DEADLINE_EXCEEDED;
        (void)snprintf(st->message, sizeof(st->message), "deadline exceeded");
    } else {
        st->code = GRPC_UNAVAILABLE;
        (void)snprintf(st->message, sizeof(st->message), "%s",
                       call->errbuf[0] ? call->errbuf : curl_easy_strerror(res));
    }
    call->done = true;
    call->client->active--;
    (void)curl_multi_remove_handle(call->client->multi, call->easy);
    call->in_multi = false;
}

static void
reap(struct grpc_client *c)
{
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct grpc_call *call = NULL;
        (void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (call != NULL && !call->done)
            finish(call, m->data.result);
    }
}

/* HTTP/2 PINGs on the client's connections that were quiet for keepalive_ms, where libcurl's
 * upkeep reaches a multi handle's connections (it checks each connection's own quiet time; on
 * older libcurl the call is a no-op and the TCP keepalive set in call_easy is what remains). */
static void
upkeep(struct grpc_client *c)
{
    int64_t now = clock_mono_ms();
    if (c->keepalive_ms <= 0 || now - c->last_upkeep < 1000 || !grpc_keepalive_pings())
        return;
    c->last_upkeep = now;
    for (struct grpc_call *call = c->calls; call != NULL; call = call->next) {
        if (call->in_multi) {
            (void)curl_easy_upkeep(call->easy);
            return;
        }
    }
}

enum rc
grpc_client_run(struct grpc_client *c, int timeout_ms)
{
    int running = 0, nfds = 0;
    size_t before = c->active;
    upkeep(c);
    if (curl_multi_perform(c->multi, &running) != CURLM_OK)
        return RC_BACKEND;
    reap(c);
    if (timeout_ms <= 0 || c->active < before)
        return RC_OK;
    if (curl_multi_poll(c->multi, NULL, 0, timeout_ms, &nfds) != CURLM_OK)
        return RC_BACKEND;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK)
        return RC_BACKEND;
    reap(c);
    return RC_OK;
}

/* ------------------------------------------------------------------ unary calls */

/* Run c until call is done, the total deadline passes (returns false) or run fails; tell
 * retry's waiting hook every waiting_ms since t0 (*next_wait: when it is due next). */
static bool
run_until_done(struct grpc_client *c, struct grpc_call *call, int64_t total_deadline_ms,
               const struct grpc_retry *retry, int64_t t0, int64_t *next_wait)
{
    while (!call->done) {
        int wait = 1000;
        if (retry != NULL && retry->waiting != NULL && retry->waiting_ms > 0) {
            int64_t now = clock_mono_ms();
            if (now >= *next_wait) {
                retry->waiting(retry->waiting_ctx, now - t0);
                *next_wait = now + retry->waiting_ms;
            }
            if (*next_wait - now < wait)
                wait = (int)(*next_wait - now);
        }
        if (total_deadline_ms > 0) {
            int64_t left = total_deadline_ms - clock_mono_ms();
            if (left <= 0)
                return false;
            if (left < wait)
                wait = (int)left;
        }
        if (grpc_client_run(c, wait) != RC_OK)
            return false;
    }
    return true;
}

/* The base64-decoded grpc-status-details-bin of a finished call: *out (heap, caller frees) or
 * NULL when absent or undecodable (a hook then sees no details). */
static enum rc
call_details(const struct grpc_call *call, unsigned char **out, size_t *out_len)
{
    const char *b64 = call->meta.details_b64;
    *out = NULL;
    *out_len = 0;
    if (b64 == NULL)
        return RC_OK;
    size_t len = strlen(b64), cap = len / 4 * 3 + 3;
    unsigned char *raw = malloc(cap);
    if (raw == NULL)
        return RC_NOMEM;
    if (jwt_b64url_decode(b64, len, raw, cap, out_len) != RC_OK) {
        free(raw);
        *out_len = 0;
        return RC_OK;
    }
    *out = raw;
    return RC_OK;
}

/* After the failed attempt n of call: the delay before the next attempt, or -1 to give up. */
static int64_t
next_delay(const struct grpc_retry *retry, const struct grpc_call *call, unsigned n, int64_t t0,
           int64_t total_deadline_ms)
{
    struct grpc_attempt a = {n, clock_mono_ms() - t0, -1, &call->st, NULL, 0};
    unsigned char *details = NULL;
    if (retry == NULL || retry->delay == NULL)
        return -1;
    if (total_deadline_ms > 0)
        a.time_left_ms = total_deadline_ms - clock_mono_ms();
    if (call_details(call, &details, &a.details_len) != RC_OK)
        return -1;
    a.details = details;
    int64_t d = retry->delay(retry->ctx, &a);
    free(details);
    if (d < 0 || (a.time_left_ms >= 0 && d >= a.time_left_ms))
        return -1;
    return d;
}

/* Start attempt n of a unary call with the caller's meta plus the retry hook's lines. */
static enum rc
start_attempt(struct grpc_client *c, const char *path, const void *req, size_t len,
              const char *const *meta, const struct grpc_retry *retry, unsigned n, int64_t t0,
              int64_t timeout_ms, struct grpc_call **out)
{
    const char *all[GRPC_META_MAX + GRPC_RETRY_META_MAX + 1];
    size_t k = 0, added = 0;
    *out = NULL;
    while (meta != NULL && meta[k] != NULL && k < GRPC_META_MAX) {
        all[k] = meta[k];
        k++;
    }
    if (retry != NULL && retry->meta != NULL) {
        enum rc rc =
            retry->meta(retry->ctx, n, clock_mono_ms() - t0, all + k, GRPC_RETRY_META_MAX, &added);
        if (rc != RC_OK)
            return rc;
        k += added < GRPC_RETRY_META_MAX ? added : GRPC_RETRY_META_MAX;
    }
    all[k] = NULL;
    *out = grpc_call_start(c, path, req, len, all, timeout_ms, NULL, NULL);
    return *out != NULL ? RC_OK : RC_NOMEM;
}

static void
deadline_exceeded(struct grpc_status *st)
{
    st->code = GRPC_DEADLINE_EXCEEDED;
    (void)snprintf(st->message, sizeof(st->message), "deadline exceeded");
}

enum rc
grpc_unary(struct grpc_client *c, const char *path, const void *req, size_t len,
           const char *const *meta, const struct grpc_retry *retry, int64_t attempt_timeout_ms,
           int64_t total_deadline_ms, char **out_p, size_t *out_len, struct grpc_status *st)
{
    enum rc rc = RC_BACKEND;
    struct grpc_call *call = NULL;
    int64_t t0 = clock_mono_ms();
    int64_t next_wait = retry != NULL ? t0 + retry->waiting_ms : 0;

    *out_p = NULL;
    *out_len = 0;
    memset(st, 0, sizeof(*st));
    for (unsigned n = 0;; n++) {
        int64_t to = attempt_timeout_ms;
        if (total_deadline_ms > 0) {
            int64_t left = total_deadline_ms - clock_mono_ms();
            if (left <= 0) {
                deadline_exceeded(st);
                goto out;
            }
            if (to <= 0 || left < to)
                to = left;
        }
        rc = start_attempt(c, path, req, len, meta, retry, n, t0, to, &call);
        if (rc != RC_OK)
            goto out;
        rc = RC_BACKEND;
        if (!run_until_done(c, call, total_deadline_ms, retry, t0, &next_wait)) {
            deadline_exceeded(st);
            goto out;
        }
        *st = call->st;
        if (st->code == GRPC_OK) {
            grpc_call_take_message(call, out_p, out_len);
            if (*out_p == NULL) {
                /* A unary success must carry one message; an empty one is still one. */
                st->code = GRPC_INTERNAL;
                (void)snprintf(st->message, sizeof(st->message), "no response message");
                goto out;
            }
            rc = RC_OK;
            goto out;
        }
        int64_t d = next_delay(retry, call, n, t0, total_deadline_ms);
        grpc_call_free(call);
        call = NULL;
        if (d < 0)
            goto out;
        log_debug("%s: %s (%s), retrying in %" PRId64 " ms", path, grpcframe_code_name(st->code),
                  st->message, d);
        int64_t until = clock_mono_ms() + d;
        for (int64_t now = clock_mono_ms(); now < until; now = clock_mono_ms())
            if (grpc_client_run(c, (int)(until - now)) != RC_OK)
                break;
    }
out:
    grpc_call_free(call);
    if (rc != RC_OK) {
        free(*out_p);
        *out_p = NULL;
        *out_len = 0;
    }
    return rc;
}
