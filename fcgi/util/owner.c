/* owner: groups labbox gives files to, and directories nobody else may control. */
#include "util/owner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
member_of(gid_t gid)
{
    gid_t groups[NGROUPS_MAX];
    if (getegid() == gid)
        return true;
    int n = getgroups(NGROUPS_MAX, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

enum rc
owner_group(const char *key, const char *name, const char *what, bool root_may, gid_t *out,
            char *err, size_t errlen)
{
    struct group gr, *res = NULL;
    struct passwd pw, *me = NULL;
    char buf[16384], pwbuf[4096];
    int e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
    if (e != 0) {
        (void)snprintf(err, errlen, "%s %s: cannot look the group up: %s", key, name, strerror(e));
        return RC_BADREQ;
    }
    if (res == NULL) {
        (void)snprintf(err, errlen, "%s %s: no such group", key, name);
        return RC_BADREQ;
    }
    if (!(root_may && geteuid() == 0) && !member_of(gr.gr_gid)) {
        (void)getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &me);
        (void)snprintf(err, errlen,
                       "%s %s: labbox's user %s is not a member, so it cannot give %s to that "
                       "group (add it: usermod -aG %s %s; then start labbox again)",
                       key, name, me ? me->pw_name : "(this uid)", what, name,
                       me ? me->pw_name : "USER");
        return RC_BADREQ;
    }
    *out = gr.gr_gid;
    return RC_OK;
}

/* One directory above: owned by root or us, and not open for others to rename in unless
 * sticky. */
static const char *
ancestor_why(const struct stat *st, uid_t uid)
{
    if (!S_ISDIR(st->st_mode))
        return "is not a directory";
    if (st->st_uid != 0 && st->st_uid != uid)
        return "belongs to another user";
    if ((st->st_mode & 0022) != 0 && !(st->st_mode & S_ISVTX))
        return "is writable by other users (and not sticky)";
    return NULL;
}

/* One directory above (made when missing, with create); NULL when it is fine. *io: the reason
 * is that the path cannot be made or reached (errno says which), not someone else's control. */
static const char *
check_ancestor(const char *dir, uid_t uid, bool create, bool *io)
{
    struct stat st;
    *io = false;
    if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != 0 && st.st_uid != uid)
        return "is a symbolic link of another user";
    *io = true;
    if (stat(dir, &st) != 0 && errno == ENOENT && create && mkdir(dir, 0755) != 0)
        return strerror(errno);
    if (stat(dir, &st) != 0)
        return errno == ENOENT && !create ? NULL : strerror(errno);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return "is not a directory";
    }
    *io = false;
    return ancestor_why(&st, uid);
}

static const char *
final_why(const struct stat *st, uid_t uid)
{
    if (S_ISLNK(st->st_mode))
        return "is a symbolic link";
    if (!S_ISDIR(st->st_mode))
        return "is not a directory";
    if (st->st_uid != uid)
        return "belongs to another user than labbox's";
    if ((st->st_mode & 0022) != 0)
        return "is writable by group or others";
    return NULL;
}

enum rc
owner_private_dir(const char *key, const char *path, uid_t uid, bool create, char *err,
                  size_t errlen)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf) || path[0] != '/') {
        (void)snprintf(err, errlen, "%s: %s is not an absolute path", key, path);
        return RC_BADREQ;
    }
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    /* Each directory above, from the root down. */
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        bool io = false;
        const char *why = check_ancestor(buf, uid, create, &io);
        if (why != NULL) {
            int e = errno;
            (void)snprintf(err, errlen, "%s: %s: %s above it %s", key, path, buf, why);
            errno = e;
            return io ? RC_IO : RC_BADREQ;
        }
        buf[i] = '/';
    }
    int made = 0;
    if (lstat(buf, &st) != 0 && errno == ENOENT && create && mkdir(buf, 0711) != 0)
        made = errno;
    if (lstat(buf, &st) != 0) {
        int e = made != 0 ? made : errno;
        if (e == ENOENT && !create)
            return RC_OK; /* made when first needed, and checked then */
        (void)snprintf(err, errlen, "%s: %s: %s", key, path, strerror(e));
        errno = e;
        return RC_IO;
    }
    const char *why = final_why(&st, uid);
    /* Passable for the sandbox uids (bwrap finds its bind sources by path), never listable. */
    if (why == NULL && create && (st.st_mode & 07777) != 0711 && chmod(buf, 0711) != 0)
        why = strerror(errno);
    if (why != NULL) {
        (void)snprintf(err, errlen,
                       "%s: %s %s: labbox refuses a directory someone else could control (make "
                       "it labbox's own, mode 0711, or choose another)",
                       key, path, why);
        return RC_BADREQ;
    }
    return RC_OK;
}
