/* scheduler: fair queue, quotas, dispatcher thread, supervisor spawning, reconcile, retention. */
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
#include "core/workdir.h"
#include "defaults.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/cfgsnap.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

extern char **environ;

#define TICK_MS        200
#define SWEEP_MAX_MS   60000 /* retention sweeps at least this often, or every job_ttl / 2 */
#define CHECK_MS       10000
#define PURGE_RETRY_MS 10000 /* a failed removal of a deleted job's files is retried this often */
#define REAP_MS        60000 /* sandboxes and work dirs no job claims are removed this often */
#define FAIL_RETRY_MS  10000 /* a terminal state that could not be written is retried this often */

struct entry {
    char id[ID_LEN + 1];
    int recoveries;   /* supervisors started for this job after the first */
    bool deleted;     /* unlinked by DELETE: purge it once its supervisor is gone */
    int64_t retry_ms; /* given up on, but its failure could not be recorded: try again then */
};

struct scheduler {
    struct cfgsnap *snaps; /* the configuration: the dispatcher enters it once per round */
    long reader;           /* the dispatcher's slot in snaps */
    struct jobstore *js;
    char *exe;
    char *config_path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool started;
    bool kicked; /* work arrived while the dispatcher was busy: no sleep before the next round */
    struct jobindex index; /* every job; the fair queue */
    struct entry *running;
    size_t nrunning, caprunning;
    struct entry *purge; /* deleted jobs whose files are still to be removed */
    size_t npurge, cappurge;
    int64_t last_purge; /* CLOCK_MONOTONIC ms of the last attempt */
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

/* The limits uploads and starts are checked against, in configuration snapshot c. */
static struct jobindex_quota
quota_of(const struct config *c)
{
    struct jobindex_quota q = {.max_queue = c->max_queue,
                               .per_owner = config_identity(c) != IDENTITY_NONE,
                               .user_max_queued = c->user_max_queued,
                               .user_max_running = c->user_max_running,
                               .user_max_bytes = c->user_max_bytes};
    return q;
}

/* Record in the index that job (just saved terminal by serve) has ended. */
static void
index_ended(struct scheduler *sc, const struct job *job)
{
    pthread_mutex_lock(&sc->mu);
    jobindex_end(&sc->index, job->id, job->state, job->finished_ms, job->kept_bytes);
    pthread_mutex_unlock(&sc->mu);
}

/*** supervisors ***/

/* A pipe holding id for the supervisor to read at fd 4 (its read end in *out); -1 on failure. */
static int
id_pipe(const char *id, int *out)
{
    int p[2];
    size_t n = strlen(id);
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    bool ok = write(p[1], id, n) == (ssize_t)n;
    close(p[1]);
    if (!ok) {
        close(p[0]);
        return -1;
    }
    *out = p[0];
    return 0;
}

/* The supervisor's environment: ours, with LABBOX_LOCK_FD=3 in place of any inherited one. */
static char **
supervisor_env(void)
{
    static char lock_env[] = "LABBOX_LOCK_FD=3";
    size_t n = 0, k = 0;
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 2, sizeof(*envp));
    if (envp == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LABBOX_LOCK_FD=", 15) != 0)
            envp[k++] = environ[i];
    envp[k++] = lock_env;
    envp[k] = NULL;
    return envp;
}

/* posix_spawn `labbox supervise --config <running.conf> --id-fd 4` in its own session, with
 * fd3 as its fd 3 (the lock), idfd as fd 4 and /dev/null as stdin. */
static enum rc
spawn_process(struct scheduler *sc, const char *id, int fd3, int idfd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    enum rc rc = RC_IO;
    char **envp = supervisor_env();
    if (envp == NULL)
        return RC_NOMEM;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out_env;
    if (posix_spawnattr_init(&at) != 0)
        goto out_fa;
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGCHLD);
    if (posix_spawn_file_actions_adddup2(&fa, fd3, 3) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, idfd, 4) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setsigmask(&at, &none) != 0 ||
        posix_spawnattr_setsigdefault(&at, &def) != 0)
        goto out;
    char *argv[8];
    size_t a = 0;
    argv[a++] = sc->exe;
    argv[a++] = (char *)(uintptr_t) "supervise";
    if (sc->config_path != NULL) {
        argv[a++] = (char *)(uintptr_t) "--config";
        argv[a++] = sc->config_path;
    }
    argv[a++] = (char *)(uintptr_t) "--id-fd";
    argv[a++] = (char *)(uintptr_t) "4";
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
    posix_spawnattr_destroy(&at);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_env:
    free(envp);
    return rc;
}

