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

#include "core/metrics.h"
#include "defaults.h"
#include "jobs/filetype.h"
#include "json.h"
#include "log.h"
#include "parse/multipart.h"
#include "parse/names.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/sha256.h"

/*** upload ***/

#define UPLOAD_CHUNK 65536 /* bytes read from the request body at a time */

enum part_kind {
    PART_NONE,   /* outside a part, or an ignored one */
    PART_FILE,   /* a "files" part being written */
    PART_PARAMS, /* the "params" part being buffered */
};

/* The first error wins; it becomes the problem response. */
struct upload_err {
    bool set;
    enum problem problem;
    char detail[512];
    char file[NAME_MAX_BYTES + 1];
};

struct upload {
    struct api *api;
    struct jobstore_stage stage; /* the job dir being staged */
    struct job job;              /* its record; inputs are added as they are accepted */
    enum part_kind kind;
    int fd; /* the file being written */
    char name[NAME_MAX_BYTES + 1];
    uint64_t size;  /* of the current file */
    uint64_t total; /* of all files */
    struct sha256 sha;
    char *params; /* the params text */
    size_t params_len;
    bool have_params;
    bool aborted; /* the client went away mid-body */
    struct upload_err err;
    struct sched_ticket ticket; /* the queue slot and quotas (scheduler_reserve) */
};

