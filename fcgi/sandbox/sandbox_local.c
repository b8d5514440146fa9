/* sandbox_local: the default backend: bubblewrap namespaces on this host.
 *
 * Theory of operation. start() decides which limits this host can enforce and refuses to run
 * when one that is wanted cannot be (unless allow_unenforced names it); takes a uid of the
 * job's own (sandbox_walls.c); gives the job its capped workspace filesystem
 * (sandbox_local_fs.c) and cgroups (sandbox_local_cgroup.c); then forks a child that puts
 * itself in a new process group, joins the cgroups, sets rlimits, drops to the job's uid and
 * execs bwrap (its command line and seccomp program: sandbox_local_args.c) with every
 * namespace unshared, the network's too (network = on adds slirp4netns in front of it:
 * sandbox_local_net.c), no nested user namespaces, --die-with-parent and --new-session. The
 * host's /usr (and the /bin, /lib symlinks into it) is bound read-only, /etc/passwd and
 * /etc/group are our own (root, nobody, the agent); /workspace and /tmp come from the job's
 * filesystem by fd, /workspace/inputs read-only from the staged inputs; host-revealing /proc
 * files are covered. Only the agent's stdio reaches it: every other fd is closed at exec.
 * stdout and stderr are two pipes that poll() drains. Exec failures in the child travel back
 * over a CLOEXEC pipe as an errno. The wall clock is the supervisor's: on timeout or cancel it
 * calls cancel(), which SIGKILLs bwrap; --die-with-parent then kills the sandbox's pid 1 and
 * with it the whole pid namespace. Local sandboxes cannot be re-attached: they die with the
 * supervisor, and so do their workspace mount (it lives in the supervisor's own mount
 * namespace), their uid (an flock) and slirp4netns (its exit fd); destroy() and reap_orphans()
 * remove what is left on disk and in the cgroup tree.
 */
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "defaults.h"
#include "jobs/collect.h"
#include "log.h"
#include "sandbox/sandbox_local.h"
#include "util/caps.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

#define SETUP_MS 15000 /* bwrap's set-up and slirp4netns's, at most */
#define MOVED_FD 32    /* the child moves its fds here before placing them */

struct local {
    pid_t pid;                       /* bwrap, -1 when none */
    int out_fd[SANDBOX_STREAM__MAX]; /* read ends of stdout/stderr, -1 at EOF */
    int64_t started_ms;              /* CLOCK_MONOTONIC */
    int64_t exited_ms;               /* when waitpid saw the exit, 0 before */
    int wstatus;                     /* from wait4 */
    struct rusage ru;                /* from wait4 */
    bool priv;                       /* labbox holds LOCAL_CAPS: the job gets a uid of its own */
    uid_t uid;                       /* the job's own uid (or ours, without the privileges) */
    gid_t gid;
    int uid_lock;      /* holds the uid for this job, -1 if none */
    bool killed;       /* cancel() sent SIGKILL */
    int status_fd;     /* bwrap --json-status-fd read end, -1 at EOF */
    char status[1024]; /* what bwrap reported there */
    size_t nstatus;
    struct cg cg;     /* the job's cgroups ("" dirs where none) */
    unsigned applied; /* LIMIT_* bits its cgroups enforce */
    struct ws ws;     /* /workspace and /tmp */
    struct net net;   /* slirp4netns, network = on */
};

/*** what this host can enforce ***/

static void
local_probe(const struct config *cfg, struct local_offer *o)
{
    memset(o, 0, sizeof(*o));
    uint64_t lacks = caps_missing(LOCAL_CAPS);
    o->priv = lacks == 0;
    if (!o->priv) {
        char names[160];
        caps_names(lacks, names, sizeof(names));
        (void)snprintf(o->lacks, sizeof(o->lacks), "labbox lacks %s", names);
    }
    cg_probe(cfg, o);
    const char *why = NULL;
    o->loop = o->priv && ws_available(&why);
    o->why[3] = why; /* LIMIT_DISK */
}

