/* pschema: params.schema.json in labbox's JSON Schema subset, and the check of a job's params
 * against it, with the verdicts and words of scripts/agent/params.py (see pschema.h).
 *
 * Both documents are first checked as strict JSON by a small validator of our own (json-c
 * alone accepts single-quoted member names, among other things), then parsed by json-c. Texts
 * for people follow Python: json.dumps (ASCII only, ", " between items) for enum values, and
 * params.py's num() (repr for floats) for bounds, so the agent's log and labbox's answer say
 * the same thing.
 */
#include "parse/pschema.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pschema {
    json_object *doc;   /* the schema (owned) */
    json_object *props; /* its properties (borrowed from doc) */
    bool closed;        /* additionalProperties is false */
};

/*** bounded texts ***/

/* A text being built in a caller's buffer: what does not fit is dropped at a character
 * boundary and the text ends in "..." instead. */
struct text {
    char *p;
    size_t room; /* bytes usable for text: the buffer less the NUL and "..." */
    size_t len;
    bool cut;
};

static void
text_init(struct text *t, char *buf, size_t cap)
{
    t->p = buf;
    t->room = cap > 4 ? cap - 4 : 0;
    t->len = 0;
    t->cut = false;
    if (cap > 0)
        buf[0] = '\0';
}

static void
text_add(struct text *t, const char *s, size_t n)
{
    if (t->cut || t->p == NULL)
        return;
    if (n > t->room - t->len) {
        /* Keep whole characters only: step over each one while it fits. */
        size_t fit = t->room - t->len, keep = 0;
        while (keep < fit) {
            unsigned char c = (unsigned char)s[keep];
            size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (keep + k > fit)
                break;
            keep += k;
        }
        n = keep;
        t->cut = true;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    if (t->cut) {
        memcpy(t->p + t->len, "...", 3);
        t->len += 3;
    }
    t->p[t->len] = '\0';
}

static void
text_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

/* text_back: forget everything after len (a failed attempt's words). */
static void
text_back(struct text *t, size_t len, bool cut)
{
    t->len = len;
    t->cut = cut;
    if (t->p != NULL)
        t->p[len] = '\0';
}

/*** strict JSON (RFC 8259) ***/

struct js {
    const unsigned char *p, *end;
};

static bool
js_more(const struct js *j)
{
    return j->p < j->end;
}

static void
js_ws(struct js *j)
{
    while (js_more(j) && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool
js_word(struct js *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool
js_digits(struct js *j)
{
    const unsigned char *start = j->p;
    while (js_more(j) && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start;
}

static bool
js_number(struct js *j)
{
    if (js_more(j) && *j->p == '-')
        j->p++;
    if (js_more(j) && *j->p == '0')
        j->p++;
    else if (!js_more(j) || *j->p < '1' || *j->p > '9' || !js_digits(j))
        return false;
    if (js_more(j) && *j->p == '.') {
        j->p++;
        if (!js_digits(j))
            return false;
    }
    if (js_more(j) && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (js_more(j) && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!js_digits(j))
            return false;
    }
    return true;
}

/* utf8_len: the length of the well-formed UTF-8 sequence at p (RFC 3629, table 3-7 of
 * Unicode: the ranges of each lead byte's second byte), or 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
    static const struct {
        unsigned char lead_lo, lead_hi, lo, hi, n;
    } forms[] = {
        {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
        {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
        if (*p < forms[f].lead_lo || *p > forms[f].lead_hi)
            continue;
        if ((size_t)(end - p) < forms[f].n || p[1] < forms[f].lo || p[1] > forms[f].hi)
            return 0;
        for (size_t k = 2; k < forms[f].n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        return forms[f].n;
    }
    return 0;
}

static bool
js_string(struct js *j)
{
    j->p++; /* the opening quote */
    while (js_more(j)) {
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->end - j->p < 2)
                return false;
            c = j->p[1];
            j->p += 2;
            if (c == 'u') {
                for (int k = 0; k < 4; k++, j->p++)
                    if (!js_more(j) || strchr("0123456789abcdefABCDEF", *j->p) == NULL ||
                        *j->p == '\0')
                        return false;
            } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
                return false;
            }
        } else if (c < 0x80) {
            j->p++;
        } else {
            size_t n = utf8_len(j->p, j->end);
            if (n == 0)
                return false;
            j->p += n;
        }
    }
    return false;
}

static bool js_value(struct js *j, int depth);

/* An object or an array: the opening bracket is at j->p. */
static bool
js_container(struct js *j, int depth, unsigned char close)
{
    if (depth >= PSCHEMA_DEPTH_MAX)
        return false;
    j->p++;
    js_ws(j);
    if (js_more(j) && *j->p == close) {
        j->p++;
        return true;
    }
    for (;;) {
        if (close == '}') {
            js_ws(j);
            if (!js_more(j) || *j->p != '"' || !js_string(j))
                return false;
            js_ws(j);
            if (!js_more(j) || *j->p++ != ':')
                return false;
        }
        if (!js_value(j, depth + 1))
            return false;
        js_ws(j);
        if (!js_more(j))
            return false;
        if (*j->p == close) {
            j->p++;
            return true;
        }
        if (*j->p++ != ',')
            return false;
    }
}

static bool
js_value(struct js *j, int depth)
{
    js_ws(j);
    if (!js_more(j))
        return false;
    switch (*j->p) {
    case '{':
        return js_container(j, depth, '}');
    case '[':
        return js_container(j, depth, ']');
    case '"':
        return js_string(j);
    case 't':
        return js_word(j, "true");
    case 'f':
        return js_word(j, "false");
    case 'n':
        return js_word(j, "null");
    default:
        return js_number(j);
    }
}

/* parse: text as one strict JSON document into *out (caller puts). RC_BADREQ (why: where it
 * stops being JSON), RC_NOMEM. */
static enum rc
parse(const char *text, size_t len, json_object **out, struct text *why)
{
    struct js j = {(const unsigned char *)text, (const unsigned char *)text + len};
    char at[64] = "";
    *out = NULL;
    bool ok = js_value(&j, 0);
    js_ws(&j);
    if (!ok || js_more(&j)) {
        (void)snprintf(at, sizeof(at), "not valid JSON (at byte %zu)",
                       (size_t)(j.p - (const unsigned char *)text));
        text_str(why, at);
        return RC_BADREQ;
    }
    json_tokener *tok = json_tokener_new_ex(PSCHEMA_DEPTH_MAX + 2);
    if (tok == NULL)
        return RC_NOMEM;
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1); /* a bare number ends at the NUL */
    enum json_tokener_error err = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success) {
        /* Valid JSON that json-c did not make (null alone is a NULL object): memory. */
        json_object_put(o);
        return RC_NOMEM;
    }
    *out = o;
    return RC_OK;
}