static enum rc fail(struct upload *u, enum rc rc, enum problem problem, const char *file,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum rc
fail(struct upload *u, enum rc rc, enum problem problem, const char *file, const char *fmt, ...)
{
    if (!u->err.set) {
        va_list ap;
        u->err.set = true;
        u->err.problem = problem;
        va_start(ap, fmt);
        (void)vsnprintf(u->err.detail, sizeof(u->err.detail), fmt, ap);
        va_end(ap);
        (void)snprintf(u->err.file, sizeof(u->err.file), "%s", file ? file : "");
    }
    return rc;
}

static bool
name_taken(struct upload *u, const char *name)
{
    for (size_t i = 0; i < u->job.ninputs; i++)
        if (strcmp(u->job.inputs[i].name, name) == 0)
            return true;
    return u->kind == PART_FILE && strcmp(u->name, name) == 0;
}

static enum rc
on_begin(void *ctx, const struct multipart_part *part)
{
    struct upload *u = ctx;
    const struct config *cfg = u->api->cfg;
    u->kind = PART_NONE;
    if (span_eq(part->name, "params")) {
        if (u->have_params)
            return fail(u, RC_BADREQ, PROBLEM_BAD_REQUEST, NULL,
                        "the params part appears more than once");
        u->have_params = true;
        u->kind = PART_PARAMS;
        return RC_OK;
    }
    if (!span_eq(part->name, "files"))
        return RC_OK; /* unknown fields are ignored, as forms may carry extras */
    if (part->filename.p == NULL)
        return fail(u, RC_BADREQ, PROBLEM_BAD_REQUEST, NULL, "a files part has no filename");
    struct span base = names_upload_basename(part->filename);
    const char *why = NULL;
    char shown[NAME_MAX_BYTES + 1];
    size_t sl = base.len < NAME_MAX_BYTES ? base.len : NAME_MAX_BYTES;
    /* For messages: the name as sent, with control characters made visible. */
    for (size_t i = 0; i < sl; i++)
        shown[i] = (char)((unsigned char)base.p[i] < 0x20 || base.p[i] == 0x7f ? '?' : base.p[i]);
    shown[sl] = '\0';
    if (names_check_upload(base, &why) != RC_OK)
        return fail(u, RC_BADREQ, PROBLEM_BAD_FILENAME, shown,
                    "the file name \"%s\" is not allowed: %s", shown, why);
    if (u->job.ninputs + 1 > cfg->max_files)
        return fail(u, RC_TOOBIG, PROBLEM_JOB_TOO_LARGE, shown,
                    "%s is one file too many: a job takes at most %llu files", shown,
                    (unsigned long long)cfg->max_files);
    memcpy(u->name, base.p, base.len);
    u->name[base.len] = '\0';
    if (name_taken(u, u->name))
        return fail(u, RC_BADREQ, PROBLEM_BAD_FILENAME, u->name,
                    "the file name \"%s\" is used twice", u->name);
    if (jobstore_stage_create_input(&u->stage, u->name, &u->fd) != RC_OK)
        return fail(u, RC_IO, PROBLEM_INTERNAL, u->name, "the server could not store %s", u->name);
    u->kind = PART_FILE;
    u->size = 0;
    if (!sha256_init(&u->sha))
        return RC_NOMEM;
    return RC_OK;
}

static enum rc
on_data(void *ctx, const char *p, size_t len)
{
    struct upload *u = ctx;
    const struct config *cfg = u->api->cfg;
    if (u->kind == PART_PARAMS) {
        if (u->params_len + len > PARAMS_MAX_BYTES)
            return fail(u, RC_BADREQ, PROBLEM_BAD_REQUEST, NULL, "params is larger than %d bytes",
                        PARAMS_MAX_BYTES);
        char *np = realloc(u->params, u->params_len + len + 1);
        if (np == NULL)
            return RC_NOMEM;
        u->params = np;
        memcpy(u->params + u->params_len, p, len);
        u->params_len += len;
        u->params[u->params_len] = '\0';
        return RC_OK;
    }
    if (u->kind != PART_FILE)
        return RC_OK;
    if (u->size + len > cfg->max_file_bytes)
        return fail(u, RC_TOOBIG, PROBLEM_FILE_TOO_LARGE, u->name,
                    "%s is larger than the limit of %llu bytes", u->name,
                    (unsigned long long)cfg->max_file_bytes);
    if (u->total + len > cfg->max_job_bytes)
        return fail(u, RC_TOOBIG, PROBLEM_JOB_TOO_LARGE, u->name,
                    "with %s the files together are larger than the limit of %llu bytes", u->name,
                    (unsigned long long)cfg->max_job_bytes);
    if (fs_write_all(u->fd, p, len) != RC_OK) {
        log_errno("write upload");
        return fail(u, RC_IO, PROBLEM_INTERNAL, u->name, "the server could not store %s", u->name);
    }
    sha256_update(&u->sha, p, len);
    u->size += len;
    u->total += len;
    return RC_OK;
}

static enum rc
on_end(void *ctx)
{
    struct upload *u = ctx;
    enum part_kind kind = u->kind;
    u->kind = PART_NONE;
    if (kind != PART_FILE)
        return RC_OK;
    char type[128], hex[65];
    int fd = u->fd;
    u->fd = -1;
    sha256_hex(&u->sha, hex);
    enum rc rc = filetype_detect_fd(fd, type, sizeof(type));
    if (rc == RC_OK && fdatasync(fd) != 0)
        rc = RC_IO;
    close(fd);
    if (rc != RC_OK)
        return fail(u, RC_IO, PROBLEM_INTERNAL, u->name, "the server could not check %s", u->name);
    if (!config_type_allowed(u->api->cfg, type))
        return fail(u, RC_UNSUPPORTED, PROBLEM_UNSUPPORTED_TYPE, u->name,
                    "%s is %s, which this server does not accept", u->name, type);
    rc = jobstore_job_add_input(&u->job, u->name, u->size, type, hex);
    u->name[0] = '\0';
    return rc;
}

/* Does an accepted file already carry the name the params part is stored under? */
static bool
reserved_taken(const struct upload *u, const char **out_name)
{
    for (size_t i = 0; i < u->job.ninputs; i++) {
        if (jobstore_input_is_reserved(u->job.inputs[i].name)) {
            *out_name = u->job.inputs[i].name;
            return true;
        }
    }
    return false;
}

static enum rc
write_params(struct upload *u)
{
    const char *clash = NULL;
    if (!u->have_params)
        return RC_OK;
    json_tokener *tok = json_tokener_new();
    json_object *obj = NULL;
    if (tok == NULL)
        return RC_NOMEM;
    obj = json_tokener_parse_ex(tok, u->params ? u->params : "", (int)u->params_len);
    bool whole = obj != NULL && json_tokener_get_error(tok) == json_tokener_success &&
                 (size_t)json_tokener_get_parse_end(tok) == u->params_len;
    json_tokener_free(tok);
    bool is_object = whole && json_object_is_type(obj, json_type_object);
    json_object_put(obj);
    if (!is_object)
        return fail(u, RC_BADREQ, PROBLEM_BAD_REQUEST, NULL, "params must be a JSON object");
    if (reserved_taken(u, &clash))
        return fail(u, RC_BADREQ, PROBLEM_BAD_FILENAME, clash,
                    "%s is reserved for the params field", clash);
    return jobstore_stage_write_params(&u->stage, u->params ? u->params : "", u->params_len);
}

static void
answer_error(struct req *r, const struct upload_err *e)
{
    resp_problem(r, e->problem, NULL, e->file[0] ? e->file : NULL, "%s", e->detail);
}

/* The checks that need no body: shutting down, disk, content type, size, queue room and the
 * uploader's quotas. On success the queue slot is reserved; otherwise the request is answered. */
static bool
admit(struct api *api, struct req *r, struct span *out_boundary, struct sched_ticket *t)
{
    const struct config *cfg = api->cfg;
    if (atomic_load(&api->shutting_down)) {
        resp_problem(r, PROBLEM_UNAVAILABLE, NULL, NULL, "the server is shutting down");
        return false;
    }
    if (fs_free_mb(api->js->data_fd) < cfg->disk_reserve_mb) {
        resp_problem(r, PROBLEM_UNAVAILABLE, "Retry-After: 60\r\n", NULL,
                     "the server is low on disk space; try again later");
        return false;
    }
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
    enum jobindex_verdict v = scheduler_reserve(api->sched, &r->who, r->content_length, t);
    if (v != JOBINDEX_OK) {
        api_answer_refusal(api, r, v, t->retry_after, 0);
        return false;
    }
    return true;
}

/* Stream the body through the multipart parser into the staged inputs. RC_OK when the whole
 * body was good; otherwise u->err says why (or, empty, an internal error), or RC_IO when the
 * client went away. */
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
    if ((rc == RC_BADREQ || rc == RC_TOOBIG) && !u->err.set)
        (void)fail(u, rc, PROBLEM_BAD_REQUEST, NULL, "the multipart body is malformed: %s",
                   multipart_error(mp));
    multipart_free(mp);
    free(buf);
    return rc;
}

