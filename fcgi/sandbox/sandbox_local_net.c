/* sandbox_local_net: network = on for the local backend: the sandbox keeps the network
 * namespace of its own that bwrap made, and slirp4netns gives it user-mode NAT.
 *
 * slirp4netns runs as the job's uid with no capability, never root (with a /dev/net/tun of its
 * own, in a mount namespace of its own, for hosts where the node is root's alone): it joins the
 * namespace's owning user namespace (the job uid owns it, so it may) and the network namespace,
 * makes tap0 there (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3), and forwards the sandbox's
 * connections from the supervisor's network namespace as ordinary sockets of that uid.
 * --disable-host-loopback refuses connections to the host's 127.0.0.0/8 through the gateway,
 * so the sandbox reaches neither labbox's nginx nor engine sockets on loopback; abstract unix
 * sockets belong to their network namespace, so the host's are out of reach too. The host's
 * own non-loopback addresses are "outside" to slirp4netns and reachable like any other.
 * --exit-fd ends slirp4netns when the supervisor closes its end or dies; the agent is held
 * at bwrap's --block-fd until the namespace is configured.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox_local.h"
#include "util/caps.h"
#include "util/clock.h"

#define TUN_PATH "/dev/net/tun"

/* Can any user open /dev/net/tun (Debian's udev makes it 0666)? */
static bool
tun_open_to_all(void)
{
    struct stat st;
    return stat(TUN_PATH, &st) == 0 && S_ISCHR(st.st_mode) && (st.st_mode & 0006) == 0006;
}

bool
net_tun_usable(char *why, size_t len)
{
    if (tun_open_to_all() || caps_missing(CAPS_BIT(CAP_MKNOD)) == 0)
        return true;
    (void)snprintf(why, len,
                   "network = on: %s is not open to every user and labbox lacks CAP_MKNOD to "
                   "make the sandbox uid a node of its own (make it mode 0666, as udev does, or "
                   "grant CAP_MKNOD)",
                   TUN_PATH);
    return false;
}

/* bwrap brings the sandbox's loopback up while slirp4netns would configure the same namespace:
 * both touching lo at once makes bwrap fail. Wait in the namespace (as root, before dropping
 * to the job's uid) until bwrap has done it; true when it has, false after about 10 s. */
static bool
wait_lo_up(int netns)
{
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    bool up = false;
    if (self < 0 || setns(netns, CLONE_NEWNET) != 0)
        return false;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (int i = 0; s >= 0 && i < 5000 && !up; i++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        (void)snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        up = ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
        if (!up)
            usleep(2000);
    }
    if (s >= 0)
        close(s);
    if (setns(self, CLONE_NEWNET) != 0)
        up = false;
    close(self);
    return up;
}

/* The child: become the job's uid and exec slirp4netns with its fds at 3 (netns), 4 (userns),
 * 5 (ready), 6 (exit). */
static __attribute__((noreturn)) void
slirp_child(int netns, int userns, int ready_w, int exit_r, uid_t uid, gid_t gid)
{
    /* Out of the way of 0-6 first, so no dup2 below overwrites one still to be moved. */
    int src[] = {netns, userns, ready_w, exit_r};
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
        if ((src[i] = fcntl(src[i], F_DUPFD, 20)) < 0)
            _exit(126);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        _exit(126);
    for (int i = 0; i < 4; i++)
        if (dup2(src[i], 3 + i) < 0)
            _exit(126);
    if (close_range(7, ~0U, 0) != 0)
        _exit(126);
    if (!wait_lo_up(3)) /* netns, now at fd 3 */
        _exit(124);
    /* /dev/net/tun may be root's alone (mode 0600; udev makes it 0666): in a mount namespace of
     * slirp4netns's own, a node of it only the job's uid can open (this needs CAP_MKNOD). */
    if (!tun_open_to_all() &&
        (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
         mount("tmpfs", "/dev/net", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=16k") != 0 ||
         mknod(TUN_PATH, S_IFCHR | 0600, makedev(10, 200)) != 0 || chown(TUN_PATH, uid, gid) != 0))
        _exit(125);
    caps_drop_bounding();
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 || caps_drop_all() != RC_OK)
        _exit(126);
    const char *const argv[] = {
        SLIRP_PATH,          "--configure",     "--mtu=65520", "--disable-host-loopback",
        "--enable-seccomp",  "--ready-fd=5",    "--exit-fd=6", "--userns-path=/proc/self/fd/4",
        "--netns-type=path", "/proc/self/fd/3", "tap0",        NULL};
    const char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    /* execve wants char *const[]; it never writes them. */
    execve(argv[0], (char *const *)(uintptr_t)argv, (char *const *)(uintptr_t)envp);
    _exit(127);
}

enum rc
net_start(struct net *n, pid_t pid, uid_t uid, gid_t gid, int64_t deadline_ms, char *err,
          size_t errlen)
{
    char path[64];
    int netns = -1, userns = -1, ready[2] = {-1, -1}, ex[2] = {-1, -1};
    enum rc rc = RC_BACKEND;
    n->slirp = -1;
    n->exit_w = -1;
    (void)snprintf(path, sizeof(path), "/proc/%ld/ns/net", (long)pid);
    netns = open(path, O_RDONLY | O_CLOEXEC);
    /* The user namespace that owns it (bwrap nests a second one later, for the agent). */
    userns = netns < 0 ? -1 : ioctl(netns, NS_GET_USERNS);
    if (netns < 0 || userns < 0 || pipe2(ready, O_CLOEXEC) != 0 || pipe2(ex, O_CLOEXEC) != 0) {
        (void)snprintf(err, errlen, "cannot reach the sandbox's network namespace: %s",
                       strerror(errno));
        goto out;
    }
    n->slirp = fork();
    if (n->slirp < 0) {
        (void)snprintf(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (n->slirp == 0)
        slirp_child(netns, userns, ready[1], ex[0], uid, gid);
    close(ready[1]);
    ready[1] = -1;
    n->exit_w = ex[1];
    ex[1] = -1;
    /* slirp4netns writes "1" to the ready fd once tap0 is configured. */
    for (;;) {
        struct pollfd p = {ready[0], POLLIN, 0};
        int64_t left = deadline_ms - clock_mono_ms();
        int r = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        char c = 0;
        if (r > 0 && read(ready[0], &c, 1) == 1 && c == '1') {
            rc = RC_OK;
            break;
        }
        (void)snprintf(err, errlen, "slirp4netns did not configure the sandbox's network%s",
                       r == 0 ? " in time" : "");
        break;
    }
out:
    if (rc != RC_OK)
        net_stop(n);
    int fds[] = {netns, userns, ready[0], ready[1], ex[0], ex[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

void
net_stop(struct net *n)
{
    if (n->exit_w >= 0)
        close(n->exit_w);
    n->exit_w = -1;
    if (n->slirp > 0) {
        (void)kill(n->slirp, SIGKILL);
        while (waitpid(n->slirp, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    n->slirp = -1;
}
