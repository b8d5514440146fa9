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

enum part_kind {
    PART_NONE,   /* outside a part, or an ignored one */
    PART_FILE,   /* a "files" part being written */
    PART_PARAMS, /* the "params" part being buffered */
};

/* The first error wins; it becomes the problem response. */
struct upload_err {
    int status;
    const char *code;
    const char *title;
    char detail[512];
    char file[NAME_MAX_BYTES + 1];
};

struct upload {
    struct api *api;
    int staging_fd; /* tmp/up-<id> */
    int inputs_fd;  /* tmp/up-<id>/inputs */
    enum part_kind kind;
    int fd; /* the file being written */
    char name[NAME_MAX_BYTES + 1];
    uint64_t size;  /* of the current file */
    uint64_t total; /* of all files */
    struct sha256 sha;
    json_object *inputs; /* [{name,size,type,sha256}] */
    char *params;        /* the params text */
    size_t params_len;
    bool have_params;
    struct upload_err err;
};

static enum rc fail(struct upload *u, enum rc rc, int status, const char *code, const char *title,
                    const char *file, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static enum rc
fail(struct upload *u, enum rc rc, int status, const char *code, const char *title,
     const char *file, const char *fmt, ...)
{
    if (u->err.status == 0) {
        va_list ap;
        u->err.status = status;
        u->err.code = code;
        u->err.title = title;
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
    size_t n = json_object_array_length(u->inputs);
    for (size_t i = 0; i < n; i++) {
        const char *o = json_get_str(json_object_array_get_idx(u->inputs, i), "name");
        if (o != NULL && strcmp(o, name) == 0)
            return true;
    }
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
            return fail(u, RC_BADREQ, 400, "bad_request", "Bad request", NULL,
                        "the params part appears more than once");
        u->have_params = true;
        u->kind = PART_PARAMS;
        return RC_OK;
    }
    if (!span_eq(part->name, "files"))
        return RC_OK; /* unknown fields are ignored, as forms may carry extras */
    if (part->filename.p == NULL)
        return fail(u, RC_BADREQ, 400, "bad_request", "Bad request", NULL,
                    "a files part has no filename");
    struct span base = names_upload_basename(part->filename);
    const char *why = NULL;
    char shown[NAME_MAX_BYTES + 1];
    size_t sl = base.len < NAME_MAX_BYTES ? base.len : NAME_MAX_BYTES;
    /* For messages: the name as sent, with control characters made visible. */
    for (size_t i = 0; i < sl; i++)
        shown[i] = (char)((unsigned char)base.p[i] < 0x20 || base.p[i] == 0x7f ? '?' : base.p[i]);
    shown[sl] = '\0';
    if (names_check_upload(base, &why) != RC_OK)
        return fail(u, RC_BADREQ, 400, "bad_filename", "Bad file name", shown,
                    "the file name \"%s\" is not allowed: %s", shown, why);
    if (json_object_array_length(u->inputs) + 1 > cfg->max_files)
        return fail(u, RC_TOOBIG, 413, "job_too_large", "Too many files", shown,
                    "%s is one file too many: a job takes at most %llu files", shown,
                    (unsigned long long)cfg->max_files);
    memcpy(u->name, base.p, base.len);
    u->name[base.len] = '\0';
    if (name_taken(u, u->name))
        return fail(u, RC_BADREQ, 400, "bad_filename", "Bad file name", u->name,
                    "the file name \"%s\" is used twice", u->name);
    u->fd = openat(u->inputs_fd, u->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (u->fd < 0) {
        log_errno("create upload file");
        return fail(u, RC_IO, 500, "internal", "Internal error", u->name,
                    "the server could not store %s", u->name);
    }
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
            return fail(u, RC_BADREQ, 400, "bad_request", "Bad request", NULL,
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
    if (u->kind != PART_FILE)
        return RC_OK;
    if (u->size + len > cfg->max_file_bytes)
        return fail(u, RC_TOOBIG, 413, "file_too_large", "File too large", u->name,
                    "%s is larger than the limit of %llu bytes", u->name,
                    (unsigned long long)cfg->max_file_bytes);
    if (u->total + len > cfg->max_job_bytes)
        return fail(u, RC_TOOBIG, 413, "job_too_large", "Job too large", u->name,
                    "with %s the files together are larger than the limit of %llu bytes", u->name,
                    (unsigned long long)cfg->max_job_bytes);
    if (fs_write_all(u->fd, p, len) != RC_OK) {
        log_errno("write upload");
        return fail(u, RC_IO, 500, "internal", "Internal error", u->name,
                    "the server could not store %s", u->name);
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
        return fail(u, RC_IO, 500, "internal", "Internal error", u->name,
                    "the server could not check %s", u->name);
    if (!config_type_allowed(u->api->cfg, type))
        return fail(u, RC_UNSUPPORTED, 415, "unsupported_type", "Unsupported file type", u->name,
                    "%s is %s, which this server does not accept", u->name, type);
    json_object *o = json_object_new_object();
    if (o == NULL || !json_set_str(o, "name", u->name) ||
        !json_set_i64(o, "size", (int64_t)u->size) || !json_set_str(o, "type", type) ||
        !json_set_str(o, "sha256", hex) || json_object_array_add(u->inputs, o) != 0) {
        json_object_put(o);
        return RC_NOMEM;
    }
    u->name[0] = '\0';
    return RC_OK;
}

static enum rc
write_params(struct upload *u)
{
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
    if (!whole || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return fail(u, RC_BADREQ, 400, "bad_request", "Bad params", NULL,
                    "params must be a JSON object");
    }
    json_object_put(obj);
    if (name_taken(u, "params.json"))
        return fail(u, RC_BADREQ, 400, "bad_filename", "Bad file name", "params.json",
                    "params.json is reserved for the params field");
    int fd = openat(u->inputs_fd, "params.json",
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || fs_write_all(fd, u->params, u->params_len) != RC_OK) {
        if (fd >= 0)
            close(fd);
        return RC_IO;
    }
    close(fd);
    return RC_OK;
}

static json_object *
new_job(struct api *api, const char *id, json_object *inputs)
{
    char ts[32];
    int64_t now = clock_real_ms();
    clock_iso(now, ts, sizeof(ts));
    json_object *job = json_object_new_object();
    if (job == NULL)
        return NULL;
    bool ok = json_set_str(job, "id", id) && json_set_str(job, "state", "queued") &&
              json_set_str(job, "reason", NULL) && json_set_str(job, "detail", NULL) &&
              json_set_str(job, "backend", api->cfg->backend) &&
              json_set_str(job, "created_at", ts) && json_set_i64(job, "created_ms", now) &&
              json_set_str(job, "started_at", NULL) && json_set_str(job, "finished_at", NULL) &&
              json_set_str(job, "exit_code", NULL) && json_set_str(job, "signal", NULL) &&
              json_set_str(job, "usage", NULL) &&
              json_object_object_add(job, "inputs", json_object_get(inputs)) == 0 &&
              json_set_str(job, "outputs", NULL);
    if (!ok) {
        json_object_put(job);
        return NULL;
    }
    return job;
}

static void
answer_error(struct req *r, const struct upload_err *e)
{
    resp_problem(r, e->status, e->code, e->title, e->detail, e->file[0] ? e->file : NULL, NULL);
}

static void create_job(struct api *api, struct req *r);

void
api_create_job(struct api *api, struct req *r)
{
    create_job(api, r);
    metrics_upload(r->status >= 400 ? (r->problem ? r->problem : "internal") : NULL);
}

static void
create_job(struct api *api, struct req *r)
{
    const struct config *cfg = api->cfg;
    struct upload u = {.api = api, .staging_fd = -1, .inputs_fd = -1, .fd = -1};
    struct multipart *mp = NULL;
    json_object *job = NULL;
    char id[ID_LEN + 1], staging[64];
    bool reserved = false, staged = false;
    char *buf = NULL;
    struct span boundary;

    if (atomic_load(&api->shutting_down)) {
        resp_problem(r, 503, "unavailable", "Unavailable", "the server is shutting down", NULL,
                     "Retry-After: 5\r\n");
        return;
    }
    if (fs_free_mb(api->js->data_fd) < cfg->disk_reserve_mb) {
        resp_problem(r, 503, "unavailable", "Unavailable",
                     "the server is low on disk space; try again later", NULL,
                     "Retry-After: 60\r\n");
        return;
    }
    enum rc rc = multipart_boundary(span_of(r->content_type), &boundary);
    if (rc == RC_UNSUPPORTED) {
        resp_problem(r, 415, "unsupported_type", "Unsupported media type",
                     "upload files as multipart/form-data", NULL, NULL);
        return;
    }
    if (rc != RC_OK) {
        resp_problem(r, 400, "bad_request", "Bad request",
                     "the multipart/form-data boundary is missing or malformed", NULL, NULL);
        return;
    }
    /* A body far over every cap cannot succeed: refuse it before reading. */
    uint64_t slack = (cfg->max_files + 2) * 4096 + PARAMS_MAX_BYTES;
    if (r->has_length && r->content_length > cfg->max_job_bytes + slack) {
        resp_problem(r, 413, "job_too_large", "Job too large",
                     "the upload is larger than the limit for one job", NULL, NULL);
        return;
    }
    if (scheduler_reserve(api->sched) != RC_OK) {
        resp_problem(r, 429, "queue_full", "Queue full",
                     "too many jobs are waiting; try again shortly", NULL, "Retry-After: 10\r\n");
        return;
    }
    reserved = true;
    u.inputs = json_object_new_array();
    buf = malloc(65536);
    if (u.inputs == NULL || buf == NULL || id_new(id) != RC_OK)
        goto internal;
    (void)snprintf(staging, sizeof(staging), "up-%s", id);
    if (mkdirat(api->js->tmp_fd, staging, 0755) != 0) {
        log_errno("mkdir staging");
        goto internal;
    }
    staged = true;
    u.staging_fd =
        openat(api->js->tmp_fd, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (u.staging_fd < 0 || mkdirat(u.staging_fd, "inputs", 0755) != 0)
        goto internal;
    u.inputs_fd = openat(u.staging_fd, "inputs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (u.inputs_fd < 0)
        goto internal;
    struct multipart_callbacks cb = {on_begin, on_data, on_end, &u};
    mp = multipart_new(boundary, &cb);
    if (mp == NULL)
        goto internal;
    for (;;) {
        ssize_t n = req_read(r, buf, 65536);
        if (n < 0) {
            log_info("upload aborted by the client");
            goto cleanup;
        }
        if (n == 0)
            break;
        rc = multipart_feed(mp, buf, (size_t)n);
        if (rc != RC_OK)
            break;
    }
    if (rc == RC_OK)
        rc = multipart_finish(mp);
    if (rc != RC_OK) {
        if (u.err.status == 0 && (rc == RC_BADREQ || rc == RC_TOOBIG))
            (void)fail(&u, rc, 400, "bad_request", "Bad request", NULL,
                       "the multipart body is malformed: %s", multipart_error(mp));
        if (u.err.status == 0)
            goto internal;
        log_info("upload refused: %s: %s", u.err.code, u.err.detail);
        answer_error(r, &u.err);
        goto cleanup;
    }
    if (json_object_array_length(u.inputs) == 0) {
        resp_problem(r, 400, "bad_request", "No files", "the upload has no files part", NULL, NULL);
        goto cleanup;
    }
    rc = write_params(&u);
    if (rc != RC_OK) {
        if (u.err.status == 0)
            goto internal;
        answer_error(r, &u.err);
        goto cleanup;
    }
    job = new_job(api, id, u.inputs);
    if (job == NULL || jobstore_write(u.staging_fd, job) != RC_OK)
        goto internal;
    int lfd = openat(u.staging_fd, "lock", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int gfd = openat(u.staging_fd, "log.jsonl", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (lfd >= 0)
        close(lfd);
    if (gfd >= 0)
        close(gfd);
    if (lfd < 0 || gfd < 0)
        goto internal;
    if (fsync(u.inputs_fd) != 0 || fsync(u.staging_fd) != 0 ||
        renameat(api->js->tmp_fd, staging, api->js->jobs_fd, id) != 0) {
        log_errno("publish job %s", id);
        goto internal;
    }
    staged = false;
    (void)fsync(api->js->jobs_fd);
    reserved = false;
    if (scheduler_enqueue(api->sched, id) != RC_OK)
        log_err("job=%s could not be queued now; it will be at the next start", id);
    log_info("job=%s created: %zu files, %llu bytes", id, json_object_array_length(u.inputs),
             (unsigned long long)u.total);
    {
        char loc[128];
        (void)snprintf(loc, sizeof(loc), "Location: /api/jobs/%s\r\n", id);
        json_object *pub = api_job_public(api, job);
        if (pub == NULL)
            goto internal;
        resp_json(r, 201, pub, loc);
        json_object_put(pub);
    }
    goto cleanup;
internal:
    api_internal(r);
cleanup:
    sha256_discard(&u.sha); /* a file cut off mid-upload */
    if (u.fd >= 0)
        close(u.fd);
    if (u.inputs_fd >= 0)
        close(u.inputs_fd);
    if (u.staging_fd >= 0)
        close(u.staging_fd);
    if (staged)
        RC_IGNORE(fs_rmtree_at(api->js->tmp_fd, staging));
    if (reserved)
        scheduler_release(api->sched);
    multipart_free(mp);
    json_object_put(u.inputs);
    json_object_put(job);
    free(u.params);
    free(buf);
}

/*** read ***/

void
api_get_job(struct api *api, struct req *r, const char *id)
{
    int dfd;
    json_object *job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    json_object *pub = api_job_public(api, job);
    if (pub != NULL)
        resp_json(r, 200, pub, NULL);
    else
        api_internal(r);
    json_object_put(pub);
    json_object_put(job);
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

void
api_get_logs(struct api *api, struct req *r, const char *id)
{
    int dfd, fd = -1;
    json_object *job;
    uint64_t off;
    char fmt[16] = "text", hdr[64];
    char *buf = NULL;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    if (req_query(r, "format", fmt, sizeof(fmt)) && strcmp(fmt, "ndjson") != 0 &&
        strcmp(fmt, "text") != 0) {
        resp_problem(r, 400, "bad_request", "Bad format", "format is text or ndjson", NULL, NULL);
        goto out;
    }
    fd = openat(dfd, "log.jsonl", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        api_internal(r);
        goto out;
    }
    if (!api_log_offset(r, false, fd, &off))
        goto out;
    size_t want = (uint64_t)st.st_size - off > LOGS_MAX_RESPONSE
                      ? LOGS_MAX_RESPONSE
                      : (size_t)(st.st_size - (off_t)off);
    buf = malloc(want + 1);
    if (buf == NULL) {
        api_internal(r);
        goto out;
    }
    ssize_t got = want > 0 ? pread(fd, buf, want, (off_t)off) : 0;
    if (got < 0) {
        api_internal(r);
        goto out;
    }
    /* Only whole records: up to the last newline. */
    size_t end = (size_t)got;
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    (void)snprintf(hdr, sizeof(hdr), "Log-Offset: %llu\r\n", (unsigned long long)(off + end));
    bool nd = strcmp(fmt, "ndjson") == 0;
    if (resp_start(r, 200, nd ? "application/x-ndjson" : "text/plain; charset=utf-8", hdr) != RC_OK)
        goto out;
    if (strcmp(r->method, "HEAD") == 0)
        goto out;
    if (nd) {
        RC_IGNORE(resp_write(r, buf, end));
    } else {
        size_t s = 0;
        for (size_t i = 0; i < end; i++) {
            if (buf[i] != '\n')
                continue;
            if (write_text_record(r, buf + s, i - s) != RC_OK)
                break;
            s = i + 1;
        }
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    json_object_put(job);
    close(dfd);
}

/*** change ***/

/* Ask the job to stop: dequeue it, or leave the cancel file for its supervisor. */
static enum rc
request_cancel(struct api *api, int dfd, const char *id)
{
    bool done = false;
    enum rc rc = scheduler_cancel_queued(api->sched, id, &done);
    if (rc != RC_OK || done)
        return rc;
    int fd = openat(dfd, "cancel", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_errno("create cancel file");
        return RC_IO;
    }
    close(fd);
    return RC_OK;
}

/* Wait up to ms for the job to end; returns the latest record (caller owns). */
static json_object *
wait_terminal(int dfd, json_object *job, int ms)
{
    for (int waited = 0; waited < ms; waited += 25) {
        if (jobstate_is_terminal(jobstore_state(job)))
            break;
        usleep(25000);
        json_object *fresh = NULL;
        if (jobstore_read(dfd, &fresh) == RC_OK) {
            json_object_put(job);
            job = fresh;
        }
    }
    return job;
}

void
api_cancel_job(struct api *api, struct req *r, const char *id)
{
    int dfd;
    json_object *job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    if (jobstate_is_terminal(jobstore_state(job))) {
        resp_problem(r, 409, "already_finished", "Already finished", "the job has already ended",
                     NULL, NULL);
        goto out;
    }
    if (request_cancel(api, dfd, id) != RC_OK) {
        api_internal(r);
        goto out;
    }
    job = wait_terminal(dfd, job, 3000);
    json_object *pub = api_job_public(api, job);
    if (pub != NULL)
        resp_json(r, 202, pub, NULL);
    else
        api_internal(r);
    json_object_put(pub);
out:
    json_object_put(job);
    close(dfd);
}

void
api_delete_job(struct api *api, struct req *r, const char *id)
{
    int dfd;
    json_object *job;
    if (!api_load_job(api, r, id, &dfd, &job))
        return;
    if (!jobstate_is_terminal(jobstore_state(job))) {
        if (request_cancel(api, dfd, id) != RC_OK) {
            api_internal(r);
            goto out;
        }
        job = wait_terminal(dfd, job, 30000);
    }
    /* Let a supervisor finish its last writes before the directory goes. */
    for (int i = 0; i < 200 && jobstore_lock_is_held(dfd); i++)
        usleep(50000);
    enum rc rc = jobstore_remove(api->js, id);
    if (rc == RC_OK || rc == RC_NOTFOUND) {
        log_info("job=%s deleted", id);
        resp_empty(r, 204, NULL);
    } else {
        api_internal(r);
    }
out:
    json_object_put(job);
    close(dfd);
}