/*** Python's texts ***/

/* repr of a float, as Python writes it: the shortest digits that read back the same, fixed
 * notation for exponents -4 to 15 (with ".0" when whole), else d.ddde+XX. */
static void
text_repr(struct text *t, double x)
{
    char buf[48], digits[24] = "0", out[64] = "";
    size_t nd = 0, n = 0;
    if (isnan(x) || isinf(x)) {
        text_str(t, isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(buf, sizeof(buf), "%.*e", prec - 1, x); /* fits: 48 > 25 */
        if (strtod(buf, NULL) == x)
            break;
    }
    const char *p = buf[0] == '-' ? buf + 1 : buf;
    for (; *p != '\0' && *p != 'e' && nd < sizeof(digits); p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    nd = nd > 0 ? nd : 1;
    int decpt = exp + 1; /* x = 0.DIGITS * 10^decpt */
    if (buf[0] == '-')
        out[n++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int k = 0; k < -decpt; k++)
                out[n++] = '0';
            memcpy(out + n, digits, nd);
            n += nd;
        } else {
            for (int k = 0; k < decpt || k < (int)nd; k++) {
                if (k == decpt)
                    out[n++] = '.';
                out[n++] = (char)(k < (int)nd ? digits[k] : '0');
            }
            if (decpt >= (int)nd) {
                out[n++] = '.';
                out[n++] = '0';
            }
        }
        text_add(t, out, n);
        return;
    }
    out[n++] = digits[0];
    if (nd > 1) {
        out[n++] = '.';
        memcpy(out + n, digits + 1, nd - 1);
        n += nd - 1;
    }
    int k = snprintf(out + n, sizeof(out) - n, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    text_add(t, out, n + (k > 0 ? (size_t)k : 0));
}

/* An integer as JSON has it (json-c keeps integers above INT64_MAX as unsigned). */
static void
text_int(struct text *t, json_object *v)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &n);
    if (s != NULL)
        text_add(t, s, n);
}

