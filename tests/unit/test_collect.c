/* test_collect: output collection from hostile trees and tars, and make_tar round trips. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "defaults.h"
#include "jobs/collect.h"
#include "log.h"
#include "util/fsutil.h"

static char root[64]; /* the mkdtemp directory, removed at the end */
static int root_fd = -1;

static const struct collect_limits big = {1ull << 30, 100000};

/*** Setup helpers: a setup failure ends the test at once. ***/

static void
die(const char *what, const char *path)
{
    (void)fprintf(stderr, "setup failed: %s %s: %s\n", what, path, strerror(errno));
    exit(2);
}

static int
mkdir_open(int dirfd, const char *path)
{
    if (mkdirat(dirfd, path, 0755) != 0 && errno != EEXIST)
        die("mkdirat", path);
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die("openat", path);
    return fd;
}

static void
put(int dirfd, const char *path, const void *p, size_t len, mode_t mode)
{
    int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || fs_write_all(fd, p, len) != RC_OK)
        die("write", path);
    close(fd);
}

static void
put_str(int dirfd, const char *path, const char *s)
{
    put(dirfd, path, s, strlen(s), 0644);
}

/* fill_random: deterministic bytes covering every value, NULs included. */
static unsigned char *
fill_random(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len ? len : 1);
    if (p == NULL)
        die("malloc", "");
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(i < 256 ? i : (x >> 16));
    }
    return p;
}

/*** Inspection helpers ***/

/* is_file: path is a regular file of mode 0644 with exactly these bytes. */
static bool
is_file(int dirfd, const char *path, const void *p, size_t len)
{
    struct stat sb;
    if (fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
        (sb.st_mode & 07777) != 0644 || (size_t)sb.st_size != len)
        return false;
    char *got = NULL;
    size_t got_len = 0;
    if (fs_read_all(dirfd, path, len + 1, &got, &got_len) != RC_OK)
        return false;
    bool same = got_len == len && (len == 0 || memcmp(got, p, len) == 0);
    free(got);
    return same;
}

static bool
is_dir(int dirfd, const char *path)
{
    struct stat sb;
    return fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode) &&
           (sb.st_mode & 07777) == 0755;
}

