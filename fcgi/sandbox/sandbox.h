/* sandbox: the one interface every backend (local, docker, modal) implements, and the policy
 * they share.
 *
 * Theory of operation. One `labbox supervise` process drives one job's sandbox through these
 * hooks, in this order:
 *
 *   init -> start -> poll ... poll (until *out_done) -> collect -> destroy -> fini
 *                      \-> cancel, then poll until done
 *   init -> attach (after a supervisor died) -> poll ... as above
 *
 * The supervisor owns the job directory, job.json, log.jsonl, time and outcome: it alone keeps
 * the wall clock, notices cancel requests and the log cap, calls cancel() for any of them, and
 * decides the job's terminal state from its own reason for stopping the agent. A backend
 * therefore has no deadline, cancel flag or timeout status of its own (a server-side timeout
 * a remote backend sets is only a backstop behind the supervisor's). Instead a backend
 *   - hands every byte the agent prints to sandbox_emit() (or sandbox_emit_at() when it reads
 *     a stream by position and may see bytes again), in order per stream, as it arrives;
 *   - keeps whatever it needs to re-attach (container id, sandbox id, exec ids, phase) in the
 *     json object sb->state and calls sandbox_persist(sb) after changing it; the supervisor
 *     stores that object in job.json under "sandbox" (never shown by the API);
 *   - after attach, resumes each stream at sb->resume_offset[stream], the bytes the supervisor
 *     has logged already (recovered from log.jsonl); sandbox_emit_at() drops any byte below it;
 *   - reports how the agent ended as the agent's own exit (sandbox_result_from_exit or
 *     _from_wait: one mapping for every backend) and what it measured;
 *   - collects with collect_tree (a directory) or the sandbox_tar_in helpers (a tar stream),
 *     so every backend applies the same caps and the same hostile-tree rules.
 * A backend fault (engine down, RPC failed) is RC_BACKEND with a one-line, secret-free
 * explanation in sb->error; the user's program failing is a normal result.
 *
 * Hooks run on the supervisor's single thread; none may block longer than the poll timeout it
 * was given, except start/collect/destroy, which may take as long as their transfer needs but
 * must bound each blocking call with sandbox_io_ms().
 */
#ifndef LABBOX_SANDBOX_H
#define LABBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "jobs/collect.h"
#include "parse/imagedef.h"
#include "rc.h"

/* The work dir's layout, as the agent sees it: SANDBOX_WORKSPACE holds the agent's files,
 * inputs/ (read-only where the backend can) and outputs/, which is what gets collected. */
#define SANDBOX_WORKSPACE   "/workspace"
#define SANDBOX_INPUTS_DIR  "inputs"
#define SANDBOX_OUTPUTS_DIR "outputs"

enum sandbox_stream {
    SANDBOX_STDOUT, /* the agent's fd 1 */
    SANDBOX_STDERR, /* the agent's fd 2 */
    SANDBOX_STREAM__MAX
};

/* How the agent ended. Backends report only what the agent did (OK, RUNTIME_ERROR, SIGNALED,
 * OOM) or INTERNAL; a signal the supervisor had sent (cancel) is SIGNALED like any other. */
enum sandbox_status {
    SANDBOX_OK,            /* exited 0 */
    SANDBOX_RUNTIME_ERROR, /* exited non-zero */
    SANDBOX_SIGNALED,      /* killed by a signal (also one the supervisor had sent) */
    SANDBOX_TIMEOUT,       /* the supervisor's verdict, never a backend's: ran past wall_timeout */
    SANDBOX_OOM,           /* killed for memory */
    SANDBOX_INTERNAL,      /* the backend failed, not the program */
    SANDBOX_STATUS__MAX
};

struct sandbox_result {
    enum sandbox_status status;
    int exit_code;       /* valid when the program exited; -1 otherwise */
    int signo;           /* the terminating signal, 0 if none */
    uint64_t wall_ms;    /* from start to exit, 0 if the backend cannot tell (the supervisor's
                          * clock is used then) */
    uint64_t cpu_ms;     /* user + system, 0 if the backend cannot tell */
    uint64_t max_rss_kb; /* peak resident set, 0 if the backend cannot tell */
    bool disk_full;      /* the agent's capped workspace was full when it ended */
};

