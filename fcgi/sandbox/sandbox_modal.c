/* sandbox_modal: the Modal backend: an idle V1 or V2 sandbox, tar through exec stdin/stdout, the
 * agent as a router exec whose stdout/stderr stream live (docs/modal.md#one-job-step-by-step).
 *
 * Theory of operation. start(): app -> image (build wait) -> SandboxCreate (tags labbox=<instance>,
 * job=<id>) -> task id -> router -> upload exec `tar -xf - -C /workspace` fed by TaskExecStdinWrite
 * -> agent exec. poll() drives three router calls on one HTTP/2 connection: TaskExecStdioRead for
 * stdout and for stderr (offset-addressed, reopened at the byte count received on a retryable
 * error) and TaskExecWait (60 s per attempt, reopened). collect() runs a download exec
 * `tar -cf - -C /workspace outputs` into the sandbox_tar_in helpers (a capped temp file, then
 * collect_tar_fd). destroy() terminates the sandbox. sb->state holds phase, sandbox_id, task_id
 * and exec ids, persisted before each step that needs them for attach(), which resumes the stdio
 * reads at sb->resume_offset. A job's sandbox is also tagged owner=<owner> when the job has one.
 *
 * Sandbox families (docs/modal.md#sandbox-families). cfg->modal_sandbox_version picks the family of
 * new sandboxes: 1 = SandboxCreate, then SandboxGetTaskId polling and TaskGetCommandRouterAccess;
 * 2 = SandboxCreateV2, whose reply carries the task id and the router access. Everything about an
 * existing sandbox (wait, terminate, router access on attach or JWT refresh) follows the family of
 * its recorded id's shape, whatever the configuration says now, like the SDKs do (modal_client.h).
 * Listing (crash-during-create recovery, orphan reaping) looks at both families, since an earlier
 * run may have used the other one. Execs, uploads, outputs and the stop exec are router calls, the
 * same for both.
 *
 * Stopping the agent but keeping the sandbox (docs/modal.md#stopping-the-agent). Modal has no RPC
 * that stops one exec, and terminating the sandbox loses the outputs. The only thing every exec
 * of a sandbox surely shares is its files, so the agent runs under a POSIX sh wrapper
 * (AGENT_WRAP) whose watcher stops the agent's whole process tree when a stop file appears;
 * cancel() starts a short stop exec (AGENT_STOP) that creates that file. poll() then sees the
 * agent's exit as usual, and collect() still finds /workspace/outputs. If the stop exec cannot
 * be started or fails, or the agent has not ended MODAL_KILL_GRACE_MS later, the agent is given
 * up on (abandoned): reported ended, its outputs collected as they are, the sandbox terminated by
 * destroy() right after.
 *
 * Streams. The agent's stdout, stderr and exit wait are reopened, after a growing backoff, for
 * as long as the router answers (data, or a call it accepted before the connection was cut
 * under it); MODAL_STREAM_RETRIES calls in a row that nothing came back to end the job.
 *
 * Images and shared ids. start() builds the agent's image from the agent dir's definition
 * (sandbox_image_load), its build log into the job's log as notes; the app, builder and image ids
 * and the auth token come from the store rpc/modal_store shares between labbox's processes.
 *
 * Time. The supervisor keeps the wall clock and calls cancel() at its deadline; this backend
 * keeps none. The agent exec carries a server-side timeout_secs of timeout_s +
 * MODAL_BACKSTOP_S only as a backstop for a supervisor that is gone (the sandbox's own lifetime
 * is longer still); an agent it kills ends like any killed agent, and the supervisor, finding
 * it ended past the limit, concludes timed_out.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/collect.h"
#include "json.h"
#include "log.h"
#include "rpc/modal_client.h"
#include "rpc/modal_retry.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/sha256.h"

#define MODAL_LIFETIME_MARGIN_S 900              /* sandbox lifetime beyond the agent timeout */
#define MODAL_MILLI_CPU         1000             /* one CPU, when cpus = 0 */
#define MODAL_SETUP_MS          (20 * 60 * 1000) /* image build + create, when no deadline */
#define MODAL_BACKSTOP_S        30               /* agent exec's server timeout beyond timeout_s */
#define MODAL_STDIN_CHUNK       (1024 * 1024)
#define MODAL_WAIT_ATTEMPT_MS   60000 /* one TaskExecWait attempt, then asked again */
#define MODAL_STREAM_RETRIES    10    /* reopenings in a row that nothing came back to */
#define MODAL_REOPEN_BASE_MS    50    /* first delay before reopening a stream or wait ... */
#define MODAL_REOPEN_CAP_MS     2000  /* ... doubling to this */
#define MODAL_DRAIN_MS          10000 /* after exit, how long stdio may still trail */
#define MODAL_PROBE_MS          60000 /* the health check asks Modal at most this often */
#define MODAL_KILL_GRACE_MS     5000  /* from the stop exec's start to the agent's end */
#define MODAL_KILL_EXEC_S       30    /* server-side timeout of the stop exec */
#define MODAL_STOPFILE          "/tmp/.labbox-stop-" /* + the agent's exec id */

/* The agent's wrapper, argv[2] of `sh -c` (never modified); $1 is the stop file, the rest the
 * agent's argv. The agent runs as the wrapper's child, in a session of its own where setsid
 * needs no fork (an asynchronous child is no process group leader). A watcher subshell, with
 * no part in the exec's output, looks for the stop file once a second; when it appears it stops
 * the agent's whole tree (STOP_TREE), deaf to the TERM the wrapper sends it once the agent is
 * gone. The wrapper exits with the agent's status (a death by
 * signal n as 128 + n, which sandbox_result_from_exit reads back as the signal). So stopping
 * needs only what every exec shares, the sandbox's files, never a common pid namespace. */
#define STOP_TREE                                                                                  \
    "st() { s=; read -r s 2>/dev/null </proc/$1/stat || return 1; s=${s##*) }; }\n"                \
    "v=\" $a \" more=1\n"                                                                          \
    "while [ $more = 1 ]; do\n"                                                                    \
    "  more=0\n"                                                                                   \
    "  for d in /proc/[0-9]*; do\n"                                                                \
    "    q=${d#/proc/}\n"                                                                          \
    "    case $v in *\" $q \"*) continue;; esac\n"                                                 \
    "    [ \"$q\" = $$ ] || [ \"$q\" = 1 ] || ! st \"$q\" && continue\n"                           \
    "    set -- $s\n"                                                                              \
    "    case $v in *\" $2 \"*) ;; *) [ \"$3\" = \"$a\" ] || [ \"$4\" = \"$a\" ] || continue;; "   \
    "esac\n"                                                                                       \
    "    kill -STOP \"$q\" 2>/dev/null\n"                                                          \
    "    v=\"$v$q \" more=1\n"                                                                     \
    "  done\n"                                                                                     \
    "done\n"                                                                                       \
    "for q in $v; do kill -KILL \"$q\" 2>/dev/null; done\n"                                        \
    "for d in /proc/[0-9]*; do\n"                                                                  \
    "  q=${d#/proc/}\n"                                                                            \
    "  [ \"$q\" = $$ ] || [ \"$q\" = 1 ] || ! st \"$q\" && continue\n"                             \
    "  set -- $s\n"                                                                                \
    "  [ \"$3\" = \"$a\" ] || [ \"$4\" = \"$a\" ] && kill -KILL \"$q\" 2>/dev/null\n"              \
    "done\n"

/* STOP_TREE, run by the watcher: SIGSTOP every process whose parent is already marked or whose
 * process group or session is the agent's, until a pass over /proc finds no more, then SIGKILL
 * the agent and all of them, then once more whatever is in its group or session (forked
 * meanwhile). */
