/* bare_fixed: the ceiling for API reads in scripts/bench: a bare libfcgi handler whose threads
 * answer every request with the same bytes (a job status response: the headers labbox sends
 * and the body read from a file). Not installed; no checks beyond what a benchmark needs.
 *   bench_fcgi_fixed SOCKET BODY_FILE [THREADS (16)]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char head[] =
    "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n";
static char *body;
static int body_len;
static int listen_fd;

static void *
worker(void *arg)
{
    FCGX_Request r;
    (void)arg;
    if (FCGX_InitRequest(&r, listen_fd, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&r) >= 0) {
        FCGX_PutStr(head, (int)sizeof(head) - 1, r.out);
        FCGX_PutStr(body, body_len, r.out);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_fcgi_fixed SOCKET BODY_FILE [THREADS]\n");
        return 2;
    }
    int threads = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 16;
    FILE *f = fopen(argv[2], "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size > (1 << 20) || threads < 1) {
        fprintf(stderr, "bench_fcgi_fixed: cannot read %s\n", argv[2]);
        return 1;
    }
    body_len = (int)st.st_size;
    body = malloc((size_t)body_len + 1);
    if (body == NULL || fread(body, 1, (size_t)body_len, f) != (size_t)body_len)
        return 1;
    fclose(f);
    FCGX_Init();
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0 || chmod(argv[1], 0666) != 0) {
        fprintf(stderr, "bench_fcgi_fixed: cannot listen on %s\n", argv[1]);
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
