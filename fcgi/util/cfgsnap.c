/* cfgsnap: configuration snapshots readers hold while a reload replaces them (see cfgsnap.h). */
#include "util/cfgsnap.h"

#include <stdlib.h>
#include <string.h>

#define IDLE UINT64_MAX

struct cfgsnap_node {
    struct config cfg;         /* first: cfgsnap_new hands out its address */
    uint64_t gen;              /* the last generation it was current in (set when retired) */
    struct cfgsnap_node *next; /* the retired list */
};

enum rc
cfgsnap_init(struct cfgsnap *cs, const struct config *start, size_t readers)
{
    memset(cs, 0, sizeof(*cs));
    cs->slots = calloc(readers ? readers : 1, sizeof(*cs->slots));
    if (cs->slots == NULL)
        return RC_NOMEM;
    for (size_t i = 0; i < readers; i++)
        atomic_init(&cs->slots[i], IDLE);
    cs->nslots = readers;
    cs->start = start;
    atomic_init(&cs->current, start);
    atomic_init(&cs->gen, 0);
    atomic_init(&cs->taken, 0);
    return RC_OK;
}

static void
free_node(struct cfgsnap_node *n)
{
    config_fini(&n->cfg);
    free(n);
}

void
cfgsnap_fini(struct cfgsnap *cs)
{
    while (cs->retired != NULL) {
        struct cfgsnap_node *n = cs->retired;
        cs->retired = n->next;
        free_node(n);
    }
    if (cs->cur_node != NULL)
        free_node(cs->cur_node);
    free(cs->slots);
    memset(cs, 0, sizeof(*cs));
}

long
cfgsnap_reader(struct cfgsnap *cs)
{
    size_t i = atomic_fetch_add(&cs->taken, 1);
    return i < cs->nslots ? (long)i : -1;
}

const struct config *
cfgsnap_enter(struct cfgsnap *cs, long reader)
{
    /* The slot first: whatever is current from here on retires no earlier than this. */
    atomic_store(&cs->slots[reader], atomic_load(&cs->gen));
    return atomic_load(&cs->current);
}

void
cfgsnap_leave(struct cfgsnap *cs, long reader)
{
    atomic_store(&cs->slots[reader], IDLE);
}

const struct config *
cfgsnap_current(struct cfgsnap *cs)
{
    return atomic_load(&cs->current);
}

struct config *
cfgsnap_new(void)
{
    struct cfgsnap_node *n = calloc(1, sizeof(*n));
    return n != NULL ? &n->cfg : NULL;
}

/* node: the node a configuration from cfgsnap_new sits in (its first member). */
static struct cfgsnap_node *
node(struct config *cfg)
{
    return (struct cfgsnap_node *)(void *)cfg;
}

void
cfgsnap_discard(struct config *next)
{
    if (next != NULL)
        free_node(node(next));
}

void
cfgsnap_publish(struct cfgsnap *cs, struct config *next)
{
    struct cfgsnap_node *old = cs->cur_node;
    atomic_store(&cs->current, next);
    cs->cur_node = node(next);
    uint64_t ended = atomic_fetch_add(&cs->gen, 1);
    if (old != NULL) {
        old->gen = ended;
        old->next = cs->retired;
        cs->retired = old;
    }
}

size_t
cfgsnap_reclaim(struct cfgsnap *cs)
{
    uint64_t oldest = IDLE;
    size_t left = 0;
    for (size_t i = 0; i < cs->nslots; i++) {
        uint64_t g = atomic_load(&cs->slots[i]);
        if (g < oldest)
            oldest = g;
    }
    for (struct cfgsnap_node **p = &cs->retired; *p != NULL;) {
        struct cfgsnap_node *n = *p;
        if (n->gen < oldest) {
            *p = n->next;
            free_node(n);
        } else {
            p = &n->next;
            left++;
        }
    }
    return left;
}