/* Take the job's lock and spawn its supervisor holding it as fd 3, the id on fd 4. RC_BUSY
 * when a supervisor already holds the lock. */
static enum rc
spawn_supervisor(struct scheduler *sc, const char *id)
{
    int dfd = -1, lockfd = -1, fd3 = -1, idfd = -1;
    enum rc rc = RC_IO;

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
    /* Above fd 4, so that dup2 to 3 and 4 always creates fresh, inheritable fds. */
    fd3 = fcntl(lockfd, F_DUPFD_CLOEXEC, 10);
    if (fd3 < 0 || id_pipe(id, &idfd) != 0) {
        log_errno("prepare the supervisor of %s", id);
        goto out;
    }
    int moved = fcntl(idfd, F_DUPFD_CLOEXEC, 10);
    close(idfd);
    idfd = moved;
    if (idfd >= 0)
        rc = spawn_process(sc, id, fd3, idfd);
out:
    if (idfd >= 0)
        close(idfd);
    if (fd3 >= 0)
        close(fd3);
    if (lockfd >= 0)
        close(lockfd); /* the child's fd 3 keeps the lock */
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* Write a terminal state for a job no supervisor can run (it is in no queue: nobody else
 * writes its record). False when the record could not be written: the caller keeps the job
 * and tries again, so that no job stays unfinished because one write failed. */
static bool
mark_failed(struct scheduler *sc, const char *id, enum job_reason reason, const char *detail)
{
    int dfd = -1;
    struct job job;
    bool done = true;
    if (jobstore_open_job(sc->js, id, &dfd) != RC_OK)
        return true;
    if (jobstore_load(dfd, &job) == RC_OK && !jobstate_is_terminal(job.state) &&
        jobstore_set_state(&job, JOB_FAILED, reason, detail) == RC_OK) {
        done = jobstore_save(dfd, &job) == RC_OK;
        if (done) {
            metrics_job_ended(&job);
            index_ended(sc, &job);
        } else {
            log_err("job=%s cannot record its failure (%s); trying again in %d s", id, detail,
                    FAIL_RETRY_MS / 1000);
        }
    }
    jobstore_job_fini(&job);
    close(dfd);
    return done;
}

/* Drop id from the running set, unless DELETE has marked it meanwhile: then the dispatcher
 * still has to purge it. Caller holds sc->mu. */
static void
forget_running(struct scheduler *sc, const char *id)
{
    long i = find(sc->running, sc->nrunning, id);
    if (i >= 0 && !sc->running[i].deleted)
        remove_at(sc->running, &sc->nrunning, (size_t)i);
}

/* Spawn the supervisors of entries already counted in sc->running; without the lock. */
static void
start_all(struct scheduler *sc, const struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum rc rc = spawn_supervisor(sc, v[i].id);
        if (rc == RC_OK || rc == RC_BUSY)
            continue;
        bool done = rc == RC_NOTFOUND || mark_failed(sc, v[i].id, REASON_SANDBOX_ERROR,
                                                     "cannot start the job's supervisor");
        pthread_mutex_lock(&sc->mu);
        long k = find(sc->running, sc->nrunning, v[i].id);
        if (done)
            forget_running(sc, v[i].id);
        else if (k >= 0) /* check_one records the failure when it can */
            sc->running[k].recoveries = SCHED_MAX_RECOVERIES;
        pthread_mutex_unlock(&sc->mu);
    }
}

enum outcome {
    OUT_RUNNING, /* its supervisor lives */
    OUT_GONE,    /* ended, deleted, or given up: forget it */
    OUT_PURGE,   /* deleted, and its supervisor is gone: remove its files */
    OUT_RECOVER, /* its supervisor died with the job unfinished: start another */
    OUT_RETRY,   /* given up on, its failure not recorded yet: keep it, try later */
};

