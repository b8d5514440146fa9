/* sha256: FIPS 180-4 SHA-256, incremental, for the checksums of uploaded files. Pure. */
#ifndef LABBOX_SHA256_H
#define LABBOX_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];          /* chaining state */
    uint64_t len;           /* bytes fed */
    unsigned char buf[64];  /* partial block */
    size_t nbuf;            /* bytes in buf */
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t len);
/* sha256_hex: finish and write 64 lowercase hex digits + NUL. */
void sha256_hex(struct sha256 *c, char out[65]);

#endif
