/* typer: libmagic over agent outputs in an unprivileged child (see typer.h). */
#include "jobs/typer.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs/filetype.h"
#include "log.h"
#include "util/caps.h"

#define NOBODY      65534u       /* the child's uid and gid when labbox may change its own */
#define CHILD_AS    (256u << 20) /* address space of the child */
#define CHILD_CPU_S 120          /* CPU seconds of one child, all files together */
#define NAME_BYTES  256
#define TYPE_BYTES  128
#define OCTET       "application/octet-stream"

/* AddressSanitizer maps terabytes of shadow memory up front: under an address-space limit
 * every later allocation fails. Its builds (tests only) keep the other limits. */
#if defined(__SANITIZE_ADDRESS__)
#define TYPER_AS_LIMIT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TYPER_AS_LIMIT 0
#endif
#endif
#ifndef TYPER_AS_LIMIT
#define TYPER_AS_LIMIT 1
#endif

void
typer_init(struct typer *t)
{
    t->pid = -1;
    t->sock = -1;
}

static void
set_limit(int res, rlim_t v)
{
    struct rlimit rl = {v, v};
    (void)setrlimit(res, &rl);
}

/* The child: nothing of the supervisor's but the socket, no privilege; then serve requests
 * until the socket closes. */
static __attribute__((noreturn)) void
child(int sock)
{
    if (dup2(sock, 3) < 0 || close_range(4, ~0U, 0) != 0)
        _exit(1);
    bool may_setuid = caps_missing(CAPS_BIT(CAP_SETUID) | CAPS_BIT(CAP_SETGID)) == 0;
    caps_drop_bounding();
    if (may_setuid && (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0))
        _exit(1);
    if (caps_drop_all() != RC_OK || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        _exit(1);
    if (TYPER_AS_LIMIT)
        set_limit(RLIMIT_AS, CHILD_AS);
    set_limit(RLIMIT_CPU, CHILD_CPU_S);
    set_limit(RLIMIT_FSIZE, 1u << 20); /* its log lines (stderr may be a file) */
    set_limit(RLIMIT_NOFILE, 8);
    set_limit(RLIMIT_CORE, 0);
    log_debug("typer: pid %ld types outputs as uid %u, capabilities %llx", (long)getpid(),
              (unsigned)getuid(), (unsigned long long)caps_effective());
    for (;;) {
        char name[NAME_BYTES + 1], type[TYPE_BYTES];
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {name, NAME_BYTES};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        ssize_t r = recvmsg(3, &m, MSG_CMSG_CLOEXEC);
        if (r <= 0)
            _exit(0);
        name[r] = '\0';
        int fd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        filetype_for_output(name, fd, type, sizeof(type));
        if (fd >= 0)
            close(fd);
        if (send(3, type, strlen(type), 0) < 0)
            _exit(1);
    }
}

static void
stop(struct typer *t)
{
    if (t->sock >= 0)
        close(t->sock);
    t->sock = -1;
    if (t->pid > 0) {
        (void)kill(t->pid, SIGKILL);
        while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    t->pid = -1;
}

static bool
start(struct typer *t)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_errno("typer: socketpair");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("typer: fork");
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if (pid == 0)
        child(sv[1]);
    close(sv[1]);
    t->pid = pid;
    t->sock = sv[0];
    return true;
}

/* One round trip; false when the child failed or took too long. */
static bool
ask(struct typer *t, const char *name, int fd, char *out, size_t outlen)
{
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof(ctl));
    struct iovec iov = {(void *)(uintptr_t)name, strnlen(name, NAME_BYTES)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = ctl;
        m.msg_controllen = sizeof(ctl);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    }
    if (iov.iov_len == 0 || sendmsg(t->sock, &m, MSG_NOSIGNAL) < 0)
        return false;
    struct pollfd p = {t->sock, POLLIN, 0};
    int r;
    do {
        r = poll(&p, 1, TYPER_FILE_MS);
    } while (r < 0 && errno == EINTR);
    char type[TYPE_BYTES];
    ssize_t n = r > 0 ? recv(t->sock, type, sizeof(type) - 1, 0) : -1;
    if (n <= 0)
        return false;
    type[n] = '\0';
    /* What the child says becomes a Content-Type: a MIME type's characters only. */
    if (strspn(type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&^_.+-/") !=
            (size_t)n ||
        strchr(type, '/') == NULL)
        return false;
    (void)snprintf(out, outlen, "%s", type);
    return true;
}

void
typer_type(struct typer *t, const char *name, int fd, char *out, size_t outlen)
{
    if ((t->pid > 0 || start(t)) && ask(t, name, fd, out, outlen))
        return;
    log_warn("typer: no type for output %s (the typing process failed or took over %d s)", name,
             TYPER_FILE_MS / 1000);
    stop(t); /* the next file gets a fresh child */
    (void)snprintf(out, outlen, "%s", OCTET);
}

void
typer_fini(struct typer *t)
{
    stop(t);
}