/* What became of a tracked supervisor; file I/O only, without the lock. A job found ended is
 * recorded in the index. */
static enum outcome
check_one(struct scheduler *sc, const struct entry *e)
{
    int dfd = -1;
    if (e->deleted)
        return jobstore_unlinked_is_live(sc->js, e->id) ? OUT_RUNNING : OUT_PURGE;
    if (jobstore_open_job(sc->js, e->id, &dfd) != RC_OK)
        return OUT_GONE;
    if (jobstore_lock_is_held(dfd)) {
        close(dfd);
        return OUT_RUNNING;
    }
    struct job job;
    bool loaded = jobstore_load(dfd, &job) == RC_OK;
    bool unfinished = loaded && !jobstate_is_terminal(job.state);
    if (loaded && !unfinished) {
        index_ended(sc, &job); /* first: once the metric shows the end, so does the index */
        metrics_job_ended(&job);
    }
    jobstore_job_fini(&job);
    close(dfd);
    if (!unfinished)
        return OUT_GONE;
    if (e->recoveries >= SCHED_MAX_RECOVERIES) {
        if (clock_mono_ms() < e->retry_ms)
            return OUT_RUNNING;
        log_err("job=%s supervisor died %d times; giving up", e->id, e->recoveries + 1);
        return mark_failed(sc, e->id, REASON_INTERRUPTED, "the job's supervisor kept dying")
                   ? OUT_GONE
                   : OUT_RETRY;
    }
    log_warn("job=%s supervisor ended with the job unfinished; recovering", e->id);
    return OUT_RECOVER;
}

/* Remove the files of deleted jobs; a removal that fails is tried again every PURGE_RETRY_MS
 * (and at the next start), and never holds a slot. */
static void
purge_deleted(struct scheduler *sc)
{
    struct entry *snap = NULL;
    size_t n = 0;
    pthread_mutex_lock(&sc->mu);
    if (sc->npurge > 0 &&
        (sc->last_purge == 0 || clock_mono_ms() - sc->last_purge >= PURGE_RETRY_MS)) {
        snap = malloc(sc->npurge * sizeof(*snap));
        if (snap != NULL) {
            n = sc->npurge;
            memcpy(snap, sc->purge, n * sizeof(*snap));
        }
    }
    pthread_mutex_unlock(&sc->mu);
    for (size_t i = 0; i < n; i++) {
        bool done = jobstore_purge(sc->js, snap[i].id) == RC_OK;
        pthread_mutex_lock(&sc->mu);
        long k = find(sc->purge, sc->npurge, snap[i].id);
        if (done && k >= 0)
            remove_at(sc->purge, &sc->npurge, (size_t)k);
        sc->last_purge = done ? 0 : clock_mono_ms();
        pthread_mutex_unlock(&sc->mu);
    }
    free(snap);
}

/* Move the jobs the fair queue picks into the running set (and *starts) while slots are free.
 * Caller holds sc->mu. */
static void
fill_slots(struct scheduler *sc, const struct config *cfg, struct entry **starts, size_t *nstarts,
           size_t *cap)
{
    struct jobindex_quota q = quota_of(cfg);
    uint64_t cap_running = q.per_owner ? q.user_max_running : 0;
    while (sc->nrunning < cfg->max_concurrent) {
        size_t deferred = 0;
        uint64_t deferred_bytes = 0;
        struct ji_job *j = jobindex_pick(&sc->index, cap_running, &deferred, &deferred_bytes);
        metrics_quota(METRICS_QUOTA_RUNNING, true, deferred, deferred_bytes);
        if (j == NULL)
            break;
        struct entry e = {.recoveries = 0};
        memcpy(e.id, j->id, sizeof(e.id));
        if (push(&sc->running, &sc->nrunning, &sc->caprunning, &e) != RC_OK ||
            push(starts, nstarts, cap, &e) != RC_OK) {
            forget_running(sc, e.id);
            break; /* out of memory: try again next round */
        }
        if (cap_running > 0)
            metrics_quota(METRICS_QUOTA_RUNNING, false, 1, j->bytes);
        jobindex_take(&sc->index, j);
    }
}

