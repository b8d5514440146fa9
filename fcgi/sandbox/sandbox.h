/* sandbox: the one interface every backend (local, docker, modal) implements.
 *
 * Theory of operation. One `labbox supervise` process drives one job's sandbox through these
 * hooks, in this order:
 *
 *   init -> start -> poll ... poll (until *out_done) -> collect -> destroy -> fini
 *                      \-> cancel (timeout, user cancel, log limit), then poll until done
 *   init -> attach (after a supervisor died) -> poll ... as above
 *
 * The supervisor owns the job directory, job.json and log.jsonl; the backend never writes them.
 * Instead a backend
 *   - hands every byte the agent prints to sb->on_output(), in order per stream, as it arrives;
 *   - keeps whatever it needs to re-attach (container id, sandbox id, exec ids, phase) in the
 *     json object sb->state and calls sandbox_persist(sb) after changing it; the supervisor
 *     stores that object in job.json under "sandbox" (never shown by the API);
 *   - after attach, skips the first sb->resume_offset[stream] bytes of each stream, because the
 *     supervisor has logged them already (offsets are recovered from log.jsonl).
 * A backend fault (engine down, RPC failed) is RC_BACKEND with a one-line, secret-free
 * explanation in sb->error; the user's program failing is a normal result.
 *
 * Hooks run on the supervisor's single thread; none may block longer than the poll timeout it
 * was given, except start/collect/destroy, which may take as long as their transfer needs but
 * must honour sb->deadline_ms for their own I/O.
 */
#ifndef LABBOX_SANDBOX_H
#define LABBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "rc.h"

/* The work dir's layout, as the agent sees it: /workspace holds the agent's files, inputs/
 * (read-only where the backend can) and outputs/, which is what gets collected. */
#define SANDBOX_WORKSPACE   "/workspace"
#define SANDBOX_INPUTS_DIR  "inputs"
#define SANDBOX_OUTPUTS_DIR "outputs"

enum sandbox_stream {
    SANDBOX_STDOUT, /* the agent's fd 1 */
    SANDBOX_STDERR, /* the agent's fd 2 */
    SANDBOX_STREAM__MAX
};

enum sandbox_status {
    SANDBOX_OK,            /* exited 0 */
    SANDBOX_RUNTIME_ERROR, /* exited non-zero */
    SANDBOX_SIGNALED,      /* killed by a signal it did not get from us */
    SANDBOX_TIMEOUT,       /* killed by us or the backend for the wall-clock deadline */
    SANDBOX_OOM,           /* killed for memory */
    SANDBOX_CANCELED,      /* killed by sandbox_cancel for another reason */
    SANDBOX_INTERNAL,      /* the backend failed, not the program */
    SANDBOX_STATUS__MAX
};

struct sandbox_result {
    enum sandbox_status status;
    int exit_code;       /* valid when the program exited; -1 otherwise */
    int signo;           /* the terminating signal, 0 if none */
    uint64_t wall_ms;    /* from start to exit */
    uint64_t cpu_ms;     /* user + system, 0 if the backend cannot tell */
    uint64_t max_rss_kb; /* peak resident set, 0 if the backend cannot tell */
};

/* What collect brought back. */
struct sandbox_collect_stats {
    uint64_t files;   /* regular files copied */
    uint64_t bytes;   /* their bytes */
    uint64_t skipped; /* links, devices, FIFOs, bad names: never copied */
    bool over_limit;  /* output_max_bytes or output_max_files was hit: the job fails */
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
};

struct sandbox;

typedef void sandbox_output_fn(void *ctx, enum sandbox_stream s, const char *p, size_t n);
typedef enum rc sandbox_persist_fn(void *ctx, struct sandbox *sb);
typedef bool sandbox_claimed_fn(void *ctx, const char *job_id);

#define SANDBOX_CAP_REATTACH 0x1u /* attach works after the supervisor died */
#define SANDBOX_CAP_REMOTE   0x2u /* runs off this host: staging is by transfer, not a bind */

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
    /* cancel: kill the agent now (all its processes); poll then reports it ended. The status
     * the supervisor gives the job comes from its own reason, not from the backend. */
    enum rc (*cancel)(struct sandbox *sb);
    /* collect: bring /workspace/outputs into outputs_dirfd (an empty directory) with the
     * hostile-tree rules of jobs/collect.h, within the output caps. */
    enum rc (*collect)(struct sandbox *sb, int outputs_dirfd, struct sandbox_collect_stats *out);
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
    uint64_t resume_offset[SANDBOX_STREAM__MAX]; /* bytes already logged per stream */
    int64_t deadline_ms;            /* CLOCK_MONOTONIC ms by which blocking I/O must end */
    sandbox_output_fn *on_output;   /* agent bytes go here */
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
/* sandbox_emit hands agent bytes to on_output if set. */
void sandbox_emit(struct sandbox *sb, enum sandbox_stream s, const char *p, size_t n);
/* sandbox_status_str: "ok", "runtime_error", ... (static). */
const char *sandbox_status_str(enum sandbox_status s);
/* sandbox_status_parse: the status called s; false for NULL or an unknown name. */
bool sandbox_status_parse(const char *s, enum sandbox_status *out);

/* Defaults for hooks a backend has nothing to do in. */
enum rc sandbox_nop_init(struct sandbox *sb);
void sandbox_nop_fini(struct sandbox *sb);
enum rc sandbox_nop_check(struct sandbox *sb);
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
sandbox_collect(struct sandbox *sb, int outputs_dirfd, struct sandbox_collect_stats *out)
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
