/* common: routing and helpers shared by the handlers. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/metrics.h"
#include "defaults.h"
#include "json.h"
#include "log.h"
#include "sandbox/sandbox.h"

void
api_internal(struct req *r)
{
    resp_problem(r, 500, "internal", "Internal error",
                 "the server could not complete the request; see its log", NULL, NULL);
}

bool
api_log_offset(struct req *r, bool use_event_id, int logfd, uint64_t *out)
{
    char v[32];
    const char *h = use_event_id ? req_param(r, "HTTP_LAST_EVENT_ID") : NULL;
    struct stat st;
    char prev = '\n';
    *out = 0;
    if (h != NULL && h[0] != '\0')
        (void)snprintf(v, sizeof(v), "%s", h);
    else if (!req_query(r, "offset", v, sizeof(v)))
        return true;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0') {
        resp_problem(r, 400, "bad_request", "Bad offset", "the offset must be a whole number", NULL,
                     NULL);
        return false;
    }
    if (fstat(logfd, &st) != 0 || n > (uint64_t)st.st_size) {
        resp_problem(r, 400, "bad_request", "Bad offset", "the offset is past the end of the log",
                     NULL, NULL);
        return false;
    }
    /* An offset must sit on a record boundary: 0 or just after a newline. */
    if (n > 0 && (pread(logfd, &prev, 1, (off_t)n - 1) != 1 || prev != '\n')) {
        resp_problem(r, 400, "bad_request", "Bad offset",
                     "the offset is not the start of a log record", NULL, NULL);
        return false;
    }
    *out = n;
    return true;
}

static void
not_found(struct req *r)
{
    resp_problem(r, 404, "not_found", "Not found", "no such job or resource", NULL, NULL);
}

bool
api_load_job(struct api *api, struct req *r, const char *id, int *out_dirfd, struct job *out_job)
{
    *out_dirfd = -1;
    jobstore_job_init(out_job);
    enum rc rc = jobstore_open_job(api->js, id, out_dirfd);
    if (rc == RC_OK)
        rc = jobstore_load(*out_dirfd, out_job);
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
api_job_public(struct api *api, int dirfd, const struct job *job)
{
    long pos = -1;
    json_object *outputs = NULL;
    if (job->state == JOB_QUEUED)
        pos = scheduler_position(api->sched, job->id);
    if (jobstate_is_terminal(job->state) && jobstore_outputs_index(dirfd, &outputs) != RC_OK)
        return NULL;
    json_object *o = jobstore_public(job, pos, outputs);
    json_object_put(outputs);
    return o;
}

static void
health(struct api *api, struct req *r)
{
    size_t queued = 0, running = 0;
    char why[512];
    bool ok = scheduler_backend_status(api->sched, why, sizeof(why));
    bool down = atomic_load(&api->shutting_down);
    scheduler_counts(api->sched, &queued, &running);
    json_object *o = json_object_new_object();
    if (o == NULL) {
        api_internal(r);
        return;
    }
    json_set_str(o, "status", ok && !down ? "ok" : "degraded");
    json_set_str(o, "backend", api->cfg->backend);
    json_object_object_add(o, "backend_ok", json_object_new_boolean(ok));
    if (!ok)
        json_set_str(o, "backend_error", why);
    if (down)
        json_set_str(o, "detail", "shutting down");
    json_set_i64(o, "queued", (int64_t)queued);
    json_set_i64(o, "running", (int64_t)running);
    json_set_i64(o, "max_concurrent", (int64_t)api->cfg->max_concurrent);
    json_set_str(o, "version", LABBOX_VERSION);
    resp_json(r, ok && !down ? 200 : 503, o, NULL);
    json_object_put(o);
}

static void
limits(struct api *api, struct req *r)
{
    const struct config *cfg = api->cfg;
    json_object *o = json_object_new_object();
    json_object *types = json_object_new_array();
    if (o == NULL || types == NULL) {
        json_object_put(o);
        json_object_put(types);
        api_internal(r);
        return;
    }
    json_set_i64(o, "max_file_bytes", (int64_t)cfg->max_file_bytes);
    json_set_i64(o, "max_job_bytes", (int64_t)cfg->max_job_bytes);
    json_set_i64(o, "max_files", (int64_t)cfg->max_files);
    const char *cur = cfg->allowed_types, *t;
    size_t n;
    while (config_next_type(&cur, &t, &n))
        json_object_array_add(types, json_object_new_string_len(t, (int)n));
    if (cfg->allow_octet_stream)
        json_object_array_add(types, json_object_new_string("application/octet-stream"));
    json_object_object_add(o, "allowed_types", types);
    json_set_i64(o, "wall_timeout_s", (int64_t)cfg->wall_timeout);
    json_set_i64(o, "params_max_bytes", PARAMS_MAX_BYTES);
    resp_json(r, 200, o, NULL);
    json_object_put(o);
}

static void
metrics(struct api *api, struct req *r)
{
    char why[8];
    struct metrics_gauges g = {.streams = atomic_load(&api->streams)};
    g.backend_ok = scheduler_backend_status(api->sched, why, sizeof(why));
    scheduler_counts(api->sched, &g.queued, &g.running);
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(&g, &text, &len) != RC_OK) {
        api_internal(r);
        return;
    }
    if (resp_start(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL) == RC_OK)
        RC_IGNORE(resp_write(r, text, len));
    free(text);
}

