/* scheduler: the fair queue, quotas, the concurrency cap, supervisor processes, recovery,
 * retention, and the job list.
 *
 * Theory of operation. `serve` keeps an in-memory index of every job (core/jobindex.h: owners,
 * states, rounds, bytes kept, the fair queue) rebuilt from the job records at start-up
 * (reconcile), and the set of jobs with a live supervisor. One dispatcher thread wakes on new
 * jobs and every 200 ms: it reaps exited children, drops supervisors whose lock became free
 * (re-spawning a recovery supervisor for a job they left unfinished, at most
 * SCHED_MAX_RECOVERIES times; a job that ended updates the index), starts supervisors for the
 * jobs the fair queue picks while fewer than max_concurrent run, purges deleted jobs once their
 * supervisor has ended, and once a minute (or every job_ttl / 2, if shorter) deletes finished
 * jobs older than job_ttl. Every 10 s it checks the backend (its check hook, then a staging
 * probe: a work dir made and removed in sandbox_dir as a job's is); scheduler_backend_status
 * reports the last result. Each round reads the configuration snapshot current when it began
 * (util/cfgsnap.h), so max_concurrent and job_ttl follow a reload; request threads pass their
 * own snapshot (scheduler_reserve, kept in the ticket). It holds the lock only to copy and
 * update its sets, never across file I/O or a spawn. A supervisor gets the job's flock already
 * taken, as fd 3, and its own session, so it outlives a restart of `serve`. All index state is
 * behind one mutex; request threads only reserve and admit uploads, enqueue, look up positions and
 * pages, take queued jobs out, and mark deleted ones.
 */
#ifndef LABBOX_SCHEDULER_H
#define LABBOX_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "core/jobindex.h"
#include "core/jobstore.h"
#include "rc.h"
#include "util/cfgsnap.h"

#define SCHED_MAX_RECOVERIES 3

struct scheduler;

/* scheduler_start: reconcile the data dir and start the dispatcher, which takes a reader slot
 * of snaps (RC_NOMEM when none is left). exe is the labbox binary, config_path the file
 * supervisors read (NULL = none). *out is freed by scheduler_stop. */
enum rc scheduler_start(struct cfgsnap *snaps, struct jobstore *js, const char *exe,
                        const char *config_path, struct scheduler **out) LB_MUST_CHECK;
/* scheduler_stop: stop the dispatcher (supervisors keep running) and free. */
void scheduler_stop(struct scheduler *sc);

/* An upload on its way to the queue. */
struct sched_ticket {
    char owner_key[JOBINDEX_KEY_MAX]; /* jobindex_owner_key of the uploader */
    uint64_t admitted;                /* bytes scheduler_admit counted */
    int64_t round;                    /* the job's round, from scheduler_admit */
    int retry_after;                  /* seconds, when a verdict refused */
    const struct config *cfg;         /* the request's snapshot: max_queue, quotas, job_ttl */
};

/* scheduler_reserve: claim a queue slot for owner before reading an upload of (at most)
 * declared bytes: JOBINDEX_OK, or why not (max_queue, user_max_queued, user_max_bytes of cfg,
 * the request's snapshot, already reached); the caller answers 429 with t->retry_after. Each
 * JOBINDEX_OK is followed by exactly one scheduler_enqueue or scheduler_release (which use the
 * same snapshot, from the ticket). */
enum jobindex_verdict scheduler_reserve(struct scheduler *sc, const struct config *cfg,
                                        const struct job_owner *owner, uint64_t declared,
                                        struct sched_ticket *t);
/* scheduler_admit: the upload holds bytes: within user_max_bytes? Sets t->round. */
enum jobindex_verdict scheduler_admit(struct scheduler *sc, struct sched_ticket *t, uint64_t bytes);
/* scheduler_release: the reserved upload ends without a job. */
void scheduler_release(struct scheduler *sc, struct sched_ticket *t);
/* scheduler_enqueue: job's dir is in place and says queued (with t->round); queue it. */
enum rc scheduler_enqueue(struct scheduler *sc, struct sched_ticket *t,
                          const struct job *job) LB_MUST_CHECK;

/* scheduler_position: 1-based position of a queued job in the fair queue's order, or -1. */
long scheduler_position(struct scheduler *sc, const char *id);

/* scheduler_list: a page of the job list (jobindex_list) read under the lock. */
size_t scheduler_list(struct scheduler *sc, const struct jobindex_page *page,
                      char (*ids)[ID_LEN + 1], bool *out_more, int64_t *out_next_created,
                      char out_next_id[ID_LEN + 1]);

/* scheduler_cancel_queued: if id is still queued, remove it and write it canceled (under the
 * scheduler's lock, so no supervisor can start it meanwhile); *out_done tells whether it was. */
enum rc scheduler_cancel_queued(struct scheduler *sc, const char *id, bool *out_done) LB_MUST_CHECK;

/* scheduler_delete: take job id out of the queue and out of jobs/ at once. When a supervisor
 * still runs it (the caller has asked it to cancel), *out_live is set and the dispatcher
 * removes the job's files once it has ended; otherwise they are removed now. RC_NOTFOUND
 * when there is no such job. */
enum rc scheduler_delete(struct scheduler *sc, const char *id, bool *out_live) LB_MUST_CHECK;

/* scheduler_counts: jobs queued, and supervisors running. */
void scheduler_counts(struct scheduler *sc, size_t *out_queued, size_t *out_running);

/* scheduler_backend_status: the result of the last backend check (run every 10 s by the
 * dispatcher: the backend's check hook, then the staging probe): true when usable; otherwise
 * why in buf. */
bool scheduler_backend_status(struct scheduler *sc, char *buf, size_t len);

#endif
