/* jobstate: job states, terminal reasons and the legal transitions between states. Pure. */
#ifndef LABBOX_JOBSTATE_H
#define LABBOX_JOBSTATE_H

#include <stdbool.h>

enum job_state {
    JOB_QUEUED,     /* accepted, waiting for a supervisor */
    JOB_STAGING,    /* the supervisor prepares the sandbox */
    JOB_RUNNING,    /* the agent runs */
    JOB_COLLECTING, /* outputs are copied out */
    JOB_SUCCEEDED,  /* terminal: exit 0, outputs collected */
    JOB_FAILED,     /* terminal: see reason */
    JOB_TIMED_OUT,  /* terminal: wall clock */
    JOB_CANCELED,   /* terminal: by the user */
    JOB_STATE__MAX
};

enum job_reason {
    REASON_NONE,           /* not ended, or succeeded */
    REASON_EXIT_NONZERO,   /* the agent exited with a non-zero code */
    REASON_SIGNAL,         /* the agent was killed by a signal */
    REASON_TIMEOUT,        /* wall-clock limit */
    REASON_OOM,            /* memory limit */
    REASON_OUTPUT_LIMIT,   /* outputs over output_max_bytes / output_max_files */
    REASON_LOG_LIMIT,      /* log over log_max_bytes */
    REASON_SANDBOX_ERROR,  /* the backend failed, not the agent */
    REASON_INTERRUPTED,    /* the host lost the job */
    REASON_CANCELED,       /* canceled by the user */
    REASON_DISK_LIMIT,     /* the agent failed with its workspace full (workspace_max_*) */
    REASON_HOST_DISK_FULL, /* the host's disk (data_dir, sandbox_dir) filled up under the job */
    REASON__MAX
};

/* Static names as used in job.json and the API ("queued", "exit_nonzero"); NULL for NONE. */
const char *jobstate_str(enum job_state s);
const char *jobstate_reason_str(enum job_reason r);
/* Parse a name; returns false for an unknown one. */
bool jobstate_parse(const char *s, enum job_state *out);
bool jobstate_reason_parse(const char *s, enum job_reason *out);

/* jobstate_is_terminal: succeeded, failed, timed_out or canceled. */
bool jobstate_is_terminal(enum job_state s);
/* jobstate_can_transition: the edges of architecture.md's job life diagram. */
bool jobstate_can_transition(enum job_state from, enum job_state to);

#endif
