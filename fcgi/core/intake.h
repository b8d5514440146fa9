/* intake: the checks a job's inputs pass on their way in, the same for an upload (api/jobs.c)
 * and for `labbox run` (cli/run.c).
 *
 * Theory of operation. A job's files arrive one at a time as a name (a relative path, as a
 * browser sends it for the files of a dropped folder) and bytes; its params arrive once, as
 * text. intake checks each against the rules and the configuration's caps: the name
 * (parse/names: a valid relative path whose every component is a valid upload name, not used
 * twice, no file where another needs a folder), the number of files (max_files), the bytes of
 * each file and of all of them (max_file_bytes, max_job_bytes), the content's type by libmagic
 * (allowed_types), and the params (a JSON object of at most PARAMS_MAX_BYTES under the agent's
 * schema, parse/pschema). Accepted files are written into a jobstore stage as they stream in and
 * added to the job's record when they end. The first refusal is kept, with its problem and a
 * sentence for people naming the file or parameter; from then on every call refuses alike, and
 * the caller throws the stage away.
 *
 * Use: intake_init; per file intake_file_begin, intake_file_data (any number of times),
 * intake_file_end; intake_params at most once, after the files; intake_fini always.
 */
#ifndef LABBOX_INTAKE_H
#define LABBOX_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core/jobstore.h"
#include "defaults.h"
#include "parse/pschema.h"
#include "rc.h"
#include "util/sha256.h"

/* Why intake refused; the API maps each to its problem code of the same name. */
enum intake_problem {
    INTAKE_NONE,             /* nothing refused */
    INTAKE_BAD_REQUEST,      /* params not a JSON object or too long; a malformed request */
    INTAKE_BAD_FILENAME,     /* a name breaks the rules, is used twice, or is reserved */
    INTAKE_BAD_PARAMS,       /* params break the agent's schema */
    INTAKE_FILE_TOO_LARGE,   /* one file over max_file_bytes */
    INTAKE_JOB_TOO_LARGE,    /* the files together, or one file too many */
    INTAKE_UNSUPPORTED_TYPE, /* a content type not on allowed_types */
    INTAKE_INTERNAL,         /* the server failed (logged) */
};

struct intake_error {
    enum intake_problem problem;    /* INTAKE_NONE while all is well */
    char detail[512];               /* a sentence for people */
    char file[OUTPUT_PATH_MAX + 1]; /* the file concerned (control characters as '?'), or "" */
    char param[NAME_MAX_BYTES + 1]; /* the parameter concerned (bad_params), or "" */
};

struct intake {
    const struct config *cfg;       /* borrowed */
    const struct pschema *schema;   /* borrowed; NULL: params need only be a JSON object */
    struct jobstore_stage *stage;   /* borrowed: where accepted files go */
    struct job *job;                /* borrowed: accepted inputs are added to it */
    int fd;                         /* the file being received, -1 between files */
    char name[OUTPUT_PATH_MAX + 1]; /* its name */
    uint64_t size;                  /* its bytes so far */
    uint64_t written_back;          /* of them, those whose writeback has been started */
    uint64_t total;                 /* bytes of all files */
    struct sha256 sha;              /* its hash so far */
    bool params_done;               /* intake_params was called */
    struct intake_error err;        /* the first refusal */
};

/* intake_init: a fresh intake writing into stage (begun) and job (initialised). */
void intake_init(struct intake *in, const struct config *cfg, const struct pschema *schema,
                 struct jobstore_stage *stage, struct job *job);
/* intake_fini: close a file cut off mid-way (its bytes stay in the stage, which the caller
 * aborts). Safe after any call. */
void intake_fini(struct intake *in);

/* intake_refuse: record a refusal of the caller's own (the first one wins); returns rc. file
 * may be NULL. */
enum rc intake_refuse(struct intake *in, enum rc rc, enum intake_problem problem, const char *file,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* intake_file_begin: a file called name (len bytes, as sent) starts. RC_OK, or the refusal's
 * rc (RC_BADREQ a bad name, RC_TOOBIG one file too many, RC_IO). */
enum rc intake_file_begin(struct intake *in, const char *name, size_t len) LB_MUST_CHECK;
/* intake_file_data: more bytes of the current file. RC_TOOBIG over a size cap, RC_IO. */
enum rc intake_file_data(struct intake *in, const void *p, size_t len) LB_MUST_CHECK;
/* intake_file_end: the current file is complete: typed (libmagic) and checked, then added to
 * the job's inputs. RC_UNSUPPORTED for a type not allowed, RC_IO, RC_NOMEM. */
enum rc intake_file_end(struct intake *in) LB_MUST_CHECK;
/* intake_params: the params text (len bytes), after every file: checked (size, a strict JSON
 * object, the agent's schema), then written as the inputs' params.json. RC_BADREQ (problem
 * bad_request, bad_params or bad_filename when a file took the name params.json), RC_TOOBIG,
 * RC_IO. */
enum rc intake_params(struct intake *in, const char *text, size_t len) LB_MUST_CHECK;

/* intake_problem_code: the stable code of a problem ("bad_params"), as the API has it. */
const char *intake_problem_code(enum intake_problem p);

#endif
