/* api: the HTTP routes of api.md over struct req; api_dispatch is the only entry point. */
#ifndef LABBOX_API_H
#define LABBOX_API_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "core/jobcache.h"
#include "core/jobstore.h"
#include "core/scheduler.h"
#include "defaults.h"
#include "http/park.h"
#include "http/request.h"

/* What every request shares. The configuration is not here: each request has its own
 * snapshot, r->cfg, taken when it began (util/cfgsnap.h). */
struct api {
    struct jobstore *js;       /* borrowed */
    struct scheduler *sched;   /* borrowed */
    atomic_bool shutting_down; /* new uploads get 503 */
    atomic_uint streams;       /* open event streams */
    atomic_uint zip_builds;    /* outputs zips being built by request threads */
    unsigned fd_streams;       /* the streams the open-file limit allows (max_streams is lower) */
    struct park *park;         /* parked requests (event streams, waits), http/park.h */
    /* identity of the start-up snapshot: a restart key, the same in every snapshot, so code
     * without a request's snapshot (a parked stream's steps) may use it too. */
    enum identity_mode identity;
    struct jobcache *cache; /* status reads (core/jobcache.h) */
};

/* What a route's pattern captured: the job id (":id", NUL-terminated; "" when none) and the
 * rest ("*": borrowed, NUL-terminated by api_dispatch; NULL when none). */
struct api_args {
    char id[ID_LEN + 1];
    const char *rest;
    size_t rest_len;
};

typedef void api_handler_fn(struct api *api, struct req *r, const struct api_args *a);

struct api_route {
    const char *method;  /* GET routes also answer HEAD */
    const char *pattern; /* below /api/: literals, ":id", a final "*" */
    api_handler_fn *fn;
};

/* api_dispatch answers one request completely (routing, errors included). */
void api_dispatch(struct api *api, struct req *r);
/* api_route_match: does path (below /api/) match pattern? Fills *out. Pure. */
bool api_route_match(const char *pattern, const char *path, struct api_args *out);
/* api_route_find: the route for method and path (a full /api/... path), or NULL; then allow
 * lists the methods other routes of that path answer ("" when no route has the path). */
const struct api_route *api_route_find(const char *method, const char *path, struct api_args *out,
                                       char *allow, size_t allowlen);

/* api_events_start: before serving, raise the open-file limit, find the streams it allows for
 * cfg (the start-up snapshot: threads needs a restart) and start the engine streams are parked
 * on (RC_NOMEM, RC_IO); api_events_stop: close every stream and stop the engine. */
enum rc api_events_start(struct api *api, const struct config *cfg) LB_MUST_CHECK;
void api_events_stop(struct api *api);

/* api_cache_start: the status-read cache (api->js set first). RC_NOMEM. */
enum rc api_cache_start(struct api *api) LB_MUST_CHECK;

/* Handlers, by file: api/service.c, api/jobs.c, api/joblist.c, api/outputs.c, api/events.c. */
api_handler_fn api_health, api_limits, api_metrics;
api_handler_fn api_create_job, api_get_job, api_get_logs, api_cancel_job, api_delete_job;
api_handler_fn api_list_jobs;
api_handler_fn api_list_outputs, api_get_output, api_get_zip, api_get_input, api_get_inputs_zip;
api_handler_fn api_agent, api_rerun_job;
api_handler_fn api_events;

/* api_wait_job (api/wait.c): GET /api/jobs/<id>?wait=N for job (loaded, its directory open on
 * *dirfd): true when it has answered (a bad wait: 400) or parked the request until the job ends
 * or N seconds pass (the waiter then owns the directory: *dirfd becomes -1); false when there
 * is nothing to wait for (no wait, wait=0, the job has ended, no room) and the caller answers. */
bool api_wait_job(struct api *api, struct req *r, int *dirfd, const struct job *job);

/* Who is asking, and quotas (api/people.c). */
/* api_identify: fill r->who and r->admin for r->cfg's identity setting; with remote_user and
 * no usable user it answers 401 and returns false. api_dispatch calls it for every request. */
bool api_identify(struct api *api, struct req *r);
/* api_may_see: may the caller see and manage job? Always without remote_user (the id is the
 * permission); with it, the job's owner and admins only. */
bool api_may_see(const struct api *api, const struct req *r, const struct job *job);
/* api_view: the jobstore_public view bits the identity setting calls for. */
unsigned api_view(const struct api *api);
/* api_answer_refusal: the 429 of a refused upload (queue_full, or user_quota naming the quota
 * in its "quota" member) with Retry-After; bytes is the upload's size when it was known. */
void api_answer_refusal(struct req *r, enum jobindex_verdict v, int retry_after, uint64_t bytes);

/* Shared helpers (api/helpers.c). */
/* api_load_job: open and load a job the caller may see (api_may_see: any other is the same 404
 * as an unknown id); on failure it has answered (404/500) and returns false. On success
 * *out_dirfd and *out_job are the caller's (close, jobstore_job_fini). */
bool api_load_job(struct api *api, struct req *r, const char *id, int *out_dirfd,
                  struct job *out_job);
/* api_job_public: the public job object (caller owns) with the live queue position, its
 * expiry after job_ttl (the caller's snapshot's: parked requests keep a copy) and, once the
 * job has ended, its outputs index from dirfd; NULL on error. */
json_object *api_job_public(struct api *api, uint64_t job_ttl, int dirfd, const struct job *job);
/* api_room_for_job: may a new job come in (not shutting down, disk above the reserve)? false
 * after answering 503. */
bool api_room_for_job(struct api *api, struct req *r);
/* api_publish_job: give job (its inputs staged in stage) its id, owner (r's), round (t's),
 * backend and creation time, publish it and queue it with the ticket the caller reserved and
 * admitted. RC_IO (logged): nothing was published, the ticket is still the caller's. */
enum rc api_publish_job(struct api *api, const struct req *r, struct jobstore_stage *stage,
                        struct job *job, struct sched_ticket *t) LB_MUST_CHECK;
/* api_answer_created: 201 with the new job's object and Location. */
void api_answer_created(struct api *api, struct req *r, const struct job *job);
/* api_answer_intake: the problem answer of a refused upload (core/intake). */
struct intake_error;
void api_answer_intake(struct req *r, const struct intake_error *e);
/* api_internal: answer 500 without details (they went to the log). */
void api_internal(struct req *r);
/* api_log_offset: the log offset a request asks for: the Last-Event-ID header when
 * use_event_id and present, else ?offset=, else 0; checked against log.jsonl (logfd): it must
 * be within the file and at the start of a record. false after answering 400. */
bool api_log_offset(struct req *r, bool use_event_id, int logfd, uint64_t *out);

#endif
