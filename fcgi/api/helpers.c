/* helpers: what several handlers share: loading a job, its public view, log offsets, 500s. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jobcache.h"
#include "core/metrics.h"
#include "defaults.h"
#include "json.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/fsutil.h"

void
api_internal(struct req *r)
{
    resp_problem(r, PROBLEM_INTERNAL, NULL, NULL,
                 "the server could not complete the request; see its log");
}

bool
api_log_offset(struct req *r, bool use_event_id, int logfd, uint64_t *out)
{
    char v[32];
    const char *h = use_event_id ? req_param(r, "HTTP_LAST_EVENT_ID") : NULL;
    struct stat st;
    char prev = '\n';
    *out = 0;
    enum rc rc = RC_OK;
    if (h != NULL && h[0] != '\0') {
        int k = snprintf(v, sizeof(v), "%s", h);
        rc = k >= 0 && (size_t)k < sizeof(v) ? RC_OK : RC_TOOBIG;
    } else {
        rc = req_query(r, "offset", v, sizeof(v));
        if (rc == RC_NOTFOUND)
            return true;
    }
    if (rc != RC_OK) {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "the offset must be a whole number");
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0') {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "the offset must be a whole number");
        return false;
    }
    if (fstat(logfd, &st) != 0 || n > (uint64_t)st.st_size) {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "the offset is past the end of the log");
        return false;
    }
    /* An offset must sit on a record boundary: 0 or just after a newline. */
    if (n > 0 && (pread(logfd, &prev, 1, (off_t)n - 1) != 1 || prev != '\n')) {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL,
                     "the offset is not the start of a log record");
        return false;
    }
    *out = n;
    return true;
}

static void
not_found(struct req *r)
{
    resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "no such job or resource");
}

bool
api_load_job(struct api *api, struct req *r, const char *id, int *out_dirfd, struct job *out_job)
{
    *out_dirfd = -1;
    jobstore_job_init(out_job);
    enum rc rc = jobstore_open_job(api->js, id, out_dirfd);
    if (rc == RC_OK)
        rc = jobstore_load(*out_dirfd, out_job);
    if (rc == RC_OK && !api_may_see(api, r, out_job))
        rc = RC_NOTFOUND; /* someone else's job: exactly as if there were none */
    if (rc == RC_OK)
        return true;
    jobstore_job_fini(out_job);
    if (*out_dirfd >= 0)
        close(*out_dirfd);
    *out_dirfd = -1;
    if (rc == RC_NOTFOUND)
        not_found(r);
    else
        api_internal(r);
    return false;
}

json_object *
api_job_public(struct api *api, uint64_t job_ttl, int dirfd, const struct job *job)
{
    long pos = -1;
    json_object *outputs = NULL;
    if (job->state == JOB_QUEUED)
        pos = scheduler_position(api->sched, job->id);
    if (jobstate_is_terminal(job->state) && jobstore_outputs_index(dirfd, &outputs) != RC_OK)
        return NULL;
    json_object *o = jobstore_public(job, pos, outputs, api_view(api), job_ttl);
    json_object_put(outputs);
    return o;
}

bool
api_room_for_job(struct api *api, struct req *r)
{
    if (atomic_load(&api->shutting_down)) {
        resp_problem(r, PROBLEM_UNAVAILABLE, NULL, NULL, "the server is shutting down");
        return false;
    }
    if (fs_free_mb(api->js->data_fd) < r->cfg->disk_reserve_mb) {
        resp_problem(r, PROBLEM_UNAVAILABLE, "Retry-After: 60\r\n", NULL,
                     "the server is low on disk space; try again later");
        return false;
    }
    return true;
}

enum rc
api_publish_job(struct api *api, const struct req *r, struct jobstore_stage *stage, struct job *job,
                struct sched_ticket *t)
{
    memcpy(job->id, stage->id, sizeof(job->id));
    job->owner = r->who;
    job->round = t->round;
    (void)snprintf(job->backend, sizeof(job->backend), "%s", r->cfg->backend);
    job->created_ms = clock_real_ms();
    enum rc rc = jobstore_stage_publish(api->js, stage, job);
    if (rc == RC_OK && scheduler_enqueue(api->sched, t, job) != RC_OK) {
        log_err("job=%s could not be queued now; it will be at the next start", job->id);
        scheduler_release(api->sched, t);
    }
    return rc;
}

/* render_view: the cached view of a job: all of it for every job but a queued one, whose
 * queue position is live (rendered per read). The variant is the job_ttl the expiry is shown
 * with (a reload may change it); the view bits (api_view) follow identity, which only a restart
 * changes. */
static enum rc
render_view(void *ctx, uint64_t job_ttl, int dirfd, const struct job *job, char **out,
            size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (job->state == JOB_QUEUED)
        return RC_OK;
    json_object *o = api_job_public(ctx, job_ttl, dirfd, job);
    size_t len = 0;
    const char *s = o != NULL ? json_object_to_json_string_length(o, RESP_JSON_FLAGS, &len) : NULL;
    enum rc rc = s != NULL ? RC_OK : RC_IO;
    if (s != NULL && (*out = malloc(len + 1)) == NULL)
        rc = RC_NOMEM;
    if (*out != NULL) {
        memcpy(*out, s, len + 1);
        *out_len = len;
    }
    json_object_put(o);
    return rc;
}

enum rc
api_cache_start(struct api *api)
{
    api->cache = jobcache_new(api->js, render_view, api);
    return api->cache != NULL ? RC_OK : RC_NOMEM;
}
