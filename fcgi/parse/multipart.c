/* multipart: streaming multipart/form-data parser (RFC 7578 on RFC 2046 section 5.1.1).
 *
 * Theory of operation. The body is scanned for the delimiter "\r\n--" boundary. The parser
 * keeps only the number of delimiter bytes matched so far (mp->m): the held-back bytes are
 * by construction the prefix delim[0..m), so they need no buffer of their own and are
 * re-emitted from mp->delim when the match fails. Because a boundary may not contain CR or
 * LF, '\r' occurs in the delimiter only at index 0, so on a mismatch the match restarts at
 * 0 (or at 1 when the mismatching byte is itself '\r'): no KMP table is needed. The stream
 * is treated as if preceded by a virtual "\r\n", so a body may open with "--boundary" on its
 * first line (RFC 2046: the preamble, if any, ends with CRLF before the first delimiter).
 *
 * What makes "\r\n--boundary" a delimiter is the byte after it:
 *   "--"          close delimiter; everything after it (transport padding, epilogue) is ignored;
 *   SP / HT       transport padding, which must be followed by CRLF;
 *   CR            which must be followed by LF;
 *   LF            a bare LF: RC_BADREQ (lines must end in CRLF, see below);
 *   anything else (including "-" + non-"-") means the bytes were not a delimiter and are part
 *                 data. RFC 2046 forbids the boundary inside a part, so this is a deliberate
 *                 leniency that also keeps the hold-back bounded (at most dlen + 1 bytes).
 *
 * Deliberate decisions:
 *   - Bare LF line endings are rejected (RC_BADREQ), after a boundary and in part headers.
 *     RFC 2046 requires CRLF; accepting LF-only bodies would make "\n--boundary" inside file
 *     data ambiguous. Every browser and curl sends CRLF.
 *   - Obsolete header folding (a line starting with SP/HT) is rejected (RFC 7230 3.2.4).
 *   - Control characters other than HT in part headers are rejected.
 *   - Content-Disposition must be "form-data" with a non-empty name (RFC 7578 4.2). Unknown
 *     parameters are ignored; "filename*" (RFC 5987) is ignored, as RFC 7578 4.2 says
 *     senders must not use it. A repeated name/filename or header is RC_BADREQ.
 *   - In quoted strings a backslash escapes only '"' and '\\'; before any other byte it is
 *     kept literally, because browsers do not escape backslashes and old IE sends paths like
 *     "C:\x\y.csv" (the same compromise as Go's mime package).
 *   - Unquoted parameter values are tokens, leniently extended with bytes >= 0x80.
 *   - A close delimiter before any part is RC_BADREQ (RFC 2046 requires one body part).
 *   - Content-Transfer-Encoding and other headers are ignored (RFC 7578 4.7).
 */
#include "parse/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"

/* Parser states; see the theory of operation above. */
enum mp_state {
    MP_PREAMBLE,   /* before the first delimiter: bytes are discarded */
    MP_BODY,       /* inside a part's body */
    MP_DELIM,      /* "\r\n--boundary" matched: the next byte decides */
    MP_DELIM_DASH, /* "\r\n--boundary-" matched: one more '-' closes */
    MP_PADDING,    /* transport padding after a delimiter */
    MP_DELIM_CR,   /* CR after a delimiter: LF must follow */
    MP_HEADERS,    /* inside a part's header lines */
    MP_HEADER_CR,  /* CR in the header block: LF must follow */
    MP_EPILOGUE,   /* after the close delimiter: bytes are ignored */
    MP_DEAD,       /* an error stopped the parser; rc says which */
    MP__MAX
};

#define DELIM_MAX (4 + BOUNDARY_MAX) /* "\r\n--" + boundary */

struct multipart {
    struct multipart_callbacks cb; /* copied from multipart_new */
    enum mp_state state;           /* where the parser is */
    enum rc rc;                    /* the result once dead */
    const char *err;               /* static reason for the last RC_BADREQ/RC_TOOBIG */
    bool in_part;                  /* on_part_begin called, on_part_end not yet */
    bool seen_part;                /* at least one delimiter opened a part */
    bool has_cd;                   /* the current part has a Content-Disposition */
    bool has_ct;                   /* the current part has a Content-Type */
    size_t dlen;                   /* bytes in delim */
    size_t m;                      /* bytes of delim matched and held back */
    size_t hbytes;                 /* bytes of the current header block, CRLFs included */
    size_t hlen;                   /* bytes kept in hdr */
    size_t line;                   /* start of the current header line in hdr */
    struct multipart_part part;    /* spans into hdr */
    char delim[DELIM_MAX];         /* "\r\n--" boundary */
    char hdr[PART_HEADERS_MAX];    /* the kept header lines, without their CRLFs */
};

