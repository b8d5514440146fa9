/* jobs: create (streaming multipart upload), read, logs, cancel and delete a job. */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/agent.h"
#include "core/intake.h"
#include "core/metrics.h"
#include "defaults.h"
#include "jobs/joblog.h"
#include "json.h"
#include "log.h"
#include "parse/multipart.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

/*** upload ***/

#define UPLOAD_CHUNK 65536 /* bytes read from the request body at a time */

enum part_kind {
    PART_NONE,   /* outside a part, or an ignored one */
    PART_FILE,   /* a "files" part being written */
    PART_PARAMS, /* the "params" part being buffered */
};

struct upload {
    struct api *api;
    const struct config *cfg;    /* the request's snapshot */
    struct jobstore_stage stage; /* the job dir being staged */
    struct job job;              /* its record; inputs are added as they are accepted */
    struct pschema *schema;      /* the agent's, or NULL */
    struct intake in;            /* the checks, and the first refusal */
    enum part_kind kind;
    char *params; /* the params text */
    size_t params_len;
    bool have_params;
    bool aborted;               /* the client went away mid-body */
    struct sched_ticket ticket; /* the queue slot and quotas (scheduler_reserve) */
};

static enum rc
on_begin(void *ctx, const struct multipart_part *part)
{
    struct upload *u = ctx;
    u->kind = PART_NONE;
    if (span_eq(part->name, "params")) {
        if (u->have_params)
            return intake_refuse(&u->in, RC_BADREQ, INTAKE_BAD_REQUEST, NULL,
                                 "the params part appears more than once");
        u->have_params = true;
        u->kind = PART_PARAMS;
        return RC_OK;
    }
    if (!span_eq(part->name, "files"))
        return RC_OK; /* unknown fields are ignored, as forms may carry extras */
    if (part->filename.p == NULL)
        return intake_refuse(&u->in, RC_BADREQ, INTAKE_BAD_REQUEST, NULL,
                             "a files part has no filename");
    enum rc rc = intake_file_begin(&u->in, part->filename.p, part->filename.len);
    if (rc == RC_OK)
        u->kind = PART_FILE;
    return rc;
}

static enum rc
on_data(void *ctx, const char *p, size_t len)
{
    struct upload *u = ctx;
    if (u->kind == PART_PARAMS) {
        if (u->params_len + len > PARAMS_MAX_BYTES)
            return intake_refuse(&u->in, RC_BADREQ, INTAKE_BAD_REQUEST, NULL,
                                 "params is larger than %d bytes", PARAMS_MAX_BYTES);
        char *np = realloc(u->params, u->params_len + len + 1);
        if (np == NULL)
            return RC_NOMEM;
        u->params = np;
        memcpy(u->params + u->params_len, p, len);
        u->params_len += len;
        u->params[u->params_len] = '\0';
        return RC_OK;
    }
    return u->kind == PART_FILE ? intake_file_data(&u->in, p, len) : RC_OK;
}

static enum rc
on_end(void *ctx)
{
    struct upload *u = ctx;
    enum part_kind kind = u->kind;
    u->kind = PART_NONE;
    return kind == PART_FILE ? intake_file_end(&u->in) : RC_OK;
}

/* The problem of each refusal of intake (the same codes). */
static enum problem
problem_of(enum intake_problem p)
{
    static const enum problem map[] = {
        PROBLEM_INTERNAL,         /* INTAKE_NONE: not answered */
        PROBLEM_BAD_REQUEST,      /* INTAKE_BAD_REQUEST */
        PROBLEM_BAD_FILENAME,     /* INTAKE_BAD_FILENAME */
        PROBLEM_BAD_PARAMS,       /* INTAKE_BAD_PARAMS */
        PROBLEM_FILE_TOO_LARGE,   /* INTAKE_FILE_TOO_LARGE */
        PROBLEM_JOB_TOO_LARGE,    /* INTAKE_JOB_TOO_LARGE */
        PROBLEM_UNSUPPORTED_TYPE, /* INTAKE_UNSUPPORTED_TYPE */
        PROBLEM_INTERNAL,         /* INTAKE_INTERNAL */
    };
    return (unsigned)p < sizeof(map) / sizeof(map[0]) ? map[p] : PROBLEM_INTERNAL;
}

void
api_answer_intake(struct req *r, const struct intake_error *e)
{
    if (e->problem == INTAKE_BAD_PARAMS)
        resp_problem_with(r, PROBLEM_BAD_PARAMS, NULL, "param", e->param, "%s", e->detail);
    else
        resp_problem(r, problem_of(e->problem), NULL, e->file[0] ? e->file : NULL, "%s", e->detail);
}