/* Which limits this job gets and whether the walls' privileges are there; RC_BACKEND when a
 * limit that is wanted cannot be had. */
static enum rc
local_plan(struct sandbox *sb, unsigned *offered, bool *priv)
{
    struct local_offer o;
    char why[400];
    local_probe(sb->cfg, &o);
    *offered = local_limits_offered(&o);
    *priv = o.priv;
    if (local_limits_decide(sb->cfg, &o, why, sizeof(why)) != 0)
        return sandbox_fail(sb, "%s", why);
    return RC_OK;
}

/* The name of the job's work dir (an alias of its id, never the id: it shows in mount tables
 * and cgroup paths anyone can read), which also names its cgroups. */
static const char *
work_name(const struct sandbox *sb)
{
    const char *slash = strrchr(sb->job->work_dir, '/');
    return slash != NULL ? slash + 1 : sb->job->work_dir;
}

/*** the child ***/

static void
set_limit(int res, uint64_t v)
{
    struct rlimit rl = {(rlim_t)v, (rlim_t)v};
    (void)setrlimit(res, &rl);
}

/* text into a memfd placed at fd; -1 on failure. Child only. */
static int
memfd_at(const char *name, const void *text, size_t len, int fd)
{
    int m = memfd_create(name, 0);
    if (m < 0 || write(m, text, len) != (ssize_t)len || lseek(m, 0, SEEK_SET) != 0 ||
        dup2(m, fd) < 0)
        return -1;
    if (m != fd)
        close(m);
    return 0;
}

/* The sandbox's /etc/passwd, /etc/group, seccomp program and (network on) resolv.conf. */
static int
child_files(const struct sandbox *sb, const struct local *lc)
{
    char passwd[512], group[256];
    int k =
        snprintf(passwd, sizeof(passwd),
                 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                 "%s%u:%u:labbox agent:/tmp:/bin/sh\n",
                 lc->uid == 65534 ? "#agent:x:" : "agent:x:", (unsigned)lc->uid, (unsigned)lc->gid);
    int g = snprintf(group, sizeof(group), "root:x:0:\nnogroup:x:65534:\n%s%u:\n",
                     lc->gid == 65534 ? "#agent:x:" : "agent:x:", (unsigned)lc->gid);
    struct sock_filter prog[LOCAL_SECCOMP_MAX];
    size_t n = local_seccomp_program(sb->cfg->network, prog);
    static const char resolv[] = "nameserver 10.0.2.3\n";
    if (k < 0 || (size_t)k >= sizeof(passwd) || g < 0 || (size_t)g >= sizeof(group) ||
        memfd_at("passwd", passwd, (size_t)k, LFD_PASSWD) != 0 ||
        memfd_at("group", group, (size_t)g, LFD_GROUP) != 0 ||
        (n > 0 && memfd_at("seccomp", prog, n * sizeof(prog[0]), LFD_SECCOMP) != 0) ||
        (sb->cfg->network && memfd_at("resolv", resolv, sizeof(resolv) - 1, LFD_RESOLV) != 0))
        return -1;
    return 0;
}

/* Place the fds bwrap inherits: src[i] goes to fd i (-1: none). Sources may sit anywhere,
 * targets included, so all move above MOVED_FD first. Child only. */
static int
place_fds(int src[LFD__END])
{
    for (int i = 0; i < LFD__END; i++)
        if (src[i] >= 0 && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, MOVED_FD)) < 0)
            return -1;
    for (int i = 0; i < LFD__END; i++) {
        if (src[i] >= 0 && dup2(src[i], i) < 0)
            return -1;
        if (src[i] < 0)
            (void)close(i); /* whatever of ours sits there; child_files may fill it */
    }
    return 0;
}

