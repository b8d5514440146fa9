/* doctor: `labbox doctor`: checks this host against the configuration, the way labbox and
 * nginx will use them, and says for each failure what to do.
 *
 * Each check prints one line, "ok", "FAIL" or "skip" with its name and what it found; a FAIL
 * is followed by one line saying what to do (a command where there is one). The checks that
 * depend on who runs them (making a work dir in sandbox_dir, group membership, the backend's
 * own check) are done as the user doctor runs as: run it as the user labbox runs as. Nothing
 * is created but the probes' own directories, which are removed again.
 */
#ifndef LABBOX_DOCTOR_H
#define LABBOX_DOCTOR_H

#include "config.h"

struct doctor_opts {
    const char *config_path; /* the file cfg came from, NULL = none (the environment only) */
    const char *nginx_user;  /* --nginx-user, NULL = from nginx's configuration */
};

/* doctor_run: every check, in order, on stdout; 0 when none failed, else 1. */
int doctor_run(const struct config *cfg, const struct doctor_opts *opts);

#endif
