/* serve: `labbox serve`: the FastCGI listener, request threads, signals and reloads.
 *
 * Theory of operation. serve opens the data dir, loads libmagic, takes its listening socket
 * (a unix socket it binds itself, fd 0 from spawn-fcgi, or fd 3 from systemd's socket
 * activation), writes the configuration it runs with to <data_dir>/running.conf (supervisors
 * read that file when they start, so they see what serve validated, never a half-edited
 * labbox.conf), reconciles the job directories and starts the dispatcher (core/scheduler.c),
 * then gives up its capabilities in this thread (the dispatcher keeps them: see below) and runs
 * `threads` request threads, each looping on FCGX_Accept_r and handing the request to
 * api_dispatch. It tells systemd READY=1 when it accepts requests.
 *
 * Capabilities. Under its service unit labbox runs as its own user with the few capabilities
 * the local backend's walls need (docs/operations.md); as root it has them all. They are per
 * thread: the dispatcher thread keeps them (the backend probe, orphan reaping, and the
 * supervisors it spawns inherit them through the ambient set); the signal thread and every
 * request thread hold none, permitted or effective, so a request can never use one.
 *
 * Signals are taken by this thread alone, with sigtimedwait. SIGTERM and SIGINT: STOPPING=1,
 * uploads get 503, the listening socket is shut so accepts end, requests in flight get a few
 * seconds, and the process exits. Supervisors are separate processes in their own sessions and
 * keep running; the next serve picks them up. SIGHUP: the configuration is loaded and checked
 * again as a new struct config; keys that need a restart keep their running values (the log
 * says which changed); log_file is reopened; running.conf is rewritten; then the new snapshot
 * is published. A bad configuration changes nothing and is logged.
 *
 * Snapshots (util/cfgsnap.h). A snapshot is never modified once published. Each request thread
 * takes the current one once, when its request begins (r->cfg), and uses it to the request's
 * end (event streams leave their thread: they copy what they read of it first); the
 * scheduler's dispatcher takes it once per round. A retired snapshot is freed once no reader
 * can hold it. The start-up snapshot is never freed: the job store keeps pointers into it
 * (data_dir and the other keys that need a restart).
 */
#include "serve.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/agent.h"
#include "core/jobstore.h"
#include "core/scheduler.h"
#include "jobs/filetype.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/caps.h"
#include "util/cfgsnap.h"
#include "util/fsutil.h"
#include "util/owner.h"
#include "util/systemd.h"

#define RUNNING_CONF "running.conf"

static struct api g_api;
static int g_listen_fd = -1;
static bool g_listen_path; /* we bound cfg->listen ourselves: unlink it at exit */
static atomic_uint g_busy;
static atomic_uint g_reqno;
static struct config g_start; /* the start-up snapshot */
static struct cfgsnap g_snaps;
static const char *g_config_path;
static int g_data_fd = -1;

static void *
worker(void *arg)
{
    long reader = (long)(intptr_t)arg;
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
        r.cfg = cfgsnap_enter(&g_snaps, reader);
        api_dispatch(&g_api, &r);
        if (!r.started)
            api_internal(&r);
        cfgsnap_leave(&g_snaps, reader);
        FCGX_Finish_r(&fr);
        atomic_fetch_sub(&g_busy, 1);
    }
    FCGX_Free(&fr, 1);
    return NULL;
}

/* notify tells systemd (when it asked) about a state change; a failure is worth a warning:
 * systemd would time the start or reload out. */
static void
notify(const char *state)
{
    if (systemd_notify(state) != RC_OK)
        log_warnno("cannot notify systemd (NOTIFY_SOCKET)");
}

/*** the listening socket ***/

/* socket_give_group: chgrp the socket to socket_group, or say exactly why not. nginx answers
 * 502 to everything when it cannot connect, so a socket it cannot reach is a failed start. */
