/* sha256: a thin wrapper over libcrypto's EVP SHA-256. */
#include "util/sha256.h"

#include <openssl/evp.h>

bool
sha256_init(struct sha256 *c)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    c->ctx = NULL;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return false;
    }
    c->ctx = ctx;
    return true;
}

void
sha256_update(struct sha256 *c, const void *p, size_t len)
{
    if (c->ctx != NULL && len > 0 && EVP_DigestUpdate(c->ctx, p, len) != 1) {
        EVP_MD_CTX_free(c->ctx);
        c->ctx = NULL;
    }
}

void
sha256_hex(struct sha256 *c, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (c->ctx == NULL)
        return;
    if (EVP_DigestFinal_ex(c->ctx, md, &n) == 1 && n == 32) {
        for (unsigned i = 0; i < 32; i++) {
            out[2 * i] = hex[md[i] >> 4];
            out[2 * i + 1] = hex[md[i] & 15];
        }
        out[64] = '\0';
    }
    EVP_MD_CTX_free(c->ctx);
    c->ctx = NULL;
}

void
sha256_discard(struct sha256 *c)
{
    EVP_MD_CTX_free(c->ctx);
    c->ctx = NULL;
}

bool
sha256_digest(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}
