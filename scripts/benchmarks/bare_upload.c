/* bare_upload: the ceiling for uploads in scripts/bench: a bare libfcgi handler whose threads
 * read each request body in 64 KiB calls and write it to a new file in DIR (no parsing, no
 * fsync), then answer 201 with the byte count. With the query "sync=1" it also fdatasyncs the
 * file and fsyncs DIR before answering: the least a durable create costs on this disk. The
 * files stay (the benchmark removes them), so the writes reach the disk as labbox's do. Not
 * installed.
 *   bench_fcgi_upload SOCKET DIR [THREADS (16)]
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bare.h"

#define CHUNK 65536

static const char *dir;
static int dir_fd;
static atomic_uint seq;
static _Thread_local char buf[CHUNK];

static void
answer(FCGX_Request *r)
{
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/upload-%u", dir, atomic_fetch_add(&seq, 1));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    long long total = 0;
    int n, ok = fd >= 0;
    while ((n = FCGX_GetStr(buf, CHUNK, r->in)) > 0) {
        if (ok && write(fd, buf, (size_t)n) != n)
            ok = 0;
        total += n;
    }
    const char *q = FCGX_GetParam("QUERY_STRING", r->envp);
    if (ok && q && strcmp(q, "sync=1") == 0 && (fdatasync(fd) != 0 || fsync(dir_fd) != 0))
        ok = 0;
    if (fd >= 0)
        close(fd);
    if (ok)
        FCGX_FPrintF(r->out,
                     "Status: 201 Created\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\n\r\n{\"bytes\":%lld}\n",
                     total);
    else
        FCGX_FPrintF(r->out, "Status: 500 Internal Server Error\r\n\r\n");
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_fcgi_upload SOCKET DIR [THREADS]\n");
        return 2;
    }
    dir = argv[2];
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        perror(dir);
        return 1;
    }
    return bare_run("bench_fcgi_upload", argv[1], argc > 3 ? argv[3] : NULL, answer);
}
