/* modaltoml: parse .modal.toml profiles (a small TOML subset) and select one. */
#include "parse/modaltoml.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct cursor {
    const char *p;   /* current line */
    size_t len;      /* its length, without the newline */
    size_t i;        /* position in the line */
    unsigned lineno; /* 1-based */
};

static void
skip_ws(struct cursor *c)
{
    while (c->i < c->len && (c->p[c->i] == ' ' || c->p[c->i] == '\t'))
        c->i++;
}

/* At end of line, allowing a trailing comment. */
static bool
at_eol(struct cursor *c)
{
    skip_ws(c);
    return c->i == c->len || c->p[c->i] == '#';
}

static bool
is_bare(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Append the UTF-8 encoding of cp to out. */
static bool
put_utf8(char *out, size_t cap, size_t *o, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (*o + n >= cap)
        return false;
    memcpy(out + *o, b, n);
    *o += n;
    return true;
}

/* Parse a quoted string at c->i into out (NUL-terminated). *why gets a static reason. */
static bool
parse_string(struct cursor *c, char *out, size_t cap, const char **why)
{
    char q = c->p[c->i++];
    size_t o = 0;
    *why = "unterminated string";
    while (c->i < c->len) {
        char ch = c->p[c->i++];
        if (ch == q) {
            out[o] = '\0';
            return true;
        }
        if ((unsigned char)ch < 0x20 && ch != '\t') {
            *why = "control character in string";
            return false;
        }
        if (ch == '\\' && q == '"') {
            if (c->i >= c->len)
                return false;
            char e = c->p[c->i++];
            uint32_t cp = 0;
            int digits = 0;
            switch (e) {
            case '"':
                ch = '"';
                break;
            case '\\':
                ch = '\\';
                break;
            case 'b':
                ch = '\b';
                break;
            case 't':
                ch = '\t';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'r':
                ch = '\r';
                break;
            case 'u':
                digits = 4;
                break;
            case 'U':
                digits = 8;
                break;
            default:
                *why = "bad escape in string";
                return false;
            }
            if (digits > 0) {
                for (int k = 0; k < digits; k++) {
                    if (c->i >= c->len) {
                        *why = "bad \\u escape in string";
                        return false;
                    }
                    char h = c->p[c->i++];
                    uint32_t v;
                    if (h >= '0' && h <= '9')
                        v = (uint32_t)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        v = (uint32_t)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        v = (uint32_t)(h - 'A' + 10);
                    else {
                        *why = "bad \\u escape in string";
                        return false;
                    }
                    cp = cp * 16 + v;
                }
                if (!put_utf8(out, cap, &o, cp)) {
                    *why = "bad \\u escape or string too long";
                    return false;
                }
                continue;
            }
        }
        if (o + 1 >= cap) {
            *why = "string too long";
            return false;
        }
        out[o++] = ch;
    }
    return false;
}

/* Copy value into dst (cap bytes) or fail with "too long". */
static bool
set_field(char *dst, size_t cap, const char *val)
{
    size_t n = strlen(val);
    if (n >= cap)
        return false;
    memcpy(dst, val, n + 1);
    return true;
}

/* The tables seen so far that selection may pick: the wanted one, the active one, "default". */
struct selection {
    const char *want;
    struct modaltoml_profile cur, pick_want, active, deflt;
    bool in_table, have_want, have_active, have_default;
};

/* The table being read has ended: remember it if selection may pick it. */
static void
close_table(struct selection *sel)
{
    if (!sel->in_table)
        return;
    if (sel->want != NULL && !sel->have_want && strcmp(sel->cur.name, sel->want) == 0) {
        sel->pick_want = sel->cur;
        sel->have_want = true;
    }
    if (sel->cur.active && !sel->have_active) {
        sel->active = sel->cur;
        sel->have_active = true;
    }
    if (!sel->have_default && strcmp(sel->cur.name, "default") == 0) {
        sel->deflt = sel->cur;
        sel->have_default = true;
    }
}

/* A bare or quoted name (a key or a table name) into out; false with *why. */
static bool
parse_name(struct cursor *c, char *out, size_t cap, const char *empty, const char *toolong,
           const char **why)
{
    if (c->i < c->len && (c->p[c->i] == '"' || c->p[c->i] == '\'')) {
        if (c->i + 2 < c->len && c->p[c->i + 1] == c->p[c->i] && c->p[c->i + 2] == c->p[c->i]) {
            *why = "multi-line strings are not supported";
            return false;
        }
        return parse_string(c, out, cap, why);
    }
    size_t s = c->i;
    while (c->i < c->len && is_bare(c->p[c->i]))
        c->i++;
    if (c->i == s || c->i - s >= cap) {
        *why = c->i == s ? empty : toolong;
        return false;
    }
    memcpy(out, c->p + s, c->i - s);
    out[c->i - s] = '\0';
    return true;
}

/* "[name]" at the cursor: starts a new table. */
static bool
parse_header(struct cursor *c, struct modaltoml_profile *cur, const char **why)
{
    c->i++;
    skip_ws(c);
    if (c->i < c->len && c->p[c->i] == '[') {
        *why = "arrays of tables are not supported";
        return false;
    }
    memset(cur, 0, sizeof(*cur));
    if (!parse_name(c, cur->name, sizeof(cur->name), "empty or invalid table name",
                    "table name too long", why))
        return false;
    skip_ws(c);
    if (c->i >= c->len || c->p[c->i] != ']') {
        *why = c->i < c->len && c->p[c->i] == '.' ? "dotted table names are not supported"
                                                  : "expected ']'";
        return false;
    }
    c->i++;
    if (!at_eol(c)) {
        *why = "text after table header";
        return false;
    }
    return true;
}

struct value {
    enum { V_STR, V_BOOL, V_INT } type;
    bool b;
    char s[1024];
};

/* The value after "key =": a one-line string, true, false or an integer. */
static bool
parse_value(struct cursor *c, struct value *v, const char **why)
{
    skip_ws(c);
    if (c->i >= c->len) {
        *why = "missing value";
        return false;
    }
    char q = c->p[c->i];
    v->b = false;
    if (q == '"' || q == '\'') {
        if (c->i + 2 < c->len && c->p[c->i + 1] == q && c->p[c->i + 2] == q) {
            *why = "multi-line strings are not supported";
            return false;
        }
        if (!parse_string(c, v->s, sizeof(v->s), why))
            return false;
        v->type = V_STR;
    } else if (c->len - c->i >= 4 && memcmp(c->p + c->i, "true", 4) == 0) {
        c->i += 4;
        v->b = true;
        v->type = V_BOOL;
    } else if (c->len - c->i >= 5 && memcmp(c->p + c->i, "false", 5) == 0) {
        c->i += 5;
        v->type = V_BOOL;
    } else if ((q >= '0' && q <= '9') || q == '-' || q == '+') {
        c->i++;
        while (c->i < c->len && ((c->p[c->i] >= '0' && c->p[c->i] <= '9') || c->p[c->i] == '_'))
            c->i++;
        v->type = V_INT;
    } else {
        *why = "unsupported value (expected a string, true, false or an integer)";
        return false;
    }
    if (!at_eol(c)) {
        *why = "text after value";
        return false;
    }
    return true;
}

/* Store key = v in the profile being read; keys we do not use are accepted and ignored. */
static bool
apply(struct modaltoml_profile *cur, const char *key, const struct value *v, const char **why)
{
#define FIELD(name)                                                                                \
    {                                                                                              \
#name, offsetof(struct modaltoml_profile, name),                                           \
            sizeof(((struct modaltoml_profile *)0)->name)                                          \
    }
    static const struct {
        const char *key;
        size_t off;
        size_t cap;
    } fields[] = {FIELD(token_id), FIELD(token_secret), FIELD(server_url), FIELD(environment),
                  FIELD(image_builder_version)};
#undef FIELD
    if (strcmp(key, "active") == 0) {
        if (v->type != V_BOOL) {
            *why = "active must be true or false";
            return false;
        }
        cur->active = v->b;
        return true;
    }
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        if (strcmp(key, fields[k].key) != 0)
            continue;
        if (v->type != V_STR) {
            *why = "expected a string value";
            return false;
        }
        if (!set_field((char *)cur + fields[k].off, fields[k].cap, v->s)) {
            *why = "value too long";
            return false;
        }
    }
    return true;
}