static bool
socket_give_group(const struct config *cfg)
{
    char err[512];
    gid_t gid;
    if (owner_group("socket_group", cfg->socket_group, "the socket", true, &gid, err,
                    sizeof(err)) != RC_OK) {
        log_err("%s", err);
        return false;
    }
    if (chown(cfg->listen, (uid_t)-1, gid) != 0) {
        log_errno("socket_group %s: cannot give %s to it", cfg->socket_group, cfg->listen);
        return false;
    }
    return true;
}

/* bind_path: bind cfg->listen; refuse to take over a socket another live server answers on,
 * remove a stale one. */
static int
bind_path(const struct config *cfg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->listen) >= sizeof(sa.sun_path)) {
        log_err("listen: the path is longer than %zu bytes: %s", sizeof(sa.sun_path) - 1,
                cfg->listen);
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
    g_listen_path = true;
    if (chmod(cfg->listen, (mode_t)cfg->socket_mode) != 0) {
        log_errno("socket_mode: chmod %s", cfg->listen);
        return -1;
    }
    if (cfg->socket_group[0] != '\0' && !socket_give_group(cfg))
        return -1;
    return fd;
}

static int
open_listener(const struct config *cfg)
{
    char err[256] = "";
    int fd = -1;
    enum rc rc = systemd_listen_fd(&fd, err, sizeof(err));
    bool systemd = strcmp(cfg->listen, "systemd") == 0;
    if (rc == RC_BADREQ) {
        log_err("socket activation: %s", err);
        return -1;
    }
    if (systemd && rc != RC_OK) {
        log_err("listen = systemd, but no socket was passed (LISTEN_PID/LISTEN_FDS): start "
                "labbox.socket, or set listen to a path");
        return -1;
    }
    if (!systemd && rc == RC_OK) {
        log_err("systemd passed a socket, but listen = %s: set listen = systemd", cfg->listen);
        return -1;
    }
    if (systemd) {
        if (cfg->socket_group[0] != '\0')
            log_warn("socket_group does not apply to the socket with listen = systemd (the "
                     "socket unit's SocketGroup= does)%s",
                     cfg->output_group[0] != '\0'
                         ? ""
                         : "; it is still the group nginx reads job files through");
        return fd;
    }
    if (strcmp(cfg->listen, "fd:0") == 0)
        return 0;
    return bind_path(cfg);
}

/*** configuration snapshots ***/

/* write_running_conf: the configuration supervisors will read, replaced atomically, 0600 (the
 * agent's environment may carry secrets). */
static enum rc
write_running_conf(const struct config *cfg)
{
    static const char head[] = "# Written by labbox serve: the configuration it runs with. "
                               "Supervisors read this file; edit labbox.conf instead.\n";
    char *text = NULL, *all = NULL;
    size_t len = 0;
    enum rc rc = config_format(cfg, &text, &len);
    if (rc == RC_OK && (all = malloc(sizeof(head) + len)) == NULL)
        rc = RC_NOMEM;
    if (rc == RC_OK) {
        memcpy(all, head, sizeof(head) - 1);
        memcpy(all + sizeof(head) - 1, text, len);
        rc = fs_write_atomic_mode(g_data_fd, RUNNING_CONF, all, sizeof(head) - 1 + len, 0600);
    }
    if (rc != RC_OK)
        log_err("cannot write %s/%s: %s", cfg->data_dir, RUNNING_CONF, rc_str(rc));
    free(all);
    free(text);
    return rc;
}

/* open_log: an fd for log_file, or -1 (logged) if it cannot be opened. */
static int
open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        log_errno("log_file: cannot open %s", path);
    return fd;
}

enum rc
serve_open_log(const char *path)
{
    if (path[0] == '\0')
        return RC_OK;
    int fd = open_log(path);
    if (fd < 0)
        return RC_IO;
    /* dup2 replaces fd 2 atomically: a write racing it lands in the old file or the new. */
    enum rc rc = dup2(fd, 2) < 0 ? RC_IO : RC_OK;
    close(fd);
    return rc;
}

