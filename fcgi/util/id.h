/* id: job ids (128 random bits as 26 base32 characters) and time helpers. */
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

/* now_ms: CLOCK_REALTIME in ms; mono_ms: CLOCK_MONOTONIC in ms. */
int64_t now_ms(void);
int64_t mono_ms(void);
/* time_iso: "2026-11-26T12:00:00.123Z" for ms since the epoch (out >= 25 bytes). */
void time_iso(int64_t ms, char *out, size_t outlen);

#endif