static char AGENT_WRAP[] =
    "f=$1; shift\n"
    "case $1 in -*) \"$@\" & ;; *) if command -v setsid >/dev/null 2>&1; then setsid \"$@\" & "
    "else \"$@\" & fi;; esac\n"
    "a=$!\n"
    "(while [ ! -e \"$f\" ]; do kill -0 $a 2>/dev/null || exit 0; sleep 1; done\n"
    "trap '' TERM\n" STOP_TREE ") </dev/null >/dev/null 2>&1 &\n"
    "w=$!\n"
    "wait $a; c=$?\n"
    "kill $w 2>/dev/null\n"
    "exit $c\n";

/* The stop exec: create the stop file the wrapper's watcher looks for. */
static char AGENT_STOP[] = ": >\"$1\"";

/* One of the agent's output streams, or its exit wait: a call reopened as long as the router
 * answers (docs/modal.md#output-streams-and-resume-offsets). */
struct modal_stream {
    struct sandbox *sb;
    enum sandbox_stream which;
    struct grpc_call *call;
    uint64_t offset; /* bytes received (and emitted) */
    bool eof;
    bool data;         /* bytes arrived on the current call */
    unsigned quiet;    /* calls in a row without data: the reopening backs off */
    bool auth_retried; /* the router JWT was refreshed for this run of failures */
    int64_t reopen_at; /* CLOCK_MONOTONIC ms when a closed call is due again; 0: not due */
    bool failed;       /* decode failure */
};

struct modal_priv {
    struct modal_client *mc;
    char app_id[MODAL_ID_MAX];
    char sandbox_id[MODAL_ID_MAX];
    char task_id[MODAL_ID_MAX];
    bool router_ready; /* SandboxCreateV2 connected the router of task_id */
    char exec_agent[37];
    char exec_kill[37];
    struct modal_stream st[SANDBOX_STREAM__MAX];
    struct modal_stream wait;    /* TaskExecWait of the agent (its call, failures, reopening) */
    unsigned failures;           /* agent calls in a row that nothing came back to: bounded */
    struct grpc_call *kill_wait; /* TaskExecWait of the stop exec */
    bool kill_sent;              /* the stop exec was started */
    int64_t kill_deadline;       /* CLOCK_MONOTONIC ms by which the agent must have ended */
    bool exited;
    int code, signo;
    int64_t exit_mono; /* when the exit was seen */
    bool stopping;     /* cancel() asked for the agent's end */
    bool abandoned;    /* the agent could not be stopped: collect what is there, then terminate */
    bool terminated;   /* the sandbox is gone (terminated by us or found ended) */
    struct sandbox_notes build_log; /* an image build's log, into the job's log */
};

/* ------------------------------------------------------------------ helpers */

static struct modal_priv *
P(struct sandbox *sb)
{
    return sb->priv;
}

/* Turn a gRPC failure into sb->error. */
static enum rc
fail_st(struct sandbox *sb, const char *what, const struct grpc_status *st)
{
    const char *url = P(sb)->mc ? modal_client_settings(P(sb)->mc)->server_url : "?";
    switch (st->code) {
    case GRPC_UNAUTHENTICATED:
    case GRPC_PERMISSION_DENIED:
        return sandbox_fail(sb, "Modal rejected the token while %s: %s", what, st->message);
    case GRPC_RESOURCE_EXHAUSTED:
        return sandbox_fail(sb, "Modal quota or capacity exhausted while %s: %s", what,
                            st->message);
    case GRPC_UNAVAILABLE:
    case GRPC_DEADLINE_EXCEEDED:
        return sandbox_fail(sb, "Modal at %s cannot be reached while %s: %s", url, what,
                            st->message);
    case GRPC_FAILED_PRECONDITION:
        return sandbox_fail(sb, "%s: %s", what, st->message);
    default:
        return sandbox_fail(sb, "Modal error while %s: %s: %s", what, grpcframe_code_name(st->code),
                            st->message);
    }
}

static enum rc
set_state(struct sandbox *sb, const char *key, const char *val)
{
    if (!json_set_str(sb->state, key, val))
        return RC_NOMEM;
    return RC_OK;
}

static enum rc
save(struct sandbox *sb)
{
    enum rc rc = sandbox_persist(sb);
    if (rc != RC_OK)
        return sandbox_fail(sb, "cannot persist the Modal sandbox state: %s", rc_str(rc));
    return RC_OK;
}

static enum rc
phase(struct sandbox *sb, const char *ph)
{
    enum rc rc = set_state(sb, "phase", ph);
    return rc != RC_OK ? rc : save(sb);
}

/* setup_deadline: the CLOCK_MONOTONIC ms by which one setup or transfer step must end. */
static int64_t
setup_deadline(const struct sandbox *sb)
{
    return clock_mono_ms() + sandbox_io_ms(sb, MODAL_SETUP_MS);
}

/* copy_id copies a recorded id into dst; false if it does not fit (never a shorter id). */
static bool
copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void
terminate(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    if (p->sandbox_id[0] == '\0' || p->terminated || p->mc == NULL)
        return;
    if (modal_sandbox_terminate(p->mc, p->sandbox_id, &st) == RC_OK)
        p->terminated = true;
    else
        log_warn("SandboxTerminate %s: %s: %s", p->sandbox_id, grpcframe_code_name(st.code),
                 st.message);
}

/* ------------------------------------------------------------------ synchronous exec helpers */

typedef enum rc sink_fn(void *ctx, const char *p, size_t len);

struct sync_read {
    sink_fn *sink;
    void *ctx;
    uint64_t offset;
    enum rc rc;
};

static enum rc
on_sync_data(void *ctx, const char *p, size_t len)
{
    struct sync_read *r = ctx;
    char *d = NULL;
    size_t n = 0;
    enum rc rc = modal_exec_stdio_decode(p, len, &d, &n);
    if (rc == RC_OK && n > 0)
        rc = r->sink(r->ctx, d, n);
    if (rc == RC_OK)
        r->offset += n;
    else
        r->rc = rc;
    free(d);
    return rc;
}

/* Read an exec's fd (0 stdout, 1 stderr) to its end into sink, reopening at the offset. */
static enum rc
read_all(struct sandbox *sb, const char *exec_id, int fd, sink_fn *sink, void *ctx,
         int64_t deadline, struct grpc_status *st)
{
    struct modal_priv *p = P(sb);
    struct sync_read r = {sink, ctx, 0, RC_OK};
    unsigned failures = 0;
    for (;;) {
        uint64_t before = r.offset;
        struct grpc_call *call =
            modal_exec_stdio_start(p->mc, exec_id, fd, r.offset, on_sync_data, &r);
        if (call == NULL)
            return RC_NOMEM;
        while (!grpc_call_done(call) && clock_mono_ms() < deadline)
            if (grpc_client_run(modal_router_client(p->mc), 500) != RC_OK)
                break;
        bool done = grpc_call_done(call);
        *st = *grpc_call_status(call);
        grpc_call_free(call);
        if (r.rc != RC_OK)
            return r.rc;
        if (!done) {
            st->code = GRPC_DEADLINE_EXCEEDED;
            (void)snprintf(st->message, sizeof(st->message), "reading exec output timed out");
            return RC_BACKEND;
        }
        if (st->code == GRPC_OK)
            return RC_OK;
        if (r.offset > before)
            failures = 0;
        if (st->code == GRPC_UNAUTHENTICATED) {
            struct grpc_status st2;
            if (failures++ > 0 || modal_router_refresh(p->mc, &st2) != RC_OK)
                return RC_BACKEND;
            continue;
        }
        if (!modal_retry_is_retryable(st->code) || ++failures > MODAL_STREAM_RETRIES)
            return RC_BACKEND;
        (void)usleep((useconds_t)(10000u << (failures < 6 ? failures : 6)));
    }
}

