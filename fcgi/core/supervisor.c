/* supervisor: runs one job from staging to its terminal state (see supervisor.h). */
#include "core/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/jobstore.h"
#include "core/workdir.h"
#include "defaults.h"
#include "jobs/filetype.h"
#include "jobs/joblog.h"
#include "jobs/typer.h"
#include "json.h"
#include "log.h"
#include "parse/logsplit.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/fsutil.h"

#define POLL_MS         100 /* longest sleep between checks */
#define ENV_MAX         64
#define KILL_WAIT_MS    30000 /* a killed sandbox that has not stopped by then is a backend fault */
#define HOST_FULL_KIB   1024  /* less free than this on data_dir or sandbox_dir: the disk is full */
#define HOST_FULL_FILES 16    /* ... or fewer free inodes */

enum stop {
    STOP_NONE,     /* the agent ended by itself */
    STOP_CANCEL,   /* the user canceled */
    STOP_TIMEOUT,  /* wall clock */
    STOP_LOGLIMIT, /* log.jsonl full */
    STOP_HOSTFULL, /* the host's disk is full: the log cannot be written */
    STOP__MAX
};

struct sup;

/* Where one output stream's lines go. */
struct line_ctx {
    struct sup *s;
    enum joblog_stream stream;
};

struct sup {
    const struct config *cfg;
    struct jobstore js;
    const char *id;
    int dirfd;
    struct job job;
    struct joblog log;
    struct logsplit *split[SANDBOX_STREAM__MAX];
    struct line_ctx lines[SANDBOX_STREAM__MAX];
    int64_t last_feed[SANDBOX_STREAM__MAX]; /* mono ms of the last bytes, for partial flush */
    struct sandbox *sb;
    struct sandbox_job sj;
    char work_dir[PATH_MAX];
    char job_dir[PATH_MAX];
    char *envp[ENV_MAX];
    char **argv;
    enum stop stop;
    int64_t started_mono; /* the agent's start, CLOCK_MONOTONIC ms */
    pid_t saver;          /* the child writing a record in the background, or 0 */
};

/*** the record ***/

/* Saves the agent need not wait for (the staging record, the running one) are written by a
 * forked child while the supervisor goes on: their fdatasync and fsyncs took 4 to 15 ms each
 * on a busy disk, most of a job's start. They stay in order: one is in flight at a time, and
 * every save waits for it first. A child's failure is logged; the next save writes the whole
 * record again. */