static __attribute__((noreturn)) void
child(struct sandbox *sb, struct local *lc, const struct local_argv *a, int out_w, int err_w,
      int report_w, int status_w, int block_r)
{
    const struct config *cfg = sb->cfg;
    int src[LFD__END];
    for (int i = 0; i < LFD__END; i++)
        src[i] = -1;
    src[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    src[1] = out_w;
    src[2] = err_w;
    src[LFD_STATUS] = status_w;
    src[LFD_WORKSPACE] = lc->ws.ws_fd;
    src[LFD_INPUTS] = lc->ws.inputs_fd;
    src[LFD_TMP] = lc->ws.tmp_fd;
    src[LFD_BLOCK] = block_r;
    (void)setpgid(0, 0);
    /* report_w was moved above MOVED_FD + LFD__END by the parent, out of the way. Nothing of
     * the supervisor's (or of serve's, had anything leaked) may reach the sandbox: fds 0-2 are
     * the agent's stdio, 3-11 bwrap's (enum local_fd), everything else is closed at exec
     * (not now: the report pipe must stay open until then). */
    if (src[0] < 0 || place_fds(src) != 0 || child_files(sb, lc) != 0 ||
        close_range(LFD__END, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        goto fail;
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    cg_join(&lc->cg);
    set_limit(RLIMIT_CPU, cfg->cpu_time);
    set_limit(RLIMIT_FSIZE, cfg->file_size_mb << 20);
    set_limit(RLIMIT_CORE, 0);
    set_limit(RLIMIT_NOFILE, 1024);
    /* Without a memory cgroup, the address space limit is the memory limit. */
    if (!(lc->applied & LIMIT_MEMORY))
        set_limit(RLIMIT_AS, cfg->memory_mb << 20);
    /* RLIMIT_NPROC counts every process of the uid, the job's own: without a pids cgroup it
     * is the cap. */
    if (!(lc->applied & LIMIT_PIDS))
        set_limit(RLIMIT_NPROC, cfg->pids);
    /* The job's uid, and not one capability of labbox's: bwrap refuses to run with any, and
     * nothing of them may reach the agent (the bounding set first: a uid change from root
     * takes CAP_SETPCAP away). */
    if (lc->priv) {
        caps_drop_bounding();
        if (setgroups(0, NULL) != 0 || setgid(lc->gid) != 0 || setuid(lc->uid) != 0)
            goto fail;
    }
    if (caps_drop_all() != RC_OK) {
        errno = errno ? errno : EPERM;
        goto fail;
    }
    execve(a->v[0], a->v, sb->job->envp);
fail:;
    int e = errno;
    ssize_t w = write(report_w, &e, sizeof(e));
    (void)w;
    _exit(127);
}

static void
read_status(struct local *lc)
{
    while (lc->status_fd >= 0) {
        char tmp[512];
        ssize_t r = read(lc->status_fd, tmp, sizeof(tmp));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            close(lc->status_fd);
            lc->status_fd = -1;
            return;
        }
        size_t room = sizeof(lc->status) - 1 - lc->nstatus;
        size_t take = (size_t)r < room ? (size_t)r : room;
        memcpy(lc->status + lc->nstatus, tmp, take);
        lc->nstatus += take;
        lc->status[lc->nstatus] = '\0';
    }
}

/* Read what is there on one pipe; closes it at EOF. */
static void
drain(struct sandbox *sb, struct local *lc, int s)
{
    char buf[65536];
    for (int rounds = 0; rounds < 16 && lc->out_fd[s] >= 0; rounds++) {
        ssize_t r = read(lc->out_fd[s], buf, sizeof(buf));
        if (r > 0) {
            sandbox_emit(sb, (enum sandbox_stream)s, buf, (size_t)r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close(lc->out_fd[s]);
        lc->out_fd[s] = -1;
    }
}

static void
fill_result(struct local *lc, struct sandbox_result *out)
{
    memset(out, 0, sizeof(*out));
    out->exit_code = -1;
    out->wall_ms = (uint64_t)(lc->exited_ms - lc->started_ms);
    out->cpu_ms = (uint64_t)(lc->ru.ru_utime.tv_sec + lc->ru.ru_stime.tv_sec) * 1000 +
                  (uint64_t)(lc->ru.ru_utime.tv_usec + lc->ru.ru_stime.tv_usec) / 1000;
    out->max_rss_kb = (uint64_t)lc->ru.ru_maxrss;
    /* bwrap does not always wait for its pid 1, so rusage can miss the agent: the cgroups
     * count everything that ran in the sandbox. */
    uint64_t cg_ns = 0, peak = 0;
    bool oom = false;
    cg_stats(&lc->cg, &cg_ns, &peak, &oom);
    if (cg_ns / 1000000 > out->cpu_ms)
        out->cpu_ms = cg_ns / 1000000;
    if (peak / 1024 > out->max_rss_kb)
        out->max_rss_kb = peak / 1024;
    out->disk_full = ws_full(&lc->ws);
    /* bwrap reports a signal-killed pid 1 as 128 + signal, like a shell; the mapper knows. The
     * memory cgroup's counters are evidence of an OOM kill only for a SIGKILL we did not send
     * (memory.failcnt also counts reclaimed page cache). */
    sandbox_result_from_wait(out, lc->wstatus, false);
    if (out->signo == SIGKILL && !lc->killed && oom)
        sandbox_result_from_wait(out, lc->wstatus, true);
}

static enum rc
local_poll(struct sandbox *sb, int timeout_ms, bool *out_done, struct sandbox_result *out)
{
    struct local *lc = sb->priv;
    struct pollfd pfd[SANDBOX_STREAM__MAX];
    nfds_t n = 0;
    *out_done = false;
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        if (lc->out_fd[i] >= 0) {
            pfd[n].fd = lc->out_fd[i];
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }
    }
    if (n > 0 && lc->exited_ms == 0) {
        int r = poll(pfd, n, timeout_ms);
        if (r < 0 && errno != EINTR)
            return sandbox_fail(sb, "poll: %s", strerror(errno));
    } else if (lc->exited_ms == 0) {
        usleep((useconds_t)timeout_ms * 1000);
    }
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++)
        drain(sb, lc, i);
    read_status(lc);
    if (lc->pid > 0 && lc->exited_ms == 0) {
        pid_t w = wait4(lc->pid, &lc->wstatus, WNOHANG, &lc->ru);
        if (w == lc->pid) {
            lc->exited_ms = clock_mono_ms();
            lc->pid = -1;
        }
    }
    if (lc->exited_ms != 0) {
        /* With the pid namespace gone, nothing can hold the pipes open for long. */
        bool open_left = lc->out_fd[0] >= 0 || lc->out_fd[1] >= 0;
        if (open_left && clock_mono_ms() - lc->exited_ms < 1000) {
            if (n > 0)
                (void)poll(pfd, n, 20);
            return RC_OK;
        }
        for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
            drain(sb, lc, i);
            if (lc->out_fd[i] >= 0) {
                close(lc->out_fd[i]);
                lc->out_fd[i] = -1;
            }
        }
        read_status(lc);
        fill_result(lc, out);
        if (strstr(lc->status, "\"child-pid\"") == NULL && !lc->killed) {
            out->status = SANDBOX_INTERNAL;
            (void)sandbox_fail(sb, "bubblewrap could not set up the sandbox (its message is in "
                                   "the log)");
        }
        *out_done = true;
    }
    return RC_OK;
}

static enum rc
local_cancel(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    if (lc->pid > 0) {
        lc->killed = true;
        (void)kill(-lc->pid, SIGKILL);
        (void)kill(lc->pid, SIGKILL);
    }
    return RC_OK;
}

/*** hooks ***/

static enum rc
local_init(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    lc->pid = -1;
    lc->out_fd[0] = lc->out_fd[1] = -1;
    lc->status_fd = -1;
    lc->uid_lock = -1;
    lc->ws.root_fd = lc->ws.ws_fd = lc->ws.inputs_fd = lc->ws.tmp_fd = lc->ws.lock_fd = -1;
    lc->net.slirp = -1;
    lc->net.exit_w = -1;
    return RC_OK;
}

/* The job's uid, workspace and cgroups, before the child is forked. */
static enum rc
prepare(struct sandbox *sb, struct local *lc)
{
    char err[400];
    unsigned offered = 0;
    enum rc rc = local_plan(sb, &offered, &lc->priv);
    if (rc != RC_OK)
        return rc;
    lc->uid = geteuid();
    lc->gid = getegid();
    if (lc->priv) {
        if (uid_check_host(sb->cfg, err, sizeof(err)) != RC_OK ||
            uid_take(sb->cfg, &lc->uid, &lc->uid_lock, err, sizeof(err)) != RC_OK)
            return sandbox_fail(sb, "%s", err);
        lc->gid = (gid_t)lc->uid;
    }
    if (ws_setup(&lc->ws, sb->cfg, sb->job->work_dir, (offered & LIMIT_DISK) != 0, lc->uid, lc->gid,
                 err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "%s", err);
    if (lc->priv && cg_create(sb->cfg, work_name(sb), local_limits_wanted(sb->cfg) & ~LIMIT_DISK,
                              &lc->cg, &lc->applied, err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "%s", err);
    return RC_OK;
}

/* Wait for bwrap's {"child-pid": N}; the pid or -1. */
static pid_t
wait_child_pid(struct local *lc, int64_t deadline)
{
    while (lc->status_fd >= 0 && strstr(lc->status, "}") == NULL) {
        struct pollfd p = {lc->status_fd, POLLIN, 0};
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR))
            return -1;
        read_status(lc);
    }
    const char *k = strstr(lc->status, "\"child-pid\"");
    const char *colon = k ? strchr(k, ':') : NULL;
    long pid = colon ? strtol(colon + 1, NULL, 10) : 0;
    return pid > 1 ? (pid_t)pid : -1;
}

/* network = on: slirp4netns in front of the sandbox's namespace, then let the agent run. */
static enum rc
connect_network(struct sandbox *sb, struct local *lc, int block_w)
{
    char err[300];
    int64_t deadline = clock_mono_ms() + SETUP_MS;
    pid_t pid = wait_child_pid(lc, deadline);
    if (pid < 0)
        return sandbox_fail(sb, "bubblewrap did not report the sandbox's pid");
    if (net_start(&lc->net, pid, lc->uid, lc->gid, deadline, err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "%s", err);
    if (write(block_w, "1", 1) != 1)
        return sandbox_fail(sb, "cannot release the agent: %s", strerror(errno));
    return RC_OK;
}

/* Fork the child that becomes bwrap; lc->pid, the pipes. */
static enum rc
spawn(struct sandbox *sb, struct local *lc, const struct local_argv *a)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1}, st[2] = {-1, -1};
    int blk[2] = {-1, -1};
    enum rc rc = RC_OK;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0 ||
        pipe2(st, O_CLOEXEC) != 0 || (sb->cfg->network && pipe2(blk, O_CLOEXEC) != 0)) {
        rc = sandbox_fail(sb, "pipe: %s", strerror(errno));
        goto out;
    }
    /* Keep the report pipe clear of everything the child moves and places. */
    int moved = fcntl(rep[1], F_DUPFD_CLOEXEC, MOVED_FD + LFD__END);
    close(rep[1]);
    rep[1] = moved;
    if (moved < 0) {
        rc = sandbox_fail(sb, "fcntl: %s", strerror(errno));
        goto out;
    }
    lc->started_ms = clock_mono_ms();
    pid_t pid = fork();
    if (pid < 0) {
        rc = sandbox_fail(sb, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(sb, lc, a, out[1], err[1], rep[1], st[1], blk[0]);
    lc->pid = pid;
    close(rep[1]);
    rep[1] = -1;
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(rep[0], &child_errno, sizeof(child_errno));
    } while (r < 0 && errno == EINTR);
    if (r == (ssize_t)sizeof(child_errno)) {
        (void)waitpid(pid, NULL, 0);
        lc->pid = -1;
        rc =
            sandbox_fail(sb, "cannot start bubblewrap (%s): %s", BWRAP_PATH, strerror(child_errno));
        goto out;
    }
    lc->out_fd[SANDBOX_STDOUT] = out[0];
    lc->out_fd[SANDBOX_STDERR] = err[0];
    lc->status_fd = st[0];
    out[0] = err[0] = st[0] = -1;
    (void)fcntl(lc->status_fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++)
        (void)fcntl(lc->out_fd[i], F_SETFL, O_NONBLOCK);
    if (sb->cfg->network)
        rc = connect_network(sb, lc, blk[1]);
out:;
    int *fds[] = {out, err, rep, st, blk};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        for (int k = 0; k < 2; k++)
            if (fds[i][k] >= 0)
                close(fds[i][k]);
    return rc;
}

