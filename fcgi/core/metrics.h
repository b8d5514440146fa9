/* metrics: process-wide counters and histograms for GET /api/metrics (Prometheus text format).
 *
 * Counters count since this `serve` started: uploads by outcome, jobs by terminal state and
 * reason (recorded when the dispatcher sees a supervisor end), backend check failures. The
 * histograms are the sandbox start latency (staging to running) and the job duration (running
 * to the end). Per quota, the jobs and bytes within it and over it. Gauges (queue depth, running
 * sandboxes, open streams) are read live by the caller. Thread-safe.
 */
#ifndef LABBOX_METRICS_H
#define LABBOX_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobstore.h"
#include "rc.h"

/* metrics_upload: an upload answered; code is NULL when it was accepted, else the problem code
 * (a static string). */
void metrics_upload(const char *code);
/* metrics_job_ended: a job reached its terminal state (its record, borrowed). */
void metrics_job_ended(const struct job *job);
/* metrics_backend_check: the result of one periodic backend check. */
void metrics_backend_check(bool ok);

/* The per-identity quotas, as labels (never the identities: their number is unbounded). */
enum metrics_quota {
    METRICS_QUOTA_QUEUED,  /* user_max_queued */
    METRICS_QUOTA_RUNNING, /* user_max_running */
    METRICS_QUOTA_BYTES,   /* user_max_bytes */
    METRICS_QUOTA__MAX
};
/* metrics_quota: jobs (of bytes in all) checked against quota q: within it, or over it
 * (refused; for user_max_running: made to wait, counted once per job). */
void metrics_quota(enum metrics_quota q, bool over, size_t jobs, uint64_t bytes);

struct metrics_gauges {
    size_t queued;    /* jobs waiting */
    size_t running;   /* live supervisors */
    unsigned streams; /* open event streams */
    bool backend_ok;  /* last backend check */
};

/* metrics_render: the whole exposition text (heap, caller frees). */
enum rc metrics_render(const struct metrics_gauges *g, char **out, size_t *out_len) LB_MUST_CHECK;

#endif
