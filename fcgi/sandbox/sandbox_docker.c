/* sandbox_docker: the Docker Engine API backend (tested against podman's compatible service).
 *
 * Theory of operation. One container per job, talked to over the Engine REST API with httpc
 * (unix socket, or plain TCP to a loopback address only: a remote engine needs TLS, which this
 * backend does not do, so docker_host = tcp://<non-loopback> is refused at init).
 *
 *   connect  GET /_ping, GET /version; ApiVersion >= 1.40 required; paths use /v1.40 or /v1.41;
 *            whether the engine is podman (Components: "Podman Engine")
 *   image    the agent's image: docker_image, or built from the agent dir's definition
 *            (Dockerfile, requirements.txt) once per definition (sandbox_docker_image.h)
 *   start    a uid of the job's own from the range the local backend uses (sandbox_walls.c),
 *            state {uid, phase: "creating"} persisted, POST /containers/create (name
 *            labbox-<job>, labels labbox=<instance>, labbox.job=<job> (and
 *            labbox.owner=<owner>), no network, all caps dropped, no-new-privileges, user
 *            <uid>:<uid>, memory/pids/ulimits from the config, no host mounts ever, and the walls
 *            of sandbox_docker_walls.c: the seccomp profile, NanoCpus, a sized /tmp, masked
 *            /proc files, StorageOpt size= for the writable layer (an engine that cannot is
 *            refused unless allow_unenforced names disk)), state {container_id, phase:
 *            "created"} persisted, PUT /containers/<id>/archive?path=/ with a tar of work_dir
 *            under workspace/ owned by the uid (phase "staged"), POST /containers/<id>/start
 *            (phase "started"), then GET /containers/<id>/logs?follow=1 as a non-blocking
 *            stream.
 *   poll     waits on the log stream (curl multi) up to timeout_ms, in slices between which
 *            it steps the usage sampler (below) without blocking; demultiplexes the 8-byte
 *            frames (parse/dockerframe.h) and hands them to sandbox_emit_at with their stream
 *            offset, which drops what was handed out already (before an attach, or by an
 *            earlier log stream of this instance). At the stream's end it inspects the
 *            container: still running means the stream broke, so it is reopened; exited gives
 *            the result (ExitCode, OOMKilled, StartedAt/FinishedAt). Every two seconds without
 *            an end it also inspects, so an engine whose log stream never ends cannot hang a job.
 *            When the stream ends, one last usage sample is taken (blocking, at most
 *            STATS_FINAL_MS) before the inspect.
 *   cancel   POST /containers/<id>/kill (SIGKILL to the whole container).
 *   collect  GET /containers/<id>/archive?path=/workspace/outputs through the sandbox_tar_in
 *            helpers (a capped temp file in the job dir, then collect_tar_fd).
 *   destroy  DELETE /containers/<id>?force=1&v=1; 404 counts as done; then the uid is free.
 *   attach   container_id from sb->state, or found by label labbox.job=<job> if a crash came
 *            between create and persist. A job that never got past staging is restarted from
 *            scratch (its container, if any, removed); otherwise the log stream is reopened
 *            from the start, and sandbox_emit_at skips the sb->resume_offset bytes per stream
 *            the supervisor has logged. The uid recorded in the state is locked again.
 *
 * Usage: wall_ms comes from the engine's StartedAt/FinishedAt (0, the supervisor's clock then,
 * where the engine has no times).
 * cpu_ms and max_rss_kb are sampled, because an exited container's stats are gone (podman
 * answers GET /stats of a stopped container with HTTP 200 and an empty body, Docker with
 * zeros). While the container runs, poll requests GET /containers/<id>/stats?stream=false&
 * one-shot=true as a non-blocking httpc stream (podman 4.3 answers in 10-20 ms); poll waits on
 * the log stream in slices cut at the sampler's next step, so neither holds up the other
 * (output still ends the wait at once): a sample every STATS_FAST_MS for the first
 * STATS_FAST_FOR_MS of the run and while memory is at or above STATS_FAST_PCT of memory_mb,
 * otherwise every STATS_EVERY_MS; at most one request is in flight. When the log stream ends,
 * one more sample is taken: podman removes the cgroup some 50-150 ms after the agent died, so
 * that one often still carries the final CPU total.
 *   cpu_ms      the largest cpu_stats.cpu_usage.total_usage seen (ns; cumulative, so the last
 *               live sample): a lower bound, short by what the agent used after that sample
 *               (at most one sampling period of `cpus` CPUs, NanoCpus caps it there).
 *   max_rss_kb  the largest memory_stats.usage or .max_usage seen: the memory charged to the
 *               container's cgroup (podman 4.3 on cgroup v1 sends only usage, which may include
 *               page cache; Docker on cgroup v1 also sends max_usage, the kernel's peak). A
 *               spike between two samples is missed.
 * Both stay 0 when the engine gives no stats at all (or the job is shorter than a sample).
 *
 * OOM: State.OOMKilled from the engine is the primary signal. Podman 4.3 on a cgroup v1 host
 * never sets it (conmon misses the kernel's OOM event), so the container just exits 137. An
 * exit of 137 (SIGKILL) that labbox did not send (no cancel) is therefore reported as OOM when
 * a sample taken within OOM_RECENT_MS before the exit was noticed saw memory at or above
 * OOM_NEAR_PCT of memory_mb. An agent that kills itself with SIGKILL at lower memory stays
 * SIGNALED. The heuristic cannot see an allocation that goes from low to over the limit
 * between two samples (podman reports no peak, and the cgroup is gone after the kill): such
 * a kill is reported as SIGNALED with signal 9.
 *
 * The engine's error text reaches sb->error and the log only as its "message" field, with
 * non-printable bytes replaced and cut to ENGINE_MSG_MAX bytes.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobs/collect.h"
#include "json.h"
#include "log.h"
#include "parse/dockerframe.h"
#include "rpc/httpc.h"
#include "sandbox/sandbox_docker.h"
#include "sandbox/sandbox_docker_image.h"
#include "sandbox/sandbox_walls.h"
#include "util/clock.h"
#include "util/fsutil.h"

#define API_MIN_MINOR    40 /* Docker API 1.40 (Engine 19.03) or newer */
#define API_MAX_MINOR    41 /* what podman 4 reports; newer engines accept it too */
#define PING_TIMEOUT_MS  3000L
#define CTL_TIMEOUT_MS   30000L     /* create, start, kill, inspect, delete */
#define XFER_TIMEOUT_MS  600000L    /* staging and collecting, unless the deadline is sooner */
#define JSON_MAX         (4u << 20) /* a buffered JSON answer */
#define ENGINE_MSG_MAX   200        /* bytes of an engine error quoted */
#define INSPECT_EVERY_MS 2000       /* poll's safety inspect while the log stream is open */
#define EXIT_GRACE_MS    3000       /* after an exit is seen, how long the stream may drain */
#define REOPEN_MAX       50         /* log streams reopened while the container runs */
#define DOCKER_NOFILE    1024       /* RLIMIT_NOFILE: must not exceed the host's hard limit */
#define DOCKER_NPROC                                                                               \
    4096                               /* RLIMIT_NPROC counts every process of uid 65534 on the    \
                                        * host (rootful engines share it between containers), so   \
                                        * it is a loose backstop; PidsLimit is the real cap */
