/* sandbox_walls: the walls the local and docker backends share: a uid of its own for every
 * running job (one range, one set of locks, host-wide), and the system calls and socket
 * families agents are denied (the local backend's seccomp program and the docker backend's
 * seccomp profile are both made from these lists). */
#ifndef LABBOX_SANDBOX_WALLS_H
#define LABBOX_SANDBOX_WALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "rc.h"

#define UID_LOCK_DIR "/run/labbox/uid" /* one lock file per per-job uid, host-wide */

/*** per-job uids ***/

/* uid_take: the first free uid of cfg's range, held by a lock on UID_LOCK_DIR/<uid>.lock
 * (*out_lock, keep it open for the job's life). RC_BUSY when all are taken. */
enum rc uid_take(const struct config *cfg, uid_t *out_uid, int *out_lock, char *err,
                 size_t errlen) LB_MUST_CHECK;
/* uid_hold: take the lock of a given uid again (a supervisor re-attaching to a container that
 * runs as it); -1 when another job holds it meanwhile. */
int uid_hold(uid_t uid);
/* uid_range_check: refuse a range that overlaps a user or group of the host or a subordinate
 * id range (the texts of /etc/passwd, /etc/group, /etc/subuid, /etc/subgid; NULL = absent).
 * Pure; the first overlap goes to err. */
enum rc uid_range_check(uint64_t base, uint64_t count, const char *passwd, const char *group,
                        const char *subuid, const char *subgid, char *err,
                        size_t errlen) LB_MUST_CHECK;
/* uid_check_host: uid_range_check against this host's files. */
enum rc uid_check_host(const struct config *cfg, char *err, size_t errlen) LB_MUST_CHECK;

/*** the kernel surface ***/

/* A system call agents have no use for, which widens the kernel's attack surface: it fails
 * with EPERM. Only those this architecture's libc knows are listed. */
struct denied_syscall {
    const char *name; /* as seccomp profiles spell it */
    int nr;           /* this architecture's number */
};
#define WALLS_DENIED_MAX 48
extern const struct denied_syscall walls_denied[];
extern const size_t walls_ndenied;

/* walls_family_allowed: may an agent make sockets of this address family? AF_UNIX always,
 * AF_INET and AF_INET6 with network on; everything else (AF_VSOCK above all: a network
 * namespace does not isolate it) fails with EAFNOSUPPORT. */
bool walls_family_allowed(bool network, unsigned family);

#endif
