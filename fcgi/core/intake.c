/* intake: a job's files and params checked on their way into a stage (see intake.h). */
#include "core/intake.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jobs/filetype.h"
#include "log.h"
#include "parse/names.h"
#include "util/fsutil.h"

void
intake_init(struct intake *in, const struct config *cfg, const struct pschema *schema,
            struct jobstore_stage *stage, struct job *job)
{
    memset(in, 0, sizeof(*in));
    in->cfg = cfg;
    in->schema = schema;
    in->stage = stage;
    in->job = job;
    in->fd = -1;
}

void
intake_fini(struct intake *in)
{
    if (in->fd >= 0) {
        sha256_discard(&in->sha);
        close(in->fd);
        in->fd = -1;
    }
}

/* A name as a client sent it, fit to show: control characters as '?', cut to fit out. */
#define WRITEBACK_STEP (8u << 20) /* bytes of a file received between writeback starts */

static void
shown(const char *name, size_t len, char *out, size_t outlen)
{
    size_t n = len < outlen - 1 ? len : outlen - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i]);
    out[n] = '\0';
}

enum rc
intake_refuse(struct intake *in, enum rc rc, enum intake_problem problem, const char *file,
              const char *fmt, ...)
{
    if (in->err.problem == INTAKE_NONE) {
        va_list ap;
        in->err.problem = problem;
        va_start(ap, fmt);
        (void)vsnprintf(in->err.detail, sizeof(in->err.detail), fmt, ap); /* cut: a sentence */
        va_end(ap);
        shown(file ? file : "", file ? strlen(file) : 0, in->err.file, sizeof(in->err.file));
    }
    return rc;
}

static bool
name_taken(const struct intake *in, const char *name)
{
    for (size_t i = 0; i < in->job->ninputs; i++)
        if (strcmp(in->job->inputs[i].name, name) == 0)
            return true;
    return false;
}

enum rc
intake_file_begin(struct intake *in, const char *name, size_t len)
{
    const char *why = NULL;
    char show[OUTPUT_PATH_MAX + 1];
    if (in->err.problem != INTAKE_NONE)
        return RC_BADREQ;
    intake_fini(in);
    shown(name, len, show, sizeof(show));
    if (names_check_input_path((struct span){name, len}, &why) != RC_OK)
        return intake_refuse(in, RC_BADREQ, INTAKE_BAD_FILENAME, show,
                             "the file name \"%s\" is not allowed: %s", show, why);
    if (in->job->ninputs + 1 > in->cfg->max_files)
        return intake_refuse(in, RC_TOOBIG, INTAKE_JOB_TOO_LARGE, show,
                             "%s is one file too many: a job takes at most %llu files", show,
                             (unsigned long long)in->cfg->max_files);
    memcpy(in->name, name, len);
    in->name[len] = '\0';
    if (name_taken(in, in->name))
        return intake_refuse(in, RC_BADREQ, INTAKE_BAD_FILENAME, show,
                             "the file name \"%s\" is used twice", show);
    enum rc rc = jobstore_stage_create_input(in->stage, in->name, &in->fd);
    if (rc == RC_CONFLICT)
        return intake_refuse(in, RC_BADREQ, INTAKE_BAD_FILENAME, show,
                             "the path \"%s\" clashes with another file of this upload: one "
                             "name cannot be both a file and a folder",
                             show);
    if (rc != RC_OK)
        return intake_refuse(in, RC_IO, INTAKE_INTERNAL, show, "the server could not store %s",
                             show);
    in->size = in->written_back = 0;
    if (!sha256_init(&in->sha)) {
        close(in->fd);
        in->fd = -1;
        return intake_refuse(in, RC_NOMEM, INTAKE_INTERNAL, show, "the server could not store %s",
                             show);
    }
    return RC_OK;
}

