/* request: FCGX params and stdin behind struct req. */
#include "http/request.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

static const char *
param_or(FCGX_Request *fr, const char *name, const char *def)
{
    const char *v = FCGX_GetParam(name, fr->envp);
    return v ? v : def;
}

void
req_init(struct req *r, void *fcgx, unsigned id)
{
    FCGX_Request *fr = fcgx;
    memset(r, 0, sizeof(*r));
    r->fcgx = fcgx;
    r->id = id;
    r->method = param_or(fr, "REQUEST_METHOD", "GET");
    r->head = strcmp(r->method, "HEAD") == 0;
    r->path = param_or(fr, "DOCUMENT_URI", param_or(fr, "SCRIPT_NAME", "/"));
    r->query = param_or(fr, "QUERY_STRING", "");
    r->content_type = param_or(fr, "CONTENT_TYPE", "");
    r->remote_user = FCGX_GetParam("REMOTE_USER", fr->envp);
    r->remote_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp);
    r->forwarded_for = FCGX_GetParam("HTTP_X_FORWARDED_FOR", fr->envp);
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
    if (cl != NULL && cl[0] != '\0') {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && *end == '\0') {
            r->content_length = n;
            r->has_length = true;
        }
    }
}

const char *
req_param(const struct req *r, const char *name)
{
    if (r->detached)
        return NULL;
    return FCGX_GetParam(name, ((FCGX_Request *)r->fcgx)->envp);
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

enum rc
req_query(const struct req *r, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = r->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) >= kl && strncmp(p, key, kl) == 0 &&
            (p[kl] == '=' || p + kl == end)) {
            const char *v = p[kl] == '=' ? p + kl + 1 : end;
            size_t n = 0;
            while (v < end) {
                int c = (unsigned char)*v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && end - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    c = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 2;
                }
                if (n + 1 >= outlen)
                    return RC_TOOBIG;
                out[n++] = (char)c;
                v++;
            }
            out[n] = '\0';
            return RC_OK;
        }
        p = amp ? amp + 1 : end;
    }
    return RC_NOTFOUND;
}

ssize_t
req_read(struct req *r, char *buf, size_t len)
{
    FCGX_Request *fr = r->fcgx;
    if (r->detached)
        return -1;
    int n = FCGX_GetStr(buf, len > 1 << 20 ? 1 << 20 : (int)len, fr->in);
    if (n < 0)
        return -1;
    if (n == 0 && FCGX_GetError(fr->in) != 0)
        return -1;
    return n;
}
