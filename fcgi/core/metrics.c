/* metrics: counters and histograms behind one mutex, rendered as Prometheus text. */
#include "core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobstate.h"

#define MAX_CODES 16

static const double start_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double duration_buckets[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
#define NSTART    (sizeof(start_buckets) / sizeof(start_buckets[0]))
#define NDURATION (sizeof(duration_buckets) / sizeof(duration_buckets[0]))

struct histogram {
    unsigned long long count[11]; /* per bucket, the last one +Inf */
    unsigned long long n;
    double sum;
};

static struct {
    pthread_mutex_t mu;
    unsigned long long accepted;
    const char *codes[MAX_CODES]; /* problem codes seen (static strings) */
    unsigned long long rejected[MAX_CODES];
    unsigned long long ended[JOB_STATE__MAX][REASON__MAX];
    unsigned long long backend_check_failures;
    struct histogram start, duration;
    unsigned long long quota_jobs[METRICS_QUOTA__MAX][2]; /* [quota][over] */
    unsigned long long quota_bytes[METRICS_QUOTA__MAX][2];
} m = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const quota_names[METRICS_QUOTA__MAX] = {
    "user_max_queued",  /* METRICS_QUOTA_QUEUED */
    "user_max_running", /* METRICS_QUOTA_RUNNING */
    "user_max_bytes",   /* METRICS_QUOTA_BYTES */
};

void
metrics_upload(const char *code)
{
    pthread_mutex_lock(&m.mu);
    if (code == NULL) {
        m.accepted++;
    } else {
        for (size_t i = 0; i < MAX_CODES; i++) {
            if (m.codes[i] == NULL)
                m.codes[i] = code;
            if (strcmp(m.codes[i], code) == 0) {
                m.rejected[i]++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&m.mu);
}

static void
observe(struct histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->count[i]++;
    h->n++;
    h->sum += v;
}

void
metrics_job_ended(const struct job *job)
{
    enum job_state st = job->state;
    enum job_reason reason = job->reason;
    if (!jobstate_is_terminal(st) || (unsigned)reason >= REASON__MAX)
        return;
    int64_t staging = job->staging_ms, started = job->started_ms, finished = job->finished_ms;
    pthread_mutex_lock(&m.mu);
    m.ended[st][reason]++;
    if (staging > 0 && started >= staging)
        observe(&m.start, start_buckets, NSTART, (double)(started - staging) / 1000.0);
    if (started > 0 && finished >= started)
        observe(&m.duration, duration_buckets, NDURATION, (double)(finished - started) / 1000.0);
    pthread_mutex_unlock(&m.mu);
}

void
metrics_backend_check(bool ok)
{
    if (ok)
        return;
    pthread_mutex_lock(&m.mu);
    m.backend_check_failures++;
    pthread_mutex_unlock(&m.mu);
}

void
metrics_quota(enum metrics_quota q, bool over, size_t jobs, uint64_t bytes)
{
    if ((unsigned)q >= METRICS_QUOTA__MAX || jobs == 0)
        return;
    pthread_mutex_lock(&m.mu);
    m.quota_jobs[q][over] += jobs;
    m.quota_bytes[q][over] += bytes;
    pthread_mutex_unlock(&m.mu);
}

struct out {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (k < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)k < o->cap - o->len) {
            o->len += (size_t)k;
            return;
        }
        size_t ncap = o->cap * 2 + (size_t)k;
        char *np = realloc(o->p, ncap);
        if (np == NULL) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = ncap;
    }
}

static void
put_histogram(struct out *o, const char *name, const char *help, const struct histogram *h,
              const double *bounds, size_t nb)
{
    unsigned long long cum = 0;
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < nb; i++) {
        cum += h->count[i];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], cum);
    }
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name, h->n, name, h->sum,
        name, h->n);
}

/* The quota counters; the caller holds m.mu. */
static void
put_quotas(struct out *o)
{
    static const char *const outcomes[2] = {"within", "over"};
    put(o, "# HELP labbox_quota_jobs_total Jobs checked against each per-identity quota (over: "
           "refused, or for user_max_running made to wait).\n"
           "# TYPE labbox_quota_jobs_total counter\n");
    for (int q = 0; q < METRICS_QUOTA__MAX; q++)
        for (int v = 0; v < 2; v++)
            put(o, "labbox_quota_jobs_total{quota=\"%s\",outcome=\"%s\"} %llu\n", quota_names[q],
                outcomes[v], m.quota_jobs[q][v]);
    put(o, "# HELP labbox_quota_bytes_total Bytes of those jobs' uploads, by quota and outcome.\n"
           "# TYPE labbox_quota_bytes_total counter\n");
    for (int q = 0; q < METRICS_QUOTA__MAX; q++)
        for (int v = 0; v < 2; v++)
            put(o, "labbox_quota_bytes_total{quota=\"%s\",outcome=\"%s\"} %llu\n", quota_names[q],
                outcomes[v], m.quota_bytes[q][v]);
}

