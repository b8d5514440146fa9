/* sandbox_local_args: bwrap's command line and the seccomp program of the local backend. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox_local.h"
#include "sandbox/sandbox_walls.h"

/*** the command line ***/

static bool
add(struct local_argv *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 128;
        char **nv = realloc(a->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return false;
        a->v = nv;
        a->cap = ncap;
    }
    /* execve wants char *const[]; bwrap never writes its arguments. */
    a->v[a->n++] = (char *)(uintptr_t)s;
    a->v[a->n] = NULL;
    return true;
}

static bool
add3(struct local_argv *a, const char *x, const char *y, const char *z)
{
    return add(a, x) && add(a, y) && (z == NULL || add(a, z));
}

/* A number as a string owned by the command line. */
static const char *
own(struct local_argv *a, unsigned long long v)
{
    char buf[64];
    if (a->nown >= sizeof(a->own) / sizeof(a->own[0]))
        return NULL;
    (void)snprintf(buf, sizeof(buf), "%llu", v);
    a->own[a->nown] = strdup(buf);
    return a->own[a->nown++];
}

static bool
add_fd(struct local_argv *a, const char *opt, int fd, const char *dest)
{
    static const char *const names[LFD__END] = {"0", "1", "2", "3", "4",  "5",
                                                "6", "7", "8", "9", "10", "11"};
    _Static_assert(LFD__END == 12, "names[] covers enum local_fd");
    return fd >= 0 && fd < LFD__END && add3(a, opt, names[fd], dest);
}

/* On merged-/usr hosts /bin, /lib... are symlinks into /usr: recreate them. */
static bool
add_link_or_bind(struct local_argv *a, const char *path)
{
    static char targets[8][256];
    static size_t used;
    struct stat st;
    if (lstat(path, &st) != 0)
        return true;
    if (S_ISLNK(st.st_mode) && used < 8) {
        ssize_t n = readlink(path, targets[used], sizeof(targets[used]) - 1);
        if (n <= 0)
            return true;
        targets[used][n] = '\0';
        return add3(a, "--symlink", targets[used++], path);
    }
    if (S_ISDIR(st.st_mode))
        return add3(a, "--ro-bind", path, path);
    return true;
}

/* Files of /proc that tell about the host rather than the sandbox (its boot arguments, kernel
 * configuration and symbols, modules, keys, scheduler and timer internals): each is covered
 * by /dev/null, which the sandbox cannot open (its bind is nodev). Only those this kernel has:
 * bwrap cannot create a missing mount point in /proc. */
static bool
add_proc_masks(struct local_argv *a)
{
    static const char *const masked[] = {
        "/proc/cmdline",       "/proc/config.gz",  "/proc/kallsyms",    "/proc/modules",
        "/proc/keys",          "/proc/key-users",  "/proc/sched_debug", "/proc/timer_list",
        "/proc/latency_stats", "/proc/bootconfig", "/proc/kcore",       "/proc/sysrq-trigger"};
    for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++)
        if (access(masked[i], F_OK) == 0 && !add3(a, "--ro-bind", "/dev/null", masked[i]))
            return false;
    return true;
}

static bool
add_root(struct local_argv *a, const struct local_args_in *in)
{
    bool ok = add3(a, "--ro-bind", "/usr", "/usr") && add_link_or_bind(a, "/bin") &&
              add_link_or_bind(a, "/sbin") && add_link_or_bind(a, "/lib") &&
              add_link_or_bind(a, "/lib64") && add_link_or_bind(a, "/lib32");
    static const char *const etc[] = {"/etc/alternatives", "/etc/ssl", "/etc/localtime",
                                      "/etc/mime.types", "/etc/ld.so.cache"};
    for (size_t i = 0; ok && i < sizeof(etc) / sizeof(etc[0]); i++)
        ok = add3(a, "--ro-bind-try", etc[i], etc[i]);
    if (ok && in->network)
        ok = add3(a, "--ro-bind-try", "/etc/hosts", "/etc/hosts") &&
             add_fd(a, "--ro-bind-data", LFD_RESOLV, "/etc/resolv.conf");
    /* Our own passwd and group: the agent learns nothing of the host's users, and its uid
     * still has a name. */
    return ok && add_fd(a, "--ro-bind-data", LFD_PASSWD, "/etc/passwd") &&
           add_fd(a, "--ro-bind-data", LFD_GROUP, "/etc/group");
}