static void
answer_created(struct api *api, struct req *r, const struct job *job)
{
    char loc[128];
    (void)snprintf(loc, sizeof(loc), "Location: /api/jobs/%s\r\n", job->id); /* fits */
    json_object *pub =
        jobstore_public(job, scheduler_position(api->sched, job->id), NULL, api_view(api));
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

/* create_job: parse and police the upload; the store stages and publishes it. */
static void
create_job(struct api *api, struct req *r)
{
    struct upload u = {.api = api, .stage = {.dirfd = -1, .inputs_fd = -1}, .fd = -1};
    struct span boundary;
    jobstore_job_init(&u.job);
    if (!admit(api, r, &boundary, &u.ticket))
        return;
    enum rc rc = jobstore_stage_begin(api->js, &u.stage);
    if (rc == RC_OK)
        rc = read_body(&u, r, boundary);
    if (rc == RC_OK && u.job.ninputs == 0)
        (void)fail(&u, RC_BADREQ, PROBLEM_BAD_REQUEST, NULL, "the upload has no files part");
    if (rc == RC_OK && !u.err.set)
        rc = write_params(&u);
    if (u.err.set) {
        log_info("upload refused: %s: %s", problem_code(u.err.problem), u.err.detail);
        answer_error(r, &u.err);
        goto cleanup;
    }
    if (u.aborted)
        goto cleanup; /* nobody to answer */
    uint64_t bytes = u.total + u.params_len;
    enum jobindex_verdict v =
        rc == RC_OK ? scheduler_admit(api->sched, &u.ticket, bytes) : JOBINDEX_OK;
    if (v != JOBINDEX_OK) {
        api_answer_refusal(api, r, v, u.ticket.retry_after, bytes);
        goto cleanup;
    }
    memcpy(u.job.id, u.stage.id, sizeof(u.job.id));
    u.job.owner = r->who;
    u.job.round = u.ticket.round;
    (void)snprintf(u.job.backend, sizeof(u.job.backend), "%s", api->cfg->backend);
    u.job.created_ms = clock_real_ms();
    if (rc == RC_OK)
        rc = jobstore_stage_publish(api->js, &u.stage, &u.job);
    if (rc != RC_OK) {
        api_internal(r);
        goto cleanup;
    }
    if (scheduler_enqueue(api->sched, &u.ticket, &u.job) != RC_OK) {
        log_err("job=%s could not be queued now; it will be at the next start", u.job.id);
        scheduler_release(api->sched, &u.ticket);
    }
    log_info("job=%s created: %zu files, %llu bytes", u.job.id, u.job.ninputs,
             (unsigned long long)u.total);
    answer_created(api, r, &u.job);
    jobstore_job_fini(&u.job);
    free(u.params);
    return;
cleanup:
    sha256_discard(&u.sha); /* a file cut off mid-upload */
    if (u.fd >= 0)
        close(u.fd);
    jobstore_stage_abort(api->js, &u.stage);
    scheduler_release(api->sched, &u.ticket);
    jobstore_job_fini(&u.job);
    free(u.params);
}

/*** read ***/

void
api_get_job(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    int dfd;
    struct job job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    json_object *pub = api_job_public(api, dfd, &job);
    if (pub != NULL)
        resp_json(r, 200, pub, NULL);
    else
        api_internal(r);
    json_object_put(pub);
    jobstore_job_fini(&job);
    close(dfd);
}

#define LOGS_MAX_RESPONSE (4 * 1024 * 1024)

/* Render records as text lines: stderr and system marked the way the frontend shows them. */
static enum rc
write_text_record(struct req *r, const char *rec, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, rec, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    const char *stream = json_get_str(o, "stream");
    const char *line = json_get_str(o, "line");
    enum rc rc = RC_OK;
    if (line != NULL) {
        const char *prefix = "";
        if (stream && strcmp(stream, "stderr") == 0)
            prefix = "[stderr] ";
        else if (stream && strcmp(stream, "system") == 0)
            prefix = "[labbox] ";
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
    json_object *pub = api_job_public(api, dfd, &job);
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
