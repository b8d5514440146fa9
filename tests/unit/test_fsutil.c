/* test_fsutil: fs_rmtree_at on deep, long-pathed, wide and hostile trees; fs_link_tree;
 * fs_sync_tree and the group fsync (every caller answered, a failed fsync reported). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/fsutil.h"

static int root = -1; /* the scratch directory of this run */

/* NEED: a set-up step that must work, in a function returning void. */
#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_fail(__FILE__, __LINE__, #cond, "required (%s)", strerror(errno));               \
            exit(check_done("fsutil"));                                                            \
        }                                                                                          \
    } while (0)

static bool
exists(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A chain of depth directories called name below <root>/top, one file in each, built by fd
 * so that the path length is never a limit. */
static void
make_deep(const char *top, int depth, const char *name)
{
    NEED(mkdirat(root, top, 0755) == 0);
    int cur = openat(root, top, O_RDONLY | O_DIRECTORY);
    NEED(cur >= 0);
    for (int i = 0; i < depth; i++) {
        int f = openat(cur, "file", O_WRONLY | O_CREAT | O_EXCL, 0644);
        NEED(f >= 0);
        NEED(write(f, "x", 1) == 1);
        close(f);
        NEED(mkdirat(cur, name, 0755) == 0);
        int next = openat(cur, name, O_RDONLY | O_DIRECTORY);
        NEED(next >= 0);
        close(cur);
        cur = next;
    }
    close(cur);
}

static void
test_deep(void)
{
    /* The old recursive version gave up at 64 levels. */
    make_deep("deep", 200, "d");
    CHECK_INT(fs_rmtree_at(root, "deep"), RC_OK);
    CHECK(!exists(root, "deep"));
    /* Paths far beyond PATH_MAX (3000 levels of 20-byte names: about 63 KB). */
    make_deep("long", 3000, "aaaaaaaaaaaaaaaaaaaa");
    CHECK_INT(fs_rmtree_at(root, "long"), RC_OK);
    CHECK(!exists(root, "long"));
}

static void
test_wide(void)
{
    char name[32];
    NEED(mkdirat(root, "wide", 0755) == 0);
    int w = openat(root, "wide", O_RDONLY | O_DIRECTORY);
    NEED(w >= 0);
    for (int i = 0; i < 2000; i++) {
        (void)snprintf(name, sizeof(name), "sub%d", i);
        NEED(mkdirat(w, name, 0755) == 0);
        (void)snprintf(name, sizeof(name), "sub%d/f", i);
        int f = openat(w, name, O_WRONLY | O_CREAT, 0644);
        NEED(f >= 0);
        close(f);
        (void)snprintf(name, sizeof(name), "file%d", i);
        f = openat(w, name, O_WRONLY | O_CREAT, 0644);
        NEED(f >= 0);
        close(f);
    }
    /* A directory the agent left without any permission, and an empty one. */
    NEED(mkdirat(w, "locked", 0755) == 0);
    NEED(mkdirat(w, "locked/inner", 0755) == 0);
    NEED(fchmodat(w, "locked", 0, 0) == 0);
    NEED(mkdirat(w, "empty", 0) == 0);
    close(w);
    CHECK_INT(fs_rmtree_at(root, "wide"), RC_OK);
    CHECK(!exists(root, "wide"));
}

/* Symlinks inside point at directories and files outside: the links go, their targets stay. */
static void
test_symlinks(void)
{
    NEED(mkdirat(root, "outside", 0755) == 0);
    NEED(mkdirat(root, "outside/keep", 0755) == 0);
    int f = openat(root, "outside/keep/precious", O_WRONLY | O_CREAT, 0644);
    NEED(f >= 0);
    close(f);
    make_deep("links", 70, "d");
    NEED(symlinkat("../outside", root, "links/up") == 0);
    NEED(symlinkat("/proc/self/cwd", root, "links/d/cwd") == 0);
    int l = openat(root, "links", O_RDONLY | O_DIRECTORY);
    NEED(l >= 0);
    /* A link at depth 70, next to a file, to an absolute path outside. */
    int cur = l;
    for (int i = 0; i < 70; i++) {
        int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
        NEED(next >= 0);
        if (cur != l)
            close(cur);
        cur = next;
    }
    NEED(symlinkat("../../../outside/keep", cur, "rel") == 0);
    close(cur);
    close(l);
    /* The top itself a symlink: only the link is removed. */
    NEED(symlinkat("outside", root, "toplink") == 0);
    CHECK_INT(fs_rmtree_at(root, "toplink"), RC_OK);
    CHECK(!exists(root, "toplink"));
    CHECK_INT(fs_rmtree_at(root, "links"), RC_OK);
    CHECK(!exists(root, "links"));
    CHECK(exists(root, "outside/keep/precious"));
    CHECK_INT(fs_rmtree_at(root, "outside"), RC_OK);
}

static void
test_missing_and_file(void)
{
    CHECK_INT(fs_rmtree_at(root, "nothing-here"), RC_OK);
    int f = openat(root, "plain", O_WRONLY | O_CREAT, 0644);
    NEED(f >= 0);
    close(f);
    CHECK_INT(fs_rmtree_at(root, "plain"), RC_OK);
    CHECK(!exists(root, "plain"));
}

/* A file that cannot be removed (immutable, where the filesystem and our privileges allow
 * setting that) makes the result an error; everything else is still removed. */
static void
test_failure_is_reported(void)
{
    make_deep("stuck", 100, "d");
    int cur = openat(root, "stuck", O_RDONLY | O_DIRECTORY);
    NEED(cur >= 0);
    for (int i = 0; i < 80; i++) {
        int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
        NEED(next >= 0);
        close(cur);
        cur = next;
    }
    int f = openat(cur, "immutable", O_RDONLY | O_CREAT, 0644);
    NEED(f >= 0);
    int flags = 0;
    bool can = ioctl(f, FS_IOC_GETFLAGS, &flags) == 0 &&
               (flags |= FS_IMMUTABLE_FL, ioctl(f, FS_IOC_SETFLAGS, &flags) == 0);
    if (!can) {
        printf("# immutable files not available here (%s): that case is not checked\n",
               strerror(errno));
        close(f);
        close(cur);
        CHECK_INT(fs_rmtree_at(root, "stuck"), RC_OK);
        return;
    }
    CHECK_INT(fs_rmtree_at(root, "stuck"), RC_IO);
    CHECK(exists(cur, "immutable"));
    CHECK(!exists(cur, "file"));
    CHECK(!exists(cur, "d"));
    flags &= ~FS_IMMUTABLE_FL;
    CHECK(ioctl(f, FS_IOC_SETFLAGS, &flags) == 0);
    close(f);
    close(cur);
    CHECK_INT(fs_rmtree_at(root, "stuck"), RC_OK);
    CHECK(!exists(root, "stuck"));
}

/* fs_link_tree: the same inodes at the same paths, directories made, links and the skipped
 * top-level name left out, an existing file a conflict. */
static void
test_link_tree(void)
{
    struct stat a, b;
    make_deep("lsrc", 3, "sub");
    int src = openat(root, "lsrc", O_RDONLY | O_DIRECTORY);
    NEED(src >= 0 && symlinkat("/etc/passwd", src, "link") == 0);
    int f = openat(src, "params.json", O_WRONLY | O_CREAT | O_EXCL, 0644);
    NEED(f >= 0);
    close(f);
    NEED(mkdirat(root, "ldst", 0755) == 0);
    int dst = openat(root, "ldst", O_RDONLY | O_DIRECTORY);
    NEED(dst >= 0);
    CHECK_INT(fs_link_tree(src, dst, "params.json"), RC_OK);
    CHECK(fstatat(src, "sub/sub/file", &a, 0) == 0 && fstatat(dst, "sub/sub/file", &b, 0) == 0);
    CHECK(a.st_ino == b.st_ino && a.st_nlink == 2);
    CHECK(fstatat(dst, "sub/sub", &b, 0) == 0 && S_ISDIR(b.st_mode) && (b.st_mode & 0777) == 0755);
    CHECK(!exists(dst, "link") && !exists(dst, "params.json"));
    CHECK_INT(fs_link_tree(src, dst, NULL), RC_CONFLICT);
    close(src);
    close(dst);
    CHECK_INT(fs_rmtree_at(root, "lsrc"), RC_OK);
    CHECK_INT(fs_rmtree_at(root, "ldst"), RC_OK);
}

static void
test_sync_tree(void)
{
    /* Nested dirs, files, a symlink (not followed) and a FIFO (not opened: it would block). */
    make_deep("sync", 5, "d");
    int top = openat(root, "sync", O_RDONLY | O_DIRECTORY);
    NEED(top >= 0);
    NEED(symlinkat("/nonexistent", top, "link") == 0 && mkfifoat(top, "fifo", 0600) == 0);
    CHECK_INT(fs_sync_tree(top), RC_OK);
    close(top);
    CHECK_INT(fs_rmtree_at(root, "sync"), RC_OK);
    /* Deeper than it goes: an error, not a stack overflow. */
    make_deep("sync2", 80, "d");
    top = openat(root, "sync2", O_RDONLY | O_DIRECTORY);
    NEED(top >= 0);
    CHECK_INT(fs_sync_tree(top), RC_IO);
    close(top);
    CHECK_INT(fs_rmtree_at(root, "sync2"), RC_OK);
}

struct grp_arg {
    struct fs_group *g;
    int ok;
};

static void *
grp_caller(void *p)
{
    struct grp_arg *a = p;
    for (int i = 0; i < 20; i++)
        a->ok += fs_group_fsync(a->g) == RC_OK;
    return NULL;
}

static void
test_group(void)
{
    /* Sixteen threads, twenty calls each: every call answered, all successful. */
    struct fs_group *g = fs_group_new(root);
    NEED(g != NULL);
    pthread_t t[16];
    struct grp_arg a[16];
    for (int i = 0; i < 16; i++) {
        a[i] = (struct grp_arg){g, 0};
        NEED(pthread_create(&t[i], NULL, grp_caller, &a[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    CHECK_INT(ok, 16 * 20);
    fs_group_free(g);
    /* An fsync that fails (here: a closed fd) fails the calls it covers. */
    int fd = dup(root);
    NEED(fd >= 0);
    close(fd);
    g = fs_group_new(fd);
    NEED(g != NULL);
    CHECK_INT(fs_group_fsync(g), RC_IO);
    fs_group_free(g);
}

int
main(void)
{
    char dir[] = "/tmp/labbox-test-fsutil-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    root = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(root >= 0);
    test_missing_and_file();
    test_deep();
    test_wide();
    test_symlinks();
    test_failure_is_reported();
    test_link_tree();
    test_sync_tree();
    test_group();
    close(root);
    CHECK_INT(fs_rmtree_at(AT_FDCWD, dir), RC_OK);
    return check_done("fsutil");
}