enum rc
local_args_build(const struct local_args_in *in, struct local_argv *a)
{
    memset(a, 0, sizeof(*a));
    /* Every namespace of its own, the network's too (network = on is a namespace of its own
     * behind slirp4netns, never the host's); a user namespace, and none further inside:
     * nested user namespaces are the kernel surface an agent has least business with. */
    bool ok = add(a, BWRAP_PATH) && add(a, "--unshare-all") && add(a, "--unshare-user") &&
              add(a, "--disable-userns") && add(a, "--die-with-parent") && add(a, "--new-session");
    /* bwrap reports {"child-pid": N} once the sandbox is set up: without it, a failure is
     * bwrap's own, not the agent's. */
    ok = ok && add_fd(a, "--json-status-fd", LFD_STATUS, NULL);
    if (ok && in->network)
        ok = add_fd(a, "--block-fd", LFD_BLOCK, NULL);
    ok = ok && add3(a, "--hostname", "labbox", NULL) && add_root(a, in);
    if (ok && in->seccomp)
        ok = add_fd(a, "--seccomp", LFD_SECCOMP, NULL);
    ok = ok && add3(a, "--proc", "/proc", NULL) && add_proc_masks(a) &&
         add3(a, "--dev", "/dev", NULL);
    if (ok && in->tmp_fd) {
        ok = add_fd(a, "--bind-fd", LFD_TMP, "/tmp");
    } else if (ok) {
        const char *size = own(a, (unsigned long long)in->tmp_bytes);
        ok = size != NULL && add3(a, "--size", size, NULL) && add3(a, "--tmpfs", "/tmp", NULL);
    }
    ok = ok && add_fd(a, "--bind-fd", LFD_WORKSPACE, "/workspace") &&
         add_fd(a, "--ro-bind-fd", LFD_INPUTS, "/workspace/inputs") &&
         add3(a, "--chdir", "/workspace", NULL) && add(a, "--");
    for (char *const *p = in->argv; ok && *p != NULL; p++)
        ok = add(a, *p);
    if (!ok) {
        local_args_free(a);
        return RC_NOMEM;
    }
    return RC_OK;
}

void
local_args_free(struct local_argv *a)
{
    free(a->v);
    for (size_t i = 0; i < a->nown; i++)
        free(a->own[i]);
    memset(a, 0, sizeof(*a));
}

/*** seccomp ***/

/* The architectures whose seccomp filter we build (elsewhere the sandbox runs without one). */
#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

_Static_assert(2 * WALLS_DENIED_MAX + 16 <= LOCAL_SECCOMP_MAX, "LOCAL_SECCOMP_MAX too small");

#define STMT(code, k)         ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))

/* The BPF program: a foreign architecture (or x32) is killed; a denied call gets EPERM;
 * socket() and socketpair() are allowed for the permitted address families only (the first
 * argument, an int: the low word of args[0] on these little-endian architectures), others get
 * EAFNOSUPPORT (AF_VSOCK above all: a network namespace does not isolate it); the rest is
 * allowed. */
size_t
local_seccomp_program(bool network, struct sock_filter *prog)
{
#ifdef SECCOMP_ARCH
    /* The families walls_family_allowed lets through (of those a program can name). */
    static const unsigned candidates[] = {AF_UNIX, AF_INET, AF_INET6};
    unsigned fam_off[3], nfam = 0;
    for (size_t i = 0; i < 3; i++)
        if (walls_family_allowed(network, candidates[i]))
            fam_off[nfam++] = candidates[i];
    size_t n = 0;
    prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    prog[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
    for (size_t i = 0; i < walls_ndenied; i++) {
        /* Equal: fall through to the EPERM return; not equal: jump over it. */
        prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)walls_denied[i].nr, 0, 1);
        prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 2, 0);
    prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socketpair, 1, 0);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    for (unsigned i = 0; i < nfam; i++)
        /* Equal: jump to the ALLOW after the EAFNOSUPPORT return. */
        prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, fam_off[i], (unsigned char)(nfam - i), 0);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    return n;
#else
    (void)network;
    (void)prog;
    return 0;
#endif
}
