/* main: `labbox serve` (the FastCGI server) and `labbox supervise <id>` (one job).
 *
 * Theory of operation. serve loads and validates the configuration, opens the data dir, loads
 * libmagic, binds its unix socket (or takes fd 0 from spawn-fcgi / systemd), reconciles the
 * job directories and starts the dispatcher (core/scheduler.c), then runs `threads` request
 * threads, each looping on FCGX_Accept_r and handing the request to api_dispatch. SIGTERM,
 * SIGINT and SIGHUP are taken by a dedicated thread with sigwait: it marks the server as
 * shutting down (uploads get 503), shuts the listening socket so accepts end, gives requests
 * in flight a few seconds, and exits. Supervisors are separate processes in their own sessions
 * and keep running; the next serve picks them up.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "config.h"
#include "core/jobstore.h"
#include "core/scheduler.h"
#include "core/supervisor.h"
#include "jobs/filetype.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/id.h"

static struct api g_api;
static int g_listen_fd = -1;
static atomic_uint g_busy;
static atomic_uint g_reqno;

static void
usage(void)
{
    fprintf(stderr, "usage: labbox serve [--config FILE]\n"
                    "       labbox supervise [--config FILE] JOB_ID\n"
                    "       labbox check-config [--config FILE]\n"
                    "       labbox version\n");
}

static void *
worker(void *arg)
{
    (void)arg;
    FCGX_Request fr;
    if (FCGX_InitRequest(&fr, g_listen_fd, 0) != 0)
        return NULL;
    for (;;) {
        if (FCGX_Accept_r(&fr) < 0)
            break;
        if (atomic_load(&g_api.shutting_down) && g_listen_fd < 0) {
            FCGX_Finish_r(&fr);
            break;
        }
        atomic_fetch_add(&g_busy, 1);
        struct req r;
        req_init(&r, &fr, atomic_fetch_add(&g_reqno, 1));
        api_dispatch(&g_api, &r);
        if (!r.started)
            api_internal(&r);
        FCGX_Finish_r(&fr);
        atomic_fetch_sub(&g_busy, 1);
    }
    FCGX_Free(&fr, 1);
    return NULL;
}

/* Refuse to take over a socket another live server answers on; remove a stale one. */
static int
open_listener(const struct config *cfg)
{
    if (strcmp(cfg->listen, "fd:0") == 0)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->listen) >= sizeof(sa.sun_path)) {
        log_err("listen path is too long: %s", cfg->listen);
        return -1;
    }
    memcpy(sa.sun_path, cfg->listen, strlen(cfg->listen) + 1);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        log_err("another server already listens on %s", cfg->listen);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    (void)unlink(cfg->listen);
    mode_t old = umask(0777 & ~(mode_t)cfg->socket_mode);
    int fd = FCGX_OpenSocket(cfg->listen, 1024);
    umask(old);
    if (fd < 0) {
        log_errno("cannot listen on %s", cfg->listen);
        return -1;
    }
    (void)chmod(cfg->listen, (mode_t)cfg->socket_mode);
    if (cfg->socket_group[0] != '\0') {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res) != 0 || res == NULL ||
            chown(cfg->listen, (uid_t)-1, gr.gr_gid) != 0)
            log_warn("cannot give %s to group %s", cfg->listen, cfg->socket_group);
    }
    return fd;
}

