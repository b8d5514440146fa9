/* strmap: string-keyed open-addressing hash table of pointers. */
#include "util/strmap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void
strmap_init(struct strmap *m, strmap_key_fn *key_of)
{
    memset(m, 0, sizeof(*m));
    m->key_of = key_of;
}

void
strmap_fini(struct strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
slot_of(const struct strmap *m, const char *key)
{
    size_t i = (size_t)hash(key) & (m->cap - 1);
    while (m->slots[i] != NULL && strcmp(m->key_of(m->slots[i]), key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *
strmap_get(const struct strmap *m, const char *key)
{
    return m->cap == 0 ? NULL : m->slots[slot_of(m, key)];
}

static enum rc
grow(struct strmap *m)
{
    size_t nc = m->cap ? m->cap * 2 : 16;
    void **ns = calloc(nc, sizeof(*ns));
    if (ns == NULL)
        return RC_NOMEM;
    struct strmap old = *m;
    m->slots = ns;
    m->cap = nc;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i] != NULL)
            m->slots[slot_of(m, m->key_of(old.slots[i]))] = old.slots[i];
    free(old.slots);
    return RC_OK;
}

enum rc
strmap_put(struct strmap *m, void *v)
{
    if ((m->n + 1) * 2 > m->cap && grow(m) != RC_OK)
        return RC_NOMEM;
    m->slots[slot_of(m, m->key_of(v))] = v;
    m->n++;
    return RC_OK;
}

void *
strmap_del(struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = slot_of(m, key), mask = m->cap - 1;
    void *v = m->slots[i];
    if (v == NULL)
        return NULL;
    m->slots[i] = NULL;
    m->n--;
    /* Backward shift: move later entries of the run into the hole when their home allows. */
    for (size_t j = (i + 1) & mask; m->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)hash(m->key_of(m->slots[j])) & mask;
        bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (between)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j] = NULL;
        i = j;
    }
    return v;
}
