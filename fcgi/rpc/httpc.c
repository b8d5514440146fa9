/* httpc: HTTP/1.1 requests over a unix socket or plain TCP with libcurl (see httpc.h). */
#include "rpc/httpc.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

struct httpc {
    struct httpc_target t;
    CURL *easy;                      /* reused by httpc_do, keeps the connection alive */
    char errbuf[CURL_ERROR_SIZE];    /* curl's detail for the last failure */
    char msg[CURL_ERROR_SIZE + 128]; /* what httpc_error returns */
};

/* One transfer's bookkeeping, shared by the blocking and the streaming paths. */
struct xfer {
    const struct httpc_req *rq;
    CURL *easy;
    long status; /* known once the first body byte or the end arrives */
    char *buf;   /* buffered body */
    size_t len, cap;
    size_t buf_max;   /* cap for the buffered body in this transfer */
    bool sink_2xx;    /* deliver 2xx bodies to rq->write_fn */
    bool truncate;    /* non-2xx bodies: drop the excess instead of failing */
    enum rc cb_rc;    /* a callback's failure */
    size_t delivered; /* bytes handed to write_fn since last reset */
    const char *mem;  /* in-memory request body */
    size_t mem_len, mem_off;
    struct curl_slist *headers;
};

struct httpc_stream {
    struct httpc *h;
    CURLM *multi;
    CURL *easy;
    struct xfer x;
    struct httpc_req rq; /* copy: the caller's may go away */
    bool done;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
};

static bool curl_ready;

static bool
global_init(void)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK)
            return false;
        curl_ready = true;
    }
    return true;
}

/*** Targets ***/

static bool
is_loopback_host(const char *host)
{
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
        return true;
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4)
        return a == 127 && b < 256 && c < 256 && d < 256;
    return false;
}

