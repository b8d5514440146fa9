/* scheduler: queue, dispatcher thread, supervisor spawning, reconcile and retention. */
#include "core/scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"
#include "defaults.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

extern char **environ;

#define TICK_MS      200
#define SWEEP_MAX_MS 60000 /* retention sweeps at least this often, or every job_ttl / 2 */
#define CHECK_MS     10000

struct entry {
    char id[ID_LEN + 1];
    int64_t order;  /* created_ms: FIFO order */
    int recoveries; /* supervisors started for this job after the first */
};

struct scheduler {
    const struct config *cfg;
    struct jobstore *js;
    char *exe;
    char *config_path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool started;
    struct entry *queue; /* FIFO, [0] is next */
    size_t nqueue, capqueue;
    size_t reserved; /* slots claimed by uploads in progress */
    struct entry *running;
    size_t nrunning, caprunning;
    bool backend_ok;
    char backend_why[512];
};

/*** small vectors ***/

static enum rc
push(struct entry **v, size_t *n, size_t *cap, const struct entry *e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct entry *nv = realloc(*v, nc * sizeof(**v));
        if (nv == NULL)
            return RC_NOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *e;
    return RC_OK;
}

static void
remove_at(struct entry *v, size_t *n, size_t i)
{
    memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
    (*n)--;
}

static long
find(const struct entry *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return (long)i;
    return -1;
}

static int
cmp_order(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order ? 1 : strcmp(x->id, y->id);
}

/*** supervisors ***/

/* Take the job's lock and spawn `labbox supervise <id>` holding it as fd 3. RC_BUSY when a
 * supervisor already holds the lock. */
