/* test_sha256: FIPS 180-4 test vectors, fed whole and byte by byte, through the wrapper. */
#include <string.h>

#include "check.h"
#include "util/sha256.h"

static void
vec(const char *msg, size_t reps, const char *want)
{
    struct sha256 c;
    char hex[65];
    CHECK(sha256_init(&c));
    for (size_t i = 0; i < reps; i++)
        sha256_update(&c, msg, strlen(msg));
    sha256_hex(&c, hex);
    CHECK_STR(hex, want);
    /* The same, one byte at a time. */
    CHECK(sha256_init(&c));
    for (size_t i = 0; i < reps; i++)
        for (size_t j = 0; j < strlen(msg); j++)
            sha256_update(&c, msg + j, 1);
    sha256_hex(&c, hex);
    CHECK_STR(hex, want);
}

int
main(void)
{
    vec("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    vec("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    vec("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    vec("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    return check_done("sha256");
}
