/* fuzz_netaddr: "peer\nx-forwarded-for\ntrusted_proxies" on arbitrary bytes.
 * Invariants: no crash; a trusted list either parses or fails with a message naming the bad
 * entry; an accepted address's key parses back to the same key; the client found is the peer
 * itself, or, only when the peer is trusted, the address of one X-Forwarded-For entry. */
#include <string.h>

#include "fuzz.h"
#include "util/netaddr.h"

/* key of the address text s (NUL-terminated); false when it is not one. */
static bool
key_of(const char *s, size_t len, char key[NETADDR_KEY_MAX])
{
    struct netaddr a;
    if (!netaddr_parse(s, len, &a))
        return false;
    netaddr_key(&a, key);
    return true;
}

/* Does an entry of xff (comma separated, spaces trimmed) have the key want? */
static bool
xff_has(const char *xff, const char *want)
{
    const char *p = xff;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *b = p;
        while (len > 0 && (*b == ' ' || *b == '\t')) {
            b++;
            len--;
        }
        while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t'))
            len--;
        char key[NETADDR_KEY_MAX];
        if (key_of(b, len, key) && strcmp(key, want) == 0)
            return true;
        if (e == NULL)
            return false;
        p = e + 1;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *field[3] = {NULL, NULL, NULL};
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    field[0] = buf;
    for (int i = 1; i < 3; i++) {
        char *nl = field[i - 1] ? strchr(field[i - 1], '\n') : NULL;
        if (nl != NULL) {
            *nl = '\0';
            field[i] = nl + 1;
        }
    }
    const char *peer = field[0], *xff = field[1], *list = field[2] ? field[2] : "";
    struct netaddr_net *nets = NULL;
    size_t n = 0;
    char err[256] = "";
    enum rc rc = netaddr_parse_nets(list, &nets, &n, err, sizeof(err));
    FUZZ_ASSERT(rc == RC_OK || rc == RC_BADREQ || rc == RC_NOMEM);
    FUZZ_ASSERT(rc != RC_BADREQ || (nets == NULL && strstr(err, "is not an address") != NULL));
    FUZZ_ASSERT(n <= strlen(list));

    char pkey[NETADDR_KEY_MAX], again[NETADDR_KEY_MAX];
    bool peer_ok = key_of(peer, strlen(peer), pkey);
    if (peer_ok) {
        /* The key is an address (IPv6 with "/64" after it) that keys to itself. */
        size_t kl = strlen(pkey);
        bool v6 = kl > 3 && strcmp(pkey + kl - 3, "/64") == 0;
        FUZZ_ASSERT(key_of(pkey, v6 ? kl - 3 : kl, again) && strcmp(again, pkey) == 0);
    }
    struct netaddr got, p;
    enum rc crc = netaddr_client(peer, xff, nets, n, &got);
    FUZZ_ASSERT((crc == RC_OK) == peer_ok);
    if (crc == RC_OK) {
        char gkey[NETADDR_KEY_MAX];
        netaddr_key(&got, gkey);
        FUZZ_ASSERT(netaddr_parse(peer, strlen(peer), &p));
        bool trusted = netaddr_in_nets(&p, nets, n);
        FUZZ_ASSERT(strcmp(gkey, pkey) == 0 || (trusted && xff != NULL && xff_has(xff, gkey)));
    }
    free(nets);
    free(buf);
    return 0;
}