/* One round of the dispatcher: check the supervisors, then fill free slots from the queue.
 * The lock is held only to copy and update the sets, never across file I/O or a spawn. */
static void
dispatch_round(struct scheduler *sc, const struct config *cfg)
{
    struct entry *snap = NULL, *starts = NULL;
    size_t nsnap = 0, nstarts = 0, cap = 0;
    enum outcome *out = NULL;

    pthread_mutex_lock(&sc->mu);
    nsnap = sc->nrunning;
    snap = nsnap ? malloc(nsnap * sizeof(*snap)) : NULL;
    if (snap != NULL)
        memcpy(snap, sc->running, nsnap * sizeof(*snap));
    pthread_mutex_unlock(&sc->mu);
    if (nsnap > 0 && snap == NULL)
        return;
    out = nsnap ? calloc(nsnap, sizeof(*out)) : NULL;
    for (size_t i = 0; out != NULL && i < nsnap; i++)
        out[i] = check_one(sc, &snap[i]);

    pthread_mutex_lock(&sc->mu);
    for (size_t i = 0; out != NULL && i < nsnap; i++) {
        if (out[i] == OUT_RUNNING)
            continue;
        long k = find(sc->running, sc->nrunning, snap[i].id);
        if (out[i] == OUT_RETRY) {
            if (k >= 0)
                sc->running[k].retry_ms = clock_mono_ms() + FAIL_RETRY_MS;
            continue;
        }
        if (k < 0 || (sc->running[k].deleted && !snap[i].deleted))
            continue; /* deleted meanwhile: the next round checks it as such */
        if (out[i] == OUT_RECOVER && !sc->running[k].deleted) {
            sc->running[k].recoveries++;
            if (push(&starts, &nstarts, &cap, &sc->running[k]) == RC_OK)
                continue; /* keeps its slot */
        }
        if (out[i] == OUT_PURGE &&
            push(&sc->purge, &sc->npurge, &sc->cappurge, &sc->running[k]) != RC_OK)
            continue; /* out of memory: checked again next round */
        remove_at(sc->running, &sc->nrunning, (size_t)k);
    }
    fill_slots(sc, cfg, &starts, &nstarts, &cap);
    pthread_mutex_unlock(&sc->mu);

    start_all(sc, starts, nstarts);
    free(starts);
    free(out);
    free(snap);
    purge_deleted(sc);
}

/*** retention ***/

struct sweep {
    struct scheduler *sc;
    int64_t ttl_ms; /* job_ttl of the round's snapshot */
};

static bool
sweep_one(void *ctx, int dirfd, const struct job *job)
{
    struct scheduler *sc = ((struct sweep *)ctx)->sc;
    int64_t fin = job->finished_ms;
    if (jobstate_is_terminal(job->state) && fin > 0 &&
        clock_real_ms() - fin > ((struct sweep *)ctx)->ttl_ms && !jobstore_lock_is_held(dirfd)) {
        log_info("job=%s expired; deleting", job->id);
        struct entry e = {.recoveries = 0, .deleted = true};
        memcpy(e.id, job->id, sizeof(e.id));
        if (jobstore_unlink(sc->js, job->id) != RC_OK)
            return true;
        pthread_mutex_lock(&sc->mu);
        (void)jobindex_remove(&sc->index, job->id);
        pthread_mutex_unlock(&sc->mu);
        if (jobstore_purge(sc->js, job->id) != RC_OK) {
            pthread_mutex_lock(&sc->mu);
            RC_IGNORE(push(&sc->purge, &sc->npurge, &sc->cappurge, &e)); /* else: next start */
            pthread_mutex_unlock(&sc->mu);
        }
    }
    return true;
}

static void
sweep(struct scheduler *sc, const struct config *cfg)
{
    struct sweep sw = {sc, (int64_t)cfg->job_ttl * 1000};
    if (jobstore_foreach(sc->js, sweep_one, &sw) != RC_OK)
        log_warn("retention sweep could not read the jobs");
}

/*** backend health ***/