/* The checks that need no body: shutting down, disk, content type, size, queue room and the
 * uploader's quotas. On success the queue slot is reserved; otherwise the request is answered. */
static bool
admit(struct api *api, struct req *r, struct span *out_boundary, struct sched_ticket *t)
{
    const struct config *cfg = r->cfg;
    if (!api_room_for_job(api, r))
        return false;
    enum rc rc = multipart_boundary(span_of(r->content_type), out_boundary);
    if (rc == RC_UNSUPPORTED) {
        resp_problem(r, PROBLEM_UNSUPPORTED_TYPE, NULL, NULL,
                     "upload files as multipart/form-data");
        return false;
    }
    if (rc != RC_OK) {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL,
                     "the multipart/form-data boundary is missing or malformed");
        return false;
    }
    /* A body far over every cap cannot succeed: refuse it before reading. */
    uint64_t slack = (cfg->max_files + 2) * 4096 + PARAMS_MAX_BYTES;
    if (r->has_length && r->content_length > cfg->max_job_bytes + slack) {
        resp_problem(r, PROBLEM_JOB_TOO_LARGE, NULL, NULL,
                     "the upload is larger than the limit for one job");
        return false;
    }
    enum jobindex_verdict v = scheduler_reserve(api->sched, cfg, &r->who, r->content_length, t);
    if (v != JOBINDEX_OK) {
        api_answer_refusal(r, v, t->retry_after, 0);
        return false;
    }
    return true;
}

/* Stream the body through the multipart parser into the staged inputs. RC_OK when the whole
 * body was good; otherwise u->in.err says why (or, empty, an internal error), or RC_IO when
 * the client went away. */
static enum rc
read_body(struct upload *u, struct req *r, struct span boundary)
{
    struct multipart_callbacks cb = {on_begin, on_data, on_end, u};
    struct multipart *mp = multipart_new(boundary, &cb);
    char *buf = malloc(UPLOAD_CHUNK);
    enum rc rc = mp && buf ? RC_OK : RC_NOMEM;
    while (rc == RC_OK) {
        ssize_t n = req_read(r, buf, UPLOAD_CHUNK);
        if (n < 0) {
            log_info("upload aborted by the client");
            u->aborted = true;
            rc = RC_IO;
            break;
        }
        if (n == 0) {
            rc = multipart_finish(mp);
            break;
        }
        rc = multipart_feed(mp, buf, (size_t)n);
    }
    if ((rc == RC_BADREQ || rc == RC_TOOBIG) && u->in.err.problem == INTAKE_NONE)
        RC_IGNORE(intake_refuse(&u->in, rc, INTAKE_BAD_REQUEST, NULL,
                                "the multipart body is malformed: %s", multipart_error(mp)));
    multipart_free(mp);
    free(buf);
    return rc;
}

void
api_answer_created(struct api *api, struct req *r, const struct job *job)
{
    char loc[128];
    (void)snprintf(loc, sizeof(loc), "Location: /api/jobs/%s\r\n", job->id); /* fits */
    json_object *pub = api_job_public(api, r->cfg->job_ttl, -1, job);
    if (pub == NULL) {
        api_internal(r);
        return;
    }
    resp_json(r, 201, pub, loc);
    json_object_put(pub);
}

static void create_job(struct api *api, struct req *r);

void
api_create_job(struct api *api, struct req *r, const struct api_args *a)
{
    (void)a;
    create_job(api, r);
    metrics_upload(r->status >= 400 ? (r->problem ? r->problem : "internal") : NULL);
}

/* load_schema: the agent's schema for the upload; false after answering 500 (a broken schema is
 * the operator's to fix: check-config and serve refuse it, but it may change under us). */
static bool
load_schema(struct req *r, struct pschema **out)
{
    char why[PSCHEMA_DETAIL_MAX + 128];
    if (agent_schema_load(r->cfg, out, why, sizeof(why)) == RC_OK)
        return true;
    log_err("the agent's parameter schema is unusable: %s", why);
    api_internal(r);
    return false;
}