static enum rc
local_start(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    struct local_argv a;
    enum rc rc = prepare(sb, lc);
    if (rc != RC_OK)
        return rc;
    struct local_args_in in = {.network = sb->cfg->network,
                               .tmp_fd = lc->ws.tmp_fd >= 0,
                               .tmp_bytes = sb->cfg->workspace_max_mb << 20,
                               .seccomp = true,
                               .argv = sb->job->argv};
    struct sock_filter probe[LOCAL_SECCOMP_MAX];
    in.seccomp = local_seccomp_program(false, probe) > 0;
    if (local_args_build(&in, &a) != RC_OK)
        return sandbox_fail(sb, "out of memory");
    rc = spawn(sb, lc, &a);
    local_args_free(&a);
    if (rc == RC_OK) {
        json_object_object_add(sb->state, "pid", json_object_new_int64(lc->pid));
        log_info("sandbox runs as uid %u, cgroup limits:%s%s%s, workspace: %s", (unsigned)lc->uid,
                 lc->applied & LIMIT_MEMORY ? " memory" : "",
                 lc->applied & LIMIT_PIDS ? " pids" : "", lc->applied & LIMIT_CPUS ? " cpus" : "",
                 lc->ws.mounted ? "a filesystem of its own" : "the staged directory");
    }
    return rc;
}

