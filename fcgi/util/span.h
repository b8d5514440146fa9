/* span: a borrowed, not NUL-terminated slice of bytes. */
#ifndef LABBOX_SPAN_H
#define LABBOX_SPAN_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct span {
    const char *p; /* first byte; may be NULL when len is 0 */
    size_t len;    /* bytes */
};

#define SPAN_LIT(s) ((struct span){(s), sizeof(s) - 1})

static inline struct span
span_of(const char *s)
{
    return (struct span){s, s ? strlen(s) : 0};
}

static inline bool
span_eq(struct span a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && (n == 0 || memcmp(a.p, lit, n) == 0);
}

/* span_trim_ends: move *b past leading and *e before trailing white space of [*b, *e). */
static inline void
span_trim_ends(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

#endif
