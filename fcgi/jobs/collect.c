/* collect: copies a hostile sandbox's outputs (a directory tree or a tar stream) into a job's
 * outputs/ dir, regular files only and capped; and writes tars of trusted trees for staging.
 *
 * Both copy paths share one sink: it creates directories one component at a time with
 * mkdirat + openat(O_NOFOLLOW|O_DIRECTORY) relative to the destination's fd, creates files
 * with O_CREAT|O_EXCL|O_NOFOLLOW, counts entries and bytes as they are really written, and on
 * going over a cap removes the half-written file, sets over_limit and makes the walk stop.
 * Nothing on the source side is trusted: names are validated, every source entry is opened
 * with O_NOFOLLOW and re-checked with fstat on the opened fd, tar header sizes are ignored.
 */
#include "jobs/collect.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "log.h"
#include "parse/names.h"
#include "util/fsutil.h"
#include "util/span.h"

#define COPY_CHUNK      ((size_t)64 * 1024) /* bytes per read/write while copying */
#define TAR_ENTRY_SLACK 4096u /* tar stream bytes allowed per entry beyond file data */
#define MAKE_TAR_DEPTH  64    /* nesting cap of collect_make_tar's trusted tree */

/*** The destination side ***/

struct sink {
    int root_fd;                      /* dst_dirfd, borrowed */
    const struct collect_limits *lim; /* caps, borrowed */
    struct collect_stats *st;         /* caller's counters */
    uint64_t entries;                 /* files + directories created */
    char *buf;                        /* COPY_CHUNK bytes, owned */
};

/* Reads up to len bytes from the source into buf: bytes read, 0 at end, -1 on failure. */
typedef ssize_t src_read_fn(void *src, void *buf, size_t len);

/* entry_fits: room for one more file or directory; sets over_limit when there is none. */
static bool
entry_fits(struct sink *s)
{
    if (s->entries < s->lim->max_files)
        return true;
    s->st->over_limit = true;
    return false;
}

/* rel_is_safe: a relative output path we are willing to create. The explicit checks repeat
 * part of names_check_relpath on purpose: this is the wall against writing outside dst. */
static bool
rel_is_safe(const char *rel, size_t len)
{
    const char *why = NULL;
    if (len == 0 || len > OUTPUT_PATH_MAX || rel[0] == '/')
        return false;
    unsigned comps = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && rel[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0 || n > NAME_MAX || (n == 1 && rel[i] == '.') ||
            (n == 2 && rel[i] == '.' && rel[i + 1] == '.'))
            return false;
        if (++comps > OUTPUT_DEPTH_MAX)
            return false;
        i = j + 1;
    }
    if (rel[len - 1] == '/' || memchr(rel, '\0', len) != NULL)
        return false;
    if (names_check_relpath((struct span){rel, len}, &why) != RC_OK) {
        log_debug("collect: name refused (%s)", why ? why : "?");
        return false;
    }
    return true;
}

/* open_dir: open directory name in dirfd, creating it (mode 0755, counted as an entry) when it
 * is missing. RC_OK with *out_fd >= 0, or with *out_fd == -1 when the entry cap was hit;
 * RC_CONFLICT when something that is not a directory is in the way; RC_IO on a system error
 * (logged). */
static enum rc
open_dir(struct sink *s, int dirfd, const char *name, int *out_fd)
{
    *out_fd = -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        *out_fd = fd;
        return RC_OK;
    }
    if (errno == ENOTDIR || errno == ELOOP)
        return RC_CONFLICT;
    if (errno != ENOENT) {
        log_errno("collect: openat %s", name);
        return RC_IO;
    }
    if (!entry_fits(s))
        return RC_OK;
    if (mkdirat(dirfd, name, 0755) != 0) {
        log_errno("collect: mkdirat %s", name);
        return RC_IO;
    }
    s->entries++;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        log_errno("collect: openat %s", name);
        return RC_IO;
    }
    if (fchmod(fd, 0755) != 0) {
        log_errno("collect: fchmod %s", name);
        close(fd);
        return RC_IO;
    }
    *out_fd = fd;
    return RC_OK;
}

/* fill_file: create name in dirfd (O_EXCL, mode 0644) and copy the source into it, counting
 * bytes as they are read. RC_OK when copied, or with over_limit set and nothing left behind
 * when a cap was hit; RC_CONFLICT when name exists; RC_BADREQ when the source failed (the
 * partial file is removed); RC_IO on a system error on our side (logged). */
