/* sandbox_local_fs: the agent's writable space, capped in bytes and files.
 *
 * With the disk limit enforced, each job gets an ext4 filesystem of its own: a sparse image
 * of workspace_max_mb (plus its inode tables) with workspace_max_files inodes, made by
 * mkfs.ext4 in an unnamed file (O_TMPFILE) under sandbox_dir, attached to a loop device with
 * LO_FLAGS_AUTOCLEAR and mounted (nosuid, nodev) over the staged work dir, in a mount
 * namespace private to this supervisor (slave of the host's, so nothing propagates back).
 * Its root holds workspace/ (the agent files, outputs/, the mount point of inputs/) and tmp/:
 * bwrap binds them by fd as /workspace and /tmp. An agent that fills it gets ENOSPC; the host
 * keeps its space and inodes; the supervisor still reads outputs/ through the mount after the
 * agent ended. The filesystem never has a name on the host and never outlives the supervisor:
 * when the mount goes (ws_teardown, or the namespace dying with a crashed supervisor) the loop
 * device detaches itself and the image's blocks are freed. Without the disk limit the staged
 * dir itself is the workspace, and /tmp a tmpfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_local.h"
#include "util/caps.h"
#include "util/fsutil.h"

#define INODE_BYTES  256            /* mkfs -I: room for nanosecond times past 2038 */
#define FULL_BYTES   (1u << 20)     /* less free than this, or than 1/64 of it, is full */
#define FULL_FILES   8              /* fewer free inodes than this is full */
#define GROUP_BYTES  (128ull << 20) /* an ext4 block group of 4 KiB blocks */
#define ITABLE_ROUND 16             /* inodes per inode-table block: mkfs rounds up per group */

/* Give the work tree to the sandbox's uid, so the agent can write /workspace. */
static enum rc
chown_tree(int dfd, uid_t uid, gid_t gid, int depth)
{
    if (depth > 32)
        return RC_TOOBIG;
    if (fchown(dfd, uid, gid) != 0)
        return RC_IO;
    DIR *d = fs_opendir(dfd);
    if (d == NULL)
        return RC_IO;
    enum rc rc = RC_OK;
    struct dirent *de;
    while (rc == RC_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (depth == 0 && strcmp(de->d_name, SANDBOX_INPUTS_DIR) == 0))
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? RC_IO : chown_tree(sub, uid, gid, depth + 1);
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode)) {
            if (fchownat(dfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
                rc = RC_IO;
        }
    }
    closedir(d);
    return rc;
}

bool
ws_available(const char **why)
{
    /* As labbox's effective ids and capabilities (access() would ask for the real uid's). */
    if (faccessat(AT_FDCWD, "/dev/loop-control", R_OK | W_OK, AT_EACCESS) != 0) {
        *why = "no loop devices (/dev/loop-control)";
        return false;
    }
    if (access(MKFS_EXT4_PATH, X_OK) != 0) {
        *why = "mkfs.ext4 is not installed (e2fsprogs)";
        return false;
    }
    *why = NULL;
    return true;
}

/* This process's own mount namespace, once: mounts made here stay here. */
static enum rc
private_mounts(char *err, size_t errlen)
{
    static bool done;
    if (done)
        return RC_OK;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
        (void)snprintf(err, errlen, "cannot make a private mount namespace: %s", strerror(errno));
        return RC_BACKEND;
    }
    done = true;
    return RC_OK;
}

/* An unnamed sparse file of size bytes on sandbox_dir's filesystem. */
static int
make_image(const char *dir, uint64_t size, char *err, size_t errlen)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* No O_TMPFILE there: a named file, unlinked at once. */
        char path[4200];
        (void)snprintf(path, sizeof(path), "%s/.workspace-%ld.img", dir, (long)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            (void)unlink(path);
    }
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        (void)snprintf(err, errlen, "cannot make the workspace image in %s: %s", dir,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static enum rc
run_mkfs(int img, uint64_t files, char *err, size_t errlen)
{
    char inodes[32], dev[32], ext[96];
    (void)snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long)files);
    (void)snprintf(dev, sizeof(dev), "/proc/self/fd/%d", img);
    /* The root is labbox's own: it sets the root's mode without CAP_FOWNER. */
    (void)snprintf(ext, sizeof(ext), "lazy_itable_init=1,nodiscard,root_owner=%u:%u",
                   (unsigned)geteuid(), (unsigned)getegid());
    const char *const argv[] = {MKFS_EXT4_PATH,
                                "-q",
                                "-F",
                                "-N",
                                inodes,
                                "-I",
                                "256",
                                "-m",
                                "0",
                                "-O",
                                "^has_journal,^resize_inode",
                                "-E",
                                ext,
                                "-L",
                                "workspace",
                                dev,
                                NULL};
    const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    pid_t pid = fork();
    if (pid < 0) {
        (void)snprintf(err, errlen, "fork: %s", strerror(errno));
        return RC_BACKEND;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            (void)dup2(null, 0);
            (void)dup2(null, 1);
            (void)dup2(null, 2);
        }
        (void)fcntl(img, F_SETFD, 0);
        if (caps_drop_all() != RC_OK) /* mkfs needs none of labbox's */
            _exit(126);
        /* execve wants char *const[]; it never writes them. */
        execve(argv[0], (char *const *)(uintptr_t)argv, (char *const *)(uintptr_t)envp);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        (void)snprintf(err, errlen, "mkfs.ext4 failed (status %d)", st);
        return RC_BACKEND;
    }
    return RC_OK;
}

