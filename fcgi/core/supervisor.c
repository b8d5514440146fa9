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
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jobstore.h"
#include "defaults.h"
#include "jobs/filetype.h"
#include "jobs/joblog.h"
#include "json.h"
#include "log.h"
#include "parse/logsplit.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

#define POLL_MS 100 /* longest sleep between checks */
#define ENV_MAX 64

enum stop {
    STOP_NONE,     /* the agent ended by itself */
    STOP_CANCEL,   /* the user canceled */
    STOP_TIMEOUT,  /* wall clock */
    STOP_LOGLIMIT, /* log.jsonl full */
};

struct sup {
    const struct config *cfg;
    struct jobstore js;
    const char *id;
    int dirfd;
    json_object *job;
    struct joblog log;
    struct logsplit *split[SANDBOX_STREAM__MAX];
    int64_t last_feed[SANDBOX_STREAM__MAX]; /* mono ms of the last bytes, for partial flush */
    struct sandbox *sb;
    struct sandbox_job sj;
    char work_dir[PATH_MAX + 64];
    char job_dir[PATH_MAX];
    char *envp[ENV_MAX];
    char **argv;
    enum stop stop;
};

/*** job.json ***/

static enum rc
save(struct sup *s)
{
    enum rc rc = jobstore_write(s->dirfd, s->job);
    if (rc != RC_OK)
        log_err("cannot write job.json (%s)", rc_str(rc));
    return rc;
}

static enum rc
set_state(struct sup *s, enum job_state to, enum job_reason reason, const char *detail)
{
    enum rc rc = jobstore_set_state(s->job, to, reason, detail);
    if (rc != RC_OK) {
        log_err("illegal transition %s -> %s", jobstate_str(jobstore_state(s->job)),
                jobstate_str(to));
        return rc;
    }
    /* The record first: readers that see a terminal job.json may rely on a whole log. */
    (void)joblog_system(&s->log, "state: %s%s%s%s", jobstate_str(to), detail ? " (" : "",
                        detail ? detail : "", detail ? ")" : "");
    rc = save(s);
    return rc;
}

static enum rc
persist_cb(void *ctx, struct sandbox *sb)
{
    struct sup *s = ctx;
    json_object_object_add(s->job, "sandbox", json_object_get(sb->state));
    return save(s);
}

/*** log ***/

static enum rc line_cb(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed);

struct line_ctx {
    struct sup *s;
    enum joblog_stream stream;
};
static struct line_ctx line_ctx[SANDBOX_STREAM__MAX];