static enum rc
fill_file(struct sink *s, int dirfd, const char *name, const char *rel, src_read_fn *rd, void *src)
{
    enum rc rc = RC_IO;
    bool done = false;
    uint64_t n = 0, room = s->lim->max_bytes - s->st->bytes;
    int fd = -1;

    if (!entry_fits(s))
        return RC_OK;
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return RC_CONFLICT;
        log_errno("collect: create %s", rel);
        return RC_IO;
    }
    if (fchmod(fd, 0644) != 0) {
        log_errno("collect: fchmod %s", rel);
        goto out;
    }
    for (;;) {
        ssize_t r = rd(src, s->buf, COPY_CHUNK);
        if (r < 0) {
            rc = RC_BADREQ;
            goto out;
        }
        if (r == 0)
            break;
        if ((uint64_t)r > room - n) {
            log_info("collect: %s goes over the byte cap", rel);
            s->st->over_limit = true;
            rc = RC_OK;
            goto out;
        }
        if (fs_write_all(fd, s->buf, (size_t)r) != RC_OK) {
            log_errno("collect: write %s", rel);
            goto out;
        }
        n += (uint64_t)r;
    }
    s->st->bytes += n;
    s->st->files++;
    s->entries++;
    done = true;
    rc = RC_OK;
out:
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && !done)
        (void)unlinkat(dirfd, name, 0);
    return rc;
}

static enum rc
sink_init(struct sink *s, int dst_dirfd, const struct collect_limits *lim,
          struct collect_stats *out)
{
    memset(out, 0, sizeof(*out));
    s->root_fd = dst_dirfd;
    s->lim = lim;
    s->st = out;
    s->entries = 0;
    s->buf = malloc(COPY_CHUNK);
    return s->buf != NULL ? RC_OK : RC_NOMEM;
}

static void
sink_fini(struct sink *s)
{
    free(s->buf);
    s->buf = NULL;
}

/*** collect_tree ***/

static ssize_t
fd_read(void *src, void *buf, size_t len)
{
    const int *fd = src;
    for (;;) {
        ssize_t r = read(*fd, buf, len);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r;
    }
}

/* skip: count an entry that is not copied; its name is hostile, so it is logged escaped and
 * cut to 64 bytes. */
static void
skip(struct sink *s, const char *rel, const char *why)
{
    char safe[65];
    size_t i = 0;
    s->st->skipped++;
    if (log_threshold < LOG_DEBUG)
        return;
    for (; rel[i] != '\0' && i < sizeof(safe) - 1; i++) {
        unsigned char c = (unsigned char)rel[i];
        safe[i] = (char)((c < 0x20 || c >= 0x7f) ? '?' : c);
    }
    safe[i] = '\0';
    log_debug("collect: skipped %s: %s", safe, why);
}

static enum rc walk(struct sink *s, int src_fd, int dst_fd, char *rel, size_t rel_len,
                    unsigned depth);

/* walk_entry: copy the entry name of the source directory sdir into dst_fd; rel[0..len) is
 * its relative path, with depth components. Skips are counted and return RC_OK; a cap sets
 * over_limit and returns RC_OK; RC_IO on a system error on our side. */
