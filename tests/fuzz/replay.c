/* replay: a main() that runs LLVMFuzzerTestOneInput over every regular file in a corpus
 * directory, so that ctest replays the corpora without libFuzzer. Fails when the directory
 * cannot be read, holds no file, or a file cannot be read; an input that breaks an invariant
 * aborts, which fails the test too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_BYTES (16u * 1024 * 1024) /* larger corpus files are an error */

/* run_file: reads dir/name whole and runs it; 0 on success, -1 on a read error. */
static int
run_file(int dfd, const char *name, int *out_ran)
{
    int fd = -1, ret = -1;
    struct stat st;
    uint8_t *data = NULL;
    size_t got = 0;

    *out_ran = 0;
    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", name, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = 0; /* not a file: skipped */
        goto out;
    }
    if ((unsigned long long)st.st_size > REPLAY_MAX_BYTES) {
        fprintf(stderr, "replay: %s: larger than %u bytes\n", name, REPLAY_MAX_BYTES);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL)
        goto out;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "replay: %s: short read\n", name);
            goto out;
        }
        got += (size_t)n;
    }
    (void)LLVMFuzzerTestOneInput(data, got);
    *out_ran = 1;
    ret = 0;
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return ret;
}

int
main(int argc, char **argv)
{
    DIR *d = NULL;
    struct dirent *e;
    int ran = 0, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    d = opendir(argv[1]);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        int one = 0;
        if (e->d_name[0] == '.')
            continue;
        if (run_file(dirfd(d), e->d_name, &one) != 0)
            failed++;
        ran += one;
    }
    closedir(d);
    if (ran == 0) {
        fprintf(stderr, "replay: %s: no input files\n", argv[1]);
        return 1;
    }
    printf("replay: %s: %d inputs, %d unreadable\n", argv[1], ran, failed);
    return failed == 0 ? 0 : 1;
}
