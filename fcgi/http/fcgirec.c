/* fcgirec: FastCGI response records (FCGI_STDOUT, FCGI_END_REQUEST) in a bounded buffer. */
#include "http/fcgirec.h"

#include <stdlib.h>
#include <string.h>

#define END_LEN (3 * FCGI_HEADER_LEN) /* empty FCGI_STDOUT + FCGI_END_REQUEST with its body */

void
fcgi_out_init(struct fcgi_out *o, uint16_t reqid, size_t max)
{
    memset(o, 0, sizeof(*o));
    o->reqid = reqid;
    o->max = max;
    o->open = SIZE_MAX;
}

void
fcgi_out_fini(struct fcgi_out *o)
{
    free(o->data);
    memset(o, 0, sizeof(*o));
    o->open = SIZE_MAX;
}

static size_t
open_len(const struct fcgi_out *o)
{
    const unsigned char *h = o->data + o->open;
    return ((size_t)h[4] << 8) | h[5];
}

/* The open record may grow only while none of its header has been sent. */
static bool
can_extend(const struct fcgi_out *o)
{
    return o->open != SIZE_MAX && o->open >= o->head;
}

size_t
fcgi_out_room(const struct fcgi_out *o)
{
    size_t pend = o->len - o->head;
    if (o->ended || pend + END_LEN >= o->max)
        return 0;
    size_t avail = o->max - pend - END_LEN;
    size_t in_open = can_extend(o) ? FCGI_CONTENT_MAX - open_len(o) : 0;
    if (avail <= in_open)
        return avail;
    size_t rest = avail - in_open;
    size_t whole = rest / (FCGI_HEADER_LEN + FCGI_CONTENT_MAX);
    size_t part = rest % (FCGI_HEADER_LEN + FCGI_CONTENT_MAX);
    return in_open + whole * FCGI_CONTENT_MAX +
           (part > FCGI_HEADER_LEN ? part - FCGI_HEADER_LEN : 0);
}

/* Make room for `more` bytes after len: move the unsent bytes to the front, then grow. */
static enum rc
reserve(struct fcgi_out *o, size_t more)
{
    if (o->len + more <= o->cap)
        return RC_OK;
    if (o->head > 0) {
        memmove(o->data, o->data + o->head, o->len - o->head);
        o->open = can_extend(o) ? o->open - o->head : SIZE_MAX;
        o->len -= o->head;
        o->head = 0;
        if (o->len + more <= o->cap)
            return RC_OK;
    }
    size_t cap = o->cap ? o->cap * 2 : 1024;
    if (cap < o->len + more)
        cap = o->len + more;
    unsigned char *d = realloc(o->data, cap);
    if (d == NULL)
        return RC_NOMEM;
    o->data = d;
    o->cap = cap;
    return RC_OK;
}

static void
put_header(unsigned char *h, unsigned type, uint16_t reqid, size_t len)
{
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(reqid >> 8);
    h[3] = (unsigned char)(reqid & 0xff);
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)(len & 0xff);
    h[6] = 0; /* padding */
    h[7] = 0;
}

enum rc
fcgi_out_stdout(struct fcgi_out *o, const void *p, size_t n)
{
    const unsigned char *src = p;
    if (o->ended)
        return RC_CONFLICT;
    if (n == 0)
        return RC_OK;
    if (n > fcgi_out_room(o))
        return RC_TOOBIG;
    /* At most n / 65535 + 1 new headers. */
    if (reserve(o, n + (n / FCGI_CONTENT_MAX + 1) * FCGI_HEADER_LEN) != RC_OK)
        return RC_NOMEM;
    if (can_extend(o)) {
        size_t have = open_len(o);
        size_t take = FCGI_CONTENT_MAX - have < n ? FCGI_CONTENT_MAX - have : n;
        memcpy(o->data + o->len, src, take);
        o->len += take;
        put_header(o->data + o->open, FCGI_STDOUT, o->reqid, have + take);
        src += take;
        n -= take;
    }
    while (n > 0) {
        size_t take = n < FCGI_CONTENT_MAX ? n : FCGI_CONTENT_MAX;
        o->open = o->len;
        put_header(o->data + o->len, FCGI_STDOUT, o->reqid, take);
        memcpy(o->data + o->len + FCGI_HEADER_LEN, src, take);
        o->len += FCGI_HEADER_LEN + take;
        src += take;
        n -= take;
    }
    return RC_OK;
}

enum rc
fcgi_out_end(struct fcgi_out *o, uint32_t app_status)
{
    if (o->ended)
        return RC_CONFLICT;
    if (reserve(o, END_LEN) != RC_OK)
        return RC_NOMEM;
    unsigned char *h = o->data + o->len;
    put_header(h, FCGI_STDOUT, o->reqid, 0);
    put_header(h + 8, FCGI_END_REQUEST, o->reqid, 8);
    h[16] = (unsigned char)(app_status >> 24);
    h[17] = (unsigned char)((app_status >> 16) & 0xff);
    h[18] = (unsigned char)((app_status >> 8) & 0xff);
    h[19] = (unsigned char)(app_status & 0xff);
    h[20] = FCGI_REQUEST_COMPLETE;
    h[21] = h[22] = h[23] = 0;
    o->len += END_LEN;
    o->open = SIZE_MAX;
    o->ended = true;
    return RC_OK;
}

size_t
fcgi_out_pending(const struct fcgi_out *o)
{
    return o->len - o->head;
}

const unsigned char *
fcgi_out_next(const struct fcgi_out *o)
{
    return o->data + o->head;
}

void
fcgi_out_consume(struct fcgi_out *o, size_t n)
{
    o->head += n;
    if (o->head < o->len)
        return;
    /* Drained: nothing is open for appends any more (its header is sent). */
    o->head = o->len = 0;
    o->open = SIZE_MAX;
    if (o->cap > FCGI_OUT_KEEP) {
        free(o->data);
        o->data = NULL;
        o->cap = 0;
    }
}
