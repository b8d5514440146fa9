/* jobindex: serve's in-memory view of every job: its owner, its state, its round in the fair
 * queue and the bytes it keeps; per owner the tallies quotas are checked against; the fair
 * queue itself; pages of the job list. Pure: no I/O and no locking (the scheduler owns one
 * index, rebuilt from the job records at start-up and changed only under its mutex).
 *
 * Owners. A job belongs to an owner key: "u:<name>" (remote_user), "a:<address key>"
 * (address) or "" (nobody, identity = none: one shared owner). An owner lives while it has
 * jobs in the index or uploads in flight.
 *
 * The fair queue: round-robin across owners with queued jobs, FIFO within one owner. A job gets
 * a round when its upload is admitted: round = max(current, last + 1), where current is the
 * largest round taken by the dispatcher so far and last the owner's latest round. The queue is
 * ordered by (round, created_ms, id) and the dispatcher takes the first job whose owner is
 * under user_max_running. So an owner with 10 queued jobs holds rounds r..r+9, and another
 * owner's first job gets the current round: it goes before all of them but the ones already in
 * that round, i.e. into the next free slot. Rounds are stored in the job records, so the order
 * after a restart is the order before it, and queue_position is the rank in this order.
 *
 * Listing. Every job is also in a list by (created_ms, id), one for all jobs and one per owner;
 * a page walks one of them from the newest down, from an opaque cursor (the created_ms and id of
 * the last entry examined), examining at most scan_max entries so a page costs the same however
 * many jobs there are. The state kept for a job started by a supervisor is JOB_STAGING until
 * the dispatcher sees it end (the supervisor, another process, moves it on): a page filtered by
 * staging, running or collecting, or by a terminal state, includes such jobs, and the caller
 * checks the state in the record.
 *
 * Memory: about 150 bytes per job and 250 per owner.
 */
#ifndef LABBOX_JOBINDEX_H
#define LABBOX_JOBINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobstore.h"
#include "defaults.h"
#include "jobs/jobstate.h"
#include "rc.h"
#include "util/strmap.h"

#define JOBINDEX_KEY_MAX    (JOB_OWNER_MAX + 2) /* "u:" + a name, NUL included */
#define JOBINDEX_CURSOR_MAX 48                  /* a cursor's text, NUL included */

struct ji_vec {
    struct ji_job **v;
    size_t n, cap;
};

struct ji_owner {
    char key[JOBINDEX_KEY_MAX];
    size_t jobs;        /* jobs of this owner in the index */
    size_t queued;      /* of them queued */
    size_t running;     /* of them started and not yet seen ending */
    size_t reserved;    /* uploads in flight (reserved, not yet queued or released) */
    uint64_t bytes;     /* kept by its jobs, plus bytes admitted for uploads in flight */
    int64_t last_round; /* the latest round given to one of its jobs */
    struct ji_vec list; /* its jobs by (created_ms, id) */
};

struct ji_job {
    char id[ID_LEN + 1];
    enum job_state state; /* queued, staging (any live state past queued) or terminal */
    bool deferred;        /* passed over for user_max_running at least once */
    int64_t created_ms;
    int64_t finished_ms; /* 0 while live */
    int64_t round;
    uint64_t bytes; /* inputs while live; everything kept once terminal */
    struct ji_owner *owner;
};

struct jobindex {
    struct strmap jobs;   /* id -> struct ji_job */
    struct strmap owners; /* key -> struct ji_owner */
    struct ji_vec all;    /* every job by (created_ms, id) */
    struct ji_vec queue;  /* queued jobs by (round, created_ms, id) */
    int64_t current;      /* the largest round taken so far */
    size_t reserved;      /* uploads in flight, all owners */
};

/* A job as the index takes it (from a record, or a new upload). */
struct jobindex_rec {
    const char *id;
    const char *owner_key;
    enum job_state state;
    int64_t created_ms, finished_ms, round;
    uint64_t bytes;
};

/* The limits an admission is checked against (0 = no limit for the user_* ones). */
struct jobindex_quota {
    uint64_t max_queue; /* jobs waiting and uploads in flight, all owners */
    bool per_owner;     /* identity is on: the user_* limits apply */
    uint64_t user_max_queued, user_max_running, user_max_bytes;
};

enum jobindex_verdict {
    JOBINDEX_OK,
    JOBINDEX_QUEUE_FULL,  /* max_queue */
    JOBINDEX_USER_QUEUED, /* user_max_queued */
    JOBINDEX_USER_BYTES,  /* user_max_bytes */
};

void jobindex_init(struct jobindex *ji);
void jobindex_fini(struct jobindex *ji);