static void
method_not_allowed(struct req *r, const char *allow)
{
    char h[64];
    (void)snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
    resp_problem(r, 405, "method_not_allowed", "Method not allowed",
                 "this resource does not answer that method", NULL, h);
}

static bool
is(const struct req *r, const char *m)
{
    return strcmp(r->method, m) == 0;
}

void
api_dispatch(struct api *api, struct req *r)
{
    const char *p = r->path;
    if (strncmp(p, "/api/", 5) != 0) {
        not_found(r);
        return;
    }
    p += 5;
    if (strcmp(p, "health") == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            health(api, r);
        else
            method_not_allowed(r, "GET");
        return;
    }
    if (strcmp(p, "limits") == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            limits(api, r);
        else
            method_not_allowed(r, "GET");
        return;
    }
    if (strcmp(p, "metrics") == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            metrics(api, r);
        else
            method_not_allowed(r, "GET");
        return;
    }
    if (strcmp(p, "jobs") == 0 || strcmp(p, "jobs/") == 0) {
        if (is(r, "POST"))
            api_create_job(api, r);
        else
            method_not_allowed(r, "POST");
        return;
    }
    if (strncmp(p, "jobs/", 5) != 0) {
        not_found(r);
        return;
    }
    p += 5;
    char id[ID_LEN + 1];
    const char *slash = strchr(p, '/');
    size_t idlen = slash ? (size_t)(slash - p) : strlen(p);
    if (idlen != ID_LEN) {
        not_found(r);
        return;
    }
    memcpy(id, p, ID_LEN);
    id[ID_LEN] = '\0';
    const char *rest = slash ? slash : "";
    if (rest[0] == '\0') {
        if (is(r, "GET") || is(r, "HEAD"))
            api_get_job(api, r, id);
        else if (is(r, "DELETE"))
            api_delete_job(api, r, id);
        else
            method_not_allowed(r, "GET, DELETE");
    } else if (strcmp(rest, "/logs") == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            api_get_logs(api, r, id);
        else
            method_not_allowed(r, "GET");
    } else if (strcmp(rest, "/events") == 0) {
        if (is(r, "GET"))
            api_events(api, r, id);
        else
            method_not_allowed(r, "GET");
    } else if (strcmp(rest, "/cancel") == 0) {
        if (is(r, "POST"))
            api_cancel_job(api, r, id);
        else
            method_not_allowed(r, "POST");
    } else if (strcmp(rest, "/outputs") == 0 || strcmp(rest, "/outputs/") == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            api_list_outputs(api, r, id);
        else
            method_not_allowed(r, "GET");
    } else if (strcmp(rest, "/outputs.zip") == 0) {
        if (is(r, "GET"))
            api_get_zip(api, r, id);
        else
            method_not_allowed(r, "GET");
    } else if (strncmp(rest, "/outputs/", 9) == 0) {
        if (is(r, "GET") || is(r, "HEAD"))
            api_get_output(api, r, id, rest + 9);
        else
            method_not_allowed(r, "GET");
    } else {
        not_found(r);
    }
}