#define STATS_EVERY_MS    1000         /* usage sample period while the container runs */
#define STATS_FAST_MS     250          /* ... early in the run and near the memory limit */
#define STATS_FAST_FOR_MS 2000         /* "early": since start or attach */
#define STATS_FAST_PCT    50           /* "near": memory at or above this % of memory_mb */
#define STATS_TIMEOUT_MS  5000L        /* a sample unanswered by then is dropped */
#define STATS_REAP_MS     20           /* look for a sample's answer this often ... */
#define STATS_SLOW_MS     200          /* ... for this long after asking, then this often */
#define STATS_FINAL_MS    500L         /* the blocking sample when the log stream ends */
#define STATS_MAX         (256u << 10) /* bytes of a stats document */
#define OOM_NEAR_PCT      90           /* memory this % of memory_mb or more, seen ... */
#define OOM_RECENT_MS     3000         /* ... this recently: an unexplained SIGKILL is OOM */

struct docker {
    struct httpc_target target;
    struct httpc *http;
    bool connected;
    bool podman;     /* the engine is podman (its compatible API differs: sandbox_docker_walls.c) */
    uid_t uid;       /* the agent's own uid (and gid), from the per-job range */
    int uid_lock;    /* holds it while the container may run, -1 if none */
    char api[16];    /* "/v1.41" */
    char id[128];    /* the container's id, "" until known */
    char image[300]; /* the image it runs (sandbox_docker_image.h) */
    struct httpc_stream *logs;
    struct dockerframe frame;
    uint64_t pos[SANDBOX_STREAM__MAX]; /* bytes per stream seen on the current log stream */
    bool killed;                       /* cancel() sent SIGKILL: not a memory kill */
    int64_t last_inspect_ms;           /* poll's last safety inspect */
    int64_t exited_seen_ms;            /* when a safety inspect first saw the container stopped */
    int reopens;
    bool final_read;            /* the whole log was read once more after the exit */
    struct httpc_stream *stats; /* the usage sample in flight, or NULL */
    int64_t stats_sent_ms;      /* our clock when it was requested */
    int64_t stats_next_ms;      /* when the next one is due; 0: not sampling */
    int64_t stats_since_ms;     /* sampling began (start or attach) */
    uint64_t cpu_ns;            /* largest cpu_stats.cpu_usage.total_usage seen, ns */
    uint64_t mem_peak;          /* largest memory usage seen, bytes */
    uint64_t mem_last;          /* memory usage of the latest sample that had one, bytes */
    int64_t near_limit_ms;      /* latest sample at >= OOM_NEAR_PCT of memory_mb, 0 if none */
};

/* fmt_path formats a request path into out; a path that does not fit is an error, never a
 * shorter path. */
static enum rc __attribute__((format(printf, 4, 5)))
fmt_path(struct sandbox *sb, char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap)
        return sandbox_fail(sb, "docker: request path too long");
    return RC_OK;
}

/* engine_msg copies a bounded, printable version of the engine's error into out. */
static void
engine_msg(const struct httpc_resp *r, char *out, size_t cap)
{
    const char *src = r->body != NULL ? r->body : "";
    json_object *j = NULL;
    if (r->body != NULL && r->len > 0) {
        j = json_tokener_parse(r->body);
        const char *m = j != NULL ? json_get_str(j, "message") : NULL;
        if (m != NULL)
            src = m;
    }
    size_t o = 0;
    for (size_t i = 0; src[i] != '\0' && o + 1 < cap && i < ENGINE_MSG_MAX; i++) {
        unsigned char c = (unsigned char)src[i];
        char ch = '?';
        if (c >= 0x20 && c < 0x7f)
            ch = (char)c;
        out[o++] = ch;
    }
    while (o > 0 && out[o - 1] == '?')
        o--;
    if (cap > 0)
        out[o] = '\0';
    json_object_put(j);
}

/* call runs one request with an optional JSON body; a transport failure becomes RC_BACKEND
 * with the reason in sb->error. The answer (any status) is in out. */
static enum rc
call(struct sandbox *sb, const char *method, const char *path, json_object *body, long timeout,
     struct httpc_resp *out)
{
    struct docker *d = sb->priv;
    char full[1200];
    if (fmt_path(sb, full, sizeof(full), "%s%s", d->api, path) != RC_OK)
        return RC_BACKEND;
    const char *text =
        body != NULL ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    if (body != NULL && text == NULL)
        return RC_NOMEM;
    struct httpc_req rq = {
        .method = method,
        .path = full,
        .content_type = text != NULL ? "application/json" : NULL,
        .body = text,
        .body_len = text != NULL ? strlen(text) : 0,
        .max_body = JSON_MAX,
        .timeout_ms = timeout,
    };
    enum rc rc = httpc_do(d->http, &rq, out);
    if (rc == RC_TIMEOUT)
        return sandbox_fail(sb, "docker engine at %s: %s %s timed out", sb->cfg->docker_host,
                            method, path);
    if (rc != RC_OK)
        return sandbox_fail(sb, "docker engine at %s: %s", sb->cfg->docker_host,
                            httpc_error(d->http));
    return RC_OK;
}

/* fail_status records "what: HTTP n: engine message" and returns RC_BACKEND. */
static enum rc
fail_status(struct sandbox *sb, const char *what, const struct httpc_resp *r)
{
    char msg[ENGINE_MSG_MAX + 1];
    engine_msg(r, msg, sizeof(msg));
    return sandbox_fail(sb, "docker %s failed: HTTP %ld%s%s", what, r->status, msg[0] ? ": " : "",
                        msg);
}

/* connect_engine pings the engine and picks the API version (once per instance). */
static enum rc
connect_engine(struct sandbox *sb, long timeout)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    json_object *j = NULL;
    enum rc rc = RC_OK;
    if (d->connected)
        return RC_OK;
    if (d->http == NULL)
        return sandbox_fail(sb, "docker backend used without a successful init");
    d->api[0] = '\0';
    struct httpc_req ping = {.method = "GET",
                             .path = "/_ping",
                             .max_body = 1024,
                             .timeout_ms = timeout,
                             .connect_timeout_ms = timeout};
    rc = httpc_do(d->http, &ping, &r);
    if (rc != RC_OK) {
        rc = sandbox_fail(sb, "docker engine at %s does not answer: %s", sb->cfg->docker_host,
                          httpc_error(d->http));
        goto out;
    }
    if (r.status != 200) {
        rc = sandbox_fail(sb, "docker engine at %s answered /_ping with HTTP %ld",
                          sb->cfg->docker_host, r.status);
        goto out;
    }
    httpc_resp_fini(&r);
    struct httpc_req ver = {.method = "GET",
                            .path = "/version",
                            .max_body = JSON_MAX,
                            .timeout_ms = timeout,
                            .connect_timeout_ms = timeout};
    rc = httpc_do(d->http, &ver, &r);
    if (rc != RC_OK || r.status != 200 || r.body == NULL) {
        rc = sandbox_fail(sb, "docker engine at %s: GET /version failed (HTTP %ld)",
                          sb->cfg->docker_host, r.status);
        goto out;
    }
    j = json_tokener_parse(r.body);
    const char *v = j != NULL ? json_get_str(j, "ApiVersion") : NULL;
    json_object *comps = NULL;
    d->podman = false;
    if (j != NULL && json_object_object_get_ex(j, "Components", &comps) &&
        json_object_is_type(comps, json_type_array))
        for (size_t i = 0; i < json_object_array_length(comps); i++) {
            const char *name = json_get_str(json_object_array_get_idx(comps, i), "Name");
            d->podman = d->podman || (name != NULL && strcmp(name, "Podman Engine") == 0);
        }
    unsigned major = 0, minor = 0;
    if (v == NULL || sscanf(v, "%u.%u", &major, &minor) != 2) {
        rc = sandbox_fail(sb, "docker engine at %s reports no API version; is it a Docker engine?",
                          sb->cfg->docker_host);
        goto out;
    }
    if (major < 1 || (major == 1 && minor < API_MIN_MINOR)) {
        rc = sandbox_fail(sb, "docker engine at %s speaks API %u.%u; labbox needs 1.%d or newer",
                          sb->cfg->docker_host, major, minor, API_MIN_MINOR);
        goto out;
    }
    if (major > 1 || minor > API_MAX_MINOR)
        minor = API_MAX_MINOR;
    rc = fmt_path(sb, d->api, sizeof(d->api), "/v1.%u", minor);
    d->connected = rc == RC_OK;