static enum rc
spawn_supervisor(struct scheduler *sc, const char *id)
{
    int dfd = -1, lockfd = -1, fd3 = -1;
    enum rc rc = RC_IO;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool fa_ok = false, at_ok = false;
    char **envp = NULL;

    if (jobstore_open_job(sc->js, id, &dfd) != RC_OK)
        return RC_NOTFOUND;
    lockfd = jobstore_lock_take(dfd);
    if (lockfd < 0) {
        if (errno == EWOULDBLOCK)
            rc = RC_BUSY;
        else
            log_errno("take the lock of %s", id);
        goto out;
    }
    /* Move the lock above fd 3 so that dup2 to 3 always creates a fresh, inheritable fd. */
    fd3 = fcntl(lockfd, F_DUPFD_CLOEXEC, 10);
    if (fd3 < 0)
        goto out;
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    envp = calloc(n + 2, sizeof(*envp));
    if (envp == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LABBOX_LOCK_FD=", 15) != 0)
            envp[k++] = environ[i];
    static char lock_env[] = "LABBOX_LOCK_FD=3";
    envp[k++] = lock_env;
    envp[k] = NULL;

    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = true;
    if (posix_spawnattr_init(&at) != 0)
        goto out;
    at_ok = true;
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGCHLD);
    if (posix_spawn_file_actions_adddup2(&fa, fd3, 3) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setsigmask(&at, &none) != 0 ||
        posix_spawnattr_setsigdefault(&at, &def) != 0)
        goto out;
    char *argv[6];
    size_t a = 0;
    argv[a++] = sc->exe;
    argv[a++] = (char *)(uintptr_t) "supervise";
    if (sc->config_path != NULL) {
        argv[a++] = (char *)(uintptr_t) "--config";
        argv[a++] = sc->config_path;
    }
    char idbuf[ID_LEN + 1];
    (void)snprintf(idbuf, sizeof(idbuf), "%s", id);
    argv[a++] = idbuf;
    argv[a] = NULL;
    pid_t pid;
    int err = posix_spawn(&pid, sc->exe, &fa, &at, argv, envp);
    if (err != 0) {
        errno = err;
        log_errno("posix_spawn supervisor for %s", id);
        goto out;
    }
    log_info("job=%s supervisor started, pid %ld", id, (long)pid);
    rc = RC_OK;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    free(envp);
    if (fd3 >= 0)
        close(fd3);
    if (lockfd >= 0)
        close(lockfd); /* the child's fd 3 keeps the lock */
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* Write a terminal state for a job no supervisor can run. Caller holds sc->mu. */
static void
mark_failed(struct scheduler *sc, const char *id, enum job_reason reason, const char *detail)
{
    int dfd = -1;
    struct job job;
    if (jobstore_open_job(sc->js, id, &dfd) != RC_OK)
        return;
    if (jobstore_load(dfd, &job) == RC_OK && !jobstate_is_terminal(job.state) &&
        jobstore_set_state(&job, JOB_FAILED, reason, detail) == RC_OK) {
        if (jobstore_save(dfd, &job) == RC_OK)
            metrics_job_ended(&job);
        else
            log_err("job=%s cannot record its failure (%s)", id, detail);
    }
    jobstore_job_fini(&job);
    close(dfd);
}

/* Start a supervisor for e and track it; caller holds sc->mu. */
static void
start_one(struct scheduler *sc, struct entry *e)
{
    enum rc rc = spawn_supervisor(sc, e->id);
    if (rc == RC_OK || rc == RC_BUSY) {
        if (push(&sc->running, &sc->nrunning, &sc->caprunning, e) != RC_OK)
            log_err("job=%s out of memory tracking a supervisor", e->id);
        return;
    }
    if (rc != RC_NOTFOUND)
        mark_failed(sc, e->id, REASON_SANDBOX_ERROR, "cannot start the job's supervisor");
}

/* Check every tracked supervisor; recover or drop the ones that are gone. Holds sc->mu. */
static void
check_running(struct scheduler *sc)
{
    for (size_t i = 0; i < sc->nrunning;) {
        struct entry e = sc->running[i];
        int dfd = -1;
        if (jobstore_open_job(sc->js, e.id, &dfd) != RC_OK) {
            remove_at(sc->running, &sc->nrunning, i); /* deleted */
            continue;
        }
        if (jobstore_lock_is_held(dfd)) {
            close(dfd);
            i++;
            continue;
        }
        struct job job;
        bool loaded = jobstore_load(dfd, &job) == RC_OK;
        bool unfinished = loaded && !jobstate_is_terminal(job.state);
        if (loaded && !unfinished)
            metrics_job_ended(&job);
        jobstore_job_fini(&job);
        close(dfd);
        remove_at(sc->running, &sc->nrunning, i);
        if (!unfinished)
            continue;
        if (e.recoveries >= SCHED_MAX_RECOVERIES) {
            log_err("job=%s supervisor died %d times; giving up", e.id, e.recoveries + 1);
            mark_failed(sc, e.id, REASON_INTERRUPTED, "the job's supervisor kept dying");
            continue;
        }
        log_warn("job=%s supervisor ended with the job unfinished; recovering", e.id);
        e.recoveries++;
        start_one(sc, &e);
    }
}

/*** retention ***/

static bool
sweep_one(void *ctx, int dirfd, const struct job *job)
{
    struct scheduler *sc = ctx;
    int64_t fin = job->finished_ms;
    if (jobstate_is_terminal(job->state) && fin > 0 &&
        clock_real_ms() - fin > (int64_t)sc->cfg->job_ttl * 1000 && !jobstore_lock_is_held(dirfd)) {
        log_info("job=%s expired; deleting", job->id);
        if (jobstore_remove(sc->js, job->id) != RC_OK)
            log_warn("job=%s could not be removed whole; the rest goes at the next start", job->id);
    }
    return true;
}

static void
sweep(struct scheduler *sc)
{
    if (jobstore_foreach(sc->js, sweep_one, sc) != RC_OK)
        log_warn("retention sweep could not read the jobs");
}

/*** backend health ***/

static bool
claimed(void *ctx, const char *job_id)
{
    struct scheduler *sc = ctx;
    int dfd = -1;
    if (job_id == NULL || jobstore_open_job(sc->js, job_id, &dfd) != RC_OK)
        return false;
    struct job job;
    bool live = jobstore_load(dfd, &job) == RC_OK && !jobstate_is_terminal(job.state);
    jobstore_job_fini(&job);
    close(dfd);
    return live;
}

/* Check the backend (and, when reap, remove orphans); true when it is usable. */
static bool
backend_service(struct scheduler *sc, bool reap)
{
    const struct sandbox_ops *ops = sandbox_ops_by_name(sc->cfg->backend);
    struct sandbox *sb = ops ? sandbox_new(ops, sc->cfg, NULL) : NULL;
    bool ok = false;
    char why[512] = "the backend is not compiled in";
    if (sb != NULL) {
        sb->deadline_ms = clock_mono_ms() + 5000;
        enum rc rc = sandbox_init(sb);
        if (rc == RC_OK)
            rc = sandbox_check(sb);
        ok = rc == RC_OK;
        (void)snprintf(why, sizeof(why), "%s", ok ? "" : sb->error);
        if (ok && reap) {
            sb->deadline_ms = clock_mono_ms() + 60000;
            if (sandbox_reap_orphans(sb, claimed, sc) != RC_OK)
                log_warn("removing orphaned sandboxes failed: %s", sb->error);
        }
        sandbox_free(sb);
    }
    metrics_backend_check(ok);
    pthread_mutex_lock(&sc->mu);
    if (ok != sc->backend_ok)
        log_info("backend %s is %s%s%s", sc->cfg->backend, ok ? "usable" : "not usable",
                 ok ? "" : ": ", why);
    sc->backend_ok = ok;
    (void)snprintf(sc->backend_why, sizeof(sc->backend_why), "%s", why);
    pthread_mutex_unlock(&sc->mu);
    return ok;
}

/*** the dispatcher ***/

static void *
dispatcher(void *arg)
{
    struct scheduler *sc = arg;
    int64_t last_sweep = 0, last_check = 0;
    bool reaped = false;
    for (;;) {
        int64_t now = clock_mono_ms();
        if (now - last_check >= CHECK_MS) {
            /* Orphans go at the first check that finds the backend usable. */
            if (backend_service(sc, !reaped))
                reaped = true;
            last_check = clock_mono_ms();
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        pthread_mutex_lock(&sc->mu);
        if (sc->stopping) {
            pthread_mutex_unlock(&sc->mu);
            break;
        }
        check_running(sc);
        while (sc->nqueue > 0 && sc->nrunning < sc->cfg->max_concurrent) {
            struct entry e = sc->queue[0];
            remove_at(sc->queue, &sc->nqueue, 0);
            start_one(sc, &e);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
        pthread_mutex_unlock(&sc->mu);
        int64_t sweep_ms = (int64_t)sc->cfg->job_ttl * 500;
        if (sweep_ms > SWEEP_MAX_MS)
            sweep_ms = SWEEP_MAX_MS;
        if (clock_mono_ms() - last_sweep >= sweep_ms) {
            sweep(sc);
            last_sweep = clock_mono_ms();
        }
    }
    return NULL;
}

/*** reconcile ***/

struct reconcile {
    struct scheduler *sc;
    size_t nq, nr, nrec; /* queued, running, recovering */
    enum rc rc;
};

/* Put one job where it belongs: the queue, the running set, or a recovery supervisor. */
static bool
reconcile_one(void *ctx, int dirfd, const struct job *job)
{
    struct reconcile *r = ctx;
    struct scheduler *sc = r->sc;
    enum job_state st = job->state;
    struct entry e = {.order = job->created_ms, .recoveries = 0};
    if (jobstate_is_terminal(st))
        return true;
    memcpy(e.id, job->id, sizeof(e.id));
    if (jobstore_lock_is_held(dirfd)) {
        r->rc = push(&sc->running, &sc->nrunning, &sc->caprunning, &e);
        r->nr++;
    } else if (st == JOB_QUEUED) {
        r->rc = push(&sc->queue, &sc->nqueue, &sc->capqueue, &e);
        r->nq++;
    } else {
        /* Past queued and nobody holds it: a recovery supervisor decides. */
        e.recoveries = 1;
        start_one(sc, &e);
        r->nrec++;
    }
    return r->rc == RC_OK;
}

static enum rc
reconcile(struct scheduler *sc)
{
    /* Upload staging dirs and half-deleted jobs from a previous life. */
    jobstore_clear_tmp(sc->js);

    struct reconcile rec = {sc, 0, 0, 0, RC_OK};
    if (jobstore_foreach(sc->js, reconcile_one, &rec) != RC_OK)
        return RC_IO;
    if (rec.rc != RC_OK)
        return rec.rc;
    if (sc->nqueue > 1)
        qsort(sc->queue, sc->nqueue, sizeof(*sc->queue), cmp_order);
    log_info("reconciled: %zu queued, %zu running, %zu recovering", rec.nq, rec.nr, rec.nrec);
    return RC_OK;
}

/*** public ***/

enum rc
scheduler_start(const struct config *cfg, struct jobstore *js, const char *exe,
                const char *config_path, struct scheduler **out)
{
    *out = NULL;
    struct scheduler *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return RC_NOMEM;
    sc->cfg = cfg;
    sc->js = js;
    sc->backend_ok = true;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->cv, &ca);
    pthread_condattr_destroy(&ca);
    sc->exe = strdup(exe);
    sc->config_path = config_path ? strdup(config_path) : NULL;
    enum rc rc = RC_NOMEM;
    if (sc->exe == NULL || (config_path && sc->config_path == NULL))
        goto fail;
    pthread_mutex_lock(&sc->mu);
    rc = reconcile(sc);
    pthread_mutex_unlock(&sc->mu);
    if (rc != RC_OK)
        goto fail;
    if (pthread_create(&sc->thread, NULL, dispatcher, sc) != 0) {
        rc = RC_IO;
        goto fail;
    }
    sc->started = true;
    *out = sc;
    return RC_OK;
fail:
    scheduler_stop(sc);
    return rc;
}

void
scheduler_stop(struct scheduler *sc)
{
    if (sc == NULL)
        return;
    if (sc->started) {
        pthread_mutex_lock(&sc->mu);
        sc->stopping = true;
        pthread_cond_signal(&sc->cv);
        pthread_mutex_unlock(&sc->mu);
        pthread_join(sc->thread, NULL);
    }
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc->queue);
    free(sc->running);
    free(sc->exe);
    free(sc->config_path);
    free(sc);
}

enum rc
scheduler_reserve(struct scheduler *sc)
{
    enum rc rc = RC_OK;
    pthread_mutex_lock(&sc->mu);
    if (sc->nqueue + sc->reserved >= sc->cfg->max_queue)
        rc = RC_BUSY;
    else
        sc->reserved++;
    pthread_mutex_unlock(&sc->mu);
    return rc;
}

void
scheduler_release(struct scheduler *sc)
{
    pthread_mutex_lock(&sc->mu);
    if (sc->reserved > 0)
        sc->reserved--;
    pthread_mutex_unlock(&sc->mu);
}

enum rc
scheduler_enqueue(struct scheduler *sc, const char *id)
{
    struct entry e = {.order = clock_real_ms(), .recoveries = 0};
    (void)snprintf(e.id, sizeof(e.id), "%s", id);
    pthread_mutex_lock(&sc->mu);
    if (sc->reserved > 0)
        sc->reserved--;
    enum rc rc = push(&sc->queue, &sc->nqueue, &sc->capqueue, &e);
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    return rc;
}

long
scheduler_position(struct scheduler *sc, const char *id)
{
    pthread_mutex_lock(&sc->mu);
    long i = find(sc->queue, sc->nqueue, id);
    pthread_mutex_unlock(&sc->mu);
    return i >= 0 ? i + 1 : -1;
}

enum rc
scheduler_cancel_queued(struct scheduler *sc, const char *id, bool *out_done)
{
    enum rc rc = RC_OK;
    *out_done = false;
    pthread_mutex_lock(&sc->mu);
    long i = find(sc->queue, sc->nqueue, id);
    if (i >= 0) {
        remove_at(sc->queue, &sc->nqueue, (size_t)i);
        int dfd = -1;
        struct job job;
        jobstore_job_init(&job);
        rc = jobstore_open_job(sc->js, id, &dfd);
        if (rc == RC_OK)
            rc = jobstore_load(dfd, &job);
        if (rc == RC_OK)
            rc = jobstore_set_state(&job, JOB_CANCELED, REASON_CANCELED, "canceled by the user");
        if (rc == RC_OK)
            rc = jobstore_save(dfd, &job);
        if (rc == RC_OK)
            metrics_job_ended(&job);
        jobstore_job_fini(&job);
        if (dfd >= 0)
            close(dfd);
        *out_done = rc == RC_OK;
    }
    pthread_mutex_unlock(&sc->mu);
    return rc;
}

void
scheduler_counts(struct scheduler *sc, size_t *out_queued, size_t *out_running)
{
    pthread_mutex_lock(&sc->mu);
    *out_queued = sc->nqueue;
    *out_running = sc->nrunning;
    pthread_mutex_unlock(&sc->mu);
}

bool
scheduler_backend_status(struct scheduler *sc, char *buf, size_t len)
{
    pthread_mutex_lock(&sc->mu);
    bool ok = sc->backend_ok;
    (void)snprintf(buf, len, "%s", sc->backend_why);
    pthread_mutex_unlock(&sc->mu);
    return ok;
}