static void
reload(void)
{
    char err[1024] = "", kept[1024] = "", applied[2048] = "", state[96];
    struct timespec now;
    struct config *next = cfgsnap_new();
    int logfd = -1;
    const char *from = g_config_path ? g_config_path : "the environment";

    clock_gettime(CLOCK_MONOTONIC, &now);
    (void)snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
                   (unsigned long long)now.tv_sec * 1000000ull +
                       (unsigned long long)now.tv_nsec / 1000);
    notify(state);
    enum rc rc = next ? config_load(next, g_config_path, err, sizeof(err)) : RC_NOMEM;
    if (rc == RC_OK)
        rc = config_check_files(next, err, sizeof(err));
    if (rc == RC_OK)
        rc = agent_check(next, err, sizeof(err));
    if (rc == RC_OK)
        rc = config_instance(next, g_data_fd, false, err, sizeof(err));
    if (rc == RC_OK)
        rc = config_keep_restart_keys(next, cfgsnap_current(&g_snaps), kept, applied, sizeof(kept),
                                      err, sizeof(err));
    if (rc == RC_OK && next->log_file[0] != '\0' && (logfd = open_log(next->log_file)) < 0) {
        (void)snprintf(err, sizeof(err), "log_file: cannot open %s", next->log_file);
        rc = RC_IO;
    }
    if (rc == RC_OK && write_running_conf(next) != RC_OK) {
        (void)snprintf(err, sizeof(err), "cannot write %s", RUNNING_CONF);
        rc = RC_IO;
    }
    if (rc != RC_OK) {
        log_err("reload from %s failed, the running configuration stays: %s", from,
                err[0] ? err : rc_str(rc));
        cfgsnap_discard(next);
        if (logfd >= 0)
            close(logfd);
        notify("READY=1\nSTATUS=reload failed: the running configuration stays");
        return;
    }
    if (logfd >= 0) {
        (void)dup2(logfd, 2);
        close(logfd);
    }
    (void)log_set_level(next->log_level);
    cfgsnap_publish(&g_snaps, next);
    log_info("reloaded the configuration from %s; changed: %s", from,
             applied[0] ? applied : "nothing");
    if (kept[0] != '\0')
        log_warn("reload: %s changed, but take effect only at a restart; the running values stay",
                 kept);
    notify("READY=1\nSTATUS=serving (configuration reloaded)");
}

/*** the server ***/

/* wait_for_stop: handle signals until SIGTERM or SIGINT; returns that signal. */
static int
wait_for_stop(const sigset_t *sigs)
{
    for (;;) {
        struct timespec tick = {.tv_sec = 2};
        int sig = sigtimedwait(sigs, NULL, &tick);
        (void)cfgsnap_reclaim(&g_snaps);
        if (sig == SIGHUP)
            reload();
        else if (sig == SIGTERM || sig == SIGINT)
            return sig;
    }
}

/* config_usable: what serve needs of the configuration beyond config_load's checks; false after
 * logging why. */
static bool
config_usable(const struct config *cfg)
{
    char err[1024] = "";
    if (sandbox_ops_by_name(cfg->backend) == NULL) {
        log_err("backend %s is not compiled into this build (have: %s)", cfg->backend,
                sandbox_names());
        return false;
    }
    if (config_check_files(cfg, err, sizeof(err)) != RC_OK ||
        agent_check(cfg, err, sizeof(err)) != RC_OK) {
        log_err("%s", err);
        return false;
    }
    /* Someone else's sandbox_dir is refused; one that cannot be made yet is the health check's
     * to report (backend_ok false, with the reason) until it can. */
    enum rc host = config_check_host(cfg, true, err, sizeof(err));
    if (host == RC_IO)
        log_warn("%s: jobs cannot be staged until that is fixed", err);
    else if (host != RC_OK)
        log_err("%s", err);
    return host == RC_OK || host == RC_IO;
}

/* stop_serving: after signal sig, refuse new requests and give those in flight a moment. */
static void
stop_serving(int sig)
{
    notify("STOPPING=1");
    log_info("signal %d: shutting down; running jobs keep running", sig);
    atomic_store(&g_api.shutting_down, true);
    /* Wake the accepting threads, then wait for the requests in flight (5 s at most). */
    (void)shutdown(g_listen_fd, SHUT_RDWR);
    for (int i = 0; i < 100 && atomic_load(&g_busy) > 0; i++)
        usleep(50000);
}