/* Attach img to a free loop device that detaches itself when last released; its fd or -1. */
static int
attach_loop(int img, char *dev, size_t devlen, char *err, size_t errlen)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        (void)snprintf(err, errlen, "/dev/loop-control: %s", strerror(errno));
        return -1;
    }
    int lfd = -1;
    for (int tries = 0; tries < 16 && lfd < 0; tries++) {
        int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (nr < 0)
            break;
        (void)snprintf(dev, devlen, "/dev/loop%d", nr);
        lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0)
            break;
        struct loop_config lc;
        memset(&lc, 0, sizeof(lc));
        lc.fd = (unsigned)img;
        lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(lfd, LOOP_CONFIGURE, &lc) != 0) {
            int e = errno;
            close(lfd);
            lfd = -1;
            if (e != EBUSY) /* EBUSY: another process took it first */
                break;
        }
    }
    if (lfd < 0)
        (void)snprintf(err, errlen, "cannot attach a loop device: %s", strerror(errno));
    close(ctl);
    return lfd;
}

/* The image's size and inode count for cfg: the inode tables on top of the data (the agent
 * gets a little less than workspace_max_mb: bitmaps and descriptors come out of it, never
 * more), and a little fewer inodes asked of mkfs, which fills each group's last inode-table
 * block. */
static void
image_params(const struct config *cfg, uint64_t *size, uint64_t *files)
{
    *size = (cfg->workspace_max_mb << 20) + cfg->workspace_max_files * INODE_BYTES;
    uint64_t groups = (*size + GROUP_BYTES - 1) / GROUP_BYTES;
    *files = cfg->workspace_max_files;
    if (*files > ITABLE_ROUND * groups + ITABLE_ROUND)
        *files -= ITABLE_ROUND * groups;
}

int
ws_image_new(const struct config *cfg, const char *dir, char *err, size_t errlen)
{
    uint64_t size, files;
    image_params(cfg, &size, &files);
    int img = make_image(dir, size, err, errlen);
    if (img >= 0 && run_mkfs(img, files, err, errlen) != RC_OK) {
        close(img);
        img = -1;
    }
    return img;
}

void
ws_image_key(const struct config *cfg, char *out, size_t len)
{
    uint64_t size, files;
    image_params(cfg, &size, &files);
    (void)snprintf(out, len, "%llu-%llu-%u.%u", (unsigned long long)size, (unsigned long long)files,
                   (unsigned)geteuid(), (unsigned)getegid());
}

/* Mount a fresh capped filesystem over w->path (an image made ahead of time when the pool has
 * one, else made now); w->root_fd stays the staged dir below. */
static enum rc
mount_image(struct ws *w, const struct config *cfg, char *err, size_t errlen)
{
    char dev[64];
    int img = pool_take(cfg);
    if (img < 0)
        img = ws_image_new(cfg, cfg->sandbox_dir, err, errlen);
    if (img < 0)
        return RC_BACKEND;
    int lfd = attach_loop(img, dev, sizeof(dev), err, errlen);
    close(img);
    if (lfd < 0)
        return RC_BACKEND;
    if (mount(dev, w->path, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "noinit_itable") != 0) {
        (void)snprintf(err, errlen, "cannot mount the workspace filesystem: %s", strerror(errno));
        close(lfd); /* the loop device detaches itself */
        return RC_BACKEND;
    }
    close(lfd);
    w->mounted = true;
    return RC_OK;
}

/* The staged inputs (hidden below the mount now, reached by fd) bound read-only onto
 * workspace/inputs: bwrap finds its bind sources by path, so they must be visible here. */
