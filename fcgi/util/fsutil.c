/* fsutil: atomic replace, recursive remove and copies, all relative to directory fds. */
#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
out:
    if (fd >= 0)
        close(fd);
    if (rc != RC_OK)
        (void)unlinkat(dirfd, tmp, 0);
    return rc;
}

enum rc
fs_read_all(int dirfd, const char *name, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RC_NOTFOUND : RC_IO;
    enum rc rc = RC_OK;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
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
    close(fd);
    return rc;
}

static enum rc
rmtree_fd(int dfd, int depth)
{
    enum rc rc = RC_OK;
    if (depth > 64)
        return RC_TOOBIG;
    DIR *d = fs_opendir(dfd);
    if (d == NULL)
        return RC_IO;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dfd, de->d_name, 0) == 0)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            if (errno != ENOENT)
                rc = RC_IO;
            continue;
        }
        int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            rc = RC_IO;
            continue;
        }
        /* The sandbox may leave directories without write permission. */
        (void)fchmod(sub, 0700);
        enum rc r2 = rmtree_fd(sub, depth + 1);
        close(sub);
        if (r2 != RC_OK)
            rc = r2;
        if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
            rc = RC_IO;
    }
    closedir(d);
    return rc;
}

enum rc
fs_rmtree_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return RC_OK;
    int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return errno == ENOENT ? RC_OK : RC_IO;
    (void)fchmod(sub, 0700);
    enum rc rc = rmtree_fd(sub, 0);
    close(sub);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        log_errno("rmdir %s", name);
        return RC_IO;
    }
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

static enum rc
copy_tree(int sfd, int dfd, int depth)
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
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
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
            rc = (s2 < 0 || d2 < 0) ? RC_IO : copy_tree(s2, d2, depth + 1);
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        } else if (S_ISREG(st.st_mode)) {
            int s2 = openat(sfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = openat(dfd, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            (st.st_mode & 0111) ? 0755 : 0644);
            uint64_t n = 0;
            rc = (s2 < 0 || d2 < 0) ? RC_IO : fs_copy_fd(s2, d2, UINT64_MAX, &n);
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        }
    }
    closedir(d);
    return rc;
}

enum rc
fs_copy_tree(int src_dirfd, int dst_dirfd)
{
    return copy_tree(src_dirfd, dst_dirfd, 0);
}

uint64_t
fs_free_mb(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) != 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024);
}
