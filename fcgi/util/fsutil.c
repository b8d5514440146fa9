/* fsutil: atomic replace, recursive remove and copies, all relative to directory fds. */
#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

DIR *
fs_opendir(int dirfd)
{
    int dupfd = dup(dirfd);
    if (dupfd < 0)
        return NULL;
    DIR *d = fdopendir(dupfd);
    if (d == NULL) {
        int e = errno;
        close(dupfd);
        errno = e;
        return NULL;
    }
    /* A dup shares the file offset: an earlier scan of dirfd left it at the end. */
    rewinddir(d);
    return d;
}

enum rc
fs_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return RC_IO;
        c += w;
        len -= (size_t)w;
    }
    return RC_OK;
}

enum rc
fs_write_atomic(int dirfd, const char *name, const void *p, size_t len)
{
    return fs_write_atomic_mode(dirfd, name, p, len, 0644);
}

enum rc
fs_write_atomic_mode(int dirfd, const char *name, const void *p, size_t len, unsigned mode)
{
    char tmp[NAME_MAX + 1];
    int fd = -1;
    enum rc rc = RC_IO;
    int k = snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", name, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof(tmp))
        return RC_BADREQ;
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        log_errno("openat %s", tmp);
        return RC_IO;
    }
    if (fs_write_all(fd, p, len) != RC_OK) {
        log_errno("write %s", tmp);
        goto out;
    }
    if (fdatasync(fd) != 0) {
        log_errno("fdatasync %s", tmp);
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        log_errno("renameat %s", name);
        goto out;
    }
    (void)fsync(dirfd);
    rc = RC_OK;
out:;
    int e = errno; /* the caller may want to know why: ENOSPC */
    if (fd >= 0)
        close(fd);
    if (rc != RC_OK)
        (void)unlinkat(dirfd, tmp, 0);
    errno = e;
    return rc;
}

enum rc
fs_read_all(int dirfd, const char *name, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RC_NOTFOUND : RC_IO;
    enum rc rc = fs_read_fd(fd, max, out, out_len);
    close(fd);
    return rc;
}

enum rc
fs_read_fd(int fd, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    enum rc rc = RC_OK;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return RC_NOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) {
                rc = RC_TOOBIG;
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = RC_IO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        rc = RC_TOOBIG;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len)
        *out_len = n;
    buf = NULL;
out:
    free(buf);
    return rc;
}

/* Removing a tree: one directory fd open at a time, a heap stack of the directories above it
 * (their identity and the names of the subdirectories still to remove), so neither the depth
 * nor the path length has a limit. The walk goes down by openat(name, O_NOFOLLOW) and back up
 * by openat(".."), checked against the identity it recorded on the way down: a tree moved
 * underneath ends the walk with an error instead of wandering off. It never follows a
 * symlink (a link is unlinked, never its target) and never crosses into another filesystem. */
struct rm_frame {
    dev_t dev;
    ino_t ino;
    char **sub;  /* names of subdirectories still to remove, in the order found */
    size_t nsub; /* how many */
    size_t next; /* sub[next - 1] is the one being removed below this frame */
};

static void
rm_frame_free(struct rm_frame *f)
{
    for (size_t i = 0; i < f->nsub; i++)
        free(f->sub[i]);
    free(f->sub);
    memset(f, 0, sizeof(*f));
}

/* Unlink everything in the directory fd that is not a directory and list the directories. */
static enum rc
rm_scan(int fd, struct rm_frame *f)
{
    struct stat st;
    size_t cap = 0;
    enum rc rc = RC_OK;
    if (fstat(fd, &st) != 0)
        return RC_IO;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    /* The sandbox may leave directories without write permission. */
    (void)fchmod(fd, 0700);
    DIR *d = fs_opendir(fd);
    if (d == NULL)
        return RC_IO;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            rc = RC_IO;
            continue;
        }
        if (f->nsub == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **n = realloc(f->sub, ncap * sizeof(*n));
            if (n == NULL) {
                rc = RC_NOMEM;
                break;
            }
            f->sub = n;
            cap = ncap;
        }
        f->sub[f->nsub] = strdup(de->d_name);
        if (f->sub[f->nsub] == NULL) {
            rc = RC_NOMEM;
            break;
        }
        f->nsub++;
    }
    closedir(d);
    return rc;
}

