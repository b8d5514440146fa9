/* run: `labbox run`, one job in the foreground, without nginx and without `serve`.
 *
 * Theory of operation. run loads the configuration like serve (a file, LABBOX_* variables, and
 * its own options, which win), with a temporary data dir unless data_dir is configured. It
 * stages the files named on the command line through core/intake, the same checks an upload
 * passes (names, sizes, libmagic types, params under the agent's schema; a folder is taken
 * like a dropped one, its files under its name), and publishes the job. Then it takes the
 * job's lock and forks the supervisor (core/supervisor, as `labbox supervise` runs it) into a
 * session of its own, so the terminal's Ctrl-C reaches run alone: the same sandbox, limits and
 * collection as a served job. While the supervisor works, run prints each record of the job's
 * log as it is written, in the text form of GET /logs (agent stderr lines start "[stderr] ",
 * labbox's own "[labbox] "), on stdout. Ctrl-C or SIGTERM asks the supervisor to cancel, as
 * POST /cancel does: the agent is stopped and what it wrote is still collected. Once the job
 * has ended run links its outputs into the output directory, says how the job ended on stderr
 * and exits with a status that tells the end apart (RUN_EXIT_*); a temporary data dir goes.
 */
#ifndef LABBOX_RUN_H
#define LABBOX_RUN_H

/* Exit statuses of `labbox run` (README and docs/api.md list them). */
enum run_exit {
    RUN_EXIT_SUCCEEDED = 0, /* the job succeeded */
    RUN_EXIT_FAILED = 1,    /* the job failed (the agent, its limits or the sandbox) */
    RUN_EXIT_USAGE = 2,     /* bad arguments or configuration */
    RUN_EXIT_REFUSED = 3,   /* an input or the params were refused, as an upload would be */
    RUN_EXIT_TIMED_OUT = 4, /* the job timed out */
    RUN_EXIT_CANCELED = 5,  /* canceled (Ctrl-C, SIGTERM) */
    RUN_EXIT_INTERNAL = 6,  /* labbox itself could not run the job or deliver its outputs */
};

/* run_main: `labbox run` with the whole command line (argv of main, "run" among it); returns
 * the exit status. */
int run_main(int argc, char **argv);

#endif
