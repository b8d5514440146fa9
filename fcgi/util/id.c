/* id: random job ids. */
#include "util/id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/sha256.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

void
id_encode(const unsigned char raw[16], char out[ID_LEN + 1])
{
    unsigned buffer = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        buffer = (buffer << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            out[n++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    /* 128 bits = 25 full characters + 3 bits, padded with zero bits. */
    out[n++] = alphabet[(buffer << (5 - bits)) & 31];
    out[n] = '\0';
}

enum rc
id_new(char out[ID_LEN + 1])
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RC_IO;
        got += (size_t)r;
    }
    id_encode(raw, out);
    return RC_OK;
}

enum rc
id_alias(const char *id, char out[ID_LEN + 1])
{
    char msg[64];
    unsigned char md[32];
    int k = snprintf(msg, sizeof(msg), "labbox work dir\n%s", id);
    if (k < 0 || (size_t)k >= sizeof(msg) || !sha256_digest(msg, (size_t)k, md))
        return RC_NOMEM;
    id_encode(md, out); /* the first 16 bytes */
    return RC_OK;
}

bool
id_is_valid(const char *s, size_t len)
{
    if (len != ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (strchr(alphabet, s[i]) == NULL || s[i] == '\0')
            return false;
    /* The last character carries 3 bits and 2 zero pad bits. */
    const char *last = strchr(alphabet, s[ID_LEN - 1]);
    return ((last - alphabet) & 3) == 0;
}
