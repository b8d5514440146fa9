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

enum rc
modaltoml_select(const char *text, size_t len, const char *want, struct modaltoml_profile *out,
                 bool *out_found, char *err, size_t errlen)
{
    struct modaltoml_profile cur, active, deflt;
    bool in_table = false, have_active = false, have_default = false, have_want = false;
    struct cursor c = {0};
    const char *why = NULL;
    char sval[1024];

    *out_found = false;
    memset(out, 0, sizeof(*out));
    memset(&cur, 0, sizeof(cur));
    memset(&active, 0, sizeof(active));
    memset(&deflt, 0, sizeof(deflt));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len > MODALTOML_MAX_BYTES) {
        (void)snprintf(err, errlen, "file larger than %d bytes", MODALTOML_MAX_BYTES);
        return RC_TOOBIG;
    }
    if (want != NULL && want[0] == '\0')
        want = NULL;

    size_t pos = 0;
    for (;;) {
        /* Finish the previous table when a new one starts or at the end. */
        bool eof = pos >= len;
        const char *nl = eof ? NULL : memchr(text + pos, '\n', len - pos);
        if (!eof) {
            c.p = text + pos;
            c.len = nl ? (size_t)(nl - (text + pos)) : len - pos;
            if (c.len > 0 && c.p[c.len - 1] == '\r')
                c.len--;
            c.i = 0;
            c.lineno++;
            pos = nl ? (size_t)(nl - text) + 1 : len;
            if (at_eol(&c))
                continue;
        }
        if (eof || c.p[c.i] == '[') {
            if (in_table) {
                if (want != NULL && !have_want && strcmp(cur.name, want) == 0) {
                    *out = cur;
                    have_want = true;
                }
                if (cur.active && !have_active) {
                    active = cur;
                    have_active = true;
                }
                if (!have_default && strcmp(cur.name, "default") == 0) {
                    deflt = cur;
                    have_default = true;
                }
            }
            if (eof)
                break;
            /* Table header. */
            c.i++;
            skip_ws(&c);
            if (c.i < c.len && c.p[c.i] == '[') {
                why = "arrays of tables are not supported";
                goto bad;
            }
            memset(&cur, 0, sizeof(cur));
            if (c.i < c.len && (c.p[c.i] == '"' || c.p[c.i] == '\'')) {
                if (!parse_string(&c, cur.name, sizeof(cur.name), &why))
                    goto bad;
            } else {
                size_t s = c.i;
                while (c.i < c.len && is_bare(c.p[c.i]))
                    c.i++;
                if (c.i == s || c.i - s >= sizeof(cur.name)) {
                    why = c.i == s ? "empty or invalid table name" : "table name too long";
                    goto bad;
                }
                memcpy(cur.name, c.p + s, c.i - s);
                cur.name[c.i - s] = '\0';
            }
            skip_ws(&c);
            if (c.i >= c.len || c.p[c.i] != ']') {
                why = c.i < c.len && c.p[c.i] == '.' ? "dotted table names are not supported"
                                                     : "expected ']'";
                goto bad;
            }
            c.i++;
            if (!at_eol(&c)) {
                why = "text after table header";
                goto bad;
            }
            in_table = true;
            continue;
        }
        /* key = value */
        char key[64];
        size_t s = c.i;
        if (c.p[c.i] == '"' || c.p[c.i] == '\'') {
            if (!parse_string(&c, key, sizeof(key), &why))
                goto bad;
        } else {
            while (c.i < c.len && is_bare(c.p[c.i]))
                c.i++;
            if (c.i == s || c.i - s >= sizeof(key)) {
                why = c.i == s ? "expected a key or [table]" : "key too long";
                goto bad;
            }
            memcpy(key, c.p + s, c.i - s);
            key[c.i - s] = '\0';
        }
        skip_ws(&c);
        if (c.i < c.len && c.p[c.i] == '.') {
            why = "dotted keys are not supported";
            goto bad;
        }
        if (c.i >= c.len || c.p[c.i] != '=') {
            why = "expected '='";
            goto bad;
        }
        c.i++;
        skip_ws(&c);
        if (c.i >= c.len) {
            why = "missing value";
            goto bad;
        }
        enum { V_STR, V_BOOL, V_INT } vt;
        bool bval = false;
        char q = c.p[c.i];
        if (q == '"' || q == '\'') {
            if (c.i + 2 < c.len && c.p[c.i + 1] == q && c.p[c.i + 2] == q) {
                why = "multi-line strings are not supported";
                goto bad;
            }
            if (!parse_string(&c, sval, sizeof(sval), &why))
                goto bad;
            vt = V_STR;
        } else if (c.len - c.i >= 4 && memcmp(c.p + c.i, "true", 4) == 0) {
            c.i += 4;
            bval = true;
            vt = V_BOOL;
        } else if (c.len - c.i >= 5 && memcmp(c.p + c.i, "false", 5) == 0) {
            c.i += 5;
            vt = V_BOOL;
        } else if ((q >= '0' && q <= '9') || q == '-' || q == '+') {
            c.i++;
            while (c.i < c.len && ((c.p[c.i] >= '0' && c.p[c.i] <= '9') || c.p[c.i] == '_'))
                c.i++;
            vt = V_INT;
        } else {
            why = "unsupported value (expected a string, true, false or an integer)";
            goto bad;
        }
        if (!at_eol(&c)) {
            why = "text after value";
            goto bad;
        }
        if (!in_table)
            continue;
        static const struct {
            const char *key;
            size_t off;
            size_t cap;
        } fields[] = {
            {"token_id", offsetof(struct modaltoml_profile, token_id), sizeof(cur.token_id)},
            {"token_secret", offsetof(struct modaltoml_profile, token_secret),
             sizeof(cur.token_secret)},
            {"server_url", offsetof(struct modaltoml_profile, server_url), sizeof(cur.server_url)},
            {"environment", offsetof(struct modaltoml_profile, environment),
             sizeof(cur.environment)},
            {"image_builder_version", offsetof(struct modaltoml_profile, image_builder_version),
             sizeof(cur.image_builder_version)},
        };
        if (strcmp(key, "active") == 0) {
            if (vt != V_BOOL) {
                why = "active must be true or false";
                goto bad;
            }
            cur.active = bval;
            continue;
        }
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
            if (strcmp(key, fields[k].key) != 0)
                continue;
            if (vt != V_STR) {
                why = "expected a string value";
                goto bad;
            }
            if (!set_field((char *)&cur + fields[k].off, fields[k].cap, sval)) {
                why = "value too long";
                goto bad;
            }
        }
    }

    if (want != NULL) {
        if (!have_want) {
            (void)snprintf(err, errlen, "profile '%.100s' not found", want);
            memset(out, 0, sizeof(*out));
            return RC_NOTFOUND;
        }
        *out_found = true;
    } else if (have_active) {
        *out = active;
        *out_found = true;
    } else if (have_default) {
        *out = deflt;
        *out_found = true;
    }
    return RC_OK;
bad:
    (void)snprintf(err, errlen, "line %u: %s", c.lineno, why);
    memset(out, 0, sizeof(*out));
    return RC_BADREQ;
}