static bool
exists(int dirfd, const char *path)
{
    struct stat sb;
    return fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

/* count_tree: entries below dirfd; *out_odd counts anything not a regular file or directory. */
static int
count_tree(int dirfd, int *out_odd)
{
    int n = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL)
        die("fdopendir", "count_tree");
    for (;;) {
        const struct dirent *de = readdir(d);
        if (de == NULL)
            break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            die("fstatat", de->d_name);
        n++;
        if (S_ISDIR(sb.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                die("openat", de->d_name);
            n += count_tree(sub, out_odd);
            close(sub);
        } else if (!S_ISREG(sb.st_mode)) {
            (*out_odd)++;
        }
    }
    closedir(d);
    return n;
}

static int
count_all(int dirfd)
{
    int odd = 0;
    int n = count_tree(dirfd, &odd);
    CHECK_INT(odd, 0);
    return n;
}

/* same_tree: every entry of a is in b with the same type and bytes, and b has no others. */
static bool
same_tree(int a, int b)
{
    int fd = openat(a, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL)
        die("fdopendir", "same_tree");
    int odd = 0;
    bool same = count_tree(a, &odd) == count_tree(b, &odd);
    while (same) {
        const struct dirent *de = readdir(d);
        if (de == NULL)
            break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat sa;
        if (fstatat(a, de->d_name, &sa, AT_SYMLINK_NOFOLLOW) != 0)
            die("fstatat", de->d_name);
        if (S_ISDIR(sa.st_mode)) {
            int sa_fd = openat(a, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int sb_fd = openat(b, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            same = sa_fd >= 0 && sb_fd >= 0 && same_tree(sa_fd, sb_fd);
            if (sa_fd >= 0)
                close(sa_fd);
            if (sb_fd >= 0)
                close(sb_fd);
        } else {
            char *p = NULL;
            size_t len = 0;
            if (fs_read_all(a, de->d_name, 1 << 24, &p, &len) != RC_OK)
                die("read", de->d_name);
            same = is_file(b, de->d_name, p, len);
            free(p);
        }
        if (!same)
            (void)fprintf(stderr, "same_tree: %s differs\n", de->d_name);
    }
    closedir(d);
    return same;
}

/*** In-memory tars built with libarchive ***/

struct mbuf {
    unsigned char *p;
    size_t len, cap;
    int fail_after; /* mbuf_write fails once this many calls succeeded; -1 never */
};

static enum rc
mbuf_write(void *ctx, const void *p, size_t len)
{
    struct mbuf *m = ctx;
    if (m->fail_after == 0)
        return RC_BACKEND;
    if (m->fail_after > 0)
        m->fail_after--;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len)
            cap *= 2;
        unsigned char *np = realloc(m->p, cap);
        if (np == NULL)
            return RC_NOMEM;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, p, len);
    m->len += len;
    return RC_OK;
}

static la_ssize_t
tb_cb(struct archive *a, void *ctx, const void *p, size_t len)
{
    (void)a;
    return mbuf_write(ctx, p, len) == RC_OK ? (la_ssize_t)len : -1;
}

static struct archive *
tb_new(struct mbuf *m, bool gzip)
{
    memset(m, 0, sizeof(*m));
    m->fail_after = -1;
    struct archive *a = archive_write_new();
    if (a == NULL || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        (gzip && archive_write_add_filter_gzip(a) != ARCHIVE_OK) ||
        archive_write_open(a, m, NULL, tb_cb, NULL) != ARCHIVE_OK)
        die("archive_write", "open");
    return a;
}

/* tb_add: one entry; type AE_IF*, link is a symlink target, or a hard link target when
 * type is 0 (written as a hard link entry). */
static void
tb_add(struct archive *a, const char *path, unsigned type, const void *p, size_t len,
       const char *link)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type ? type : AE_IFREG);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
    if (type == AE_IFLNK)
        archive_entry_set_symlink(e, link);
    if (type == 0)
        archive_entry_set_hardlink(e, link);
    if (type == AE_IFCHR || type == AE_IFBLK)
        archive_entry_set_rdev(e, makedev(1, 3));
    if (archive_write_header(a, e) < ARCHIVE_WARN)
        die("archive_write_header", archive_error_string(a));
    if (type == AE_IFREG && len > 0 && archive_write_data(a, p, len) != (la_ssize_t)len)
        die("archive_write_data", path);
    archive_entry_free(e);
}

static void
tb_done(struct archive *a)
{
    if (archive_write_close(a) != ARCHIVE_OK)
        die("archive_write_close", "");
    archive_write_free(a);
}

/* tar_names: the pathnames in a tar, '|'-joined in order; *out_uid_ok is cleared by an entry
 * not owned by uid:gid or not a regular file or directory. */
static void
tar_names(const struct mbuf *m, char *out, size_t cap, unsigned uid, unsigned gid, bool *out_ok)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    *out_ok = archive_read_open_memory(a, m->p, m->len) == ARCHIVE_OK;
    out[0] = '\0';
    size_t used = 0;
    while (*out_ok && archive_read_next_header(a, &e) == ARCHIVE_OK) {
        int k =
            snprintf(out + used, cap - used, "%s%s", used ? "|" : "", archive_entry_pathname(e));
        if (k < 0 || (size_t)k >= cap - used)
            die("tar_names", "overflow");
        used += (size_t)k;
        if (archive_entry_uid(e) != uid || archive_entry_gid(e) != gid ||
            (archive_entry_filetype(e) != AE_IFREG && archive_entry_filetype(e) != AE_IFDIR))
            *out_ok = false;
    }
    archive_read_free(a);
}

static bool
tar_has(const struct mbuf *m, const char *path)
{
    char names[8192];
    char want[1100];
    bool ok;
    tar_names(m, names, sizeof(names), 0, 0, &ok);
    (void)snprintf(want, sizeof(want), "|%s|", path);
    char all[8200];
    (void)snprintf(all, sizeof(all), "|%s|", names);
    return strstr(all, want) != NULL;
}