static void
save_wait(struct sup *s)
{
    int st = 0;
    if (s->saver <= 0)
        return;
    while (waitpid(s->saver, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        log_err("cannot write the job record (in the background)");
    s->saver = 0;
}

static enum rc
save(struct sup *s)
{
    save_wait(s);
    enum rc rc = jobstore_save(s->dirfd, &s->job);
    if (rc != RC_OK)
        log_err("cannot write the job record (%s)", rc_str(rc));
    return rc;
}

/* save_async: save in a child (the record as it is now: the child has its own copy), or here
 * when no child can be made. */
static void
save_async(struct sup *s)
{
    save_wait(s);
    pid_t pid = fork();
    if (pid == 0) {
        /* Nothing but the job dir and stderr: the sandbox's pipes and the lock stay ours. */
        (void)close_range(3, (unsigned)s->dirfd - 1, 0);
        (void)close_range((unsigned)s->dirfd + 1, ~0U, 0);
        _exit(jobstore_save(s->dirfd, &s->job) == RC_OK ? 0 : 1);
    }
    if (pid > 0)
        s->saver = pid;
    else
        RC_IGNORE(save(s));
}

/* log_state: move the record to state `to` and log it (the log first: readers that see a
 * terminal state may rely on a whole log); the caller saves. */
static enum rc
log_state(struct sup *s, enum job_state to, enum job_reason reason, const char *detail)
{
    enum job_state from = s->job.state;
    enum rc rc = jobstore_set_state(&s->job, to, reason, detail);
    if (rc != RC_OK) {
        log_err("illegal transition %s -> %s", jobstate_str(from), jobstate_str(to));
        return rc;
    }
    RC_IGNORE(joblog_system(&s->log, "state: %s%s%s%s", jobstate_str(to), detail ? " (" : "",
                            detail ? detail : "", detail ? ")" : ""));
    return RC_OK;
}

static enum rc
set_state(struct sup *s, enum job_state to, enum job_reason reason, const char *detail)
{
    enum rc rc = log_state(s, to, reason, detail);
    return rc == RC_OK ? save(s) : rc;
}

static enum rc
persist_cb(void *ctx, struct sandbox *sb)
{
    struct sup *s = ctx;
    jobstore_job_set_sandbox(&s->job, sb->state);
    return save(s);
}

/* Is the filesystem of path (almost) out of space or inodes? Its free KiB into *kib. */
static bool
fs_full_at(const char *path, uint64_t *kib)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return false;
    *kib = (uint64_t)sv.f_bavail * sv.f_frsize / 1024;
    return *kib < HOST_FULL_KIB || (sv.f_files > 0 && sv.f_favail < HOST_FULL_FILES);
}

/* A failure the host's full disk explains is reported as that: a job that could not be
 * recorded, staged or collected, or whose agent failed while sandbox_dir (its workspace
 * image lives there) was full. detail gets the reason first. */
static enum job_reason
host_full(struct sup *s, enum job_reason reason, char *detail, size_t len, const char *orig)
{
    uint64_t kib = 0;
    const char *dir = NULL;
    bool agent = reason == REASON_EXIT_NONZERO || reason == REASON_SIGNAL;
    if (reason != REASON_SANDBOX_ERROR && reason != REASON_INTERRUPTED && !agent &&
        reason != REASON_HOST_DISK_FULL)
        return reason;
    if (fs_full_at(s->cfg->sandbox_dir, &kib))
        dir = "sandbox_dir";
    else if (!agent && fs_full_at(s->cfg->data_dir, &kib))
        dir = "data_dir";
    if (dir == NULL)
        return reason;
    (void)snprintf(detail, len, "the host's disk is full (%s %s: %llu KiB free)%s%s", dir,
                   dir[0] == 's' ? s->cfg->sandbox_dir : s->cfg->data_dir, (unsigned long long)kib,
                   orig ? ": " : "", orig ? orig : "");
    return REASON_HOST_DISK_FULL;
}

/* finish: the terminal state. A job that never left queued can only be failed or canceled. */
static void
finish(struct sup *s, enum job_state st, enum job_reason reason, const char *detail)
{
    char full[JOB_DETAIL_MAX];
    if (s->job.state == JOB_QUEUED && st != JOB_CANCELED && st != JOB_FAILED)
        st = JOB_FAILED;
    if (st == JOB_FAILED && host_full(s, reason, full, sizeof(full), detail) != reason) {
        reason = REASON_HOST_DISK_FULL;
        detail = full;
    }
    if (set_state(s, st, reason, detail) != RC_OK && s->job.state != st) {
        /* Last resort: a record that at least says failed. */
        RC_IGNORE(jobstore_set_state(&s->job, JOB_FAILED, REASON_INTERRUPTED, detail));
        RC_IGNORE(save(s));
    }
}

static void
fail_sandbox(struct sup *s, const char *what)
{
    /* Room for both; the record keeps the first JOB_DETAIL_MAX bytes, the log all of it. */
    char detail[JOB_DETAIL_MAX + sizeof(s->sb->error)];
    (void)snprintf(detail, sizeof(detail), "%s: %s", what,
                   s->sb && s->sb->error[0] ? s->sb->error : "backend error");
    RC_IGNORE(joblog_system(&s->log, "%s", detail));
    finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, detail);
}

/*** the log ***/

static enum rc
line_cb(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed)
{
    struct line_ctx *lc = ctx;
    struct sup *s = lc->s;
    (void)cut;
    if (s->log.full)
        return RC_TOOBIG;
    enum rc rc = joblog_append(&s->log, lc->stream, line, len, consumed);
    if (s->log.nospace && s->stop == STOP_NONE)
        s->stop = STOP_HOSTFULL; /* what the agent says cannot be kept: stop it */
    if (rc == RC_TOOBIG && s->stop == STOP_NONE) {
        s->stop = STOP_LOGLIMIT;
        RC_IGNORE(joblog_system(&s->log, "log limit of %llu bytes reached: stopping the agent",
                                (unsigned long long)s->cfg->log_max_bytes));
    }
    return rc;
}

static void
output_cb(void *ctx, enum sandbox_stream st, const char *p, size_t n)
{
    struct sup *s = ctx;
    s->last_feed[st] = clock_mono_ms();
    if (s->log.full)
        return;
    RC_IGNORE(logsplit_feed(s->split[st], p, n));
}

/* A line of labbox's own from the backend (a wait, an image build's log) for the job's log. */
static void
note_cb(void *ctx, const char *line)
{
    struct sup *s = ctx;
    RC_IGNORE(joblog_system(&s->log, "%s", line));
}

static void
flush_partial(struct sup *s, bool force)
{
    int64_t now = clock_mono_ms();
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        if (s->split[i] == NULL)
            continue;
        if (force)
            RC_IGNORE(logsplit_finish(s->split[i])); /* end of stream: emit what is held */
        else if (logsplit_pending(s->split[i]) > 0 &&
                 now - s->last_feed[i] >= (int64_t)s->cfg->log_flush_ms)
            RC_IGNORE(logsplit_flush(s->split[i]));
    }
}

