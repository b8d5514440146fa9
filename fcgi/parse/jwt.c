/* jwt: the exp claim of a JWT, read without verification. */
#include "parse/jwt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static int
b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

enum rc
jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap, size_t *out_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    *out_len = 0;
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return RC_BADREQ;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return RC_BADREQ;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return RC_TOOBIG;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out_len = o;
    return RC_OK;
}

enum rc
jwt_exp(const char *tok, size_t len, int64_t *out_exp)
{
    enum rc rc = RC_BADREQ;
    unsigned char *buf = NULL;
    json_object *obj = NULL;
    json_tokener *tk = NULL;
    const char *d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        goto out;
    const char *pay = d1 + 1;
    const char *d2 = memchr(pay, '.', len - (size_t)(pay - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        goto out;
    size_t plen = (size_t)(d2 - pay);
    if (plen == 0 || plen / 4 * 3 + 3 > JWT_MAX_PAYLOAD) {
        rc = plen == 0 ? RC_BADREQ : RC_TOOBIG;
        goto out;
    }
    buf = malloc(plen / 4 * 3 + 3);
    if (buf == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    size_t n;
    rc = jwt_b64url_decode(pay, plen, buf, plen / 4 * 3 + 3, &n);
    if (rc != RC_OK)
        goto out;
    rc = RC_BADREQ;
    tk = json_tokener_new();
    if (tk == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    obj = json_tokener_parse_ex(tk, (const char *)buf, (int)n);
    if (obj == NULL || json_tokener_get_error(tk) != json_tokener_success ||
        json_tokener_get_parse_end(tk) != n || !json_object_is_type(obj, json_type_object))
        goto out;
    json_object *e;
    if (!json_object_object_get_ex(obj, "exp", &e)) {
        rc = RC_NOTFOUND;
        goto out;
    }
    if (!json_object_is_type(e, json_type_int))
        goto out;
    *out_exp = json_object_get_int64(e);
    rc = RC_OK;
out:
    json_object_put(obj);
    if (tk != NULL)
        json_tokener_free(tk);
    free(buf);
    return rc;
}