static enum rc
walk_entry(struct sink *s, int sdir, int dst_fd, const char *name, char *rel, size_t len,
           unsigned depth)
{
    enum rc rc = RC_OK;
    struct stat sb;
    if (!rel_is_safe(rel, len)) {
        skip(s, rel, "bad name");
        return RC_OK;
    }
    if (fstatat(sdir, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        skip(s, rel, "vanished");
        return RC_OK;
    }
    if (S_ISDIR(sb.st_mode)) {
        int sfd = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0) {
            skip(s, rel, "cannot open directory");
            return RC_OK;
        }
        int dfd = -1;
        rc = open_dir(s, dst_fd, name, &dfd);
        if (rc != RC_OK || dfd < 0) {
            close(sfd);
            if (rc == RC_CONFLICT) {
                skip(s, rel, "exists in destination");
                rc = RC_OK;
            }
            return rc;
        }
        rc = walk(s, sfd, dfd, rel, len, depth);
        close(dfd);
        return rc;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        skip(s, rel, S_ISREG(sb.st_mode) ? "hard link" : "not a regular file");
        return RC_OK;
    }
    /* O_NONBLOCK: a FIFO swapped in since fstatat must not block the open; the fstat on the
     * opened fd is what counts. */
    int sfd = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (sfd < 0) {
        skip(s, rel, "cannot open");
        return RC_OK;
    }
    if (fstat(sfd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        skip(s, rel, "changed under us");
        goto out;
    }
    if ((uint64_t)sb.st_size > s->lim->max_bytes - s->st->bytes) {
        log_info("collect: %s goes over the byte cap", rel);
        s->st->over_limit = true;
        goto out;
    }
    rc = fill_file(s, dst_fd, name, rel, fd_read, &sfd);
    if (rc == RC_CONFLICT || rc == RC_BADREQ) {
        skip(s, rel, rc == RC_CONFLICT ? "exists in destination" : "read failed");
        rc = RC_OK;
    }
out:
    close(sfd);
    return rc;
}

/* walk: copy the directory src_fd (owned: closed here) whose relative path is rel[0..rel_len)
 * with depth components into dst_fd (borrowed). rel is a buffer of OUTPUT_PATH_MAX + 1 bytes. */
static enum rc
walk(struct sink *s, int src_fd, int dst_fd, char *rel, size_t rel_len, unsigned depth)
{
    enum rc rc = RC_OK;
    DIR *d = fdopendir(src_fd);
    if (d == NULL) {
        log_errno("collect: fdopendir %s", rel_len ? rel : ".");
        close(src_fd);
        return RC_IO;
    }
    while (rc == RC_OK && !s->st->over_limit) {
        errno = 0;
        const struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                log_errno("collect: readdir %s", rel_len ? rel : ".");
                rc = RC_IO;
            }
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t nlen = strlen(name), len = rel_len + (rel_len ? 1 : 0) + nlen;
        if (len > OUTPUT_PATH_MAX || depth + 1 > OUTPUT_DEPTH_MAX) {
            skip(s, name, "too long or too deep");
            continue;
        }
        if (rel_len)
            rel[rel_len] = '/';
        memcpy(rel + len - nlen, name, nlen);
        rel[len] = '\0';
        rc = walk_entry(s, dirfd(d), dst_fd, name, rel, len, depth + 1);
        rel[rel_len] = '\0';
    }
    closedir(d);
    return rc;
}

enum rc
collect_tree(int src_dirfd, int dst_dirfd, const struct collect_limits *lim,
             struct collect_stats *out)
{
    struct sink s;
    char rel[OUTPUT_PATH_MAX + 1];
    enum rc rc = sink_init(&s, dst_dirfd, lim, out);
    if (rc != RC_OK)
        return rc;
    int fd = openat(src_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_errno("collect: open source dir");
        rc = RC_IO;
        goto out;
    }
    rel[0] = '\0';
    rc = walk(&s, fd, dst_dirfd, rel, 0, 0);
out:
    sink_fini(&s);
    return rc;
}

/*** collect_tar_fd / collect_tar_mem ***/

static ssize_t
tar_read(void *src, void *buf, size_t len)
{
    la_ssize_t r = archive_read_data(src, buf, len);
    return r < 0 ? -1 : (ssize_t)r;
}

/* strip: the path of an entry relative to prefix (both with any leading "./" removed):
 * NULL when the entry lies outside prefix, "" for prefix itself. */
static const char *
strip(const char *path, const char *prefix, size_t plen)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (plen == 0)
        return path;
    if (strncmp(path, prefix, plen) != 0)
        return NULL;
    if (path[plen] == '\0')
        return path + plen;
    if (path[plen] != '/')
        return NULL;
    return path + plen + 1;
}

/* tar_entry: create the directory or regular file rel (already validated); RC_CONFLICT when
 * something is in the way, else as fill_file / open_dir. */
static enum rc
tar_entry(struct sink *s, struct archive *a, const char *rel, bool is_dir)
{
    enum rc rc = RC_OK;
    char name[NAME_MAX + 1];
    int cur = s->root_fd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n > NAME_MAX) {
            rc = RC_CONFLICT;
            goto out;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (slash == NULL && !is_dir) {
            rc = fill_file(s, cur, name, rel, tar_read, a);
            goto out;
        }
        int next = -1;
        rc = open_dir(s, cur, name, &next);
        if (rc != RC_OK || next < 0)
            goto out;
        if (cur != s->root_fd)
            close(cur);
        cur = next;
        if (slash == NULL)
            goto out;
        p = slash + 1;
    }