/* The splitters start at the stream offsets already logged (0 for a fresh job); the backend
 * skips what a recovered log already holds. */
static enum rc
open_streams(struct sup *s, bool recovering)
{
    uint64_t pos[SANDBOX_STREAM__MAX] = {0, 0};
    if (recovering) {
        int fd = jobstore_log_open(s->dirfd, JOBSTORE_LOG_REPAIR);
        if (fd < 0 || joblog_recover_positions(fd, pos) != RC_OK)
            log_warn("cannot recover log positions; starting from 0");
        if (fd >= 0)
            close(fd);
        for (int i = 0; i < SANDBOX_STREAM__MAX; i++)
            s->sb->resume_offset[i] = pos[i];
    }
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        s->lines[i] = (struct line_ctx){s, i == SANDBOX_STDOUT ? JOBLOG_STDOUT : JOBLOG_STDERR};
        s->split[i] = logsplit_new(s->cfg->log_line_max, pos[i], line_cb, &s->lines[i]);
        if (s->split[i] == NULL)
            return RC_NOMEM;
    }
    return RC_OK;
}

/*** staging ***/

static enum rc
add_env(struct sup *s, size_t *n, const char *name, const char *value)
{
    if (*n + 1 >= ENV_MAX)
        return RC_TOOBIG;
    size_t len = strlen(name) + strlen(value) + 2;
    char *e = malloc(len);
    if (e == NULL)
        return RC_NOMEM;
    (void)snprintf(e, len, "%s=%s", name, value); /* sized to fit */
    s->envp[(*n)++] = e;
    s->envp[*n] = NULL;
    return RC_OK;
}

/* The agent's whole environment: LABBOX_*, a few sane basics, and agent_env. Never ours. */
static enum rc
build_env(struct sup *s)
{
    size_t n = 0;
    enum rc rc = RC_OK;
    const struct {
        const char *k, *v;
    } base[] = {
        {"LABBOX_JOB_ID", s->id},
        {"LABBOX_BACKEND", s->job.backend[0] ? s->job.backend : s->cfg->backend},
        {"LABBOX_INPUT_DIR", "/workspace/" SANDBOX_INPUTS_DIR},
        {"LABBOX_OUTPUT_DIR", "/workspace/" SANDBOX_OUTPUTS_DIR},
        {"PATH", "/usr/local/bin:/usr/bin:/bin"},
        {"HOME", "/tmp"},
        {"LANG", "C.UTF-8"},
        {"PYTHONUNBUFFERED", "1"},
    };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]) && rc == RC_OK; i++)
        rc = add_env(s, &n, base[i].k, base[i].v);
    char **words = NULL;
    if (rc == RC_OK && s->cfg->agent_env[0] != '\0') {
        rc = config_split_argv(s->cfg->agent_env, &words);
        for (char **w = words; rc == RC_OK && w && *w; w++) {
            char *eq = strchr(*w, '=');
            if (eq != NULL) {
                *eq = '\0';
                rc = add_env(s, &n, *w, eq + 1);
            } else {
                const char *v = getenv(*w);
                if (v != NULL)
                    rc = add_env(s, &n, *w, v);
            }
        }
    }
    config_free_argv(words);
    return rc;
}

/* The job's inputs/ tree (subdirectories of a dropped folder included) into the work dir's
 * inputs/: hard links, or copies across filesystems. */
static enum rc
link_inputs(struct sup *s, int work_fd)
{
    enum rc rc = RC_IO;
    if (mkdirat(work_fd, SANDBOX_INPUTS_DIR, 0755) != 0 && errno != EEXIST)
        return RC_IO;
    int in = jobstore_inputs_open(s->dirfd);
    int win = openat(work_fd, SANDBOX_INPUTS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in >= 0 && win >= 0)
        rc = fs_link_tree(in, win, NULL);
    if (in >= 0)
        close(in);
    if (win >= 0)
        close(win);
    return rc;
}

/* The work dir = a copy of agent_dir + inputs/ (links or copies of the job's inputs) + an
 * empty outputs/. It lives under sandbox_dir, not in the job dir, because the sandbox user must
 * be able to reach it and the data dir may sit below a private home directory. */
