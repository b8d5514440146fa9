/* fuzz_modaltoml: the .modal.toml subset parser on arbitrary bytes, with and without a wanted
 * profile. Invariants: no crash; an error names a line and leaves the profile empty and not
 * found; a found profile's strings are NUL-terminated within their fields; the same input
 * gives the same answer twice; a wanted profile that is found has the wanted name. */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "parse/modaltoml.h"

static bool
terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct modaltoml_profile a, b;
    bool fa = false, fb = false;
    char err[256], err2[256];
    /* Byte 0 picks the wanted profile: none, "default", "dev". */
    static const char *const wants[] = {NULL, "default", "dev"};
    const char *want = size > 0 ? wants[data[0] % 3] : NULL;
    const char *text = size > 0 ? (const char *)data + 1 : "";
    size_t len = size > 0 ? size - 1 : 0;

    enum rc ra = modaltoml_select(text, len, want, &a, &fa, err, sizeof(err));
    enum rc rb = modaltoml_select(text, len, want, &b, &fb, err2, sizeof(err2));
    FUZZ_ASSERT(ra == rb && fa == fb && memcmp(&a, &b, sizeof(a)) == 0);
    FUZZ_ASSERT(ra == RC_OK || ra == RC_BADREQ || ra == RC_NOTFOUND || ra == RC_TOOBIG);
    if (ra != RC_OK) {
        static const struct modaltoml_profile zero;
        FUZZ_ASSERT(!fa && memcmp(&a, &zero, sizeof(a)) == 0);
        FUZZ_ASSERT(err[0] != '\0' && strcmp(err, err2) == 0);
        return 0;
    }
    FUZZ_ASSERT(terminated(a.name, sizeof(a.name)) && terminated(a.token_id, sizeof(a.token_id)) &&
                terminated(a.token_secret, sizeof(a.token_secret)) &&
                terminated(a.server_url, sizeof(a.server_url)) &&
                terminated(a.environment, sizeof(a.environment)) &&
                terminated(a.image_builder_version, sizeof(a.image_builder_version)));
    if (want != NULL)
        FUZZ_ASSERT(fa && strcmp(a.name, want) == 0);
    return 0;
}
