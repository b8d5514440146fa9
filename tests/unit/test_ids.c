/* test_ids: job id encoding, validation and uniqueness. */
#include <string.h>

#include "check.h"
#include "util/clock.h"
#include "util/id.h"

int
main(void)
{
    unsigned char zero[16] = {0}, ones[16];
    char out[ID_LEN + 1];
    memset(ones, 0xff, sizeof(ones));
    id_encode(zero, out);
    CHECK_STR(out, "aaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK(id_is_valid(out, strlen(out)));
    id_encode(ones, out);
    CHECK_STR(out, "77777777777777777777777774");
    CHECK(id_is_valid(out, strlen(out)));
    /* The last character carries 3 bits: a non-canonical pad is rejected. */
    CHECK(!id_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaab", ID_LEN));
    CHECK(!id_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaa", ID_LEN - 1));
    CHECK(!id_is_valid("AAAAAAAAAAAAAAAAAAAAAAAAAA", ID_LEN));
    CHECK(!id_is_valid("aaaaaaaaaaaaa/aaaaaaaaaaaa", ID_LEN));
    CHECK(!id_is_valid("aaaaaaaaaaaaa1aaaaaaaaaaaa", ID_LEN));
    char a[ID_LEN + 1], b[ID_LEN + 1];
    CHECK_INT(id_new(a), RC_OK);
    CHECK_INT(id_new(b), RC_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK(id_is_valid(a, strlen(a)));
    char iso[32];
    clock_iso(1795694400123LL, iso, sizeof(iso));
    CHECK_STR(iso, "2026-11-26T12:00:00.123Z");
    return check_done("ids");
}