static enum rc
stage_work(struct sup *s)
{
    char why[256];
    int work = -1, agent = -1;
    enum rc rc = workdir_make(s->cfg, s->work_dir, &work, why, sizeof(why));
    if (rc != RC_OK) {
        RC_IGNORE(sandbox_fail(s->sb, "%s", why));
        return rc;
    }
    const char *what = "cannot open agent_dir";
    rc = RC_IO;
    agent = open(s->cfg->agent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (agent < 0) {
        log_errno("open agent_dir %s", s->cfg->agent_dir);
        goto out;
    }
    what = "cannot copy agent_dir into the work dir";
    if ((rc = fs_copy_tree(agent, work)) != RC_OK)
        goto out;
    what = "cannot link the inputs into the work dir";
    if ((rc = link_inputs(s, work)) != RC_OK)
        goto out;
    what = "cannot make the outputs dir";
    if (mkdirat(work, SANDBOX_OUTPUTS_DIR, 0755) != 0 && errno != EEXIST)
        rc = RC_IO;
out:
    if (rc != RC_OK)
        RC_IGNORE(sandbox_fail(s->sb, "cannot stage the work directory: %s", what));
    if (work >= 0)
        close(work);
    if (agent >= 0)
        close(agent);
    return rc;
}

/*** outputs ***/

static json_object *
output_entry(const char *path, uint64_t size, const char *type)
{
    json_object *o = json_object_new_object();
    if (o == NULL || !json_set_str(o, "path", path) || !json_set_i64(o, "size", (int64_t)size) ||
        !json_set_str(o, "type", type)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* What indexing the outputs needs: the job dir (its group), the unprivileged typer. */
struct lister {
    int jobfd;
    struct typer typer;
    json_object *arr;
};

/* Index the collected tree: [{path, size, type}] for every regular file; every dir and file
 * is shared with the output group on the way (nginx sends them). */
static enum rc
list_outputs(struct lister *l, int dfd, const char *prefix, int depth)
{
    if (depth > OUTPUT_DEPTH_MAX)
        return RC_TOOBIG;
    DIR *d = fs_opendir(dfd);
    if (d == NULL)
        return RC_IO;
    enum rc rc = RC_OK;
    struct dirent *de;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[OUTPUT_PATH_MAX + NAME_MAX + 2];
        int k = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name);
        struct stat st;
        if (k < 0 || (size_t)k >= sizeof(path) ||
            fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* collect never makes such paths */
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? RC_IO : jobstore_share(l->jobfd, sub, true);
            if (rc == RC_OK)
                rc = list_outputs(l, sub, path, depth + 1);
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode)) {
            char type[128];
            int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 || jobstore_share(l->jobfd, fd, false) != RC_OK)
                rc = RC_IO;
            typer_type(&l->typer, de->d_name, fd, type, sizeof(type));
            if (fd >= 0)
                close(fd);
            json_object *o = output_entry(path, (uint64_t)st.st_size, type);
            if (o == NULL || json_object_array_add(l->arr, o) != 0) {
                json_object_put(o);
                rc = RC_NOMEM;
            }
        }
    }
    closedir(d);
    return rc;
}

static int
cmp_path(const void *a, const void *b)
{
    const char *pa = json_get_str(*(json_object *const *)a, "path");
    const char *pb = json_get_str(*(json_object *const *)b, "path");
    return strcmp(pa ? pa : "", pb ? pb : "");
}

/* The zip of every output, built once here so that downloads are plain files nginx sends. A
 * zip that cannot be built now is built at the first request instead. */
static void
build_zip(struct sup *s, int ofd, json_object *index)
{
    enum rc rc = jobstore_zip_build(s->dirfd, JOBSTORE_ZIP_OUTPUTS, ofd, index);
    if (rc != RC_OK)
        log_warn("the outputs zip was not built (%s); it will be at the first request", rc_str(rc));
}

/* The zip of the inputs, built once with the outputs' (before the terminal state, so that the
 * bytes the job keeps count it) unless a request already had it built; a failure leaves it to
 * the first request. */
static void
build_inputs_zip(struct sup *s)
{
    json_object *index = NULL;
    int in = -1;
    if (jobstore_zip_exists(s->dirfd, JOBSTORE_ZIP_INPUTS))
        return;
    enum rc rc = jobstore_inputs_index(s->dirfd, &s->job, &index);
    if (rc == RC_OK) {
        in = jobstore_inputs_open(s->dirfd);
        rc = in >= 0 ? jobstore_zip_build(s->dirfd, JOBSTORE_ZIP_INPUTS, in, index) : RC_IO;
    }
    if (in >= 0)
        close(in);
    json_object_put(index);
    if (rc != RC_OK)
        log_warn("the inputs zip was not built (%s); it will be at the first request", rc_str(rc));
}