/* The job a sandbox runs, filled by the supervisor; all borrowed for the sandbox's life. */
struct sandbox_job {
    const char *id;       /* job id */
    const char *dir;      /* absolute path of <data>/jobs/<id> */
    int dirfd;            /* O_PATH|O_DIRECTORY fd of that directory */
    const char *work_dir; /* <sandbox_dir>/<id>: agent files + inputs/ + outputs/, on the host */
    char *const *argv;    /* the agent command, run in /workspace */
    char *const *envp;    /* the agent's whole environment (LABBOX_*, agent_env) */
    uint64_t timeout_s;   /* wall-clock limit of the agent */
    const char *owner;    /* who created the job (a user or an address key); NULL = nobody */
};

struct sandbox;

typedef void sandbox_output_fn(void *ctx, enum sandbox_stream s, const char *p, size_t n);
typedef void sandbox_note_fn(void *ctx, const char *line);
typedef enum rc sandbox_persist_fn(void *ctx, struct sandbox *sb);
typedef bool sandbox_claimed_fn(void *ctx, const char *job_id);

#define SANDBOX_CAP_REATTACH 0x1u /* attach works after the supervisor died */

struct sandbox_ops {
    const char *name; /* "local", "docker", "modal": the config value */
    unsigned caps;    /* SANDBOX_CAP_* */
    size_t priv_size; /* bytes of zeroed private state allocated for sb->priv */

    /* init: set up the instance (connections, tokens). No sandbox exists yet. */
    enum rc (*init)(struct sandbox *sb);
    /* start: create the sandbox, stage job->work_dir into /workspace, launch job->argv. */
    enum rc (*start)(struct sandbox *sb);
    /* attach: re-attach using sb->state after a supervisor restart; the agent may still be
     * running or may have finished meanwhile (poll then reports its result). */
    enum rc (*attach)(struct sandbox *sb);
    /* poll: wait up to timeout_ms for output (delivered via on_output) or the end of the
     * agent. Sets *out_done and fills *out when the agent has ended. */
    enum rc (*poll)(struct sandbox *sb, int timeout_ms, bool *out_done, struct sandbox_result *out);
    /* cancel: kill the agent now (all its processes); poll then reports it ended, as whatever
     * the kill made of it (usually SIGNALED). The supervisor calls it for a timeout, a user's
     * cancel and the log cap alike, and concludes from its own reason, not from the result. */
    enum rc (*cancel)(struct sandbox *sb);
    /* collect: bring SANDBOX_WORKSPACE/outputs into outputs_dirfd (an empty directory) with the
     * hostile-tree rules of jobs/collect.h, within the output caps. */
    enum rc (*collect)(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out);
    /* destroy: remove the sandbox and everything it holds; idempotent, safe after a failed
     * start. */
    enum rc (*destroy)(struct sandbox *sb);
    /* fini: release sb->priv's resources (not the sandbox itself). */
    void (*fini)(struct sandbox *sb);

    /* Service-level hooks, called by `labbox serve` with no job (sb->job is NULL). */
    /* check: is the backend usable? RC_OK, or RC_BACKEND with the reason in sb->error. */
    enum rc (*check)(struct sandbox *sb);
    /* reap_orphans: destroy sandboxes labelled as labbox's whose job id claimed() denies. */
    enum rc (*reap_orphans)(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx);
};

struct sandbox {
    const struct sandbox_ops *ops;
    void *priv;                    /* ops->priv_size zeroed bytes, the backend's own */
    const struct config *cfg;      /* borrowed */
    const struct sandbox_job *job; /* borrowed; NULL for service-level calls */
    json_object *state;            /* owned: the backend's persisted state (an object) */
    /* Bytes of each stream handed to on_output so far, counting what an earlier supervisor
     * logged: the supervisor sets it before attach, sandbox_emit advances it. */
    uint64_t resume_offset[SANDBOX_STREAM__MAX];
    int64_t deadline_ms;            /* CLOCK_MONOTONIC ms by which blocking I/O must end, 0: none */
    sandbox_output_fn *on_output;   /* agent bytes go here */
    sandbox_note_fn *on_note;       /* labbox's own lines for the job's log go here */
    sandbox_persist_fn *on_persist; /* saves sb->state into job.json */
    void *cb_ctx;                   /* passed to the callbacks */
    char error[512];                /* human-readable reason for RC_BACKEND, no secrets */
};