static void
start_threads(const struct config *cfg, pthread_t **out, size_t *out_n)
{
    pthread_t *threads = calloc(cfg->threads, sizeof(*threads));
    size_t n = 0;
    long reader;
    while (threads != NULL && n < cfg->threads && (reader = cfgsnap_reader(&g_snaps)) >= 0 &&
           pthread_create(&threads[n], NULL, worker, (void *)(intptr_t)reader) == 0)
        n++;
    *out = threads;
    *out_n = n;
}

void
serve_main(struct config *cfg, const char *config_path)
{
    struct jobstore js;
    struct scheduler *sched = NULL;
    pthread_t *threads = NULL;
    size_t nthreads = 0;
    int status = 1;
    char exe[PATH_MAX], running[PATH_MAX + 32], err[1024] = "";
    sigset_t sigs;

    g_start = *cfg;
    g_config_path = config_path;
    cfg = &g_start;
    (void)systemd_notify_init();
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        log_errno("readlink /proc/self/exe");
        goto out;
    }
    exe[n] = '\0';
    /* Configuration errors exit 2, like those config_load finds. */
    status = 2;
    if (!config_usable(cfg))
        goto out;
    status = 1;
    /* Readers: the request threads and the scheduler's dispatcher. */
    if (cfgsnap_init(&g_snaps, cfg, cfg->threads + 1) != RC_OK || filetype_init() != RC_OK ||
        jobstore_open(&js, cfg) != RC_OK)
        goto out;
    g_data_fd = js.data_fd;
    if (config_instance(cfg, g_data_fd, true, err, sizeof(err)) != RC_OK) {
        log_err("%s", err);
        goto out;
    }
    if (FCGX_Init() != 0) {
        log_err("FCGX_Init failed");
        goto out;
    }
    g_listen_fd = open_listener(cfg);
    if (g_listen_fd < 0 || write_running_conf(cfg) != RC_OK)
        goto out;
    int k = snprintf(running, sizeof(running), "%s/%s", cfg->data_dir, RUNNING_CONF);
    if (k < 0 || (size_t)k >= sizeof(running) ||
        scheduler_start(&g_snaps, &js, exe, running, &sched) != RC_OK) {
        log_err("cannot start the scheduler");
        goto out;
    }
    g_api.js = &js;
    g_api.sched = sched;
    /* Capabilities are per thread. The dispatcher (started above) keeps labbox's: it probes
     * the backend and spawns the supervisors, which inherit them. This thread and the request
     * threads and event thread it starts (uploads and libmagic on them, reads, deletes, event
     * streams) give up every one. */
    if (caps_drop_all() != RC_OK) {
        log_errno("cannot drop the capabilities of the request threads");
        goto out;
    }
    g_api.identity = config_identity(cfg);
    if (api_cache_start(&g_api) != RC_OK || api_events_start(&g_api, cfg) != RC_OK)
        goto out;
    start_threads(cfg, &threads, &nthreads);
    if (nthreads == 0) {
        log_err("cannot start request threads");
        goto out;
    }
    log_info("labbox %s serving on %s with %zu threads, backend %s, data %s, instance %s",
             LABBOX_VERSION, cfg->listen, nthreads, cfg->backend, cfg->data_dir, cfg->instance);
    (void)snprintf(err, sizeof(err), "READY=1\nSTATUS=serving: backend %s, data %s", cfg->backend,
                   cfg->data_dir);
    notify(err);
    stop_serving(wait_for_stop(&sigs));
    status = 0;
out:
    /* Event streams are closed (clients resume from the next serve); requests still busy after
     * the wait above are not waited for. */
    api_events_stop(&g_api);
    scheduler_stop(sched);
    if (g_listen_path)
        (void)unlink(cfg->listen);
    (void)fflush(stderr);
    _exit(status);
}
