/* systemd: LISTEN_FDS socket activation and NOTIFY_SOCKET datagrams, as systemd documents them. */
#include "util/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The notification address, set once by systemd_notify_init before threads start. */
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

/* parse_uint: a whole decimal number without sign or trailing text. */
static bool
parse_uint(const char *s, unsigned long *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0';
}

enum rc
systemd_listen_fd(int *out_fd, char *err, size_t errlen)
{
    unsigned long pid = 0, n = 0;
    int type = 0, listening = 0;
    socklen_t len = sizeof(int);
    *out_fd = -1;
    bool ours = parse_uint(getenv("LISTEN_PID"), &pid) && pid == (unsigned long)getpid();
    bool have = ours && parse_uint(getenv("LISTEN_FDS"), &n);
    (void)unsetenv("LISTEN_PID");
    (void)unsetenv("LISTEN_FDS");
    (void)unsetenv("LISTEN_FDNAMES");
    if (!have || n == 0)
        return RC_NOTFOUND;
    const int fd = SYSTEMD_LISTEN_FDS_START;
    if (n > 1) {
        (void)snprintf(err, errlen, "systemd passed %lu sockets; labbox listens on exactly one", n);
        return RC_BADREQ;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
        (void)snprintf(err, errlen, "fd %d from systemd is not a listening stream socket", fd);
        return RC_BADREQ;
    }
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
        (void)snprintf(err, errlen, "fd %d from systemd: %s", fd, strerror(errno));
        return RC_BADREQ;
    }
    *out_fd = fd;
    return RC_OK;
}

bool
systemd_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n = path ? strlen(path) : 0;
    notify_len = 0;
    /* A path, or '@' for the abstract namespace; systemd's vsock addresses are not supported. */
    if (n >= 2 && n < sizeof(notify_addr.sun_path) && (path[0] == '/' || path[0] == '@')) {
        memset(&notify_addr, 0, sizeof(notify_addr));
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, path, n);
        if (path[0] == '@')
            notify_addr.sun_path[0] = '\0';
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    }
    (void)unsetenv("NOTIFY_SOCKET");
    return notify_len > 0;
}

enum rc
systemd_notify(const char *state)
{
    if (notify_len == 0)
        return RC_OK;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RC_IO;
    size_t n = strlen(state);
    ssize_t w =
        sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&notify_addr, notify_len);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)n ? RC_OK : RC_IO;
}