/*** Tree tests ***/

static void
test_tree_hostile(void)
{
    int src = mkdir_open(root_fd, "t1src");
    int dst = mkdir_open(root_fd, "t1dst");
    int outside = mkdir_open(root_fd, "t1outside");
    size_t bin_len = 200000, nested_len = 70000;
    unsigned char *bin = fill_random(bin_len, 1), *nested = fill_random(nested_len, 2);

    put_str(src, "ok.txt", "hello\n");
    put(src, "bin.dat", bin, bin_len, 0644);
    put_str(src, ".hidden", "dot");
    put(src, "run.sh", "#!/bin/sh\n", 10, 0700);
    put_str(src, "caf\xc3\xa9.txt", "utf8"); /* valid UTF-8 is fine */
    close(mkdir_open(src, "emptydir"));
    int sd = mkdir_open(src, "sub");
    int sdd = mkdir_open(sd, "dir");
    put(sdd, "nested.bin", nested, nested_len, 0600);
    close(sdd);
    close(sd);
    int files = 6, dirs = 3, skipped = 0;

    /* Links: to /etc/passwd, to /, dangling, to a directory inside the tree. */
    CHECK_INT(symlinkat("/etc/passwd", src, "link_passwd"), 0);
    CHECK_INT(symlinkat("/", src, "link_root"), 0);
    CHECK_INT(symlinkat("/nonexistent/x", src, "dangle"), 0);
    CHECK_INT(symlinkat("sub", src, "sub_link"), 0);
    skipped += 4;
    /* A hard link to a file outside the tree, and a hard-linked pair inside it. */
    put_str(outside, "secret", "top secret\n");
    CHECK_INT(linkat(outside, "secret", src, "hl_secret", 0), 0);
    put_str(src, "twin1", "twin");
    CHECK_INT(linkat(src, "twin1", src, "twin2", 0), 0);
    skipped += 3;
    /* A FIFO (must not block us) and a unix socket. */
    CHECK_INT(mkfifoat(src, "fifo", 0644), 0);
    skipped += 1;
    int so = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int k = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/t1src/sock", root);
    CHECK(k > 0 && (size_t)k < sizeof(sa.sun_path));
    CHECK_INT(bind(so, (const struct sockaddr *)&sa, sizeof(sa)), 0);
    close(so);
    skipped += 1;
    /* A device node, when we may make one. */
    if (geteuid() == 0 && mknodat(src, "devnull", S_IFCHR | 0666, makedev(1, 3)) == 0)
        skipped += 1;
    else
        printf("test_collect: no mknod here, device node case not run\n");
    /* Names with control characters and invalid UTF-8; a bad directory name hides its tree. */
    put_str(src, "bad\nname", "x");
    put_str(src, "ctl\x01x", "x");
    put_str(src, "esc\x1b[31m", "x");
    put_str(src, "utf\xff\xfe", "x");
    int bd = mkdir_open(src, "dir\x7f");
    put_str(bd, "inner.txt", "x");
    close(bd);
    skipped += 5;

    struct collect_stats st;
    CHECK_INT(collect_tree(src, dst, &big, &st), RC_OK);
    CHECK_INT(st.files, files);
    CHECK_INT(st.bytes, 6 + bin_len + 3 + 10 + 4 + nested_len);
    CHECK_INT(st.skipped, skipped);
    CHECK(!st.over_limit);
    CHECK_INT(count_all(dst), files + dirs);
    CHECK(is_file(dst, "ok.txt", "hello\n", 6));
    CHECK(is_file(dst, "bin.dat", bin, bin_len));
    CHECK(is_file(dst, ".hidden", "dot", 3));
    CHECK(is_file(dst, "run.sh", "#!/bin/sh\n", 10)); /* mode 0644, not 0700 */
    CHECK(is_file(dst, "sub/dir/nested.bin", nested, nested_len));
    CHECK(is_file(dst, "caf\xc3\xa9.txt", "utf8", 4));
    CHECK(is_dir(dst, "emptydir"));
    CHECK(is_dir(dst, "sub"));
    CHECK(is_dir(dst, "sub/dir"));
    CHECK(!exists(dst, "link_passwd"));
    CHECK(!exists(dst, "hl_secret"));
    CHECK(!exists(dst, "twin1"));
    CHECK(!exists(dst, "fifo"));
    CHECK(!exists(dst, "dir\x7f"));
    /* Nothing was written outside dst. */
    CHECK_INT(count_all(outside), 1);
    free(bin);
    free(nested);
    close(src);
    close(dst);
    close(outside);
}

