/* sandbox_local: the default backend: bubblewrap namespaces on this host.
 *
 * Theory of operation. start() forks a child that puts itself in a new process group, joins
 * the job's cgroups (v1 memory+pids or a v2 leaf, where the host lets root create them), sets
 * rlimits, drops to the sandbox user and execs bwrap with every namespace unshared
 * (--unshare-all, the network too unless network = on; no nested user namespaces),
 * --die-with-parent, --new-session and a seccomp filter that refuses kernel interfaces agents
 * do not need (keyctl, bpf, io_uring, ptrace, modules...). The host's /usr (and the /bin, /lib
 * symlinks into it) is bound read-only, /etc/passwd and /etc/group are our own (root, nobody,
 * the agent); /workspace is the job's work dir under sandbox_dir, with its inputs/ bound
 * read-only over it; /tmp is a private tmpfs. Only the agent's stdio reaches it: every other
 * fd is closed at exec. stdout and
 * stderr are two pipes that poll() drains. Exec failures in the child travel back over a
 * CLOEXEC pipe as an errno. The wall clock is the supervisor's: on timeout or cancel it calls
 * cancel(), which SIGKILLs bwrap; --die-with-parent then kills the sandbox's pid 1 and with it
 * the whole pid namespace. Local sandboxes cannot be re-attached: they die with the supervisor.
 */
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "defaults.h"
#include "jobs/collect.h"
#include "log.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

#define BWRAP_PATH "/usr/bin/bwrap"
#define NOBODY_ID  65534
#define CG_V1_MEM  "/sys/fs/cgroup/memory"
#define CG_V1_PIDS "/sys/fs/cgroup/pids"
#define CG_V1_CPU  "/sys/fs/cgroup/cpuacct"
#define CG_V2_ROOT "/sys/fs/cgroup"
#define MAX_ARGS   96

/* The architectures whose seccomp filter we build (elsewhere the sandbox runs without one). */
#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

struct local {
    pid_t pid;                       /* bwrap, -1 when none */
    int out_fd[SANDBOX_STREAM__MAX]; /* read ends of stdout/stderr, -1 at EOF */
    int64_t started_ms;              /* CLOCK_MONOTONIC */
    int64_t exited_ms;               /* when waitpid saw the exit, 0 before */
    int wstatus;                     /* from wait4 */
    struct rusage ru;                /* from wait4 */
    uid_t uid;                       /* sandbox user */
    gid_t gid;
    bool killed;       /* cancel() sent SIGKILL */
    int status_fd;     /* bwrap --json-status-fd read end, -1 at EOF */
    char status[1024]; /* what bwrap reported there */
    size_t nstatus;
    char cg_mem[256];  /* cgroup v1 memory dir, or v2 leaf, "" if none */
    char cg_pids[256]; /* cgroup v1 pids dir, "" if none */
    char cg_cpu[256];  /* cgroup v1 cpuacct dir, "" if none */
    bool cg_v2;
};

/*** cgroups ***/