/* One non-blank line: a table header or a key = value pair. */
static bool
parse_line(struct cursor *c, struct selection *sel, struct value *v, const char **why)
{
    char key[64];
    if (c->p[c->i] == '[') {
        close_table(sel);
        sel->in_table = parse_header(c, &sel->cur, why);
        return sel->in_table;
    }
    if (!parse_name(c, key, sizeof(key), "expected a key or [table]", "key too long", why))
        return false;
    skip_ws(c);
    if (c->i < c->len && c->p[c->i] == '.') {
        *why = "dotted keys are not supported";
        return false;
    }
    if (c->i >= c->len || c->p[c->i] != '=') {
        *why = "expected '='";
        return false;
    }
    c->i++;
    if (!parse_value(c, v, why))
        return false;
    return !sel->in_table || apply(&sel->cur, key, v, why);
}

/* What selection picks: the wanted profile, else the active one, else "default". */
static enum rc
pick(struct selection *sel, struct modaltoml_profile *out, bool *out_found, char *err,
     size_t errlen)
{
    if (sel->want != NULL) {
        if (!sel->have_want) {
            (void)snprintf(err, errlen, "profile '%.100s' not found", sel->want);
            return RC_NOTFOUND;
        }
        *out = sel->pick_want;
        *out_found = true;
    } else if (sel->have_active) {
        *out = sel->active;
        *out_found = true;
    } else if (sel->have_default) {
        *out = sel->deflt;
        *out_found = true;
    }
    return RC_OK;
}

