/* test_netaddr: address and CIDR parsing, X-Forwarded-For behind trusted proxies (and forged
 * or garbled headers), and the identity keys (IPv6 by /64, IPv4-mapped as IPv4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "util/netaddr.h"

/* The key of the client netaddr_client finds, or "error". */
static void
client(const char *peer, const char *xff, const char *trusted, char out[NETADDR_KEY_MAX])
{
    struct netaddr_net *nets = NULL;
    size_t n = 0;
    char err[128];
    struct netaddr a;
    CHECK_INT(netaddr_parse_nets(trusted, &nets, &n, err, sizeof(err)), RC_OK);
    if (netaddr_client(peer, xff, nets, n, &a) == RC_OK)
        netaddr_key(&a, out);
    else
        (void)snprintf(out, NETADDR_KEY_MAX, "error");
    free(nets);
}

static void
test_parse(void)
{
    struct netaddr a;
    char key[NETADDR_KEY_MAX];
    static const struct {
        const char *in, *key;
    } good[] = {
        {"127.0.0.1", "127.0.0.1"},
        {"127.0.0.2:4711", "127.0.0.2"},
        {"::1", "::/64"},
        {"[::1]", "::/64"},
        {"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
        {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
        {"::ffff:192.0.2.7", "192.0.2.7"},
        {"[::ffff:192.0.2.7]:80", "192.0.2.7"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK(netaddr_parse(good[i].in, strlen(good[i].in), &a));
        netaddr_key(&a, key);
        CHECK_STR(key, good[i].key);
    }
    static const char *const bad[] = {
        "",
        "unknown",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4:",
        "1.2.3.4:x",
        "1.2.3.4:123456",
        "[::1",
        "[::1]x",
        "[::1]:",
        "::1:80:",
        "fe80::1%eth0",
        "[1.2.3.4]:80:1",
        " 1.2.3.4",
        "1.2.3.4 ",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (netaddr_parse(bad[i], strlen(bad[i]), &a))
            check_fail(__FILE__, __LINE__, "parse", "accepted \"%s\"", bad[i]);
        check_count++;
    }
    /* A NUL inside the length is not an address either. */
    CHECK(!netaddr_parse("1.2.3.4\0", 8, &a));
}

static void
test_nets(void)
{
    struct netaddr_net *nets = NULL;
    size_t n = 0;
    char err[128] = "";
    struct netaddr a;
    CHECK_INT(netaddr_parse_nets(" 10.0.0.0/8, 192.0.2.1 2001:db8::/32,::ffff:172.16.0.0/108",
                                 &nets, &n, err, sizeof(err)),
              RC_OK);
    REQUIRE_VOID(n == 4);
    static const struct {
        const char *addr;
        bool in;
    } cases[] = {
        {"10.255.1.2", true}, {"11.0.0.1", false},      {"192.0.2.1", true},
        {"192.0.2.2", false}, {"2001:db8:ff::1", true}, {"2001:db9::1", false},
        {"172.31.0.1", true}, {"172.32.0.1", false},    {"::ffff:10.1.1.1", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(netaddr_parse(cases[i].addr, strlen(cases[i].addr), &a));
        if (netaddr_in_nets(&a, nets, n) != cases[i].in)
            check_fail(__FILE__, __LINE__, "in_nets", "%s", cases[i].addr);
        check_count++;
    }
    free(nets);
    CHECK_INT(netaddr_parse_nets("", &nets, &n, err, sizeof(err)), RC_OK);
    CHECK_INT(n, 0);
    free(nets);
    /* Odd prefixes match bit by bit. */
    CHECK_INT(netaddr_parse_nets("192.0.2.128/25 0.0.0.0/0", &nets, &n, err, sizeof(err)), RC_OK);
    CHECK(netaddr_parse("192.0.2.200", 11, &a) && netaddr_in_nets(&a, nets, 1));
    CHECK(netaddr_parse("192.0.2.127", 11, &a) && !netaddr_in_nets(&a, nets, 1));
    CHECK(netaddr_in_nets(&a, nets, 2));
    free(nets);
    static const char *const bad[] = {"10.0.0.0/33",  "10.0.0.0/",         "10.0.0.0/x",
                                      "::/129",       "::ffff:1.2.3.4/95", "10.0.0.0/8/8",
                                      "host.example", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nets = NULL;
        CHECK_INT(netaddr_parse_nets(bad[i], &nets, &n, err, sizeof(err)), RC_BADREQ);
        CHECK(strstr(err, "is not an address") != NULL);
        CHECK(nets == NULL);
    }
}

static void
test_forwarded(void)
{
    char k[NETADDR_KEY_MAX];
    static const struct {
        const char *peer, *xff, *trusted, *want;
    } cases[] = {
        /* No trusted proxies: the header is never believed. */
        {"127.0.0.1", "203.0.113.9", "", "127.0.0.1"},
        /* From an untrusted peer it is not believed either. */
        {"198.51.100.1", "203.0.113.9", "127.0.0.1", "198.51.100.1"},
        /* From a trusted proxy: the rightmost untrusted entry. */
        {"127.0.0.1", "203.0.113.9", "127.0.0.1", "203.0.113.9"},
        /* A client that forges entries to the left gains nothing: the proxy appended its view. */
        {"127.0.0.1", "1.1.1.1, 2.2.2.2, 203.0.113.9", "127.0.0.1", "203.0.113.9"},
        /* A chain of trusted proxies is walked through. */
        {"10.0.0.1", "203.0.113.9,10.0.0.7 , 10.0.0.3", "10.0.0.0/8", "203.0.113.9"},
        /* Every entry trusted: the leftmost. */
        {"10.0.0.1", "10.0.0.9, 10.0.0.3", "10.0.0.0/8", "10.0.0.9"},
        /* Garbage stops the walk at the last good hop. */
        {"10.0.0.1", "203.0.113.9, junk, 10.0.0.3", "10.0.0.0/8", "10.0.0.3"},
        {"10.0.0.1", "", "10.0.0.0/8", "10.0.0.1"},
        {"10.0.0.1", ",,,", "10.0.0.0/8", "10.0.0.1"},
        /* Ports and brackets as some proxies write them; IPv6 by /64. */
        {"::1", "[2001:db8:aa:bb::1]:5000", "::1", "2001:db8:aa:bb::/64"},
        {"127.0.0.1", "198.51.100.4:1234", "127.0.0.0/8", "198.51.100.4"},
        /* No peer address at all. */
        {"", NULL, "", "error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        client(cases[i].peer, cases[i].xff, cases[i].trusted, k);
        CHECK_STR(k, cases[i].want);
    }
    struct netaddr a;
    CHECK_INT(netaddr_client(NULL, NULL, NULL, 0, &a), RC_BADREQ);
    /* A long header is walked at most NETADDR_XFF_MAX hops. */
    char *xff = malloc(200 * 12 + 32);
    REQUIRE_VOID(xff != NULL);
    size_t len = 0;
    len += (size_t)snprintf(xff + len, 200 * 12 + 32 - len, "203.0.113.9");
    for (int i = 0; i < 200; i++)
        len +=
            (size_t)snprintf(xff + len, 200 * 12 + 32 - len, ", 10.0.%d.%d", i / 250, i % 250 + 1);
    client("10.0.0.1", xff, "10.0.0.0/8", k);
    CHECK_STR(k, "10.0.0.137"); /* the 64th from the right: 200 - 64 + 1 */
    free(xff);
}

int
main(void)
{
    test_parse();
    test_nets();
    test_forwarded();
    return check_done("netaddr");
}