static bool
write_text(const char *dir, const char *file, const char *text)
{
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static uint64_t
read_u64(const char *dir, const char *file, const char *key)
{
    char path[512], buf[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    const char *p = buf;
    if (key != NULL) {
        size_t kl = strlen(key);
        for (p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                p += kl + 1;
                break;
            }
        }
        if (p == NULL)
            return 0;
    }
    return strtoull(p, NULL, 10);
}

/* Make a cgroup dir for the job under parent/labbox; "" on failure (no cgroup then). */
static void
cg_make(const char *parent, const char *id, char *out, size_t outlen)
{
    char base[192];
    out[0] = '\0';
    if (access(parent, W_OK) != 0)
        return;
    (void)snprintf(base, sizeof(base), "%s/labbox", parent);
    if (mkdir(base, 0755) != 0 && errno != EEXIST)
        return;
    if ((size_t)snprintf(out, outlen, "%s/%.32s", base, id) >= outlen) {
        out[0] = '\0';
        return;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        out[0] = '\0';
}

static void
cg_setup(struct sandbox *sb, struct local *lc)
{
    char v[64];
    const struct config *cfg = sb->cfg;
    if (access(CG_V2_ROOT "/cgroup.controllers", R_OK) == 0) {
        /* cgroup v2: a leaf under /sys/fs/cgroup/labbox with memory and pids enabled. */
        char base[256];
        (void)snprintf(base, sizeof(base), CG_V2_ROOT "/labbox");
        if (mkdir(base, 0755) != 0 && errno != EEXIST)
            return;
        (void)write_text(CG_V2_ROOT, "cgroup.subtree_control", "+memory +pids");
        (void)write_text(base, "cgroup.subtree_control", "+memory +pids");
        cg_make(CG_V2_ROOT, sb->job->id, lc->cg_mem, sizeof(lc->cg_mem));
        if (lc->cg_mem[0] == '\0')
            return;
        lc->cg_v2 = true;
        (void)snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->memory_mb << 20);
        (void)write_text(lc->cg_mem, "memory.max", v);
        (void)write_text(lc->cg_mem, "memory.swap.max", "0");
        (void)snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->pids);
        (void)write_text(lc->cg_mem, "pids.max", v);
        return;
    }
    cg_make(CG_V1_MEM, sb->job->id, lc->cg_mem, sizeof(lc->cg_mem));
    if (lc->cg_mem[0] != '\0') {
        (void)snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->memory_mb << 20);
        if (!write_text(lc->cg_mem, "memory.limit_in_bytes", v)) {
            (void)rmdir(lc->cg_mem);
            lc->cg_mem[0] = '\0';
        } else {
            (void)write_text(lc->cg_mem, "memory.memsw.limit_in_bytes", v);
            (void)write_text(lc->cg_mem, "memory.swappiness", "0");
        }
    }
    cg_make(CG_V1_CPU, sb->job->id, lc->cg_cpu, sizeof(lc->cg_cpu));
    cg_make(CG_V1_PIDS, sb->job->id, lc->cg_pids, sizeof(lc->cg_pids));
    if (lc->cg_pids[0] != '\0') {
        (void)snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->pids);
        if (!write_text(lc->cg_pids, "pids.max", v)) {
            (void)rmdir(lc->cg_pids);
            lc->cg_pids[0] = '\0';
        }
    }
}

/* The cgroup dirs a job of this id would have, for a supervisor that lost track of them. */
static void
cg_guess(struct sandbox *sb, struct local *lc)
{
    if (lc->cg_mem[0] != '\0' || lc->cg_pids[0] != '\0' || lc->cg_cpu[0] != '\0')
        return;
    if (access(CG_V2_ROOT "/cgroup.controllers", R_OK) == 0) {
        (void)snprintf(lc->cg_mem, sizeof(lc->cg_mem), CG_V2_ROOT "/labbox/%.32s", sb->job->id);
        return;
    }
    (void)snprintf(lc->cg_mem, sizeof(lc->cg_mem), CG_V1_MEM "/labbox/%.32s", sb->job->id);
    (void)snprintf(lc->cg_pids, sizeof(lc->cg_pids), CG_V1_PIDS "/labbox/%.32s", sb->job->id);
    (void)snprintf(lc->cg_cpu, sizeof(lc->cg_cpu), CG_V1_CPU "/labbox/%.32s", sb->job->id);
}

static void
cg_remove(struct local *lc)
{
    /* A cgroup can only be removed once empty; the sandbox is dead by now. */
    for (int i = 0; i < 20; i++) {
        bool left = false;
        if (lc->cg_mem[0] && rmdir(lc->cg_mem) != 0 && errno == EBUSY)
            left = true;
        else
            lc->cg_mem[0] = '\0';
        if (lc->cg_pids[0] && rmdir(lc->cg_pids) != 0 && errno == EBUSY)
            left = true;
        else
            lc->cg_pids[0] = '\0';
        if (lc->cg_cpu[0] && rmdir(lc->cg_cpu) != 0 && errno == EBUSY)
            left = true;
        else
            lc->cg_cpu[0] = '\0';
        if (!left)
            return;
        usleep(50000);
    }
}

/*** the sandbox user ***/