out:
    if (cur != s->root_fd)
        close(cur);
    return rc;
}

static enum rc
tar_collect(struct archive *a, const char *strip_prefix, struct sink *s)
{
    char prefix[OUTPUT_PATH_MAX + 1], rel[OUTPUT_PATH_MAX + 2];
    const char *pfx = strip_prefix ? strip_prefix : "";
    while (pfx[0] == '.' && pfx[1] == '/')
        pfx += 2;
    size_t plen = strlen(pfx);
    while (plen > 0 && pfx[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(prefix))
        return RC_BADREQ;
    memcpy(prefix, pfx, plen);
    prefix[plen] = '\0';

    /* The stream as a whole is capped too, so that ignored or skipped entries (whose data
     * libarchive reads through) cannot make us decompress without end. */
    uint64_t max_bytes = s->lim->max_bytes, max_files = s->lim->max_files;
    uint64_t slack = (max_files < UINT64_MAX / TAR_ENTRY_SLACK - 1024)
                         ? (max_files + 1024) * TAR_ENTRY_SLACK
                         : UINT64_MAX;
    uint64_t stream_cap =
        max_bytes <= (UINT64_MAX - slack) / 2 ? 2 * max_bytes + slack : UINT64_MAX;
    for (;;) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            return RC_OK;
        if (r < ARCHIVE_WARN) {
            log_info("collect: bad tar: %s", archive_error_string(a));
            return RC_BADREQ;
        }
        la_int64_t pos = archive_read_header_position(a);
        la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
        if (pos < 0 || size < 0 || (uint64_t)pos > stream_cap ||
            (uint64_t)size > stream_cap - (uint64_t)pos) {
            log_info("collect: tar stream goes over its cap");
            s->st->over_limit = true;
            return RC_OK;
        }
        const char *path = archive_entry_pathname_utf8(e);
        if (path == NULL)
            path = archive_entry_pathname(e);
        if (path == NULL) {
            skip(s, "?", "no usable name");
            continue;
        }
        const char *rp = strip(path, prefix, plen);
        if (rp == NULL)
            continue; /* not an output at all: neither copied nor counted */
        mode_t type = archive_entry_filetype(e);
        bool is_dir = type == AE_IFDIR;
        size_t len = strlen(rp);
        if (is_dir)
            while (len > 0 && rp[len - 1] == '/')
                len--;
        if (len == 0 && is_dir)
            continue; /* the prefix directory itself */
        if (len > OUTPUT_PATH_MAX) {
            skip(s, "(long)", "name too long");
            continue;
        }
        memcpy(rel, rp, len);
        rel[len] = '\0';
        if (archive_entry_hardlink(e) != NULL) {
            skip(s, rel, "hard link");
            continue;
        }
        if (type != AE_IFREG && !is_dir) {
            skip(s, rel, "not a regular file");
            continue;
        }
        if (!rel_is_safe(rel, len)) {
            skip(s, rel, "bad name");
            continue;
        }
        enum rc rc = tar_entry(s, a, rel, is_dir);
        if (rc == RC_CONFLICT) {
            skip(s, rel, "in the way of an earlier entry");
            continue;
        }
        if (rc == RC_BADREQ) {
            log_info("collect: bad tar data at %s: %s", rel, archive_error_string(a));
            return RC_BADREQ;
        }
        if (rc != RC_OK)
            return rc;
        if (s->st->over_limit)
            return RC_OK;
    }
}

static enum rc
tar_reader_new(struct archive **out_a)
{
    *out_a = NULL;
    struct archive *a = archive_read_new();
    if (a == NULL)
        return RC_NOMEM;
    /* gzip must be handled in-process (zlib); ARCHIVE_WARN would mean an external program. */
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(a) != ARCHIVE_OK) {
        log_err("collect: libarchive lacks tar or zlib support: %s", archive_error_string(a));
        archive_read_free(a);
        return RC_UNSUPPORTED;
    }
    *out_a = a;
    return RC_OK;
}

