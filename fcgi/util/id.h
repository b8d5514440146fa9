/* id: job ids (128 random bits as 26 base32 characters). */
#ifndef LABBOX_ID_H
#define LABBOX_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "rc.h"

/* id_new writes a fresh id (ID_LEN chars + NUL) from getrandom(2). */
enum rc id_new(char out[ID_LEN + 1]) LB_MUST_CHECK;
/* id_encode: the base32 (RFC 4648 alphabet, lower case, no padding) of 16 bytes. Pure. */
void id_encode(const unsigned char raw[16], char out[ID_LEN + 1]);
/* id_is_valid: exactly ID_LEN characters of the alphabet, and a canonical encoding. Pure. */
bool id_is_valid(const char *s, size_t len);

#endif