out:
    json_object_put(j);
    httpc_resp_fini(&r);
    return rc;
}

/*** State ***/

static enum rc
save_state(struct sandbox *sb, const char *phase)
{
    struct docker *d = sb->priv;
    if (!json_set_str(sb->state, "phase", phase) ||
        !json_set_str(sb->state, "container_id", d->id[0] ? d->id : NULL))
        return RC_NOMEM;
    enum rc rc = sandbox_persist(sb);
    if (rc != RC_OK)
        return sandbox_fail(sb, "docker: cannot persist sandbox state: %s", rc_str(rc));
    return RC_OK;
}

static bool
set_id(struct docker *d, const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n >= sizeof(d->id))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    memcpy(d->id, id, n + 1);
    return true;
}

/* find_by_label looks for the container labelled labbox.job=job_id; d->id stays "" if none. */
static enum rc
find_by_label(struct sandbox *sb, const char *job_id)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    json_object *j = NULL;
    char filt[256], esc[512], path[700];
    int k = snprintf(filt, sizeof(filt), "{\"label\":[\"labbox.job=%s\"]}", job_id);
    if (k < 0 || (size_t)k >= sizeof(filt) || httpc_escape(filt, esc, sizeof(esc)) != RC_OK)
        return sandbox_fail(sb, "docker: job id too long");
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/json?all=1&filters=%s", esc);
    if (rc == RC_OK)
        rc = call(sb, "GET", path, NULL, sandbox_io_ms(sb, CTL_TIMEOUT_MS), &r);
    if (rc != RC_OK)
        goto out;
    if (r.status != 200) {
        rc = fail_status(sb, "container list", &r);
        goto out;
    }
    j = r.body != NULL ? json_tokener_parse(r.body) : NULL;
    if (j != NULL && json_object_is_type(j, json_type_array) && json_object_array_length(j) > 0)
        (void)set_id(d, json_get_str(json_object_array_get_idx(j, 0), "Id"));
out:
    json_object_put(j);
    httpc_resp_fini(&r);
    return rc;
}

/*** Create and stage ***/

