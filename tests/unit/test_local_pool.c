/* test_local_pool: workspace images made ahead of time: the pool fills up to its size with
 * whole ext4 images and nothing else, each image goes to one taker only (also when processes
 * race for them) and has no name once taken, images made for other settings are dropped, and
 * a pool dir that is not labbox's own is not used. Needs mkfs.ext4 (e2fsprogs). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "sandbox/sandbox_local.h"
#include "util/fsutil.h"

#define POOL_SIZE 4 /* as in sandbox_local_pool.c */

static int
names_in(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int n = 0;
    DIR *d = fd >= 0 ? fs_opendir(fd) : NULL;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    return n;
}

/* A whole ext4 image: the superblock's magic, and nothing left holding it by name. */
static bool
is_fresh_ext4(int fd)
{
    unsigned char m[2];
    struct stat st;
    return pread(fd, m, 2, 1024 + 0x38) == 2 && m[0] == 0x53 && m[1] == 0xEF &&
           fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0;
}

static void
test_take(struct config *cfg, const char *pool)
{
    pool_fill(cfg);
    CHECK_INT(names_in(pool), POOL_SIZE);
    int fds[POOL_SIZE];
    ino_t seen[POOL_SIZE];
    for (int i = 0; i < POOL_SIZE; i++) {
        struct stat st;
        fds[i] = pool_take(cfg);
        CHECK(fds[i] >= 0 && is_fresh_ext4(fds[i]) && fstat(fds[i], &st) == 0);
        seen[i] = fds[i] >= 0 ? st.st_ino : 0;
        for (int k = 0; k < i; k++)
            CHECK(seen[k] != seen[i]);
    }
    CHECK_INT(names_in(pool), 0);
    CHECK_INT(pool_take(cfg), -1); /* empty: the caller makes its own */
    for (int i = 0; i < POOL_SIZE; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Sixteen processes race for four images, let go at once, five times over: four get one
 * each, all different (a taker that does not win the unlink must not keep what it opened). */
static void
race_once(struct config *cfg)
{
    int p[2], gate[2];
    REQUIRE_VOID(pipe(p) == 0 && pipe(gate) == 0);
    pool_fill(cfg);
    for (int i = 0; i < 16; i++) {
        if (fork() == 0) {
            char go;
            close(gate[1]);
            if (read(gate[0], &go, 1) != 0)
                _exit(2);
            int fd = pool_take(cfg);
            struct stat st;
            uint64_t ino = fd >= 0 && is_fresh_ext4(fd) && fstat(fd, &st) == 0 ? st.st_ino : 0;
            _exit(write(p[1], &ino, sizeof(ino)) == sizeof(ino) ? 0 : 1);
        }
    }
    close(p[1]);
    close(gate[0]);
    close(gate[1]); /* everyone goes */
    uint64_t got[16];
    int n = 0, taken = 0;
    while (n < 16 && read(p[0], &got[n], sizeof(got[n])) == sizeof(got[n]))
        n++;
    close(p[0]);
    while (wait(NULL) > 0)
        ;
    CHECK_INT(n, 16);
    for (int i = 0; i < n; i++) {
        taken += got[i] != 0;
        for (int k = 0; k < i; k++)
            CHECK(got[i] == 0 || got[k] != got[i]);
    }
    CHECK_INT(taken, POOL_SIZE);
}

static void
test_race(struct config *cfg)
{
    for (int i = 0; i < 5; i++)
        race_once(cfg);
}

static void
test_settings(struct config *cfg, const char *pool)
{
    pool_fill(cfg);
    CHECK_INT(names_in(pool), POOL_SIZE);
    /* Another workspace size: the old images go, new ones come; only those are taken. */
    cfg->workspace_max_mb = 64;
    pool_fill(cfg);
    CHECK_INT(names_in(pool), POOL_SIZE);
    int fd = pool_take(cfg);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size < (off_t)(65ull << 20));
    if (fd >= 0)
        close(fd);
    cfg->workspace_max_mb = 32;
    CHECK_INT(pool_take(cfg), -1);
}

int
main(void)
{
    if (access("/usr/sbin/mkfs.ext4", X_OK) != 0) {
        fprintf(stderr, "local_pool: mkfs.ext4 is missing (e2fsprogs)\n");
        return getenv("CI") != NULL && strcmp(getenv("CI"), "true") == 0 ? 1 : 77;
    }
    char dir[] = "/tmp/test_local_pool.XXXXXX", pool[128];
    REQUIRE(mkdtemp(dir) != NULL);
    struct config cfg;
    char err[256];
    REQUIRE(config_init(&cfg) == RC_OK && config_finish(&cfg, err, sizeof(err)) == RC_OK);
    free(cfg.sandbox_dir);
    cfg.sandbox_dir = strdup(dir);
    cfg.workspace_max_mb = 32;
    cfg.workspace_max_files = 1000;
    (void)snprintf(pool, sizeof(pool), "%s/.pool", dir);
    test_take(&cfg, pool);
    test_race(&cfg);
    test_settings(&cfg, pool);
    /* A pool dir others may write to is not used. */
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, pool));
    REQUIRE(mkdir(pool, 0777) == 0 && chmod(pool, 0777) == 0);
    pool_fill(&cfg);
    CHECK_INT(names_in(pool), 0);
    CHECK_INT(pool_take(&cfg), -1);
    config_fini(&cfg);
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, dir));
    return check_done("local_pool");
}
