/* fuzz_nginxconf: the nginx `user` finder on arbitrary bytes. Invariants: no crash; the answer
 * is found, not found or malformed; a found user is a non-empty NUL-terminated name within its
 * field, anything else leaves both names empty; the same input answers the same twice, and
 * trailing whitespace changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse/nginxconf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char u1[NGINXCONF_NAME_MAX], g1[NGINXCONF_NAME_MAX], u2[NGINXCONF_NAME_MAX],
        g2[NGINXCONF_NAME_MAX];
    const char *text = (const char *)data;
    enum rc a = nginxconf_user(text, size, u1, g1);
    FUZZ_ASSERT(a == RC_OK || a == RC_NOTFOUND || a == RC_BADREQ);
    FUZZ_ASSERT(memchr(u1, '\0', sizeof(u1)) != NULL && memchr(g1, '\0', sizeof(g1)) != NULL);
    if (a == RC_OK)
        FUZZ_ASSERT(u1[0] != '\0');
    else
        FUZZ_ASSERT(u1[0] == '\0' && g1[0] == '\0');
    char *more = malloc(size + 2);
    if (more == NULL)
        return 0;
    if (size > 0)
        memcpy(more, data, size);
    more[size] = '\n';
    more[size + 1] = ' ';
    enum rc b = nginxconf_user(more, size + 2, u2, g2);
    /* A trailing backslash escapes the newline: then the text is another. */
    if (size == 0 || data[size - 1] != '\\')
        FUZZ_ASSERT(a == b && strcmp(u1, u2) == 0 && strcmp(g1, g2) == 0);
    free(more);
    return 0;
}
