/* strmap: a hash table of pointers keyed by a string each value carries (its key_of). Open
 * addressing with linear probing and backward-shift deletion; grows at 1/2 load. Not locked.
 */
#ifndef LABBOX_STRMAP_H
#define LABBOX_STRMAP_H

#include <stddef.h>

#include "rc.h"

/* strmap_key_fn: the key of a stored value (borrowed; stable while the value is stored). */
typedef const char *strmap_key_fn(const void *value);

struct strmap {
    void **slots; /* cap entries, NULL = empty */
    size_t cap;   /* 0 or a power of two */
    size_t n;
    strmap_key_fn *key_of;
};

void strmap_init(struct strmap *m, strmap_key_fn *key_of);
/* strmap_fini frees the table, not the values. */
void strmap_fini(struct strmap *m);
/* strmap_get: the value with key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* strmap_put: store v, whose key must not be stored yet. RC_NOMEM. */
enum rc strmap_put(struct strmap *m, void *v) LB_MUST_CHECK;
/* strmap_del: remove and return the value with key (NULL when absent). */
void *strmap_del(struct strmap *m, const char *key);

#endif