static json_object *
str_array(char *const *v)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a != NULL && v != NULL && v[i] != NULL; i++) {
        if (!json_push(a, json_object_new_string(v[i]))) {
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static bool
add_ulimit(json_object *arr, const char *name, int64_t v)
{
    json_object *u = json_object_new_object();
    if (u == NULL)
        return false;
    bool ok = json_add(u, "Name", json_object_new_string(name)) &&
              json_add(u, "Soft", json_object_new_int64(v)) &&
              json_add(u, "Hard", json_object_new_int64(v));
    if (!ok) {
        json_object_put(u);
        return false;
    }
    return json_push(arr, u);
}

static int64_t
clamp_i64(uint64_t v, uint64_t mul)
{
    if (mul != 0 && v > (uint64_t)INT64_MAX / mul)
        return INT64_MAX;
    return (int64_t)(v * mul);
}

/* create_body builds the POST /containers/create document (cap_layer: with StorageOpt size=).
 * NULL with the reason in sb->error. */
static json_object *
create_body(struct sandbox *sb, bool cap_layer)
{
    const struct config *cfg = sb->cfg;
    const struct docker *d = sb->priv;
    char dir[4096], user[32], err[256] = "out of memory";
    (void)snprintf(dir, sizeof(dir), "%s", sb->job->work_dir);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir)
        *slash = '\0';
    struct docker_walls_in walls = {
        .podman = d->podman, .cap_layer = cap_layer, .profile_dir = dir};
    json_object *c = json_object_new_object();
    json_object *hc = json_object_new_object();
    json_object *labels = json_object_new_object();
    json_object *ul = json_object_new_array();
    json_object *capdrop = json_object_new_array();
    json_object *secopt = json_object_new_array();
    bool ok = c != NULL && hc != NULL && labels != NULL && ul != NULL && capdrop != NULL &&
              secopt != NULL;
    ok = ok && json_add(labels, "labbox", json_object_new_string(sb->cfg->instance)) &&
         json_add(labels, "labbox.job", json_object_new_string(sb->job->id));
    if (ok && sb->job->owner != NULL) /* so that an operator sees whose container it is */
        ok = json_add(labels, "labbox.owner", json_object_new_string(sb->job->owner));
    ok = ok && json_push(capdrop, json_object_new_string("ALL"));
    ok = ok && json_push(secopt, json_object_new_string("no-new-privileges"));
    ok = ok && docker_walls(cfg, &walls, hc, secopt, err, sizeof(err)) == RC_OK;
    ok = ok && add_ulimit(ul, "nofile", DOCKER_NOFILE) && add_ulimit(ul, "nproc", DOCKER_NPROC);
    if (ok && cfg->file_size_mb > 0)
        ok = add_ulimit(ul, "fsize", clamp_i64(cfg->file_size_mb, (uint64_t)1024 * 1024));
    if (ok && cfg->cpu_time > 0)
        ok = add_ulimit(ul, "cpu", clamp_i64(cfg->cpu_time, 1));

    ok =
        ok && json_add(hc, "NetworkMode", json_object_new_string(cfg->network ? "bridge" : "none"));
    ok = ok && json_add(hc, "CapDrop", capdrop);
    capdrop = NULL;
    ok = ok && json_add(hc, "SecurityOpt", secopt);
    secopt = NULL;
    ok = ok && json_add(hc, "Ulimits", ul);
    ul = NULL;
    ok = ok && json_add(hc, "Privileged", json_object_new_boolean(0));
    ok = ok && json_add(hc, "AutoRemove", json_object_new_boolean(0));
    if (ok && cfg->memory_mb > 0) {
        int64_t mem = clamp_i64(cfg->memory_mb, (uint64_t)1024 * 1024);
        ok = json_add(hc, "Memory", json_object_new_int64(mem)) &&
             json_add(hc, "MemorySwap", json_object_new_int64(mem));
    }
    if (ok && cfg->pids > 0)
        ok = json_add(hc, "PidsLimit", json_object_new_int64(clamp_i64(cfg->pids, 1)));

    ok = ok &&
         json_add(c, "Image", json_object_new_string(d->image[0] ? d->image : cfg->docker_image));
    ok = ok && json_add(c, "Cmd", str_array(sb->job->argv));
    ok = ok && json_add(c, "Env", str_array(sb->job->envp));
    ok = ok && json_add(c, "WorkingDir", json_object_new_string(SANDBOX_WORKSPACE));
    (void)snprintf(user, sizeof(user), "%u:%u", (unsigned)d->uid, (unsigned)d->uid);
    ok = ok && json_add(c, "User", json_object_new_string(user));
    ok = ok && json_add(c, "Tty", json_object_new_boolean(0));
    ok = ok && json_add(c, "OpenStdin", json_object_new_boolean(0));
    ok = ok && json_add(c, "NetworkDisabled", json_object_new_boolean(!cfg->network));
    ok = ok && json_add(c, "Labels", labels);
    labels = NULL;
    ok = ok && json_add(c, "HostConfig", hc);
    hc = NULL;
    json_object_put(hc);
    json_object_put(labels);
    json_object_put(ul);
    json_object_put(capdrop);
    json_object_put(secopt);
    if (!ok) {
        json_object_put(c);
        (void)sandbox_fail(sb, "docker: %s", err);
        return NULL;
    }
    return c;
}

/* remove_container: DELETE ?force=1&v=1 of d->id; 404 counts as removed. */
static enum rc
remove_container(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    char path[256];
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/%s?force=1&v=1", d->id);
    if (rc == RC_OK)
        rc = call(sb, "DELETE", path, NULL, sandbox_io_ms(sb, CTL_TIMEOUT_MS), &r);
    if (rc == RC_OK && r.status != 200 && r.status != 204 && r.status != 404)
        rc = fail_status(sb, "remove", &r);
    httpc_resp_fini(&r);
    return rc;
}

/* The engine refused StorageOpt size= (its storage driver cannot cap a writable layer). */
static bool
no_layer_cap(const struct httpc_resp *r)
{
    char msg[ENGINE_MSG_MAX + 1];
    engine_msg(r, msg, sizeof(msg));
    return r->status >= 400 && strcasestr(msg, "storage-opt") != NULL;
}

/* POST /containers/create with body; a container of this job's name left from an earlier
 * attempt is removed first. The answer (any status) is in r. */
static enum rc
post_create(struct sandbox *sb, json_object *body, struct httpc_resp *r)
{
    struct docker *d = sb->priv;
    char path[200];
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/create?name=labbox-%s", sb->job->id);
    for (int attempt = 0; rc == RC_OK; attempt++) {
        httpc_resp_fini(r);
        rc = call(sb, "POST", path, body, sandbox_io_ms(sb, CTL_TIMEOUT_MS), r);
        if (rc != RC_OK || r->status != 409 || attempt > 0)
            break;
        d->id[0] = '\0';
        rc = find_by_label(sb, sb->job->id);
        if (rc == RC_OK && d->id[0] != '\0')
            rc = remove_container(sb);
        d->id[0] = '\0';
    }
    return rc;
}

/* The container, its writable layer (/workspace) capped at workspace_max_mb. An engine whose
 * storage cannot cap it may run the job without that cap only when allow_unenforced says so. */
static enum rc
create_container(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    json_object *j = NULL;
    json_object *body = create_body(sb, true);
    enum rc rc = body != NULL ? post_create(sb, body, &r) : RC_BACKEND;
    if (rc == RC_OK && no_layer_cap(&r)) {
        char msg[ENGINE_MSG_MAX + 1];
        engine_msg(&r, msg, sizeof(msg));
        if (!(sb->cfg->unenforced & LIMIT_DISK)) {
            rc = sandbox_fail(sb,
                              "the docker engine cannot cap /workspace at workspace_max_mb (%s); "
                              "allow_unenforced = disk runs jobs without that cap",
                              msg);
            goto out;
        }
        log_info("docker: /workspace is not capped (allow_unenforced = disk): %s", msg);
        json_object_put(body);
        body = create_body(sb, false);
        rc = body != NULL ? post_create(sb, body, &r) : RC_BACKEND;
    }
    if (rc != RC_OK)
        goto out;
    if (r.status == 404) {
        rc = sandbox_fail(sb, "image %s not found on the engine; pull or build it",
                          sb->cfg->docker_image);
        goto out;
    }
    if (r.status != 201 && r.status != 200) {
        rc = fail_status(sb, "create", &r);
        goto out;
    }
    j = r.body != NULL ? json_tokener_parse(r.body) : NULL;
    if (j == NULL || !set_id(d, json_get_str(j, "Id")))
        rc = sandbox_fail(sb, "docker create answered without a container id");
out:
    json_object_put(j);
    json_object_put(body);
    httpc_resp_fini(&r);
    return rc;
}

/* write_fd: collect_write_fn onto the fd *ctx. */
static enum rc
write_fd(void *ctx, const void *p, size_t len)
{
    enum rc rc = fs_write_all(*(const int *)ctx, p, len);
    if (rc != RC_OK)
        log_errno("write to a docker temp file");
    return rc;
}

/* tar_dir_header writes one ustar directory entry (name ends in '/') owned by uid:uid. */
static enum rc
tar_dir_header(int fd, const char *name, uid_t uid)
{
    unsigned char h[512];
    memset(h, 0, sizeof(h));
    size_t n = strlen(name);
    if (n >= 100)
        return RC_TOOBIG;
    memcpy(h, name, n + 1); /* the NUL fits: n < 100 */
    (void)snprintf((char *)h + 100, 8, "%07o", 0755u);
    (void)snprintf((char *)h + 108, 8, "%07o", (unsigned)uid);
    (void)snprintf((char *)h + 116, 8, "%07o", (unsigned)uid);
    (void)snprintf((char *)h + 124, 12, "%011o", 0u);
    (void)snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)time(NULL));
    memset(h + 148, ' ', 8);
    h[156] = '5';
    memcpy(h + 257, "ustar", 6);
    h[263] = '0'; /* version "00", no NUL */
    h[264] = '0';
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        sum += h[i];
    (void)snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return write_fd(&fd, h, sizeof(h));
}

static enum rc
read_fd(void *ctx, char *buf, size_t cap, size_t *out_n)
{
    const int *fd = ctx;
    for (;;) {
        ssize_t r = read(*fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            log_errno("read of a docker temp file");
            return RC_IO;
        }
        *out_n = (size_t)r;
        return RC_OK;
    }
}

/* stage uploads work_dir as SANDBOX_WORKSPACE, owned by the job's uid, via a temp tar file
 * unpacked at the container's root. */
