/* bare_upload: the ceiling for uploads in scripts/bench: a bare libfcgi handler whose threads
 * read each request body in 64 KiB calls and write it to a new file in DIR (no parsing, no
 * fsync), then answer 201 with the byte count. The files stay (the benchmark removes them), so
 * the writes reach the disk as labbox's do. Not installed.
 *   bench_fcgi_upload SOCKET DIR [THREADS (16)]
 */
#include <fcgiapp.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

static const char *dir;
static int listen_fd;
static atomic_uint seq;

static void *
worker(void *arg)
{
    FCGX_Request r;
    char *buf = malloc(CHUNK);
    char path[4096];
    (void)arg;
    if (buf == NULL || FCGX_InitRequest(&r, listen_fd, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&r) >= 0) {
        (void)snprintf(path, sizeof(path), "%s/upload-%u", dir, atomic_fetch_add(&seq, 1));
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        long long total = 0;
        int n, ok = fd >= 0;
        while ((n = FCGX_GetStr(buf, CHUNK, r.in)) > 0) {
            if (ok && write(fd, buf, (size_t)n) != n)
                ok = 0;
            total += n;
        }
        if (fd >= 0)
            close(fd);
        if (ok)
            FCGX_FPrintF(r.out,
                         "Status: 201 Created\r\nContent-Type: application/json\r\n"
                         "Cache-Control: no-store\r\n\r\n{\"bytes\":%lld}\n",
                         total);
        else
            FCGX_FPrintF(r.out, "Status: 500 Internal Server Error\r\n\r\n");
        FCGX_Finish_r(&r);
    }
    free(buf);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_fcgi_upload SOCKET DIR [THREADS]\n");
        return 2;
    }
    dir = argv[2];
    int threads = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 16;
    if (threads < 1)
        return 2;
    FCGX_Init();
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0 || chmod(argv[1], 0666) != 0) {
        fprintf(stderr, "bench_fcgi_upload: cannot listen on %s\n", argv[1]);
        return 1;
    }
    pthread_t *t = calloc((size_t)threads, sizeof(*t));
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    printf("LISTENING %s\n", argv[1]);
    fflush(stdout);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