/* Go from *cur down into its next listed subdirectory; false when there is none left. */
static bool
rm_down(int *cur, struct rm_frame *f, struct rm_frame *child, enum rc *rc)
{
    while (f->next < f->nsub) {
        const char *name = f->sub[f->next++];
        int fd = openat(*cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0) {
            if (errno != ENOENT)
                *rc = RC_IO;
            continue;
        }
        if (fstat(fd, &st) != 0 || st.st_dev != f->dev) {
            close(fd); /* another filesystem mounted here: not ours to empty */
            *rc = RC_IO;
            continue;
        }
        enum rc r2 = rm_scan(fd, child);
        if (r2 != RC_OK)
            *rc = r2;
        close(*cur);
        *cur = fd;
        return true;
    }
    return false;
}

enum rc
fs_rmtree_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return RC_OK;
    int cur = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cur < 0)
        return errno == ENOENT ? RC_OK : RC_IO;
    struct rm_frame *st = NULL;
    size_t n = 0, cap = 0;
    enum rc rc = RC_OK;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct rm_frame *ns = realloc(st, ncap * sizeof(*ns));
            if (ns == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            memset(ns + cap, 0, (ncap - cap) * sizeof(*ns));
            st = ns;
            cap = ncap;
        }
        if (n == 0) {
            rc = rm_scan(cur, &st[0]);
            n = 1;
            continue;
        }
        if (rm_down(&cur, &st[n - 1], &st[n], &rc)) {
            n++;
            continue;
        }
        /* This directory is as empty as it gets: back up to its parent and remove it. */
        rm_frame_free(&st[--n]);
        if (n == 0)
            break;
        int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat pst;
        if (up < 0 || fstat(up, &pst) != 0 || pst.st_dev != st[n - 1].dev ||
            pst.st_ino != st[n - 1].ino) {
            if (up >= 0)
                close(up);
            log_err("rmtree %s: the tree moved while it was being removed", name);
            rc = RC_IO;
            goto out;
        }
        close(cur);
        cur = up;
        if (unlinkat(cur, st[n - 1].sub[st[n - 1].next - 1], AT_REMOVEDIR) != 0 && errno != ENOENT)
            rc = RC_IO;
    }
out:
    for (size_t i = 0; i < n; i++)
        rm_frame_free(&st[i]);
    free(st);
    close(cur);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = RC_IO;
    if (rc != RC_OK)
        log_err("cannot remove all of %s (%s)", name, rc_str(rc));
    return rc;
}

enum rc
fs_mkdir_p(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return RC_BADREQ;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
                log_errno("mkdir %s", buf);
                return RC_IO;
            }
            buf[i] = c;
        }
    }
    return RC_OK;
}

enum rc
fs_copy_fd(int src, int dst, uint64_t max, uint64_t *out_bytes)
{
    char buf[65536];
    uint64_t total = 0;
    *out_bytes = 0;
    for (;;) {
        ssize_t r = read(src, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RC_IO;
        if (r == 0)
            break;
        if (total + (uint64_t)r > max)
            return RC_TOOBIG;
        if (fs_write_all(dst, buf, (size_t)r) != RC_OK)
            return RC_IO;
        total += (uint64_t)r;
        *out_bytes = total;
    }
    return RC_OK;
}

/* link_file: copy src's regular file name into dst (mode), or with link hard-link it where a
 * link can be made (the same filesystem, links allowed). */
static enum rc
link_file(int sfd, int dfd, const char *name, mode_t mode, bool link)
{
    if (link && linkat(sfd, name, dfd, name, 0) == 0)
        return RC_OK;
    if (link && errno == EEXIST)
        return RC_CONFLICT;
    int s2 = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int d2 = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    uint64_t n = 0;
    enum rc rc = (s2 < 0 || d2 < 0) ? RC_IO : fs_copy_fd(s2, d2, UINT64_MAX, &n);
    if (s2 >= 0)
        close(s2);
    if (d2 >= 0)
        close(d2);
    return rc;
}

/* copy_tree: see fs_copy_tree; with link, files are hard-linked where possible. */
static enum rc
copy_tree(int sfd, int dfd, int depth, const char *skip, bool link)
{
    enum rc rc = RC_OK;
    if (depth > 32)
        return RC_TOOBIG;
    DIR *d = fs_opendir(sfd);
    if (d == NULL)
        return RC_IO;
    struct dirent *de;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (skip != NULL && strcmp(de->d_name, skip) == 0))
            continue;
        if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = RC_IO;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dfd, de->d_name, 0755) != 0 && errno != EEXIST) {
                rc = RC_IO;
                break;
            }
            int s2 = openat(sfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = (s2 < 0 || d2 < 0) ? RC_IO : copy_tree(s2, d2, depth + 1, NULL, link);
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        } else if (S_ISREG(st.st_mode)) {
            rc = link_file(sfd, dfd, de->d_name, (st.st_mode & 0111) ? 0755 : 0644, link);
        }
    }
    closedir(d);
    return rc;
}