/* Collect into the store's staging dir, index it and zip it, then publish at once. */
static enum rc
collect(struct sup *s, struct collect_stats *st)
{
    int ofd = -1;
    memset(st, 0, sizeof(*st));
    enum rc rc = jobstore_outputs_begin(s->dirfd, &ofd);
    if (rc != RC_OK)
        return sandbox_fail(s->sb, "cannot prepare the outputs directory");
    struct lister l = {.jobfd = s->dirfd, .arr = json_object_new_array()};
    typer_init(&l.typer);
    rc = sandbox_collect(s->sb, ofd, st);
    if (rc == RC_OK)
        rc = l.arr ? list_outputs(&l, ofd, "", 0) : RC_NOMEM;
    typer_fini(&l.typer);
    if (rc == RC_OK) {
        json_object_array_sort(l.arr, cmp_path);
        build_zip(s, ofd, l.arr);
        rc = jobstore_outputs_commit(s->dirfd, l.arr);
    }
    close(ofd);
    json_object_put(l.arr);
    return rc;
}

/*** the agent's run ***/

static void
record_result(struct sup *s, const struct sandbox_result *r)
{
    s->job.has_usage = true;
    s->job.usage = (struct job_usage){r->wall_ms, r->cpu_ms, r->max_rss_kb};
    s->job.exit_code = r->exit_code >= 0 ? r->exit_code : -1;
    s->job.signo = r->signo > 0 ? r->signo : 0;
    /* Private: what a supervisor recovering in collecting needs to conclude the same way. */
    s->job.has_result = true;
    s->job.result = r->status;
    s->job.stop = (int)s->stop;
}

/* Poll until the agent ends; the supervisor alone enforces the wall clock, cancel requests and
 * the log cap, and so alone knows why the agent stopped. */
static enum rc
run_loop(struct sup *s, struct sandbox_result *res)
{
    int64_t deadline = s->started_mono + (int64_t)s->cfg->wall_timeout * 1000;
    int64_t kill_at = 0;
    bool done = false;
    for (;;) {
        enum rc rc = sandbox_poll(s->sb, POLL_MS, &done, res);
        if (rc != RC_OK)
            return rc;
        flush_partial(s, false);
        if (done)
            break;
        if (s->stop == STOP_NONE && jobstore_cancel_requested(s->dirfd))
            s->stop = STOP_CANCEL;
        if (s->stop == STOP_NONE && clock_mono_ms() >= deadline) {
            s->stop = STOP_TIMEOUT;
            RC_IGNORE(joblog_system(&s->log,
                                    "wall-clock limit of %llu s reached: stopping the agent",
                                    (unsigned long long)s->cfg->wall_timeout));
        }
        if (s->stop != STOP_NONE && kill_at == 0) {
            kill_at = clock_mono_ms();
            rc = sandbox_cancel(s->sb);
            if (rc != RC_OK)
                return rc;
        }
        if (kill_at != 0 && clock_mono_ms() - kill_at > KILL_WAIT_MS)
            return sandbox_fail(s->sb, "the sandbox did not stop within %d s of being killed",
                                KILL_WAIT_MS / 1000);
    }
    flush_partial(s, true);
    return RC_OK;
}

/* The supervisor's view of the end: the agent's time by its own clock where the backend had
 * none, and a timeout, however the agent died, when it failed after running past wall_timeout
 * (a backend's backstop, or an end no supervisor was there to see). A timeout is recorded as
 * SANDBOX_TIMEOUT, whatever the backend saw after the kill. */
static void
judge_end(struct sup *s, struct sandbox_result *res)
{
    int64_t ran = clock_mono_ms() - s->started_mono;
    if (res->wall_ms == 0 && ran > 0)
        res->wall_ms = (uint64_t)ran;
    bool failed = res->status == SANDBOX_SIGNALED || res->status == SANDBOX_RUNTIME_ERROR;
    if (s->stop == STOP_NONE && failed && res->wall_ms >= s->cfg->wall_timeout * 1000) {
        s->stop = STOP_TIMEOUT;
        RC_IGNORE(joblog_system(&s->log, "the agent ended after the wall-clock limit of %llu s",
                                (unsigned long long)s->cfg->wall_timeout));
    }
    if (s->stop == STOP_TIMEOUT && res->status != SANDBOX_INTERNAL)
        res->status = SANDBOX_TIMEOUT;
}

/* Run the agent to its end and record how it ended; the job moves to collecting. */
static enum rc
watch(struct sup *s, struct sandbox_result *res)
{
    if (run_loop(s, res) != RC_OK) {
        fail_sandbox(s, "the sandbox failed while the agent ran");
        return RC_BACKEND;
    }
    judge_end(s, res);
    record_result(s, res);
    if (res->status == SANDBOX_INTERNAL) {
        fail_sandbox(s, "the sandbox failed");
        return RC_BACKEND;
    }
    if (res->exit_code >= 0)
        RC_IGNORE(joblog_system(&s->log, "agent exited with code %d after %.1f s", res->exit_code,
                                (double)res->wall_ms / 1000.0));
    /* In the background too: collecting takes its time, and the terminal save waits for it. */
    if (log_state(s, JOB_COLLECTING, REASON_NONE, NULL) != RC_OK)
        return RC_IO;
    save_async(s);
    return RC_OK;
}