enum rc
httpc_target_parse(const char *spec, struct httpc_target *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (spec == NULL || spec[0] == '\0') {
        (void)snprintf(err, errlen, "empty address");
        return RC_BADREQ;
    }
    const char *path = NULL;
    if (strncmp(spec, "unix://", 7) == 0)
        path = spec + 7;
    else if (spec[0] == '/')
        path = spec;
    if (path != NULL) {
        size_t n = strlen(path);
        if (n < 2 || path[0] != '/') {
            (void)snprintf(err, errlen, "unix socket path must be absolute: \"%.100s\"", spec);
            return RC_BADREQ;
        }
        if (n >= sizeof(out->unix_path)) {
            (void)snprintf(err, errlen, "unix socket path is longer than %zu bytes",
                           sizeof(out->unix_path) - 1);
            return RC_BADREQ;
        }
        memcpy(out->unix_path, path, n + 1);
        (void)snprintf(out->base, sizeof(out->base), "http://localhost");
        out->is_unix = true;
        out->is_loopback = true;
        return RC_OK;
    }
    const char *hp = NULL;
    if (strncmp(spec, "tcp://", 6) == 0)
        hp = spec + 6;
    else if (strncmp(spec, "http://", 7) == 0)
        hp = spec + 7;
    if (hp == NULL) {
        (void)snprintf(err, errlen,
                       "address must be unix:///path, /path or tcp://host:port, not \"%.100s\"",
                       spec);
        return RC_BADREQ;
    }
    size_t n = strlen(hp);
    while (n > 0 && hp[n - 1] == '/')
        n--;
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (hp[i - 1] == ':') {
            colon = hp + i - 1;
            break;
        }
    if (colon == NULL || colon == hp || (size_t)(colon - hp) >= 256) {
        (void)snprintf(err, errlen, "tcp address needs host:port: \"%.100s\"", spec);
        return RC_BADREQ;
    }
    size_t hlen = (size_t)(colon - hp);
    char host[256];
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++) {
        char ch = host[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' || ch == '[' ||
                  ch == ']';
        if (!ok) {
            (void)snprintf(err, errlen, "bad character in host of \"%.100s\"", spec);
            return RC_BADREQ;
        }
    }
    const char *ps = colon + 1;
    size_t plen = n - hlen - 1;
    unsigned long port = 0;
    if (plen == 0 || plen > 5) {
        (void)snprintf(err, errlen, "bad port in \"%.100s\"", spec);
        return RC_BADREQ;
    }
    for (size_t i = 0; i < plen; i++) {
        if (ps[i] < '0' || ps[i] > '9') {
            (void)snprintf(err, errlen, "bad port in \"%.100s\"", spec);
            return RC_BADREQ;
        }
        port = port * 10 + (unsigned long)(ps[i] - '0');
    }
    if (port == 0 || port > 65535) {
        (void)snprintf(err, errlen, "bad port in \"%.100s\"", spec);
        return RC_BADREQ;
    }
    int k = snprintf(out->base, sizeof(out->base), "http://%s:%lu", host, port);
    if (k < 0 || (size_t)k >= sizeof(out->base)) {
        (void)snprintf(err, errlen, "address too long");
        return RC_BADREQ;
    }
    out->is_unix = false;
    out->is_loopback = is_loopback_host(host);
    return RC_OK;
}

/*** Clients ***/

struct httpc *
httpc_new(const struct httpc_target *target)
{
    if (!global_init())
        return NULL;
    struct httpc *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->t = *target;
    h->easy = curl_easy_init();
    if (h->easy == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void
httpc_free(struct httpc *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->easy);
    free(h);
}

const char *
httpc_error(const struct httpc *h)
{
    return h->msg;
}

void
httpc_resp_fini(struct httpc_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/*** Transfers ***/

static bool
buf_append(struct xfer *x, const char *p, size_t n)
{
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 1024;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *nb = realloc(x->buf, cap);
        if (nb == NULL)
            return false;
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return true;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    if (x->status == 0) {
        long code = 0;
        (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->status = code;
        bool ok = code >= 200 && code < 300;
        x->sink_2xx = ok && x->rq->write_fn != NULL;
        x->truncate = !ok;
        x->buf_max = ok ? x->rq->max_body : HTTPC_ERRBODY_MAX;
    }
    if (x->sink_2xx) {
        enum rc rc = x->rq->write_fn(x->rq->write_ctx, p, n);
        if (rc != RC_OK) {
            x->cb_rc = rc;
            return 0;
        }
        x->delivered += n;
        return n;
    }
    size_t take = n;
    if (x->len + take > x->buf_max) {
        if (!x->truncate) {
            x->cb_rc = RC_TOOBIG;
            return 0;
        }
        take = x->len < x->buf_max ? x->buf_max - x->len : 0;
    }
    if (take > 0 && !buf_append(x, p, take)) {
        x->cb_rc = RC_NOMEM;
        return 0;
    }
    return n;
}

static size_t
on_read(char *buf, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t cap = size * nmemb;
    if (x->rq->read_fn != NULL) {
        size_t got = 0;
        enum rc rc = x->rq->read_fn(x->rq->read_ctx, buf, cap, &got);
        if (rc != RC_OK) {
            x->cb_rc = rc;
            return CURL_READFUNC_ABORT;
        }
        return got;
    }
    size_t left = x->mem_len - x->mem_off;
    size_t take = left < cap ? left : cap;
    memcpy(buf, x->mem + x->mem_off, take);
    x->mem_off += take;
    return take;
}

/* setup prepares easy for rq with x as the callbacks' context. */
static enum rc
setup(const struct httpc *h, CURL *easy, char *errbuf, const struct httpc_req *rq, struct xfer *x)
{
    char url[1400];
    memset(x, 0, sizeof(*x));
    int k = snprintf(url, sizeof(url), "%s%s", h->t.base, rq->path);
    if (k < 0 || (size_t)k >= sizeof(url))
        return RC_TOOBIG;
    x->rq = rq;
    x->easy = easy;
    x->mem = rq->body;
    x->mem_len = rq->body != NULL ? rq->body_len : 0;

    x->headers = curl_slist_append(NULL, "Expect:");
    if (x->headers == NULL)
        return RC_NOMEM;
    if (rq->content_type != NULL) {
        char ct[200];
        k = snprintf(ct, sizeof(ct), "Content-Type: %s", rq->content_type);
        if (k < 0 || (size_t)k >= sizeof(ct))
            return RC_TOOBIG;
        struct curl_slist *nl = curl_slist_append(x->headers, ct);
        if (nl == NULL)
            return RC_NOMEM;
        x->headers = nl;
    }

    bool ok = true;
    errbuf[0] = '\0';
    ok = ok && curl_easy_setopt(easy, CURLOPT_URL, url) == CURLE_OK;
    if (h->t.is_unix)
        ok = ok && curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, h->t.unix_path) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_PROXY, "") == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_WRITEDATA, x) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, rq->timeout_ms) == CURLE_OK;
    ok = ok &&
         curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                          rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 5000L) == CURLE_OK;
    bool has_body = rq->body != NULL || rq->read_fn != NULL;
    curl_off_t blen = rq->read_fn != NULL ? (curl_off_t)rq->read_len : (curl_off_t)x->mem_len;
    if (strcmp(rq->method, "GET") == 0) {
        ok = ok && curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else if (strcmp(rq->method, "HEAD") == 0) {
        ok = ok && curl_easy_setopt(easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else if (strcmp(rq->method, "PUT") == 0) {
        ok = ok && curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) == CURLE_OK;
        ok = ok && curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read) == CURLE_OK;
        ok = ok && curl_easy_setopt(easy, CURLOPT_READDATA, x) == CURLE_OK;
        ok = ok && curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, blen) == CURLE_OK;
    } else {
        /* POST and everything else carry an (often empty) body the POST way. */
        ok = ok && curl_easy_setopt(easy, CURLOPT_POST, 1L) == CURLE_OK;
        ok = ok && curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read) == CURLE_OK;
        ok = ok && curl_easy_setopt(easy, CURLOPT_READDATA, x) == CURLE_OK;
        ok = ok &&
             curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, has_body ? blen : 0) == CURLE_OK;
        if (strcmp(rq->method, "POST") != 0)
            ok = ok && curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, rq->method) == CURLE_OK;
    }
    return ok ? RC_OK : RC_BACKEND;
}

