/* bare_fixed: the ceiling for API reads in scripts/bench: a bare libfcgi handler whose threads
 * answer every request with the same bytes (a job status response: the headers labbox sends
 * and the body read from a file). Not installed; no checks beyond what a benchmark needs.
 *   bench_fcgi_fixed SOCKET BODY_FILE [THREADS (16)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bare.h"

static const char head[] =
    "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n";
static char *body;
static int body_len;

static void
answer(FCGX_Request *r)
{
    FCGX_PutStr(head, (int)sizeof(head) - 1, r->out);
    FCGX_PutStr(body, body_len, r->out);
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_fcgi_fixed SOCKET BODY_FILE [THREADS]\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size > (1 << 20)) {
        fprintf(stderr, "bench_fcgi_fixed: cannot read %s\n", argv[2]);
        return 1;
    }
    body_len = (int)st.st_size;
    body = malloc((size_t)body_len + 1);
    if (body == NULL || fread(body, 1, (size_t)body_len, f) != (size_t)body_len)
        return 1;
    fclose(f);
    return bare_run("bench_fcgi_fixed", argv[1], argc > 3 ? argv[3] : NULL, answer);
}
