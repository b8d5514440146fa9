/* grpcframe: gRPC length-prefixed message decoding and status trailer parsing (pure). */
#include "parse/grpcframe.h"

#include <stdlib.h>
#include <string.h>

void
grpcframe_init(struct grpcframe *f, size_t max_msg)
{
    memset(f, 0, sizeof(*f));
    f->max_msg = max_msg ? max_msg : GRPCFRAME_MAX_MSG;
}

void
grpcframe_fini(struct grpcframe *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

void
grpcframe_reset(struct grpcframe *f)
{
    f->hdr_len = 0;
    f->len = 0;
    f->need = 0;
    f->failed = false;
}

bool
grpcframe_at_boundary(const struct grpcframe *f)
{
    return f->hdr_len == 0 && !f->failed;
}

void
grpcframe_header(uint32_t len, unsigned char out[GRPCFRAME_HDR_LEN])
{
    out[0] = 0;
    out[1] = (unsigned char)(len >> 24);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 8);
    out[4] = (unsigned char)len;
}

/* Grow f->buf to hold at least want bytes, geometrically but never past f->need: a hostile
 * length header alone does not make us allocate its size. */
static enum rc
reserve(struct grpcframe *f, size_t want)
{
    if (want <= f->cap)
        return RC_OK;
    size_t ncap = f->cap ? f->cap : 4096;
    while (ncap < want)
        ncap *= 2;
    if (ncap > f->need)
        ncap = f->need;
    char *nb = realloc(f->buf, ncap);
    if (nb == NULL)
        return RC_NOMEM;
    f->buf = nb;
    f->cap = ncap;
    return RC_OK;
}

enum rc
grpcframe_feed(struct grpcframe *f, const char *p, size_t len, grpcframe_msg_fn *fn, void *ctx)
{
    enum rc rc = RC_OK;
    if (f->failed)
        return RC_BADREQ;
    while (len > 0) {
        if (f->hdr_len < GRPCFRAME_HDR_LEN) {
            size_t take = GRPCFRAME_HDR_LEN - f->hdr_len;
            if (take > len)
                take = len;
            memcpy(f->hdr + f->hdr_len, p, take);
            f->hdr_len += take;
            p += take;
            len -= take;
            if (f->hdr_len < GRPCFRAME_HDR_LEN)
                break;
            if (f->hdr[0] == 1) {
                rc = RC_UNSUPPORTED;
                goto out;
            }
            if (f->hdr[0] != 0) {
                rc = RC_BADREQ;
                goto out;
            }
            uint32_t n = ((uint32_t)f->hdr[1] << 24) | ((uint32_t)f->hdr[2] << 16) |
                         ((uint32_t)f->hdr[3] << 8) | (uint32_t)f->hdr[4];
            if ((size_t)n > f->max_msg) {
                rc = RC_TOOBIG;
                goto out;
            }
            f->need = n;
            f->len = 0;
        }
        size_t take = f->need - f->len;
        if (take > len)
            take = len;
        if (take > 0 && f->len == 0 && take == f->need) {
            /* The whole message is in this chunk: no copy. */
            p += take;
            len -= take;
            f->hdr_len = 0;
            rc = fn(ctx, p - take, take);
            if (rc != RC_OK)
                goto out;
            continue;
        }
        if (take > 0) {
            rc = reserve(f, f->len + take);
            if (rc != RC_OK)
                goto out;
            memcpy(f->buf + f->len, p, take);
            f->len += take;
            p += take;
            len -= take;
        }
        if (f->len == f->need) {
            f->hdr_len = 0;
            size_t n = f->len;
            f->len = 0;
            rc = fn(ctx, n ? f->buf : "", n);
            if (rc != RC_OK)
                goto out;
        }
    }
out:
    if (rc != RC_OK)
        f->failed = true;
    return rc;
}

bool
grpcframe_parse_status(struct span v, int *out_code)
{
    size_t i = 0, end = v.len;
    while (i < end && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    while (end > i && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t' || v.p[end - 1] == '\r' ||
                       v.p[end - 1] == '\n'))
        end--;
    if (i == end || end - i > 2)
        return false;
    int code = 0;
    for (; i < end; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        code = code * 10 + (v.p[i] - '0');
    }
    *out_code = code;
    return true;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t
grpcframe_percent_decode(struct span v, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return 0;
    for (size_t i = 0; i < v.len && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '%' && i + 2 < v.len && hexval(v.p[i + 1]) >= 0 && hexval(v.p[i + 2]) >= 0) {
            c = (unsigned char)(hexval(v.p[i + 1]) * 16 + hexval(v.p[i + 2]));
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            c = '?';
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

int
grpcframe_code_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

const char *
grpcframe_code_name(int code)
{
    static const char *const names[GRPC_CODE__MAX] = {
        "OK",                  /* 0 */
        "CANCELLED",           /* 1 */
        "UNKNOWN",             /* 2 */
        "INVALID_ARGUMENT",    /* 3 */
        "DEADLINE_EXCEEDED",   /* 4 */
        "NOT_FOUND",           /* 5 */
        "ALREADY_EXISTS",      /* 6 */
        "PERMISSION_DENIED",   /* 7 */
        "RESOURCE_EXHAUSTED",  /* 8 */
        "FAILED_PRECONDITION", /* 9 */
        "ABORTED",             /* 10 */
        "OUT_OF_RANGE",        /* 11 */
        "UNIMPLEMENTED",       /* 12 */
        "INTERNAL",            /* 13 */
        "UNAVAILABLE",         /* 14 */
        "DATA_LOSS",           /* 15 */
        "UNAUTHENTICATED",     /* 16 */
    };
    return code >= 0 && code < GRPC_CODE__MAX ? names[code] : "UNKNOWN";
}

/* Case-insensitive "name:" match at the start of a header line; *out_v gets the value with
 * leading blanks and the trailing CRLF removed. */
static bool
header_is(const char *line, size_t len, const char *name, struct span *out_v)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    size_t i = n + 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    *out_v = (struct span){line + i, end - i};
    return true;
}

enum rc
grpcframe_meta_line(struct grpcframe_meta *meta, const char *line, size_t len)
{
    struct span v;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        grpcframe_meta_fini(meta);
        size_t i = 5;
        while (i < len && line[i] != ' ')
            i++;
        int st = 0;
        for (i++; i < len && line[i] >= '0' && line[i] <= '9' && st < 1000; i++)
            st = st * 10 + (line[i] - '0');
        meta->http_status = st;
        return RC_OK;
    }
    if (header_is(line, len, "grpc-status", &v)) {
        int code;
        meta->has_status = true;
        meta->grpc_status = grpcframe_parse_status(v, &code) ? code : GRPC_UNKNOWN;
    } else if (header_is(line, len, "grpc-message", &v)) {
        (void)grpcframe_percent_decode(v, meta->message, sizeof(meta->message));
    } else if (header_is(line, len, "content-type", &v)) {
        size_t n = v.len < sizeof(meta->content_type) - 1 ? v.len : sizeof(meta->content_type) - 1;
        memcpy(meta->content_type, v.p, n);
        meta->content_type[n] = '\0';
    } else if (header_is(line, len, "grpc-status-details-bin", &v)) {
        char *d = strndup(v.p, v.len);
        if (d == NULL)
            return RC_NOMEM;
        free(meta->details_b64);
        meta->details_b64 = d;
    }
    return RC_OK;
}

void
grpcframe_meta_fini(struct grpcframe_meta *meta)
{
    if (meta == NULL)
        return;
    free(meta->details_b64);
    memset(meta, 0, sizeof(*meta));
}
