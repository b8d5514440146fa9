/* sha256: incremental SHA-256 for the checksums of uploaded files, on OpenSSL's libcrypto
 * (which uses the CPU's SHA extensions where they exist; a portable C version ran the upload
 * path at a tenth of nginx's speed). */
#ifndef LABBOX_SHA256_H
#define LABBOX_SHA256_H

#include <stdbool.h>
#include <stddef.h>

struct sha256 {
    void *ctx; /* EVP_MD_CTX, owned; NULL after a failed init */
};

/* sha256_init: false when libcrypto cannot allocate a context (then the others are no-ops and
 * sha256_hex writes an empty string). Every init is paired with one sha256_hex. */
bool sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t len);
/* sha256_hex: finish, free the context, and write 64 lowercase hex digits + NUL. */
void sha256_hex(struct sha256 *c, char out[65]);
/* sha256_digest: the 32 raw bytes of SHA-256(p); false when libcrypto cannot allocate. */
bool sha256_digest(const void *p, size_t len, unsigned char out[32]);
/* sha256_discard: free the context of an unfinished hash (NULL-context safe). */
void sha256_discard(struct sha256 *c);

#endif
