/* jobcache: job records and their rendered views kept in memory, checked by the record's
 * identity on every read (see jobcache.h). */
#include "core/jobcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STRIPES 32 /* mutexes over the slots */

struct jc_entry {
    atomic_uint refs; /* the slot's and each reader's */
    struct jobstore_ident ident;
    uint64_t variant;
    struct job job;
    char *text;
    size_t len;
    size_t cost; /* bytes counted against JOBCACHE_BYTES (0 when not kept) */
    struct jobcache *cache;
};

struct jobcache {
    const struct jobstore *js;
    jobcache_render_fn *render;
    void *ctx;
    pthread_mutex_t stripe[STRIPES];
    struct jc_entry *slot[JOBCACHE_SLOTS];
    atomic_size_t bytes; /* cost of the entries in slots */
    atomic_ullong hits, loads;
};

static size_t
slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % JOBCACHE_SLOTS;
}

static void
entry_unref(struct jc_entry *e)
{
    if (e == NULL || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    if (e->cost > 0)
        atomic_fetch_sub(&e->cache->bytes, e->cost);
    jobstore_job_fini(&e->job);
    free(e->text);
    free(e);
}

struct jobcache *
jobcache_new(const struct jobstore *js, jobcache_render_fn *render, void *ctx)
{
    struct jobcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->js = js;
    c->render = render;
    c->ctx = ctx;
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->stripe[i], NULL);
    return c;
}

void
jobcache_free(struct jobcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < JOBCACHE_SLOTS; i++)
        entry_unref(c->slot[i]);
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->stripe[i]);
    free(c);
}

/* swap_slot: put e in the slot of id, or with e NULL empty it if it holds job id; the entry it
 * held is the caller's to unref (NULL when none). */
static struct jc_entry *
swap_slot(struct jobcache *c, const char *id, struct jc_entry *e)
{
    size_t i = slot_of(id);
    pthread_mutex_lock(&c->stripe[i % STRIPES]);
    struct jc_entry *old = c->slot[i];
    if (e != NULL || (old != NULL && strcmp(old->job.id, id) == 0))
        c->slot[i] = e;
    else
        old = NULL; /* another job's: it stays */
    pthread_mutex_unlock(&c->stripe[i % STRIPES]);
    return old;
}

/* lookup: a reference to the entry of id for variant read from the file ident names, or NULL. */
static struct jc_entry *
lookup(struct jobcache *c, const char *id, uint64_t variant, const struct jobstore_ident *ident)
{
    size_t i = slot_of(id);
    pthread_mutex_lock(&c->stripe[i % STRIPES]);
    struct jc_entry *e = c->slot[i];
    if (e != NULL && strcmp(e->job.id, id) == 0 && e->variant == variant &&
        jobstore_ident_equal(&e->ident, ident))
        atomic_fetch_add(&e->refs, 1);
    else
        e = NULL;
    pthread_mutex_unlock(&c->stripe[i % STRIPES]);
    return e;
}

/* load: read job id's record and render its view into a new entry (one reference). */
static enum rc
load(struct jobcache *c, const char *id, uint64_t variant, struct jc_entry **out)
{
    int dfd = -1;
    *out = NULL;
    struct jc_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return RC_NOMEM;
    atomic_init(&e->refs, 1);
    e->cache = c;
    e->variant = variant;
    jobstore_job_init(&e->job);
    enum rc rc = jobstore_open_job(c->js, id, &dfd);
    if (rc == RC_OK)
        rc = jobstore_load_ident(dfd, &e->job, &e->ident);
    if (rc == RC_OK && strcmp(e->job.id, id) != 0)
        rc = RC_IO; /* a record in the wrong directory */
    if (rc == RC_OK)
        rc = c->render(c->ctx, variant, dfd, &e->job, &e->text, &e->len);
    if (dfd >= 0)
        close(dfd);
    if (rc != RC_OK) {
        entry_unref(e);
        return rc;
    }
    jobstore_job_set_sandbox(&e->job, NULL); /* private, and json-c refcounts are not atomic */
    *out = e;
    return RC_OK;
}

/* keep: put a fresh entry in its slot if it has an identity and its text fits the budget. */
static void
keep(struct jobcache *c, struct jc_entry *e)
{
    size_t cost = sizeof(*e) + e->len;
    if (e->ident.len == 0)
        return;
    if (atomic_fetch_add(&c->bytes, cost) + cost > JOBCACHE_BYTES) {
        atomic_fetch_sub(&c->bytes, cost);
        return;
    }
    e->cost = cost;
    atomic_fetch_add(&e->refs, 1); /* the slot's */
    entry_unref(swap_slot(c, e->job.id, e));
}

enum rc
jobcache_get(struct jobcache *c, const char *id, uint64_t variant, struct jobcache_ref *out)
{
    struct jobstore_ident now;
    struct jc_entry *e = NULL;
    memset(out, 0, sizeof(*out));
    enum rc rc = jobstore_record_ident(c->js, id, &now);
    if (rc == RC_NOTFOUND) {
        entry_unref(swap_slot(c, id, NULL)); /* deleted: let go of what is kept of it */
        return RC_NOTFOUND;
    }
    if (rc == RC_OK)
        e = lookup(c, id, variant, &now);
    if (e != NULL) {
        atomic_fetch_add(&c->hits, 1);
    } else {
        atomic_fetch_add(&c->loads, 1);
        rc = load(c, id, variant, &e);
        if (rc != RC_OK)
            return rc;
        keep(c, e);
    }
    out->entry = e;
    out->job = &e->job;
    out->text = e->text;
    out->len = e->len;
    return RC_OK;
}

void
jobcache_put(struct jobcache_ref *ref)
{
    if (ref == NULL)
        return;
    entry_unref(ref->entry);
    memset(ref, 0, sizeof(*ref));
}

void
jobcache_stats(const struct jobcache *c, unsigned long long *hits, unsigned long long *loads)
{
    *hits = atomic_load(&c->hits);
    *loads = atomic_load(&c->loads);
}