static enum rc
line_cb(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed)
{
    struct line_ctx *lc = ctx;
    (void)cut;
    if (lc->s->log.full)
        return RC_TOOBIG;
    enum rc rc = joblog_append(&lc->s->log, lc->stream, line, len, consumed);
    if (rc == RC_TOOBIG && lc->s->stop == STOP_NONE) {
        lc->s->stop = STOP_LOGLIMIT;
        (void)joblog_system(&lc->s->log, "log limit of %llu bytes reached: stopping the agent",
                            (unsigned long long)lc->s->cfg->log_max_bytes);
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
    (void)snprintf(e, len, "%s=%s", name, value);
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
    const char *backend = json_get_str(s->job, "backend");
    const struct {
        const char *k, *v;
    } base[] = {
        {"LABBOX_JOB_ID", s->id},
        {"LABBOX_BACKEND", backend ? backend : s->cfg->backend},
        {"LABBOX_INPUT_DIR", "/workspace/inputs"},
        {"LABBOX_OUTPUT_DIR", "/workspace/outputs"},
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

static enum rc
link_inputs(struct sup *s, int work_fd)
{
    enum rc rc = RC_OK;
    if (mkdirat(work_fd, "inputs", 0755) != 0 && errno != EEXIST)
        return RC_IO;
    int in = openat(s->dirfd, "inputs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int win = openat(work_fd, "inputs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0 || win < 0) {
        rc = RC_IO;
        goto out;
    }
    DIR *d = fs_opendir(in);
    if (d == NULL) {
        rc = RC_IO;
        goto out;
    }
    struct dirent *de;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        if (linkat(in, de->d_name, win, de->d_name, 0) == 0)
            continue;
        int a = openat(in, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        int b = openat(win, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        uint64_t copied = 0;
        rc = (a < 0 || b < 0) ? RC_IO : fs_copy_fd(a, b, UINT64_MAX, &copied);
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
    }
    closedir(d);
out:
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
    enum rc rc = RC_IO;
    int work = -1, agent = -1;
    if (fs_mkdir_p(s->cfg->sandbox_dir, 0711) != RC_OK)
        return RC_IO;
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, s->work_dir));
    if (mkdir(s->work_dir, 0755) != 0) {
        log_errno("mkdir %s", s->work_dir);
        return RC_IO;
    }
    work = open(s->work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    agent = open(s->cfg->agent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (work < 0 || agent < 0) {
        log_errno("open work dir or agent_dir %s", s->cfg->agent_dir);
        goto out;
    }
    rc = fs_copy_tree(agent, work);
    if (rc == RC_OK)
        rc = link_inputs(s, work);
    if (rc == RC_OK && mkdirat(work, "outputs", 0755) != 0 && errno != EEXIST)
        rc = RC_IO;
out:
    if (work >= 0)
        close(work);
    if (agent >= 0)
        close(agent);
    return rc;
}

/*** outputs ***/

static enum rc
list_outputs(int dfd, const char *prefix, json_object *arr, int depth)
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
        if (k < 0 || (size_t)k >= sizeof(path))
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                rc = list_outputs(sub, path, arr, depth + 1);
                close(sub);
            }
        } else if (S_ISREG(st.st_mode)) {
            char type[128];
            int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            filetype_for_output(de->d_name, fd, type, sizeof(type));
            if (fd >= 0)
                close(fd);
            json_object *o = json_object_new_object();
            if (o == NULL || !json_set_str(o, "path", path) ||
                !json_set_i64(o, "size", (int64_t)st.st_size) || !json_set_str(o, "type", type)) {
                json_object_put(o);
                rc = RC_NOMEM;
                break;
            }
            json_object_array_add(arr, o);
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

/* Collect into outputs.tmp, then rename it to outputs: readers see all outputs or none. */
static enum rc
collect(struct sup *s, struct sandbox_collect_stats *st)
{
    enum rc rc;
    memset(st, 0, sizeof(*st));
    RC_IGNORE(fs_rmtree_at(s->dirfd, "outputs.tmp"));
    RC_IGNORE(fs_rmtree_at(s->dirfd, "outputs"));
    if (mkdirat(s->dirfd, "outputs.tmp", 0755) != 0)
        return RC_IO;
    int ofd = openat(s->dirfd, "outputs.tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ofd < 0)
        return RC_IO;
    rc = sandbox_collect(s->sb, ofd, st);
    json_object *arr = json_object_new_array();
    if (rc == RC_OK)
        rc = arr ? list_outputs(ofd, "", arr, 0) : RC_NOMEM;
    close(ofd);
    if (rc == RC_OK && renameat(s->dirfd, "outputs.tmp", s->dirfd, "outputs") != 0)
        rc = RC_IO;
    if (rc == RC_OK) {
        json_object_array_sort(arr, cmp_path);
        json_object_object_add(s->job, "outputs", arr);
        arr = NULL;
    }
    json_object_put(arr);
    return rc;
}

/*** the run ***/

static void
record_result(struct sup *s, const struct sandbox_result *r)
{
    json_object *usage = json_object_new_object();
    if (usage != NULL) {
        json_set_i64(usage, "wall_ms", (int64_t)r->wall_ms);
        json_set_i64(usage, "cpu_ms", (int64_t)r->cpu_ms);
        json_set_i64(usage, "max_rss_kb", (int64_t)r->max_rss_kb);
        json_object_object_add(s->job, "usage", usage);
    }
    json_object_object_add(s->job, "exit_code",
                           r->exit_code >= 0 ? json_object_new_int(r->exit_code) : NULL);
    json_object_object_add(s->job, "signal", r->signo > 0 ? json_object_new_int(r->signo) : NULL);
    /* Private: what a supervisor recovering in collecting needs to conclude the same way. */
    json_set_str(s->job, "result", sandbox_status_str(r->status));
    json_set_i64(s->job, "stop", s->stop);
}

static bool
cancel_requested(struct sup *s)
{
    struct stat st;
    return fstatat(s->dirfd, "cancel", &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Poll until the agent ends; enforce deadline, cancel and log cap. */
static enum rc
run_loop(struct sup *s, int64_t deadline, struct sandbox_result *res)
{
    bool done = false, killed = false;
    int64_t kill_at = 0;
    while (!done) {
        int wait = POLL_MS;
        enum rc rc = sandbox_poll(s->sb, wait, &done, res);
        if (rc != RC_OK)
            return rc;
        flush_partial(s, false);
        if (done)
            break;
        if (s->stop == STOP_NONE && cancel_requested(s))
            s->stop = STOP_CANCEL;
        if (s->stop == STOP_NONE && clock_mono_ms() >= deadline) {
            s->stop = STOP_TIMEOUT;
            (void)joblog_system(&s->log, "wall-clock limit of %llu s reached: stopping the agent",
                                (unsigned long long)s->cfg->wall_timeout);
        }
        if (s->stop != STOP_NONE && !killed) {
            killed = true;
            kill_at = clock_mono_ms();
            rc = sandbox_cancel(s->sb);
            if (rc != RC_OK)
                return rc;
        }
        if (killed && clock_mono_ms() - kill_at > 30000)
            return sandbox_fail(s->sb, "the sandbox did not stop within 30 s of being killed");
    }
    flush_partial(s, true);
    return RC_OK;
}

static void
finish(struct sup *s, enum job_state st, enum job_reason reason, const char *detail)
{
    if (jobstore_state(s->job) == JOB_QUEUED && st != JOB_CANCELED && st != JOB_FAILED)
        st = JOB_FAILED;
    if (set_state(s, st, reason, detail) != RC_OK && jobstore_state(s->job) != st) {
        /* Last resort: a record that at least says failed. */
        RC_IGNORE(jobstore_set_state(s->job, JOB_FAILED, REASON_INTERRUPTED, detail));
        (void)save(s);
    }
}

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

static void
conclude(struct sup *s, const struct sandbox_result *r, const struct sandbox_collect_stats *cs,
         enum rc collect_rc)
{
    char detail[256], sig[32];
    if (s->stop == STOP_CANCEL) {
        finish(s, JOB_CANCELED, REASON_CANCELED, "canceled by the user");
    } else if (s->stop == STOP_TIMEOUT) {
        (void)snprintf(detail, sizeof(detail), "the agent ran longer than %llu s",
                       (unsigned long long)s->cfg->wall_timeout);
        finish(s, JOB_TIMED_OUT, REASON_TIMEOUT, detail);
    } else if (s->stop == STOP_LOGLIMIT) {
        (void)snprintf(detail, sizeof(detail), "the agent printed more than %llu bytes of log",
                       (unsigned long long)s->cfg->log_max_bytes);
        finish(s, JOB_FAILED, REASON_LOG_LIMIT, detail);
    } else if (r->status == SANDBOX_OOM) {
        (void)snprintf(detail, sizeof(detail), "the agent used more than %llu MiB of memory",
                       (unsigned long long)s->cfg->memory_mb);
        finish(s, JOB_FAILED, REASON_OOM, detail);
    } else if (r->status == SANDBOX_SIGNALED || r->status == SANDBOX_CANCELED) {
        (void)snprintf(detail, sizeof(detail), "the agent was killed by %s",
                       signal_name(r->signo, sig, sizeof(sig)));
        finish(s, JOB_FAILED, REASON_SIGNAL, detail);
    } else if (r->status == SANDBOX_RUNTIME_ERROR) {
        (void)snprintf(detail, sizeof(detail), "the agent exited with code %d", r->exit_code);
        finish(s, JOB_FAILED, REASON_EXIT_NONZERO, detail);
    } else if (r->status == SANDBOX_TIMEOUT) {
        finish(s, JOB_TIMED_OUT, REASON_TIMEOUT, "the backend stopped the agent at its time limit");
    } else if (r->status == SANDBOX_INTERNAL) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR,
               s->sb->error[0] ? s->sb->error : "the sandbox failed");
    } else if (collect_rc != RC_OK) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR,
               s->sb->error[0] ? s->sb->error : "collecting the outputs failed");
    } else if (cs->over_limit) {
        (void)snprintf(detail, sizeof(detail),
                       "the outputs exceed %llu bytes or %llu files; the first ones were kept",
                       (unsigned long long)s->cfg->output_max_bytes,
                       (unsigned long long)s->cfg->output_max_files);
        finish(s, JOB_FAILED, REASON_OUTPUT_LIMIT, detail);
    } else {
        finish(s, JOB_SUCCEEDED, REASON_NONE, NULL);
    }
}

static void
fail_sandbox(struct sup *s, const char *what)
{
    char detail[600];
    (void)snprintf(detail, sizeof(detail), "%s: %s", what,
                   s->sb && s->sb->error[0] ? s->sb->error : "backend error");
    (void)joblog_system(&s->log, "%s", detail);
    finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, detail);
}

static int
run(struct sup *s)
{
    const char *backend = json_get_str(s->job, "backend");
    const struct sandbox_ops *ops = sandbox_ops_by_name(backend ? backend : s->cfg->backend);
    enum job_state st = jobstore_state(s->job);
    bool recovering = st != JOB_QUEUED;
    struct sandbox_result res = {.status = SANDBOX_INTERNAL, .exit_code = -1};
    struct sandbox_collect_stats cs = {0};
    enum rc rc, collect_rc = RC_OK;

    if (ops == NULL) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "the job's backend is not compiled in");
        return 0;
    }
    if (!recovering && cancel_requested(s)) {
        finish(s, JOB_CANCELED, REASON_CANCELED, "canceled by the user");
        return 0;
    }
    if (config_split_argv(s->cfg->agent_command, &s->argv) != RC_OK || build_env(s) != RC_OK) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "cannot prepare the agent command");
        return 0;
    }
    s->sj = (struct sandbox_job){.id = s->id,
                                 .dir = s->job_dir,
                                 .dirfd = s->dirfd,
                                 .work_dir = s->work_dir,
                                 .argv = s->argv,
                                 .envp = s->envp,
                                 .timeout_s = s->cfg->wall_timeout};
    s->sb = sandbox_new(ops, s->cfg, &s->sj);
    if (s->sb == NULL) {
        finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "out of memory");
        return 0;
    }
    s->sb->on_output = output_cb;
    s->sb->on_persist = persist_cb;
    s->sb->cb_ctx = s;
    if (recovering && !(ops->caps & SANDBOX_CAP_REATTACH)) {
        (void)joblog_system(&s->log,
                            "the supervisor of this job was lost; %s sandboxes die "
                            "with it and cannot be re-attached",
                            ops->name);
        finish(s, JOB_FAILED, REASON_INTERRUPTED, "the host lost the job (supervisor ended)");
        /* Whatever the lost sandbox left (work dir, cgroups) goes now. */
        if (sandbox_init(s->sb) == RC_OK)
            RC_IGNORE(sandbox_destroy(s->sb));
        RC_IGNORE(fs_rmtree_at(AT_FDCWD, s->work_dir));
        return 0;
    }
    uint64_t pos[2] = {0, 0};
    if (recovering) {
        json_object *saved = NULL;
        if (json_object_object_get_ex(s->job, "sandbox", &saved) &&
            json_object_is_type(saved, json_type_object)) {
            json_object_put(s->sb->state);
            s->sb->state = json_object_get(saved);
        }
        if (joblog_recover_positions(s->dirfd, pos) != RC_OK)
            log_warn("cannot recover log positions; starting from 0");
        s->sb->resume_offset[0] = pos[0];
        s->sb->resume_offset[1] = pos[1];
    }
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        line_ctx[i] = (struct line_ctx){s, i == 0 ? JOBLOG_STDOUT : JOBLOG_STDERR};
        s->split[i] = logsplit_new(s->cfg->log_line_max, pos[i], line_cb, &line_ctx[i]);
        if (s->split[i] == NULL) {
            finish(s, JOB_FAILED, REASON_SANDBOX_ERROR, "out of memory");
            return 0;
        }
    }
    int64_t started = clock_mono_ms();
    s->sb->deadline_ms = started + (int64_t)s->cfg->wall_timeout * 1000 + 600000;
    rc = sandbox_init(s->sb);
    if (rc != RC_OK) {
        fail_sandbox(s, "the sandbox backend could not start");
        goto destroy;
    }
    if (!recovering) {
        json_set_i64(s->job, "staging_ms", clock_real_ms());
        if (set_state(s, JOB_STAGING, REASON_NONE, NULL) != RC_OK)
            goto destroy;
        (void)joblog_system(&s->log, "staging on backend %s", ops->name);
        if (stage_work(s) != RC_OK) {
            (void)sandbox_fail(s->sb, "cannot stage the work directory");
            fail_sandbox(s, "staging failed");
            goto destroy;
        }
        rc = sandbox_start(s->sb);
        if (rc != RC_OK) {
            fail_sandbox(s, "the sandbox could not start");
            goto destroy;
        }
        if (persist_cb(s, s->sb) != RC_OK || set_state(s, JOB_RUNNING, REASON_NONE, NULL) != RC_OK)
            goto destroy;
    } else {
        (void)joblog_system(&s->log, "supervisor restarted: re-attaching to the %s sandbox",
                            ops->name);
        /* Died while staging: the work dir may be half made, and the backend may have to
         * start afresh from it (attach decides by its own recorded phase). */
        if (st == JOB_STAGING && stage_work(s) != RC_OK) {
            (void)sandbox_fail(s->sb, "cannot stage the work directory");
            fail_sandbox(s, "staging failed");
            goto destroy;
        }
        rc = sandbox_attach(s->sb);
        if (rc != RC_OK) {
            fail_sandbox(s, "re-attaching to the sandbox failed");
            goto destroy;
        }
        if (st == JOB_STAGING && (persist_cb(s, s->sb) != RC_OK ||
                                  set_state(s, JOB_RUNNING, REASON_NONE, NULL) != RC_OK))
            goto destroy;
        int64_t wall0 = json_get_i64(s->job, "started_ms", 0);
        if (wall0 > 0)
            started -= clock_real_ms() - wall0;
    }
    if (jobstore_state(s->job) == JOB_RUNNING) {
        int64_t deadline = started + (int64_t)s->cfg->wall_timeout * 1000;
        rc = run_loop(s, deadline, &res);
        if (rc != RC_OK) {
            fail_sandbox(s, "the sandbox failed while the agent ran");
            goto destroy;
        }
        record_result(s, &res);
        if (res.status == SANDBOX_INTERNAL) {
            fail_sandbox(s, "the sandbox failed");
            goto destroy;
        }
        if (res.exit_code >= 0)
            (void)joblog_system(&s->log, "agent exited with code %d after %.1f s", res.exit_code,
                                (double)res.wall_ms / 1000.0);
        if (set_state(s, JOB_COLLECTING, REASON_NONE, NULL) != RC_OK)
            goto destroy;
    } else {
        /* Recovered in collecting: the agent's result and why it stopped are in job.json. */
        const char *saved = json_get_str(s->job, "result");
        res.status = SANDBOX_OK;
        for (int i = 0; saved != NULL && i < SANDBOX_STATUS__MAX; i++)
            if (strcmp(saved, sandbox_status_str((enum sandbox_status)i)) == 0)
                res.status = (enum sandbox_status)i;
        res.exit_code = (int)json_get_i64(s->job, "exit_code", -1);
        res.signo = (int)json_get_i64(s->job, "signal", 0);
        int64_t stop = json_get_i64(s->job, "stop", STOP_NONE);
        s->stop = stop >= STOP_NONE && stop <= STOP_LOGLIMIT ? (enum stop)stop : STOP_NONE;
    }
    collect_rc = collect(s, &cs);
    if (collect_rc == RC_OK)
        (void)joblog_system(&s->log, "collected %llu output files (%llu bytes)%s",
                            (unsigned long long)cs.files, (unsigned long long)cs.bytes,
                            cs.skipped ? "; links and special files were skipped" : "");
    else
        (void)joblog_system(&s->log, "collecting outputs failed: %s", s->sb->error);
    conclude(s, &res, &cs, collect_rc);