/* create_job: parse and police the upload; the store stages and publishes it. */
static void
create_job(struct api *api, struct req *r)
{
    struct upload u = {.api = api, .stage = {.dirfd = -1, .inputs_fd = -1}};
    struct span boundary;
    jobstore_job_init(&u.job);
    intake_init(&u.in, r->cfg, NULL, &u.stage, &u.job);
    if (!admit(api, r, &boundary, &u.ticket))
        return;
    if (!load_schema(r, &u.schema)) {
        scheduler_release(api->sched, &u.ticket);
        return;
    }
    u.in.schema = u.schema;
    enum rc rc = jobstore_stage_begin(api->js, &u.stage);
    if (rc == RC_OK)
        rc = read_body(&u, r, boundary);
    if (rc == RC_OK && u.job.ninputs == 0)
        RC_IGNORE(intake_refuse(&u.in, RC_BADREQ, INTAKE_BAD_REQUEST, NULL,
                                "the upload has no files part"));
    if (rc == RC_OK && u.have_params)
        rc = intake_params(&u.in, u.params ? u.params : "", u.params_len);
    if (u.in.err.problem != INTAKE_NONE) {
        log_info("upload refused: %s: %s", intake_problem_code(u.in.err.problem), u.in.err.detail);
        api_answer_intake(r, &u.in.err);
        goto cleanup;
    }
    if (u.aborted)
        goto cleanup; /* nobody to answer */
    uint64_t bytes = u.in.total + u.params_len;
    enum jobindex_verdict v =
        rc == RC_OK ? scheduler_admit(api->sched, &u.ticket, bytes) : JOBINDEX_OK;
    if (v != JOBINDEX_OK) {
        api_answer_refusal(r, v, u.ticket.retry_after, bytes);
        goto cleanup;
    }
    if (rc == RC_OK)
        rc = api_publish_job(api, r, &u.stage, &u.job, &u.ticket);
    if (rc != RC_OK) {
        api_internal(r);
        goto cleanup;
    }
    log_info("job=%s created: %zu files, %llu bytes", u.job.id, u.job.ninputs,
             (unsigned long long)u.in.total);
    api_answer_created(api, r, &u.job);
cleanup:
    intake_fini(&u.in);          /* a file cut off mid-upload */
    if (u.stage.id[0] != '\0') { /* not published */
        jobstore_stage_abort(api->js, &u.stage);
        scheduler_release(api->sched, &u.ticket);
    }
    jobstore_job_fini(&u.job);
    pschema_free(u.schema);
    free(u.params);
}

/*** read ***/

/* A status read: from the cache, which checks the record is the one it read (core/jobcache.h);
 * only a queued job's view is rendered here, for its live queue position. */
void
api_get_job(struct api *api, struct req *r, const struct api_args *a)
{
    struct jobcache_ref ref;
    int dfd = -1;
    enum rc rc = jobcache_get(api->cache, a->id, r->cfg->job_ttl, &ref);
    if (rc == RC_OK && !api_may_see(api, r, ref.job)) {
        jobcache_put(&ref);
        rc = RC_NOTFOUND; /* someone else's job: exactly as if there were none */
    }
    if (rc == RC_NOTFOUND) {
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "no such job or resource");
        return;
    }
    if (rc != RC_OK) {
        api_internal(r);
        return;
    }
    /* ?wait= needs the job's directory (the waiter watches it); a plain read does not. */
    if (r->query[0] != '\0' && jobstore_open_job(api->js, a->id, &dfd) == RC_OK &&
        api_wait_job(api, r, &dfd, ref.job))
        goto out; /* answered, or parked until the job ends */
    if (ref.text != NULL) {
        resp_json_text(r, 200, ref.text, ref.len, NULL);
    } else {
        json_object *pub = api_job_public(api, r->cfg->job_ttl, -1, ref.job);
        if (pub != NULL)
            resp_json(r, 200, pub, NULL);
        else
            api_internal(r);
        json_object_put(pub);
    }
out:
    if (dfd >= 0)
        close(dfd);
    jobcache_put(&ref);
}

#define LOGS_MAX_RESPONSE (4 * 1024 * 1024)

/* Render a record as a text line: stderr and system marked the way the frontend shows them. */
static enum rc
write_text_record(struct req *r, const char *rec, size_t len)
{
    json_object *o = NULL;
    const char *prefix = NULL, *line = NULL;
    enum rc rc = RC_OK;
    if (joblog_record_text(rec, len, &o, &prefix, &line)) {
        rc = resp_write(r, prefix, strlen(prefix));
        if (rc == RC_OK)
            rc = resp_write(r, line, strlen(line));
        if (rc == RC_OK)
            rc = resp_write(r, "\n", 1);
    }
    json_object_put(o);
    return rc;
}

