/* sandbox_walls: per-job uids and the denied kernel surface, shared by the local and docker
 * backends (see sandbox_walls.h).
 *
 * Per-user kernel counters (inotify instances and watches, RLIMIT_NPROC, user namespaces...)
 * are charged to the host uid a sandbox runs as; with one uid for all, one job could use up
 * what the next needs, and signals and files of one job were another's. Each job therefore runs
 * as a uid of [sandbox_uid_base, sandbox_uid_base + sandbox_uid_count), held for the job's life
 * by an flock on UID_LOCK_DIR/<uid>.lock: host-wide, so several labbox instances (and both
 * backends) share the range safely, and released by the kernel when the supervisor ends however
 * it ends. The range must not overlap any user, group or subordinate id range of the host
 * (uid_range_check).
 */
#include "sandbox/sandbox_walls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/fsutil.h"

/* Each entry is guarded, so a libc without one still compiles. */
const struct denied_syscall walls_denied[] = {
#ifdef SYS_keyctl
    {"keyctl", SYS_keyctl},
#endif
#ifdef SYS_add_key
    {"add_key", SYS_add_key},
#endif
#ifdef SYS_request_key
    {"request_key", SYS_request_key},
#endif
#ifdef SYS_bpf
    {"bpf", SYS_bpf},
#endif
#ifdef SYS_perf_event_open
    {"perf_event_open", SYS_perf_event_open},
#endif
#ifdef SYS_userfaultfd
    {"userfaultfd", SYS_userfaultfd},
#endif
#ifdef SYS_io_uring_setup
    {"io_uring_setup", SYS_io_uring_setup},
#endif
#ifdef SYS_io_uring_enter
    {"io_uring_enter", SYS_io_uring_enter},
#endif
#ifdef SYS_io_uring_register
    {"io_uring_register", SYS_io_uring_register},
#endif
#ifdef SYS_kexec_load
    {"kexec_load", SYS_kexec_load},
#endif
#ifdef SYS_kexec_file_load
    {"kexec_file_load", SYS_kexec_file_load},
#endif
#ifdef SYS_init_module
    {"init_module", SYS_init_module},
#endif
#ifdef SYS_finit_module
    {"finit_module", SYS_finit_module},
#endif
#ifdef SYS_delete_module
    {"delete_module", SYS_delete_module},
#endif
#ifdef SYS_open_by_handle_at
    {"open_by_handle_at", SYS_open_by_handle_at},
#endif
#ifdef SYS_name_to_handle_at
    {"name_to_handle_at", SYS_name_to_handle_at},
#endif
#ifdef SYS_acct
    {"acct", SYS_acct},
#endif
#ifdef SYS_swapon
    {"swapon", SYS_swapon},
#endif
#ifdef SYS_swapoff
    {"swapoff", SYS_swapoff},
#endif
#ifdef SYS_reboot
    {"reboot", SYS_reboot},
#endif
#ifdef SYS_quotactl
    {"quotactl", SYS_quotactl},
#endif
#ifdef SYS_lookup_dcookie
    {"lookup_dcookie", SYS_lookup_dcookie},
#endif
#ifdef SYS_iopl
    {"iopl", SYS_iopl},
#endif
#ifdef SYS_ioperm
    {"ioperm", SYS_ioperm},
#endif
#ifdef SYS_ptrace
    {"ptrace", SYS_ptrace},
#endif
#ifdef SYS_process_vm_writev
    {"process_vm_writev", SYS_process_vm_writev},
#endif
#ifdef SYS_fanotify_init
    {"fanotify_init", SYS_fanotify_init},
#endif
};
const size_t walls_ndenied = sizeof(walls_denied) / sizeof(walls_denied[0]);
_Static_assert(sizeof(walls_denied) / sizeof(walls_denied[0]) <= WALLS_DENIED_MAX,
               "WALLS_DENIED_MAX too small");

bool
walls_family_allowed(bool network, unsigned family)
{
    return family == AF_UNIX || (network && (family == AF_INET || family == AF_INET6));
}

/* The lock file of uid: opened (created) and flocked without waiting; -1 if taken or on error
 * (errno says which: EWOULDBLOCK when taken). */
static int
lock_uid(uint64_t uid, char *path, size_t len)
{
    (void)snprintf(path, len, UID_LOCK_DIR "/%llu.lock", (unsigned long long)uid);
    return fs_lock_open(AT_FDCWD, path, 0600);
}