/* Wait for an exec to exit: TaskExecWait attempts of 60 s until deadline. */
static enum rc
wait_exit(struct sandbox *sb, const char *exec_id, int64_t deadline, int *out_code, int *out_sig,
          struct grpc_status *st)
{
    struct modal_priv *p = P(sb);
    unsigned failures = 0;
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            st->code = GRPC_DEADLINE_EXCEEDED;
            (void)snprintf(st->message, sizeof(st->message), "process did not exit in time");
            return RC_BACKEND;
        }
        struct grpc_call *call = modal_exec_wait_start(
            p->mc, exec_id, left < MODAL_WAIT_ATTEMPT_MS ? left : MODAL_WAIT_ATTEMPT_MS);
        if (call == NULL)
            return RC_NOMEM;
        while (!grpc_call_done(call))
            if (grpc_client_run(modal_router_client(p->mc), 1000) != RC_OK)
                break;
        *st = *grpc_call_status(call);
        if (grpc_call_done(call) && st->code == GRPC_OK) {
            char *m = NULL;
            size_t n = 0;
            grpc_call_take_message(call, &m, &n);
            grpc_call_free(call);
            bool ok = m != NULL && modal_exec_wait_decode(m, n, out_code, out_sig);
            free(m);
            if (!ok) {
                st->code = GRPC_INTERNAL;
                (void)snprintf(st->message, sizeof(st->message), "TaskExecWait without status");
                return RC_BACKEND;
            }
            return RC_OK;
        }
        grpc_call_free(call);
        if (st->code == GRPC_UNAUTHENTICATED) {
            struct grpc_status st2;
            if (failures++ > 0 || modal_router_refresh(p->mc, &st2) != RC_OK)
                return RC_BACKEND;
            continue;
        }
        if (st->code != GRPC_DEADLINE_EXCEEDED &&
            (!modal_retry_is_retryable(st->code) || ++failures > MODAL_STREAM_RETRIES))
            return RC_BACKEND;
        if (st->code != GRPC_DEADLINE_EXCEEDED)
            (void)usleep(1000 * 1000);
    }
}

/* Collect up to 300 bytes of text (an exec's stderr) for error messages. */
struct snippet {
    char buf[300];
    size_t len;
};

static enum rc
to_snippet(void *ctx, const char *p, size_t len)
{
    struct snippet *s = ctx;
    for (size_t i = 0; i < len && s->len + 1 < sizeof(s->buf); i++) {
        char c = p[i];
        s->buf[s->len++] =
            (char)((c == '\n' || c == '\t') ? ' ' : ((unsigned char)c < 0x20 ? '?' : c));
    }
    s->buf[s->len] = '\0';
    return RC_OK;
}

static enum rc
new_exec(struct sandbox *sb, const char *key, char out[37])
{
    if (modal_uuid4(out) != RC_OK)
        return sandbox_fail(sb, "cannot generate an exec id");
    enum rc rc = set_state(sb, key, out);
    return rc != RC_OK ? rc : save(sb);
}

/* ------------------------------------------------------------------ upload */

struct uploader {
    struct sandbox *sb;
    const char *exec_id;
    char *buf;
    size_t len;
    uint64_t offset;
    int64_t deadline;
    struct grpc_status st;
};

static enum rc
up_flush(struct uploader *u, bool eof)
{
    enum rc rc = modal_exec_stdin_write(P(u->sb)->mc, u->exec_id, u->offset, u->buf, u->len, eof,
                                        u->deadline, &u->st);
    if (rc != RC_OK)
        return rc;
    u->offset += u->len;
    u->len = 0;
    return RC_OK;
}

static enum rc
up_write(void *ctx, const void *p, size_t len)
{
    struct uploader *u = ctx;
    const char *s = p;
    while (len > 0) {
        size_t take = MODAL_STDIN_CHUNK - u->len;
        if (take > len)
            take = len;
        memcpy(u->buf + u->len, s, take);
        u->len += take;
        s += take;
        len -= take;
        if (u->len == MODAL_STDIN_CHUNK) {
            enum rc rc = up_flush(u, false);
            if (rc != RC_OK)
                return rc;
        }
    }
    return RC_OK;
}

static enum rc
upload(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    enum rc rc;
    char exec_id[37];
    int dfd = -1;
    struct uploader u = {0};
    static char a0[] = "sh", a1[] = "-c",
                a2[] = "mkdir -p " SANDBOX_WORKSPACE " && tar -xf - -C " SANDBOX_WORKSPACE;
    char *const argv[] = {a0, a1, a2, NULL};

    rc = phase(sb, "uploading");
    if (rc == RC_OK)
        rc = new_exec(sb, "exec_upload", exec_id);
    if (rc != RC_OK)
        return rc;
    struct modal_exec_spec spec = {exec_id, argv, NULL, NULL, 0, false};
    rc = modal_exec_start(p->mc, &spec, &u.st);
    if (rc != RC_OK)
        return fail_st(sb, "starting the upload", &u.st);
    dfd = open(sb->job->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_errno("open %s", sb->job->work_dir);
        return sandbox_fail(sb, "cannot open the job's work directory");
    }
    u.sb = sb;
    u.exec_id = exec_id;
    u.deadline = setup_deadline(sb);
    u.buf = malloc(MODAL_STDIN_CHUNK);
    if (u.buf == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    rc = collect_make_tar(dfd, "", 0, 0, up_write, &u);
    if (rc == RC_OK)
        rc = up_flush(&u, true);
    if (rc != RC_OK) {
        if (u.st.code != GRPC_OK)
            rc = fail_st(sb, "uploading the job files", &u.st);
        else
            rc = sandbox_fail(sb, "cannot pack the job files: %s", rc_str(rc));
        goto out;
    }
    int code = -1, sig = -1;
    struct grpc_status st;
    rc = wait_exit(sb, exec_id, u.deadline, &code, &sig, &st);
    if (rc != RC_OK) {
        rc = fail_st(sb, "waiting for the upload", &st);
        goto out;
    }
    if (code != 0) {
        struct snippet sn = {{0}, 0};
        (void)read_all(sb, exec_id, 1, to_snippet, &sn, clock_mono_ms() + 10000, &st);
        rc = sandbox_fail(sb, "unpacking the job files in the Modal sandbox failed (%s %d): %s",
                          sig >= 0 ? "signal" : "exit", sig >= 0 ? sig : code, sn.buf);
        goto out;
    }
    log_info("uploaded %" PRIu64 " bytes of tar to %s", u.offset, p->sandbox_id);
out:
    free(u.buf);
    if (dfd >= 0)
        (void)close(dfd);
    return rc;
}

/* ------------------------------------------------------------------ agent streams */

static enum rc
on_agent_data(void *ctx, const char *p, size_t len)
{
    struct modal_stream *s = ctx;
    char *d = NULL;
    size_t n = 0;
    if (modal_exec_stdio_decode(p, len, &d, &n) != RC_OK) {
        s->failed = true;
        return RC_BADREQ;
    }
    sandbox_emit(s->sb, s->which, d, n);
    s->offset += n;
    if (n > 0)
        s->data = true;
    free(d);
    return RC_OK;
}

static enum rc
open_stream(struct sandbox *sb, struct modal_stream *s)
{
    struct modal_priv *p = P(sb);
    s->data = false;
    s->reopen_at = 0;
    if (s == &p->wait) {
        s->call = modal_exec_wait_start(p->mc, p->exec_agent,
                                        modal_client_scale_ms(p->mc, MODAL_WAIT_ATTEMPT_MS));
    } else {
        s->call = modal_exec_stdio_start(p->mc, p->exec_agent, s->which == SANDBOX_STDERR ? 1 : 0,
                                         s->offset, on_agent_data, s);
    }
    return s->call != NULL ? RC_OK : RC_NOMEM;
}

static enum rc
begin_agent_io(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    enum rc rc = RC_OK;
    for (int i = 0; i < SANDBOX_STREAM__MAX && rc == RC_OK; i++) {
        memset(&p->st[i], 0, sizeof(p->st[i]));
        p->st[i].sb = sb;
        p->st[i].which = (enum sandbox_stream)i;
        p->st[i].offset = sb->resume_offset[i];
        rc = open_stream(sb, &p->st[i]);
    }
    memset(&p->wait, 0, sizeof(p->wait));
    p->wait.sb = sb;
    p->failures = 0;
    if (rc == RC_OK && !p->exited)
        rc = open_stream(sb, &p->wait);
    return rc;
}

static void
end_agent_io(struct modal_priv *p)
{
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        grpc_call_free(p->st[i].call);
        p->st[i].call = NULL;
        p->st[i].reopen_at = 0;
    }
    grpc_call_free(p->wait.call);
    p->wait.call = NULL;
    p->wait.reopen_at = 0;
    grpc_call_free(p->kill_wait);
    p->kill_wait = NULL;
}