/* finish maps a curl result to an rc and fills out; records the message in h. */
static enum rc
finish(struct httpc *h, CURLcode cc, const char *errbuf, struct xfer *x, struct httpc_resp *out)
{
    enum rc rc = RC_OK;
    long code = 0;
    (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    out->status = code;
    out->body = x->buf;
    out->len = x->len;
    x->buf = NULL;
    if (cc == CURLE_OK) {
        h->msg[0] = '\0';
    } else if (x->cb_rc != RC_OK) {
        rc = x->cb_rc;
        (void)snprintf(h->msg, sizeof(h->msg), "transfer stopped: %s", rc_str(rc));
    } else {
        rc = cc == CURLE_OPERATION_TIMEDOUT ? RC_TIMEOUT : RC_BACKEND;
        (void)snprintf(h->msg, sizeof(h->msg), "%s%s%s", curl_easy_strerror(cc),
                       errbuf[0] ? ": " : "", errbuf);
    }
    return rc;
}

enum rc
httpc_do(struct httpc *h, const struct httpc_req *rq, struct httpc_resp *out)
{
    struct xfer x;
    memset(out, 0, sizeof(*out));
    curl_easy_reset(h->easy);
    enum rc rc = setup(h, h->easy, h->errbuf, rq, &x);
    if (rc != RC_OK) {
        (void)snprintf(h->msg, sizeof(h->msg), "cannot set up the request: %s", rc_str(rc));
        goto out;
    }
    CURLcode cc = curl_easy_perform(h->easy);
    rc = finish(h, cc, h->errbuf, &x, out);
out:
    curl_slist_free_all(x.headers);
    free(x.buf);
    /* The error buffer and header list must not outlive this call in the handle. */
    (void)curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, NULL);
    (void)curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
    return rc;
}