/* A recovered job in collecting: the agent's result and why it stopped are in the record. */
static void
saved_result(struct sup *s, struct sandbox_result *res)
{
    res->status = s->job.has_result ? s->job.result : SANDBOX_OK;
    res->exit_code = s->job.exit_code;
    res->signo = s->job.signo;
    s->stop =
        s->job.stop > STOP_NONE && s->job.stop < STOP__MAX ? (enum stop)s->job.stop : STOP_NONE;
}

/*** the end ***/

static const char *
signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev != NULL)
        (void)snprintf(buf, len, "SIG%s", abbrev);
    else
        (void)snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* decide: the terminal state from why we stopped the agent, how it ended, and collection.
 * Details are human-readable sentences; a cut one is still readable. */
static void
decide(struct sup *s, const struct sandbox_result *r, const struct collect_stats *cs,
       enum rc collect_rc)
{
    char detail[JOB_DETAIL_MAX], sig[32];
    const struct config *cfg = s->cfg;
    if (s->stop == STOP_CANCEL) {
        finish(s, JOB_CANCELED, REASON_CANCELED, "canceled by the user");
    } else if (s->stop == STOP_TIMEOUT || r->status == SANDBOX_TIMEOUT) {
        (void)snprintf(detail, sizeof(detail), "the agent ran longer than %llu s",
                       (unsigned long long)cfg->wall_timeout);
        finish(s, JOB_TIMED_OUT, REASON_TIMEOUT, detail);
    } else if (s->stop == STOP_HOSTFULL) {
        finish(s, JOB_FAILED, REASON_HOST_DISK_FULL,
               "the host's disk is full: the agent's output could not be logged");
    } else if (s->stop == STOP_LOGLIMIT) {
        (void)snprintf(detail, sizeof(detail), "the agent printed more than %llu bytes of log",
                       (unsigned long long)cfg->log_max_bytes);
        finish(s, JOB_FAILED, REASON_LOG_LIMIT, detail);
    } else if (r->status == SANDBOX_OOM) {
        (void)snprintf(detail, sizeof(detail), "the agent used more than %llu MiB of memory",
                       (unsigned long long)cfg->memory_mb);
        finish(s, JOB_FAILED, REASON_OOM, detail);
    } else if (r->disk_full && r->status != SANDBOX_OK) {
        /* The agent failed with its capped workspace full: the cap, not a crash, is why. */
        (void)snprintf(detail, sizeof(detail),
                       "the agent filled its workspace (%llu MiB, %llu files) and failed",
                       (unsigned long long)cfg->workspace_max_mb,
                       (unsigned long long)cfg->workspace_max_files);
        finish(s, JOB_FAILED, REASON_DISK_LIMIT, detail);
    } else if (r->status == SANDBOX_SIGNALED) {
        (void)snprintf(detail, sizeof(detail), "the agent was killed by %s",
                       signal_name(r->signo, sig, sizeof(sig)));
        finish(s, JOB_FAILED, REASON_SIGNAL, detail);
    } else if (r->status == SANDBOX_RUNTIME_ERROR) {
        (void)snprintf(detail, sizeof(detail), "the agent exited with code %d", r->exit_code);
        finish(s, JOB_FAILED, REASON_EXIT_NONZERO, detail);
    } else if (r->status == SANDBOX_INTERNAL || collect_rc != RC_OK) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR,
               s->sb->error[0] ? s->sb->error : "collecting the outputs failed");
    } else if (cs->over_limit) {
        (void)snprintf(detail, sizeof(detail),
                       "the outputs exceed %llu bytes or %llu files; the first ones were kept",
                       (unsigned long long)cfg->output_max_bytes,
                       (unsigned long long)cfg->output_max_files);
        finish(s, JOB_FAILED, REASON_OUTPUT_LIMIT, detail);
    } else {
        finish(s, JOB_SUCCEEDED, REASON_NONE, NULL);
    }
}

/* Collect whatever the agent left, then write the terminal state (last). */
static void
conclude(struct sup *s, const struct sandbox_result *res)
{
    struct collect_stats cs;
    enum rc rc = collect(s, &cs);
    if (rc == RC_OK)
        RC_IGNORE(joblog_system(&s->log, "collected %llu output files (%llu bytes)%s",
                                (unsigned long long)cs.files, (unsigned long long)cs.bytes,
                                cs.skipped ? "; links and special files were skipped" : ""));
    else
        RC_IGNORE(joblog_system(&s->log, "collecting outputs failed: %s", s->sb->error));
    build_inputs_zip(s);
    decide(s, res, &cs, rc);
}

