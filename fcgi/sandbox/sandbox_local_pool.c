/* sandbox_local_pool: workspace images made ahead of time, so that a job's start does not wait
 * for mkfs.ext4 (about 7 ms, and its writes then stand in the way of the job's first fsyncs).
 *
 * Up to POOL_SIZE images wait in <sandbox_dir>/.pool (0700, labbox's alone), each made by
 * ws_image_new in an unnamed file (O_TMPFILE) and linked into the pool only once mkfs is done,
 * so the pool never holds half an image. A name says what the image was made for
 * (ws_image_key: size, inodes, owner) and ends in random bytes. A supervisor takes one by
 * opening it and unlinking its name: of several takers only one unlink succeeds, the others
 * close theirs and look further, so an image goes to one job only; taken, it has no name left
 * and goes with its loop device like a freshly made one. Images are never reused: a job's
 * image is destroyed with its workspace. pool_fill runs in `serve` when it reaps orphans (at
 * start-up and every minute) and in each supervisor once its job's sandbox is gone; it drops
 * images made for other settings (workspace_max_mb or workspace_max_files changed). With no
 * image in the pool a job makes its own, as before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox_local.h"
#include "util/fsutil.h"
#include "util/id.h"

#define POOL_DIR  ".pool"
#define POOL_SIZE 4

/* The pool dir of cfg (created 0700 when create); its fd or -1. */
static int
pool_open(const struct config *cfg, bool create, char *path, size_t len)
{
    int k = snprintf(path, len, "%s/%s", cfg->sandbox_dir, POOL_DIR);
    if (k <= 0 || (size_t)k >= len)
        return -1;
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    /* Ours and private, or not used at all. */
    if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 0077) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Is name an image for key ("ws-<key>-<random>.img")? */
static bool
is_for(const char *name, const char *key)
{
    size_t kl = strlen(key), nl = strlen(name);
    return nl > kl + 8 && strncmp(name, "ws-", 3) == 0 && strncmp(name + 3, key, kl) == 0 &&
           name[3 + kl] == '-' && strcmp(name + nl - 4, ".img") == 0;
}

int
pool_take(const struct config *cfg)
{
    char path[4200], key[96];
    int dfd = pool_open(cfg, false, path, sizeof(path));
    DIR *d = dfd >= 0 ? fs_opendir(dfd) : NULL;
    int img = -1;
    ws_image_key(cfg, key, sizeof(key));
    struct dirent *de;
    while (d != NULL && img < 0 && (de = readdir(d)) != NULL) {
        if (!is_for(de->d_name, key))
            continue;
        int fd = openat(dfd, de->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        /* Whoever unlinks the name has it; a taker that lost the race closes its fd at once. */
        if (fd >= 0 && unlinkat(dfd, de->d_name, 0) == 0 && fstat(fd, &st) == 0 &&
            S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_uid == geteuid())
            img = fd;
        else if (fd >= 0)
            close(fd);
    }
    if (d != NULL)
        closedir(d);
    if (dfd >= 0)
        close(dfd);
    return img;
}

/* Count the images for key; remove those made for other settings. */
static int
count_images(int dfd, const char *key)
{
    int n = 0;
    DIR *d = fs_opendir(dfd);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (is_for(de->d_name, key))
            n++;
        else if (unlinkat(dfd, de->d_name, 0) != 0)
            log_debug("pool: cannot remove %s: %s", de->d_name, strerror(errno));
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* One image into the pool: made unnamed, then linked under a fresh name. */
static bool
add_image(const struct config *cfg, int dfd, const char *path, const char *key)
{
    char err[300], name[160], rnd[ID_LEN + 1], proc[64];
    int img = ws_image_new(cfg, path, err, sizeof(err));
    if (img < 0) {
        log_debug("pool: %s", err);
        return false;
    }
    bool ok = id_new(rnd) == RC_OK;
    int k = snprintf(name, sizeof(name), "ws-%s-%s.img", key, rnd);
    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", img);
    ok = ok && k > 0 && (size_t)k < sizeof(name) &&
         linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0;
    if (!ok)
        log_debug("pool: cannot add an image: %s", strerror(errno));
    close(img);
    return ok;
}

void
pool_fill(const struct config *cfg)
{
    char path[4200], key[96];
    int dfd = pool_open(cfg, true, path, sizeof(path));
    if (dfd < 0) {
        log_debug("pool: no pool in %s: %s", cfg->sandbox_dir, strerror(errno));
        return;
    }
    ws_image_key(cfg, key, sizeof(key));
    for (int n = count_images(dfd, key); n < POOL_SIZE; n++)
        if (!add_image(cfg, dfd, path, key))
            break;
    close(dfd);
}