enum rc
fs_copy_tree(int src_dirfd, int dst_dirfd)
{
    return copy_tree(src_dirfd, dst_dirfd, 0, NULL, false);
}

enum rc
fs_copy_tree_except(int src_dirfd, int dst_dirfd, const char *skip)
{
    return copy_tree(src_dirfd, dst_dirfd, 0, skip, false);
}

enum rc
fs_link_tree(int src_dirfd, int dst_dirfd, const char *skip)
{
    enum rc rc = copy_tree(src_dirfd, dst_dirfd, 0, skip, true);
    if (rc == RC_IO)
        log_errno("linking a tree");
    return rc;
}

uint64_t
fs_free_mb(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) != 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024);
}

int
fs_lock_open(int dirfd, const char *name, unsigned mode)
{
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*** durability ***/

void
fs_writeback(int fd, uint64_t off, uint64_t len)
{
    (void)sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

static enum rc
sync_tree(int dirfd, int depth)
{
    enum rc rc = RC_OK;
    DIR *d = depth <= 64 ? fs_opendir(dirfd) : NULL;
    struct dirent *de;
    if (d == NULL)
        return RC_IO;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = RC_IO;
            break;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        int flags = S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY;
        int fd = openat(dirfd, de->d_name, flags | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            rc = RC_IO;
        else if (S_ISDIR(st.st_mode))
            rc = sync_tree(fd, depth + 1);
        else
            rc = fdatasync(fd) == 0 ? RC_OK : RC_IO;
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    if (rc == RC_OK && fsync(dirfd) != 0)
        rc = RC_IO;
    return rc;
}

enum rc
fs_sync_tree(int dirfd)
{
    enum rc rc = sync_tree(dirfd, 0);
    if (rc != RC_OK)
        log_errno("cannot make a directory tree durable");
    return rc;
}

struct fs_group {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t asked;  /* calls so far, numbered from 1 */
    uint64_t synced; /* calls covered by a finished fsync */
    uint64_t ok;     /* calls covered by a successful one */
    bool busy;       /* an fsync is under way */
};

struct fs_group *
fs_group_new(int fd)
{
    struct fs_group *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->fd = fd;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    return g;
}

void
fs_group_free(struct fs_group *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

enum rc
fs_group_fsync(struct fs_group *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t mine = ++g->asked;
    while (g->synced < mine) {
        if (g->busy) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* Lead: one fsync for every call made so far (this one included). */
        uint64_t upto = g->asked;
        g->busy = true;
        pthread_mutex_unlock(&g->mu);
        bool ok = fsync(g->fd) == 0;
        pthread_mutex_lock(&g->mu);
        g->busy = false;
        g->synced = upto;
        if (ok)
            g->ok = upto;
        pthread_cond_broadcast(&g->cv);
    }
    /* A later successful fsync covers this call too; a failed one is not retried (after an
     * I/O error a second fsync may report success for data that never reached the disk). */
    bool done = g->ok >= mine;
    pthread_mutex_unlock(&g->mu);
    if (!done)
        log_err("fsync of a directory failed");
    return done ? RC_OK : RC_IO;
}