/*** Streams ***/

enum rc
httpc_stream_open(struct httpc *h, const struct httpc_req *rq, struct httpc_stream **out)
{
    enum rc rc = RC_NOMEM;
    *out = NULL;
    struct httpc_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        goto fail;
    st->h = h;
    st->rq = *rq;
    st->multi = curl_multi_init();
    st->easy = curl_easy_init();
    if (st->multi == NULL || st->easy == NULL)
        goto fail;
    rc = setup(h, st->easy, st->errbuf, &st->rq, &st->x);
    if (rc != RC_OK)
        goto fail;
    if (curl_multi_add_handle(st->multi, st->easy) != CURLM_OK) {
        rc = RC_BACKEND;
        goto fail;
    }
    *out = st;
    return RC_OK;
fail:
    (void)snprintf(h->msg, sizeof(h->msg), "cannot start a stream: %s", rc_str(rc));
    httpc_stream_free(st);
    return rc;
}

enum rc
httpc_stream_poll(struct httpc_stream *st, int timeout_ms, bool *out_done)
{
    *out_done = st->done;
    if (st->done)
        return RC_OK;
    int64_t end = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    st->x.delivered = 0;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(st->multi, &running) != CURLM_OK) {
            (void)snprintf(st->h->msg, sizeof(st->h->msg), "curl_multi_perform failed");
            return RC_BACKEND;
        }
        int left = 0;
        CURLMsg *m;
        while ((m = curl_multi_info_read(st->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == st->easy) {
                st->done = true;
                st->result = m->data.result;
            }
        }
        if (st->done || running == 0) {
            st->done = true;
            *out_done = true;
            return RC_OK;
        }
        if (st->x.delivered > 0)
            return RC_OK;
        int64_t rest = end - clock_mono_ms();
        if (rest <= 0)
            return RC_OK;
        if (curl_multi_poll(st->multi, NULL, 0, (int)rest, NULL) != CURLM_OK) {
            (void)snprintf(st->h->msg, sizeof(st->h->msg), "curl_multi_poll failed");
            return RC_BACKEND;
        }
    }
}

enum rc
httpc_stream_result(const struct httpc_stream *st, long *out_status, const char **out_body)
{
    long code = 0;
    (void)curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &code);
    *out_status = code;
    *out_body = st->x.buf != NULL ? st->x.buf : "";
    if (!st->done)
        return RC_BUSY;
    if (st->result == CURLE_OK)
        return RC_OK;
    if (st->x.cb_rc != RC_OK)
        return st->x.cb_rc;
    (void)snprintf(st->h->msg, sizeof(st->h->msg), "%s%s%s", curl_easy_strerror(st->result),
                   st->errbuf[0] ? ": " : "", st->errbuf);
    return RC_BACKEND;
}

void
httpc_stream_free(struct httpc_stream *st)
{
    if (st == NULL)
        return;
    if (st->multi != NULL && st->easy != NULL)
        (void)curl_multi_remove_handle(st->multi, st->easy);
    if (st->easy != NULL)
        curl_easy_cleanup(st->easy);
    if (st->multi != NULL)
        curl_multi_cleanup(st->multi);
    curl_slist_free_all(st->x.headers);
    free(st->x.buf);
    free(st);
}

/*** Helpers ***/

enum rc
httpc_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (o + need + 1 > cap)
            return RC_TOOBIG;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (cap == 0)
        return RC_TOOBIG;
    out[o] = '\0';
    return RC_OK;
}