/* Answer the whole records of fd from off, at most LOGS_MAX_RESPONSE bytes. */
static void
send_records(struct req *r, int fd, uint64_t off, uint64_t size, bool ndjson)
{
    char hdr[64];
    uint64_t left = size - off;
    size_t want = left > LOGS_MAX_RESPONSE ? LOGS_MAX_RESPONSE : (size_t)left;
    char *buf = malloc(want + 1);
    ssize_t got = buf == NULL ? -1 : want > 0 ? pread(fd, buf, want, (off_t)off) : 0;
    if (got < 0) {
        api_internal(r);
        free(buf);
        return;
    }
    /* Only whole records: up to the last newline. */
    size_t end = (size_t)got;
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    (void)snprintf(hdr, sizeof(hdr), "Log-Offset: %llu\r\n", (unsigned long long)off + end);
    if (resp_start(r, 200, ndjson ? "application/x-ndjson" : "text/plain; charset=utf-8", hdr) !=
            RC_OK ||
        strcmp(r->method, "HEAD") == 0) {
        free(buf);
        return;
    }
    if (ndjson) {
        RC_IGNORE(resp_write(r, buf, end));
    } else {
        for (size_t i = 0, s = 0; i < end; i++) {
            if (buf[i] != '\n')
                continue;
            if (write_text_record(r, buf + s, i - s) != RC_OK)
                break;
            s = i + 1;
        }
    }
    free(buf);
}

void
api_get_logs(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    int dfd, fd = -1;
    struct job job;
    uint64_t off;
    char fmt[16] = "text";
    struct stat st;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    enum rc q = req_query(r, "format", fmt, sizeof(fmt));
    if (q == RC_TOOBIG || (q == RC_OK && strcmp(fmt, "ndjson") != 0 && strcmp(fmt, "text") != 0)) {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "format is text or ndjson");
        goto out;
    }
    fd = jobstore_log_open(dfd, JOBSTORE_LOG_READ);
    if (fd < 0 || fstat(fd, &st) != 0) {
        api_internal(r);
        goto out;
    }
    if (api_log_offset(r, false, fd, &off))
        send_records(r, fd, off, (uint64_t)st.st_size, strcmp(fmt, "ndjson") == 0);
out:
    if (fd >= 0)
        close(fd);
    jobstore_job_fini(&job);
    close(dfd);
}

/*** change ***/

/* Ask the job to stop: dequeue it, or leave the cancel request for its supervisor. */
static enum rc
request_cancel(struct api *api, int dfd, const char *id)
{
    bool done = false;
    enum rc rc = scheduler_cancel_queued(api->sched, id, &done);
    if (rc != RC_OK || done)
        return rc;
    return jobstore_request_cancel(dfd);
}

void
api_cancel_job(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    int dfd;
    struct job job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    if (jobstate_is_terminal(job.state)) {
        resp_problem(r, PROBLEM_ALREADY_FINISHED, NULL, NULL, "the job has already ended");
        goto out;
    }
    if (request_cancel(api, dfd, id) != RC_OK) {
        api_internal(r);
        goto out;
    }
    /* A queued job is canceled now; a running one when its supervisor sees the request (the
     * answer does not wait: the events stream or a later GET shows the end). */
    struct job now;
    if (jobstore_load(dfd, &now) == RC_OK) {
        jobstore_job_fini(&job);
        job = now;
    } else {
        jobstore_job_fini(&now);
    }
    json_object *pub = api_job_public(api, r->cfg->job_ttl, dfd, &job);
    if (pub != NULL)
        resp_json(r, 202, pub, NULL);
    else
        api_internal(r);
    json_object_put(pub);
out:
    jobstore_job_fini(&job);
    close(dfd);
}

void
api_delete_job(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    int dfd;
    struct job job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    if (!jobstate_is_terminal(job.state) && request_cancel(api, dfd, id) != RC_OK) {
        api_internal(r);
        goto out;
    }
    /* Gone from the API at once; a live supervisor stops the sandbox and the dispatcher
     * removes the files after it (202), otherwise they are removed now (204). */
    bool live = false;
    enum rc rc = scheduler_delete(api->sched, id, &live);
    if (rc == RC_OK) {
        log_info("job=%s deleted%s", id, live ? "; its files go once its supervisor ends" : "");
        resp_empty(r, live ? 202 : 204, NULL);
    } else if (rc == RC_NOTFOUND) {
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "no such job or resource");
    } else {
        api_internal(r);
    }
out:
    jobstore_job_fini(&job);
    close(dfd);
}
