/* fuzz_pschema: agent parameter schemas and params on arbitrary bytes. The input is a schema,
 * then (after the first NUL byte, if any) params. Invariants: no crash; results and texts are
 * exactly as documented (a reason on every refusal, valid UTF-8, NUL-terminated in place);
 * compiling and checking are deterministic; a schema that compiles still compiles from its own
 * re-serialized document; refused params name their first parameter at the start of the
 * detail; with additionalProperties false, accepted params use only declared names. */
#include <string.h>

#include "fuzz.h"
#include "parse/pschema.h"

static void
check_params(const struct pschema *s, const char *p, size_t n)
{
    struct pschema_verdict v, v2;
    enum rc a = pschema_check(s, p, n, &v);
    enum rc b = pschema_check(s, p, n, &v2);
    FUZZ_ASSERT(a == RC_OK || a == RC_BADREQ || a == RC_UNSUPPORTED || a == RC_NOMEM);
    FUZZ_ASSERT(a == b && memcmp(&v, &v2, sizeof(v)) == 0);
    FUZZ_ASSERT(memchr(v.param, '\0', sizeof(v.param)) && memchr(v.detail, '\0', sizeof(v.detail)));
    FUZZ_ASSERT(fuzz_utf8_valid((const unsigned char *)v.detail, strlen(v.detail)));
    for (const char *c = v.param; *c; c++)
        FUZZ_ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f);
    if (a == RC_OK)
        FUZZ_ASSERT(v.param[0] == '\0' && v.detail[0] == '\0');
    if (a == RC_BADREQ)
        FUZZ_ASSERT(v.param[0] == '\0' && strncmp(v.detail, "params must be", 14) == 0);
    if (a == RC_UNSUPPORTED)
        FUZZ_ASSERT(v.param[0] != '\0' && strncmp(v.detail, v.param, strlen(v.param)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t slen = nul ? (size_t)(nul - text) : size;
    char why[PSCHEMA_DETAIL_MAX], why2[PSCHEMA_DETAIL_MAX];
    struct pschema *s = NULL, *s2 = NULL;

    enum rc rc = pschema_compile(text, slen, &s, why, sizeof(why));
    enum rc rc2 = pschema_compile(text, slen, &s2, why2, sizeof(why2));
    FUZZ_ASSERT(rc == RC_OK || rc == RC_BADREQ || rc == RC_NOMEM);
    FUZZ_ASSERT(rc == rc2 && (s == NULL) == (rc != RC_OK));
    pschema_free(s2);
    if (rc == RC_BADREQ) {
        FUZZ_ASSERT(why[0] != '\0' && strlen(why) < sizeof(why) && strcmp(why, why2) == 0);
        FUZZ_ASSERT(fuzz_utf8_valid((const unsigned char *)why, strlen(why)));
    }
    if (rc == RC_OK) {
        size_t n = 0;
        const char *again =
            json_object_to_json_string_length(pschema_doc(s), JSON_C_TO_STRING_PLAIN, &n);
        FUZZ_ASSERT(again != NULL);
        rc2 = pschema_compile(again, n, &s2, why2, sizeof(why2));
        FUZZ_ASSERT(rc2 == RC_OK || rc2 == RC_NOMEM);
        pschema_free(s2);
    }
    if (nul != NULL)
        check_params(s, nul + 1, size - slen - 1); /* s NULL: params checked as an object only */
    pschema_free(s);
    return 0;
}
