/* jobstore: the job directory is the database; this module alone knows its layout and record.
 *
 * <data>/jobs/<id>/
 *   job.json       the record (struct job), replaced atomically; bounded in size
 *   .job.json.spare  blocks reserved for the record while the job is unfinished: when the disk
 *                  is full the record goes there (and is renamed over job.json)
 *   log.jsonl      the append-only log (jobs/joblog.h); byte offsets are event ids; made when
 *                  first opened (jobstore_log_open)
 *   inputs/        the uploaded files at their relative paths (and params.json)
 *   outputs/       the collected outputs; outputs.tmp/ while they are being collected
 *   outputs.json   the outputs index [{path, size, type}], written before the terminal state
 *   outputs.zip    every output in one zip, built once (at collection, or on first request)
 *   inputs.zip     every input (and params.json) in one zip, built likewise
 *   lock           flock(LOCK_EX) held by the job's supervisor for its whole life; made when
 *                  first taken
 *   cancel         exists once a cancel was requested
 * <data>/tmp/      upload staging dirs (up-<id>) and jobs being deleted (del-<id>); emptied at
 *                  start-up
 *
 * Modes: nobody but labbox's user reads a job's record, log or lock. nginx sends the outputs,
 * the inputs and the zips, through the output group (config_output_group): the job dir,
 * inputs/, the outputs' dirs and files and the zips belong to that group, mode 0710 / 0640,
 * and others cannot even pass through the job dir. Without an output group they are 0711 /
 * 0644 (the id is then all another local user needs to read the inputs and outputs, never the
 * rest). The record and lock are 0600, the log 0640 (labbox's own group).
 *
 * While a supervisor lives (it holds lock), only it writes job.json; otherwise only `serve`
 * does (queued jobs, recovery), under the scheduler's mutex. A job dir appears in jobs/ whole:
 * an upload is staged under tmp/ and renamed into place once its record says queued.
 */
#ifndef LABBOX_JOBSTORE_H
#define LABBOX_JOBSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sys/inotify.h>

#include <json-c/json.h>

#include "config.h"
#include "defaults.h"
#include "jobs/jobstate.h"
#include "rc.h"
#include "sandbox/sandbox.h"
#include "util/fsutil.h"

#define JOB_DETAIL_MAX  512 /* bytes of a job's detail text, NUL included */
#define JOB_BACKEND_MAX 16  /* bytes of a backend name, NUL included */
#define JOB_OWNER_MAX   129 /* bytes of an owner's name, NUL included */

struct jobstore {
    const struct config *cfg;   /* borrowed */
    int data_fd;                /* <data> */
    int jobs_fd;                /* <data>/jobs */
    int tmp_fd;                 /* <data>/tmp */
    gid_t share_gid;            /* the output group nginx reads through; (gid_t)-1 = none */
    struct fs_group *jobs_sync; /* fsyncs of jobs/ shared by the uploads that publish at once */
};

/*** the record ***/

struct job_input {
    char *name;      /* relative path under inputs/ ("run1/a.csv"; owned) */
    uint64_t size;   /* bytes */
    char *type;      /* MIME type as libmagic named it (owned) */
    char sha256[65]; /* lower-case hex */
};

struct job_usage {
    uint64_t wall_ms;    /* the agent's run */
    uint64_t cpu_ms;     /* user + system */
    uint64_t max_rss_kb; /* peak memory */
};

/* Who created a job, as the web host named them (docs/api.md#identity). */
enum job_owner_kind {
    OWNER_NONE,    /* nobody: created with identity = none */
    OWNER_ADDRESS, /* a client address, as netaddr_key writes it (identity = address) */
    OWNER_USER,    /* a user name the web server passed as REMOTE_USER (identity = remote_user) */
    OWNER__MAX
};

struct job_owner {
    enum job_owner_kind kind;
    char name[JOB_OWNER_MAX]; /* "" for OWNER_NONE */
};

/* jobstore_owner_equal: the same kind and name. */
bool jobstore_owner_equal(const struct job_owner *a, const struct job_owner *b);

