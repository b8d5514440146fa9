/* workdir: a job's work directory under sandbox_dir, made the way every job's is.
 *
 * The supervisor stages each job in <sandbox_dir>/<alias> (a copy of agent_dir, inputs/,
 * outputs/; the alias of the job's id, id_alias, since mount tables show the path) whatever
 * the backend; the scheduler's backend check and `labbox doctor` probe
 * sandbox_dir by making and removing one with the same code, so a sandbox_dir labbox cannot
 * use (owned by another user, read-only, full) shows in /api/health and in the doctor's
 * output before a job fails on it. The reasons given (why) name the key, never the host path:
 * they reach job details and /api/health.
 */
#ifndef LABBOX_WORKDIR_H
#define LABBOX_WORKDIR_H

#include <stddef.h>

#include "config.h"
#include "defaults.h"
#include "rc.h"

/* workdir_path: <sandbox_dir>/<name> into buf. RC_TOOBIG when it does not fit. */
enum rc workdir_path(const struct config *cfg, const char *name, char *buf,
                     size_t len) LB_MUST_CHECK;
/* workdir_name: the name of job id's work dir (its alias, id_alias: never the id, which mount
 * tables and cgroup paths would show to every local user). workdir_job_path: its path. */
enum rc workdir_name(const char *id, char out[ID_LEN + 1]) LB_MUST_CHECK;
enum rc workdir_job_path(const struct config *cfg, const char *id, char *buf,
                         size_t len) LB_MUST_CHECK;

/* workdir_make: an empty work dir at path (from workdir_path), mode 0700, replacing whatever
 * an earlier attempt left there, with sandbox_dir made (0711) if it is missing and refused if
 * it is not labbox's own (owner_private_dir); its fd in *out_fd (the caller closes it). RC_IO
 * with the reason in why. */
enum rc workdir_make(const struct config *cfg, const char *path, int *out_fd, char *why,
                     size_t whylen) LB_MUST_CHECK;

/* workdir_probe: make a work dir with a fresh job id as a job's would be (inputs/ with a file
 * in it, outputs/), then remove it. RC_OK when both worked, else RC_IO (or RC_NOMEM) with the
 * reason in why. */
enum rc workdir_probe(const struct config *cfg, char *why, size_t whylen) LB_MUST_CHECK;

#endif