static enum rc
resolve_user(struct sandbox *sb, struct local *lc)
{
    const char *u = sb->cfg->sandbox_user;
    lc->uid = NOBODY_ID;
    lc->gid = NOBODY_ID;
    if (geteuid() != 0) {
        /* Not root: the sandbox runs as we do (unprivileged user namespaces). */
        lc->uid = geteuid();
        lc->gid = getegid();
        return RC_OK;
    }
    if (u[0] == '\0')
        return RC_OK;
    char *end = NULL;
    unsigned long n = strtoul(u, &end, 10);
    if (end != u && *end == '\0') {
        if (n == 0)
            return sandbox_fail(sb, "sandbox_user must not be root");
        lc->uid = (uid_t)n;
        lc->gid = (gid_t)n;
        return RC_OK;
    }
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(u, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return sandbox_fail(sb, "sandbox_user %s does not exist", u);
    if (pw.pw_uid == 0)
        return sandbox_fail(sb, "sandbox_user must not be root");
    lc->uid = pw.pw_uid;
    lc->gid = pw.pw_gid;
    return RC_OK;
}

/* Give the work tree to the sandbox user, so the agent can write /workspace. */
static enum rc
chown_tree(int dfd, uid_t uid, gid_t gid, int depth)
{
    if (depth > 32)
        return RC_TOOBIG;
    if (fchown(dfd, uid, gid) != 0)
        return RC_IO;
    DIR *d = fs_opendir(dfd);
    if (d == NULL)
        return RC_IO;
    enum rc rc = RC_OK;
    struct dirent *de;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (depth == 0 && strcmp(de->d_name, SANDBOX_INPUTS_DIR) == 0))
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? RC_IO : chown_tree(sub, uid, gid, depth + 1);
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode)) {
            if (fchownat(dfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
                rc = RC_IO;
        }
    }
    closedir(d);
    return rc;
}

/*** bwrap command line ***/

struct args {
    char *v[MAX_ARGS];
    size_t n;
};

static void
add(struct args *a, const char *s)
{
    /* execve wants char *const[]; bwrap never writes its arguments. */
    if (a->n + 1 < MAX_ARGS)
        a->v[a->n++] = (char *)(uintptr_t)s;
}

static void
add_link_or_bind(struct args *a, const char *path)
{
    /* On merged-/usr hosts /bin, /lib... are symlinks into /usr: recreate them. */
    static char targets[8][256];
    static size_t used;
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISLNK(st.st_mode) && used < 8) {
        ssize_t n = readlink(path, targets[used], sizeof(targets[used]) - 1);
        if (n <= 0)
            return;
        targets[used][n] = '\0';
        add(a, "--symlink");
        add(a, targets[used++]);
        add(a, path);
    } else if (S_ISDIR(st.st_mode)) {
        add(a, "--ro-bind");
        add(a, path);
        add(a, path);
    }
}

static void
build_args(struct sandbox *sb, struct args *a, char *inputs, size_t inlen)
{
    const struct sandbox_job *job = sb->job;
    add(a, BWRAP_PATH);
    add(a, "--unshare-all");
    /* A user namespace of its own, and none further inside: nested user namespaces are the
     * kernel attack surface an agent has least business with. */
    add(a, "--unshare-user");
    add(a, "--disable-userns");
    if (sb->cfg->network)
        add(a, "--share-net");
    add(a, "--die-with-parent");
    add(a, "--new-session");
    /* bwrap reports {"child-pid": N} once the sandbox is set up: without it, a failure is
     * bwrap's own, not the agent's. The child dup2s the status pipe to fd 3. */
    add(a, "--json-status-fd");
    add(a, "3");
    add(a, "--hostname");
    add(a, "labbox");
    add(a, "--ro-bind");
    add(a, "/usr");
    add(a, "/usr");
    add_link_or_bind(a, "/bin");
    add_link_or_bind(a, "/sbin");
    add_link_or_bind(a, "/lib");
    add_link_or_bind(a, "/lib64");
    add_link_or_bind(a, "/lib32");
    static const char *const etc[] = {"/etc/alternatives", "/etc/ssl", "/etc/localtime",
                                      "/etc/mime.types", "/etc/ld.so.cache"};
    for (size_t i = 0; i < sizeof(etc) / sizeof(etc[0]); i++) {
        add(a, "--ro-bind-try");
        add(a, etc[i]);
        add(a, etc[i]);
    }
    if (sb->cfg->network) {
        add(a, "--ro-bind-try");
        add(a, "/etc/resolv.conf");
        add(a, "/etc/resolv.conf");
        add(a, "--ro-bind-try");
        add(a, "/etc/hosts");
        add(a, "/etc/hosts");
    }
    /* Our own passwd and group (written by the child to fds 4 and 5): the agent learns
     * nothing of the host's users, and its uid still has a name. */
#ifdef SECCOMP_ARCH
    add(a, "--seccomp"); /* the child writes the program to fd 6 */
    add(a, "6");
#endif
    add(a, "--ro-bind-data");
    add(a, "4");
    add(a, "/etc/passwd");
    add(a, "--ro-bind-data");
    add(a, "5");
    add(a, "/etc/group");
    add(a, "--proc");
    add(a, "/proc");
    add(a, "--dev");
    add(a, "/dev");
    add(a, "--tmpfs");
    add(a, "/tmp");
    add(a, "--bind");
    add(a, job->work_dir);
    add(a, "/workspace");
    (void)snprintf(inputs, inlen, "%s/inputs", job->work_dir);
    add(a, "--ro-bind");
    add(a, inputs);
    add(a, "/workspace/inputs");
    add(a, "--chdir");
    add(a, "/workspace");
    add(a, "--");
    for (char *const *p = job->argv; *p != NULL; p++)
        add(a, *p);
    a->v[a->n] = NULL;
}