/* One job's record. Public members are what the API shows; the rest is private. */
struct job {
    char id[ID_LEN + 1];
    enum job_state state;
    enum job_reason reason;        /* REASON_NONE until the job ends badly */
    char detail[JOB_DETAIL_MAX];   /* "" = none */
    char backend[JOB_BACKEND_MAX]; /* the backend that runs the job */
    int64_t created_ms;            /* CLOCK_REALTIME ms; 0 = not yet */
    int64_t staging_ms;
    int64_t started_ms;
    int64_t finished_ms;
    int exit_code; /* -1 = none */
    int signo;     /* 0 = none */
    bool has_usage;
    struct job_usage usage;
    struct job_input *inputs; /* owned array of ninputs */
    size_t ninputs;
    struct job_owner owner; /* shown with identity = remote_user */
    /* Private. */
    int64_t round;              /* its round in the fair queue (core/jobindex.h) */
    uint64_t kept_bytes;        /* bytes of its files, measured when a terminal record is saved */
    json_object *sandbox;       /* the backend's re-attach state (owned), NULL = none */
    bool has_result;            /* the agent ended: result and stop are valid */
    enum sandbox_status result; /* how the agent ended, as the backend saw it */
    int stop;                   /* why the supervisor stopped the agent (supervisor.c) */
};

/* jobstore_job_init: an empty record (no inputs, exit_code -1, state queued). */
void jobstore_job_init(struct job *job);
/* jobstore_job_fini: free what job owns and leave it empty; NULL-safe. */
void jobstore_job_fini(struct job *job);
/* jobstore_job_add_input: append an input (strings copied). RC_NOMEM. */
enum rc jobstore_job_add_input(struct job *job, const char *name, uint64_t size, const char *type,
                               const char *sha256_hex) LB_MUST_CHECK;
/* jobstore_job_set_sandbox: replace the backend's state with a reference to state (may be NULL). */
void jobstore_job_set_sandbox(struct job *job, json_object *state);

/* jobstore_set_state: move job to state `to` with reason and detail (detail may be NULL),
 * stamping started_ms / finished_ms. RC_CONFLICT for an illegal transition. */
enum rc jobstore_set_state(struct job *job, enum job_state to, enum job_reason reason,
                           const char *detail) LB_MUST_CHECK;

/* jobstore_load: read <dirfd>/job.json into *out (initialised here; fini it even on error).
 * RC_NOTFOUND when absent, RC_IO when unreadable or not a job record. */
enum rc jobstore_load(int dirfd, struct job *out) LB_MUST_CHECK;
/* jobstore_save: replace <dirfd>/job.json atomically with job. A terminal record is saved with
 * job->kept_bytes measured first (jobstore_measure). */
enum rc jobstore_save(int dirfd, struct job *job) LB_MUST_CHECK;
/* jobstore_measure: the bytes of the files a job keeps (inputs, outputs, log, zip: every
 * regular file below its dir but the record; symlinks are not followed). */
uint64_t jobstore_measure(int dirfd);
/* jobstore_input_bytes: the bytes of job's inputs as its record lists them. */
uint64_t jobstore_input_bytes(const struct job *job);

/* How jobstore_public shows a job. */
enum jobstore_view {
    JOBSTORE_VIEW_OWNER = 1,      /* with "owner" (identity = remote_user) */
    JOBSTORE_VIEW_NO_OUTPUTS = 2, /* without "outputs" (lists) */
};

/* jobstore_public: the API's job object (caller owns): the public members plus expires_at (the
 * end plus ttl_s, job_ttl; null while live), queue_position (-1 = null), the outputs index
 * (borrowed, NULL = null) and links; view is a set of enum jobstore_view bits. NULL on OOM. */
json_object *jobstore_public(const struct job *job, long queue_position, json_object *outputs,
                             unsigned view, uint64_t ttl_s);

/*** the store ***/

/* jobstore_open creates <data>/{jobs,tmp} if needed and opens them. */
enum rc jobstore_open(struct jobstore *js, const struct config *cfg) LB_MUST_CHECK;
void jobstore_close(struct jobstore *js);