static enum rc
stage(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    int fd = -1, src = -1;
    char ws[64], outs[128], path[1200];
    enum rc rc = sandbox_tmpfile(sb, &fd);
    if (rc != RC_OK)
        goto out;
    /* Member names are relative to the root: "workspace/", "workspace/outputs/". */
    const char *rel = SANDBOX_WORKSPACE;
    while (*rel == '/')
        rel++;
    rc = fmt_path(sb, ws, sizeof(ws), "%s/", rel);
    if (rc == RC_OK)
        rc = fmt_path(sb, outs, sizeof(outs), "%s" SANDBOX_OUTPUTS_DIR "/", ws);
    if (rc == RC_OK)
        rc = fmt_path(sb, path, sizeof(path), "%s/containers/%s/archive?path=%%2F", d->api, d->id);
    if (rc != RC_OK)
        goto out;
    src = open(sb->job->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src < 0) {
        log_errno("open %s", sb->job->work_dir);
        rc = sandbox_fail(sb, "docker: cannot open the job's work dir");
        goto out;
    }
    /* The workspace and its outputs/ exist and belong to the agent whatever the image has. */
    rc = tar_dir_header(fd, ws, d->uid);
    if (rc == RC_OK)
        rc = tar_dir_header(fd, outs, d->uid);
    if (rc == RC_OK)
        rc = collect_make_tar(src, ws, d->uid, d->uid, write_fd, &fd);
    if (rc != RC_OK) {
        rc = sandbox_fail(sb, "docker: cannot build the staging tar: %s", rc_str(rc));
        goto out;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        log_errno("lseek staging tar");
        rc = sandbox_fail(sb, "docker: staging tar unreadable");
        goto out;
    }
    struct httpc_req rq = {
        .method = "PUT",
        .path = path,
        .content_type = "application/x-tar",
        .read_fn = read_fd,
        .read_ctx = &fd,
        .read_len = (int64_t)size,
        .max_body = JSON_MAX,
        .timeout_ms = sandbox_io_ms(sb, XFER_TIMEOUT_MS),
    };
    rc = httpc_do(d->http, &rq, &r);
    if (rc != RC_OK) {
        rc = sandbox_fail(sb, "docker engine at %s: staging failed: %s", sb->cfg->docker_host,
                          httpc_error(d->http));
        goto out;
    }
    if (r.status != 200 && r.status != 204)
        rc = fail_status(sb, "staging upload", &r);
out:
    httpc_resp_fini(&r);
    if (src >= 0)
        (void)close(src);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

static enum rc
start_container(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    char path[256];
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/%s/start", d->id);
    if (rc == RC_OK)
        rc = call(sb, "POST", path, NULL, sandbox_io_ms(sb, CTL_TIMEOUT_MS), &r);
    if (rc == RC_OK && r.status != 204 && r.status != 304 && r.status != 200)
        rc = fail_status(sb, "start", &r);
    httpc_resp_fini(&r);
    return rc;
}

/*** Log stream ***/

static void
on_frame(void *ctx, enum dockerframe_stream fs, const char *p, size_t n)
{
    struct sandbox *sb = ctx;
    struct docker *d = sb->priv;
    enum sandbox_stream s;
    if (fs == DOCKERFRAME_STDOUT) {
        s = SANDBOX_STDOUT;
    } else if (fs == DOCKERFRAME_STDERR) {
        s = SANDBOX_STDERR;
    } else {
        if (fs == DOCKERFRAME_SYSERR)
            log_warn("docker engine reported an error on the log stream (%zu bytes)", n);
        return;
    }
    uint64_t at = d->pos[s];
    d->pos[s] += n;
    sandbox_emit_at(sb, s, at, p, n);
}

static enum rc
on_log_bytes(void *ctx, const char *p, size_t n)
{
    struct sandbox *sb = ctx;
    struct docker *d = sb->priv;
    return dockerframe_feed(&d->frame, p, n, on_frame, sb);
}

/* open_logs: (re)open the container's log from its start; follow keeps it open while the
 * container runs. sandbox_emit_at drops what was handed out already, so reopening never
 * repeats output. */
static enum rc
open_logs_mode(struct sandbox *sb, bool follow)
{
    struct docker *d = sb->priv;
    char path[300];
    httpc_stream_free(d->logs);
    d->logs = NULL;
    if (fmt_path(sb, path, sizeof(path), "%s/containers/%s/logs?follow=%d&stdout=1&stderr=1",
                 d->api, d->id, follow ? 1 : 0) != RC_OK)
        return RC_BACKEND;
    struct httpc_req rq = {
        .method = "GET",
        .path = path,
        .write_fn = on_log_bytes,
        .write_ctx = sb,
        .max_body = JSON_MAX,
        .timeout_ms = 0,
    };
    dockerframe_init(&d->frame);
    memset(d->pos, 0, sizeof(d->pos));
    d->exited_seen_ms = 0;
    d->last_inspect_ms = clock_mono_ms();
    if (httpc_stream_open(d->http, &rq, &d->logs) != RC_OK)
        return sandbox_fail(sb, "docker: cannot open the log stream: %s", httpc_error(d->http));
    return RC_OK;
}

static enum rc
open_logs(struct sandbox *sb)
{
    return open_logs_mode(sb, true);
}

/*** Usage samples ***/

/* child: obj[key] when it is an object, else NULL (borrowed from obj). */
static json_object *
child(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

/* mem_limit: memory_mb in bytes, 0 for no limit. */
static uint64_t
mem_limit(const struct sandbox *sb)
{
    return sb->cfg->memory_mb > 0 ? (uint64_t)clamp_i64(sb->cfg->memory_mb, (uint64_t)1 << 20) : 0;
}

/* at_pct: is bytes at least pct % of limit (limit > 0)? */
static bool
at_pct(uint64_t bytes, uint64_t limit, unsigned pct)
{
    return limit > 0 && bytes >= limit / 100 * pct + limit % 100 * pct / 100;
}

/* take_sample folds one stats document, requested at our clock's at_ms, into the usage seen.
 * An empty or foreign document (an exited container) changes nothing. */
static void
take_sample(struct sandbox *sb, const char *body, int64_t at_ms)
{
    struct docker *d = sb->priv;
    json_object *j = body != NULL && body[0] != '\0' ? json_tokener_parse(body) : NULL;
    json_object *cpu = child(child(j, "cpu_stats"), "cpu_usage");
    json_object *mem = child(j, "memory_stats");
    int64_t total = json_get_i64(cpu, "total_usage", 0);
    if (total > 0 && (uint64_t)total > d->cpu_ns)
        d->cpu_ns = (uint64_t)total;
    int64_t usage = json_get_i64(mem, "usage", 0);
    int64_t peak = json_get_i64(mem, "max_usage", 0);
    int64_t seen = usage > peak ? usage : peak;
    if (seen > 0) {
        d->mem_last = (uint64_t)seen;
        if (d->mem_last > d->mem_peak)
            d->mem_peak = d->mem_last;
        if (at_pct(d->mem_last, mem_limit(sb), OOM_NEAR_PCT))
            d->near_limit_ms = at_ms;
    }
    json_object_put(j);
}

static enum rc
stats_path(struct sandbox *sb, char *out, size_t cap)
{
    const struct docker *d = sb->priv;
    return fmt_path(sb, out, cap, "%s/containers/%s/stats?stream=false&one-shot=true", d->api,
                    d->id);
}

/* stats_begin starts sampling (after start or attach): the first sample comes STATS_FAST_MS
 * later. */
static void
stats_begin(struct docker *d)
{
    d->stats_since_ms = clock_mono_ms();
    d->stats_next_ms = d->stats_since_ms + STATS_FAST_MS;
}

/* stats_reap reads the answer of the sample in flight if it has come, without blocking. */
static void
stats_reap(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    bool done = false;
    long status = 0;
    const char *body = NULL;
    if (d->stats == NULL)
        return;
    if (httpc_stream_poll(d->stats, 0, &done) != RC_OK)
        done = true; /* curl failed: the sample is lost, nothing else */
    if (!done)
        return;
    if (httpc_stream_result(d->stats, &status, &body) == RC_OK && status == 200)
        take_sample(sb, body, d->stats_sent_ms);
    else
        log_debug("docker: a usage sample failed (HTTP %ld)", status);
    httpc_stream_free(d->stats);
    d->stats = NULL;
}

/* stats_step advances the sampler without blocking: it reads an answered sample and requests
 * the next one when it is due. A failed sample is only a missing sample. */
static void
stats_step(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    char path[300];
    stats_reap(sb);
    int64_t t = clock_mono_ms();
    if (d->stats != NULL || d->stats_next_ms == 0 || t < d->stats_next_ms || d->id[0] == '\0')
        return;
    bool fast = t - d->stats_since_ms < STATS_FAST_FOR_MS ||
                at_pct(d->mem_last, mem_limit(sb), STATS_FAST_PCT);
    d->stats_next_ms = t + (fast ? STATS_FAST_MS : STATS_EVERY_MS);
    if (stats_path(sb, path, sizeof(path)) != RC_OK)
        return;
    struct httpc_req rq = {
        .method = "GET",
        .path = path,
        .max_body = STATS_MAX,
        .timeout_ms = STATS_TIMEOUT_MS,
    };
    if (httpc_stream_open(d->http, &rq, &d->stats) != RC_OK) {
        log_debug("docker: cannot request a usage sample: %s", httpc_error(d->http));
        return;
    }
    d->stats_sent_ms = t;
    stats_reap(sb); /* sends the request now */
}

/* stats_wake_ms: how soon (ms from t) the sampler wants stepping, -1 if it does not: the
 * next sample's time, or soon while one is in flight (its answer takes 10-20 ms). */
static int64_t
stats_wake_ms(const struct docker *d, int64_t t)
{
    if (d->stats_next_ms == 0)
        return -1;
    if (d->stats != NULL)
        return t - d->stats_sent_ms < STATS_SLOW_MS ? STATS_REAP_MS : STATS_SLOW_MS;
    return d->stats_next_ms > t ? d->stats_next_ms - t : 0;
}

/* stats_final takes one last sample, blocking up to STATS_FINAL_MS: the log stream ended, so
 * the agent has most likely exited, and the engine may still hold its final CPU total. */
static void
stats_final(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    char path[300];
    if (d->stats_next_ms == 0 || d->id[0] == '\0')
        return;
    stats_reap(sb);
    httpc_stream_free(d->stats); /* still unanswered: this one is newer */
    d->stats = NULL;
    if (stats_path(sb, path, sizeof(path)) != RC_OK)
        return;
    struct httpc_req rq = {
        .method = "GET",
        .path = path,
        .max_body = STATS_MAX,
        .timeout_ms = STATS_FINAL_MS,
    };
    int64_t t = clock_mono_ms();
    if (httpc_do(d->http, &rq, &r) == RC_OK && r.status == 200)
        take_sample(sb, r.body, t);
    httpc_resp_fini(&r);
}

/*** Inspect and results ***/

struct cstate {
    bool running; /* running, paused or restarting */
    bool created; /* created, never started */
    bool oom;
    int exit_code;
    int64_t wall_ms; /* FinishedAt - StartedAt, -1 if unknown */
};

/* parse_time reads an RFC 3339 timestamp into ms since the epoch; false if it cannot. */
static bool
parse_time(const char *s, int64_t *out_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return false;
    if (tm.tm_year < 1971)
        return false; /* "0001-01-01T00:00:00Z" means never */
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + used;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return false;
        off_s = (int64_t)(hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return false;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out_ms = ((int64_t)t - off_s) * 1000 + frac_ms;
    return true;
}

/* inspect reads the container's state. RC_NOTFOUND (sb->error set) if it is gone. */
static enum rc
inspect(struct sandbox *sb, struct cstate *out)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    json_object *j = NULL;
    json_object *st = NULL;
    char path[256];
    memset(out, 0, sizeof(*out));
    out->wall_ms = -1;
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/%s/json", d->id);
    if (rc == RC_OK)
        rc = call(sb, "GET", path, NULL, CTL_TIMEOUT_MS, &r);
    if (rc != RC_OK)
        goto out;
    if (r.status == 404) {
        (void)sandbox_fail(sb, "container %.12s is gone (removed outside labbox?)", d->id);
        rc = RC_NOTFOUND;
        goto out;
    }
    if (r.status != 200) {
        rc = fail_status(sb, "inspect", &r);
        goto out;
    }
    j = r.body != NULL ? json_tokener_parse(r.body) : NULL;
    if (j == NULL || !json_object_object_get_ex(j, "State", &st)) {
        rc = sandbox_fail(sb, "docker inspect answered without a State");
        goto out;
    }
    const char *status = json_get_str(st, "Status");
    out->running = json_get_bool(st, "Running", false) || json_get_bool(st, "Paused", false) ||
                   json_get_bool(st, "Restarting", false);
    out->created =
        status != NULL && (strcmp(status, "created") == 0 || strcmp(status, "configured") == 0);
    out->oom = json_get_bool(st, "OOMKilled", false);
    int64_t code = json_get_i64(st, "ExitCode", -1);
    out->exit_code = code >= INT32_MIN && code <= INT32_MAX ? (int)code : -1;
    int64_t t0 = 0, t1 = 0;
    if (parse_time(json_get_str(st, "StartedAt"), &t0) &&
        parse_time(json_get_str(st, "FinishedAt"), &t1) && t1 >= t0)
        out->wall_ms = t1 - t0;
out:
    json_object_put(j);
    httpc_resp_fini(&r);
    return rc;
}

/* oom_suspected: the heuristic for engines that do not set OOMKilled (see the file comment):
 * SIGKILL that labbox did not send, and memory near memory_mb shortly before. */
static bool
oom_suspected(const struct sandbox *sb, const struct cstate *cs)
{
    const struct docker *d = sb->priv;
    if (cs->exit_code != 128 + 9 || d->killed || d->near_limit_ms == 0 || mem_limit(sb) == 0)
        return false;
    int64_t noticed = d->exited_seen_ms > 0 ? d->exited_seen_ms : clock_mono_ms();
    return noticed - d->near_limit_ms <= OOM_RECENT_MS;
}

static void
fill_result(const struct sandbox *sb, const struct cstate *cs, struct sandbox_result *out)
{
    const struct docker *d = sb->priv;
    memset(out, 0, sizeof(*out));
    out->wall_ms = cs->wall_ms >= 0 ? (uint64_t)cs->wall_ms : 0;
    out->cpu_ms = d->cpu_ns / 1000000;
    out->max_rss_kb = d->mem_peak / 1024;
    /* The engine reports the main process's death by signal n as exit status 128 + n. */
    sandbox_result_from_exit(out, cs->exit_code, 0, cs->oom || oom_suspected(sb, cs));
}

/*** Hooks ***/

static enum rc
docker_init(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    char err[256];
    const char *host = sb->cfg->docker_host != NULL ? sb->cfg->docker_host : "";
    if (httpc_target_parse(host, &d->target, err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "docker_host: %s", err);
    if (!d->target.is_loopback)
        return sandbox_fail(sb,
                            "docker_host %s: a remote engine over plain tcp would be open to the "
                            "network, and labbox does not do TLS; use a unix socket or a "
                            "loopback address (an ssh tunnel, for instance)",
                            host);
    d->uid_lock = -1;
    d->http = httpc_new(&d->target);
    if (d->http == NULL)
        return RC_NOMEM;
    return RC_OK;
}

/* The job's own uid from the range the local backend uses too (sandbox_walls.c), recorded in
 * the state so that a re-attached supervisor holds the same one. */
static enum rc
take_uid(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    char err[400];
    if (uid_check_host(sb->cfg, err, sizeof(err)) != RC_OK ||
        uid_take(sb->cfg, &d->uid, &d->uid_lock, err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "%s", err);
    if (!json_set_i64(sb->state, "uid", (int64_t)d->uid))
        return RC_NOMEM;
    return RC_OK;
}

/* After a restart: the uid the container runs as, locked again (the lock died with the last
 * supervisor; another job may have taken the uid in between, which is only logged). */
static void
hold_uid(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    int64_t uid = json_get_i64(sb->state, "uid", -1);
    if (uid < 0 || d->uid_lock >= 0)
        return;
    d->uid = (uid_t)uid;
    d->uid_lock = uid_hold(d->uid);
    if (d->uid_lock < 0)
        log_warn("docker: uid %lld of this job's container is held by another job now",
                 (long long)uid);
}

static void
release_uid(struct docker *d)
{
    if (d->uid_lock >= 0)
        close(d->uid_lock);
    d->uid_lock = -1;
}

static void
docker_fini(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    if (d == NULL)
        return;
    httpc_stream_free(d->logs);
    d->logs = NULL;
    httpc_stream_free(d->stats);
    d->stats = NULL;
    httpc_free(d->http);
    d->http = NULL;
    release_uid(d);
}

static enum rc
docker_start(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    enum rc rc = connect_engine(sb, sandbox_io_ms(sb, CTL_TIMEOUT_MS));
    if (rc != RC_OK)
        return rc;
    d->id[0] = '\0';
    if (d->uid_lock < 0)
        rc = take_uid(sb);
    if (rc == RC_OK)
        rc = docker_image_prepare(sb, d->http, d->api, d->image, sizeof(d->image));
    if (rc == RC_OK)
        rc = save_state(sb, "creating");
    if (rc == RC_OK)
        rc = create_container(sb);
    if (rc == RC_OK)
        rc = save_state(sb, "created");
    if (rc == RC_OK)
        rc = stage(sb);
    if (rc == RC_OK)
        rc = save_state(sb, "staged");
    if (rc == RC_OK)
        rc = start_container(sb);
    if (rc != RC_OK)
        return rc;
    stats_begin(d);
    rc = save_state(sb, "started");
    if (rc == RC_OK)
        rc = open_logs(sb);
    return rc;
}

static enum rc
docker_attach(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    enum rc rc = connect_engine(sb, sandbox_io_ms(sb, CTL_TIMEOUT_MS));
    if (rc != RC_OK)
        return rc;
    const char *phase = json_get_str(sb->state, "phase");
    d->id[0] = '\0';
    hold_uid(sb);
    (void)set_id(d, json_get_str(sb->state, "container_id"));
    if (d->id[0] == '\0') {
        rc = find_by_label(sb, sb->job->id);
        if (rc != RC_OK)
            return rc;
    }
    bool before_run =
        phase == NULL || strcmp(phase, "creating") == 0 || strcmp(phase, "created") == 0;
    if (before_run) {
        /* Staging may be half done: nothing ran yet, so begin again from a clean container. */
        if (d->id[0] != '\0') {
            rc = remove_container(sb);
            if (rc != RC_OK)
                return rc;
        }
        log_info("docker: job was not started before the restart; starting it again");
        return docker_start(sb);
    }
    if (d->id[0] == '\0')
        return sandbox_fail(sb, "the container of job %s is gone", sb->job->id);
    struct cstate cs;
    rc = inspect(sb, &cs);
    if (rc == RC_NOTFOUND)
        return RC_BACKEND;
    if (rc != RC_OK)
        return rc;
    if (cs.created) {
        rc = start_container(sb);
        if (rc == RC_OK)
            rc = save_state(sb, "started");
        if (rc != RC_OK)
            return rc;
    }
    if (cs.running || cs.created)
        stats_begin(d);
    return open_logs(sb);
}

static enum rc
docker_poll(struct sandbox *sb, int timeout_ms, bool *out_done, struct sandbox_result *out)
{
    struct docker *d = sb->priv;
    struct cstate cs;
    bool ended = false;
    enum rc rc;
    *out_done = false;
    if (d->id[0] == '\0')
        return sandbox_fail(sb, "docker: poll without a container");
    if (d->logs == NULL) {
        rc = open_logs(sb);
        if (rc != RC_OK)
            return rc;
    }
    /* Wait on the log stream in slices, so the sampler is stepped on time while the log is
     * quiet; return as soon as output arrives or the stream ends. */
    int64_t end = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t seen = d->pos[SANDBOX_STDOUT] + d->pos[SANDBOX_STDERR];
    for (;;) {
        stats_step(sb);
        int64_t t = clock_mono_ms();
        int64_t wait = end - t;
        int64_t wake = stats_wake_ms(d, t);
        if (wake >= 0 && wake < wait)
            wait = wake;
        rc = httpc_stream_poll(d->logs, wait > 0 ? (int)wait : 0, &ended);
        if (rc != RC_OK)
            return sandbox_fail(sb, "docker log stream: %s", httpc_error(d->http));
        if (ended || d->pos[SANDBOX_STDOUT] + d->pos[SANDBOX_STDERR] != seen ||
            clock_mono_ms() >= end)
            break;
    }
    stats_step(sb);
    if (!ended) {
        int64_t t = clock_mono_ms();
        if (t - d->last_inspect_ms < INSPECT_EVERY_MS)
            return RC_OK;
        d->last_inspect_ms = t;
        rc = inspect(sb, &cs);
        if (rc == RC_NOTFOUND)
            return RC_BACKEND;
        if (rc != RC_OK)
            return rc;
        if (cs.running || cs.created) {
            d->exited_seen_ms = 0;
            return RC_OK;
        }
        if (d->exited_seen_ms == 0)
            d->exited_seen_ms = t;
        if (t - d->exited_seen_ms < EXIT_GRACE_MS)
            return RC_OK;
        log_warn("docker: the log stream did not end %d ms after the container stopped",
                 EXIT_GRACE_MS);
    } else {
        long status = 0;
        const char *errbody = "";
        enum rc src = httpc_stream_result(d->logs, &status, &errbody);
        if (src == RC_OK && status == 404)
            return sandbox_fail(sb, "container %.12s is gone (removed outside labbox?)", d->id);
        if (src == RC_BADREQ)
            log_warn("docker: bad framing on the log stream; reopening it");
        else if (src != RC_OK || status != 200)
            log_warn("docker: log stream ended with %s, HTTP %ld; checking the container",
                     rc_str(src), status);
    }
    httpc_stream_free(d->logs);
    d->logs = NULL;
    stats_final(sb);
    rc = inspect(sb, &cs);
    if (rc == RC_NOTFOUND)
        return RC_BACKEND;
    if (rc != RC_OK)
        return rc;
    if (cs.running || cs.created) {
        /* The stream broke while the agent runs: reopen; sandbox_emit_at prevents repeats. */
        if (++d->reopens > REOPEN_MAX)
            return sandbox_fail(sb, "docker: the log stream keeps breaking");
        return open_logs(sb);
    }
    if (!d->final_read) {
        /* A follow stream opened as the container exits may end before the engine has
         * flushed the last lines to its log: read the whole log once more (sandbox_emit_at
         * skips what we have), then conclude. */
        d->final_read = true;
        return open_logs_mode(sb, false);
    }
    d->stats_next_ms = 0; /* the agent has ended: no more samples */
    fill_result(sb, &cs, out);
    *out_done = true;
    return RC_OK;
}

static enum rc
docker_cancel(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    char path[256];
    if (d->id[0] == '\0')
        return RC_OK;
    d->killed = true;
    enum rc rc = fmt_path(sb, path, sizeof(path), "/containers/%s/kill?signal=SIGKILL", d->id);
    if (rc == RC_OK)
        rc = call(sb, "POST", path, NULL, CTL_TIMEOUT_MS, &r);
    if (rc != RC_OK)
        goto out;
    if (r.status == 204 || r.status == 200 || r.status == 404 || r.status == 409)
        goto out;
    /* Podman answers 500 for a container that is not running: that is not a failure. */
    struct cstate cs;
    char msg[ENGINE_MSG_MAX + 1];
    engine_msg(&r, msg, sizeof(msg));
    enum rc irc = inspect(sb, &cs);
    if (irc == RC_OK && !cs.running)
        goto out;
    rc = sandbox_fail(sb, "docker kill failed: HTTP %ld: %s", r.status, msg);
out:
    httpc_resp_fini(&r);
    return rc;
}

static enum rc
docker_collect(struct sandbox *sb, int outputs_dirfd, struct collect_stats *out)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    struct sandbox_tar_in t = {.fd = -1};
    char esc[64], path[300];
    memset(out, 0, sizeof(*out));
    if (d->id[0] == '\0')
        return sandbox_fail(sb, "docker: collect without a container");
    enum rc rc = httpc_escape(SANDBOX_WORKSPACE "/" SANDBOX_OUTPUTS_DIR, esc, sizeof(esc));
    if (rc == RC_OK)
        rc = fmt_path(sb, path, sizeof(path), "%s/containers/%s/archive?path=%s", d->api, d->id,
                      esc);
    if (rc == RC_OK)
        rc = sandbox_tar_in_open(sb, &t);
    if (rc != RC_OK)
        goto out;
    struct httpc_req rq = {
        .method = "GET",
        .path = path,
        .write_fn = sandbox_tar_in_write,
        .write_ctx = &t,
        .max_body = JSON_MAX,
        .timeout_ms = sandbox_io_ms(sb, XFER_TIMEOUT_MS),
    };
    rc = httpc_do(d->http, &rq, &r);
    if (rc != RC_OK && !t.cut) {
        rc = sandbox_fail(sb, "docker engine at %s: collecting outputs failed: %s",
                          sb->cfg->docker_host, httpc_error(d->http));
        goto out;
    }
    if (!t.cut && r.status == 404) {
        rc = RC_OK; /* the agent removed its outputs dir: there is nothing to collect */
        goto out;
    }
    if (!t.cut && r.status != 200) {
        rc = fail_status(sb, "outputs download", &r);
        goto out;
    }
    rc = sandbox_tar_in_extract(&t, outputs_dirfd, out);
out:
    sandbox_tar_in_close(&t);
    httpc_resp_fini(&r);
    return rc;
}

static enum rc
docker_destroy(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    httpc_stream_free(d->logs);
    d->logs = NULL;
    httpc_stream_free(d->stats);
    d->stats = NULL;
    d->stats_next_ms = 0;
    if (d->http == NULL)
        return RC_OK; /* init failed: nothing can have been created */
    enum rc rc = connect_engine(sb, sandbox_io_ms(sb, CTL_TIMEOUT_MS));
    if (rc != RC_OK)
        return rc;
    if (d->id[0] == '\0')
        (void)set_id(d, json_get_str(sb->state, "container_id"));
    if (d->id[0] == '\0' && sb->job != NULL) {
        rc = find_by_label(sb, sb->job->id);
        if (rc != RC_OK)
            return rc;
    }
    if (d->id[0] == '\0') {
        release_uid(d);
        return RC_OK;
    }
    rc = remove_container(sb);
    if (rc != RC_OK)
        return rc;
    /* Only now, with the container gone, may its uid serve another job. */
    release_uid(d);
    return save_state(sb, "destroyed");
}

/* image_present: is docker_image on the engine (GET /images/<name>/json)? Without it every
 * job fails at create. */
static enum rc
image_present(struct sandbox *sb)
{
    struct httpc_resp r = {0};
    char path[300];
    const char *img = sb->cfg->docker_image;
    for (const char *p = img; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("?#%\"\\", *p))
            return sandbox_fail(sb, "docker_image %s is not an image reference", img);
    enum rc rc = fmt_path(sb, path, sizeof(path), "/images/%s/json", img);
    if (rc == RC_OK)
        rc = call(sb, "GET", path, NULL, sandbox_io_ms(sb, PING_TIMEOUT_MS), &r);
    if (rc == RC_OK && r.status == 404)
        rc = sandbox_fail(sb, "image %s not found on the engine; pull or build it", img);
    else if (rc == RC_OK && r.status != 200)
        rc = fail_status(sb, "image inspect", &r);
    httpc_resp_fini(&r);
    return rc;
}

/* The engine answers /_ping and has the image. */
static enum rc
docker_check(struct sandbox *sb)
{
    struct docker *d = sb->priv;
    char err[400];
    d->connected = false;
    if (uid_check_host(sb->cfg, err, sizeof(err)) != RC_OK)
        return sandbox_fail(sb, "%s", err);
    enum rc rc = connect_engine(sb, PING_TIMEOUT_MS);
    return rc == RC_OK ? image_present(sb) : rc;
}

static enum rc
docker_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    struct docker *d = sb->priv;
    struct httpc_resp r = {0};
    json_object *j = NULL;
    char esc[128], path[300];
    enum rc rc = connect_engine(sb, CTL_TIMEOUT_MS);
    if (rc != RC_OK)
        return rc;
    char filt[160];
    rc = fmt_path(sb, filt, sizeof(filt), "{\"label\":[\"labbox=%s\"]}", sb->cfg->instance);
    if (rc == RC_OK && httpc_escape(filt, esc, sizeof(esc)) != RC_OK)
        rc = sandbox_fail(sb, "docker: instance name too long for a label filter");
    if (rc == RC_OK)
        rc = fmt_path(sb, path, sizeof(path), "/containers/json?all=1&filters=%s", esc);
    if (rc == RC_OK)
        rc = call(sb, "GET", path, NULL, CTL_TIMEOUT_MS, &r);
    if (rc != RC_OK)
        goto out;
    if (r.status != 200) {
        rc = fail_status(sb, "container list", &r);
        goto out;
    }
    j = r.body != NULL ? json_tokener_parse(r.body) : NULL;
    if (j == NULL || !json_object_is_type(j, json_type_array)) {
        rc = sandbox_fail(sb, "docker container list is not a JSON array");
        goto out;
    }
    size_t n = json_object_array_length(j), removed = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(j, i);
        json_object *labels = NULL;
        const char *job = NULL;
        if (json_object_object_get_ex(c, "Labels", &labels))
            job = json_get_str(labels, "labbox.job");
        if (job != NULL && claimed(ctx, job))
            continue;
        if (!set_id(d, json_get_str(c, "Id")))
            continue;
        if (remove_container(sb) == RC_OK)
            removed++;
        else
            log_warn("docker: cannot remove orphan container %.12s: %s", d->id, sb->error);
        d->id[0] = '\0';
    }
    if (removed > 0)
        log_info("docker: removed %zu orphan container(s)", removed);
out:
    json_object_put(j);
    httpc_resp_fini(&r);
    return rc;
}

const struct sandbox_ops sandbox_docker_ops = {
    .name = "docker",
    .caps = SANDBOX_CAP_REATTACH,
    .priv_size = sizeof(struct docker),
    .init = docker_init,
    .start = docker_start,
    .attach = docker_attach,
    .poll = docker_poll,
    .cancel = docker_cancel,
    .collect = docker_collect,
    .destroy = docker_destroy,
    .fini = docker_fini,
    .check = docker_check,
    .reap_orphans = docker_reap_orphans,
};