/* What reap_orphans may not remove: the live jobs, asked about by id (docker, modal) or by
 * their work dir's name (local: workdir_name, an alias of the id). */
struct claims {
    struct scheduler *sc;
    char (*names)[ID_LEN + 1]; /* the live jobs' work dir names, sorted */
    size_t n;
};

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The work dir names of the jobs the index has live; false when out of memory. */
static bool
claims_load(struct claims *c)
{
    struct jobindex *ji = &c->sc->index;
    bool ok = true;
    pthread_mutex_lock(&c->sc->mu);
    c->names = calloc(ji->all.n + 1, sizeof(c->names[0]));
    for (size_t i = 0; c->names != NULL && ok && i < ji->all.n; i++)
        if (!jobstate_is_terminal(ji->all.v[i]->state))
            ok = workdir_name(ji->all.v[i]->id, c->names[c->n++]) == RC_OK;
    pthread_mutex_unlock(&c->sc->mu);
    if (c->names != NULL)
        qsort(c->names, c->n, sizeof(c->names[0]), name_cmp);
    return ok && c->names != NULL;
}

static bool
claimed(void *ctx, const char *job_id)
{
    const struct claims *c = ctx;
    struct scheduler *sc = c->sc;
    int dfd = -1;
    if (job_id != NULL && bsearch(job_id, c->names, c->n, sizeof(c->names[0]), name_cmp) != NULL)
        return true;
    if (job_id == NULL || jobstore_open_job(sc->js, job_id, &dfd) != RC_OK)
        return false;
    struct job job;
    bool live = jobstore_load(dfd, &job) == RC_OK && !jobstate_is_terminal(job.state);
    jobstore_job_fini(&job);
    close(dfd);
    return live;
}

/* staging_probe: can a job's work dir be staged in sandbox_dir (every backend stages there)?
 * A work dir is made and removed as a supervisor makes one (core/workdir.c). */
static bool
staging_probe(const struct config *cfg, char *why, size_t len)
{
    if (workdir_probe(cfg, why, len) == RC_OK)
        return true;
    log_debug("staging probe in %s failed: %s", cfg->sandbox_dir, why);
    return false;
}

/* Check the backend and staging (and, when reap, remove orphans); true when it is usable. */
static bool
backend_service(struct scheduler *sc, const struct config *cfg, bool reap)
{
    const struct sandbox_ops *ops = sandbox_ops_by_name(cfg->backend);
    struct sandbox *sb = ops ? sandbox_new(ops, cfg, NULL) : NULL;
    bool ok = false;
    char why[512] = "the backend is not compiled in";
    if (sb != NULL) {
        sb->deadline_ms = clock_mono_ms() + 5000;
        enum rc rc = sandbox_init(sb);
        if (rc == RC_OK)
            rc = sandbox_check(sb);
        ok = rc == RC_OK;
        (void)snprintf(why, sizeof(why), "%s", ok ? "" : sb->error);
        ok = ok && staging_probe(cfg, why, sizeof(why));
        struct claims c = {.sc = sc};
        if (ok && reap && !claims_load(&c))
            log_warn("removing orphaned sandboxes: out of memory");
        else if (ok && reap) {
            sb->deadline_ms = clock_mono_ms() + 60000;
            if (sandbox_reap_orphans(sb, claimed, &c) != RC_OK)
                log_warn("removing orphaned sandboxes failed: %s", sb->error);
        }
        free(c.names);
        sandbox_free(sb);
    }
    metrics_backend_check(ok);
    pthread_mutex_lock(&sc->mu);
    if (ok != sc->backend_ok)
        log_info("backend %s is %s%s%s", cfg->backend, ok ? "usable" : "not usable", ok ? "" : ": ",
                 why);
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
    int64_t last_sweep = 0, last_check = 0, last_reap = 0;
    for (;;) {
        const struct config *cfg = cfgsnap_enter(sc->snaps, sc->reader);
        int64_t now = clock_mono_ms();
        if (now - last_check >= CHECK_MS) {
            /* Orphans (and what a failed clean-up left) go at the first check that finds the
             * backend usable, then at every REAP_MS: the hook is idempotent. */
            bool reap = last_reap == 0 || now - last_reap >= REAP_MS;
            if (backend_service(sc, cfg, reap) && reap)
                last_reap = clock_mono_ms();
            last_check = clock_mono_ms();
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        dispatch_round(sc, cfg);
        int64_t sweep_ms = (int64_t)cfg->job_ttl * 500;
        if (sweep_ms > SWEEP_MAX_MS)
            sweep_ms = SWEEP_MAX_MS;
        if (clock_mono_ms() - last_sweep >= sweep_ms) {
            sweep(sc, cfg);
            last_sweep = clock_mono_ms();
        }
        cfgsnap_leave(sc->snaps, sc->reader);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&sc->mu);
        if (sc->stopping) {
            pthread_mutex_unlock(&sc->mu);
            break;
        }
        if (!sc->kicked)
            pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
        sc->kicked = false;
        pthread_mutex_unlock(&sc->mu);
    }
    return NULL;
}

