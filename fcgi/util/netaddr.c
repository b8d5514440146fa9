/* netaddr: address parsing, CIDR matching, X-Forwarded-For walking and identity keys. */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TEXT_MAX 64 /* longer than any address text (INET6_ADDRSTRLEN is 46) */

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool
is_digits(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The address text without brackets and port: [b, b + n). */
static bool
strip_port(const char *s, size_t len, const char **b, size_t *n)
{
    const char *colon = memchr(s, ':', len);
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return false;
        size_t rest = len - (size_t)(close - s) - 1;
        if (rest > 0 && (close[1] != ':' || !is_digits(close + 2, rest - 1, 5)))
            return false;
        *b = s + 1;
        *n = (size_t)(close - s) - 1;
        return true;
    }
    *b = s;
    *n = len;
    /* a.b.c.d:port: one colon after a dotted quad (an IPv6 address has two or more). */
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
        if (!is_digits(colon + 1, len - (size_t)(colon - s) - 1, 5))
            return false;
        *n = (size_t)(colon - s);
    }
    return true;
}

static bool
parse_plain(const char *s, size_t len, struct netaddr *out)
{
    char text[TEXT_MAX];
    if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->bytes) != 1)
        return false;
    out->family = AF_INET6;
    if (memcmp(out->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = AF_INET;
    }
    return true;
}

bool
netaddr_parse(const char *s, size_t len, struct netaddr *out)
{
    const char *b = NULL;
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    return strip_port(s, len, &b, &n) && parse_plain(b, n, out);
}

/* One entry of a trusted_proxies list: an address, or address/prefix. */
static bool
parse_net(const char *s, size_t len, struct netaddr_net *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    bool mapped = alen > 7 && strncasecmp(s, "::ffff:", 7) == 0;
    if (!parse_plain(s, alen, &out->addr))
        return false;
    unsigned bits = out->addr.family == AF_INET ? 32 : 128;
    out->prefix = bits;
    if (slash == NULL)
        return true;
    size_t plen = len - alen - 1;
    if (!is_digits(slash + 1, plen, 3))
        return false;
    unsigned p = (unsigned)strtoul(slash + 1, NULL, 10);
    if (mapped) { /* ::ffff:a.b.c.d/N is the IPv4 net a.b.c.d/(N - 96) */
        if (p < 96 || p > 128)
            return false;
        p -= 96;
    }
    if (p > bits)
        return false;
    out->prefix = p;
    return true;
}

enum rc
netaddr_parse_nets(const char *list, struct netaddr_net **out, size_t *out_n, char *err,
                   size_t errlen)
{
    struct netaddr_net *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = list;
    enum rc rc = RC_OK;
    *out = NULL;
    *out_n = 0;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        const char *b = p;
        while (*p != '\0' && *p != ' ' && *p != ',' && *p != '\t')
            p++;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            struct netaddr_net *nv = realloc(v, nc * sizeof(*v));
            if (nv == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        if (!parse_net(b, (size_t)(p - b), &v[n])) {
            (void)snprintf(err, errlen, "'%.*s' is not an address or a CIDR such as 10.0.0.0/8",
                           (int)(p - b > 64 ? 64 : p - b), b);
            rc = RC_BADREQ;
            goto out;
        }
        n++;
    }
    *out = v;
    *out_n = n;
    v = NULL;
out:
    free(v);
    return rc;
}

static bool
in_net(const struct netaddr *a, const struct netaddr_net *net)
{
    if (a->family != net->addr.family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(a->bytes, net->addr.bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a->bytes[full] & mask) == (net->addr.bytes[full] & mask);
}

bool
netaddr_in_nets(const struct netaddr *a, const struct netaddr_net *nets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in_net(a, &nets[i]))
            return true;
    return false;
}

enum rc
netaddr_client(const char *peer, const char *xff, const struct netaddr_net *trusted,
               size_t ntrusted, struct netaddr *out)
{
    struct netaddr cur;
    if (peer == NULL || !netaddr_parse(peer, strlen(peer), &cur))
        return RC_BADREQ;
    if (xff != NULL && netaddr_in_nets(&cur, trusted, ntrusted)) {
        const char *end = xff + strlen(xff);
        for (int hop = 0; hop < NETADDR_XFF_MAX && end > xff; hop++) {
            const char *b = end;
            while (b > xff && b[-1] != ',')
                b--;
            const char *tb = b, *te = end;
            while (tb < te && (*tb == ' ' || *tb == '\t'))
                tb++;
            while (te > tb && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            struct netaddr a;
            if (!netaddr_parse(tb, (size_t)(te - tb), &a))
                break; /* garbled: the last good hop stands */
            cur = a;
            if (!netaddr_in_nets(&cur, trusted, ntrusted))
                break;
            end = b > xff ? b - 1 : xff;
        }
    }
    *out = cur;
    return RC_OK;
}

void
netaddr_key(const struct netaddr *a, char out[NETADDR_KEY_MAX])
{
    char text[INET6_ADDRSTRLEN] = "";
    if (a->family == AF_INET) {
        (void)inet_ntop(AF_INET, a->bytes, text, sizeof(text));
        (void)snprintf(out, NETADDR_KEY_MAX, "%s", text); /* fits: at most 15 bytes */
        return;
    }
    unsigned char net[16] = {0};
    memcpy(net, a->bytes, 8);
    (void)inet_ntop(AF_INET6, net, text, sizeof(text));
    (void)snprintf(out, NETADDR_KEY_MAX, "%s/64", text); /* fits: at most 45 + 3 bytes */
}
