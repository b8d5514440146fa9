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
/* id_alias: a name for the job's host-side artifacts (work dir, cgroups) that does not give
 * its id away: those show in mount tables and cgroup paths every local user can read, and the
 * id is the job's only credential. The base32 of the first 16 bytes of a SHA-256 of the id, so
 * it has an id's shape. RC_NOMEM when libcrypto cannot allocate. */
enum rc id_alias(const char *id, char out[ID_LEN + 1]) LB_MUST_CHECK;
/* id_is_valid: exactly ID_LEN characters of the alphabet, and a canonical encoding. Pure. */
bool id_is_valid(const char *s, size_t len);

#endif