/*** the child ***/

static void
set_limit(int res, uint64_t v)
{
    struct rlimit rl = {(rlim_t)v, (rlim_t)v};
    (void)setrlimit(res, &rl);
}

static void
join_cgroup(const char *dir)
{
    char pid[32];
    if (dir[0] == '\0')
        return;
    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    (void)write_text(dir, "cgroup.procs", pid);
}

/*** seccomp ***/

/* System calls an experiment agent has no use for and that widen the kernel's attack surface:
 * they fail with EPERM. Everything else is allowed (a deny list: agents run arbitrary
 * interpreters and tools). Each entry is guarded, so a libc without one still compiles. */
static const int denied_syscalls[] = {
#ifdef SYS_keyctl
    SYS_keyctl,
#endif
#ifdef SYS_add_key
    SYS_add_key,
#endif
#ifdef SYS_request_key
    SYS_request_key,
#endif
#ifdef SYS_bpf
    SYS_bpf,
#endif
#ifdef SYS_perf_event_open
    SYS_perf_event_open,
#endif
#ifdef SYS_userfaultfd
    SYS_userfaultfd,
#endif
#ifdef SYS_io_uring_setup
    SYS_io_uring_setup,
#endif
#ifdef SYS_io_uring_enter
    SYS_io_uring_enter,
#endif
#ifdef SYS_io_uring_register
    SYS_io_uring_register,
#endif
#ifdef SYS_kexec_load
    SYS_kexec_load,
#endif
#ifdef SYS_kexec_file_load
    SYS_kexec_file_load,
#endif
#ifdef SYS_init_module
    SYS_init_module,
#endif
#ifdef SYS_finit_module
    SYS_finit_module,
#endif
#ifdef SYS_delete_module
    SYS_delete_module,
#endif
#ifdef SYS_open_by_handle_at
    SYS_open_by_handle_at,
#endif
#ifdef SYS_name_to_handle_at
    SYS_name_to_handle_at,
#endif
#ifdef SYS_acct
    SYS_acct,
#endif
#ifdef SYS_swapon
    SYS_swapon,
#endif
#ifdef SYS_swapoff
    SYS_swapoff,
#endif
#ifdef SYS_reboot
    SYS_reboot,
#endif
#ifdef SYS_quotactl
    SYS_quotactl,
#endif
#ifdef SYS_lookup_dcookie
    SYS_lookup_dcookie,
#endif
#ifdef SYS_iopl
    SYS_iopl,
#endif
#ifdef SYS_ioperm
    SYS_ioperm,
#endif
#ifdef SYS_ptrace
    SYS_ptrace,
#endif
#ifdef SYS_process_vm_writev
    SYS_process_vm_writev,
#endif
#ifdef SYS_fanotify_init
    SYS_fanotify_init,
#endif
};
#define NDENIED (sizeof(denied_syscalls) / sizeof(denied_syscalls[0]))

#ifdef SECCOMP_ARCH
/* The BPF program: a foreign architecture (or x32) is killed, a denied call gets EPERM, the
 * rest is allowed. Fills prog (room for NDENIED + 8 instructions); returns the count. */
