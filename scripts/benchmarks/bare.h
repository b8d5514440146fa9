/* bare: what the two bare libfcgi handlers of scripts/bench share: listen on a unix socket
 * (mode 0666) and accept on it with a number of threads, like labbox serve; each request goes
 * to the handler. */
#ifndef LABBOX_BENCH_BARE_H
#define LABBOX_BENCH_BARE_H

#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int bare_listen_fd;
static void (*bare_handler)(FCGX_Request *r);

static void *
bare_thread(void *arg)
{
    FCGX_Request r;
    (void)arg;
    if (FCGX_InitRequest(&r, bare_listen_fd, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&r) >= 0) {
        bare_handler(&r);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

/* bare_run: listen on sock, start the threads, print "LISTENING <sock>", wait for them; the
 * exit status for main. */
static int
bare_run(const char *name, const char *sock, const char *threads_arg,
         void (*handler)(FCGX_Request *))
{
    int threads = threads_arg != NULL ? (int)strtol(threads_arg, NULL, 10) : 16;
    bare_handler = handler;
    FCGX_Init();
    bare_listen_fd = FCGX_OpenSocket(sock, 1024);
    if (bare_listen_fd < 0 || chmod(sock, 0666) != 0 || threads < 1) {
        fprintf(stderr, "%s: cannot listen on %s\n", name, sock);
        return 1;
    }
    pthread_t *t = calloc((size_t)threads, sizeof(*t));
    if (t == NULL)
        return 1;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, bare_thread, NULL);
    printf("LISTENING %s\n", sock);
    fflush(stdout);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(t);
    return 0;
}

#endif