static int
serve(const struct config *cfg, const char *config_path)
{
    struct jobstore js;
    struct scheduler *sched = NULL;
    pthread_t *threads = NULL;
    size_t nthreads = 0;
    int status = 1;
    char exe[PATH_MAX];
    sigset_t sigs;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        log_errno("readlink /proc/self/exe");
        return 1;
    }
    exe[n] = '\0';
    if (sandbox_ops_by_name(cfg->backend) == NULL) {
        log_err("backend %s is not compiled into this build (have: %s)", cfg->backend,
                sandbox_names());
        return 1;
    }
    if (filetype_init() != RC_OK)
        return 1;
    if (jobstore_open(&js, cfg) != RC_OK)
        return 1;
    if (FCGX_Init() != 0) {
        log_err("FCGX_Init failed");
        goto out;
    }
    g_listen_fd = open_listener(cfg);
    if (g_listen_fd < 0)
        goto out;
    if (scheduler_start(cfg, &js, exe, config_path, &sched) != RC_OK) {
        log_err("cannot start the scheduler");
        goto out;
    }
    g_api.cfg = cfg;
    g_api.js = &js;
    g_api.sched = sched;
    threads = calloc(cfg->threads, sizeof(*threads));
    if (threads == NULL)
        goto out;
    for (; nthreads < cfg->threads; nthreads++)
        if (pthread_create(&threads[nthreads], NULL, worker, NULL) != 0)
            break;
    log_info("labbox %s serving on %s with %zu threads, backend %s, data %s", LABBOX_VERSION,
             cfg->listen, nthreads, cfg->backend, cfg->data_dir);
    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("signal %d: shutting down; running jobs keep running", sig);
    atomic_store(&g_api.shutting_down, true);
    /* Wake the accepting threads, then give requests in flight a moment. */
    (void)shutdown(g_listen_fd, SHUT_RDWR);
    for (int i = 0; i < 100 && atomic_load(&g_busy) > 0; i++)
        usleep(50000);
    status = 0;
out:
    /* Threads still inside a long request (an event stream) are not waited for. */
    scheduler_stop(sched);
    if (g_listen_fd > 0 && strcmp(cfg->listen, "fd:0") != 0)
        (void)unlink(cfg->listen);
    (void)fflush(stderr);
    _exit(status);
}

/* check-config: the configuration, then the backend's own check (for local: every limit it
 * must enforce can be, the uid range is free, the tools are there). */
static int
check_backend(const struct config *cfg)
{
    const struct sandbox_ops *ops = sandbox_ops_by_name(cfg->backend);
    struct sandbox *sb = ops ? sandbox_new(ops, cfg, NULL) : NULL;
    enum rc rc = sb == NULL ? RC_BACKEND : sandbox_init(sb);
    if (rc == RC_OK) {
        sb->deadline_ms = clock_mono_ms() + 10000;
        rc = sandbox_check(sb);
    }
    if (rc == RC_OK)
        printf("configuration ok: backend %s, data %s\n", cfg->backend, cfg->data_dir);
    else
        (void)fprintf(stderr, "labbox: configuration ok, but backend %s is not usable: %s\n",
                      cfg->backend, sb ? sb->error : "not compiled in");
    sandbox_free(sb);
    return rc == RC_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
    const char *config_path = NULL;
    const char *cmd = NULL;
    const char *id = NULL;
    struct config cfg;
    char err[1024] = "";

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (cmd == NULL)
            cmd = argv[i];
        else if (id == NULL)
            id = argv[i];
        else {
            usage();
            return 2;
        }
    }
    if (cmd == NULL) {
        usage();
        return 2;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("labbox %s (%s), backends: %s\n", LABBOX_VERSION, LABBOX_COMMIT, sandbox_names());
        return 0;
    }
    if (config_load(&cfg, config_path, err, sizeof(err)) != RC_OK) {
        fprintf(stderr, "labbox: configuration error: %s\n", err[0] ? err : "out of memory");
        return 2;
    }
    if (cfg.log_level[0] != '\0')
        (void)log_set_level(cfg.log_level);
    int status;
    if (strcmp(cmd, "serve") == 0 && id == NULL) {
        status = serve(&cfg, config_path);
    } else if (strcmp(cmd, "supervise") == 0 && id != NULL) {
        status = supervisor_main(&cfg, id);
    } else if (strcmp(cmd, "check-config") == 0 && id == NULL) {
        status = check_backend(&cfg);
    } else {
        usage();
        status = 2;
    }
    config_fini(&cfg);
    return status;
}