static size_t
seccomp_program(struct sock_filter *prog)
{
    size_t n = 0;
    prog[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    prog[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
    for (size_t i = 0; i < NDENIED; i++) {
        /* Equal: fall through to the next instruction, which is the EPERM return; the rest
         * of the list jumps over it. Built as: JEQ nr -> (0: deny, 1: next check). */
        prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                                 (unsigned)denied_syscalls[i], 0, 1);
        prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    return n;
}
#endif

/* Put the seccomp program into a memfd at fd 6 for bwrap's --seccomp. Child only. */
static int
seccomp_file(void)
{
#ifdef SECCOMP_ARCH
    struct sock_filter prog[2 * NDENIED + 8];
    size_t n = seccomp_program(prog);
    int fd = memfd_create("seccomp", 0);
    if (fd < 0 || write(fd, prog, n * sizeof(prog[0])) != (ssize_t)(n * sizeof(prog[0])) ||
        lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 6) < 0)
        return -1;
    if (fd != 6)
        close(fd);
#endif
    return 0;
}

/* Write the sandbox's /etc/passwd and /etc/group into memfds at fds 4 and 5 (inherited by
 * bwrap, which copies them in and closes them). Child only; -1 with errno on failure. */
static int
user_files(const struct local *lc)
{
    char text[512];
    for (int which = 0; which < 2; which++) {
        int k;
        if (which == 0)
            k = snprintf(text, sizeof(text),
                         "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                         "%s%u:%u:labbox agent:/tmp:/bin/sh\n",
                         lc->uid == 65534 ? "#agent:x:" : "agent:x:", (unsigned)lc->uid,
                         (unsigned)lc->gid);
        else
            k = snprintf(text, sizeof(text), "root:x:0:\nnogroup:x:65534:\n%s%u:\n",
                         lc->gid == 65534 ? "#agent:x:" : "agent:x:", (unsigned)lc->gid);
        if (k < 0 || (size_t)k >= sizeof(text))
            return -1;
        int fd = memfd_create(which == 0 ? "passwd" : "group", 0);
        if (fd < 0 || write(fd, text, (size_t)k) != k || lseek(fd, 0, SEEK_SET) != 0 ||
            dup2(fd, 4 + which) < 0)
            return -1;
        if (fd != 4 + which)
            close(fd);
    }
    return 0;
}

static __attribute__((noreturn)) void
child(struct sandbox *sb, struct local *lc, const struct args *a, int out_w, int err_w,
      int report_w, int status_w)
{
    const struct config *cfg = sb->cfg;
    int devnull = open("/dev/null", O_RDONLY);
    (void)setpgid(0, 0);
    /* report_w was moved above 3 by the parent, so fd 3 can take the status pipe. */
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 ||
        dup2(status_w, 3) < 0)
        goto fail;
    /* Nothing of the supervisor's (or of serve's, had anything leaked) may reach the sandbox:
     * fds 0-2 are the agent's stdio, 3 is bwrap's status pipe, everything above is closed at
     * exec (not now: the report pipe must stay open until then). */
    if (close_range(4, ~0U, CLOSE_RANGE_CLOEXEC) != 0 || user_files(lc) != 0 || seccomp_file() != 0)
        goto fail;
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    join_cgroup(lc->cg_mem);
    join_cgroup(lc->cg_pids);
    join_cgroup(lc->cg_cpu);
    set_limit(RLIMIT_CPU, cfg->cpu_time);
    set_limit(RLIMIT_FSIZE, cfg->file_size_mb << 20);
    set_limit(RLIMIT_CORE, 0);
    set_limit(RLIMIT_NOFILE, 1024);
    /* Without a memory cgroup, the address space limit is the memory limit. */
    if (lc->cg_mem[0] == '\0')
        set_limit(RLIMIT_AS, cfg->memory_mb << 20);
    /* RLIMIT_NPROC counts every process of the user: without a pids cgroup it is the cap. */
    if (lc->cg_pids[0] == '\0' && !lc->cg_v2)
        set_limit(RLIMIT_NPROC, cfg->pids);
    if (geteuid() == 0) {
        if (setgroups(0, NULL) != 0 || setgid(lc->gid) != 0 || setuid(lc->uid) != 0)
            goto fail;
    }
    execve(a->v[0], a->v, sb->job->envp);
fail:;
    int e = errno;
    ssize_t w = write(report_w, &e, sizeof(e));
    (void)w;
    _exit(127);
}

/*** hooks ***/

