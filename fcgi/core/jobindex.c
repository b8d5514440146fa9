/* jobindex: jobs and owners in memory: tallies for quotas, the fair queue, list pages. */
#include "core/jobindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/id.h"

/*** sorted vectors of jobs ***/

typedef int cmp_fn(const struct ji_job *a, const struct ji_job *b);

static int
by_created(const struct ji_job *a, const struct ji_job *b)
{
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int
by_round(const struct ji_job *a, const struct ji_job *b)
{
    if (a->round != b->round)
        return a->round < b->round ? -1 : 1;
    return by_created(a, b);
}

/* The bytes of n slots of a vector (pointers to jobs). */
static size_t
slots(size_t n)
{
    return n * sizeof(struct ji_job *); /* NOLINT(bugprone-sizeof-expression): pointers */
}

/* The first index whose entry is not below key. */
static size_t
lower_bound(const struct ji_vec *v, const struct ji_job *key, cmp_fn *cmp)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(v->v[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static enum rc
vec_insert(struct ji_vec *v, struct ji_job *j, cmp_fn *cmp)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        struct ji_job **nv = realloc(v->v, slots(nc));
        if (nv == NULL)
            return RC_NOMEM;
        v->v = nv;
        v->cap = nc;
    }
    size_t i = lower_bound(v, j, cmp);
    memmove(&v->v[i + 1], &v->v[i], slots(v->n - i));
    v->v[i] = j;
    v->n++;
    return RC_OK;
}

/* The index of j in v (ordered by cmp), or -1. */
static long
vec_find(const struct ji_vec *v, const struct ji_job *j, cmp_fn *cmp)
{
    size_t i = lower_bound(v, j, cmp);
    return i < v->n && v->v[i] == j ? (long)i : -1;
}

static void
vec_remove(struct ji_vec *v, const struct ji_job *j, cmp_fn *cmp)
{
    long i = vec_find(v, j, cmp);
    if (i < 0)
        return;
    memmove(&v->v[i], &v->v[i + 1], slots(v->n - (size_t)i - 1));
    v->n--;
}

/*** owners ***/

static const char *
job_key(const void *v)
{
    return ((const struct ji_job *)v)->id;
}

static const char *
owner_key(const void *v)
{
    return ((const struct ji_owner *)v)->key;
}

void
jobindex_init(struct jobindex *ji)
{
    memset(ji, 0, sizeof(*ji));
    strmap_init(&ji->jobs, job_key);
    strmap_init(&ji->owners, owner_key);
}

void
jobindex_fini(struct jobindex *ji)
{
    for (size_t i = 0; i < ji->all.n; i++)
        free(ji->all.v[i]);
    for (size_t i = 0; i < ji->owners.cap; i++) {
        struct ji_owner *o = ji->owners.slots[i];
        if (o != NULL) {
            free(o->list.v);
            free(o);
        }
    }
    free(ji->all.v);
    free(ji->queue.v);
    strmap_fini(&ji->jobs);
    strmap_fini(&ji->owners);
    memset(ji, 0, sizeof(*ji));
}

void
jobindex_owner_key(const struct job_owner *o, char out[JOBINDEX_KEY_MAX])
{
    const char *prefix = o->kind == OWNER_USER ? "u:" : o->kind == OWNER_ADDRESS ? "a:" : NULL;
    /* Fits: a name is shorter than JOB_OWNER_MAX. */
    (void)snprintf(out, JOBINDEX_KEY_MAX, "%s%s", prefix ? prefix : "", prefix ? o->name : "");
}

static struct ji_owner *
owner_get(struct jobindex *ji, const char *key, bool create)
{
    struct ji_owner *o = strmap_get(&ji->owners, key);
    if (o != NULL || !create || strlen(key) >= JOBINDEX_KEY_MAX)
        return o;
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    memcpy(o->key, key, strlen(key) + 1);
    if (strmap_put(&ji->owners, o) != RC_OK) {
        free(o);
        return NULL;
    }
    return o;
}

/* Forget an owner with nothing left in the index. */
static void
owner_gc(struct jobindex *ji, struct ji_owner *o)
{
    if (o == NULL || o->jobs > 0 || o->reserved > 0)
        return;
    (void)strmap_del(&ji->owners, o->key);
    free(o->list.v);
    free(o);
}

/*** jobs ***/

/* Put j (filled in, owner set) into the map and its lists; undone on failure. */
static enum rc
link_job(struct jobindex *ji, struct ji_job *j)
{
    struct ji_owner *o = j->owner;
    enum rc rc = strmap_put(&ji->jobs, j);
    if (rc != RC_OK)
        return rc;
    rc = vec_insert(&ji->all, j, by_created);
    if (rc == RC_OK) {
        rc = vec_insert(&o->list, j, by_created);
        if (rc == RC_OK && j->state == JOB_QUEUED) {
            rc = vec_insert(&ji->queue, j, by_round);
            if (rc != RC_OK)
                vec_remove(&o->list, j, by_created);
        }
        if (rc != RC_OK)
            vec_remove(&ji->all, j, by_created);
    }
    if (rc != RC_OK)
        (void)strmap_del(&ji->jobs, j->id);
    return rc;
}

/* Insert a job; its bytes are added to its owner's unless they are counted already. */
static enum rc
insert(struct jobindex *ji, const struct jobindex_rec *rec, bool bytes_counted)
{
    if (rec->id == NULL || strlen(rec->id) != ID_LEN)
        return RC_BADREQ;
    if (strmap_get(&ji->jobs, rec->id) != NULL)
        return RC_CONFLICT;
    struct ji_owner *o = owner_get(ji, rec->owner_key, true);
    struct ji_job *j = o ? calloc(1, sizeof(*j)) : NULL;
    if (j == NULL) {
        owner_gc(ji, o);
        return RC_NOMEM;
    }
    memcpy(j->id, rec->id, ID_LEN + 1);
    j->state = rec->state;
    j->created_ms = rec->created_ms;
    j->finished_ms = rec->finished_ms;
    j->round = rec->round;
    j->bytes = rec->bytes;
    j->owner = o;
    enum rc rc = link_job(ji, j);
    if (rc != RC_OK) {
        free(j);
        owner_gc(ji, o);
        return rc;
    }
    o->jobs++;
    if (j->state == JOB_QUEUED)
        o->queued++;
    else if (!jobstate_is_terminal(j->state))
        o->running++;
    if (j->state != JOB_QUEUED && j->round > ji->current)
        ji->current = j->round;
    if (j->round > o->last_round)
        o->last_round = j->round;
    if (!bytes_counted)
        o->bytes += j->bytes;
    return RC_OK;
}

enum rc
jobindex_add(struct jobindex *ji, const struct jobindex_rec *rec)
{
    return insert(ji, rec, false);
}

struct ji_job *
jobindex_get(const struct jobindex *ji, const char *id)
{
    return strmap_get(&ji->jobs, id);
}

bool
jobindex_remove(struct jobindex *ji, const char *id)
{
    struct ji_job *j = strmap_del(&ji->jobs, id);
    if (j == NULL)
        return false;
    struct ji_owner *o = j->owner;
    vec_remove(&ji->all, j, by_created);
    vec_remove(&o->list, j, by_created);
    if (j->state == JOB_QUEUED) {
        vec_remove(&ji->queue, j, by_round);
        o->queued--;
    } else if (!jobstate_is_terminal(j->state)) {
        o->running--;
    }
    o->bytes -= j->bytes < o->bytes ? j->bytes : o->bytes;
    o->jobs--;
    free(j);
    owner_gc(ji, o);
    return true;
}

void
jobindex_end(struct jobindex *ji, const char *id, enum job_state st, int64_t finished_ms,
             uint64_t bytes)
{
    struct ji_job *j = strmap_get(&ji->jobs, id);
    if (j == NULL || !jobstate_is_terminal(st))
        return;
    struct ji_owner *o = j->owner;
    if (j->state == JOB_QUEUED) {
        vec_remove(&ji->queue, j, by_round);
        o->queued--;
    } else if (!jobstate_is_terminal(j->state)) {
        o->running--;
    }
    o->bytes = o->bytes - (j->bytes < o->bytes ? j->bytes : o->bytes) + bytes;
    j->bytes = bytes;
    j->state = st;
    j->finished_ms = finished_ms;
}

/*** admission ***/

enum jobindex_verdict
jobindex_reserve(struct jobindex *ji, const char *key, const struct jobindex_quota *q)
{
    if (ji->queue.n + ji->reserved >= q->max_queue)
        return JOBINDEX_QUEUE_FULL;
    struct ji_owner *o = owner_get(ji, key, true);
    if (o == NULL)
        return JOBINDEX_QUEUE_FULL;
    enum jobindex_verdict v = JOBINDEX_OK;
    if (q->per_owner && q->user_max_queued > 0 && o->queued + o->reserved >= q->user_max_queued)
        v = JOBINDEX_USER_QUEUED;
    else if (q->per_owner && q->user_max_bytes > 0 && o->bytes >= q->user_max_bytes)
        v = JOBINDEX_USER_BYTES;
    if (v != JOBINDEX_OK) {
        owner_gc(ji, o);
        return v;
    }
    o->reserved++;
    ji->reserved++;
    return JOBINDEX_OK;
}

enum jobindex_verdict
jobindex_admit(struct jobindex *ji, const char *key, uint64_t bytes, const struct jobindex_quota *q,
               int64_t *out_round)
{
    struct ji_owner *o = owner_get(ji, key, false);
    *out_round = 0;
    if (o == NULL || o->reserved == 0)
        return JOBINDEX_QUEUE_FULL; /* not reserved: a caller's mistake */
    if (q->per_owner && q->user_max_bytes > 0 &&
        (bytes > q->user_max_bytes || o->bytes > q->user_max_bytes - bytes))
        return JOBINDEX_USER_BYTES;
    o->bytes += bytes;
    *out_round = o->last_round + 1 > ji->current ? o->last_round + 1 : ji->current;
    o->last_round = *out_round;
    return JOBINDEX_OK;
}

void
jobindex_release(struct jobindex *ji, const char *key, uint64_t admitted_bytes)
{
    struct ji_owner *o = owner_get(ji, key, false);
    if (o == NULL || o->reserved == 0)
        return;
    o->reserved--;
    ji->reserved--;
    o->bytes -= admitted_bytes < o->bytes ? admitted_bytes : o->bytes;
    owner_gc(ji, o);
}

enum rc
jobindex_enqueue(struct jobindex *ji, const struct jobindex_rec *rec)
{
    struct ji_owner *o = owner_get(ji, rec->owner_key, false);
    if (o == NULL || o->reserved == 0 || rec->state != JOB_QUEUED)
        return RC_CONFLICT;
    enum rc rc = insert(ji, rec, true);
    if (rc == RC_OK) {
        o->reserved--;
        ji->reserved--;
    }
    return rc;
}

/*** the queue ***/

struct ji_job *
jobindex_pick(struct jobindex *ji, uint64_t max_running, size_t *out_deferred,
              uint64_t *out_deferred_bytes)
{
    *out_deferred = 0;
    *out_deferred_bytes = 0;
    for (size_t i = 0; i < ji->queue.n; i++) {
        struct ji_job *j = ji->queue.v[i];
        if (max_running == 0 || j->owner->running < max_running)
            return j;
        if (!j->deferred) {
            j->deferred = true;
            (*out_deferred)++;
            *out_deferred_bytes += j->bytes;
        }
    }
    return NULL;
}

void
jobindex_take(struct jobindex *ji, struct ji_job *j)
{
    if (j->state != JOB_QUEUED)
        return;
    vec_remove(&ji->queue, j, by_round);
    j->state = JOB_STAGING;
    j->owner->queued--;
    j->owner->running++;
    if (j->round > ji->current)
        ji->current = j->round;
}

bool
jobindex_unqueue(struct jobindex *ji, const char *id, int64_t finished_ms)
{
    struct ji_job *j = strmap_get(&ji->jobs, id);
    if (j == NULL || j->state != JOB_QUEUED)
        return false;
    vec_remove(&ji->queue, j, by_round);
    j->owner->queued--;
    j->state = JOB_CANCELED;
    j->finished_ms = finished_ms;
    return true;
}

long
jobindex_position(const struct jobindex *ji, const char *id)
{
    const struct ji_job *j = strmap_get(&ji->jobs, id);
    long i = j != NULL && j->state == JOB_QUEUED ? vec_find(&ji->queue, j, by_round) : -1;
    return i >= 0 ? i + 1 : -1;
}

int64_t
jobindex_first_finished(const struct jobindex *ji, const char *key)
{
    const struct ji_owner *o = strmap_get(&ji->owners, key);
    int64_t first = 0;
    for (size_t i = 0; o != NULL && i < o->list.n; i++) {
        const struct ji_job *j = o->list.v[i];
        if (jobstate_is_terminal(j->state) && (first == 0 || j->finished_ms < first))
            first = j->finished_ms;
    }
    return first;
}

/*** listing ***/

/* Does j pass the state filter? A started job's index state is only "started": it may be in
 * any later state by now, which the caller checks in its record. */
static bool
state_fits(const struct ji_job *j, int state)
{
    if (state < 0 || (int)j->state == state)
        return true;
    return state != JOB_QUEUED && j->state == JOB_STAGING;
}

size_t
jobindex_list(const struct jobindex *ji, const struct jobindex_page *page, char (*ids)[ID_LEN + 1],
              bool *out_more, int64_t *out_next_created, char out_next_id[ID_LEN + 1])
{
    const struct ji_vec *v = &ji->all;
    size_t got = 0, scanned = 0, i;
    *out_more = false;
    if (page->owner_key != NULL) {
        const struct ji_owner *o = strmap_get(&ji->owners, page->owner_key);
        if (o == NULL)
            return 0;
        v = &o->list;
    }
    i = v->n;
    if (page->has_cursor) {
        struct ji_job key = {.created_ms = page->cursor_created};
        memcpy(key.id, page->cursor_id, ID_LEN + 1);
        i = lower_bound(v, &key, by_created);
    }
    while (i > 0 && got < page->limit && scanned < page->scan_max) {
        const struct ji_job *j = v->v[--i];
        scanned++;
        if (state_fits(j, page->state))
            memcpy(ids[got++], j->id, ID_LEN + 1);
        *out_next_created = j->created_ms;
        memcpy(out_next_id, j->id, ID_LEN + 1);
    }
    *out_more = i > 0;
    return got;
}

void
jobindex_cursor_format(int64_t created, const char *id, char out[JOBINDEX_CURSOR_MAX])
{
    /* Fits: 16 hex digits, a dot and an id of 26 characters. */
    (void)snprintf(out, JOBINDEX_CURSOR_MAX, "%llx.%s", (unsigned long long)created, id);
}

bool
jobindex_cursor_parse(const char *s, int64_t *out_created, char out_id[ID_LEN + 1])
{
    const char *dot = strchr(s, '.');
    size_t hex = dot ? (size_t)(dot - s) : 0;
    if (hex == 0 || hex > 16 || strlen(dot + 1) != ID_LEN || !id_is_valid(dot + 1, ID_LEN))
        return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < hex; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0 || (i == 0 && d == 0 && hex > 1))
            return false; /* not a digit, or a leading zero we never write */
        v = v * 16 + (unsigned long long)d;
    }
    if (v > (unsigned long long)INT64_MAX)
        return false;
    *out_created = (int64_t)v;
    memcpy(out_id, dot + 1, ID_LEN + 1);
    return true;
}