destroy:
    if (s->sb != NULL) {
        if (sandbox_destroy(s->sb) != RC_OK)
            log_warn("destroying the sandbox failed: %s", s->sb->error);
    }
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, s->work_dir));
    (void)unlinkat(s->dirfd, "cancel", 0);
    return 0;
}

static int
take_lock(struct sup *s)
{
    const char *env = getenv("LABBOX_LOCK_FD");
    if (env != NULL) {
        int fd = (int)strtol(env, NULL, 10);
        unsetenv("LABBOX_LOCK_FD");
        if (fd > 2 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
            return fd;
    }
    int fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
supervisor_main(const struct config *cfg, const char *id)
{
    struct sup s = {.cfg = cfg, .id = id, .dirfd = -1};
    int status = 1, lockfd = -1;
    char tag[64];
    (void)snprintf(tag, sizeof(tag), "job=%s", id);
    log_set_tag(tag);
    (void)signal(SIGPIPE, SIG_IGN);
    /* serve's threads may have had sockets open while it spawned us: keep only stdio and the
     * lock (fd 3), so nothing of serve's can ever be passed on to a sandbox. */
    (void)close_range(getenv("LABBOX_LOCK_FD") != NULL ? 4 : 3, ~0U, 0);
    s.log.fd = -1;
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
    (void)snprintf(s.job_dir, sizeof(s.job_dir), "%s/jobs/%s", cfg->data_dir, id);
    (void)snprintf(s.work_dir, sizeof(s.work_dir), "%s/%s", cfg->sandbox_dir, id);
    if (jobstore_read(s.dirfd, &s.job) != RC_OK || filetype_init() != RC_OK ||
        joblog_open(&s.log, s.dirfd, cfg->log_max_bytes) != RC_OK)
        goto out;
    if (jobstate_is_terminal(jobstore_state(s.job))) {
        status = 0;
        goto out;
    }
    status = run(&s);
out:
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++)
        logsplit_free(s.split[i]);
    sandbox_free(s.sb);
    for (size_t i = 0; i < ENV_MAX && s.envp[i]; i++)
        free(s.envp[i]);
    config_free_argv(s.argv);
    json_object_put(s.job);
    joblog_close(&s.log);
    if (s.dirfd >= 0)
        close(s.dirfd);
    jobstore_close(&s.js);
    filetype_fini();
    if (lockfd >= 0)
        close(lockfd);
    return status;
}