static enum rc
bind_inputs(struct ws *w)
{
    char src[64], dst[4200];
    (void)snprintf(src, sizeof(src), "/proc/self/fd/%d", w->inputs_fd);
    (void)snprintf(dst, sizeof(dst), "%s/workspace/inputs", w->path);
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0 ||
        mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        return RC_IO;
    int fd = open(dst, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return RC_IO;
    close(w->inputs_fd);
    w->inputs_fd = fd;
    return RC_OK;
}

/* The mounted root: workspace/ with the staged agent files, tmp/, all the sandbox uid's. */
static enum rc
fill_image(struct ws *w, uid_t uid, gid_t gid)
{
    int mfd = open(w->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mfd < 0)
        return RC_IO;
    enum rc rc = RC_IO;
    /* 0711: bwrap, as the job's uid, resolves its bind sources by path through here. */
    if (fchmod(mfd, 0711) != 0 || mkdirat(mfd, "workspace", 0755) != 0 ||
        mkdirat(mfd, "tmp", 0700) != 0)
        goto out;
    w->ws_fd = openat(mfd, "workspace", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    w->tmp_fd = openat(mfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w->ws_fd < 0 || w->tmp_fd < 0)
        goto out;
    rc = fs_copy_tree_except(w->root_fd, w->ws_fd, SANDBOX_INPUTS_DIR);
    if (rc == RC_OK && mkdirat(w->ws_fd, SANDBOX_OUTPUTS_DIR, 0755) != 0 && errno != EEXIST)
        rc = RC_IO;
    if (rc == RC_OK && mkdirat(w->ws_fd, SANDBOX_INPUTS_DIR, 0755) != 0 && errno != EEXIST)
        rc = RC_IO;
    if (rc == RC_OK)
        rc = chown_tree(w->ws_fd, uid, gid, 0);
    if (rc == RC_OK && fchown(w->tmp_fd, uid, gid) != 0)
        rc = RC_IO;
    if (rc == RC_OK)
        rc = bind_inputs(w);
out:
    close(w->root_fd);
    w->root_fd = mfd;
    return rc;
}

enum rc
ws_setup(struct ws *w, const struct config *cfg, const char *work_dir, bool enforce, uid_t uid,
         gid_t gid, char *err, size_t errlen)
{
    w->root_fd = w->ws_fd = w->inputs_fd = w->tmp_fd = w->lock_fd = -1;
    w->mounted = w->handed = false;
    if ((size_t)snprintf(w->path, sizeof(w->path), "%s", work_dir) >= sizeof(w->path)) {
        (void)snprintf(err, errlen, "the work directory's path is too long");
        return RC_BACKEND;
    }
    /* Our own mount namespace before any fd is opened: a bind mount's source must be a
     * mount of the namespace that binds it. */
    if (enforce && private_mounts(err, errlen) != RC_OK)
        return RC_BACKEND;
    w->root_fd = open(work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w->root_fd >= 0)
        w->inputs_fd =
            openat(w->root_fd, SANDBOX_INPUTS_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w->root_fd >= 0)
        w->lock_fd = dup(w->root_fd);
    if (w->root_fd < 0 || w->inputs_fd < 0 || w->lock_fd < 0 ||
        flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        (void)snprintf(err, errlen, "cannot open and lock the work directory: %s", strerror(errno));
        return RC_BACKEND;
    }
    if (!enforce) {
        w->ws_fd = dup(w->root_fd);
        w->handed = uid != geteuid();
        w->uid = uid;
        w->gid = gid;
        if (w->ws_fd < 0 || (w->handed && chown_tree(w->ws_fd, uid, gid, 0) != RC_OK)) {
            (void)snprintf(err, errlen, "cannot hand the work directory to the sandbox user");
            return RC_BACKEND;
        }
        return RC_OK;
    }
    enum rc rc = mount_image(w, cfg, err, errlen);
    if (rc == RC_OK && fill_image(w, uid, gid) != RC_OK) {
        (void)snprintf(err, errlen,
                       "cannot stage the agent files into the workspace of %llu MiB "
                       "and %llu files: %s",
                       (unsigned long long)cfg->workspace_max_mb,
                       (unsigned long long)cfg->workspace_max_files, strerror(errno));
        rc = RC_BACKEND;
    }
    return rc;
}

bool
ws_full(const struct ws *w)
{
    struct statvfs sv;
    if (!w->mounted || w->ws_fd < 0 || fstatvfs(w->ws_fd, &sv) != 0)
        return false;
    /* ext4 refuses a write while some blocks still show free (its reserve for metadata and
     * delayed allocation): "full" has a margin. */
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize;
    return avail < FULL_BYTES || avail < size / 64 || (sv.f_files > 0 && sv.f_favail < FULL_FILES);
}

/* Remove what the agent left in the staged dir dfd (all but the inputs), as its own uid. */
static void
scrub_as(int dfd, uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("fork to empty the work dir");
        return;
    }
    if (pid == 0) {
        caps_drop_bounding();
        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ||
            caps_drop_all() != RC_OK)
            _exit(1);
        DIR *d = fs_opendir(dfd);
        struct dirent *de;
        int failed = d == NULL;
        while (d != NULL && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                strcmp(de->d_name, SANDBOX_INPUTS_DIR) != 0)
                failed |= fs_rmtree_at(dfd, de->d_name) != RC_OK;
        _exit(failed);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        log_warn("the agent's files could not all be removed as its uid");
}

void
ws_teardown(struct ws *w)
{
    if (w->handed && w->root_fd >= 0)
        scrub_as(w->root_fd, w->uid, w->gid);
    w->handed = false;
    int *fds[] = {&w->root_fd, &w->ws_fd, &w->inputs_fd, &w->tmp_fd, &w->lock_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    if (w->mounted && umount2(w->path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
        log_errno("cannot unmount the workspace %s", w->path);
    w->mounted = false;
}