static enum rc
tar_run(struct archive *a, int opened, const char *strip_prefix, int dst_dirfd,
        const struct collect_limits *lim, struct collect_stats *out)
{
    struct sink s;
    enum rc rc = sink_init(&s, dst_dirfd, lim, out);
    if (rc != RC_OK)
        goto out;
    if (opened != ARCHIVE_OK) {
        log_info("collect: cannot open tar: %s", archive_error_string(a));
        rc = RC_BADREQ;
        goto out;
    }
    rc = tar_collect(a, strip_prefix, &s);
out:
    sink_fini(&s);
    archive_read_free(a);
    return rc;
}

enum rc
collect_tar_fd(int fd, const char *strip_prefix, int dst_dirfd, const struct collect_limits *lim,
               struct collect_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct archive *a = NULL;
    enum rc rc = tar_reader_new(&a);
    if (rc != RC_OK)
        return rc;
    int r = archive_read_open_fd(a, fd, COPY_CHUNK);
    return tar_run(a, r, strip_prefix, dst_dirfd, lim, out);
}

enum rc
collect_tar_mem(const void *p, size_t len, const char *strip_prefix, int dst_dirfd,
                const struct collect_limits *lim, struct collect_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct archive *a = NULL;
    enum rc rc = tar_reader_new(&a);
    if (rc != RC_OK)
        return rc;
    int r = archive_read_open_memory(a, p, len);
    return tar_run(a, r, strip_prefix, dst_dirfd, lim, out);
}

/*** collect_make_tar ***/

struct tar_out {
    collect_write_fn *fn; /* the caller's sink */
    void *ctx;            /* its argument */
    enum rc rc;           /* first failure of fn */
    bool dead;            /* set on failure: nothing more reaches fn */
    unsigned uid, gid;    /* owner recorded in every entry */
    char *buf;            /* COPY_CHUNK bytes */
    char path[PATH_MAX];  /* prefix + relative path of the current entry */
};

static la_ssize_t
tar_write_cb(struct archive *a, void *client, const void *buf, size_t len)
{
    struct tar_out *o = client;
    if (o->dead) {
        archive_set_error(a, EIO, "tar abandoned");
        return -1;
    }
    enum rc rc = o->fn(o->ctx, buf, len);
    if (rc != RC_OK) {
        o->rc = rc;
        o->dead = true;
        archive_set_error(a, EIO, "write_fn: %s", rc_str(rc));
        return -1;
    }
    return (la_ssize_t)len;
}

/* tar_fail: the rc for a failed archive_write_* call. */
static enum rc
tar_fail(struct archive *a, const struct tar_out *o, const char *what)
{
    if (o->rc != RC_OK)
        return o->rc;
    log_err("collect: %s %s: %s", what, o->path, archive_error_string(a));
    return RC_IO;
}

static enum rc
tar_header(struct archive *a, struct tar_out *o, const struct stat *sb)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return RC_NOMEM;
    archive_entry_set_pathname(e, o->path);
    archive_entry_set_filetype(e, S_ISDIR(sb->st_mode) ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, sb->st_mode & 0777);
    archive_entry_set_size(e, S_ISREG(sb->st_mode) ? sb->st_size : 0);
    archive_entry_set_mtime(e, sb->st_mtim.tv_sec, 0);
    archive_entry_set_uid(e, o->uid);
    archive_entry_set_gid(e, o->gid);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    return r < ARCHIVE_WARN ? tar_fail(a, o, "header") : RC_OK;
}

/* tar_file: the header and data of the regular file fd (owned: closed here). */
static enum rc
tar_file(struct archive *a, struct tar_out *o, int fd)
{
    enum rc rc = RC_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        log_warn("collect: %s is not a regular file, left out", o->path);
        goto out;
    }
    rc = tar_header(a, o, &sb);
    if (rc != RC_OK)
        goto out;
    /* Exactly st_size bytes: libarchive pads a file that shrank meanwhile with zeros. */
    uint64_t left = (uint64_t)sb.st_size;
    while (left > 0) {
        size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
        ssize_t r = fd_read(&fd, o->buf, want);
        if (r < 0) {
            log_errno("collect: read %s", o->path);
            rc = RC_IO;
            goto out;
        }
        if (r == 0)
            break;
        if (archive_write_data(a, o->buf, (size_t)r) < 0) {
            rc = tar_fail(a, o, "data");
            goto out;
        }
        left -= (uint64_t)r;
    }
    if (archive_write_finish_entry(a) < ARCHIVE_WARN)
        rc = tar_fail(a, o, "finish");