/*** start and recover ***/

/* A fresh job: staging, the sandbox, running. */
static enum rc
start(struct sup *s)
{
    /* The staging and running records in the background: a crash that loses them leaves an
     * earlier state, which recovery handles (local: lost; remote: found by the state the
     * backend persisted itself). */
    if (log_state(s, JOB_STAGING, REASON_NONE, NULL) != RC_OK)
        return RC_IO;
    save_async(s);
    RC_IGNORE(joblog_system(&s->log, "staging on backend %s", s->sb->ops->name));
    if (stage_work(s) != RC_OK) {
        fail_sandbox(s, "staging failed");
        return RC_IO;
    }
    if (sandbox_start(s->sb) != RC_OK) {
        fail_sandbox(s, "the sandbox could not start");
        return RC_BACKEND;
    }
    s->started_mono = clock_mono_ms();
    jobstore_job_set_sandbox(&s->job, s->sb->state);
    if (log_state(s, JOB_RUNNING, REASON_NONE, NULL) != RC_OK)
        return RC_IO;
    save_async(s);
    return RC_OK;
}

/* A job whose supervisor died: re-attach where the backend can (it decides from its recorded
 * phase what is left to do); the wall clock goes on from the recorded start. */
static enum rc
recover(struct sup *s)
{
    enum job_state st = s->job.state;
    RC_IGNORE(joblog_system(&s->log, "supervisor restarted: re-attaching to the %s sandbox",
                            s->sb->ops->name));
    if (s->job.sandbox != NULL) {
        json_object_put(s->sb->state);
        s->sb->state = json_object_get(s->job.sandbox);
    }
    /* Died while staging: the work dir may be half made. */
    if (st == JOB_STAGING && stage_work(s) != RC_OK) {
        fail_sandbox(s, "staging failed");
        return RC_IO;
    }
    if (sandbox_attach(s->sb) != RC_OK) {
        fail_sandbox(s, "re-attaching to the sandbox failed");
        return RC_BACKEND;
    }
    s->started_mono = clock_mono_ms();
    if (st == JOB_STAGING &&
        (persist_cb(s, s->sb) != RC_OK || set_state(s, JOB_RUNNING, REASON_NONE, NULL) != RC_OK))
        return RC_IO;
    if (s->job.started_ms > 0)
        s->started_mono -= clock_real_ms() - s->job.started_ms;
    return RC_OK;
}

/* A local job whose supervisor died: its sandbox died with it. */
static void
lost(struct sup *s)
{
    RC_IGNORE(joblog_system(&s->log,
                            "the supervisor of this job was lost; %s sandboxes die with it and "
                            "cannot be re-attached",
                            s->sb->ops->name));
    finish(s, JOB_FAILED, REASON_INTERRUPTED, "the host lost the job (supervisor ended)");
    /* Whatever the lost sandbox left (work dir, cgroups) goes now. */
    if (sandbox_init(s->sb) == RC_OK)
        RC_IGNORE(sandbox_destroy(s->sb));
}

/* The sandbox instance for the job's backend, with the job and callbacks wired in. */
static enum rc
prepare(struct sup *s, const struct sandbox_ops *ops)
{
    if (config_split_argv(s->cfg->agent_command, &s->argv) != RC_OK || build_env(s) != RC_OK)
        return RC_BADREQ;
    s->sj = (struct sandbox_job){.id = s->id,
                                 .dir = s->job_dir,
                                 .dirfd = s->dirfd,
                                 .work_dir = s->work_dir,
                                 .argv = s->argv,
                                 .envp = s->envp,
                                 .timeout_s = s->cfg->wall_timeout};
    if (s->job.owner.kind != OWNER_NONE)
        s->sj.owner = s->job.owner.name;
    s->sb = sandbox_new(ops, s->cfg, &s->sj);
    if (s->sb == NULL)
        return RC_NOMEM;
    s->sb->on_output = output_cb;
    s->sb->on_note = note_cb;
    s->sb->on_persist = persist_cb;
    s->sb->cb_ctx = s;
    return RC_OK;
}

