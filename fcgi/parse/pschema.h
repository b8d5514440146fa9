/* pschema: an agent's parameter schema (params.schema.json) and the check of a job's params
 * against it. Pure: bytes in, a verdict out; no I/O, no globals.
 *
 * The schema language is the small JSON Schema subset of scripts/agent/params.py (its module
 * comment is the definition; this module gives the same verdicts in the same words):
 *   schema    a JSON object: "type": "object" (required), "properties" (required: name ->
 *             property schema), "additionalProperties" (true, the default: other params pass
 *             unchecked; false: they are errors), and "$schema" "$id" "$comment" "title"
 *             "description" (strings, no effect)
 *   property  a JSON object: "type" (required: string, number, integer, boolean or array),
 *             "items" (arrays only, and required there: exactly {"type": "string"}), "enum" (not
 *             for boolean or array: a non-empty list of distinct valid values), "minimum" and
 *             "maximum" (number and integer: inclusive numeric bounds), "maxLength" (string: a
 *             non-negative integer, counted in code points), "default" (a valid value),
 *             "title" "description" "$comment" (strings, no effect)
 * Anything else is outside the subset and an error. Values: "integer" is a number without a
 * fractional part (3.0 is one), booleans are never numbers, null is never valid, "array" is a
 * list of strings. Both the schema and the params must be strict JSON (RFC 8259, valid UTF-8,
 * no NaN, nesting at most PSCHEMA_DEPTH_MAX); params must be an object.
 */
#ifndef LABBOX_PSCHEMA_H
#define LABBOX_PSCHEMA_H

#include <stddef.h>

#include <json-c/json.h>

#include "defaults.h"
#include "rc.h"

#define PSCHEMA_DEPTH_MAX  64  /* nesting of arrays and objects in a schema or params */
#define PSCHEMA_DETAIL_MAX 768 /* bytes of a verdict's text, NUL included */

struct pschema;

/* pschema_compile: parse text (len bytes, need not be NUL-terminated) as a schema and check
 * that it is in the subset. RC_OK with *out (free it with pschema_free); RC_BADREQ with why
 * (whylen bytes, cut at a character boundary) saying what is wrong in params.py's words (or
 * "not valid JSON: ..."); RC_NOMEM. */
enum rc pschema_compile(const char *text, size_t len, struct pschema **out, char *why,
                        size_t whylen) LB_MUST_CHECK;
/* pschema_free: NULL-safe. */
void pschema_free(struct pschema *s);
/* pschema_doc: the schema document (borrowed until pschema_free). */
json_object *pschema_doc(const struct pschema *s);

/* A check's verdict: what is wrong with params, for the client. */
struct pschema_verdict {
    char param[NAME_MAX_BYTES + 1];  /* the first parameter in error, control characters shown
                                        as '?', cut at a character boundary; "" when params is
                                        not an object */
    char detail[PSCHEMA_DETAIL_MAX]; /* "name: why" per problem in document order, "; "
                                        between (params.py's words); cut at a character
                                        boundary, with "..." */
};

/* pschema_check: parse text (len bytes) as a job's params and check it against s (NULL: no
 * schema, params need only be a JSON object). RC_OK when valid; RC_BADREQ when text is not a
 * strict JSON object (out->detail says why); RC_UNSUPPORTED when a parameter breaks the
 * schema (out says which and why); RC_NOMEM. */
enum rc pschema_check(const struct pschema *s, const char *text, size_t len,
                      struct pschema_verdict *out) LB_MUST_CHECK;

#endif
