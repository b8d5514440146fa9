/* scheduler: the FIFO queue, the concurrency cap, supervisor processes, recovery, retention.
 *
 * Theory of operation. `serve` keeps an in-memory index rebuilt from the job directories at
 * start-up (reconcile): queued jobs in creation order, and the set of jobs with a live
 * supervisor. One dispatcher thread wakes on new jobs and every 200 ms: it reaps exited
 * children, drops supervisors whose lock became free (re-spawning a recovery supervisor for a
 * job they left unfinished, at most SCHED_MAX_RECOVERIES times), starts supervisors while fewer
 * than max_concurrent run, purges deleted jobs once their supervisor has ended, and once a
 * minute (or every job_ttl / 2, if shorter) deletes finished jobs older than job_ttl. It holds
 * the lock only to copy and update its sets, never across file I/O or a spawn. A
 * supervisor gets the job's flock already taken, as fd 3, and its own session, so it outlives a
 * restart of `serve`. All index state is behind one mutex; request threads only enqueue, look
 * up positions, take queued jobs out, and mark deleted ones.
 */
#ifndef LABBOX_SCHEDULER_H
#define LABBOX_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "core/jobstore.h"
#include "rc.h"

#define SCHED_MAX_RECOVERIES 3

struct scheduler;

/* scheduler_start: reconcile the data dir and start the dispatcher. exe is the labbox binary,
 * config_path the file supervisors read (NULL = none). *out is freed by scheduler_stop. */
enum rc scheduler_start(const struct config *cfg, struct jobstore *js, const char *exe,
                        const char *config_path, struct scheduler **out) LB_MUST_CHECK;
/* scheduler_stop: stop the dispatcher (supervisors keep running) and free. */
void scheduler_stop(struct scheduler *sc);

/* scheduler_reserve: claim a queue slot before accepting an upload. RC_BUSY when the queue is
 * full (the caller answers 429). Each successful reserve is followed by exactly one
 * scheduler_enqueue or scheduler_release. */
enum rc scheduler_reserve(struct scheduler *sc) LB_MUST_CHECK;
void scheduler_release(struct scheduler *sc);
/* scheduler_enqueue: the job dir of id is in place and says queued; queue it (uses the slot). */
enum rc scheduler_enqueue(struct scheduler *sc, const char *id) LB_MUST_CHECK;

/* scheduler_position: 1-based position of a queued job, or -1. */
long scheduler_position(struct scheduler *sc, const char *id);

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
 * dispatcher): true when usable; otherwise why in buf. */
bool scheduler_backend_status(struct scheduler *sc, char *buf, size_t len);

#endif