out:
    close(fd);
    return rc;
}

/* tar_dir: the entries below directory fd (owned: closed here); o->path[0..plen) is its path
 * in the archive, ending in '/' or empty. */
static enum rc
tar_dir(struct archive *a, struct tar_out *o, int fd, size_t plen, unsigned depth)
{
    enum rc rc = RC_OK;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        log_errno("collect: fdopendir %s", o->path);
        close(fd);
        return RC_IO;
    }
    for (;;) {
        errno = 0;
        const struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                log_errno("collect: readdir %s", o->path);
                rc = RC_IO;
            }
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t nlen = strlen(name);
        if (plen + nlen + 2 > sizeof(o->path) || depth >= MAKE_TAR_DEPTH) {
            log_err("collect: tree too deep or path too long under %s", o->path);
            rc = RC_TOOBIG;
            break;
        }
        memcpy(o->path + plen, name, nlen + 1);
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            log_errno("collect: fstatat %s", o->path);
            rc = RC_IO;
            break;
        }
        if (S_ISDIR(sb.st_mode)) {
            int sfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sfd < 0) {
                log_errno("collect: openat %s", o->path);
                rc = RC_IO;
                break;
            }
            rc = tar_header(a, o, &sb);
            if (rc != RC_OK) {
                close(sfd);
                break;
            }
            o->path[plen + nlen] = '/';
            o->path[plen + nlen + 1] = '\0';
            rc = tar_dir(a, o, sfd, plen + nlen + 1, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            int sfd =
                openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (sfd < 0) {
                log_errno("collect: openat %s", o->path);
                rc = RC_IO;
                break;
            }
            rc = tar_file(a, o, sfd);
        } else {
            log_warn("collect: %s is not a regular file or directory, left out", o->path);
        }
        if (rc != RC_OK)
            break;
    }
    o->path[plen] = '\0';
    closedir(d);
    return rc;
}

enum rc
collect_make_tar(int src_dirfd, const char *prefix, unsigned uid, unsigned gid,
                 collect_write_fn *write_fn, void *ctx)
{
    enum rc rc = RC_NOMEM;
    struct archive *a = NULL;
    struct tar_out *o = calloc(1, sizeof(*o));
    int fd = -1;
    if (o == NULL)
        goto out;
    o->fn = write_fn;
    o->ctx = ctx;
    o->uid = uid;
    o->gid = gid;
    o->buf = malloc(COPY_CHUNK);
    a = archive_write_new();
    if (o->buf == NULL || a == NULL)
        goto out;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen + 2 > sizeof(o->path)) {
        rc = RC_TOOBIG;
        goto out;
    }
    if (plen > 0)
        memcpy(o->path, prefix, plen);
    o->path[plen] = '\0';

    rc = RC_IO;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open(a, o, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
        rc = tar_fail(a, o, "open");
        goto out;
    }
    fd = openat(src_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_errno("collect: open source dir");
        goto out;
    }
    if (plen > 0) {
        /* The prefix directory itself, with the root's mode and mtime. */
        struct stat sb;
        if (fstat(fd, &sb) != 0) {
            log_errno("collect: fstat source dir");
            goto out;
        }
        while (plen > 0 && o->path[plen - 1] == '/')
            o->path[--plen] = '\0';
        if (plen > 0) {
            rc = tar_header(a, o, &sb);
            if (rc != RC_OK)
                goto out;
            o->path[plen++] = '/';
            o->path[plen] = '\0';
        }
    }
    rc = tar_dir(a, o, fd, plen, 0);
    fd = -1;
    if (rc != RC_OK)
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK)
        rc = tar_fail(a, o, "close");
out:
    if (fd >= 0)
        close(fd);
    /* A failed tar must not be finished off with a valid-looking end-of-archive. */
    if (o != NULL && rc != RC_OK)
        o->dead = true;
    /* libarchive 3.6 frees its client buffer only in close, which free skips once the
     * archive is in the FATAL state (a failed write): close explicitly on failure. */
    if (a != NULL && rc != RC_OK)
        (void)archive_write_close(a);
    if (a != NULL)
        archive_write_free(a);
    if (o != NULL)
        free(o->buf);
    free(o);
    return rc;
}