/* The stop file of the agent's exec (the wrapper's watcher looks for it). */
static bool
stop_file(const struct modal_priv *p, char *out, size_t cap)
{
    int k = snprintf(out, cap, MODAL_STOPFILE "%s", p->exec_agent);
    return k > 0 && (size_t)k < cap;
}

static enum rc
start_agent(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    char stop[80];
    enum rc rc = phase(sb, "running");
    if (rc == RC_OK)
        rc = new_exec(sb, "exec_agent", p->exec_agent);
    if (rc != RC_OK)
        return rc;
    if (!stop_file(p, stop, sizeof(stop)))
        return sandbox_fail(sb, "the agent's stop file name does not fit");
    uint64_t t = sb->job->timeout_s + MODAL_BACKSTOP_S; /* see "Time" above */
    size_t n = 0;
    while (sb->job->argv[n] != NULL)
        n++;
    char **argv = calloc(n + 6, sizeof(*argv));
    if (argv == NULL)
        return RC_NOMEM;
    static char w0[] = "sh", w1[] = "-c", w3[] = "labbox-agent";
    argv[0] = w0;
    argv[1] = w1;
    argv[2] = AGENT_WRAP;
    argv[3] = w3;
    argv[4] = stop;
    memcpy(argv + 5, sb->job->argv, n * sizeof(*argv));
    struct modal_exec_spec spec = {p->exec_agent,
                                   argv,
                                   sb->job->envp,
                                   SANDBOX_WORKSPACE,
                                   t > UINT32_MAX ? UINT32_MAX : (uint32_t)t,
                                   true};
    rc = modal_exec_start(p->mc, &spec, &st);
    free(argv);
    if (rc == RC_BADREQ)
        return sandbox_fail(sb, "the agent command cannot be run on Modal: %s", st.message);
    if (rc != RC_OK)
        return fail_st(sb, "starting the agent", &st);
    return begin_agent_io(sb);
}

/* ------------------------------------------------------------------ hooks */

/* A long wait for Modal (capacity, a build) goes into the job's log. */
static void
on_waiting(void *ctx, const char *what, int64_t elapsed_ms)
{
    struct sandbox *sb = ctx;
    sandbox_note(sb, "%s: %" PRId64 " s so far", what, elapsed_ms / 1000);
}

/* A piece of an image build's log goes into the job's log, line by line. */
static void
on_build_log(void *ctx, const char *p, size_t len)
{
    struct sandbox *sb = ctx;
    sandbox_notes_feed(&P(sb)->build_log, p, len);
}

static enum rc
modal_init(struct sandbox *sb)
{
    struct modal_settings s;
    char err[400];
    enum rc rc = modal_settings_load(sb->cfg, &s, err, sizeof(err));
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK) {
        explicit_bzero(&s, sizeof(s));
        return sandbox_fail(sb, "%s", err);
    }
    P(sb)->mc = modal_client_new(&s);
    explicit_bzero(&s, sizeof(s));
    if (P(sb)->mc == NULL)
        return sandbox_fail(sb, "Modal server URL is not usable (expected http(s)://host[:port])");
    modal_client_set_waiting(P(sb)->mc, on_waiting, sb);
    return RC_OK;
}

static void
modal_fini(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    if (p == NULL)
        return;
    end_agent_io(p);
    sandbox_notes_close(&p->build_log);
    modal_client_free(p->mc);
    p->mc = NULL;
}

static enum rc
need_client(struct sandbox *sb)
{
    if (P(sb)->mc == NULL)
        return sb->error[0] ? RC_BACKEND : sandbox_fail(sb, "the Modal backend is not initialised");
    return RC_OK;
}

/* The app and the agent's image (built once per definition, its log in the job's log). */
static enum rc
app_and_image(struct sandbox *sb, const struct sandbox_image *img, char image_id[MODAL_ID_MAX])
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    enum rc rc = modal_app_get_or_create(p->mc, sb->cfg->modal_app, p->app_id, &st);
    if (rc != RC_OK)
        return fail_st(sb, "looking up the Modal app", &st);
    if (!img->def.plain)
        sandbox_note(sb, "Modal image from %s on %s", img->what, img->def.commands[0] + 5);
    rc = sandbox_notes_open(sb, "image build: ", &p->build_log);
    if (rc == RC_OK)
        rc = modal_image_get(p->mc, p->app_id, &img->def, setup_deadline(sb), on_build_log, sb,
                             image_id, &st);
    sandbox_notes_close(&p->build_log);
    if (rc == RC_OK || rc == RC_NOMEM)
        return rc;
    if (st.code == GRPC_FAILED_PRECONDITION || st.code == GRPC_NOT_FOUND)
        return sandbox_fail(sb, "Modal image '%s' is not usable: %s",
                            img->def.plain ? sb->cfg->modal_image : img->what, st.message);
    return fail_st(sb, "building the image", &st);
}

/* SandboxCreate(V2) of image_id; sandbox, app and task ids are recorded as soon as they exist.
 * *stale: Modal refused because it does not know the app or the image (nothing was created). */
static enum rc
create_call(struct sandbox *sb, const char *image_id, bool *stale)
{
    struct grpc_status st;
    struct modal_priv *p = P(sb);
    uint64_t life = sb->job->timeout_s + MODAL_LIFETIME_MARGIN_S;
    struct modal_sandbox_spec spec = {
        .app_id = p->app_id,
        .image_id = image_id,
        .timeout_secs = life > 86400 ? 86400 : (uint32_t)life,
        .memory_mb = sb->cfg->memory_mb > UINT32_MAX ? UINT32_MAX : (uint32_t)sb->cfg->memory_mb,
        /* cpus: the request and the hard limit; without it one CPU requested, no limit. */
        .milli_cpu = sb->cfg->cpus_milli > 0 ? (uint32_t)sb->cfg->cpus_milli : MODAL_MILLI_CPU,
        .milli_cpu_max = (uint32_t)sb->cfg->cpus_milli,
        .block_network = !sb->cfg->network,
        .job_id = sb->job->id,
        .owner = sb->job->owner,
        .version = sb->cfg->modal_sandbox_version == 2 ? 2 : 1,
        .deadline_ms = setup_deadline(sb),
    };
    p->task_id[0] = '\0';
    p->router_ready = false;
    enum rc crc = modal_sandbox_create(p->mc, &spec, p->sandbox_id, p->task_id, &st);
    if (crc == RC_NOMEM)
        return crc;
    p->router_ready = crc == RC_OK && p->task_id[0] != '\0';
    /* A V2 sandbox whose router access failed exists all the same: record it first. */
    enum rc rc = p->sandbox_id[0] != '\0' ? set_state(sb, "sandbox_id", p->sandbox_id) : RC_OK;
    if (rc == RC_OK && p->sandbox_id[0] != '\0')
        rc = set_state(sb, "app_id", p->app_id);
    if (rc == RC_OK && p->task_id[0] != '\0')
        rc = set_state(sb, "task_id", p->task_id);
    if (rc == RC_OK && p->sandbox_id[0] != '\0')
        rc = save(sb);
    if (rc != RC_OK || crc == RC_OK)
        return rc;
    *stale = p->sandbox_id[0] == '\0' &&
             (st.code == GRPC_NOT_FOUND || st.code == GRPC_FAILED_PRECONDITION);
    /* Refused outright: nothing was made, so no stray to look for later (a retryable failure
     * may have lost the answer of a create that worked: phase "creating" stays for that). */
    if (p->sandbox_id[0] == '\0' && !modal_retry_is_retryable(st.code) &&
        (rc = phase(sb, "refused")) != RC_OK)
        return rc;
    return fail_st(sb, "creating the sandbox", &st);
}