static enum rc
local_collect(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out)
{
    struct local *lc = sb->priv;
    struct collect_limits lim = {sb->cfg->output_max_bytes, sb->cfg->output_max_files};
    memset(out, 0, sizeof(*out));
    if (lc->ws.ws_fd < 0)
        return RC_OK; /* never started */
    int src =
        openat(lc->ws.ws_fd, SANDBOX_OUTPUTS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
            return RC_OK; /* no outputs, or something hostile in their place */
        return sandbox_fail(sb, "cannot open the outputs: %s", strerror(errno));
    }
    enum rc rc = collect_tree(src, outputs_dirfd, &lim, out);
    close(src);
    if (rc != RC_OK)
        return sandbox_fail(sb, "collecting outputs failed (%s)", rc_str(rc));
    return RC_OK;
}

static enum rc
local_destroy(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    if (lc->pid > 0) {
        (void)local_cancel(sb);
        (void)wait4(lc->pid, &lc->wstatus, 0, &lc->ru);
        lc->pid = -1;
    }
    for (int i = 0; i < SANDBOX_STREAM__MAX; i++) {
        if (lc->out_fd[i] >= 0)
            close(lc->out_fd[i]);
        lc->out_fd[i] = -1;
    }
    if (lc->status_fd >= 0)
        close(lc->status_fd);
    lc->status_fd = -1;
    net_stop(&lc->net);
    /* After a lost supervisor this instance never made the cgroups: find them by the id. */
    bool none = true;
    for (int c = 0; c < CG__MAX; c++)
        none = none && lc->cg.dir[c][0] == '\0';
    if (none && caps_missing(LOCAL_CAPS) == 0)
        cg_paths(sb->cfg, work_name(sb), &lc->cg);
    cg_remove(&lc->cg);
    bool had_image = lc->ws.mounted;
    ws_teardown(&lc->ws);
    /* Only now, with every process of the job gone, may its uid serve another job. */
    if (lc->uid_lock >= 0)
        close(lc->uid_lock);
    lc->uid_lock = -1;
    if (had_image)
        pool_fill(sb->cfg); /* an image for a later job, in place of the one this job had */
    return RC_OK;
}

