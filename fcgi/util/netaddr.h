/* netaddr: client addresses as identities: CIDR lists (trusted_proxies), the client behind
 * trusted proxies from X-Forwarded-For, and the key an address counts under. Pure: no I/O.
 *
 * X-Forwarded-For is read only when the peer (REMOTE_ADDR) is a trusted proxy: its entries are
 * walked from the right (the nearest hop) and trusted ones skipped; the first untrusted entry is
 * the client. An entry that is not an address ends the walk at the last address known good, so
 * a forged or garbled header never yields more than a client could claim about itself anyway.
 * Keys: an IPv4 address as dotted quad; an IPv6 address as its /64 ("2001:db8:1:2::/64"),
 * because one IPv6 host usually holds a whole /64 and could otherwise take a fresh identity
 * per request; an IPv4-mapped IPv6 address counts as its IPv4 address.
 */
#ifndef LABBOX_NETADDR_H
#define LABBOX_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"

#define NETADDR_KEY_MAX 64 /* an identity key with its NUL ("xxxx:...::/64" fits) */
#define NETADDR_XFF_MAX 64 /* X-Forwarded-For entries looked at, from the right */

struct netaddr {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char bytes[16]; /* network order; IPv4 in the first 4 */
};

struct netaddr_net {
    struct netaddr addr;
    unsigned prefix; /* bits that must match */
};

/* netaddr_parse: one address ("192.0.2.1", "2001:db8::1", "[2001:db8::1]", with an optional
 * ":port" after an IPv4 address or a bracketed IPv6 one) of len bytes. IPv4-mapped IPv6 becomes
 * IPv4. false when it is not an address. */
bool netaddr_parse(const char *s, size_t len, struct netaddr *out);

/* netaddr_parse_nets: a list of addresses and CIDRs separated by spaces or commas ("" = none).
 * *out (caller frees) and *out_n; RC_BADREQ with the bad entry named in err. */
enum rc netaddr_parse_nets(const char *list, struct netaddr_net **out, size_t *out_n, char *err,
                           size_t errlen) LB_MUST_CHECK;

/* netaddr_in_nets: is a inside one of the n nets? */
bool netaddr_in_nets(const struct netaddr *a, const struct netaddr_net *nets, size_t n);

/* netaddr_client: the client's address: peer itself, or when peer is in trusted, the client X-
 * Forwarded-For (xff, may be NULL) names as described above. RC_BADREQ when peer is not an
 * address. */
enum rc netaddr_client(const char *peer, const char *xff, const struct netaddr_net *trusted,
                       size_t ntrusted, struct netaddr *out) LB_MUST_CHECK;

/* netaddr_key: the identity key of a (see above) into out (NETADDR_KEY_MAX bytes). */
void netaddr_key(const struct netaddr *a, char out[NETADDR_KEY_MAX]);

#endif