/* jobindex_owner_key: the owner key of o (see above) into out. */
void jobindex_owner_key(const struct job_owner *o, char out[JOBINDEX_KEY_MAX]);

/* jobindex_add: a job from its record (start-up) with its round. A live job past queued
 * counts as running for its owner. RC_CONFLICT when the id is already there; RC_NOMEM. */
enum rc jobindex_add(struct jobindex *ji, const struct jobindex_rec *rec) LB_MUST_CHECK;
/* jobindex_get: the job with id, or NULL. */
struct ji_job *jobindex_get(const struct jobindex *ji, const char *id);
/* jobindex_remove: forget job id (deleted or expired); false when it was not there. */
bool jobindex_remove(struct jobindex *ji, const char *id);
/* jobindex_end: job id reached terminal state st at finished_ms and keeps bytes. */
void jobindex_end(struct jobindex *ji, const char *id, enum job_state st, int64_t finished_ms,
                  uint64_t bytes);

/* jobindex_reserve: may owner key upload a job now? On JOBINDEX_OK an upload is in flight for
 * it until jobindex_enqueue or jobindex_release. RC-like errors: JOBINDEX_QUEUE_FULL when out
 * of memory as well (the caller cannot tell the difference, and need not). */
enum jobindex_verdict jobindex_reserve(struct jobindex *ji, const char *key,
                                       const struct jobindex_quota *q);
/* jobindex_admit: the upload in flight for key has `bytes`: within user_max_bytes? On
 * JOBINDEX_OK they count for the owner and *out_round is the job's round. */
enum jobindex_verdict jobindex_admit(struct jobindex *ji, const char *key, uint64_t bytes,
                                     const struct jobindex_quota *q, int64_t *out_round);
/* jobindex_release: the upload in flight for key ended without a job; admitted_bytes are
 * what jobindex_admit counted for it (0 if it was not admitted). */
void jobindex_release(struct jobindex *ji, const char *key, uint64_t admitted_bytes);
/* jobindex_enqueue: the upload in flight for rec->owner_key became queued job rec (its bytes
 * those admitted). RC_NOMEM (the upload stays in flight: release it). */
enum rc jobindex_enqueue(struct jobindex *ji, const struct jobindex_rec *rec) LB_MUST_CHECK;

/* jobindex_pick: the queued job to start next: the first in queue order whose owner has fewer
 * than max_running started (0 = no limit); NULL when none may start. Jobs passed over are
 * marked deferred; *out_deferred counts those marked now (bytes in *out_deferred_bytes). */
struct ji_job *jobindex_pick(struct jobindex *ji, uint64_t max_running, size_t *out_deferred,
                             uint64_t *out_deferred_bytes);
/* jobindex_take: job j (queued) is being started. */
void jobindex_take(struct jobindex *ji, struct ji_job *j);
/* jobindex_unqueue: queued job id leaves the queue as canceled; false when it was not queued. */
bool jobindex_unqueue(struct jobindex *ji, const char *id, int64_t finished_ms);
/* jobindex_position: the 1-based place of job id in the queue, or -1 when it is not queued. */
long jobindex_position(const struct jobindex *ji, const char *id);
/* jobindex_first_finished: the earliest finished_ms among owner key's ended jobs (0 = none). */
int64_t jobindex_first_finished(const struct jobindex *ji, const char *key);

/* A page of the job list. */
struct jobindex_page {
    const char *owner_key; /* whose jobs; NULL = everyone's */
    int state;             /* an enum job_state to filter on, or -1 */
    bool has_cursor;       /* continue after (cursor_created, cursor_id) */
    int64_t cursor_created;
    char cursor_id[ID_LEN + 1];
    size_t limit;    /* ids wanted, at least 1 */
    size_t scan_max; /* entries examined at most */
};

/* jobindex_list: up to page->limit ids (newest first) into ids; their count. *out_more tells
 * whether entries are left; then (*out_next_created, out_next_id) is the cursor to go on. */
size_t jobindex_list(const struct jobindex *ji, const struct jobindex_page *page,
                     char (*ids)[ID_LEN + 1], bool *out_more, int64_t *out_next_created,
                     char out_next_id[ID_LEN + 1]);

/* jobindex_cursor_format / jobindex_cursor_parse: the opaque cursor text of (created, id)
 * ("<created_ms in hex>.<id>"); parse is strict: false for anything it did not write. */
void jobindex_cursor_format(int64_t created, const char *id, char out[JOBINDEX_CURSOR_MAX]);
bool jobindex_cursor_parse(const char *s, int64_t *out_created, char out_id[ID_LEN + 1]);

#endif