/* params.py's num(): whole numbers below 1e15 without a fraction, other floats by repr. */
static void
text_num(struct text *t, json_object *v)
{
    double d = json_object_get_double(v);
    char buf[32] = "";
    if (json_object_is_type(v, json_type_int)) {
        text_int(t, v);
    } else if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
        (void)snprintf(buf, sizeof(buf), "%lld", (long long)d); /* fits */
        text_str(t, buf);
    } else {
        text_repr(t, d);
    }
}

/* Python's json.dumps of a string: ASCII only, \uXXXX (surrogate pairs above U+FFFF). */
static void
text_json_string(struct text *t, const char *s, size_t n)
{
    char esc[16] = "";
    text_add(t, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *short_esc = c == '"'    ? "\\\""
                                : c == '\\' ? "\\\\"
                                : c == '\n' ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                            : NULL;
        if (short_esc != NULL || (c >= 0x20 && c < 0x7f)) {
            text_add(t, short_esc ? short_esc : s + i, short_esc ? strlen(short_esc) : 1);
            i++;
            continue;
        }
        /* Decoded leniently: json-c writes a lone surrogate escape as its 3-byte form. */
        size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        uint32_t cp = k == 1 ? c : c & (0x7fu >> k);
        for (size_t m = 1; m < k; m++)
            cp = (cp << 6) | (i + m < n ? (unsigned char)s[i + m] & 0x3fu : 0);
        if (cp >= 0x10000)
            (void)snprintf(esc, sizeof(esc), "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                           0xdc00 + ((cp - 0x10000) & 0x3ff));
        else
            (void)snprintf(esc, sizeof(esc), "\\u%04x", cp);
        text_str(t, esc);
        i += k;
    }
    text_add(t, "\"", 1);
}

/* Python's json.dumps(v) (default separators, keys in document order). */
static void
text_json(struct text *t, json_object *v)
{
    size_t i = 0;
    switch (json_object_get_type(v)) {
    case json_type_null:
        text_str(t, "null");
        break;
    case json_type_boolean:
        text_str(t, json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int:
        text_int(t, v);
        break;
    case json_type_double:
        text_repr(t, json_object_get_double(v));
        break;
    case json_type_string:
        text_json_string(t, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_array:
        text_add(t, "[", 1);
        for (i = 0; i < json_object_array_length(v); i++) {
            if (i > 0)
                text_add(t, ", ", 2);
            text_json(t, json_object_array_get_idx(v, i));
        }
        text_add(t, "]", 1);
        break;
    case json_type_object: {
        text_add(t, "{", 1);
        json_object_object_foreach(v, key, val)
        {
            if (i++ > 0)
                text_add(t, ", ", 2);
            text_json_string(t, key, strlen(key));
            text_add(t, ": ", 2);
            text_json(t, val);
        }
        text_add(t, "}", 1);
        break;
    }
    }
}

/*** values ***/

static bool
is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* A number's exact value (json-c keeps integers above INT64_MAX as unsigned). */
static long double
num_value(json_object *v)
{
    if (!json_object_is_type(v, json_type_int))
        return json_object_get_double(v);
    int64_t i = json_object_get_int64(v);
    return i == INT64_MAX ? (long double)json_object_get_uint64(v) : (long double)i;
}

static bool
is_type(json_object *prop, const char *type)
{
    const char *t = NULL;
    json_object *v = NULL;
    if (json_object_object_get_ex(prop, "type", &v) && json_object_is_type(v, json_type_string))
        t = json_object_get_string(v);
    return t != NULL && strcmp(t, type) == 0;
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Python's ==, for values of an enum's types: strings by content, numbers by value. */
static bool
same_value(json_object *a, json_object *b)
{
    if (json_object_is_type(a, json_type_string) && json_object_is_type(b, json_type_string))
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    return is_number(a) && is_number(b) && num_value(a) == num_value(b);
}

static size_t
code_points(json_object *s)
{
    const char *p = json_object_get_string(s);
    size_t n = 0, len = (size_t)json_object_get_string_len(s);
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)p[i] & 0xc0) != 0x80;
    return n;
}

static bool
is_string_list(json_object *v)
{
    if (!json_object_is_type(v, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(v); i++)
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
            return false;
    return true;
}

static bool
fail(struct text *why, const char *s)
{
    text_str(why, s);
    return false;
}

/* The bounds of a number property, in params.py's words. */
static bool
range_ok(json_object *prop, json_object *v, struct text *why)
{
    json_object *lo = member(prop, "minimum"), *hi = member(prop, "maximum");
    long double x = num_value(v);
    if ((lo == NULL || x >= num_value(lo)) && (hi == NULL || x <= num_value(hi)))
        return true;
    if (lo != NULL && hi != NULL) {
        text_str(why, "must be from ");
        text_num(why, lo);
        text_str(why, " to ");
        text_num(why, hi);
    } else {
        text_str(why, lo != NULL ? "must be at least " : "must be at most ");
        text_num(why, lo != NULL ? lo : hi);
    }
    return false;
}

/* value_ok: is v valid for prop (a property of a checked schema)? Else why says why (params.py's
 * value_error). with_enum false leaves the enum out (checking the enum's own values). */
static bool
value_ok(json_object *prop, json_object *v, bool with_enum, struct text *why)
{
    bool integer = is_type(prop, "integer");
    if (is_type(prop, "string") && !json_object_is_type(v, json_type_string))
        return fail(why, "must be a string");
    if (is_type(prop, "boolean") && !json_object_is_type(v, json_type_boolean))
        return fail(why, "must be true or false");
    if (is_type(prop, "array") && !is_string_list(v))
        return fail(why, "must be a list of strings");
    if (integer || is_type(prop, "number")) {
        if (!is_number(v) || !isfinite(json_object_get_double(v)))
            return fail(why, integer ? "must be an integer" : "must be a number");
        if (integer && json_object_is_type(v, json_type_double) &&
            json_object_get_double(v) != floor(json_object_get_double(v)))
            return fail(why, "must be an integer");
        if (!range_ok(prop, v, why))
            return false;
    }
    json_object *max = member(prop, "maxLength"), *e = member(prop, "enum");
    if (is_type(prop, "string") && max != NULL && (long double)code_points(v) > num_value(max)) {
        text_str(why, "must be at most ");
        text_int(why, max);
        text_str(why, " characters");
        return false;
    }
    if (!with_enum || e == NULL)
        return true;
    for (size_t i = 0; i < json_object_array_length(e); i++)
        if (same_value(v, json_object_array_get_idx(e, i)))
            return true;
    text_str(why, "must be one of ");
    for (size_t i = 0; i < json_object_array_length(e); i++) {
        if (i > 0)
            text_str(why, ", ");
        text_json(why, json_object_array_get_idx(e, i));
    }
    return false;
}

/*** the schema ***/

static const char *const ROOT_KEYS[] = {"type",    "properties",  "additionalProperties",
                                        "$schema", "$id",         "$comment",
                                        "title",   "description", NULL};
static const char *const ROOT_INFO[] = {"$schema", "$id", "$comment", "title", "description", NULL};
static const char *const PROP_KEYS[] = {"type",        "items",     "enum",    "minimum",
                                        "maximum",     "maxLength", "default", "title",
                                        "description", "$comment",  NULL};
static const char *const PROP_INFO[] = {"title", "description", "$comment", NULL};

static bool
listed(const char *const *list, const char *s)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* params.py's check_keywords: o is an object with only allowed keys, its info keys strings. */
static bool
keywords_ok(json_object *o, const char *const *allowed, const char *const *info, const char *what,
            struct text *why)
{
    if (!json_object_is_type(o, json_type_object)) {
        text_str(why, what);
        return fail(why, " is not a JSON object");
    }
    const char **extra = calloc((size_t)json_object_object_length(o) + 1, sizeof(*extra));
    size_t n = 0;
    if (extra == NULL)
        return fail(why, "out of memory");
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        if (!listed(allowed, key))
            extra[n++] = key;
    }
    qsort(extra, n, sizeof(*extra), cmp_str);
    for (size_t i = 0; i < n; i++) {
        text_str(why, i == 0 ? "keyword(s) outside labbox's subset: " : ", ");
        text_str(why, extra[i]);
    }
    free(extra);
    if (n > 0)
        return false;
    for (; *info != NULL; info++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(o, *info, &v) && !json_object_is_type(v, json_type_string)) {
            text_str(why, "\"");
            text_str(why, *info);
            return fail(why, "\" must be a string");
        }
    }
    return true;
}

/* The enum of a property: a non-empty list of valid, distinct values. */
static bool
enum_ok(json_object *prop, json_object *e, struct text *why)
{
    if (is_type(prop, "boolean") || is_type(prop, "array") ||
        !json_object_is_type(e, json_type_array) || json_object_array_length(e) == 0)
        return fail(why, "\"enum\" is a non-empty list, not for boolean or array");
    size_t n = json_object_array_length(e);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(e, i);
        size_t at = why->len;
        text_str(why, "enum value ");
        text_json(why, v);
        text_str(why, ": ");
        if (!value_ok(prop, v, false, why))
            return false;
        text_back(why, at, false);
    }
    /* Python compares the numbers of the set as floats (float(v)), the strings as text. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            json_object *a = json_object_array_get_idx(e, i), *b = json_object_array_get_idx(e, k);
            bool same = is_number(a) && is_number(b)
                            ? json_object_get_double(a) == json_object_get_double(b)
                            : same_value(a, b);
            if (same)
                return fail(why, "\"enum\" repeats a value");
        }
    }
    return true;
}

/* params.py's check_property. */
static bool
property_ok(json_object *prop, struct text *why)
{
    static const char *const types[] = {"string", "number", "integer", "boolean", "array"};
    bool typed = false, numeric;
    if (!keywords_ok(prop, PROP_KEYS, PROP_INFO, "it", why))
        return false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        typed = typed || is_type(prop, types[i]);
    if (!typed)
        return fail(why, "\"type\" must be one of string, number, integer, boolean, array");
    json_object *items = member(prop, "items"), *v = NULL;
    bool array = is_type(prop, "array"), has_items = json_object_object_get_ex(prop, "items", NULL);
    if (array != has_items ||
        (array && !(json_object_is_type(items, json_type_object) &&
                    json_object_object_length(items) == 1 && is_type(items, "string"))))
        return fail(why, "\"items\" is required for arrays, only for them, and must be {\"type\": "
                         "\"string\"}");
    numeric = is_type(prop, "number") || is_type(prop, "integer");
    if (json_object_object_get_ex(prop, "minimum", &v) && (!numeric || !is_number(v)))
        return fail(why, "\"minimum\" is a number, for number and integer only");
    if (json_object_object_get_ex(prop, "maximum", &v) && (!numeric || !is_number(v)))
        return fail(why, "\"maximum\" is a number, for number and integer only");
    if (json_object_object_get_ex(prop, "maxLength", &v) &&
        (!is_type(prop, "string") || !json_object_is_type(v, json_type_int) ||
         json_object_get_int64(v) < 0))
        return fail(why, "\"maxLength\" is a non-negative integer, for strings only");
    if (json_object_object_get_ex(prop, "enum", &v) && !enum_ok(prop, v, why))
        return false;
    if (json_object_object_get_ex(prop, "default", &v)) {
        size_t at = why->len;
        text_str(why, "default: ");
        if (!value_ok(prop, v, true, why))
            return false;
        text_back(why, at, false);
    }
    return true;
}

/* params.py's check_schema. */
static bool
schema_ok(json_object *doc, struct text *why)
{
    json_object *v = NULL;
    if (!keywords_ok(doc, ROOT_KEYS, ROOT_INFO, "the schema", why))
        return false;
    if (!is_type(doc, "object"))
        return fail(why, "\"type\" must be \"object\"");
    if (json_object_object_get_ex(doc, "additionalProperties", &v) &&
        !json_object_is_type(v, json_type_boolean))
        return fail(why, "\"additionalProperties\" must be true or false");
    json_object *props = member(doc, "properties");
    if (!json_object_is_type(props, json_type_object))
        return fail(why, "\"properties\" must be an object");
    json_object_object_foreach(props, name, prop)
    {
        if (name[0] == '\0')
            return fail(why, "a property has an empty name");
        text_str(why, "property ");
        text_str(why, name);
        text_str(why, ": ");
        if (!property_ok(prop, why))
            return false;
        text_back(why, 0, false);
    }
    return true;
}

enum rc
pschema_compile(const char *text, size_t len, struct pschema **out, char *why, size_t whylen)
{
    struct text t;
    json_object *doc = NULL;
    struct pschema *s = NULL;
    *out = NULL;
    text_init(&t, why, whylen);
    enum rc rc = parse(text, len, &doc, &t);
    if (rc == RC_OK && !schema_ok(doc, &t))
        rc = RC_BADREQ;
    if (rc == RC_OK && (s = calloc(1, sizeof(*s))) == NULL)
        rc = RC_NOMEM;
    if (rc == RC_OK) {
        s->doc = doc;
        s->props = member(doc, "properties");
        json_object *add = member(doc, "additionalProperties");
        s->closed = add != NULL && !json_object_get_boolean(add);
        doc = NULL;
        *out = s;
    }
    json_object_put(doc);
    return rc;
}

void
pschema_free(struct pschema *s)
{
    if (s == NULL)
        return;
    json_object_put(s->doc);
    free(s);
}

json_object *
pschema_doc(const struct pschema *s)
{
    return s->doc;
}

/*** params ***/

/* A client's name for messages: control characters as '?', cut at a character boundary. */
static void
shown_name(const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (n > outlen - 1) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--; /* name[n], the first byte left out, must start a character */
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i]);
    out[n] = '\0';
}