/* Create the sandbox and connect to its router; p->sandbox_id is persisted. The app and image
 * ids may come from the shared store: when Modal no longer knows them (the app or image was
 * deleted), they are forgotten, looked up or built again, and the create is tried once more. */
static enum rc
create_sandbox(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct sandbox_image img;
    char image_id[MODAL_ID_MAX];
    bool stale = false;
    enum rc rc = sandbox_image_load(sb, sb->cfg->modal_image, sb->cfg->modal_image_commands, &img);
    if (rc == RC_OK)
        rc = app_and_image(sb, &img, image_id);
    if (rc == RC_OK)
        rc = phase(sb, "creating");
    if (rc != RC_OK)
        goto out;
    rc = create_call(sb, image_id, &stale);
    if (rc == RC_BACKEND && stale) {
        log_info("%s: looking up the app and the image again", sb->error);
        modal_app_forget(p->mc, sb->cfg->modal_app);
        modal_image_forget(p->mc, &img.def);
        rc = app_and_image(sb, &img, image_id);
        if (rc == RC_OK)
            rc = create_call(sb, image_id, &stale);
    }
out:
    sandbox_image_fini(&img);
    return rc;
}

/* The sandbox's task id (unless create returned it) and its router. */
static enum rc
connect_task(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    struct modal_result res;
    enum rc rc;
    if (p->task_id[0] == '\0') {
        rc = modal_sandbox_task_id(p->mc, p->sandbox_id, setup_deadline(sb), p->task_id, &res, &st);
        if (rc == RC_CONFLICT)
            return sandbox_fail(sb, "the Modal sandbox ended before it started (%s)%s%s",
                                modal_generic_status_name(res.status), res.exception[0] ? ": " : "",
                                res.exception);
        if (rc == RC_TIMEOUT)
            return sandbox_fail(sb, "the Modal sandbox was not scheduled in time");
        if (rc != RC_OK)
            return fail_st(sb, "waiting for the sandbox to be scheduled", &st);
        rc = set_state(sb, "task_id", p->task_id);
        if (rc == RC_OK)
            rc = save(sb);
        if (rc != RC_OK)
            return rc;
    }
    if (p->router_ready)
        return RC_OK;
    rc = modal_router_open(p->mc, p->sandbox_id, p->task_id, &st);
    if (rc != RC_OK)
        return fail_st(sb, "connecting to the sandbox's command router", &st);
    p->router_ready = true;
    return RC_OK;
}

static enum rc
modal_start(struct sandbox *sb)
{
    enum rc rc = need_client(sb);
    if (rc != RC_OK)
        return rc;
    if (!json_set_str(sb->state, "job", sb->job->id))
        return RC_NOMEM;
    rc = create_sandbox(sb);
    if (rc == RC_OK)
        rc = connect_task(sb);
    if (rc == RC_OK)
        rc = upload(sb);
    if (rc == RC_OK)
        rc = start_agent(sb);
    if (rc != RC_OK)
        terminate(sb);
    return rc;
}

/* Terminate every sandbox tagged with this job (crash during create). */
static enum rc
kill_listed(void *ctx, const char *sandbox_id, const char *job)
{
    struct sandbox *sb = ctx;
    struct grpc_status st;
    (void)job;
    log_info("terminating Modal sandbox %s left by an interrupted start", sandbox_id);
    if (modal_sandbox_terminate(P(sb)->mc, sandbox_id, &st) != RC_OK)
        log_warn("SandboxTerminate %s: %s", sandbox_id, st.message);
    return RC_OK;
}

/* List the sandboxes of this labbox (of job_id, when non-NULL) in both families, V1 then V2,
 * into fn: a start may have been made under the other modal_sandbox_version. Both listings are
 * tried; the first failure is returned with its family in *out_family. */
static enum rc
list_both(struct sandbox *sb, const char *job_id, modal_list_fn *fn, void *ctx, int *out_family,
          struct grpc_status *st)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st2;
    enum rc rc = RC_OK;
    *out_family = 0;
    for (int v = 1; v <= 2; v++) {
        enum rc r = modal_sandbox_list(p->mc, v, p->app_id, job_id, fn, ctx, &st2);
        if (r != RC_OK && rc == RC_OK) {
            rc = r;
            *st = st2;
            *out_family = v;
        }
    }
    return rc;
}

/* attach_unrecorded: the start was interrupted before the sandbox id was saved: terminate
 * whatever carries the job's tag, then start over. */
static enum rc
attach_unrecorded(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    enum rc rc = modal_app_get_or_create(p->mc, sb->cfg->modal_app, p->app_id, &st);
    if (rc != RC_OK)
        return fail_st(sb, "looking up the Modal app", &st);
    int fam = 0;
    rc = list_both(sb, sb->job->id, kill_listed, sb, &fam, &st);
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK)
        return fail_st(
            sb, fam == 2 ? "listing the job's V2 sandboxes" : "listing the job's V1 sandboxes",
            &st);
    return modal_start(sb);
}

/* attach_agent: the agent was started: reconnect to the router and find its exec again. */
static enum rc
attach_agent(struct sandbox *sb, const char *tid, const char *xid)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    enum rc rc;
    bool done = false;
    if (!copy_id(p->exec_agent, sizeof(p->exec_agent), xid))
        return sandbox_fail(sb, "the recorded Modal exec id is not usable");
    if (tid != NULL && tid[0] != '\0') {
        if (!copy_id(p->task_id, sizeof(p->task_id), tid))
            return sandbox_fail(sb, "the recorded Modal task id is not usable");
        rc = modal_router_open(p->mc, p->sandbox_id, p->task_id, &st);
        if (rc != RC_OK)
            return fail_st(sb, "reconnecting to the sandbox's command router", &st);
        p->router_ready = true;
    } else {
        p->task_id[0] = '\0';
        p->router_ready = false;
        rc = connect_task(sb);
        if (rc != RC_OK)
            return rc;
    }
    int code, sig;
    rc = modal_exec_poll(p->mc, p->exec_agent, &done, &code, &sig, &st);
    if (rc != RC_OK)
        return fail_st(sb, "finding the agent process again", &st);
    if (done) {
        p->exited = true;
        p->code = code;
        p->signo = sig;
        p->exit_mono = clock_mono_ms();
    }
    return begin_agent_io(sb);
}

static enum rc
modal_attach(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    struct modal_result res;
    bool done = false;
    enum rc rc = need_client(sb);
    if (rc != RC_OK)
        return rc;
    const char *ph = json_get_str(sb->state, "phase");
    const char *sid = json_get_str(sb->state, "sandbox_id");
    const char *xid = json_get_str(sb->state, "exec_agent");
    const char *aid = json_get_str(sb->state, "app_id");

    if (sid == NULL || sid[0] == '\0')
        return attach_unrecorded(sb);
    if (!copy_id(p->sandbox_id, sizeof(p->sandbox_id), sid) ||
        (aid != NULL && !copy_id(p->app_id, sizeof(p->app_id), aid)))
        return sandbox_fail(sb, "the recorded Modal sandbox id is not usable");
    rc = modal_sandbox_wait(p->mc, p->sandbox_id, 0.0f, &done, &res, &st);
    if (rc != RC_OK)
        return fail_st(sb, "checking the sandbox", &st);
    if (done) {
        p->terminated = true;
        return sandbox_fail(sb, "the Modal sandbox ended while labbox was away (%s)%s%s",
                            modal_generic_status_name(res.status), res.exception[0] ? ": " : "",
                            res.exception);
    }
    bool agent_started = xid != NULL && xid[0] != '\0' && ph != NULL &&
                         (strcmp(ph, "running") == 0 || strcmp(ph, "downloading") == 0 ||
                          strcmp(ph, "collected") == 0);
    if (agent_started)
        return attach_agent(sb, json_get_str(sb->state, "task_id"), xid);
    /* Still staging: the sandbox holds a partial upload at best. Start afresh. */
    terminate(sb);
    p->sandbox_id[0] = '\0';
    p->terminated = false;
    json_object_object_del(sb->state, "sandbox_id");
    json_object_object_del(sb->state, "task_id");
    json_object_object_del(sb->state, "exec_upload");
    return modal_start(sb);
}