/*** reconcile ***/

struct reconcile {
    struct scheduler *sc;
    size_t nq, nr, nrec;  /* queued, running, recovering */
    struct entry *starts; /* recovery supervisors to start */
    size_t nstarts, cap;
    enum rc rc;
};

/* One job into the index, with its owner, round and the bytes it keeps (measured now for a
 * record from before kept_bytes was kept). */
static enum rc
index_add(struct scheduler *sc, int dirfd, const struct job *job)
{
    char key[JOBINDEX_KEY_MAX];
    bool ended = jobstate_is_terminal(job->state);
    jobindex_owner_key(&job->owner, key);
    struct jobindex_rec rec = {
        .id = job->id,
        .owner_key = key,
        .state = job->state == JOB_QUEUED || ended ? job->state : JOB_STAGING,
        .created_ms = job->created_ms,
        .finished_ms = ended ? job->finished_ms : 0,
        .round = job->round,
        .bytes = !ended                ? jobstore_input_bytes(job)
                 : job->kept_bytes > 0 ? job->kept_bytes
                                       : jobstore_measure(dirfd),
    };
    return jobindex_add(&sc->index, &rec);
}

/* Put one job where it belongs: the index, and the running set or a recovery supervisor. */
static bool
reconcile_one(void *ctx, int dirfd, const struct job *job)
{
    struct reconcile *r = ctx;
    struct scheduler *sc = r->sc;
    enum job_state st = job->state;
    struct entry e = {.recoveries = 0};
    r->rc = index_add(sc, dirfd, job);
    if (r->rc == RC_CONFLICT) {
        log_warn("job=%s is listed twice; leaving the second alone", job->id);
        r->rc = RC_OK;
        return true;
    }
    if (r->rc != RC_OK || jobstate_is_terminal(st))
        return r->rc == RC_OK;
    memcpy(e.id, job->id, sizeof(e.id));
    if (jobstore_lock_is_held(dirfd)) {
        r->rc = push(&sc->running, &sc->nrunning, &sc->caprunning, &e);
        r->nr++;
    } else if (st == JOB_QUEUED) {
        r->nq++;
    } else {
        /* Past queued and nobody holds it: a recovery supervisor decides. */
        e.recoveries = 1;
        r->rc = push(&sc->running, &sc->nrunning, &sc->caprunning, &e);
        if (r->rc == RC_OK)
            r->rc = push(&r->starts, &r->nstarts, &r->cap, &e);
        r->nrec++;
    }
    return r->rc == RC_OK;
}

/* A deleted job whose supervisor outlived the last serve: purge it when the supervisor ends. */
static void
reconcile_deleted(void *ctx, const char *id)
{
    struct reconcile *r = ctx;
    struct entry e = {.recoveries = 0, .deleted = true};
    (void)snprintf(e.id, sizeof(e.id), "%s", id);
    if (r->rc == RC_OK)
        r->rc = push(&r->sc->running, &r->sc->nrunning, &r->sc->caprunning, &e);
}

