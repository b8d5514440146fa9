/* jobstore: the job directory is the database. Paths, job.json read/replace, the public view.
 *
 * <data>/jobs/<id>/{job.json, log.jsonl, inputs/, work/, outputs/, lock, cancel}
 * <data>/tmp/ holds upload staging dirs and jobs being deleted; it is emptied at start-up.
 * job.json is replaced atomically. While a supervisor lives (it holds lock), only it writes
 * job.json; otherwise only `serve` does (queued jobs, recovery), under the scheduler's mutex.
 */
#ifndef LABBOX_JOBSTORE_H
#define LABBOX_JOBSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "jobs/jobstate.h"
#include "rc.h"

struct jobstore {
    const struct config *cfg; /* borrowed */
    int data_fd;              /* <data> */
    int jobs_fd;              /* <data>/jobs */
    int tmp_fd;               /* <data>/tmp */
};

/* jobstore_open creates <data>/{jobs,tmp} if needed and opens them. */
enum rc jobstore_open(struct jobstore *js, const struct config *cfg) LB_MUST_CHECK;
void jobstore_close(struct jobstore *js);

/* jobstore_open_job: an O_DIRECTORY fd of jobs/<id>; RC_NOTFOUND for an unknown or malformed
 * id (the same answer). */
enum rc jobstore_open_job(const struct jobstore *js, const char *id, int *out_fd) LB_MUST_CHECK;

/* jobstore_read: parse <dirfd>/job.json; *out is the caller's (json_object_put). */
enum rc jobstore_read(int job_dirfd, json_object **out) LB_MUST_CHECK;
/* jobstore_write: replace <dirfd>/job.json atomically with job. */
enum rc jobstore_write(int job_dirfd, json_object *job) LB_MUST_CHECK;

/* jobstore_state: the state of a job record (JOB_FAILED for a corrupt one). */
enum job_state jobstore_state(json_object *job);

/* jobstore_set_state: move job to state with reason and detail (either may be NULL/NONE),
 * stamping started_at / finished_at. RC_CONFLICT for an illegal transition. */
enum rc jobstore_set_state(json_object *job, enum job_state to, enum job_reason reason,
                           const char *detail) LB_MUST_CHECK;

/* jobstore_public: a new object for the API: the record without private members (sandbox,
 * seq, ...) plus links and queue_position (-1 = null). The caller owns it. */
json_object *jobstore_public(json_object *job, long queue_position);

/* jobstore_lock_is_held: is a supervisor alive for this job (someone holds <dirfd>/lock)? */
bool jobstore_lock_is_held(int job_dirfd);

/* jobstore_each_fn: one job of jobstore_foreach; dirfd and job are borrowed for the call.
 * Returning false stops the walk. */
typedef bool jobstore_each_fn(void *ctx, const char *id, int dirfd, json_object *job);
/* jobstore_foreach: call fn for every job dir with a readable job.json (others are logged and
 * passed over). RC_IO when jobs/ cannot be read. */
enum rc jobstore_foreach(const struct jobstore *js, jobstore_each_fn *fn, void *ctx) LB_MUST_CHECK;

/* jobstore_remove: rename jobs/<id> into tmp/ then remove it recursively. */
enum rc jobstore_remove(const struct jobstore *js, const char *id) LB_MUST_CHECK;

#endif