/* fill_result: how the agent ended. Stopped by terminating the sandbox (its exit never seen),
 * it ended as a terminated process does, by SIGKILL. The time is the supervisor's. */
static void
fill_result(struct sandbox *sb, struct sandbox_result *out)
{
    struct modal_priv *p = P(sb);
    memset(out, 0, sizeof(*out));
    if (!p->exited)
        sandbox_result_from_exit(out, -1, SIGKILL, false);
    else if (p->signo >= 0)
        sandbox_result_from_exit(out, -1, p->signo, false);
    else
        sandbox_result_from_exit(out, p->code, 0, false);
}

/* A closed stream or wait is due again after a backoff that grows while nothing arrives
 * (50 ms doubling to 2 s, scaled): never a busy loop against a failing router. */
static void
schedule_reopen(struct sandbox *sb, struct modal_stream *s)
{
    int64_t d = MODAL_REOPEN_BASE_MS;
    for (unsigned i = 1; i < s->quiet && d < MODAL_REOPEN_CAP_MS; i++)
        d *= 2;
    if (d > MODAL_REOPEN_CAP_MS)
        d = MODAL_REOPEN_CAP_MS;
    s->reopen_at = clock_mono_ms() + modal_client_scale_ms(P(sb)->mc, d);
}

/* A stream's or wait's call ended with status st (not OK): schedule it again, or fail. Calls
 * are reopened for as long as the router answers: data, or a call the router had accepted
 * before something on the way cut it (a proxy or a load balancer closing a quiet connection),
 * is progress, on any of the agent's three calls. Only MODAL_STREAM_RETRIES calls in a row that
 * nothing came back to (refused, unreachable, an error status) end the job. what: for errors. */
static enum rc
reopen_or_fail(struct sandbox *sb, struct modal_stream *s, const struct grpc_status *st, bool cut,
               const char *what)
{
    struct modal_priv *p = P(sb);
    if (s->data || cut) {
        p->failures = 0;
        s->auth_retried = false;
    }
    s->quiet = s->data ? 0 : s->quiet + 1;
    if (st->code == GRPC_UNAUTHENTICATED) {
        /* The router's JWT may have expired: new access once per run of failures. */
        struct grpc_status st2;
        if (s->auth_retried || modal_router_refresh(p->mc, &st2) != RC_OK)
            return fail_st(sb, what, st);
        s->auth_retried = true;
    } else if (!modal_retry_is_retryable(st->code) ||
               (!cut && !s->data && ++p->failures > MODAL_STREAM_RETRIES)) {
        return fail_st(sb, what, st);
    }
    log_debug("%s: %s (%s)%s, again in a while", what, grpcframe_code_name(st->code), st->message,
              cut ? " after the router had answered" : "");
    schedule_reopen(sb, s);
    return RC_OK;
}

/* Handle a finished stdio call: EOF, or reopen at the offset. */
static enum rc
stream_ended(struct sandbox *sb, struct modal_stream *s)
{
    struct grpc_status st = *grpc_call_status(s->call);
    bool cut = grpc_call_cut(s->call);
    grpc_call_free(s->call);
    s->call = NULL;
    if (s->failed)
        return sandbox_fail(sb, "undecodable output message from the Modal router");
    if (st.code == GRPC_OK) {
        s->eof = true;
        return RC_OK;
    }
    return reopen_or_fail(sb, s, &st, cut, "reading the agent's output");
}

/* The router no longer knows the agent's process: has the sandbox died? */
static enum rc
agent_lost(struct sandbox *sb, const struct grpc_status *st)
{
    struct modal_priv *p = P(sb);
    bool done = false;
    struct modal_result res;
    struct grpc_status st3;
    if (modal_sandbox_wait(p->mc, p->sandbox_id, 0.0f, &done, &res, &st3) == RC_OK && done) {
        p->terminated = true;
        return sandbox_fail(sb, "the Modal sandbox died (%s)%s%s",
                            modal_generic_status_name(res.status), res.exception[0] ? ": " : "",
                            res.exception);
    }
    return fail_st(sb, "waiting for the agent", st);
}

static enum rc
wait_ended(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct modal_stream *w = &p->wait;
    struct grpc_status st = *grpc_call_status(w->call);
    bool cut = grpc_call_cut(w->call);
    if (st.code == GRPC_OK) {
        char *m = NULL;
        size_t n = 0;
        int code, sig;
        grpc_call_take_message(w->call, &m, &n);
        grpc_call_free(w->call);
        w->call = NULL;
        bool ok = m != NULL && modal_exec_wait_decode(m, n, &code, &sig);
        free(m);
        if (!ok)
            return sandbox_fail(sb, "Modal router answered TaskExecWait without an exit status");
        p->exited = true;
        p->code = code;
        p->signo = sig;
        p->exit_mono = clock_mono_ms();
        return RC_OK;
    }
    bool own_deadline = grpc_call_timed_out(w->call);
    grpc_call_free(w->call);
    w->call = NULL;
    if (own_deadline) {
        /* The end of one attempt: the agent simply runs on. Ask again at once. */
        p->failures = 0;
        w->quiet = 0;
        return open_stream(sb, w);
    }
    if (st.code != GRPC_UNAUTHENTICATED && !modal_retry_is_retryable(st.code))
        return agent_lost(sb, &st);
    return reopen_or_fail(sb, w, &st, cut, "waiting for the agent");
}

/* Reopen the streams and the wait that are due. */
static enum rc
reopen_due(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    int64_t now = clock_mono_ms();
    enum rc rc = RC_OK;
    for (int i = 0; i < SANDBOX_STREAM__MAX && rc == RC_OK; i++)
        if (p->st[i].call == NULL && !p->st[i].eof && p->st[i].reopen_at > 0 &&
            now >= p->st[i].reopen_at)
            rc = open_stream(sb, &p->st[i]);
    if (rc == RC_OK && p->wait.call == NULL && !p->exited && p->wait.reopen_at > 0 &&
        now >= p->wait.reopen_at)
        rc = open_stream(sb, &p->wait);
    return rc;
}

/* The agent could not be stopped (no stop exec, or it did not end in time). Its outputs so far
 * are still collected: poll reports it ended, collect downloads what /workspace/outputs holds,
 * and destroy terminates the sandbox with whatever still runs in it. Without a router there is
 * nothing to collect from: then the sandbox is terminated at once. */
static enum rc
abandon_agent(struct sandbox *sb, const char *why)
{
    struct modal_priv *p = P(sb);
    if (p->mc != NULL && modal_router_client(p->mc) != NULL) {
        log_warn("Modal sandbox %s: %s: collecting the outputs as they are, then terminating it",
                 p->sandbox_id, why);
        p->abandoned = true;
        return RC_OK;
    }
    log_warn("Modal sandbox %s: %s: terminating it", p->sandbox_id, why);
    terminate(sb);
    if (!p->terminated && p->sandbox_id[0] != '\0')
        return sandbox_fail(sb, "could not terminate the Modal sandbox %s", p->sandbox_id);
    return RC_OK;
}

/* Stop the agent but keep the sandbox: the stop exec creates the file the agent's wrapper
 * watches (see the header comment). */