/* jobstore_open_job: an O_DIRECTORY fd of jobs/<id>; RC_NOTFOUND for an unknown or malformed
 * id (the same answer). */
enum rc jobstore_open_job(const struct jobstore *js, const char *id, int *out_fd) LB_MUST_CHECK;

/* jobstore_each_fn: one job of jobstore_foreach; dirfd and job are borrowed for the call.
 * Returning false stops the walk. */
typedef bool jobstore_each_fn(void *ctx, int dirfd, const struct job *job);
/* jobstore_foreach: call fn for every job dir with a readable record (others are logged and
 * passed over). RC_IO when jobs/ cannot be read. */
enum rc jobstore_foreach(const struct jobstore *js, jobstore_each_fn *fn, void *ctx) LB_MUST_CHECK;

/* Deleting a job is two steps: jobstore_unlink takes it out of jobs/ at once (the API then
 * answers 404; a live supervisor keeps working through its fds), jobstore_purge removes its
 * bytes once no supervisor holds it. */
/* jobstore_unlink: rename jobs/<id> to tmp/del-<id>. RC_NOTFOUND if absent. */
enum rc jobstore_unlink(const struct jobstore *js, const char *id) LB_MUST_CHECK;
/* jobstore_unlinked_is_live: does a supervisor still hold the unlinked job id? */
bool jobstore_unlinked_is_live(const struct jobstore *js, const char *id);
/* jobstore_purge: remove tmp/del-<id> whole. RC_IO when something could not be removed (it
 * is tried again at the next purge or start). */
enum rc jobstore_purge(const struct jobstore *js, const char *id) LB_MUST_CHECK;
/* jobstore_remove: unlink, then purge. */
enum rc jobstore_remove(const struct jobstore *js, const char *id) LB_MUST_CHECK;

/* jobstore_live_fn: an unlinked job whose supervisor still lives (found by clear_tmp). */
typedef void jobstore_live_fn(void *ctx, const char *id);
/* jobstore_clear_tmp: remove everything under tmp/ (start-up: staging dirs and deleted jobs
 * of an earlier life), except deleted jobs a supervisor still holds: those are passed to
 * live (may be NULL) to be purged when it ends. */
void jobstore_clear_tmp(const struct jobstore *js, jobstore_live_fn *live, void *ctx);

/*** an upload being staged ***/

struct jobstore_stage {
    char id[ID_LEN + 1]; /* the new job's id */
    int dirfd;           /* tmp/up-<id>, -1 when none */
    int inputs_fd;       /* its inputs/ */
};

/* jobstore_stage_begin: a fresh id and an empty staging dir for it. */
enum rc jobstore_stage_begin(const struct jobstore *js, struct jobstore_stage *st) LB_MUST_CHECK;
/* jobstore_stage_create_input: create the input file name, a relative path checked by the
 * caller (names_check_input_path), for writing (O_EXCL), its directories made one component
 * at a time without following links: *out_fd is the caller's. RC_CONFLICT when it exists or a
 * directory of its path is a file (or the other way round), RC_IO otherwise. */
enum rc jobstore_stage_create_input(struct jobstore_stage *st, const char *name,
                                    int *out_fd) LB_MUST_CHECK;
/* jobstore_stage_link_inputs: the inputs of the job at src_dirfd as the stage's inputs (a
 * re-run): hard links, copies across filesystems; its params.json is left out with
 * skip_params. RC_IO. */
enum rc jobstore_stage_link_inputs(struct jobstore_stage *st, int src_dirfd,
                                   bool skip_params) LB_MUST_CHECK;
/* jobstore_input_is_reserved: is name one the store writes itself (params.json)? */
bool jobstore_input_is_reserved(const char *name);
/* jobstore_stage_write_params: the params text as inputs/params.json. */
enum rc jobstore_stage_write_params(struct jobstore_stage *st, const char *text,
                                    size_t len) LB_MUST_CHECK;
/* jobstore_stage_publish: write job's record, make the stage durable and
 * rename the dir to jobs/<id>, durably: once it returns RC_OK the job survives a power cut
 * (docs/architecture.md, "Durability"). On success the stage is spent (its fds closed). */
