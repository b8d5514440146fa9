/* test_modal_backend: sandbox_modal_ops driven hook by hook against the fake Modal server.
 *
 * Every case runs twice, with modal_sandbox_version 1 (V1 sandboxes) and 2 (V2); the RPC
 * counts of the fake show which family was spoken. Cross-family cases check that an existing
 * sandbox is handled by its id's family whatever the configuration says now.
 *
 * Starts `node tests/fake-modal/server.mjs` (or uses LABBOX_TEST_MODAL_URL, plus
 * LABBOX_TEST_MODAL_ADMIN for the admin port when failure injection is wanted). Without node or
 * the fake it skips (exit 77), unless CI=true, where that fails.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <curl/curl.h>
#include <stdint.h>

#include "check.h"
#include "config.h"
#include "json.h"
#include "rpc/modal_store.h"
#include "util/fsutil.h"

#define OUT_MAX    65536
#define FAIL_IMAGE "labbox-test/broken:1"

extern const struct sandbox_ops sandbox_modal_ops;
extern char **environ;

static int sandbox_version = 1; /* modal_sandbox_version of cfg_make */
static char data_dir[64];       /* the jobs' data_dir: the shared Modal store lives in it */
static char server_url[128];
static char admin_url[128];
static pid_t server_pid = -1;
static int server_stdin = -1;

struct rec {
    char out[SANDBOX_STREAM__MAX][OUT_MAX];
    size_t len[SANDBOX_STREAM__MAX];
    char *state; /* last persisted sb->state as JSON text */
    int persists;
    char notes[OUT_MAX]; /* the backend's notes for the job's log, one per line */
    size_t notes_len;
};

static void
on_output(void *ctx, enum sandbox_stream s, const char *p, size_t n)
{
    struct rec *r = ctx;
    if (r->len[s] + n <= OUT_MAX) {
        memcpy(r->out[s] + r->len[s], p, n);
        r->len[s] += n;
    }
}

static void
on_note(void *ctx, const char *line)
{
    struct rec *r = ctx;
    size_t n = strlen(line);
    if (r->notes_len + n + 2 <= OUT_MAX) {
        memcpy(r->notes + r->notes_len, line, n);
        r->notes_len += n;
        r->notes[r->notes_len++] = '\n';
        r->notes[r->notes_len] = '\0';
    }
}

static enum rc
on_persist(void *ctx, struct sandbox *sb)
{
    struct rec *r = ctx;
    free(r->state);
    r->state = strdup(json_object_to_json_string(sb->state));
    r->persists++;
    return r->state != NULL ? RC_OK : RC_NOMEM;
}

static int64_t
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ fake server */

static int
skip_or_fail(const char *why)
{
    const char *ci = getenv("CI");
    fprintf(stderr, "test_modal_backend: %s\n", why);
    if (ci != NULL && strcmp(ci, "true") == 0)
        return 1;
    return 77;
}

/* A running fake server. */
struct fake {
    pid_t pid;
    int in; /* its stdin: closing it stops it (--exit-on-stdin-eof) */
    char url[128], admin[128];
};

/* Start a fake with extra flags (NULL-terminated, may be NULL); its gRPC URL is
 * <base>:<port> (base "http://127.0.0.1", or "https://<host>" for TLS). */
static bool
fake_spawn(struct fake *f, const char *const *extra, const char *base)
{
    int out[2], in[2];
    char script[512];
    char *argv[32];
    size_t n = 0;
    f->pid = -1;
    f->in = -1;
    (void)snprintf(script, sizeof(script), "%s/tests/fake-modal/server.mjs", LB_SOURCE_DIR);
    if (access(script, R_OK) != 0)
        return false;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
        return false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    argv[n++] = (char[]){"node"};
    argv[n++] = script;
    argv[n++] = (char[]){"--exit-on-stdin-eof"};
    argv[n++] = (char[]){"--fail-image-tag"};
    argv[n++] = (char[]){FAIL_IMAGE};
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < sizeof(argv) / sizeof(argv[0]);
         i++) {
        union {
            const char *c;
            char *m;
        } u = {extra[i]};
        argv[n++] = u.m;
    }
    argv[n] = NULL;
    int e = posix_spawnp(&f->pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    (void)close(out[1]);
    (void)close(in[0]);
    f->in = in[1];
    if (e != 0) {
        f->pid = -1;
        (void)close(out[0]);
        return false;
    }
    FILE *fp = fdopen(out[0], "r");
    char line[200];
    int port = 0, admin_port = 0;
    while (fp != NULL && (port == 0 || admin_port == 0) && fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "LISTENING ", 10) == 0)
            port = (int)strtol(line + 10, NULL, 10);
        else if (strncmp(line, "ADMIN ", 6) == 0)
            admin_port = (int)strtol(line + 6, NULL, 10);
    }
    if (fp != NULL)
        (void)fclose(fp);
    if (port <= 0 || admin_port <= 0)
        return false;
    const char *host = strstr(base, "://") + 3;
    (void)snprintf(f->url, sizeof(f->url), "%s:%d", base, port);
    (void)snprintf(f->admin, sizeof(f->admin), "http://%s:%d", host, admin_port);
    return true;
}

static void
fake_kill(struct fake *f)
{
    if (f->in >= 0)
        (void)close(f->in);
    f->in = -1;
    if (f->pid > 0) {
        int st;
        int64_t end = mono() + 5000;
        while (waitpid(f->pid, &st, WNOHANG) == 0) {
            if (mono() > end) {
                (void)kill(f->pid, SIGKILL);
                (void)waitpid(f->pid, &st, 0);
                break;
            }
            (void)usleep(50000);
        }
    }
    f->pid = -1;
}

/* Start the fake; fills server_url and admin_url. */
static bool
fake_start(void)
{
    struct fake f;
    bool ok = fake_spawn(&f, NULL, "http://127.0.0.1");
    server_pid = f.pid;
    server_stdin = f.in;
    if (!ok)
        return false;
    (void)snprintf(server_url, sizeof(server_url), "%s", f.url);
    (void)snprintf(admin_url, sizeof(admin_url), "%s", f.admin);
    return true;
}

static void
fake_stop(void)
{
    struct fake f = {server_pid, server_stdin, "", ""};
    fake_kill(&f);
    server_pid = -1;
    server_stdin = -1;
}

struct body {
    char buf[262144];
    size_t len;
};

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct body *b = ud;
    size_t k = sz * n;
    if (b->len + k < sizeof(b->buf)) {
        memcpy(b->buf + b->len, p, k);
        b->len += k;
        b->buf[b->len] = '\0';
    }
    return k;
}