static int
run(struct sup *s)
{
    const char *backend = s->job.backend[0] ? s->job.backend : s->cfg->backend;
    const struct sandbox_ops *ops = sandbox_ops_by_name(backend);
    bool recovering = s->job.state != JOB_QUEUED;
    struct sandbox_result res = {.status = SANDBOX_INTERNAL, .exit_code = -1};

    if (ops == NULL) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "the job's backend is not compiled in");
        return 0;
    }
    if (!recovering && jobstore_cancel_requested(s->dirfd)) {
        finish(s, JOB_CANCELED, REASON_CANCELED, "canceled by the user");
        return 0;
    }
    enum rc rc = prepare(s, ops);
    if (rc != RC_OK) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR,
               rc == RC_NOMEM ? "out of memory" : "cannot prepare the agent command");
        return 0;
    }
    if (recovering && !(ops->caps & SANDBOX_CAP_REATTACH)) {
        lost(s);
        goto cleanup;
    }
    if (open_streams(s, recovering) != RC_OK) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "out of memory");
        goto cleanup;
    }
    /* Blocking backend I/O (staging, collecting) must end well after the agent's deadline. */
    s->sb->deadline_ms = clock_mono_ms() + (int64_t)s->cfg->wall_timeout * 1000 + 600000;
    if (sandbox_init(s->sb) != RC_OK) {
        fail_sandbox(s, "the sandbox backend could not start");
        goto destroy;
    }
    rc = recovering ? recover(s) : start(s);
    if (rc == RC_OK && s->job.state == JOB_RUNNING)
        rc = watch(s, &res);
    else if (rc == RC_OK)
        saved_result(s, &res);
    if (rc == RC_OK)
        conclude(s, &res);
destroy:
    if (sandbox_destroy(s->sb) != RC_OK)
        log_warn("destroying the sandbox failed: %s", s->sb->error);
cleanup:
    if (fs_rmtree_at(AT_FDCWD, s->work_dir) != RC_OK)
        log_warn("cannot remove the work dir %s", s->work_dir);
    jobstore_cancel_clear(s->dirfd);
    return 0;
}

/* The lock serve passed as fd 3, or our own (a supervisor started by hand). */
static int
take_lock(struct sup *s)
{
    const char *env = getenv("LABBOX_LOCK_FD");
    if (env != NULL) {
        int fd = (int)strtol(env, NULL, 10);
        (void)unsetenv("LABBOX_LOCK_FD");
        if (fd > 2 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
            return fd;
    }
    return jobstore_lock_take(s->dirfd);
}

/* The job dir, and the work dir (named by the id's alias: workdir_name). */
static bool
paths(struct sup *s)
{
    int a = snprintf(s->job_dir, sizeof(s->job_dir), "%s/jobs/%s", s->cfg->data_dir, s->id);
    return a > 0 && (size_t)a < sizeof(s->job_dir) &&
           workdir_job_path(s->cfg, s->id, s->work_dir, sizeof(s->work_dir)) == RC_OK;
}

int
supervisor_main(const struct config *cfg, const char *id)
{
    struct sup s = {.cfg = cfg, .id = id, .dirfd = -1};
    int status = 1, lockfd = -1;
    char tag[64];
    jobstore_job_init(&s.job);
    s.log.fd = -1;
    (void)snprintf(tag, sizeof(tag), "job=%.32s", id);
    log_set_tag(tag);
    (void)signal(SIGPIPE, SIG_IGN);
    /* serve's threads may have had sockets open while it spawned us: keep only stdio and the
     * lock (fd 3), so nothing of serve's can ever be passed on to a sandbox. */
    (void)close_range(getenv("LABBOX_LOCK_FD") != NULL ? 4 : 3, ~0U, 0);
    if (jobstore_open(&s.js, cfg) != RC_OK || jobstore_open_job(&s.js, id, &s.dirfd) != RC_OK) {
        log_err("no such job");
        goto out;
    }
    lockfd = take_lock(&s);
    if (lockfd < 0) {
        log_info("another supervisor holds the job; leaving");
        status = 0;
        goto out;
    }
    if (!paths(&s)) {
        log_err("data_dir or sandbox_dir is too long");
        goto out;
    }
    if (jobstore_load(s.dirfd, &s.job) != RC_OK || filetype_init() != RC_OK ||
        joblog_open(&s.log, jobstore_log_open(s.dirfd, JOBSTORE_LOG_APPEND), cfg->log_max_bytes) !=
            RC_OK)
        goto out;
    if (jobstate_is_terminal(s.job.state)) {
        status = 0;
        goto out;
    }
    status = run(&s);
out:
    save_wait(&s);
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++)
        logsplit_free(s.split[i]);
    sandbox_free(s.sb);
    for (size_t i = 0; i < ENV_MAX && s.envp[i]; i++)
        free(s.envp[i]);
    config_free_argv(s.argv);
    jobstore_job_fini(&s.job);
    joblog_close(&s.log);
    if (s.dirfd >= 0)
        close(s.dirfd);
    jobstore_close(&s.js);
    filetype_fini();
    if (lockfd >= 0)
        close(lockfd);
    return status;
}