/* sandbox_ops_by_name returns the compiled-in backend called name, or NULL. */
const struct sandbox_ops *sandbox_ops_by_name(const char *name);
/* sandbox_names returns "local docker modal" as compiled in (static string). */
const char *sandbox_names(void);

/* sandbox_new allocates an instance with zeroed priv and an empty state object; NULL on OOM.
 * job may be NULL for service-level calls. sandbox_free calls ops->fini and frees all. */
struct sandbox *sandbox_new(const struct sandbox_ops *ops, const struct config *cfg,
                            const struct sandbox_job *job);
void sandbox_free(struct sandbox *sb);

/* sandbox_fail records a printf-style reason in sb->error and returns RC_BACKEND. */
enum rc sandbox_fail(struct sandbox *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* sandbox_persist calls on_persist if set. */
enum rc sandbox_persist(struct sandbox *sb) LB_MUST_CHECK;
/* sandbox_status_str: "ok", "runtime_error", ... (static). */
const char *sandbox_status_str(enum sandbox_status s);
/* sandbox_status_parse: the status called s; false for NULL or an unknown name. */
bool sandbox_status_parse(const char *s, enum sandbox_status *out);

/*** Helpers for backends: the policy every backend shares ***/

/* sandbox_emit hands agent bytes to on_output (if set) and advances sb->resume_offset[s]. */
void sandbox_emit(struct sandbox *sb, enum sandbox_stream s, const char *p, size_t n);
/* sandbox_emit_at: the same for bytes that sit at stream offset at (p[0] is byte number at of
 * stream s): what lies below sb->resume_offset[s] was handed out already and is dropped, so a
 * backend that re-reads a stream from an earlier position (a reopened log, an attach) never
 * repeats a byte. Bytes beyond resume_offset must follow it without a gap. */
void sandbox_emit_at(struct sandbox *sb, enum sandbox_stream s, uint64_t at, const char *p,
                     size_t n);

/* sandbox_note: a printf-style line from labbox itself for the job's log (its "system"
 * stream, never the agent's): what the backend is waiting for, an image build's output. At most
 * SANDBOX_NOTE_MAX bytes of valid UTF-8 (the caller's text is cut, not the record). */
#define SANDBOX_NOTE_MAX 900
void sandbox_note(struct sandbox *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Text from a backend's tool (an image build's log) into notes, line by line: each line, made
 * valid UTF-8 and cut at SANDBOX_NOTE_MAX, becomes one note after prefix. open: RC_NOMEM only;
 * feed takes any bytes; close notes a last partial line and frees (safe twice). */
struct sandbox_notes {
    struct sandbox *sb;
    struct logsplit *ls;
    const char *prefix; /* borrowed */
};
enum rc sandbox_notes_open(struct sandbox *sb, const char *prefix,
                           struct sandbox_notes *n) LB_MUST_CHECK;
void sandbox_notes_feed(struct sandbox_notes *n, const char *p, size_t len);
void sandbox_notes_close(struct sandbox_notes *n);

/* The image the agent needs (docs/modal.md#images): the job's copy of the agent dir may hold a
 * Dockerfile and a requirements.txt; extra_json adds instructions (Modal's
 * modal_image_commands). def borrows the files' bytes kept here; what names the sources for
 * people ("requirements.txt", "Dockerfile and modal_image_commands", ...; "" when def.plain). */
struct sandbox_image {
    struct imagedef def;
    char *dockerfile, *requirements; /* heap, NULL when absent */
    char what[80];
};
/* sandbox_image_load reads the definition files of the job's work dir and builds the
 * definition on base (the configured image). RC_BACKEND with sb->error for a definition labbox
 * refuses (naming the file and line), RC_NOMEM. Free with sandbox_image_fini either way. */
enum rc sandbox_image_load(struct sandbox *sb, const char *base, const char *extra_json,
                           struct sandbox_image *out) LB_MUST_CHECK;
void sandbox_image_fini(struct sandbox_image *img);

/* sandbox_io_ms: how long one blocking backend call may take: cap_ms, cut to what is left
 * before sb->deadline_ms (at least 1 ms, so a call past the deadline fails at once). */
long sandbox_io_ms(const struct sandbox *sb, long cap_ms);

/* sandbox_result_from_exit fills status, exit_code and signo of *out (the usage fields stay)
 * from how the backend saw the agent end: its exit code (-1 if none) or the signal that ended
 * it (0 if none). An exit code of 129..192 with no signal is a death by signal code - 128, the
 * convention of shells, bubblewrap and container engines, so an agent ends the same on every
 * backend. oom: the backend has evidence that the memory limit killed something in the
 * sandbox; it makes a failed end (not an exit 0) SANDBOX_OOM. */
void sandbox_result_from_exit(struct sandbox_result *out, int code, int signo, bool oom);
/* sandbox_result_from_wait: the same from a waitpid(2) status. */
void sandbox_result_from_wait(struct sandbox_result *out, int wstatus, bool oom);

/* sandbox_tmpfile: an unlinked read-write file in the job directory (O_TMPFILE, or a named
 * file removed at once where the filesystem lacks it). RC_BACKEND with sb->error set. */
enum rc sandbox_tmpfile(struct sandbox *sb, int *out_fd) LB_MUST_CHECK;

/* sandbox_tar_cap: the most bytes of a tar stream of the outputs a backend takes in:
 * output_max_bytes of contents plus, for each of output_max_files entries and 16 more, a
 * 512-byte header and up to 1 KiB of padding and long-name extension records, plus 1 MiB for
 * the end-of-archive blocks and the record padding of any tar writer. collect_tar_fd applies the
 * exact caps; this one only bounds what is written to disk before it runs. */
uint64_t sandbox_tar_cap(const struct config *cfg);

/* Receiving a tar stream of the outputs dir (members "outputs/...") from a sandbox: open a
 * temp file, feed it with sandbox_tar_in_write (a write callback: ctx is the struct), then
 * sandbox_tar_in_extract; sandbox_tar_in_close is safe at any point and twice. Past
 * sandbox_tar_cap the write refuses more (RC_TOOBIG) and sets cut: extract then keeps what
 * came before the cut and reports over_limit. */
struct sandbox_tar_in {
    struct sandbox *sb;
    int fd;         /* the temp file, -1 when closed */
    uint64_t bytes; /* written so far */
    uint64_t cap;   /* sandbox_tar_cap */
    bool cut;       /* the stream went past cap */
};
enum rc sandbox_tar_in_open(struct sandbox *sb, struct sandbox_tar_in *t) LB_MUST_CHECK;
enum rc sandbox_tar_in_write(void *ctx, const char *p, size_t n) LB_MUST_CHECK;
/* sandbox_tar_in_extract: the stream's outputs/ members into outputs_dirfd with the output
 * caps and the rules of jobs/collect.h. RC_BACKEND (sb->error set) for a stream that is not a
 * tar, unless it was cut. */
enum rc sandbox_tar_in_extract(struct sandbox_tar_in *t, int outputs_dirfd,
                               struct collect_stats *out) LB_MUST_CHECK;
void sandbox_tar_in_close(struct sandbox_tar_in *t);

/* Defaults for hooks a backend has nothing to do in. */
enum rc sandbox_nop_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx);
enum rc sandbox_noattach(struct sandbox *sb);

static inline enum rc LB_MUST_CHECK
sandbox_start(struct sandbox *sb)
{
    return sb->ops->start(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_attach(struct sandbox *sb)
{
    return sb->ops->attach(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_poll(struct sandbox *sb, int timeout_ms, bool *out_done, struct sandbox_result *out)
{
    return sb->ops->poll(sb, timeout_ms, out_done, out);
}
static inline enum rc LB_MUST_CHECK
sandbox_cancel(struct sandbox *sb)
{
    return sb->ops->cancel(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_collect(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out)
{
    return sb->ops->collect(sb, outputs_dirfd, out);
}
static inline enum rc
sandbox_destroy(struct sandbox *sb)
{
    return sb->ops->destroy(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_init(struct sandbox *sb)
{
    return sb->ops->init(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_check(struct sandbox *sb)
{
    return sb->ops->check(sb);
}
static inline enum rc LB_MUST_CHECK
sandbox_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    return sb->ops->reap_orphans(sb, claimed, ctx);
}

#endif