/*** Character classes ***/

static bool
is_tchar(unsigned char c)
{
    /* RFC 7230 3.2.6 tchar. */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
is_bchar(unsigned char c)
{
    /* RFC 2046 5.1.1 bchars (bcharsnospace plus space). */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static bool
is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static size_t
skip_ows(const char *s, size_t n, size_t i)
{
    while (i < n && is_ows((unsigned char)s[i]))
        i++;
    return i;
}

static size_t
skip_tchars(const char *s, size_t n, size_t i)
{
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    return i;
}

static bool
ci_eq(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

static bool
boundary_is_valid(struct span b)
{
    if (b.p == NULL || b.len == 0 || b.len > BOUNDARY_MAX)
        return false;
    for (size_t i = 0; i < b.len; i++)
        if (!is_bchar((unsigned char)b.p[i]))
            return false;
    return b.p[b.len - 1] != ' ';
}

/*** Content-Type of the request ***/

enum rc
multipart_boundary(struct span content_type, struct span *out)
{
    const char *s = content_type.p;
    size_t n = content_type.len, i, a;
    struct span b = {NULL, 0};
    bool have = false;
    enum rc rc = RC_UNSUPPORTED;

    *out = (struct span){NULL, 0};
    if (s == NULL)
        goto out;
    i = skip_ows(s, n, 0);
    a = i;
    i = skip_tchars(s, n, i);
    if (!ci_eq(s + a, i - a, "multipart") || i >= n || s[i] != '/')
        goto out;
    a = ++i;
    i = skip_tchars(s, n, i);
    if (!ci_eq(s + a, i - a, "form-data"))
        goto out;
    rc = RC_BADREQ;
    for (;;) {
        size_t pn, pl;
        struct span v;
        i = skip_ows(s, n, i);
        if (i == n)
            break;
        if (s[i] != ';')
            goto out;
        i = skip_ows(s, n, i + 1);
        if (i == n)
            break; /* leniency: a trailing ';' */
        pn = i;
        i = skip_tchars(s, n, i);
        pl = i - pn;
        if (pl == 0 || i == n || s[i] != '=')
            goto out;
        i++;
        if (i < n && s[i] == '"') {
            /* No unescaping: a backslash is not a bchar, so a quoted boundary with one is
             * rejected below anyway, and *out can borrow from content_type. */
            a = ++i;
            while (i < n && s[i] != '"')
                i++;
            if (i == n)
                goto out;
            v = (struct span){s + a, i - a};
            i++;
        } else {
            a = i;
            i = skip_tchars(s, n, i);
            v = (struct span){s + a, i - a};
        }
        if (ci_eq(s + pn, pl, "boundary")) {
            if (have)
                goto out;
            have = true;
            b = v;
        }
    }
    if (!have || !boundary_is_valid(b))
        goto out;
    *out = b;
    rc = RC_OK;
out:
    return rc;
}

/*** Construction ***/

struct multipart *
multipart_new(struct span boundary, const struct multipart_callbacks *cb)
{
    struct multipart *mp = NULL;
    if (!boundary_is_valid(boundary) || cb == NULL)
        goto out;
    mp = calloc(1, sizeof(*mp));
    if (mp == NULL)
        goto out;
    mp->cb = *cb;
    mp->state = MP_PREAMBLE;
    mp->rc = RC_OK;
    mp->err = "no error";
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.p, boundary.len);
    mp->dlen = 4 + boundary.len;
    mp->m = 2; /* the virtual CRLF before the body */
out:
    return mp;
}

void
multipart_free(struct multipart *mp)
{
    free(mp);
}

const char *
multipart_error(const struct multipart *mp)
{
    return mp->err;
}

/*** Events ***/

static enum rc
fail(struct multipart *mp, enum rc rc, const char *why)
{
    mp->state = MP_DEAD;
    mp->rc = rc;
    mp->err = why;
    return rc;
}

/* emit: n bytes of part data (discarded in the preamble). */
static enum rc
emit(struct multipart *mp, const char *p, size_t n)
{
    enum rc rc = RC_OK;
    if (n == 0 || !mp->in_part || mp->cb.on_part_data == NULL)
        goto out;
    rc = mp->cb.on_part_data(mp->cb.ctx, p, n);
    if (rc != RC_OK)
        rc = fail(mp, rc, "part data rejected by the request handler");
out:
    return rc;
}

/* not_delim: the held bytes (delim plus extra) were data after all; scanning resumes. */
static enum rc
not_delim(struct multipart *mp, const char *extra, size_t extra_len)
{
    enum rc rc = emit(mp, mp->delim, mp->dlen);
    if (rc == RC_OK)
        rc = emit(mp, extra, extra_len);
    if (rc != RC_OK)
        goto out;
    mp->m = 0;
    mp->state = mp->in_part ? MP_BODY : MP_PREAMBLE;
out:
    return rc;
}

/* commit: the held bytes are a delimiter: the open part, if any, ends. */
static enum rc
commit(struct multipart *mp)
{
    enum rc rc = RC_OK;
    mp->m = 0;
    if (!mp->in_part)
        goto out;
    mp->in_part = false;
    if (mp->cb.on_part_end != NULL)
        rc = mp->cb.on_part_end(mp->cb.ctx);
    if (rc != RC_OK)
        rc = fail(mp, rc, "part rejected by the request handler");
out:
    return rc;
}

/*** Part headers ***/

/* parse_value: a token or quoted-string at s[*io] (RFC 7230 3.2.6); quoted strings are
 * unescaped in place (see the backslash rule at the top). */
static enum rc
parse_value(struct multipart *mp, char *s, size_t n, size_t *io, struct span *out)
{
    size_t i = *io, w, a;
    if (i < n && s[i] == '"') {
        a = w = ++i;
        for (;;) {
            if (i == n)
                return fail(mp, RC_BADREQ, "unterminated quoted string in Content-Disposition");
            if (s[i] == '"')
                break;
            if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
                i++;
            s[w++] = s[i++];
        }
        *out = (struct span){s + a, w - a};
        *io = i + 1;
        return RC_OK;
    }
    a = i;
    while (i < n && (is_tchar((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80))
        i++;
    if (i == a)
        return fail(mp, RC_BADREQ, "missing parameter value in Content-Disposition");
    *out = (struct span){s + a, i - a};
    *io = i;
    return RC_OK;
}

/* parse_disposition: form-data *( ";" param ) per RFC 7578 4.2 / RFC 6266 4.1. */
static enum rc
parse_disposition(struct multipart *mp, char *s, size_t n)
{
    size_t i = skip_ows(s, n, 0), a = i;
    bool have_name = false, have_file = false;
    enum rc rc = RC_OK;

    i = skip_tchars(s, n, i);
    if (!ci_eq(s + a, i - a, "form-data"))
        return fail(mp, RC_BADREQ, "Content-Disposition is not form-data");
    for (;;) {
        size_t pn, pl;
        struct span v;
        i = skip_ows(s, n, i);
        if (i == n)
            break;
        if (s[i] != ';')
            return fail(mp, RC_BADREQ, "malformed Content-Disposition parameters");
        i = skip_ows(s, n, i + 1);
        if (i == n)
            break; /* leniency: a trailing ';' */
        pn = i;
        i = skip_tchars(s, n, i);
        pl = i - pn;
        i = skip_ows(s, n, i);
        if (pl == 0 || i == n || s[i] != '=')
            return fail(mp, RC_BADREQ, "malformed Content-Disposition parameter");
        i = skip_ows(s, n, i + 1);
        rc = parse_value(mp, s, n, &i, &v);
        if (rc != RC_OK)
            return rc;
        if (ci_eq(s + pn, pl, "name")) {
            if (have_name)
                return fail(mp, RC_BADREQ, "repeated name parameter in Content-Disposition");
            have_name = true;
            mp->part.name = v;
        } else if (ci_eq(s + pn, pl, "filename")) {
            if (have_file)
                return fail(mp, RC_BADREQ, "repeated filename parameter in Content-Disposition");
            have_file = true;
            mp->part.filename = v;
        }
        /* Other parameters, "filename*" included, are ignored. */
    }
    /* A missing or empty name is reported by headers_done, so that a folded continuation
     * line that might have carried it is reported as what it is. */
    return RC_OK;
}

/* header_line: one complete header line hdr[line..hlen). Lines other than
 * Content-Disposition and Content-Type are dropped from hdr. */
static enum rc
header_line(struct multipart *mp)
{
    char *s = mp->hdr + mp->line;
    size_t n = mp->hlen - mp->line, colon, vs, ve;
    enum rc rc = RC_OK;

    if (is_ows((unsigned char)s[0]))
        return fail(mp, RC_BADREQ, "folded part header line (obsolete line folding)");
    colon = skip_tchars(s, n, 0);
    if (colon == 0 || colon == n || s[colon] != ':')
        return fail(mp, RC_BADREQ, "malformed part header line");
    vs = skip_ows(s, n, colon + 1);
    ve = n;
    while (ve > vs && is_ows((unsigned char)s[ve - 1]))
        ve--;
    if (ci_eq(s, colon, "content-disposition")) {
        if (mp->has_cd)
            return fail(mp, RC_BADREQ, "repeated Content-Disposition header");
        mp->has_cd = true;
        rc = parse_disposition(mp, s + vs, ve - vs);
        if (rc != RC_OK)
            return rc;
    } else if (ci_eq(s, colon, "content-type")) {
        if (mp->has_ct)
            return fail(mp, RC_BADREQ, "repeated Content-Type header in a part");
        mp->has_ct = true;
        mp->part.content_type = (struct span){s + vs, ve - vs};
    } else {
        mp->hlen = mp->line; /* not needed: reuse the space */
    }
    mp->line = mp->hlen;
    return RC_OK;
}

/* headers_done: the blank line ended the header block. */
static enum rc
headers_done(struct multipart *mp)
{
    enum rc rc = RC_OK;
    if (!mp->has_cd)
        return fail(mp, RC_BADREQ, "part has no Content-Disposition header");
    if (mp->part.name.p == NULL)
        return fail(mp, RC_BADREQ, "Content-Disposition has no name parameter");
    if (mp->part.name.len == 0)
        return fail(mp, RC_BADREQ, "Content-Disposition has an empty name");
    if (mp->cb.on_part_begin != NULL)
        rc = mp->cb.on_part_begin(mp->cb.ctx, &mp->part);
    if (rc != RC_OK)
        return fail(mp, rc, "part rejected by the request handler");
    mp->in_part = true;
    mp->state = MP_BODY;
    mp->m = 0;
    return RC_OK;
}

static void
headers_start(struct multipart *mp)
{
    mp->state = MP_HEADERS;
    mp->seen_part = true;
    mp->has_cd = false;
    mp->has_ct = false;
    mp->hbytes = 0;
    mp->hlen = 0;
    mp->line = 0;
    mp->part.name = (struct span){NULL, 0};
    mp->part.filename = (struct span){NULL, 0};
    mp->part.content_type = (struct span){mp->hdr, 0};
}

/*** Scanning ***/

/* scan_body: consumes preamble or part-body bytes from q until a full delimiter match (then
 * state becomes MP_DELIM) or the end of q; *out_used says how many. Data that cannot be part
 * of a delimiter is emitted at once; the held prefix stays in mp->m. */
static enum rc
scan_body(struct multipart *mp, const char *q, size_t n, size_t *out_used)
{
    size_t j = 0, run = 0, carry = mp->m, m = mp->m;
    enum rc rc = RC_OK;

    /* Invariant: the m held bytes are delim[0..m): carry of them from earlier feeds (only
     * while no mismatch happened in this feed), the other m - carry are q[j-(m-carry)..j). */
    while (j < n) {
        if (m == 0) {
            const char *cr = memchr(q + j, '\r', n - j);
            if (cr == NULL) {
                j = n;
                break;
            }
            j = (size_t)(cr - q) + 1;
            m = 1;
            continue;
        }
        if (q[j] == mp->delim[m]) {
            j++;
            m++;
            if (m == mp->dlen) {
                rc = emit(mp, q + run, j - (m - carry) - run);
                if (rc != RC_OK)
                    goto out;
                mp->state = MP_DELIM;
                goto out;
            }
            continue;
        }
        /* Mismatch: the held bytes were data. Those from earlier feeds go out now; those in
         * q join the run. q[j] is looked at again with nothing held. */
        if (carry > 0) {
            rc = emit(mp, mp->delim, carry);
            if (rc != RC_OK)
                goto out;
            carry = 0;
        }
        m = 0;
    }
    rc = emit(mp, q + run, j - (m - carry) - run);
out:
    mp->m = m;
    *out_used = j;
    return rc;
}

/* step: one byte in a byte-wise state; *out_used is false when c must be looked at again
 * in the new state. */
static enum rc
step(struct multipart *mp, unsigned char c, bool *out_used)
{
    enum rc rc = RC_OK;
    *out_used = true;
    switch (mp->state) {
    case MP_DELIM:
        if (c == '-') {
            mp->state = MP_DELIM_DASH;
        } else if (is_ows(c) || c == '\r') {
            rc = commit(mp);
            if (rc == RC_OK)
                mp->state = c == '\r' ? MP_DELIM_CR : MP_PADDING;
        } else if (c == '\n') {
            rc = fail(mp, RC_BADREQ, "bare LF after a boundary: lines must end in CRLF");
        } else {
            *out_used = false;
            rc = not_delim(mp, NULL, 0);
        }
        break;
    case MP_DELIM_DASH:
        if (c == '-') {
            if (!mp->seen_part)
                return fail(mp, RC_BADREQ, "closing boundary before any part");
            rc = commit(mp);
            if (rc == RC_OK)
                mp->state = MP_EPILOGUE;
        } else {
            *out_used = false;
            rc = not_delim(mp, "-", 1);
        }
        break;
    case MP_PADDING:
        if (c == '\r')
            mp->state = MP_DELIM_CR;
        else if (c == '\n')
            rc = fail(mp, RC_BADREQ, "bare LF after a boundary: lines must end in CRLF");
        else if (!is_ows(c))
            rc = fail(mp, RC_BADREQ, "unexpected bytes after a boundary");
        break;
    case MP_DELIM_CR:
        if (c == '\n')
            headers_start(mp);
        else
            rc = fail(mp, RC_BADREQ, "CR without LF after a boundary");
        break;
    case MP_HEADERS:
    case MP_HEADER_CR:
        if (++mp->hbytes > PART_HEADERS_MAX)
            return fail(mp, RC_TOOBIG, "part headers are too large");
        if (mp->state == MP_HEADER_CR) {
            if (c != '\n')
                return fail(mp, RC_BADREQ, "CR without LF in part headers");
            mp->state = MP_HEADERS;
            if (mp->hlen == mp->line)
                rc = headers_done(mp);
            else
                rc = header_line(mp);
        } else if (c == '\r') {
            mp->state = MP_HEADER_CR;
        } else if (c == '\n') {
            rc = fail(mp, RC_BADREQ, "bare LF in part headers: lines must end in CRLF");
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            rc = fail(mp, RC_BADREQ, "control character in part headers");
        } else {
            mp->hdr[mp->hlen++] = (char)c;
        }
        break;
    case MP_PREAMBLE:
    case MP_BODY:
    case MP_EPILOGUE:
    case MP_DEAD:
    case MP__MAX:
        break;
    }
    return rc;
}

enum rc
multipart_feed(struct multipart *mp, const char *p, size_t len)
{
    size_t i = 0;
    enum rc rc = RC_OK;

    while (i < len && rc == RC_OK) {
        switch (mp->state) {
        case MP_DEAD:
            return mp->rc;
        case MP_EPILOGUE:
            return RC_OK;
        case MP_PREAMBLE:
        case MP_BODY: {
            size_t used = 0;
            rc = scan_body(mp, p + i, len - i, &used);
            i += used;
            break;
        }
        default: {
            bool used = true;
            rc = step(mp, (unsigned char)p[i], &used);
            if (used)
                i++;
            break;
        }
        }
    }
    if (mp->state == MP_DEAD)
        rc = mp->rc;
    return rc;
}

enum rc
multipart_finish(struct multipart *mp)
{
    switch (mp->state) {
    case MP_EPILOGUE:
        return RC_OK;
    case MP_DEAD:
        return mp->rc;
    case MP_PREAMBLE:
        return fail(mp, RC_BADREQ, "no boundary found in the body");
    case MP_DELIM:
    case MP_DELIM_DASH:
    case MP_BODY:
        return fail(mp, RC_BADREQ, "body ends before the closing boundary");
    case MP_PADDING:
    case MP_DELIM_CR:
        return fail(mp, RC_BADREQ, "body ends on a boundary line");
    case MP_HEADERS:
    case MP_HEADER_CR:
    case MP__MAX:
        break;
    }
    return fail(mp, RC_BADREQ, "body ends inside a part's headers");
}
