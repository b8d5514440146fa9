/* jobstate: the job life of architecture.md as tables. */
#include "jobs/jobstate.h"

#include <string.h>

static const char *const state_names[JOB_STATE__MAX] = {
    "queued",     /* JOB_QUEUED */
    "staging",    /* JOB_STAGING */
    "running",    /* JOB_RUNNING */
    "collecting", /* JOB_COLLECTING */
    "succeeded",  /* JOB_SUCCEEDED */
    "failed",     /* JOB_FAILED */
    "timed_out",  /* JOB_TIMED_OUT */
    "canceled",   /* JOB_CANCELED */
};

static const char *const reason_names[REASON__MAX] = {
    NULL,             /* REASON_NONE */
    "exit_nonzero",   /* REASON_EXIT_NONZERO */
    "signal",         /* REASON_SIGNAL */
    "timeout",        /* REASON_TIMEOUT */
    "oom",            /* REASON_OOM */
    "output_limit",   /* REASON_OUTPUT_LIMIT */
    "log_limit",      /* REASON_LOG_LIMIT */
    "sandbox_error",  /* REASON_SANDBOX_ERROR */
    "interrupted",    /* REASON_INTERRUPTED */
    "canceled",       /* REASON_CANCELED */
    "disk_limit",     /* REASON_DISK_LIMIT */
    "host_disk_full", /* REASON_HOST_DISK_FULL */
};

const char *
jobstate_str(enum job_state s)
{
    return (unsigned)s < JOB_STATE__MAX ? state_names[s] : "invalid";
}

const char *
jobstate_reason_str(enum job_reason r)
{
    return (unsigned)r < REASON__MAX ? reason_names[r] : NULL;
}

bool
jobstate_parse(const char *s, enum job_state *out)
{
    for (int i = 0; s != NULL && i < JOB_STATE__MAX; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum job_state)i;
            return true;
        }
    }
    return false;
}

bool
jobstate_reason_parse(const char *s, enum job_reason *out)
{
    for (int i = 1; s != NULL && i < REASON__MAX; i++) {
        if (strcmp(s, reason_names[i]) == 0) {
            *out = (enum job_reason)i;
            return true;
        }
    }
    return false;
}

bool
jobstate_is_terminal(enum job_state s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_TIMED_OUT || s == JOB_CANCELED;
}

bool
jobstate_can_transition(enum job_state from, enum job_state to)
{
    /* Rows: from; columns: to. Every live state may end failed or canceled. */
    static const unsigned char edges[JOB_STATE__MAX][JOB_STATE__MAX] = {
        /*               Q  S  R  C  OK F  TO X */
        [JOB_QUEUED] = {0, 1, 0, 0, 0, 1, 0, 1},
        [JOB_STAGING] = {0, 0, 1, 0, 0, 1, 0, 1},
        [JOB_RUNNING] = {0, 0, 0, 1, 0, 1, 1, 1},
        [JOB_COLLECTING] = {0, 0, 0, 0, 1, 1, 1, 1},
    };
    if ((unsigned)from >= JOB_STATE__MAX || (unsigned)to >= JOB_STATE__MAX)
        return false;
    return edges[from][to] != 0;
}