/* admin: an admin API request; the JSON reply (caller puts) or NULL. */
static json_object *
admin(const char *method, const char *path, const char *json)
{
    static struct body b;
    char url[256];
    if (admin_url[0] == '\0')
        return NULL;
    b.len = 0;
    b.buf[0] = '\0';
    (void)snprintf(url, sizeof(url), "%s%s", admin_url, path);
    CURL *c = curl_easy_init();
    (void)curl_easy_setopt(c, CURLOPT_URL, url);
    (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (json != NULL)
        (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode res = curl_easy_perform(c);
    curl_easy_cleanup(c);
    return res == CURLE_OK ? json_tokener_parse(b.buf) : NULL;
}

/* sandbox_running: is the fake's sandbox id still running? -1 if unknown. */
static int
sandbox_running(const char *id)
{
    json_object *st = admin("GET", "/state", NULL), *sbs, *it;
    int r = -1;
    if (st != NULL && json_object_object_get_ex(st, "sandboxes", &sbs)) {
        for (size_t i = 0; i < json_object_array_length(sbs); i++) {
            it = json_object_array_get_idx(sbs, i);
            const char *sid = json_get_str(it, "id");
            if (sid != NULL && strcmp(sid, id) == 0)
                r = json_get_bool(it, "running", false) ? 1 : 0;
        }
    }
    json_object_put(st);
    return r;
}

/* sandbox_field: resources.<key> of the fake's sandbox id; -1 if unknown. */
static long
sandbox_field(const char *id, const char *key)
{
    json_object *st = admin("GET", "/state", NULL), *sbs, *it, *res, *v;
    long r = -1;
    if (st != NULL && json_object_object_get_ex(st, "sandboxes", &sbs)) {
        for (size_t i = 0; i < json_object_array_length(sbs); i++) {
            it = json_object_array_get_idx(sbs, i);
            const char *sid = json_get_str(it, "id");
            if (sid != NULL && strcmp(sid, id) == 0 &&
                json_object_object_get_ex(it, "resources", &res) &&
                json_object_object_get_ex(res, key, &v))
                r = (long)json_object_get_int64(v);
        }
    }
    json_object_put(st);
    return r;
}

/* calls: the fake's log of calls of rpc (GET /calls), owned by the caller; NULL if unknown. */
static json_object *
calls(const char *rpc)
{
    char path[128];
    json_object *c = NULL, *arr = NULL;
    (void)snprintf(path, sizeof(path), "/calls?rpc=%s", rpc);
    json_object *st = admin("GET", path, NULL);
    if (st != NULL && json_object_object_get_ex(st, "calls", &arr))
        c = json_object_get(arr);
    json_object_put(st);
    return c;
}

/* rpc_count: how many calls of rpc the fake has seen since the last stats_reset; -1 if unknown. */
static long
rpc_count(const char *rpc)
{
    json_object *st = admin("GET", "/stats", NULL), *rpcs, *v;
    long n = -1;
    if (st != NULL && json_object_object_get_ex(st, "rpcs", &rpcs))
        n = json_object_object_get_ex(rpcs, rpc, &v) ? (long)json_object_get_int64(v) : 0;
    json_object_put(st);
    return n;
}

static void
stats_reset(void)
{
    json_object_put(admin("POST", "/stats/reset", "{}"));
}

/* sandbox_is_v2: what the fake says about the family of sandbox id; -1 if unknown. */
static int
sandbox_is_v2(const char *id)
{
    json_object *st = admin("GET", "/state", NULL), *sbs, *it;
    int r = -1;
    if (st != NULL && json_object_object_get_ex(st, "sandboxes", &sbs)) {
        for (size_t i = 0; i < json_object_array_length(sbs); i++) {
            it = json_object_array_get_idx(sbs, i);
            const char *sid = json_get_str(it, "id");
            if (sid != NULL && strcmp(sid, id) == 0)
                r = json_get_bool(it, "v2", false) ? 1 : 0;
        }
    }
    json_object_put(st);
    return r;
}

static int
injections_left(void)
{
    json_object *st = admin("GET", "/injections", NULL), *a;
    int n = -1;
    if (st != NULL && json_object_object_get_ex(st, "injections", &a))
        n = (int)json_object_array_length(a);
    json_object_put(st);
    return n;
}

/* ------------------------------------------------------------------ jobs */

struct jobenv {
    char root[64];
    char dir[128];
    char work[160];
    char id[64];
    int dirfd;
    char **argv;
    char **envp;
    struct sandbox_job job;
};

static const char *const env_default[] = {"PATH=/usr/bin:/bin", "LABBOX_X=hello", "HOME=/tmp",
                                          NULL};

static char **
dupv(const char *const *v)
{
    size_t n = 0;
    while (v[n] != NULL)
        n++;
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++)
        out[i] = strdup(v[i]);
    return out;
}

static void
freev(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

static bool
job_make(struct jobenv *e, const char *name, const char *const *argv)
{
    memset(e, 0, sizeof(*e));
    e->dirfd = -1;
    (void)snprintf(e->root, sizeof(e->root), "/tmp/lbmodal-XXXXXX");
    if (mkdtemp(e->root) == NULL)
        return false;
    (void)snprintf(e->id, sizeof(e->id), "ut%ld%s", (long)getpid(), name);
    (void)snprintf(e->dir, sizeof(e->dir), "%s/%s", e->root, e->id);
    (void)snprintf(e->work, sizeof(e->work), "%s/work", e->dir);
    char p[256];
    if (mkdir(e->dir, 0755) != 0 || mkdir(e->work, 0755) != 0)
        return false;
    (void)snprintf(p, sizeof(p), "%s/outputs", e->work);
    if (mkdir(p, 0755) != 0)
        return false;
    (void)snprintf(p, sizeof(p), "%s/in.txt", e->work);
    if (!check_write_file(p, "input-data\n"))
        return false;
    e->dirfd = open(e->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    e->argv = dupv(argv);
    e->envp = dupv(env_default);
    e->job = (struct sandbox_job){
        .id = e->id,
        .dir = e->dir,
        .dirfd = e->dirfd,
        .work_dir = e->work,
        .argv = e->argv,
        .envp = e->envp,
        .timeout_s = 60,
    };
    return e->dirfd >= 0 && e->argv != NULL && e->envp != NULL;
}

static void
job_free(struct jobenv *e)
{
    if (e->dirfd >= 0)
        (void)close(e->dirfd);
    freev(e->argv);
    freev(e->envp);
    e->argv = e->envp = NULL;
    if (e->root[0] == '\0')
        return;
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        CHECK_INT(fs_rmtree_at(fd, e->root + 5), RC_OK);
        (void)close(fd);
    }
}

static void
cfg_make_v(struct config *cfg, const char *image, int version)
{
    char err[200];
    if (config_init(cfg) != RC_OK)
        abort();
    if (config_set(cfg, "backend", "modal", err, sizeof(err)) != RC_OK ||
        config_set(cfg, "modal_sandbox_version", version == 2 ? "2" : "1", err, sizeof(err)) !=
            RC_OK ||
        config_set(cfg, "modal_app", "labbox-unit", err, sizeof(err)) != RC_OK ||
        config_set(cfg, "modal_image", image, err, sizeof(err)) != RC_OK ||
        config_set(cfg, "modal_config", "/nonexistent/modal.toml", err, sizeof(err)) != RC_OK ||
        config_set(cfg, "data_dir", data_dir, err, sizeof(err)) != RC_OK) {
        fprintf(stderr, "config_set: %s\n", err);
        abort();
    }
    cfg->memory_mb = 256;
    cfg->cpus_milli = 1500;
    cfg->output_max_bytes = 1 << 20;
    cfg->output_max_files = 100;
}

static void
cfg_make(struct config *cfg, const char *image)
{
    cfg_make_v(cfg, image, sandbox_version);
}

/* A data_dir of its own for cfg: an empty shared store (nothing Modal said before is known). */
static void
cfg_fresh_store(struct config *cfg)
{
    static int n;
    char dir[128], err[200];
    (void)snprintf(dir, sizeof(dir), "%s/fresh-%d", data_dir, ++n);
    if (mkdir(dir, 0700) != 0 || config_set(cfg, "data_dir", dir, err, sizeof(err)) != RC_OK)
        abort();
}

/* The id's shape and the fake agree on the family we asked for. */
static void
check_family(const char *sid, int version)
{
    bool v1_shape =
        strncmp(sid, "sb-", 3) == 0 && strlen(sid) == 25 &&
        strspn(sid + 3, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == 22;
    if (v1_shape != (version == 1))
        check_fail(__FILE__, __LINE__, "sandbox id shape", "'%s' for version %d", sid, version);
    if (admin_url[0] != '\0')
        CHECK_INT(sandbox_is_v2(sid), version == 2 ? 1 : 0);
}

static struct sandbox *
sb_make(const struct config *cfg, const struct sandbox_job *job, struct rec *r)
{
    struct sandbox *sb = sandbox_new(&sandbox_modal_ops, cfg, job);
    if (sb == NULL)
        abort();
    sb->on_output = on_output;
    sb->on_note = on_note;
    sb->on_persist = on_persist;
    sb->cb_ctx = r;
    sb->deadline_ms = mono() + 120000;
    return sb;
}

/* The end of a test's job: free the sandbox, the record, the job and the config. */
static void
job_done(struct sandbox *sb, struct rec *r, struct jobenv *e, struct config *cfg)
{
    sandbox_free(sb);
    free(r->state);
    free(r);
    job_free(e);
    config_fini(cfg);
}

static enum rc
run_to_end(struct sandbox *sb, int64_t max_ms, struct sandbox_result *res, bool *done)
{
    int64_t end = mono() + max_ms;
    *done = false;
    while (!*done && mono() < end) {
        enum rc rc = sandbox_poll(sb, 500, done, res);
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

static bool
poll_until_out(struct sandbox *sb, struct rec *r, enum sandbox_stream s, const char *needle,
               int64_t max_ms)
{
    int64_t end = mono() + max_ms;
    bool done = false;
    struct sandbox_result res;
    while (!done && mono() < end) {
        if (memmem(r->out[s], r->len[s], needle, strlen(needle)) != NULL)
            return true;
        if (sandbox_poll(sb, 300, &done, &res) != RC_OK)
            return false;
    }
    return memmem(r->out[s], r->len[s], needle, strlen(needle)) != NULL;
}

static bool
read_out(int dirfd, const char *rel, char *buf, size_t cap, size_t *out_len)
{
    int fd = openat(dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap);
    (void)close(fd);
    if (n < 0)
        return false;
    *out_len = (size_t)n;
    return true;
}

static int
outputs_dir(struct jobenv *e)
{
    char p[256];
    (void)snprintf(p, sizeof(p), "%s/collected", e->dir);
    if (mkdir(p, 0755) != 0)
        return -1;
    return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* ------------------------------------------------------------------ cases */

static void
test_success(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {
        "sh", "-c",
        "echo out; echo err >&2; cat in.txt; echo \"x=$LABBOX_X\"; pwd; mkdir -p outputs/a/b && "
        "printf '\\000\\001\\002\\377' > outputs/a/b/bin.dat && echo hi > outputs/top.txt",
        NULL};
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "ok", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_check(sb), RC_OK);
    stats_reset();
    enum rc rc = sandbox_start(sb);
    if (rc != RC_OK)
        fprintf(stderr, "start: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    if (admin_url[0] != '\0') {
        /* memory_mb is the request and the hard limit, as the SDKs' memory=(r, l) sends it. */
        json_object *st0 = json_tokener_parse(r->state);
        const char *sid0 = json_get_str(st0, "sandbox_id");
        CHECK_INT(sandbox_field(sid0 ? sid0 : "?", "memory_mb"), 256);
        CHECK_INT(sandbox_field(sid0 ? sid0 : "?", "memory_mb_max"), 256);
        /* cpus likewise: the request and the hard limit. */
        CHECK_INT(sandbox_field(sid0 ? sid0 : "?", "milli_cpu"), 1500);
        CHECK_INT(sandbox_field(sid0 ? sid0 : "?", "milli_cpu_max"), 1500);
        json_object_put(st0);
    }
    struct sandbox_result res;
    bool done = false;
    rc = run_to_end(sb, 60000, &res, &done);
    if (rc != RC_OK)
        fprintf(stderr, "poll: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_OK);
    CHECK_INT(res.exit_code, 0);
    const char want_out[] = "out\ninput-data\nx=hello\n/workspace\n";
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], want_out, sizeof(want_out) - 1);
    CHECK_MEM(r->out[SANDBOX_STDERR], r->len[SANDBOX_STDERR], "err\n", 4);
    int ofd = outputs_dir(&e);
    CHECK(ofd >= 0);
    struct collect_stats cs;
    rc = sandbox_collect(sb, ofd, &cs);
    if (rc != RC_OK)
        fprintf(stderr, "collect: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK_INT(cs.files, 2);
    CHECK(!cs.over_limit);
    char buf[64];
    size_t n = 0;
    CHECK(read_out(ofd, "a/b/bin.dat", buf, sizeof(buf), &n));
    CHECK_MEM(buf, n, "\000\001\002\377", 4);
    CHECK(read_out(ofd, "top.txt", buf, sizeof(buf), &n));
    CHECK_MEM(buf, n, "hi\n", 3);
    (void)close(ofd);
    /* The state knows the sandbox; destroy terminates it. */
    json_object *st = json_tokener_parse(r->state);
    const char *sid = json_get_str(st, "sandbox_id");
    CHECK(sid != NULL && json_get_str(st, "exec_agent") != NULL);
    char sidc[128] = "";
    if (sid != NULL)
        (void)snprintf(sidc, sizeof(sidc), "%s", sid);
    json_object_put(st);
    check_family(sidc, sandbox_version);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    CHECK_INT(sandbox_running(sidc), 0);
    if (admin_url[0] != '\0') {
        /* Only the configured family's sandbox RPCs were called. V2 needs no task id polling
         * and no router access call: SandboxCreateV2 returns both. */
        bool v2 = sandbox_version == 2;
        CHECK_INT(rpc_count("SandboxCreate") > 0, !v2);
        CHECK_INT(rpc_count("SandboxGetTaskId") > 0, !v2);
        CHECK_INT(rpc_count("TaskGetCommandRouterAccess") > 0, !v2);
        CHECK_INT(rpc_count("SandboxTerminate") > 0, !v2);
        CHECK_INT(rpc_count("SandboxCreateV2") > 0, v2);
        CHECK_INT(rpc_count("SandboxTerminateV2") > 0, v2);
        CHECK_INT(rpc_count("SandboxGetTaskIdV2"), 0);
        CHECK_INT(rpc_count("SandboxGetCommandRouterAccess"), 0);
        CHECK_INT(rpc_count(v2 ? "SandboxWait" : "SandboxWaitV2"), 0);
        CHECK_INT(rpc_count("TaskExecStart") >= 2, 1);
    }
    job_done(sb, r, &e, &cfg);
}

static void
test_exit_code(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sh", "-c", "echo bye; exit 3", NULL};
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "exit", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    struct sandbox_result res;
    bool done = false;
    CHECK_INT(run_to_end(sb, 60000, &res, &done), RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_RUNTIME_ERROR);
    CHECK_INT(res.exit_code, 3);
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], "bye\n", 4);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

/* Host processes whose argv is exactly "sleep <arg>": the fake runs sandbox processes on this
 * host, so a test can see whether a killed agent left any behind. */
static int
count_sleepers(const char *arg)
{
    char want[64], buf[64], path[300];
    int n = 0;
    size_t wl = (size_t)snprintf(want, sizeof(want), "sleep%c%s", '\0', arg) + 1;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, buf, sizeof(buf));
        (void)close(fd);
        if (k == (ssize_t)wl && memcmp(buf, want, wl) == 0)
            n++;
    }
    (void)closedir(d);
    return n;
}

/* Cancel the running agent of e, expect it to end killed within 10 s, then collect; returns the
 * collect stats' file count (-1 on failure). */
static long
cancel_then_collect(struct sandbox *sb, struct rec *r, struct jobenv *e, int *out_running)
{
    int64_t t0 = mono();
    CHECK_INT(sandbox_cancel(sb), RC_OK);
    struct sandbox_result res;
    bool done = false;
    enum rc rc = run_to_end(sb, 20000, &res, &done);
    if (rc != RC_OK)
        fprintf(stderr, "poll after cancel: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK(done);
    CHECK(mono() - t0 < 10000);
    /* The agent ends as the kill made it end: SIGKILL (by the kill exec, or the sandbox's
     * termination in the fallback), never a backend failure, whatever the sandbox's state. */
    CHECK_INT(res.status, SANDBOX_SIGNALED);
    CHECK_INT(res.signo, 9);
    CHECK_INT(res.exit_code, -1);
    json_object *st = json_tokener_parse(r->state);
    const char *sid = json_get_str(st, "sandbox_id");
    *out_running = sandbox_running(sid ? sid : "?");
    json_object_put(st);
    int ofd = outputs_dir(e);
    CHECK(ofd >= 0);
    struct collect_stats cs;
    rc = sandbox_collect(sb, ofd, &cs);
    if (rc != RC_OK)
        fprintf(stderr, "collect after cancel: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    (void)close(ofd);
    return rc == RC_OK ? (long)cs.files : -1;
}

/* Cancel stops the agent but keeps the sandbox: what it wrote before is collected; destroy
 * then terminates the sandbox. */
static void
test_cancel(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sh", "-c",
                                "echo kept > outputs/before.txt; echo started; sleep 60", NULL};
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "cancel", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    CHECK(poll_until_out(sb, r, SANDBOX_STDOUT, "started\n", 20000));
    int running = -1;
    CHECK_INT(cancel_then_collect(sb, r, &e, &running), 1);
    if (admin_url[0] != '\0')
        CHECK_INT(running, 1);
    char buf[64], p[256];
    size_t n = 0;
    (void)snprintf(p, sizeof(p), "%s/collected", e.dir);
    int ofd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(ofd >= 0 && read_out(ofd, "before.txt", buf, sizeof(buf), &n));
    CHECK_MEM(buf, n, "kept\n", 5);
    if (ofd >= 0)
        (void)close(ofd);
    json_object *st = json_tokener_parse(r->state);
    char sid[128] = "?";
    if (json_get_str(st, "sandbox_id") != NULL)
        (void)snprintf(sid, sizeof(sid), "%s", json_get_str(st, "sandbox_id"));
    json_object_put(st);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    if (admin_url[0] != '\0')
        CHECK_INT(sandbox_running(sid), 0);
    job_done(sb, r, &e, &cfg);
}

/* An agent that ignores SIGTERM, wrote an output, then sleeps with helpers in the background
 * (one in its own session, one orphaned by a double fork): cancel kills all of them, and the
 * output is collected. */
static void
test_cancel_tree(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    char mark[4][24], script[512];
    for (int i = 0; i < 4; i++)
        (void)snprintf(mark[i], sizeof(mark[i]), "%d", 100000 + (int)getpid() * 4 + i);
    (void)snprintf(script, sizeof(script),
                   "trap '' TERM; mkdir -p outputs/sub && echo partial > outputs/sub/partial.txt; "
                   "sleep %s & (sleep %s &); setsid sleep %s & echo started; sleep %s",
                   mark[0], mark[1], mark[2], mark[3]);
    const char *const argv[] = {"sh", "-c", script, NULL};
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "cancel-tree", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    CHECK(poll_until_out(sb, r, SANDBOX_STDOUT, "started\n", 20000));
    bool local = server_pid > 0; /* the fake's processes are on this host */
    if (local) {
        (void)usleep(300 * 1000); /* the background sleeps are exec'd */
        for (int i = 0; i < 4; i++)
            CHECK_INT(count_sleepers(mark[i]), 1);
    }
    int running = -1;
    CHECK_INT(cancel_then_collect(sb, r, &e, &running), 1);
    if (admin_url[0] != '\0')
        CHECK_INT(running, 1);
    if (local) {
        int left = 0;
        for (int k = 0; k < 40; k++) {
            left = 0;
            for (int i = 0; i < 4; i++)
                left += count_sleepers(mark[i]);
            if (left == 0)
                break;
            (void)usleep(50 * 1000);
        }
        CHECK_INT(left, 0);
    }
    char buf[64], p[256];
    size_t n = 0;
    (void)snprintf(p, sizeof(p), "%s/collected", e.dir);
    int ofd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(ofd >= 0 && read_out(ofd, "sub/partial.txt", buf, sizeof(buf), &n));
    CHECK_MEM(buf, n, "partial\n", 8);
    if (ofd >= 0)
        (void)close(ofd);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

/* The stop exec cannot be started: the agent is given up on, but what it wrote before is still
 * collected (the sandbox is kept until then); destroy then terminates the sandbox, with the
 * agent still in it. */
static void
test_cancel_fallback(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sh", "-c", "echo x > outputs/x.txt; echo started; sleep 60", NULL};
    if (admin_url[0] == '\0') {
        free(r);
        return;
    }
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "cancel-fb", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    CHECK(poll_until_out(sb, r, SANDBOX_STDOUT, "started\n", 20000));
    json_object_put(
        admin("POST", "/inject",
              "{\"kind\":\"error\",\"rpc\":\"TaskExecStart\",\"code\":\"FAILED_PRECONDITION\","
              "\"message\":\"injected\"}"));
    int running = -1;
    CHECK_INT(cancel_then_collect(sb, r, &e, &running), 1);
    CHECK_INT(running, 1);
    if (injections_left() != 0) {
        CHECK_FAIL("the TaskExecStart injection did not fire");
        /* Do not let it break the next test; clearing also drops the image failure tag. */
        json_object_put(admin("POST", "/injections/clear", "{}"));
        json_object_put(
            admin("POST", "/inject", "{\"kind\":\"image_fail\",\"tag\":\"" FAIL_IMAGE "\"}"));
    }
    json_object *st = json_tokener_parse(r->state);
    char sid[128] = "?";
    if (json_get_str(st, "sandbox_id") != NULL)
        (void)snprintf(sid, sizeof(sid), "%s", json_get_str(st, "sandbox_id"));
    json_object_put(st);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    CHECK_INT(sandbox_running(sid), 0);
    job_done(sb, r, &e, &cfg);
}

static void
test_reattach(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {
        "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8; do echo line$i; echo e$i >&2; sleep 0.3; done; "
        "echo fin > outputs/done.txt",
        NULL};
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "attach", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    CHECK(poll_until_out(sb, r, SANDBOX_STDOUT, "line2\n", 20000));
    /* The supervisor dies: no destroy, just drop the instance. */
    char *saved = r->state ? strdup(r->state) : NULL;
    sandbox_free(sb);
    if (saved == NULL) {
        check_fail(__FILE__, __LINE__, "saved != NULL", "no persisted state");
        return;
    }
    (void)usleep(800 * 1000); /* more output happens while nobody listens */

    sb = sb_make(&cfg, &e.job, r);
    json_object_put(sb->state);
    sb->state = json_tokener_parse(saved);
    free(saved);
    sb->resume_offset[SANDBOX_STDOUT] = r->len[SANDBOX_STDOUT];
    sb->resume_offset[SANDBOX_STDERR] = r->len[SANDBOX_STDERR];
    CHECK_INT(sandbox_init(sb), RC_OK);
    stats_reset();
    enum rc rc = sandbox_attach(sb);
    if (rc != RC_OK)
        fprintf(stderr, "attach: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    if (admin_url[0] != '\0') {
        /* Re-attach asks for router access by the family's RPC, and checks liveness. */
        bool v2 = sandbox_version == 2;
        CHECK_INT(rpc_count("TaskGetCommandRouterAccess"), v2 ? 0 : 1);
        CHECK_INT(rpc_count("SandboxGetCommandRouterAccess"), v2 ? 1 : 0);
        CHECK_INT(rpc_count(v2 ? "SandboxWaitV2" : "SandboxWait"), 1);
    }
    struct sandbox_result res;
    bool done = false;
    CHECK_INT(run_to_end(sb, 30000, &res, &done), RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_OK);
    const char want[] = "line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n";
    const char want_err[] = "e1\ne2\ne3\ne4\ne5\ne6\ne7\ne8\n";
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], want, sizeof(want) - 1);
    CHECK_MEM(r->out[SANDBOX_STDERR], r->len[SANDBOX_STDERR], want_err, sizeof(want_err) - 1);
    int ofd = outputs_dir(&e);
    struct collect_stats cs;
    CHECK_INT(sandbox_collect(sb, ofd, &cs), RC_OK);
    CHECK_INT(cs.files, 1);
    (void)close(ofd);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

/* Injected UNAVAILABLE on the control plane and the router, and a cut stdio stream. */
static void
test_retries(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sh", "-c",
                                "i=0; while [ $i -lt 200 ]; do echo row$i; i=$((i+1)); done", NULL};
    if (admin_url[0] == '\0') {
        free(r);
        return;
    }
    json_object_put(admin("POST", "/inject",
                          sandbox_version == 2
                              ? "{\"kind\":\"unavailable_once\",\"rpc\":\"SandboxCreateV2\"}"
                              : "{\"kind\":\"unavailable_once\",\"rpc\":\"SandboxCreate\"}"));
    json_object_put(
        admin("POST", "/inject", "{\"kind\":\"unavailable_once\",\"rpc\":\"TaskExecStart\"}"));
    json_object_put(
        admin("POST", "/inject",
              "{\"kind\":\"throttle_once\",\"rpc\":\"AppGetOrCreate\",\"retry_after_secs\":0.2}"));
    json_object_put(admin("POST", "/inject", "{\"kind\":\"stdio_cut\",\"after_bytes\":300}"));
    json_object_put(
        admin("POST", "/inject",
              "{\"kind\":\"router_unauthenticated_once\",\"rpc\":\"TaskExecStdinWrite\"}"));
    CHECK_INT(injections_left(), 5);
    cfg_make(&cfg, "python:3.12-slim");
    cfg_fresh_store(&cfg); /* AppGetOrCreate must be asked, not read from the store */
    if (!job_make(&e, "retry", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    enum rc rc = sandbox_start(sb);
    if (rc != RC_OK)
        fprintf(stderr, "start: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    struct sandbox_result res;
    bool done = false;
    rc = run_to_end(sb, 60000, &res, &done);
    if (rc != RC_OK)
        fprintf(stderr, "poll: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK_INT(res.status, SANDBOX_OK);
    /* Every row exactly once despite the cut. */
    char want[4096];
    size_t wl = 0;
    for (int i = 0; i < 200; i++)
        wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "row%d\n", i);
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], want, wl);
    CHECK_INT(injections_left(), 0);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

static void
expect_start_error(const char *image, const char *needle)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"true", NULL};
    cfg_make(&cfg, image);
    if (!job_make(&e, "err", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    enum rc rc = sandbox_init(sb);
    if (rc == RC_OK)
        rc = sandbox_start(sb);
    CHECK_INT(rc, RC_BACKEND);
    if (strstr(sb->error, needle) == NULL)
        check_fail(__FILE__, __LINE__, "error mentions", "'%s' lacks '%s'", sb->error, needle);
    CHECK(strstr(sb->error, "as-test") == NULL && strstr(sb->error, "wrong-secret") == NULL);
    rc = sandbox_destroy(sb);
    if (rc != RC_OK)
        fprintf(stderr, "destroy after a failed start: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    job_done(sb, r, &e, &cfg);
}

static void
expect_check_error(const char *needle)
{
    struct config cfg;
    cfg_make(&cfg, "python:3.12-slim");
    struct sandbox *sb = sandbox_new(&sandbox_modal_ops, &cfg, NULL);
    enum rc rc = sandbox_init(sb);
    if (rc == RC_OK)
        rc = sandbox_check(sb);
    CHECK_INT(rc, RC_BACKEND);
    if (strstr(sb->error, needle) == NULL)
        check_fail(__FILE__, __LINE__, "error mentions", "'%s' lacks '%s'", sb->error, needle);
    sandbox_free(sb);
    config_fini(&cfg);
}

static bool
claim_none(void *ctx, const char *job_id)
{
    (void)ctx;
    (void)job_id;
    return false;
}

static bool
claim_all(void *ctx, const char *job_id)
{
    (void)ctx;
    (void)job_id;
    return true;
}

/* Start a job "sleep 60" under modal_sandbox_version version and drop it without destroy (the
 * supervisor died); its sandbox id into sid, its last state (heap) into *out_state. */
static bool
orphan_make(struct jobenv *e, const char *name, int version, char sid[128], char **out_state)
{
    struct config cfg;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sleep", "60", NULL};
    bool ok = false;
    sid[0] = '\0';
    *out_state = NULL;
    cfg_make_v(&cfg, "python:3.12-slim", version);
    if (!job_make(e, name, argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&cfg, &e->job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    enum rc rc = sandbox_start(sb);
    if (rc != RC_OK)
        fprintf(stderr, "start (version %d): %s\n", version, sb->error);
    CHECK_INT(rc, RC_OK);
    json_object *st = r->state ? json_tokener_parse(r->state) : NULL;
    if (json_get_str(st, "sandbox_id") != NULL) {
        (void)snprintf(sid, 128, "%s", json_get_str(st, "sandbox_id"));
        check_family(sid, version);
        ok = rc == RC_OK;
    }
    json_object_put(st);
    sandbox_free(sb); /* orphaned */
    *out_state = r->state;
    free(r);
    config_fini(&cfg);
    return ok;
}

/* Started jobs' sandboxes of both families survive a reap that claims them and die in one that
 * does not: reaping looks at V1 and V2 whatever the configured family. */
static void
test_reap(void)
{
    struct config cfg;
    struct jobenv e1, e2;
    char sid1[128], sid2[128];
    char *s1 = NULL, *s2 = NULL;
    CHECK(orphan_make(&e1, "reap1", 1, sid1, &s1));
    CHECK(orphan_make(&e2, "reap2", 2, sid2, &s2));
    cfg_make(&cfg, "python:3.12-slim");
    struct sandbox *svc = sandbox_new(&sandbox_modal_ops, &cfg, NULL);
    CHECK_INT(sandbox_init(svc), RC_OK);
    CHECK_INT(sandbox_reap_orphans(svc, claim_all, NULL), RC_OK);
    CHECK_INT(sandbox_running(sid1), 1);
    CHECK_INT(sandbox_running(sid2), 1);
    stats_reset();
    CHECK_INT(sandbox_reap_orphans(svc, claim_none, NULL), RC_OK);
    CHECK_INT(sandbox_running(sid1), 0);
    CHECK_INT(sandbox_running(sid2), 0);
    if (admin_url[0] != '\0') {
        /* Each sandbox was terminated by its own family's RPC, once. */
        CHECK_INT(rpc_count("SandboxList") >= 1, 1);
        CHECK_INT(rpc_count("SandboxListV2") >= 1, 1);
        CHECK_INT(rpc_count("SandboxTerminate"), 1);
        CHECK_INT(rpc_count("SandboxTerminateV2"), 1);
    }
    sandbox_free(svc);
    free(s1);
    free(s2);
    job_free(&e1);
    job_free(&e2);
    config_fini(&cfg);
}

/* A sandbox started under the other family is re-attached under this configuration: its id's
 * shape decides the RPCs, the agent's output and outputs are all there. */
static void
test_attach_other_family(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    int other = sandbox_version == 2 ? 1 : 2;
    const char *const argv[] = {"sh", "-c", "echo one; sleep 1; echo two; echo x > outputs/x.txt",
                                NULL};
    struct config ocfg;
    cfg_make_v(&ocfg, "python:3.12-slim", other);
    if (!job_make(&e, "xfam", argv) || r == NULL)
        abort();
    struct sandbox *sb = sb_make(&ocfg, &e.job, r);
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    CHECK(poll_until_out(sb, r, SANDBOX_STDOUT, "one\n", 20000));
    char *saved = r->state ? strdup(r->state) : NULL;
    sandbox_free(sb);
    config_fini(&ocfg);
    if (saved == NULL) {
        CHECK_FAIL("no persisted state");
        free(r);
        job_free(&e);
        return;
    }
    cfg_make(&cfg, "python:3.12-slim");
    sb = sb_make(&cfg, &e.job, r);
    json_object_put(sb->state);
    sb->state = json_tokener_parse(saved);
    free(saved);
    sb->resume_offset[SANDBOX_STDOUT] = r->len[SANDBOX_STDOUT];
    CHECK_INT(sandbox_init(sb), RC_OK);
    stats_reset();
    enum rc rc = sandbox_attach(sb);
    if (rc != RC_OK)
        fprintf(stderr, "attach across families: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    if (admin_url[0] != '\0') {
        CHECK_INT(
            rpc_count(other == 2 ? "SandboxGetCommandRouterAccess" : "TaskGetCommandRouterAccess"),
            1);
        CHECK_INT(
            rpc_count(other == 2 ? "TaskGetCommandRouterAccess" : "SandboxGetCommandRouterAccess"),
            0);
        CHECK_INT(rpc_count("SandboxCreate") + rpc_count("SandboxCreateV2"), 0);
    }
    struct sandbox_result res;
    bool done = false;
    CHECK_INT(run_to_end(sb, 30000, &res, &done), RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_OK);
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], "one\ntwo\n", 8);
    int ofd = outputs_dir(&e);
    struct collect_stats cs;
    CHECK_INT(sandbox_collect(sb, ofd, &cs), RC_OK);
    CHECK_INT(cs.files, 1);
    (void)close(ofd);
    json_object *st = json_tokener_parse(r->state);
    char sid[128] = "?";
    if (json_get_str(st, "sandbox_id") != NULL)
        (void)snprintf(sid, sizeof(sid), "%s", json_get_str(st, "sandbox_id"));
    json_object_put(st);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    if (admin_url[0] != '\0') {
        CHECK_INT(sandbox_running(sid), 0);
        CHECK_INT(rpc_count(other == 2 ? "SandboxTerminateV2" : "SandboxTerminate"), 1);
    }
    job_done(sb, r, &e, &cfg);
}

/* The supervisor died during create, before the sandbox id was saved, under the other family:
 * attach finds the job's sandbox by its tags in either family, terminates it, and starts the
 * job afresh in the configured family. */
static void
test_create_crash_recovery(void)
{
    struct jobenv e;
    char old_sid[128];
    char *state = NULL;
    int other = sandbox_version == 2 ? 1 : 2;
    CHECK(orphan_make(&e, "crash", other, old_sid, &state));
    json_object *st = state ? json_tokener_parse(state) : NULL;
    free(state);
    if (st == NULL) {
        CHECK_FAIL("no persisted state");
        job_free(&e);
        return;
    }
    /* As if the create never returned: phase creating, no ids yet. */
    json_object_object_del(st, "sandbox_id");
    json_object_object_del(st, "task_id");
    json_object_object_del(st, "exec_upload");
    json_object_object_del(st, "exec_agent");
    CHECK(json_set_str(st, "phase", "creating"));
    /* A short job this time. */
    freev(e.argv);
    const char *const argv[] = {"sh", "-c", "echo again", NULL};
    e.argv = dupv(argv);
    e.job.argv = e.argv;

    struct config cfg;
    struct rec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    cfg_make(&cfg, "python:3.12-slim");
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    json_object_put(sb->state);
    sb->state = st;
    CHECK_INT(sandbox_init(sb), RC_OK);
    enum rc rc = sandbox_attach(sb);
    if (rc != RC_OK)
        fprintf(stderr, "attach after a crash in create: %s\n", sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK_INT(sandbox_running(old_sid), 0);
    json_object *now = r->state ? json_tokener_parse(r->state) : NULL;
    const char *nsid = json_get_str(now, "sandbox_id");
    CHECK(nsid != NULL && strcmp(nsid, old_sid) != 0);
    if (nsid != NULL)
        check_family(nsid, sandbox_version);
    json_object_put(now);
    struct sandbox_result res;
    bool done = false;
    CHECK_INT(run_to_end(sb, 30000, &res, &done), RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_OK);
    CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], "again\n", 6);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

/* A job run to its end and destroyed; *out_res its result. */
static void
run_job(const struct config *cfg, struct jobenv *e, struct rec *r, struct sandbox_result *out_res)
{
    struct sandbox *sb = sb_make(cfg, &e->job, r);
    bool done = false;
    enum rc rc = sandbox_init(sb);
    if (rc == RC_OK)
        rc = sandbox_start(sb);
    if (rc == RC_OK)
        rc = run_to_end(sb, 60000, out_res, &done);
    if (rc != RC_OK)
        fprintf(stderr, "job %s: %s\n", e->id, sb->error);
    CHECK_INT(rc, RC_OK);
    CHECK(done);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    sandbox_free(sb);
}

/* The agent's TaskExecWait failing again and again is asked again after a growing delay, never
 * in a busy loop against the failing router; the job still succeeds. */
static void
test_wait_backoff(void)
{
    struct config cfg;
    struct jobenv e;
    struct rec *r = calloc(1, sizeof(*r));
    const char *const argv[] = {"sh", "-c", "sleep 1; echo done", NULL};
    if (admin_url[0] == '\0' || r == NULL) {
        free(r);
        return;
    }
    cfg_make(&cfg, "python:3.12-slim");
    if (!job_make(&e, "waitbackoff", argv))
        abort();
    struct sandbox *sb = sb_make(&cfg, &e.job, r);
    bool done = false;
    struct sandbox_result res;
    CHECK_INT(sandbox_init(sb), RC_OK);
    CHECK_INT(sandbox_start(sb), RC_OK);
    /* "after": the agent's waits (the pending one included) each do their work, then answer
     * UNAVAILABLE: five failed answers once the agent has ended. */
    stats_reset();
    json_object_put(admin("POST", "/inject",
                          "{\"kind\":\"error\",\"rpc\":\"TaskExecWait\",\"service\":\"router\","
                          "\"code\":\"UNAVAILABLE\",\"count\":5,\"after\":true}"));
    CHECK_INT(run_to_end(sb, 30000, &res, &done), RC_OK);
    CHECK(done);
    CHECK_INT(res.status, SANDBOX_OK);
    CHECK_INT(injections_left(), 0);
    json_object *c = calls("TaskExecWait");
    size_t n = c ? json_object_array_length(c) : 0;
    CHECK(n >= 4);
    /* The gaps between the waits, but the longest (the agent's second of work): 50 + 100 +
     * 200 (+ 400 ...) ms of backoff at least; a busy loop makes them a few ms. */
    int64_t sum = 0, longest = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t gap = json_get_i64(json_object_array_get_idx(c, i), "t", 0) -
                      json_get_i64(json_object_array_get_idx(c, i - 1), "t", 0);
        sum += gap;
        longest = gap > longest ? gap : longest;
    }
    if (n >= 4 && sum - longest < 300)
        check_fail(__FILE__, __LINE__, "backoff",
                   "%zu waits, %lld ms apart besides the longest gap", n,
                   (long long)(sum - longest));
    json_object_put(c);
    CHECK_INT(sandbox_destroy(sb), RC_OK);
    job_done(sb, r, &e, &cfg);
}

/* The agent dir's requirements.txt (and modal_image_commands) make an image: built once with
 * ImageGetOrCreate and ImageJoinStreaming, its log in the job's notes, the requirements as the
 * build context file; the next job with the same definition asks Modal nothing about images; a
 * changed requirements.txt builds again. */
static void
test_image_build(void)
{
    struct config cfg;
    struct jobenv e;
    struct sandbox_result res;
    char path[256], err[200];
    const char *const argv[] = {"sh", "-c", "echo ran", NULL};
    if (admin_url[0] == '\0')
        return;
    for (int round = 0; round < 3; round++) {
        struct rec *r = calloc(1, sizeof(*r));
        cfg_make(&cfg, "python:3.12-slim");
        if (config_set(&cfg, "modal_image_commands", "[\"ENV MPLBACKEND=Agg\"]", err,
                       sizeof(err)) != RC_OK ||
            r == NULL || !job_make(&e, "image", argv))
            abort();
        (void)snprintf(path, sizeof(path), "%s/requirements.txt", e.work);
        REQUIRE_VOID(
            check_write_file(path, round < 2 ? "pandas==2.2.2\n" : "pandas==2.2.2\nscipy\n"));
        stats_reset();
        run_job(&cfg, &e, r, &res);
        CHECK_INT(res.status, SANDBOX_OK);
        long builds = rpc_count("ImageGetOrCreate");
        if (round == 1) {
            CHECK_INT(builds, 0); /* unchanged: the stored image id */
            CHECK_INT(rpc_count("ImageJoinStreaming"), 0);
        } else {
            CHECK_INT(builds, 1);
            CHECK(strstr(r->notes, "Modal image from requirements.txt and modal_image_commands") !=
                  NULL);
            CHECK(strstr(r->notes,
                         "image build: => RUN python -m pip install -r /.requirements.txt") !=
                  NULL);
            CHECK(strstr(r->notes, "image build: => ENV MPLBACKEND=Agg") != NULL);
        }
        free(r->state);
        free(r);
        job_free(&e);
        config_fini(&cfg);
    }
    /* The fake saw the requirements as the context file of the build. */
    json_object *st = admin("GET", "/state", NULL), *imgs, *files;
    bool seen = false;
    if (st != NULL && json_object_object_get_ex(st, "images", &imgs)) {
        for (size_t i = 0; i < json_object_array_length(imgs); i++) {
            json_object *im = json_object_array_get_idx(imgs, i);
            if (json_object_object_get_ex(im, "context_files", &files) &&
                json_object_array_length(files) == 1 &&
                strcmp(json_get_str(json_object_array_get_idx(files, 0), "filename"),
                       "/.requirements.txt") == 0 &&
                json_get_i64(json_object_array_get_idx(files, 0), "bytes", 0) == 14)
                seen = true;
        }
    }
    json_object_put(st);
    CHECK(seen);
}

/* Run cmd with sh; true on exit 0. */
static bool
run_sh(const char *cmd)
{
    pid_t pid;
    int st;
    char *const argv[] = {(char[]){"sh"}, (char[]){"-c"}, (char *)(uintptr_t)cmd, NULL};
    if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Real Modal is TLS: the fake served over TLS with a test CA made here with openssl (trusted
 * through modal_ca_file), one job, and the fake's own view of the connections: every control
 * plane call of the job on one connection and every router call on one other. Without the CA
 * the certificate is refused. */
static void
test_tls_reuse(void)
{
    char dir[] = "/tmp/lbmodal-tls-XXXXXX", cmd[2048], err[200], ca[128];
    struct fake f = {-1, -1, "", ""};
    if (mkdtemp(dir) == NULL)
        abort();
    (void)snprintf(cmd, sizeof(cmd),
                   "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                   "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=labbox-test-ca && "
                   "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                   "-keyout srv.key -out srv.csr -subj /CN=127.0.0.2 && "
                   "printf 'subjectAltName=IP:127.0.0.2\\n' > ext && "
                   "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                   "-out srv.pem -days 2 -extfile ext",
                   dir);
    if (!run_sh("command -v openssl >/dev/null") || !run_sh(cmd)) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            CHECK_FAIL("openssl cannot make the test CA");
        fprintf(stderr, "test_modal_backend: no openssl: TLS case skipped\n");
        return;
    }
    char cert[128], key[128];
    (void)snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
    (void)snprintf(key, sizeof(key), "%s/srv.key", dir);
    (void)snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    const char *const extra[] = {"--host", "127.0.0.2", "--tls-cert", cert, "--tls-key", key, NULL};
    char saved_url[128], saved_admin[128];
    memcpy(saved_url, server_url, sizeof(saved_url));
    memcpy(saved_admin, admin_url, sizeof(saved_admin));
    if (!fake_spawn(&f, extra, "https://127.0.0.2")) {
        CHECK_FAIL("the fake did not start with TLS");
        fake_kill(&f);
        return;
    }
    (void)snprintf(server_url, sizeof(server_url), "%s", f.url);
    (void)snprintf(admin_url, sizeof(admin_url), "%s", f.admin);
    (void)setenv("MODAL_SERVER_URL", server_url, 1);
    for (int with_ca = 0; with_ca <= 1; with_ca++) {
        struct config cfg;
        struct jobenv e;
        struct rec *r = calloc(1, sizeof(*r));
        const char *const argv[] = {"sh", "-c", "echo over tls", NULL};
        cfg_make_v(&cfg, "python:3.12-slim", 1);
        cfg_fresh_store(&cfg);
        if ((with_ca && config_set(&cfg, "modal_ca_file", ca, err, sizeof(err)) != RC_OK) ||
            r == NULL || !job_make(&e, "tls", argv))
            abort();
        if (!with_ca) {
            struct sandbox *sb = sb_make(&cfg, &e.job, r);
            CHECK_INT(sandbox_init(sb), RC_OK);
            CHECK_INT(sandbox_start(sb), RC_BACKEND);
            if (strstr(sb->error, "cannot be reached") == NULL)
                check_fail(__FILE__, __LINE__, "TLS refused", "'%s'", sb->error);
            sandbox_free(sb);
        } else {
            struct sandbox_result res;
            stats_reset();
            run_job(&cfg, &e, r, &res);
            CHECK_INT(res.status, SANDBOX_OK);
            CHECK_MEM(r->out[SANDBOX_STDOUT], r->len[SANDBOX_STDOUT], "over tls\n", 9);
            json_object *all = calls("");
            char peer[2][96] = {"", ""};
            int n[2] = {0, 0}, others = 0;
            for (size_t i = 0; all != NULL && i < json_object_array_length(all); i++) {
                json_object *c = json_object_array_get_idx(all, i);
                int k = strcmp(json_get_str(c, "service"), "router") == 0;
                const char *pe = json_get_str(c, "peer");
                if (peer[k][0] == '\0')
                    (void)snprintf(peer[k], sizeof(peer[k]), "%s", pe);
                if (strcmp(peer[k], pe) == 0)
                    n[k]++;
                else
                    others++;
            }
            json_object_put(all);
            if (n[0] < 6 || n[1] < 6) /* several calls on each connection ... */
                check_fail(__FILE__, __LINE__, "calls per connection", "control %d, router %d",
                           n[0], n[1]);
            CHECK_INT(others, 0); /* ... and no other connection */
            CHECK(strcmp(peer[0], peer[1]) != 0);
        }
        free(r->state);
        free(r);
        job_free(&e);
        config_fini(&cfg);
    }
    fake_kill(&f);
    memcpy(server_url, saved_url, sizeof(server_url));
    memcpy(admin_url, saved_admin, sizeof(admin_url));
    (void)setenv("MODAL_SERVER_URL", server_url, 1);
    int tfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(tfd >= 0 && fs_rmtree_at(tfd, dir + 5) == RC_OK);
    if (tfd >= 0)
        (void)close(tfd);
}

/* modal_sandbox_version accepts 1 and 2 only, and the error names the key. */
static void
test_config_key(void)
{
    struct config cfg;
    char err[200] = "";
    CHECK_INT(config_init(&cfg), RC_OK);
    CHECK_INT((int)cfg.modal_sandbox_version, 1);
    CHECK_INT(config_set(&cfg, "modal_sandbox_version", "2", err, sizeof(err)), RC_OK);
    CHECK_INT((int)cfg.modal_sandbox_version, 2);
    const char *bad[] = {"0", "3", "v2", "", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(config_set(&cfg, "modal_sandbox_version", bad[i], err, sizeof(err)), RC_BADREQ);
        CHECK(strstr(err, "modal_sandbox_version") != NULL);
    }
    CHECK_INT((int)cfg.modal_sandbox_version, 2);
    config_fini(&cfg);
}

/* Root running check-config or doctor against labbox's data_dir neither makes the shared store
 * there (root's 0700 directory would lock labbox out of it) nor uses one. */
static void
test_store_owner(void)
{
    char dir[64], store[128];
    struct modal_store *s = NULL;
    if (geteuid() != 0) {
        fprintf(stderr, "test_modal_backend: store owner: not root, skipped\n");
        return;
    }
    (void)snprintf(dir, sizeof(dir), "/tmp/lbmodal-owner-XXXXXX");
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    REQUIRE_VOID(chown(dir, 65534, 65534) == 0);
    (void)snprintf(store, sizeof(store), "%s/modal", dir);
    CHECK_INT(modal_store_open(dir, "http://127.0.0.1:1", "ak-test", "as-test", &s), RC_IO);
    CHECK(s == NULL);
    CHECK(access(store, F_OK) != 0);
    modal_store_close(s);
    /* a store that someone else made in labbox's own data_dir is not used either */
    REQUIRE_VOID(chown(dir, 0, 0) == 0);
    REQUIRE_VOID(mkdir(store, 0700) == 0 && chown(store, 65534, 65534) == 0);
    CHECK_INT(modal_store_open(dir, "http://127.0.0.1:1", "ak-test", "as-test", &s), RC_IO);
    modal_store_close(s);
    CHECK(rmdir(store) == 0 && rmdir(dir) == 0);
}

int
main(void)
{
    const char *url = getenv("LABBOX_TEST_MODAL_URL");
    if (url != NULL && url[0] != '\0') {
        (void)snprintf(server_url, sizeof(server_url), "%s", url);
        const char *adm = getenv("LABBOX_TEST_MODAL_ADMIN");
        if (adm != NULL)
            (void)snprintf(admin_url, sizeof(admin_url), "%s", adm);
    } else if (!fake_start()) {
        fake_stop();
        return skip_or_fail("node or tests/fake-modal/server.mjs is not available");
    }
    (void)curl_global_init(CURL_GLOBAL_DEFAULT);
    (void)snprintf(data_dir, sizeof(data_dir), "/tmp/lbmodal-data-XXXXXX");
    REQUIRE(mkdtemp(data_dir) != NULL);
    (void)setenv("MODAL_SERVER_URL", server_url, 1);
    (void)setenv("MODAL_TOKEN_ID", "ak-test", 1);
    (void)setenv("MODAL_TOKEN_SECRET", "as-test", 1);
    (void)unsetenv("MODAL_PROFILE");
    (void)unsetenv("MODAL_ENVIRONMENT");
    (void)unsetenv("MODAL_IMAGE_BUILDER_VERSION");

    test_config_key();
    test_store_owner();
    /* LABBOX_TEST_MODAL_SANDBOX_VERSION=1 or 2 runs one family only (for debugging). */
    const char *only = getenv("LABBOX_TEST_MODAL_SANDBOX_VERSION");
    for (int v = 1; v <= 2; v++) {
        if (only != NULL && only[0] != '\0' && (only[0] - '0') != v)
            continue;
        sandbox_version = v;
        fprintf(stderr, "test_modal_backend: modal_sandbox_version %d\n", v);
        test_success();
        test_exit_code();
        test_cancel();
        test_cancel_tree();
        test_cancel_fallback();
        test_reattach();
        test_retries();
        test_reap();
        test_attach_other_family();
        test_create_crash_recovery();
        test_wait_backoff();
        expect_start_error(FAIL_IMAGE, "image build failed");
    }
    sandbox_version = 1;
    test_image_build();
    test_tls_reuse();

    (void)setenv("MODAL_TOKEN_SECRET", "wrong-secret", 1);
    expect_start_error("python:3.12-slim", "Modal rejected the token");
    expect_check_error("Modal rejected the token");
    (void)unsetenv("MODAL_TOKEN_SECRET");
    expect_check_error("no Modal credentials");
    (void)setenv("MODAL_TOKEN_SECRET", "as-test", 1);
    (void)setenv("MODAL_SERVER_URL", "http://127.0.0.1:1", 1);
    expect_check_error("cannot be reached");

    fake_stop();
    int tfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(tfd >= 0 && fs_rmtree_at(tfd, data_dir + 5) == RC_OK);
    if (tfd >= 0)
        (void)close(tfd);
    return check_done("modal_backend");
}