static void
test_tree_depth(void)
{
    int src = mkdir_open(root_fd, "t2src");
    int dst = mkdir_open(root_fd, "t2dst");
    /* 20 nested levels "d", each holding a file "f": a file inside n directories has n + 1
     * path components, so files in levels 0..OUTPUT_DEPTH_MAX-1 arrive. */
    int cur = dup(src);
    for (int i = 0; i < 20; i++) {
        put_str(cur, "f", "leaf");
        int next = mkdir_open(cur, "d");
        close(cur);
        cur = next;
    }
    close(cur);
    struct collect_stats st;
    CHECK_INT(collect_tree(src, dst, &big, &st), RC_OK);
    CHECK_INT(st.files, OUTPUT_DEPTH_MAX);
    CHECK_INT(st.skipped, 2);
    CHECK(!st.over_limit);
    CHECK_INT(count_all(dst), 2 * OUTPUT_DEPTH_MAX);
    char path[128] = "";
    size_t n = 0;
    for (int i = 0; i < OUTPUT_DEPTH_MAX - 1; i++) {
        memcpy(path + n, "d/", 3);
        n += 2;
    }
    memcpy(path + n, "f", 2);
    CHECK(is_file(dst, path, "leaf", 4)); /* 16 components */
    memcpy(path + n, "d/f", 4);
    CHECK(!exists(dst, path)); /* 17 components */
    close(src);
    close(dst);
}