static enum rc
stop_agent(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    char stop[80];
    static char k0[] = "sh", k1[] = "-c", k3[] = "labbox-stop";
    char *const argv[] = {k0, k1, AGENT_STOP, k3, stop, NULL};
    if (p->exited || p->kill_sent || p->terminated || p->abandoned)
        return RC_OK;
    if (p->mc == NULL || modal_router_client(p->mc) == NULL || p->exec_agent[0] == '\0' ||
        !stop_file(p, stop, sizeof(stop)))
        return abandon_agent(sb, "no agent process to stop");
    enum rc rc = new_exec(sb, "exec_kill", p->exec_kill);
    if (rc != RC_OK)
        return rc;
    struct modal_exec_spec spec = {p->exec_kill, argv, NULL, NULL, MODAL_KILL_EXEC_S, false};
    rc = modal_exec_start(p->mc, &spec, &st);
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK) {
        log_warn("starting the stop exec: %s: %s", grpcframe_code_name(st.code), st.message);
        return abandon_agent(sb, "the agent could not be stopped");
    }
    p->kill_sent = true;
    p->kill_deadline = clock_mono_ms() + modal_client_scale_ms(p->mc, MODAL_KILL_GRACE_MS);
    p->kill_wait = modal_exec_wait_start(p->mc, p->exec_kill,
                                         modal_client_scale_ms(p->mc, MODAL_KILL_GRACE_MS));
    return p->kill_wait != NULL ? RC_OK : RC_NOMEM;
}

/* The stop exec's TaskExecWait ended. A failed stop (non-zero exit) gives up on the agent at
 * once; a failed wait leaves it to the agent's exit or p->kill_deadline. */
static enum rc
kill_ended(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st = *grpc_call_status(p->kill_wait);
    int code = -1, sig = -1;
    bool ok = false;
    if (st.code == GRPC_OK) {
        char *m = NULL;
        size_t n = 0;
        grpc_call_take_message(p->kill_wait, &m, &n);
        ok = m != NULL && modal_exec_wait_decode(m, n, &code, &sig);
        free(m);
    }
    grpc_call_free(p->kill_wait);
    p->kill_wait = NULL;
    if (!ok) {
        log_warn("waiting for the stop exec: %s: %s", grpcframe_code_name(st.code), st.message);
        return RC_OK;
    }
    if ((sig < 0 && code == 0) || p->exited)
        return RC_OK;
    char why[64];
    (void)snprintf(why, sizeof(why), "the stop exec ended with %s %d",
                   sig >= 0 ? "signal" : "exit code", sig >= 0 ? sig : code);
    return abandon_agent(sb, why);
}

/* The agent was given up on (abandoned) or its sandbox terminated while stopping it: report it
 * ended. */
static bool
stopped_hard(struct sandbox *sb, bool *out_done, struct sandbox_result *out)
{
    struct modal_priv *p = P(sb);
    if (!p->abandoned && !(p->terminated && p->stopping))
        return false;
    end_agent_io(p);
    fill_result(sb, out);
    *out_done = true;
    return true;
}

/* agent_ended: the agent's result, once its exit is known. An agent killed by a signal
 * nobody here sent may be a dead sandbox (terminated from outside, a lost worker): that is the
 * backend failing, not the user's program. */
static void
agent_ended(struct sandbox *sb, struct sandbox_result *out)
{
    struct modal_priv *p = P(sb);
    struct modal_result res;
    struct grpc_status st;
    bool ended = false;
    end_agent_io(p);
    fill_result(sb, out);
    if (out->status != SANDBOX_SIGNALED || p->stopping)
        return;
    if (modal_sandbox_wait(p->mc, p->sandbox_id, 0.0f, &ended, &res, &st) == RC_OK && ended) {
        p->terminated = true;
        out->status = SANDBOX_INTERNAL;
        (void)sandbox_fail(sb, "the Modal sandbox ended while the agent ran (%s)%s%s",
                           modal_generic_status_name(res.status), res.exception[0] ? ": " : "",
                           res.exception);
    }
}

/* How long poll may wait for the network: timeout_ms, or less when a reopening is due. */
static int
poll_wait_ms(const struct modal_priv *p, int timeout_ms)
{
    int64_t now = clock_mono_ms(), wait = timeout_ms > 0 ? timeout_ms : 0;
    const struct modal_stream *all[] = {&p->st[0], &p->st[1], &p->wait};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->call == NULL && all[i]->reopen_at > 0 && all[i]->reopen_at - now < wait)
            wait = all[i]->reopen_at > now ? all[i]->reopen_at - now : 0;
    return (int)wait;
}

static enum rc
modal_poll(struct sandbox *sb, int timeout_ms, bool *out_done, struct sandbox_result *out)
{
    struct modal_priv *p = P(sb);
    enum rc rc = RC_OK;
    *out_done = false;
    if (p->mc == NULL || modal_router_client(p->mc) == NULL)
        return sandbox_fail(sb, "poll without a running Modal sandbox");
    if (stopped_hard(sb, out_done, out))
        return RC_OK;
    if (grpc_client_run(modal_router_client(p->mc), poll_wait_ms(p, timeout_ms)) != RC_OK)
        return sandbox_fail(sb, "the HTTP/2 client failed");
    for (int i = 0; i < SANDBOX_STREAM__MAX && rc == RC_OK; i++)
        if (p->st[i].call != NULL && grpc_call_done(p->st[i].call))
            rc = stream_ended(sb, &p->st[i]);
    if (rc == RC_OK && p->wait.call != NULL && grpc_call_done(p->wait.call))
        rc = wait_ended(sb);
    if (rc == RC_OK && p->kill_wait != NULL && grpc_call_done(p->kill_wait))
        rc = kill_ended(sb);
    if (rc == RC_OK)
        rc = reopen_due(sb);
    if (rc != RC_OK)
        return rc;
    if (stopped_hard(sb, out_done, out))
        return RC_OK;
    int64_t now = clock_mono_ms();
    bool streams_done = p->st[0].eof && p->st[1].eof;
    if (p->exited && (streams_done || now - p->exit_mono > MODAL_DRAIN_MS)) {
        if (!streams_done)
            log_warn("agent output streams did not end %d ms after exit", MODAL_DRAIN_MS);
        agent_ended(sb, out);
        *out_done = true;
        return RC_OK;
    }
    if (!p->exited && p->kill_sent && now > p->kill_deadline) {
        rc = abandon_agent(sb, "the agent did not end after the stop exec");
        if (rc != RC_OK)
            return rc;
        (void)stopped_hard(sb, out_done, out);
    }
    return RC_OK;
}

static enum rc
modal_cancel(struct sandbox *sb)
{
    /* Stop the agent's processes, keep the sandbox for collect(); poll() reports the end. */
    P(sb)->stopping = true;
    return stop_agent(sb);
}

/* download: run `tar -cf - outputs` in the workspace and stream its stdout into t. A stream cut
 * at t's cap is not an error: extracting keeps what came before it. */
static enum rc
download(struct sandbox *sb, struct sandbox_tar_in *t)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    char exec_id[37];
    static char a0[] = "sh", a1[] = "-c",
                a2[] = "mkdir -p " SANDBOX_WORKSPACE "/" SANDBOX_OUTPUTS_DIR
                       " && tar -cf - -C " SANDBOX_WORKSPACE " " SANDBOX_OUTPUTS_DIR;
    char *const argv[] = {a0, a1, a2, NULL};
    enum rc rc = new_exec(sb, "exec_download", exec_id);
    if (rc != RC_OK)
        return rc;
    struct modal_exec_spec spec = {exec_id, argv, NULL, NULL, 0, true};
    rc = modal_exec_start(p->mc, &spec, &st);
    if (rc != RC_OK)
        return fail_st(sb, "starting the download", &st);
    int64_t deadline = setup_deadline(sb);
    rc = read_all(sb, exec_id, 0, sandbox_tar_in_write, t, deadline, &st);
    if (rc != RC_OK && t->cut)
        return RC_OK;
    if (rc == RC_BACKEND)
        return fail_st(sb, "downloading the outputs", &st);
    if (rc != RC_OK)
        return sandbox_fail(sb, "cannot keep the outputs archive: %s", rc_str(rc));
    int code = -1, sig = -1;
    rc = wait_exit(sb, exec_id, deadline, &code, &sig, &st);
    if (rc != RC_OK)
        return fail_st(sb, "waiting for the download", &st);
    if (code != 0) {
        struct snippet sn = {{0}, 0};
        (void)read_all(sb, exec_id, 1, to_snippet, &sn, clock_mono_ms() + 10000, &st);
        return sandbox_fail(sb, "packing the outputs in the Modal sandbox failed (%s %d): %s",
                            sig >= 0 ? "signal" : "exit", sig >= 0 ? sig : code, sn.buf);
    }
    return RC_OK;
}