static enum rc
local_init(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    lc->pid = -1;
    lc->out_fd[0] = lc->out_fd[1] = -1;
    lc->status_fd = -1;
    return RC_OK;
}

static enum rc
local_start(struct sandbox *sb)
{
    struct local *lc = sb->priv;
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1}, st[2] = {-1, -1};
    char inputs[4096];
    struct args a = {.n = 0};
    enum rc rc = resolve_user(sb, lc);
    if (rc != RC_OK)
        return rc;
    int wfd = open(sb->job->work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (wfd < 0)
        return sandbox_fail(sb, "cannot open the work directory: %s", strerror(errno));
    if (geteuid() == 0)
        rc = chown_tree(wfd, lc->uid, lc->gid, 0);
    close(wfd);
    if (rc != RC_OK)
        return sandbox_fail(sb, "cannot hand the work directory to the sandbox user");
    cg_setup(sb, lc);
    build_args(sb, &a, inputs, sizeof(inputs));
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0 ||
        pipe2(st, O_CLOEXEC) != 0) {
        rc = sandbox_fail(sb, "pipe: %s", strerror(errno));
        goto out;
    }
    /* Keep the report pipe clear of fds 0-9: the child overwrites 0-6. */
    if (rep[1] < 10) {
        int moved = fcntl(rep[1], F_DUPFD_CLOEXEC, 10);
        close(rep[1]);
        rep[1] = moved;
        if (moved < 0) {
            rc = sandbox_fail(sb, "fcntl: %s", strerror(errno));
            goto out;
        }
    }
    lc->started_ms = clock_mono_ms();
    pid_t pid = fork();
    if (pid < 0) {
        rc = sandbox_fail(sb, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(sb, lc, &a, out[1], err[1], rep[1], st[1]);
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
    json_object_object_add(sb->state, "pid", json_object_new_int64(pid));
    rc = RC_OK;
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
        if (rep[i] >= 0)
            close(rep[i]);
        if (st[i] >= 0)
            close(st[i]);
    }
    return rc;
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

static bool
was_oom(struct local *lc)
{
    if (lc->cg_mem[0] == '\0')
        return false;
    if (lc->cg_v2)
        return read_u64(lc->cg_mem, "memory.events", "oom_kill") > 0;
    return read_u64(lc->cg_mem, "memory.oom_control", "oom_kill") > 0 ||
           read_u64(lc->cg_mem, "memory.failcnt", NULL) > 0;
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
    uint64_t cg_ns = lc->cg_v2 ? read_u64(lc->cg_mem, "cpu.stat", "usage_usec") * 1000
                               : (lc->cg_cpu[0] ? read_u64(lc->cg_cpu, "cpuacct.usage", NULL) : 0);
    if (cg_ns / 1000000 > out->cpu_ms)
        out->cpu_ms = cg_ns / 1000000;
    if (lc->cg_mem[0] != '\0') {
        uint64_t peak = lc->cg_v2 ? read_u64(lc->cg_mem, "memory.peak", NULL)
                                  : read_u64(lc->cg_mem, "memory.max_usage_in_bytes", NULL);
        if (peak / 1024 > out->max_rss_kb)
            out->max_rss_kb = peak / 1024;
    }
    /* bwrap reports a signal-killed pid 1 as 128 + signal, like a shell; the mapper knows. The
     * memory cgroup's counters are evidence of an OOM kill only for a SIGKILL we did not send
     * (memory.failcnt also counts reclaimed page cache). */
    sandbox_result_from_wait(out, lc->wstatus, false);
    if (out->signo == SIGKILL && !lc->killed && was_oom(lc))
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

static enum rc
local_collect(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out)
{
    char path[4096];
    struct collect_limits lim = {sb->cfg->output_max_bytes, sb->cfg->output_max_files};
    memset(out, 0, sizeof(*out));
    int k = snprintf(path, sizeof(path), "%s/" SANDBOX_OUTPUTS_DIR, sb->job->work_dir);
    if (k < 0 || (size_t)k >= sizeof(path))
        return sandbox_fail(sb, "the work directory's path is too long");
    int src = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
    cg_guess(sb, lc);
    cg_remove(lc);
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
    if (access(BWRAP_PATH, X_OK) != 0)
        return sandbox_fail(sb, "bubblewrap is not installed (%s)", BWRAP_PATH);
    return RC_OK;
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
    .reap_orphans = sandbox_nop_reap_orphans,
};