int
uid_hold(uid_t uid)
{
    char path[128];
    return lock_uid(uid, path, sizeof(path));
}

enum rc
uid_take(const struct config *cfg, uid_t *out_uid, int *out_lock, char *err, size_t errlen)
{
    char path[128];
    *out_lock = -1;
    if (fs_mkdir_p(UID_LOCK_DIR, 0700) != RC_OK) {
        (void)snprintf(err, errlen, "cannot create %s: %s", UID_LOCK_DIR, strerror(errno));
        return RC_BACKEND;
    }
    for (uint64_t i = 0; i < cfg->sandbox_uid_count; i++) {
        uint64_t uid = cfg->sandbox_uid_base + i;
        int fd = lock_uid(uid, path, sizeof(path));
        if (fd >= 0) {
            *out_uid = (uid_t)uid;
            *out_lock = fd;
            return RC_OK;
        }
        if (errno != EWOULDBLOCK) {
            (void)snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
            return RC_BACKEND;
        }
    }
    (void)snprintf(err, errlen, "all %llu sandbox uids from %llu are in use",
                   (unsigned long long)cfg->sandbox_uid_count,
                   (unsigned long long)cfg->sandbox_uid_base);
    return RC_BUSY;
}

/* The ids of a passwd/group text (third field) within [base, base + count), the first as a
 * line number; 0 if none. */
static unsigned
id_overlap(const char *text, uint64_t base, uint64_t count, int field, char *name, size_t nlen)
{
    unsigned line = 0;
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        line++;
        const char *f = p;
        for (int i = 0; i < field && f != NULL && f < end; i++) {
            f = memchr(f, ':', (size_t)(end - f));
            f = f ? f + 1 : NULL;
        }
        if (f != NULL && f < end && *p != '#') {
            char *e = NULL;
            unsigned long long id = strtoull(f, &e, 10);
            unsigned long long n = 1;
            if (field == 1 && e != NULL && *e == ':') /* subuid: name:first:count */
                n = strtoull(e + 1, NULL, 10);
            if (e != f && id < base + count && id + n > base) {
                const char *colon = memchr(p, ':', (size_t)(end - p));
                size_t len = colon ? (size_t)(colon - p) : 0;
                (void)snprintf(name, nlen, "%.*s", (int)(len < 64 ? len : 64), p);
                return line;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

enum rc
uid_range_check(uint64_t base, uint64_t count, const char *passwd, const char *group,
                const char *subuid, const char *subgid, char *err, size_t errlen)
{
    const struct {
        const char *text, *file;
        int field;
    } files[] = {{passwd, "/etc/passwd", 2},
                 {group, "/etc/group", 2},
                 {subuid, "/etc/subuid", 1},
                 {subgid, "/etc/subgid", 1}};
    char name[80];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        unsigned line = files[i].text ? id_overlap(files[i].text, base, count, files[i].field, name,
                                                   sizeof(name))
                                      : 0;
        if (line != 0) {
            (void)snprintf(err, errlen,
                           "sandbox uids %llu..%llu overlap '%s' in %s (line %u): choose "
                           "another sandbox_uid_base",
                           (unsigned long long)base, (unsigned long long)(base + count - 1), name,
                           files[i].file, line);
            return RC_BADREQ;
        }
    }
    return RC_OK;
}

enum rc
uid_check_host(const struct config *cfg, char *err, size_t errlen)
{
    static const char *const paths[] = {"/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"};
    char *text[4] = {NULL, NULL, NULL, NULL};
    enum rc rc = RC_OK;
    for (int i = 0; i < 4 && rc == RC_OK; i++) {
        enum rc r = fs_read_all(AT_FDCWD, paths[i], 16u << 20, &text[i], NULL);
        if (r != RC_OK && r != RC_NOTFOUND) {
            (void)snprintf(err, errlen, "cannot read %s (%s)", paths[i], rc_str(r));
            rc = RC_BACKEND;
        }
    }
    if (rc == RC_OK)
        rc = uid_range_check(cfg->sandbox_uid_base, cfg->sandbox_uid_count, text[0], text[1],
                             text[2], text[3], err, errlen);
    for (int i = 0; i < 4; i++)
        free(text[i]);
    return rc;
}
