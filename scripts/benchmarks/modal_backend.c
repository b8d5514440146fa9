/* bench_modal_backend: one job through the Modal sandbox backend alone, for scripts/bench.
 *
 * Theory of operation. This is what `labbox supervise` does for a job minus the job store, the
 * log file and the HTTP/queue around it: config_load (labbox.conf keys from LABBOX_<KEY>, so
 * the same settings as the server's), then init -> start -> poll until done -> collect ->
 * destroy -> fini on the backend named by `backend` (normally modal), over a work directory the
 * caller staged (agent files, inputs/, outputs/). One process runs one job, like a supervisor.
 *
 *   bench_modal_backend WORK_DIR OUT_DIR JOB_ID AGENT_ARG...
 *
 * OUT_DIR must be an empty directory; the collected outputs land there. On success it prints one
 * JSON line on stdout with the phase times in ms (init, start, run, collect, destroy, total),
 * the agent's exit code, the bytes and lines seen per stream and the collected file count, and
 * exits 0; on any failure it prints the reason on stderr and exits 1. It asserts nothing about
 * the agent's output: scripts/benchmarks/modal.mjs checks what it needs.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/id.h"

#define POLL_MS 500

struct counts {
    uint64_t bytes[SANDBOX_STREAM__MAX];
    uint64_t lines[SANDBOX_STREAM__MAX];
};

static void
on_output(void *ctx, enum sandbox_stream s, const char *p, size_t n)
{
    struct counts *c = ctx;
    c->bytes[s] += n;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n')
            c->lines[s]++;
}

static enum rc
on_persist(void *ctx, struct sandbox *sb)
{
    /* The supervisor stores sb->state in job.json; serialising it costs about the same. */
    (void)ctx;
    return json_object_to_json_string(sb->state) != NULL ? RC_OK : RC_NOMEM;
}

int
main(int argc, char **argv)
{
    struct config cfg;
    struct counts cnt = {{0}, {0}};
    struct sandbox *sb = NULL;
    struct sandbox_result res = {0};
    struct collect_stats cs = {0};
    char err[512] = "";
    char job_id[64];
    int status = 1, outfd = -1, dirfd = -1;
    bool cfg_ok = false, done = false;
    int64_t t0 = clock_mono_ms(), t_init = 0, t_start = 0, t_run = 0, t_collect = 0, t_destroy = 0;
    enum rc rc;

    if (argc < 5) {
        fprintf(stderr, "usage: %s WORK_DIR OUT_DIR JOB_ID AGENT_ARG...\n", argv[0]);
        return 2;
    }
    if (snprintf(job_id, sizeof(job_id), "%s", argv[3]) >= (int)sizeof(job_id)) {
        fprintf(stderr, "job id too long\n");
        return 2;
    }
    char env_job[96], env_backend[64];
    char *envp[] = {env_job,
                    env_backend,
                    (char[]){"LABBOX_INPUT_DIR=/workspace/inputs"},
                    (char[]){"LABBOX_OUTPUT_DIR=/workspace/outputs"},
                    (char[]){"PATH=/usr/local/bin:/usr/bin:/bin"},
                    (char[]){"HOME=/tmp"},
                    (char[]){"LANG=C.UTF-8"},
                    (char[]){"PYTHONUNBUFFERED=1"},
                    NULL};

    rc = config_load(&cfg, NULL, err, sizeof(err));
    cfg_ok = true;
    if (rc != RC_OK) {
        fprintf(stderr, "config: %s\n", err);
        goto out;
    }
    const struct sandbox_ops *ops = sandbox_ops_by_name(cfg.backend);
    if (ops == NULL) {
        fprintf(stderr, "backend %s is not compiled in\n", cfg.backend);
        goto out;
    }
    (void)snprintf(env_job, sizeof(env_job), "LABBOX_JOB_ID=%s", job_id);
    (void)snprintf(env_backend, sizeof(env_backend), "LABBOX_BACKEND=%s", ops->name);
    dirfd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    outfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 || outfd < 0) {
        perror("open WORK_DIR or OUT_DIR");
        goto out;
    }
    struct sandbox_job job = {
        .id = job_id,
        .dir = argv[1],
        .dirfd = dirfd,
        .work_dir = argv[1],
        .argv = argv + 4,
        .envp = envp,
        .timeout_s = cfg.wall_timeout,
    };
    sb = sandbox_new(ops, &cfg, &job);
    if (sb == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    sb->on_output = on_output;
    sb->on_persist = on_persist;
    sb->cb_ctx = &cnt;
    sb->deadline_ms = t0 + (int64_t)cfg.wall_timeout * 1000 + 600000;

    rc = sandbox_init(sb);
    t_init = clock_mono_ms();
    if (rc == RC_OK)
        rc = sandbox_start(sb);
    t_start = clock_mono_ms();
    if (rc != RC_OK) {
        fprintf(stderr, "start: %s: %s\n", rc_str(rc), sb->error);
        goto out;
    }
    int64_t end = t_start + (int64_t)cfg.wall_timeout * 1000 + 60000;
    while (!done && clock_mono_ms() < end) {
        rc = sandbox_poll(sb, POLL_MS, &done, &res);
        if (rc != RC_OK) {
            fprintf(stderr, "poll: %s: %s\n", rc_str(rc), sb->error);
            goto out;
        }
    }
    t_run = clock_mono_ms();
    if (!done) {
        fprintf(stderr, "the agent did not end in time\n");
        goto out;
    }
    rc = sandbox_collect(sb, outfd, &cs);
    t_collect = clock_mono_ms();
    if (rc != RC_OK) {
        fprintf(stderr, "collect: %s: %s\n", rc_str(rc), sb->error);
        goto out;
    }
    rc = sandbox_destroy(sb);
    t_destroy = clock_mono_ms();
    if (rc != RC_OK) {
        fprintf(stderr, "destroy: %s: %s\n", rc_str(rc), sb->error);
        goto out;
    }
    printf("{\"status\":\"%s\",\"exit_code\":%d,\"init_ms\":%" PRId64 ",\"start_ms\":%" PRId64
           ",\"run_ms\":%" PRId64 ",\"collect_ms\":%" PRId64 ",\"destroy_ms\":%" PRId64
           ",\"total_ms\":%" PRId64 ",\"stdout_bytes\":%" PRIu64 ",\"stdout_lines\":%" PRIu64
           ",\"stderr_bytes\":%" PRIu64 ",\"stderr_lines\":%" PRIu64 ",\"files\":%" PRIu64
           ",\"file_bytes\":%" PRIu64 "}\n",
           sandbox_status_str(res.status), res.exit_code, t_init - t0, t_start - t_init,
           t_run - t_start, t_collect - t_run, t_destroy - t_collect, t_destroy - t0,
           cnt.bytes[SANDBOX_STDOUT], cnt.lines[SANDBOX_STDOUT], cnt.bytes[SANDBOX_STDERR],
           cnt.lines[SANDBOX_STDERR], cs.files, cs.bytes);
    status = 0;
out:
    if (sb != NULL && status != 0)
        (void)sandbox_destroy(sb);
    sandbox_free(sb);
    if (outfd >= 0)
        (void)close(outfd);
    if (dirfd >= 0)
        (void)close(dirfd);
    if (cfg_ok)
        config_fini(&cfg);
    return status;
}
