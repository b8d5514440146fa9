/* systemd: socket activation and readiness notification, the two documented protocols of
 * sd_listen_fds(3) and sd_notify(3), spoken directly (no libsystemd). */
#ifndef LABBOX_SYSTEMD_H
#define LABBOX_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"

#define SYSTEMD_LISTEN_FDS_START 3

/* systemd_listen_fd: the listening socket systemd passed to this process: LISTEN_PID is our
 * pid and LISTEN_FDS is 1, so the socket is fd 3. The variables LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES are removed from the environment (children must not take them for theirs) and
 * fd 3 becomes close-on-exec. RC_NOTFOUND when nothing was passed to this process (the
 * variables are unset, or name another pid); RC_BADREQ with the reason in err when more than
 * one fd was passed or fd 3 is not a listening stream socket. */
enum rc systemd_listen_fd(int *out_fd, char *err, size_t errlen) LB_MUST_CHECK;

/* systemd_notify_init takes NOTIFY_SOCKET from the environment and removes it (supervisors and
 * agents must not speak for serve). Call it once, before any thread starts. Returns whether
 * the service manager asked for notifications. */
bool systemd_notify_init(void);

/* systemd_notify sends one datagram of newline-separated assignments ("READY=1",
 * "STOPPING=1", "STATUS=...") to the socket systemd_notify_init found; RC_OK without doing
 * anything when there is none, RC_IO when the send failed (errno is kept). Thread-safe. */
enum rc systemd_notify(const char *state) LB_MUST_CHECK;

#endif