static void
local_fini(struct sandbox *sb)
{
    if (sb->priv != NULL && sb->job != NULL)
        (void)local_destroy(sb);
}

static enum rc
local_check(struct sandbox *sb)
{
    struct local_offer o;
    char why[400];
    if (access(BWRAP_PATH, X_OK) != 0)
        return sandbox_fail(sb, "bubblewrap is not installed (%s)", BWRAP_PATH);
    if (sb->cfg->network && access(SLIRP_PATH, X_OK) != 0)
        return sandbox_fail(sb, "network = on needs slirp4netns (%s)", SLIRP_PATH);
    local_probe(sb->cfg, &o);
    if (local_limits_decide(sb->cfg, &o, why, sizeof(why)) != 0)
        return sandbox_fail(sb, "%s", why);
    if (o.priv && uid_check_host(sb->cfg, why, sizeof(why)) != RC_OK)
        return sandbox_fail(sb, "%s", why);
    if (sb->cfg->network && o.priv && !net_tun_usable(why, sizeof(why)))
        return sandbox_fail(sb, "%s", why);
    return RC_OK;
}

/* One entry of sandbox_dir: a job's work dir to remove when no live job claims it, nobody
 * holds it (a supervisor locks its work dir while it runs) and it is not brand new (staged a
 * moment ago for a job another instance is about to start). */