static void
test_tree_caps(void)
{
    struct collect_stats st;
    int src = mkdir_open(root_fd, "t3src");
    char name[16], data[600];
    memset(data, 'x', sizeof(data));
    for (int i = 0; i < 6; i++) {
        (void)snprintf(name, sizeof(name), "f%d", i);
        put(src, name, data, sizeof(data), 0644);
    }

    /* Too many files. */
    int dst = mkdir_open(root_fd, "t3dst_files");
    struct collect_limits lim = {1 << 20, 3};
    CHECK_INT(collect_tree(src, dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 3);
    CHECK_INT(count_all(dst), 3);
    close(dst);

    /* Too many bytes: the file that does not fit is not left behind half-written. */
    dst = mkdir_open(root_fd, "t3dst_bytes");
    lim = (struct collect_limits){1000, 100};
    CHECK_INT(collect_tree(src, dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 1);
    CHECK_INT(st.bytes, 600);
    CHECK_INT(count_all(dst), 1);
    close(dst);

    /* Exactly at both caps is fine. */
    dst = mkdir_open(root_fd, "t3dst_exact");
    lim = (struct collect_limits){3600, 6};
    CHECK_INT(collect_tree(src, dst, &lim, &st), RC_OK);
    CHECK(!st.over_limit);
    CHECK_INT(st.files, 6);
    CHECK_INT(st.bytes, 3600);
    close(dst);
    close(src);

    /* Directories count as entries: a/b/c uses up 3, the file below them does not fit. */
    src = mkdir_open(root_fd, "t3src_dirs");
    int a = mkdir_open(src, "a"), b = mkdir_open(a, "b"), c = mkdir_open(b, "c");
    put_str(c, "f", "x");
    close(c);
    close(b);
    close(a);
    dst = mkdir_open(root_fd, "t3dst_dirs");
    lim = (struct collect_limits){1 << 20, 3};
    CHECK_INT(collect_tree(src, dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 0);
    CHECK_INT(count_all(dst), 3);
    close(dst);
    close(src);
}

/*** Tar tests ***/

static void
test_tar_hostile(void)
{
    struct mbuf m;
    struct collect_stats st;
    int dst = mkdir_open(root_fd, "t4dst");
    int outside = mkdir_open(root_fd, "t4outside");
    char abs_path[256], outside_dir[256];
    (void)snprintf(abs_path, sizeof(abs_path), "%s/t4outside/abs.txt", root);
    (void)snprintf(outside_dir, sizeof(outside_dir), "%s/t4outside", root);
    size_t bin_len = 100000;
    unsigned char *bin = fill_random(bin_len, 3);

    struct archive *a = tb_new(&m, false);
    tb_add(a, "outputs/", AE_IFDIR, NULL, 0, NULL);
    tb_add(a, "outputs/ok.txt", AE_IFREG, "ok\n", 3, NULL);
    tb_add(a, "./outputs/dot.txt", AE_IFREG, "dot", 3, NULL);
    tb_add(a, "outputs/sub/deep/bin.dat", AE_IFREG, bin, bin_len, NULL);
    tb_add(a, "outputs/../escape1.txt", AE_IFREG, "e", 1, NULL);
    tb_add(a, "outputs/a/../../escape2.txt", AE_IFREG, "e", 1, NULL);
    tb_add(a, "outputs/sub/..", AE_IFDIR, NULL, 0, NULL);
    tb_add(a, "../escape3.txt", AE_IFREG, "e", 1, NULL); /* outside the prefix */
    tb_add(a, abs_path, AE_IFREG, "e", 1, NULL);         /* outside the prefix */
    tb_add(a, "other/x.txt", AE_IFREG, "o", 1, NULL);    /* outside the prefix */
    tb_add(a, "outputs/lnk", AE_IFLNK, NULL, 0, outside_dir);
    tb_add(a, "outputs/lnk/through.txt", AE_IFREG, "t", 1, NULL);
    tb_add(a, "outputs/up", AE_IFLNK, NULL, 0, "../..");
    tb_add(a, "outputs/up/through2.txt", AE_IFREG, "t", 1, NULL);
    tb_add(a, "outputs/hl", 0, NULL, 0, "outputs/ok.txt");
    tb_add(a, "outputs/hl2", 0, NULL, 0, "/etc/passwd");
    tb_add(a, "outputs/dev", AE_IFCHR, NULL, 0, NULL);
    tb_add(a, "outputs/blk", AE_IFBLK, NULL, 0, NULL);
    tb_add(a, "outputs/fifo", AE_IFIFO, NULL, 0, NULL);
    tb_add(a, "outputs/bad\x01name", AE_IFREG, "b", 1, NULL);
    tb_add(a, "outputs/bad\nname", AE_IFREG, "b", 1, NULL);
    tb_add(a, "outputs//double", AE_IFREG, "b", 1, NULL);
    tb_add(a, "outputs/ok.txt", AE_IFREG, "second", 6, NULL);  /* duplicate: first wins */
    tb_add(a, "outputs/ok.txt/under", AE_IFREG, "u", 1, NULL); /* a file is in the way */
    tb_done(a);
    /* The hostile names really are in the stream as written. */
    CHECK(tar_has(&m, "outputs/../escape1.txt"));
    CHECK(tar_has(&m, abs_path));
    CHECK(tar_has(&m, "outputs/lnk"));

    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &big, &st), RC_OK);
    CHECK_INT(st.files, 5);
    CHECK_INT(st.bytes, 3 + 3 + bin_len + 1 + 1);
    /* escape1 escape2 sub/.. lnk up hl hl2 dev blk fifo bad x2 double duplicate under */
    CHECK_INT(st.skipped, 15);
    CHECK(!st.over_limit);
    CHECK(is_file(dst, "ok.txt", "ok\n", 3));
    CHECK(is_file(dst, "dot.txt", "dot", 3));
    CHECK(is_file(dst, "sub/deep/bin.dat", bin, bin_len));
    /* The file "through" a skipped symlink lands in a real directory inside dst. */
    CHECK(is_dir(dst, "lnk"));
    CHECK(is_file(dst, "lnk/through.txt", "t", 1));
    CHECK(is_file(dst, "up/through2.txt", "t", 1));
    CHECK_INT(count_all(dst), 9); /* 5 files; sub, sub/deep, lnk, up */
    CHECK_INT(count_all(outside), 0);
    CHECK(!exists(root_fd, "escape1.txt"));
    CHECK(!exists(root_fd, "escape2.txt"));
    CHECK(!exists(root_fd, "escape3.txt"));
    close(dst);

    /* With no prefix, absolute and ".." names are skipped and counted. */
    dst = mkdir_open(root_fd, "t4dst_noprefix");
    CHECK_INT(collect_tar_mem(m.p, m.len, "", dst, &big, &st), RC_OK);
    CHECK(is_file(dst, "outputs/ok.txt", "ok\n", 3));
    CHECK(is_file(dst, "other/x.txt", "o", 1));
    CHECK(!exists(dst, "escape3.txt"));
    CHECK_INT(st.files, 6);
    CHECK_INT(st.skipped, 17);
    CHECK_INT(count_all(outside), 0);
    close(dst);
    free(m.p);
    free(bin);
    close(outside);
}

static void
test_tar_limits(void)
{
    struct mbuf m;
    struct collect_stats st;
    char big_data[5000];
    memset(big_data, 'b', sizeof(big_data));

    /* Bytes are counted as read: the second file goes over and is not left behind. */
    struct archive *a = tb_new(&m, false);
    tb_add(a, "outputs/f1", AE_IFREG, big_data, 3000, NULL);
    tb_add(a, "outputs/f2", AE_IFREG, big_data, 5000, NULL);
    tb_add(a, "outputs/f3", AE_IFREG, big_data, 10, NULL);
    tb_done(a);
    int dst = mkdir_open(root_fd, "t5dst_bytes");
    struct collect_limits lim = {4000, 100};
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs", dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 1);
    CHECK_INT(st.bytes, 3000);
    CHECK_INT(count_all(dst), 1);
    CHECK(is_file(dst, "f1", big_data, 3000));
    close(dst);
    free(m.p);

    /* Too many entries; intermediate directories count. */
    a = tb_new(&m, false);
    char name[64];
    for (int i = 0; i < 10; i++) {
        (void)snprintf(name, sizeof(name), "outputs/d/f%d", i);
        tb_add(a, name, AE_IFREG, "x", 1, NULL);
    }
    tb_done(a);
    dst = mkdir_open(root_fd, "t5dst_files");
    lim = (struct collect_limits){1 << 20, 4};
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 3);
    CHECK_INT(count_all(dst), 4);
    close(dst);
    free(m.p);

    /* Depth: 16 components arrive, 17 do not. */
    char p16[64] = "", p17[80], t16[100], t17[100];
    for (int i = 0; i < OUTPUT_DEPTH_MAX - 1; i++)
        memcpy(p16 + (size_t)2 * (size_t)i, "d/", 3);
    (void)snprintf(p17, sizeof(p17), "%sd/f", p16);
    memcpy(p16 + strlen(p16), "f", 2);
    (void)snprintf(t16, sizeof(t16), "outputs/%s", p16);
    (void)snprintf(t17, sizeof(t17), "outputs/%s", p17);
    a = tb_new(&m, false);
    tb_add(a, t16, AE_IFREG, "16", 2, NULL);
    tb_add(a, t17, AE_IFREG, "17", 2, NULL);
    tb_done(a);
    dst = mkdir_open(root_fd, "t5dst_depth");
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &big, &st), RC_OK);
    CHECK_INT(st.files, 1);
    CHECK_INT(st.skipped, 1);
    CHECK(is_file(dst, p16, "16", 2));
    CHECK(!exists(dst, p17));
    close(dst);
    free(m.p);

    /* A big entry outside the prefix: the stream cap stops us before reading through it. */
    size_t huge = 8u << 20;
    unsigned char *zeros = calloc(1, huge);
    a = tb_new(&m, true);
    tb_add(a, "junk/zeros", AE_IFREG, zeros, huge, NULL);
    tb_add(a, "outputs/x.txt", AE_IFREG, "x", 1, NULL);
    tb_done(a);
    free(zeros);
    CHECK(m.len < huge / 100); /* gzip made it small */
    dst = mkdir_open(root_fd, "t5dst_stream");
    lim = (struct collect_limits){1000, 10};
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &lim, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK_INT(st.files, 0);
    CHECK_INT(count_all(dst), 0);
    /* With room for it, the same stream is read through and x.txt arrives. */
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &big, &st), RC_OK);
    CHECK(!st.over_limit);
    CHECK(is_file(dst, "x.txt", "x", 1));
    close(dst);
    free(m.p);
}