static enum rc
modal_collect(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out)
{
    struct modal_priv *p = P(sb);
    struct sandbox_tar_in t = {.fd = -1};
    memset(out, 0, sizeof(*out));
    if (p->terminated) {
        log_warn("Modal sandbox %s was terminated: its outputs are gone", p->sandbox_id);
        return RC_OK;
    }
    enum rc rc = need_client(sb);
    if (rc == RC_OK && modal_router_client(p->mc) == NULL)
        rc = sandbox_fail(sb, "collect without a running Modal sandbox");
    if (rc == RC_OK)
        rc = phase(sb, "downloading");
    if (rc == RC_OK)
        rc = sandbox_tar_in_open(sb, &t);
    if (rc == RC_OK)
        rc = download(sb, &t);
    if (rc == RC_OK)
        rc = sandbox_tar_in_extract(&t, outputs_dirfd, out);
    if (rc == RC_OK)
        rc = phase(sb, "collected");
    sandbox_tar_in_close(&t);
    return rc;
}

static enum rc
modal_destroy(struct sandbox *sb)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    if (p->mc == NULL)
        return RC_OK;
    end_agent_io(p);
    if (p->sandbox_id[0] == '\0') {
        const char *sid = json_get_str(sb->state, "sandbox_id");
        if (sid != NULL && !copy_id(p->sandbox_id, sizeof(p->sandbox_id), sid))
            return sandbox_fail(sb, "the recorded Modal sandbox id is not usable");
    }
    if (p->sandbox_id[0] == '\0') {
        /* A start that died mid-create may have left a sandbox with our job tag. */
        const char *ph = json_get_str(sb->state, "phase");
        if (ph != NULL && strcmp(ph, "creating") == 0 && sb->job != NULL) {
            if (p->app_id[0] == '\0' &&
                modal_app_get_or_create(p->mc, sb->cfg->modal_app, p->app_id, &st) != RC_OK)
                return fail_st(sb, "looking up the Modal app", &st);
            int fam = 0;
            enum rc lrc = list_both(sb, sb->job->id, kill_listed, sb, &fam, &st);
            if (lrc == RC_NOMEM)
                return lrc;
            if (lrc != RC_OK)
                return fail_st(sb,
                               fam == 2 ? "listing the job's V2 sandboxes"
                                        : "listing the job's V1 sandboxes",
                               &st);
        }
        return RC_OK;
    }
    if (!p->terminated) {
        if (modal_sandbox_terminate(p->mc, p->sandbox_id, &st) != RC_OK &&
            st.code != GRPC_NOT_FOUND)
            return fail_st(sb, "terminating the sandbox", &st);
        p->terminated = true;
    }
    if (set_state(sb, "phase", "done") != RC_OK)
        return RC_NOMEM;
    return save(sb);
}

/* The last health probe of this process (`labbox serve` checks from one thread). */
static struct {
    int64_t at;  /* CLOCK_MONOTONIC ms of the last successful probe, 0: none */
    char of[65]; /* ... for these settings (a hash: credentials change on a reload) */
} probe;

/* A hash of what a probe's verdict depends on: server, credentials, environment, app. */
static void
probe_identity(struct sandbox *sb, char out[65])
{
    const struct modal_settings *s = modal_client_settings(P(sb)->mc);
    const char *parts[] = {s->server_url, s->token_id, s->token_secret, s->environment,
                           sb->cfg->modal_app};
    struct sha256 h;
    out[0] = '\0';
    if (!sha256_init(&h))
        return;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    sha256_hex(&h, out);
}

/* check (docs/modal.md#auth-token): Modal is asked (the token, which comes from the shared
 * store unless it is due, and AppGetOrCreate of modal_app) at most every MODAL_PROBE_MS while
 * it answers; after a failure, at every check. */
static enum rc
modal_check(struct sandbox *sb)
{
    struct grpc_status st;
    enum rc rc = need_client(sb);
    if (rc != RC_OK)
        return rc;
    int64_t now = clock_mono_ms();
    char of[65];
    probe_identity(sb, of);
    if (probe.at != 0 && strcmp(of, probe.of) == 0 &&
        now - probe.at < modal_client_scale_ms(P(sb)->mc, MODAL_PROBE_MS))
        return RC_OK;
    const char *url = modal_client_settings(P(sb)->mc)->server_url;
    probe.at = 0;
    rc = modal_client_probe(P(sb)->mc, sb->cfg->modal_app, &st);
    if (rc == RC_OK && of[0] != '\0') {
        probe.at = now;
        memcpy(probe.of, of, sizeof(probe.of));
    }
    if (rc == RC_OK || rc == RC_NOMEM)
        return rc;
    switch (st.code) {
    case GRPC_UNAUTHENTICATED:
    case GRPC_PERMISSION_DENIED:
        return sandbox_fail(sb, "Modal rejected the token (%s)", st.message);
    case GRPC_UNAVAILABLE:
    case GRPC_DEADLINE_EXCEEDED:
        return sandbox_fail(sb, "Modal at %s cannot be reached: %s", url, st.message);
    default:
        return sandbox_fail(sb, "Modal at %s answered %s: %s", url, grpcframe_code_name(st.code),
                            st.message);
    }
}

struct reaper {
    struct sandbox *sb;
    sandbox_claimed_fn *claimed;
    void *ctx;
    unsigned killed;
};

static enum rc
reap_one(void *ctx, const char *sandbox_id, const char *job)
{
    struct reaper *r = ctx;
    struct grpc_status st;
    if (job != NULL && job[0] != '\0' && r->claimed(r->ctx, job))
        return RC_OK;
    log_info("terminating orphaned Modal sandbox %s (job %s)", sandbox_id, job ? job : "-");
    if (modal_sandbox_terminate(P(r->sb)->mc, sandbox_id, &st) != RC_OK)
        log_warn("SandboxTerminate %s: %s", sandbox_id, st.message);
    else
        r->killed++;
    return RC_OK;
}

static enum rc
modal_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    struct modal_priv *p = P(sb);
    struct grpc_status st;
    enum rc rc = need_client(sb);
    if (rc != RC_OK)
        return rc;
    rc = modal_app_get_or_create(p->mc, sb->cfg->modal_app, p->app_id, &st);
    if (rc != RC_OK)
        return fail_st(sb, "looking up the Modal app", &st);
    struct reaper r = {sb, claimed, ctx, 0};
    int fam = 0;
    rc = list_both(sb, NULL, reap_one, &r, &fam, &st);
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK)
        return fail_st(
            sb, fam == 2 ? "listing labbox's V2 sandboxes" : "listing labbox's V1 sandboxes", &st);
    return RC_OK;
}

const struct sandbox_ops sandbox_modal_ops = {
    .name = "modal",
    .caps = SANDBOX_CAP_REATTACH,
    .priv_size = sizeof(struct modal_priv),
    .init = modal_init,
    .start = modal_start,
    .attach = modal_attach,
    .poll = modal_poll,
    .cancel = modal_cancel,
    .collect = modal_collect,
    .destroy = modal_destroy,
    .fini = modal_fini,
    .check = modal_check,
    .reap_orphans = modal_reap_orphans,
};