enum rc
intake_file_data(struct intake *in, const void *p, size_t len)
{
    const struct config *cfg = in->cfg;
    if (in->err.problem != INTAKE_NONE || in->fd < 0)
        return in->err.problem != INTAKE_NONE ? RC_BADREQ : RC_IO;
    if (in->size + len > cfg->max_file_bytes)
        return intake_refuse(in, RC_TOOBIG, INTAKE_FILE_TOO_LARGE, in->name,
                             "%s is larger than the limit of %llu bytes", in->name,
                             (unsigned long long)cfg->max_file_bytes);
    if (in->total + len > cfg->max_job_bytes)
        return intake_refuse(in, RC_TOOBIG, INTAKE_JOB_TOO_LARGE, in->name,
                             "with %s the files together are larger than the limit of %llu bytes",
                             in->name, (unsigned long long)cfg->max_job_bytes);
    if (fs_write_all(in->fd, p, len) != RC_OK) {
        log_errno("write upload");
        return intake_refuse(in, RC_IO, INTAKE_INTERNAL, in->name, "the server could not store %s",
                             in->name);
    }
    sha256_update(&in->sha, p, len);
    in->size += len;
    in->total += len;
    /* The disk writes while the rest arrives: publishing then waits for the tail only. */
    if (in->size - in->written_back >= WRITEBACK_STEP) {
        fs_writeback(in->fd, in->written_back, in->size - in->written_back);
        in->written_back = in->size;
    }
    return RC_OK;
}

enum rc
intake_file_end(struct intake *in)
{
    char type[128], hex[65];
    if (in->err.problem != INTAKE_NONE || in->fd < 0)
        return in->err.problem != INTAKE_NONE ? RC_BADREQ : RC_IO;
    int fd = in->fd;
    in->fd = -1;
    sha256_hex(&in->sha, hex);
    enum rc rc = filetype_detect_fd(fd, type, sizeof(type));
    fs_writeback(fd, 0, 0); /* the rest of it, now: publishing syncs the stage */
    close(fd);
    if (rc != RC_OK)
        return intake_refuse(in, RC_IO, INTAKE_INTERNAL, in->name, "the server could not check %s",
                             in->name);
    if (!config_type_allowed(in->cfg, type))
        return intake_refuse(in, RC_UNSUPPORTED, INTAKE_UNSUPPORTED_TYPE, in->name,
                             "%s is %s, which this server does not accept", in->name, type);
    rc = jobstore_job_add_input(in->job, in->name, in->size, type, hex);
    if (rc != RC_OK)
        return intake_refuse(in, rc, INTAKE_INTERNAL, in->name, "the server could not store %s",
                             in->name);
    return RC_OK;
}

enum rc
intake_params(struct intake *in, const char *text, size_t len)
{
    struct pschema_verdict v;
    if (in->err.problem != INTAKE_NONE)
        return RC_BADREQ;
    if (in->params_done)
        return intake_refuse(in, RC_BADREQ, INTAKE_BAD_REQUEST, NULL,
                             "the params part appears more than once");
    in->params_done = true;
    if (len > PARAMS_MAX_BYTES)
        return intake_refuse(in, RC_TOOBIG, INTAKE_BAD_REQUEST, NULL,
                             "params is larger than %d bytes", PARAMS_MAX_BYTES);
    enum rc rc = pschema_check(in->schema, text, len, &v);
    if (rc == RC_NOMEM)
        return intake_refuse(in, rc, INTAKE_INTERNAL, NULL, "the server ran out of memory");
    if (rc == RC_BADREQ)
        return intake_refuse(in, rc, INTAKE_BAD_REQUEST, NULL, "%s", v.detail);
    if (rc != RC_OK) {
        (void)snprintf(in->err.param, sizeof(in->err.param), "%s", v.param); /* same size */
        return intake_refuse(in, RC_BADREQ, INTAKE_BAD_PARAMS, NULL, "%s", v.detail);
    }
    for (size_t i = 0; i < in->job->ninputs; i++)
        if (jobstore_input_is_reserved(in->job->inputs[i].name))
            return intake_refuse(in, RC_BADREQ, INTAKE_BAD_FILENAME, in->job->inputs[i].name,
                                 "%s is reserved for the params field", in->job->inputs[i].name);
    rc = jobstore_stage_write_params(in->stage, text, len);
    if (rc != RC_OK)
        return intake_refuse(in, rc, INTAKE_INTERNAL, NULL, "the server could not store params");
    return RC_OK;
}

const char *
intake_problem_code(enum intake_problem p)
{
    static const char *const codes[] = {
        "",                 /* INTAKE_NONE */
        "bad_request",      /* INTAKE_BAD_REQUEST */
        "bad_filename",     /* INTAKE_BAD_FILENAME */
        "bad_params",       /* INTAKE_BAD_PARAMS */
        "file_too_large",   /* INTAKE_FILE_TOO_LARGE */
        "job_too_large",    /* INTAKE_JOB_TOO_LARGE */
        "unsupported_type", /* INTAKE_UNSUPPORTED_TYPE */
        "internal",         /* INTAKE_INTERNAL */
    };
    return (unsigned)p < sizeof(codes) / sizeof(codes[0]) ? codes[p] : "internal";
}