static enum rc
reconcile(struct scheduler *sc)
{
    /* Upload staging dirs and deleted jobs from a previous life; the dispatcher thread is not
     * running yet, so the sets are ours without the lock. */
    struct reconcile rec = {.sc = sc, .rc = RC_OK};
    jobstore_clear_tmp(sc->js, reconcile_deleted, &rec);
    if (rec.rc == RC_OK && jobstore_foreach(sc->js, reconcile_one, &rec) != RC_OK)
        rec.rc = RC_IO;
    if (rec.rc == RC_OK) {
        start_all(sc, rec.starts, rec.nstarts);
        log_info("reconciled: %zu queued, %zu running, %zu recovering", rec.nq, rec.nr, rec.nrec);
    }
    free(rec.starts);
    return rec.rc;
}

/*** public ***/

enum rc
scheduler_start(struct cfgsnap *snaps, struct jobstore *js, const char *exe,
                const char *config_path, struct scheduler **out)
{
    *out = NULL;
    struct scheduler *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return RC_NOMEM;
    sc->snaps = snaps;
    sc->reader = cfgsnap_reader(snaps);
    sc->js = js;
    sc->backend_ok = true;
    jobindex_init(&sc->index);
    pthread_mutex_init(&sc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->cv, &ca);
    pthread_condattr_destroy(&ca);
    sc->exe = strdup(exe);
    sc->config_path = config_path ? strdup(config_path) : NULL;
    enum rc rc = RC_NOMEM;
    if (sc->exe == NULL || (config_path && sc->config_path == NULL) || sc->reader < 0)
        goto fail;
    rc = reconcile(sc);
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
    jobindex_fini(&sc->index);
    free(sc->running);
    free(sc->purge);
    free(sc->exe);
    free(sc->config_path);
    free(sc);
}

/* Seconds until owner key may try again after verdict v, with t's job_ttl (caller holds
 * sc->mu). */
static int
retry_after(struct scheduler *sc, const struct sched_ticket *t, enum jobindex_verdict v)
{
    const char *key = t->owner_key;
    if (v != JOBINDEX_USER_BYTES)
        return 10;
    /* Bytes come free when the owner's first ended job expires (or is deleted sooner). */
    int64_t first = jobindex_first_finished(&sc->index, key);
    int64_t left = first > 0 ? first + (int64_t)t->cfg->job_ttl * 1000 - clock_real_ms() : 60000;
    return left < 1000 ? 1 : left > 86400000 ? 86400 : (int)(left / 1000);
}

static enum metrics_quota
quota_metric(enum jobindex_verdict v)
{
    return v == JOBINDEX_USER_BYTES ? METRICS_QUOTA_BYTES : METRICS_QUOTA_QUEUED;
}

enum jobindex_verdict
scheduler_reserve(struct scheduler *sc, const struct config *cfg, const struct job_owner *owner,
                  uint64_t declared, struct sched_ticket *t)
{
    struct jobindex_quota q = quota_of(cfg);
    memset(t, 0, sizeof(*t));
    t->cfg = cfg;
    jobindex_owner_key(owner, t->owner_key);
    pthread_mutex_lock(&sc->mu);
    enum jobindex_verdict v = jobindex_reserve(&sc->index, t->owner_key, &q);
    if (v != JOBINDEX_OK)
        t->retry_after = retry_after(sc, t, v);
    pthread_mutex_unlock(&sc->mu);
    if (v == JOBINDEX_USER_QUEUED || v == JOBINDEX_USER_BYTES)
        metrics_quota(quota_metric(v), true, 1, declared);
    return v;
}

enum jobindex_verdict
scheduler_admit(struct scheduler *sc, struct sched_ticket *t, uint64_t bytes)
{
    struct jobindex_quota q = quota_of(t->cfg);
    pthread_mutex_lock(&sc->mu);
    enum jobindex_verdict v = jobindex_admit(&sc->index, t->owner_key, bytes, &q, &t->round);
    if (v == JOBINDEX_OK)
        t->admitted = bytes;
    else
        t->retry_after = retry_after(sc, t, v);
    pthread_mutex_unlock(&sc->mu);
    if (v == JOBINDEX_USER_BYTES)
        metrics_quota(METRICS_QUOTA_BYTES, true, 1, bytes);
    return v;
}