enum rc jobstore_stage_publish(const struct jobstore *js, struct jobstore_stage *st,
                               const struct job *job) LB_MUST_CHECK;
/* jobstore_stage_abort: remove whatever was staged; safe on a spent or empty stage. */
void jobstore_stage_abort(const struct jobstore *js, struct jobstore_stage *st);

/*** artifacts of a job (dirfd: jobstore_open_job's fd) ***/

/* jobstore_request_cancel: leave the cancel request for the job's supervisor. */
enum rc jobstore_request_cancel(int dirfd) LB_MUST_CHECK;
/* jobstore_cancel_requested: has a cancel been requested? */
bool jobstore_cancel_requested(int dirfd);
/* jobstore_cancel_clear: forget the request (the job has ended). */
void jobstore_cancel_clear(int dirfd);

/* jobstore_lock_take: take the job's lock without waiting: the fd holding it (CLOEXEC), or -1
 * with errno EWOULDBLOCK when someone holds it (other errno on failure). */
int jobstore_lock_take(int dirfd);
/* jobstore_lock_is_held: is a supervisor alive for this job (someone holds the lock)? */
bool jobstore_lock_is_held(int dirfd);

enum jobstore_log_mode {
    JOBSTORE_LOG_READ,   /* read only */
    JOBSTORE_LOG_APPEND, /* O_APPEND writes, created if needed (the supervisor) */
    JOBSTORE_LOG_REPAIR, /* read and write, to cut a torn last record (recovery) */
};
/* jobstore_log_open: log.jsonl in the given mode (created empty if missing); -1 on error
 * (logged). */
int jobstore_log_open(int dirfd, enum jobstore_log_mode mode);

/* jobstore_inputs_open / jobstore_outputs_open: O_DIRECTORY fds of inputs/ and outputs/; -1
 * (errno set) when absent. */
int jobstore_inputs_open(int dirfd);
int jobstore_outputs_open(int dirfd);

/* jobstore_outputs_begin: an empty outputs.tmp/ (earlier outputs removed), its fd in *out_fd. */
enum rc jobstore_outputs_begin(int dirfd, int *out_fd) LB_MUST_CHECK;
/* jobstore_outputs_commit: write the index (a JSON array, borrowed) to outputs.json and rename
 * outputs.tmp/ to outputs/: readers see all outputs or none. */
enum rc jobstore_outputs_commit(int dirfd, json_object *index) LB_MUST_CHECK;
/* jobstore_outputs_index: the outputs index (caller owns; NULL when the job has none yet). */
enum rc jobstore_outputs_index(int dirfd, json_object **out) LB_MUST_CHECK;
/* jobstore_output_relpath: where nginx finds output `enc` (already percent-encoded) of job
 * id, relative to <data>/jobs/. RC_TOOBIG if it does not fit. */
enum rc jobstore_output_relpath(const char *id, const char *enc, char *out,
                                size_t len) LB_MUST_CHECK;

/* jobstore_share: give fd, a file (dir = false) or directory nginx sends from (outputs,
 * inputs, the zips), the job dir's group and the mode that lets nginx read it and nobody else
 * (see the modes above). Every such dir and file is shared so before it can be asked for. */
enum rc jobstore_share(int dirfd, int fd, bool dir) LB_MUST_CHECK;

/* The zips of a job: its outputs, its inputs. */
enum jobstore_zip {
    JOBSTORE_ZIP_OUTPUTS, /* outputs.zip */
    JOBSTORE_ZIP_INPUTS,  /* inputs.zip */
};
/* jobstore_zip_begin: a fresh temporary file in the job dir for a zip (unique per thread:
 * builders do not collide); *out_fd is the caller's, name (>= 64 bytes) its name. */
enum rc jobstore_zip_begin(int dirfd, enum jobstore_zip kind, int *out_fd, char *name,
                           size_t namelen) LB_MUST_CHECK;
/* jobstore_zip_commit: make the temporary file name the job's zip of that kind (atomic); abort
 * removes it instead. */
