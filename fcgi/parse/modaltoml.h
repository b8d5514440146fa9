/* modaltoml: the ~/.modal.toml profile file, the TOML subset the Modal CLI writes. Pure.
 *
 * Accepted (TOML v1.0.0 subset): blank lines and '#' comments; table headers [name] and
 * ["quoted name"] (one level, no dotted keys, no arrays of tables); bare keys; values that are
 * basic strings "..." (escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX), literal strings '...',
 * true, false, or decimal integers (ignored). Anything else is an error naming the line.
 * Keys outside a table, unknown keys and duplicate tables are tolerated (the CLI never writes
 * them; first table wins).
 */
#ifndef LABBOX_MODALTOML_H
#define LABBOX_MODALTOML_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"

#define MODALTOML_MAX_BYTES (256 * 1024) /* larger files are refused */

struct modaltoml_profile {
    char name[128];                 /* the table name */
    char token_id[256];             /* token_id, "" if absent */
    char token_secret[256];         /* token_secret */
    char server_url[512];           /* server_url */
    char environment[128];          /* environment */
    char image_builder_version[64]; /* image_builder_version */
    bool active;                    /* active = true */
};

/* modaltoml_select parses text (len bytes, need not be NUL-terminated) and copies into *out
 * the profile named want, or, when want is NULL or "", the first table with active = true,
 * else the table named "default" (Python's rule; JS/Go stop before it). *out_found says
 * whether a profile was selected at all (false with RC_OK when no table qualifies).
 * RC_BADREQ with "line N: reason" in err for a syntax error or a value too long for *out;
 * RC_NOTFOUND with a message in err when want names no table; RC_TOOBIG over
 * MODALTOML_MAX_BYTES. Never copies secrets into err. */
enum rc modaltoml_select(const char *text, size_t len, const char *want,
                         struct modaltoml_profile *out, bool *out_found, char *err,
                         size_t errlen) LB_MUST_CHECK;

#endif