void
scheduler_release(struct scheduler *sc, struct sched_ticket *t)
{
    pthread_mutex_lock(&sc->mu);
    jobindex_release(&sc->index, t->owner_key, t->admitted);
    pthread_mutex_unlock(&sc->mu);
    t->admitted = 0;
}

enum rc
scheduler_enqueue(struct scheduler *sc, struct sched_ticket *t, const struct job *job)
{
    struct jobindex_quota q = quota_of(t->cfg);
    struct jobindex_rec rec = {.id = job->id,
                               .owner_key = t->owner_key,
                               .state = JOB_QUEUED,
                               .created_ms = job->created_ms,
                               .round = t->round,
                               .bytes = t->admitted};
    pthread_mutex_lock(&sc->mu);
    enum rc rc = jobindex_enqueue(&sc->index, &rec);
    sc->kicked = true;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    if (rc != RC_OK)
        return rc;
    if (q.per_owner && q.user_max_queued > 0)
        metrics_quota(METRICS_QUOTA_QUEUED, false, 1, t->admitted);
    if (q.per_owner && q.user_max_bytes > 0)
        metrics_quota(METRICS_QUOTA_BYTES, false, 1, t->admitted);
    return RC_OK;
}

long
scheduler_position(struct scheduler *sc, const char *id)
{
    pthread_mutex_lock(&sc->mu);
    long pos = jobindex_position(&sc->index, id);
    pthread_mutex_unlock(&sc->mu);
    return pos;
}

size_t
scheduler_list(struct scheduler *sc, const struct jobindex_page *page, char (*ids)[ID_LEN + 1],
               bool *out_more, int64_t *out_next_created, char out_next_id[ID_LEN + 1])
{
    pthread_mutex_lock(&sc->mu);
    size_t n = jobindex_list(&sc->index, page, ids, out_more, out_next_created, out_next_id);
    pthread_mutex_unlock(&sc->mu);
    return n;
}

enum rc
scheduler_cancel_queued(struct scheduler *sc, const char *id, bool *out_done)
{
    enum rc rc = RC_OK;
    *out_done = false;
    pthread_mutex_lock(&sc->mu);
    bool was_queued = jobindex_unqueue(&sc->index, id, clock_real_ms());
    pthread_mutex_unlock(&sc->mu);
    /* Out of the queue, the job is in no set: nobody else writes its record. */
    if (was_queued) {
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
        if (rc == RC_OK) {
            metrics_job_ended(&job);
            index_ended(sc, &job);
        }
        jobstore_job_fini(&job);
        if (dfd >= 0)
            close(dfd);
        *out_done = rc == RC_OK;
    }
    return rc;
}

enum rc
scheduler_delete(struct scheduler *sc, const char *id, bool *out_live)
{
    *out_live = false;
    pthread_mutex_lock(&sc->mu);
    enum rc rc = jobstore_unlink(sc->js, id);
    if (rc == RC_OK)
        (void)jobindex_remove(&sc->index, id);
    long k = find(sc->running, sc->nrunning, id);
    if (rc == RC_OK && k >= 0) {
        /* Its supervisor works on through its fds; the dispatcher purges after it. */
        sc->running[k].deleted = true;
        *out_live = true;
        sc->kicked = true;
        pthread_cond_signal(&sc->cv);
    }
    pthread_mutex_unlock(&sc->mu);
    if (rc == RC_OK && !*out_live && jobstore_purge(sc->js, id) != RC_OK) {
        /* Gone from the API all the same; the dispatcher tries the files again. */
        struct entry e = {.recoveries = 0, .deleted = true};
        (void)snprintf(e.id, sizeof(e.id), "%s", id);
        pthread_mutex_lock(&sc->mu);
        if (push(&sc->purge, &sc->npurge, &sc->cappurge, &e) != RC_OK)
            log_err("job=%s: out of memory; its files go at the next start", id);
        pthread_mutex_unlock(&sc->mu);
    }
    return rc;
}

void
scheduler_counts(struct scheduler *sc, size_t *out_queued, size_t *out_running)
{
    pthread_mutex_lock(&sc->mu);
    *out_queued = sc->index.queue.n;
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