enum rc
metrics_render(const struct metrics_gauges *g, char **out, size_t *out_len)
{
    struct out o = {malloc(8192), 0, 8192, false};
    *out = NULL;
    if (o.p == NULL)
        return RC_NOMEM;
    pthread_mutex_lock(&m.mu);
    put(&o, "# HELP labbox_jobs Jobs waiting and running now.\n# TYPE labbox_jobs gauge\n");
    put(&o, "labbox_jobs{state=\"queued\"} %zu\nlabbox_jobs{state=\"running\"} %zu\n", g->queued,
        g->running);
    put(&o,
        "# HELP labbox_queue_depth Jobs waiting for a sandbox.\n# TYPE labbox_queue_depth "
        "gauge\nlabbox_queue_depth %zu\n",
        g->queued);
    put(&o,
        "# HELP labbox_sandboxes_running Sandboxes running now.\n# TYPE "
        "labbox_sandboxes_running gauge\nlabbox_sandboxes_running %zu\n",
        g->running);
    put(&o,
        "# HELP labbox_event_streams Open event streams and waiting requests.\n# TYPE "
        "labbox_event_streams "
        "gauge\nlabbox_event_streams %u\n",
        g->streams);
    put(&o,
        "# HELP labbox_backend_up Whether the last backend check passed.\n# TYPE "
        "labbox_backend_up gauge\nlabbox_backend_up %d\n",
        g->backend_ok ? 1 : 0);
    put(&o, "# HELP labbox_jobs_finished_total Jobs that ended, by state and reason.\n# TYPE "
            "labbox_jobs_finished_total counter\n");
    for (int s = 0; s < JOB_STATE__MAX; s++)
        for (int r = 0; r < REASON__MAX; r++)
            if (m.ended[s][r] > 0)
                put(&o, "labbox_jobs_finished_total{state=\"%s\",reason=\"%s\"} %llu\n",
                    jobstate_str((enum job_state)s),
                    r == REASON_NONE ? "" : jobstate_reason_str((enum job_reason)r), m.ended[s][r]);
    put(&o,
        "# HELP labbox_uploads_total Uploads answered, by outcome.\n# TYPE "
        "labbox_uploads_total counter\nlabbox_uploads_total{code=\"accepted\"} %llu\n",
        m.accepted);
    put(&o, "# HELP labbox_uploads_rejected_total Uploads refused, by problem code.\n# TYPE "
            "labbox_uploads_rejected_total counter\n");
    for (size_t i = 0; i < MAX_CODES && m.codes[i] != NULL; i++)
        put(&o, "labbox_uploads_rejected_total{code=\"%s\"} %llu\n", m.codes[i], m.rejected[i]);
    unsigned long long sandbox_errors = 0;
    for (int s = 0; s < JOB_STATE__MAX; s++)
        sandbox_errors += m.ended[s][REASON_SANDBOX_ERROR];
    put(&o,
        "# HELP labbox_backend_errors_total Jobs failed by the backend, and failed backend "
        "checks.\n# TYPE labbox_backend_errors_total counter\n"
        "labbox_backend_errors_total{kind=\"job\"} %llu\n"
        "labbox_backend_errors_total{kind=\"check\"} %llu\n",
        sandbox_errors, m.backend_check_failures);
    put_histogram(&o, "labbox_sandbox_start_seconds",
                  "From staging to the agent running (sandbox creation and staging).", &m.start,
                  start_buckets, NSTART);
    put_histogram(&o, "labbox_job_duration_seconds", "From the agent starting to the job's end.",
                  &m.duration, duration_buckets, NDURATION);
    put_quotas(&o);
    pthread_mutex_unlock(&m.mu);
    if (o.failed) {
        free(o.p);
        return RC_NOMEM;
    }
    *out = o.p;
    *out_len = o.len;
    return RC_OK;
}
