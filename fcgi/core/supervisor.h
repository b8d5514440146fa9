/* supervisor: `labbox supervise --id-fd 4`, one process per started job.
 *
 * Theory of operation. `serve` takes the job's flock, then spawns this process in its own
 * session with the locked fd as fd 3 (LABBOX_LOCK_FD=3), so the lock is held without a gap for
 * the supervisor's whole life and a restart of `serve` does not touch it; the job id comes on
 * a pipe at fd 4, never in argv (any local user reads /proc/<pid>/cmdline; the id is the job's
 * only credential). The supervisor is the
 * only writer of job.json and log.jsonl while it lives. It stages work/, drives the backend
 * through sandbox.h, turns output bytes into log records, enforces the wall clock, the log cap
 * and cancel requests (the file <job>/cancel), collects outputs, destroys the sandbox, and
 * writes the terminal state last. In recovery mode (the previous supervisor died) it
 * re-attaches when the backend can, and otherwise ends the job failed/interrupted.
 */
#ifndef LABBOX_SUPERVISOR_H
#define LABBOX_SUPERVISOR_H

#include "config.h"

/* supervisor_main runs job id to its end; returns the process exit status (0 also when the
 * job failed: that is recorded in job.json; non-zero only when it could not even record). */
int supervisor_main(const struct config *cfg, const char *id);

#endif