/* One problem of params: "name: why" after the others, and the first name in out->param. */
static void
add_problem(struct pschema_verdict *out, struct text *detail, const char *name, const char *why)
{
    char shown[NAME_MAX_BYTES + 1] = "";
    shown_name(name, shown, sizeof(shown));
    if (out->param[0] == '\0')
        (void)snprintf(out->param, sizeof(out->param), "%s", shown); /* fits */
    if (detail->len > 0)
        text_str(detail, "; ");
    text_str(detail, shown);
    text_str(detail, ": ");
    text_str(detail, why);
}

/* The names of the schema's parameters, ", " between. */
static void
list_params(const struct pschema *s, struct text *t)
{
    size_t i = 0;
    json_object_object_foreach(s->props, name, prop)
    {
        (void)prop;
        if (i++ > 0)
            text_str(t, ", ");
        text_str(t, name);
    }
}

enum rc
pschema_check(const struct pschema *s, const char *text, size_t len, struct pschema_verdict *out)
{
    struct text detail, why;
    char buf[PSCHEMA_DETAIL_MAX] = "";
    json_object *params = NULL;
    memset(out, 0, sizeof(*out));
    text_init(&detail, out->detail, sizeof(out->detail));
    enum rc rc = parse(text, len, &params, &detail);
    if (rc == RC_OK && !json_object_is_type(params, json_type_object)) {
        text_back(&detail, 0, false);
        text_str(&detail, "params must be a JSON object");
        rc = RC_BADREQ;
    } else if (rc == RC_BADREQ) {
        text_back(&detail, 0, false);
        text_str(&detail, "params must be a JSON object: it is not valid JSON");
    }
    if (rc != RC_OK || s == NULL)
        goto out;
    json_object_object_foreach(params, name, v)
    {
        json_object *prop = member(s->props, name);
        text_init(&why, buf, sizeof(buf));
        if (prop == NULL && s->closed) {
            text_str(&why, "not a parameter of this agent (it has: ");
            list_params(s, &why);
            text_str(&why, ")");
            add_problem(out, &detail, name, buf);
        } else if (prop != NULL && !value_ok(prop, v, true, &why)) {
            add_problem(out, &detail, name, buf);
        }
    }
    if (out->param[0] != '\0')
        rc = RC_UNSUPPORTED;
out:
    json_object_put(params);
    return rc;
}
