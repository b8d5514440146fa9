/* jwt: read the "exp" claim of a JSON Web Token without verifying it (RFC 7519 section 4.1.4,
 * compact serialization of RFC 7515 section 7.1). Pure. */
#ifndef LABBOX_JWT_H
#define LABBOX_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"

#define JWT_MAX_PAYLOAD (64 * 1024) /* decoded payload bytes we are willing to parse */

/* jwt_exp: tok (len bytes, not NUL-terminated) must be three '.'-separated parts whose second
 * is base64url (padding optional; the standard alphabet's '+' and '/' are accepted too,
 * deliberately lenient) of a JSON object. *out_exp gets its integer "exp" (seconds since the
 * epoch). RC_BADREQ for a malformed token or payload, or a non-integer exp; RC_NOTFOUND when
 * the payload has no exp; RC_NOMEM. */
enum rc jwt_exp(const char *tok, size_t len, int64_t *out_exp) LB_MUST_CHECK;

/* jwt_b64url_decode: decode in (len bytes, base64url or base64, padding optional) into out
 * (capacity outcap); *out_len gets the decoded length. RC_BADREQ on a bad character or
 * length, RC_TOOBIG if out is too small. */
enum rc jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap,
                          size_t *out_len) LB_MUST_CHECK;

#endif
