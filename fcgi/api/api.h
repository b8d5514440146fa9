/* api: the HTTP routes of api.md over struct req; api_dispatch is the only entry point. */
#ifndef LABBOX_API_H
#define LABBOX_API_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "core/jobstore.h"
#include "core/scheduler.h"
#include "http/request.h"

struct api {
    const struct config *cfg;  /* borrowed */
    struct jobstore *js;       /* borrowed */
    struct scheduler *sched;   /* borrowed */
    atomic_bool shutting_down; /* new uploads get 503 */
    atomic_uint streams;       /* open event streams */
};

/* api_dispatch answers one request completely (routing, errors included). */
void api_dispatch(struct api *api, struct req *r);

/* Handlers, by file: api/jobs.c, api/outputs.c, api/events.c. */
void api_create_job(struct api *api, struct req *r);
void api_get_job(struct api *api, struct req *r, const char *id);
void api_get_logs(struct api *api, struct req *r, const char *id);
void api_cancel_job(struct api *api, struct req *r, const char *id);
void api_delete_job(struct api *api, struct req *r, const char *id);
void api_list_outputs(struct api *api, struct req *r, const char *id);
void api_get_output(struct api *api, struct req *r, const char *id, const char *path);
void api_get_zip(struct api *api, struct req *r, const char *id);
void api_events(struct api *api, struct req *r, const char *id);

/* Shared helpers (api/common.c). */
/* api_load_job: open and load a job; on failure it has answered (404/500) and returns false.
 * On success *out_dirfd and *out_job are the caller's (close, jobstore_job_fini). */
bool api_load_job(struct api *api, struct req *r, const char *id, int *out_dirfd,
                  struct job *out_job);
/* api_job_public: the public job object (caller owns) with the live queue position and, once
 * the job has ended, its outputs index from dirfd; NULL on error. */
json_object *api_job_public(struct api *api, int dirfd, const struct job *job);
/* api_internal: answer 500 without details (they went to the log). */
void api_internal(struct req *r);
/* api_log_offset: the log offset a request asks for: the Last-Event-ID header when
 * use_event_id and present, else ?offset=, else 0; checked against log.jsonl (logfd): it must
 * be within the file and at the start of a record. false after answering 400. */
bool api_log_offset(struct req *r, bool use_event_id, int logfd, uint64_t *out);

#endif
