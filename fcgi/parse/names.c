/* names: validation of client-supplied upload names and sandbox output paths.
 *
 * UTF-8 is validated strictly (RFC 3629 section 4): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences. Rejected code points:
 * C0 controls and NUL (U+0000..U+001F), DEL (U+007F) and C1 controls (U+0080..U+009F); the
 * bidirectional controls and invisible format characters that make a name display as something
 * else ("uni-\u202Egnp.exe" shows as "uni-exe.png"): U+061C, U+200B..U+200F,
 * U+2028..U+202E, U+2060..U+206F and U+FEFF; plus '/' and '\\' inside a component.
 */
#include "parse/names.h"

#include <stdint.h>

#include "defaults.h"

/* utf8_next: decodes one code point at s[i] into *out_cp; returns its length, or 0 when the
 * bytes there are not well-formed UTF-8 (RFC 3629 table of well-formed byte sequences). */
static size_t
utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *out_cp)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c < 0x80) {
        *out_cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0fu;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07u;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, an overlong 2-byte lead, or F5..FF */
    }
    if (n - i < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        unsigned char b = s[i + k];
        if (b < lo || b > hi)
            return 0;
        lo = 0x80;
        hi = 0xbf;
        cp = (cp << 6) | (b & 0x3fu);
    }
    *out_cp = cp;
    return len;
}

/* invisible: a bidirectional control, a zero-width or other invisible format character, or a
 * line/paragraph separator: code points that change how the rest of a name is shown. */
static bool
invisible(uint32_t cp)
{
    return cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff;
}

/* check_component: one path component; a leading dot is allowed only with allow_dot, and
 * then "." and ".." are still refused. */
static enum rc
check_component(const char *p, size_t len, bool allow_dot, const char **out_why)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    enum rc rc = RC_BADREQ;

    if (len == 0) {
        *out_why = "name is empty";
        goto out;
    }
    if (len > NAME_MAX_BYTES) {
        *out_why = "name is too long";
        goto out;
    }
    if (s[0] == '.' && !allow_dot) {
        *out_why = "name starts with a dot";
        goto out;
    }
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
        *out_why = "name is . or ..";
        goto out;
    }
    while (i < len) {
        uint32_t cp = 0;
        size_t k = utf8_next(s, len, i, &cp);
        if (k == 0) {
            *out_why = "name is not valid UTF-8";
            goto out;
        }
        if (cp == '/' || cp == '\\') {
            *out_why = "name contains a slash or backslash";
            goto out;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            *out_why = "name contains a control character";
            goto out;
        }
        if (invisible(cp)) {
            *out_why = "name contains a bidirectional control or invisible character";
            goto out;
        }
        i += k;
    }
    if (s[len - 1] == ' ' || s[len - 1] == '.') {
        *out_why = "name ends with a space or dot";
        goto out;
    }
    *out_why = NULL;
    rc = RC_OK;
out:
    return rc;
}

enum rc
names_check_upload(struct span name, const char **out_why)
{
    return check_component(name.p, name.len, false, out_why);
}

/* check_path: a relative path of components separated by single '/'; a leading dot in a
 * component is allowed only with allow_dot, "." and ".." never. */
static enum rc
check_path(struct span path, bool allow_dot, const char **out_why)
{
    size_t start = 0, depth = 0;
    enum rc rc = RC_BADREQ;

    if (path.len == 0) {
        *out_why = "path is empty";
        goto out;
    }
    if (path.len > OUTPUT_PATH_MAX) {
        *out_why = "path is too long";
        goto out;
    }
    if (path.p[0] == '/') {
        *out_why = "path is absolute";
        goto out;
    }
    while (start <= path.len) {
        size_t end = start;
        while (end < path.len && path.p[end] != '/')
            end++;
        if (++depth > OUTPUT_DEPTH_MAX) {
            *out_why = "path is nested too deeply";
            goto out;
        }
        if (end == start) {
            *out_why = "path has an empty component";
            goto out;
        }
        if (path.p[start] == '.' &&
            (end - start == 1 || (end - start == 2 && path.p[start + 1] == '.'))) {
            *out_why = "path has a . or .. component";
            goto out;
        }
        rc = check_component(path.p + start, end - start, allow_dot, out_why);
        if (rc != RC_OK)
            goto out;
        rc = RC_BADREQ;
        start = end + 1;
    }
    *out_why = NULL;
    rc = RC_OK;
out:
    return rc;
}

enum rc
names_check_user(struct span name, size_t max, const char **out_why)
{
    const unsigned char *s = (const unsigned char *)name.p;
    *out_why = name.len == 0 ? "it is empty" : name.len > max ? "it is too long" : NULL;
    for (size_t i = 0, k = 0; *out_why == NULL && i < name.len; i += k) {
        uint32_t cp = 0;
        k = utf8_next(s, name.len, i, &cp);
        if (k == 0)
            *out_why = "it is not valid UTF-8";
        else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            *out_why = "it contains a control character";
    }
    return *out_why == NULL ? RC_OK : RC_BADREQ;
}

enum rc
names_check_relpath(struct span path, const char **out_why)
{
    return check_path(path, true, out_why);
}

enum rc
names_check_input_path(struct span path, const char **out_why)
{
    return check_path(path, false, out_why);
}