enum rc jobstore_zip_commit(int dirfd, enum jobstore_zip kind, const char *name) LB_MUST_CHECK;
void jobstore_zip_abort(int dirfd, const char *name);
/* jobstore_zip_build: begin, write the files index names under src_dirfd (jobs/outzip), commit;
 * nothing is left behind on failure. RC_IO, RC_NOMEM. */
enum rc jobstore_zip_build(int dirfd, enum jobstore_zip kind, int src_dirfd,
                           json_object *index) LB_MUST_CHECK;
/* jobstore_zip_exists: has the job's zip of that kind been built? */
bool jobstore_zip_exists(int dirfd, enum jobstore_zip kind);
/* jobstore_zip_relpath: where nginx finds job id's zip, relative to <data>/jobs/. */
enum rc jobstore_zip_relpath(const char *id, enum jobstore_zip kind, char *out,
                             size_t len) LB_MUST_CHECK;

/* jobstore_inputs_index: the job's inputs as a zip index ([{path}], caller owns): every input
 * of the record, then params.json when the job has one. RC_NOMEM. */
enum rc jobstore_inputs_index(int dirfd, const struct job *job, json_object **out) LB_MUST_CHECK;
/* jobstore_input_relpath: where nginx finds input `enc` (already percent-encoded) of job id,
 * relative to <data>/jobs/. RC_TOOBIG if it does not fit. */
enum rc jobstore_input_relpath(const char *id, const char *enc, char *out,
                               size_t len) LB_MUST_CHECK;
/* jobstore_params_read: the job's params text (inputs/params.json) into *out (NUL-terminated;
 * the caller frees). RC_NOTFOUND when the job has none, RC_TOOBIG, RC_IO. */
enum rc jobstore_params_read(int dirfd, char **out, size_t *out_len) LB_MUST_CHECK;
/* jobstore_has_params: did the job come with params (inputs/params.json)? */
bool jobstore_has_params(int dirfd);

/*** watching and caching a job ***/

/* The inotify events that mean a job's record was replaced (watching its directory; the name
 * is the record's when jobstore_event_is_record says so) and that its log grew (watching
 * log.jsonl). */
#define JOBSTORE_RECORD_EVENTS (IN_MOVED_TO | IN_CREATE)
#define JOBSTORE_LOG_EVENTS    IN_MODIFY
/* jobstore_event_is_record: does an inotify event with this name (in the job dir) concern the
 * record? */
bool jobstore_event_is_record(const char *name);

/* The identity of the file a job's record is in, and of its contents: its file handle
 * (name_to_handle_at(2): inode number and generation on ext4, xfs, btrfs and tmpfs), its mount,
 * its ctime and size. job.json is replaced whole by a rename, and a file handle never names
 * another file later (the contract of exportable filesystems, which NFS relies on), so a
 * replaced record has another handle even when its inode number was reused; a record rewritten
 * in place (a full disk's last resort) has a later ctime (fine-grained once read, on kernels
 * with multigrain timestamps; else at the clock tick) or another size. len 0: the filesystem
 * gives no handles (overlayfs, some FUSE): such an identity equals nothing. */
#define JOBSTORE_IDENT_MAX 64 /* bytes of a handle kept; longer ones count as none */
struct jobstore_ident {
    int mount_id;
    int type;
    unsigned len;
    unsigned char handle[JOBSTORE_IDENT_MAX];
    int64_t ctime_ns;
    int64_t size;
};

/* jobstore_record_ident: the identity of job id's record now, for two path walks and no read.
 * RC_NOTFOUND for an unknown job (or malformed id); RC_UNSUPPORTED (len 0) when the
 * filesystem gives no handles; RC_IO. */
enum rc jobstore_record_ident(const struct jobstore *js, const char *id,
                              struct jobstore_ident *out) LB_MUST_CHECK;
/* jobstore_load_ident: jobstore_load, and the identity of the very file it read (len 0 when
 * the filesystem gives none). */
enum rc jobstore_load_ident(int dirfd, struct job *out, struct jobstore_ident *ident) LB_MUST_CHECK;
/* jobstore_ident_equal: the same record file (never true for len 0). */
bool jobstore_ident_equal(const struct jobstore_ident *a, const struct jobstore_ident *b);

#endif