enum rc
modaltoml_select(const char *text, size_t len, const char *want, struct modaltoml_profile *out,
                 bool *out_found, char *err, size_t errlen)
{
    struct selection selbuf, *sel = &selbuf;
    struct value vbuf, *v = &vbuf;
    struct cursor c = {0};
    const char *why = NULL;
    enum rc rc = RC_OK;

    *out_found = false;
    memset(out, 0, sizeof(*out));
    memset(sel, 0, sizeof(*sel));
    memset(v, 0, sizeof(*v));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len > MODALTOML_MAX_BYTES) {
        (void)snprintf(err, errlen, "file larger than %d bytes", MODALTOML_MAX_BYTES);
        rc = RC_TOOBIG;
        goto out;
    }
    sel->want = want != NULL && want[0] != '\0' ? want : NULL;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        c.p = text + pos;
        c.len = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (c.len > 0 && c.p[c.len - 1] == '\r')
            c.len--;
        c.i = 0;
        c.lineno++;
        pos = nl ? (size_t)(nl - text) + 1 : len;
        if (!at_eol(&c) && !parse_line(&c, sel, v, &why)) {
            (void)snprintf(err, errlen, "line %u: %s", c.lineno, why);
            rc = RC_BADREQ;
            goto out;
        }
    }
    close_table(sel);
    rc = pick(sel, out, out_found, err, errlen);
out:
    if (rc != RC_OK) {
        memset(out, 0, sizeof(*out));
        *out_found = false;
    }
    /* The profiles held secrets: none stays on the stack we give back. */
    explicit_bzero(sel, sizeof(*sel));
    explicit_bzero(v, sizeof(*v));
    return rc;
}
