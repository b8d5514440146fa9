/* test_jwt: the exp claim of JWTs, base64url decoding. */
#include <string.h>

#include "check.h"
#include "parse/jwt.h"

static enum rc
exp_of(const char *tok, int64_t *out)
{
    return jwt_exp(tok, strlen(tok), out);
}

int
main(void)
{
    int64_t e = 0;
    /* {"exp":2000000000} */
    CHECK_INT(exp_of("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjIwMDAwMDAwMDB9.c2ln", &e),
              RC_OK);
    CHECK_INT(e, 2000000000);
    /* Padding allowed; empty signature allowed. {"sub":"x","exp":1700000000} */
    CHECK_INT(exp_of("h.eyJzdWIiOiJ4IiwiZXhwIjoxNzAwMDAwMDAwfQ==.", &e), RC_OK);
    CHECK_INT(e, 1700000000);
    /* URL-safe characters: {"a":"??>","exp":5} has '-'/'_' forms when encoded. */
    CHECK_INT(exp_of("h.eyJhIjoiPz8-IiwiZXhwIjo1fQ.s", &e), RC_OK);
    CHECK_INT(e, 5);
    CHECK_INT(exp_of("h.eyJhIjoiPz8+IiwiZXhwIjo1fQ.s", &e), RC_OK); /* standard alphabet too */
    /* No exp: {"sub":"x"} */
    CHECK_INT(exp_of("h.eyJzdWIiOiJ4In0.s", &e), RC_NOTFOUND);
    /* Non-integer exp: {"exp":"soon"} and {"exp":1.5} */
    CHECK_INT(exp_of("h.eyJleHAiOiJzb29uIn0.s", &e), RC_BADREQ);
    CHECK_INT(exp_of("h.eyJleHAiOjEuNX0.s", &e), RC_BADREQ);
    /* Shape errors. */
    CHECK_INT(exp_of("", &e), RC_BADREQ);
    CHECK_INT(exp_of("onlyone", &e), RC_BADREQ);
    CHECK_INT(exp_of("a.b", &e), RC_BADREQ);
    CHECK_INT(exp_of("a.b.c.d", &e), RC_BADREQ);
    CHECK_INT(exp_of("a..c", &e), RC_BADREQ);
    CHECK_INT(exp_of("h.e!J.s", &e), RC_BADREQ);
    CHECK_INT(exp_of("h.eyJ.s", &e), RC_BADREQ);            /* truncated JSON */
    CHECK_INT(exp_of("h.WzFd.s", &e), RC_BADREQ);           /* [1]: not an object */
    CHECK_INT(exp_of("h.eyJleHAiOjF9eA.s", &e), RC_BADREQ); /* {"exp":1}x: trailing garbage */

    unsigned char out[8];
    size_t n = 0;
    CHECK_INT(jwt_b64url_decode("AQID_w", 6, out, sizeof(out), &n), RC_OK);
    CHECK_MEM(out, n, "\1\2\3\377", 4);
    CHECK_INT(jwt_b64url_decode("A", 1, out, sizeof(out), &n), RC_BADREQ);
    CHECK_INT(jwt_b64url_decode("AAAAAAAAAAAA", 12, out, sizeof(out), &n), RC_TOOBIG);
    return check_done("jwt");
}