static bool
stale_work_dir(int dfd, const char *name, sandbox_claimed_fn *claimed, void *ctx)
{
    struct stat st;
    if (!id_is_valid(name, strlen(name)) || claimed(ctx, name))
        return false;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        clock_real_ms() / 1000 - st.st_mtime < 60)
        return false;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool free = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0)
        close(fd);
    return free;
}

static enum rc
local_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    int dfd = open(sb->cfg->sandbox_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? RC_OK
                               : sandbox_fail(sb, "cannot open sandbox_dir: %s", strerror(errno));
    DIR *d = fs_opendir(dfd);
    enum rc rc = d != NULL ? RC_OK : sandbox_fail(sb, "cannot read sandbox_dir");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (!stale_work_dir(dfd, de->d_name, claimed, ctx))
            continue;
        log_info("job=%s: removing its left-over work dir and cgroups", de->d_name);
        struct cg cg;
        cg_paths(sb->cfg, de->d_name, &cg);
        cg_remove(&cg);
        if (fs_rmtree_at(dfd, de->d_name) != RC_OK)
            rc = sandbox_fail(sb, "cannot remove all of %s/%s", sb->cfg->sandbox_dir, de->d_name);
    }
    if (d != NULL)
        closedir(d);
    close(dfd);
    /* Workspace images for the next jobs, where they get one. */
    struct local_offer o;
    local_probe(sb->cfg, &o);
    if (local_limits_offered(&o) & local_limits_wanted(sb->cfg) & LIMIT_DISK)
        pool_fill(sb->cfg);
    return rc;
}

const struct sandbox_ops sandbox_local_ops = {
    .name = "local",
    .caps = 0,
    .priv_size = sizeof(struct local),
    .init = local_init,
    .start = local_start,
    .attach = sandbox_noattach,
    .poll = local_poll,
    .cancel = local_cancel,
    .collect = local_collect,
    .destroy = local_destroy,
    .fini = local_fini,
    .check = local_check,
    .reap_orphans = local_reap_orphans,
};