static void
test_tar_bad(void)
{
    struct mbuf m;
    struct collect_stats st;
    int dst = mkdir_open(root_fd, "t6dst");
    const char junk[] = "this is not a tar archive at all, just some text that goes on";
    CHECK_INT(collect_tar_mem(junk, sizeof(junk), "outputs/", dst, &big, &st), RC_BADREQ);
    CHECK_INT(count_all(dst), 0);

    /* Truncated in the middle of a file's data: the partial file is removed. */
    size_t len = 100000;
    unsigned char *bin = fill_random(len, 4);
    struct archive *a = tb_new(&m, false);
    tb_add(a, "outputs/whole.txt", AE_IFREG, "w", 1, NULL);
    tb_add(a, "outputs/cut.bin", AE_IFREG, bin, len, NULL);
    tb_done(a);
    CHECK_INT(collect_tar_mem(m.p, m.len / 2, "outputs/", dst, &big, &st), RC_BADREQ);
    CHECK(is_file(dst, "whole.txt", "w", 1));
    CHECK(!exists(dst, "cut.bin"));
    CHECK_INT(count_all(dst), 1);
    free(m.p);
    free(bin);
    close(dst);
}

static void
test_tar_fd(void)
{
    struct mbuf m;
    struct collect_stats st;
    size_t len = 300000; /* more than a pipe holds */
    unsigned char *bin = fill_random(len, 5);
    struct archive *a = tb_new(&m, true);
    tb_add(a, "./outputs/", AE_IFDIR, NULL, 0, NULL);
    tb_add(a, "./outputs/a/b.bin", AE_IFREG, bin, len, NULL);
    tb_add(a, "./outputs/c.txt", AE_IFREG, "c", 1, NULL);
    tb_done(a);

    /* Through a pipe fed by a child process. */
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe", "");
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        int code = fs_write_all(pfd[1], m.p, m.len) == RC_OK ? 0 : 1;
        free(bin); /* the child's copies: valgrind follows it */
        free(m.p);
        _exit(code);
    }
    close(pfd[1]);
    int dst = mkdir_open(root_fd, "t7dst_pipe");
    CHECK_INT(collect_tar_fd(pfd[0], "outputs/", dst, &big, &st), RC_OK);
    close(pfd[0]);
    int status = -1;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(st.files, 2);
    CHECK(is_file(dst, "a/b.bin", bin, len));
    CHECK(is_file(dst, "c.txt", "c", 1));
    CHECK(is_dir(dst, "a"));
    close(dst);

    /* From a file. */
    put(root_fd, "t7.tar.gz", m.p, m.len, 0644);
    int fd = openat(root_fd, "t7.tar.gz", O_RDONLY | O_CLOEXEC);
    dst = mkdir_open(root_fd, "t7dst_file");
    CHECK_INT(collect_tar_fd(fd, "./outputs", dst, &big, &st), RC_OK);
    CHECK_INT(st.files, 2);
    CHECK(is_file(dst, "a/b.bin", bin, len));
    close(fd);
    close(dst);
    free(m.p);
    free(bin);
}

/*** make_tar ***/

static void
test_round_trip(void)
{
    int src = mkdir_open(root_fd, "t8src");
    size_t bin_len = 300000;
    unsigned char *bin = fill_random(bin_len, 6);
    put_str(src, "a.txt", "alpha\n");
    put(src, "empty", "", 0, 0644);
    put(src, "bin", bin, bin_len, 0644);
    close(mkdir_open(src, "emptydir"));
    int d1 = mkdir_open(src, "d1");
    put_str(d1, ".hidden", "h");
    put_str(d1, "r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.txt", "utf8");
    /* A name long enough to need a pax extended header. */
    char longname[160];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    put_str(d1, longname, "long");
    int d2 = mkdir_open(d1, "d2"), d3 = mkdir_open(d2, "d3");
    put(d3, "deep.bin", bin + 1000, 5000, 0644);
    close(d3);
    close(d2);
    close(d1);

    struct mbuf m = {.fail_after = -1};
    CHECK_INT(collect_make_tar(src, "outputs/", 1234, 5678, mbuf_write, &m), RC_OK);
    char names[8192];
    bool ok = false;
    tar_names(&m, names, sizeof(names), 1234, 5678, &ok);
    CHECK(ok); /* owner as given, regular files and directories only */
    CHECK(strncmp(names, "outputs", 7) == 0);
    CHECK(strstr(names, "outputs/d1/d2/d3/deep.bin") != NULL);
    CHECK(strstr(names, "|outputs/emptydir") != NULL);

    int dst = mkdir_open(root_fd, "t8dst");
    struct collect_stats st;
    CHECK_INT(collect_tar_mem(m.p, m.len, "outputs/", dst, &big, &st), RC_OK);
    CHECK_INT(st.files, 7);
    CHECK_INT(st.skipped, 0);
    CHECK(same_tree(src, dst));
    close(dst);
    free(m.p);

    /* Without a prefix; links in the source are left out even though it is trusted. */
    CHECK_INT(symlinkat("/etc/passwd", src, "lnk"), 0);
    m = (struct mbuf){.fail_after = -1};
    CHECK_INT(collect_make_tar(src, "", 0, 0, mbuf_write, &m), RC_OK);
    tar_names(&m, names, sizeof(names), 0, 0, &ok);
    CHECK(ok);
    CHECK(strstr(names, "lnk") == NULL);
    CHECK(strstr(names, "outputs") == NULL);
    CHECK_INT(unlinkat(src, "lnk", 0), 0);
    dst = mkdir_open(root_fd, "t8dst_noprefix");
    CHECK_INT(collect_tar_mem(m.p, m.len, NULL, dst, &big, &st), RC_OK);
    CHECK(same_tree(src, dst));
    close(dst);
    free(m.p);

    /* A failing write_fn: its rc comes back and nothing more is written. */
    m = (struct mbuf){.fail_after = 1};
    CHECK_INT(collect_make_tar(src, "w/", 0, 0, mbuf_write, &m), RC_BACKEND);
    size_t got = m.len;
    CHECK(got < bin_len);
    free(m.p);
    m = (struct mbuf){.fail_after = 0};
    CHECK_INT(collect_make_tar(src, "w/", 0, 0, mbuf_write, &m), RC_BACKEND);
    CHECK_INT(m.len, 0);
    free(m.p);
    free(bin);
    close(src);
}

int
main(void)
{
    (void)snprintf(root, sizeof(root), "/tmp/lbcollect.XXXXXX");
    if (mkdtemp(root) == NULL)
        die("mkdtemp", root);
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        die("open", root);

    /* The hostile cases also run the escaping of skipped names in debug logs. */
    CHECK_INT(log_set_level("debug"), 0);
    test_tree_hostile();
    test_tar_hostile();
    CHECK_INT(log_set_level("info"), 0);
    test_tree_depth();
    test_tree_caps();
    test_tar_limits();
    test_tar_bad();
    test_tar_fd();
    test_round_trip();

    close(root_fd);
    int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT(fs_rmtree_at(tmp, root + strlen("/tmp/")), RC_OK);
    CHECK(!exists(tmp, root + strlen("/tmp/")));
    close(tmp);
    return check_done("collect");
}
