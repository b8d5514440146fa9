/* test_sandbox: the policy every backend shares (fcgi/sandbox/sandbox.c): exit -> result,
 * resume-offset skipping, the I/O deadline, temp files and the tar stream -> outputs helper. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "jobs/collect.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "util/fsutil.h"

/* A backend with no hooks but fini (what sandbox_free calls). */
static void
nop_fini(struct sandbox *sb)
{
    (void)sb;
}
static const struct sandbox_ops test_ops = {.name = "test", .fini = nop_fini};

/* What reached on_output, per stream. */
struct rec {
    char out[SANDBOX_STREAM__MAX][256];
    size_t len[SANDBOX_STREAM__MAX];
    int calls;
};

static void
on_output(void *ctx, enum sandbox_stream s, const char *p, size_t n)
{
    struct rec *r = ctx;
    r->calls++;
    if (r->len[s] + n <= sizeof(r->out[s])) {
        memcpy(r->out[s] + r->len[s], p, n);
        r->len[s] += n;
    }
}

/* A job directory under /tmp: <root>/job, with its O_PATH fd. */
struct jobenv {
    char root[64];
    char dir[96];
    int dirfd;
    struct sandbox_job job;
};

static bool
job_make(struct jobenv *e)
{
    memset(e, 0, sizeof(*e));
    e->dirfd = -1;
    (void)snprintf(e->root, sizeof(e->root), "/tmp/lbsandbox-XXXXXX");
    if (mkdtemp(e->root) == NULL)
        return false;
    (void)snprintf(e->dir, sizeof(e->dir), "%s/job", e->root);
    if (mkdir(e->dir, 0755) != 0)
        return false;
    e->dirfd = open(e->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    e->job = (struct sandbox_job){.id = "job", .dir = e->dir, .dirfd = e->dirfd};
    return e->dirfd >= 0;
}

static void
job_free(struct jobenv *e)
{
    if (e->dirfd >= 0)
        (void)close(e->dirfd);
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && e->root[0] != '\0')
        CHECK_INT(fs_rmtree_at(fd, e->root + 5), RC_OK);
    if (fd >= 0)
        (void)close(fd);
}

/* entries: names in the directory at path, "." and ".." left out. */
static int
entries(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    (void)closedir(d);
    return n;
}

/*** exit -> result ***/

static void
expect(int code, int signo, bool oom, enum sandbox_status st, int want_code, int want_sig)
{
    struct sandbox_result r = {.wall_ms = 7, .cpu_ms = 5, .max_rss_kb = 3};
    sandbox_result_from_exit(&r, code, signo, oom);
    CHECK_STR(sandbox_status_str(r.status), sandbox_status_str(st));
    CHECK_INT(r.exit_code, want_code);
    CHECK_INT(r.signo, want_sig);
    CHECK(r.wall_ms == 7 && r.cpu_ms == 5 && r.max_rss_kb == 3); /* usage is the caller's */
}

static void
test_from_exit(void)
{
    expect(0, 0, false, SANDBOX_OK, 0, 0);
    expect(3, 0, false, SANDBOX_RUNTIME_ERROR, 3, 0);
    expect(128, 0, false, SANDBOX_RUNTIME_ERROR, 128, 0);
    expect(255, 0, false, SANDBOX_RUNTIME_ERROR, 255, 0);
    /* 128 + n is death by signal n, on every backend alike. */
    expect(129, 0, false, SANDBOX_SIGNALED, -1, 1);
    expect(137, 0, false, SANDBOX_SIGNALED, -1, 9);
    expect(139, 0, false, SANDBOX_SIGNALED, -1, 11);
    expect(192, 0, false, SANDBOX_SIGNALED, -1, 64);
    expect(193, 0, false, SANDBOX_RUNTIME_ERROR, 193, 0);
    expect(-1, 15, false, SANDBOX_SIGNALED, -1, 15);
    expect(-1, 0, false, SANDBOX_RUNTIME_ERROR, -1, 0); /* the backend knows no status */
    /* The OOM hint turns a failed end into OOM, never a success. */
    expect(137, 0, true, SANDBOX_OOM, -1, 9);
    expect(-1, 9, true, SANDBOX_OOM, -1, 9);
    expect(1, 0, true, SANDBOX_OOM, 1, 0);
    expect(0, 0, true, SANDBOX_OK, 0, 0);
    /* No backend reports a timeout or a cancel: those are the supervisor's. */
    for (int code = -1; code < 256; code++) {
        struct sandbox_result r;
        sandbox_result_from_exit(&r, code, 0, code % 2 == 0);
        CHECK(r.status != SANDBOX_TIMEOUT && r.status != SANDBOX_INTERNAL);
    }
}

/* Wait statuses as waitpid(2) reports them (glibc's W_EXITCODE: no child process, so the test
 * also runs under valgrind, whose leak check would fail a forked child). */
enum { EXITED_0, EXITED_5, EXITED_137, KILLED_TERM };

static int
wstatus(int how)
{
    static const int ws[] = {W_EXITCODE(0, 0), W_EXITCODE(5, 0), W_EXITCODE(128 + 9, 0),
                             W_EXITCODE(0, SIGTERM)};
    return ws[how];
}

static void
test_from_wait(void)
{
    struct sandbox_result r;
    sandbox_result_from_wait(&r, wstatus(EXITED_0), false);
    CHECK_INT(r.status, SANDBOX_OK);
    CHECK_INT(r.exit_code, 0);
    sandbox_result_from_wait(&r, wstatus(EXITED_5), false);
    CHECK_INT(r.status, SANDBOX_RUNTIME_ERROR);
    CHECK_INT(r.exit_code, 5);
    sandbox_result_from_wait(&r, wstatus(EXITED_137), false); /* bubblewrap's report of a SIGKILL */
    CHECK_INT(r.status, SANDBOX_SIGNALED);
    CHECK_INT(r.signo, 9);
    CHECK_INT(r.exit_code, -1);
    sandbox_result_from_wait(&r, wstatus(KILLED_TERM), false);
    CHECK_INT(r.status, SANDBOX_SIGNALED);
    CHECK_INT(r.signo, SIGTERM);
    sandbox_result_from_wait(&r, wstatus(EXITED_137), true);
    CHECK_INT(r.status, SANDBOX_OOM);
    CHECK(!sandbox_status_parse("canceled", &r.status)); /* gone: a cancel is the supervisor's */
}

/*** resume-offset skipping ***/

static void
test_emit(void)
{
    struct config cfg;
    struct rec r = {0};
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    struct sandbox *sb = sandbox_new(&test_ops, &cfg, NULL);
    REQUIRE_VOID(sb != NULL);
    sb->on_output = on_output;
    sb->cb_ctx = &r;
    /* An attach after 5 bytes of stdout and 2 of stderr were logged. */
    sb->resume_offset[SANDBOX_STDOUT] = 5;
    sb->resume_offset[SANDBOX_STDERR] = 2;
    sandbox_emit_at(sb, SANDBOX_STDOUT, 0, "0123", 4); /* all logged already */
    CHECK_INT(r.calls, 0);
    sandbox_emit_at(sb, SANDBOX_STDOUT, 4, "456789", 6); /* straddles the offset */
    CHECK_MEM(r.out[0], r.len[0], "56789", 5);
    CHECK_INT(sb->resume_offset[SANDBOX_STDOUT], 10);
    sandbox_emit_at(sb, SANDBOX_STDOUT, 0, "0123456789AB", 12); /* a reopened stream */
    CHECK_MEM(r.out[0], r.len[0], "56789AB", 7);
    CHECK_INT(sb->resume_offset[SANDBOX_STDOUT], 12);
    sandbox_emit_at(sb, SANDBOX_STDERR, 2, "cd", 2); /* exactly at the offset */
    CHECK_MEM(r.out[1], r.len[1], "cd", 2);
    sandbox_emit(sb, SANDBOX_STDERR, "ef", 2); /* plain emit counts too */
    CHECK_INT(sb->resume_offset[SANDBOX_STDERR], 6);
    sandbox_emit_at(sb, SANDBOX_STDERR, 4, "efg", 3);
    CHECK_MEM(r.out[1], r.len[1], "cdefg", 5);
    int calls = r.calls;
    sandbox_emit_at(sb, SANDBOX_STDERR, 7, "", 0); /* nothing: no call */
    sandbox_emit(sb, SANDBOX_STDERR, "", 0);
    CHECK_INT(r.calls, calls);
    sandbox_emit_at(sb, SANDBOX_STDERR, 9, "X", 1); /* a gap: delivered, counted from there */
    CHECK_MEM(r.out[1], r.len[1], "cdefgX", 6);
    CHECK_INT(sb->resume_offset[SANDBOX_STDERR], 10);
    CHECK_MEM(r.out[0], r.len[0], "56789AB", 7); /* streams are independent */
    sb->on_output = NULL;
    sandbox_emit(sb, SANDBOX_STDOUT, "C", 1); /* no sink: still counted */
    CHECK_INT(sb->resume_offset[SANDBOX_STDOUT], 13);
    sandbox_free(sb);
    config_fini(&cfg);
}

/*** the I/O deadline ***/

static void
test_io_ms(void)
{
    struct config cfg;
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    struct sandbox *sb = sandbox_new(&test_ops, &cfg, NULL);
    REQUIRE_VOID(sb != NULL);
    sb->deadline_ms = 0;
    CHECK_INT(sandbox_io_ms(sb, 30000), 30000);
    sb->deadline_ms = clock_mono_ms() + 3600000;
    CHECK_INT(sandbox_io_ms(sb, 30000), 30000);
    sb->deadline_ms = clock_mono_ms() + 5000;
    long ms = sandbox_io_ms(sb, 30000);
    CHECK(ms > 4000 && ms <= 5000);
    sb->deadline_ms = clock_mono_ms() - 1000;
    CHECK_INT(sandbox_io_ms(sb, 30000), 1);
    sandbox_free(sb);
    config_fini(&cfg);
}

/*** temp files and tar streams ***/

static void
test_tar_cap(void)
{
    struct config cfg;
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    cfg.output_max_bytes = 1000;
    cfg.output_max_files = 10;
    CHECK_INT(sandbox_tar_cap(&cfg), 1000 + (10 + 16) * 1536 + (1 << 20));
    cfg.output_max_files = UINT64_MAX / 1000;
    CHECK(sandbox_tar_cap(&cfg) == UINT64_MAX);
    cfg.output_max_files = 10;
    cfg.output_max_bytes = UINT64_MAX - 100;
    CHECK(sandbox_tar_cap(&cfg) == UINT64_MAX);
    config_fini(&cfg);
}

static void
test_tmpfile(void)
{
    struct config cfg;
    struct jobenv e;
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    REQUIRE_VOID(job_make(&e));
    struct sandbox *sb = sandbox_new(&test_ops, &cfg, &e.job);
    REQUIRE_VOID(sb != NULL);
    int fd = -1;
    CHECK_INT(sandbox_tmpfile(sb, &fd), RC_OK);
    CHECK(fd >= 0);
    CHECK_INT(entries(e.dir), 0); /* unlinked */
    CHECK_INT(fs_write_all(fd, "abc", 3), RC_OK);
    if (fd >= 0)
        (void)close(fd);
    /* A job dir that is gone: an error with a reason, no fd. */
    struct sandbox_job gone = e.job;
    gone.dirfd = -1;
    sb->job = &gone;
    CHECK_INT(sandbox_tmpfile(sb, &fd), RC_BACKEND);
    CHECK_INT(fd, -1);
    CHECK(sb->error[0] != '\0');
    sandbox_free(sb);
    job_free(&e);
    config_fini(&cfg);
}

/* A tar of outputs/ holding n files of size bytes each (f0 .. f<n-1>), in memory. */
struct buf {
    char *p;
    size_t len, cap;
};

static enum rc
buf_write(void *ctx, const void *p, size_t len)
{
    struct buf *b = ctx;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            return RC_NOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return RC_OK;
}

static bool
make_tar(const char *root, int n, size_t size, struct buf *out)
{
    char path[256], name[32];
    (void)snprintf(path, sizeof(path), "%s/src", root);
    if (mkdir(path, 0755) != 0)
        return false;
    (void)snprintf(path, sizeof(path), "%s/src/outputs", root);
    if (mkdir(path, 0755) != 0)
        return false;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *data = malloc(size);
    bool ok = dfd >= 0 && data != NULL;
    for (int i = 0; ok && i < n; i++) {
        memset(data, 'a' + i % 26, size);
        (void)snprintf(name, sizeof(name), "f%d", i);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ok = fd >= 0 && fs_write_all(fd, data, size) == RC_OK;
        if (fd >= 0)
            (void)close(fd);
    }
    free(data);
    if (dfd >= 0)
        (void)close(dfd);
    (void)snprintf(path, sizeof(path), "%s/src", root);
    int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *out = (struct buf){0};
    ok = ok && src >= 0 && collect_make_tar(src, "", 0, 0, buf_write, out) == RC_OK;
    if (src >= 0)
        (void)close(src);
    return ok;
}

/* feed writes the stream in chunks of 1000 bytes as a backend's transfer would, stopping at the
 * first refusal; the result of the last write. */
static enum rc
feed(struct sandbox_tar_in *t, const char *p, size_t len)
{
    enum rc rc = RC_OK;
    for (size_t off = 0; off < len && rc == RC_OK; off += 1000)
        rc = sandbox_tar_in_write(t, p + off, len - off < 1000 ? len - off : 1000);
    return rc;
}

static int
outputs_dir(struct jobenv *e)
{
    char path[160];
    (void)snprintf(path, sizeof(path), "%s/out", e->dir);
    if (fs_rmtree_at(AT_FDCWD, path) != RC_OK || mkdir(path, 0755) != 0)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void
test_tar_in(void)
{
    struct config cfg;
    struct jobenv e;
    struct buf tar = {0};
    struct collect_stats st;
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    REQUIRE_VOID(job_make(&e));
    REQUIRE_VOID(make_tar(e.root, 60, 30000, &tar));
    struct sandbox *sb = sandbox_new(&test_ops, &cfg, &e.job);
    REQUIRE_VOID(sb != NULL);

    /* Within the caps: every file arrives. */
    cfg.output_max_bytes = 10u << 20;
    cfg.output_max_files = 100;
    struct sandbox_tar_in t;
    CHECK_INT(sandbox_tar_in_open(sb, &t), RC_OK);
    CHECK_INT(entries(e.dir), 0); /* the temp file has no name */
    CHECK_INT(feed(&t, tar.p, tar.len), RC_OK);
    CHECK(!t.cut);
    int od = outputs_dir(&e);
    CHECK_INT(sandbox_tar_in_extract(&t, od, &st), RC_OK);
    CHECK_INT(st.files, 60);
    CHECK_INT(st.bytes, 60 * 30000);
    CHECK(!st.over_limit);
    (void)close(od);
    sandbox_tar_in_close(&t);
    sandbox_tar_in_close(&t); /* twice is fine */

    /* A stream longer than sandbox_tar_cap: refused at the cap, never written past it; what
     * came before stays, and the job is over its limit. */
    cfg.output_max_bytes = 200000;
    cfg.output_max_files = 1;
    uint64_t cap = sandbox_tar_cap(&cfg);
    REQUIRE_VOID(cap < tar.len);
    CHECK_INT(sandbox_tar_in_open(sb, &t), RC_OK);
    CHECK_INT(feed(&t, tar.p, tar.len), RC_TOOBIG);
    CHECK(t.cut);
    CHECK(t.bytes <= cap);
    struct stat fst;
    CHECK(fstat(t.fd, &fst) == 0 && (uint64_t)fst.st_size == t.bytes);
    od = outputs_dir(&e);
    CHECK_INT(sandbox_tar_in_extract(&t, od, &st), RC_OK);
    CHECK(st.over_limit);
    CHECK(st.files >= 1 && st.bytes <= cfg.output_max_bytes);
    (void)close(od);
    sandbox_tar_in_close(&t);

    /* Not a tar: a backend error with a reason. */
    cfg.output_max_bytes = 10u << 20;
    cfg.output_max_files = 100;
    sb->error[0] = '\0';
    CHECK_INT(sandbox_tar_in_open(sb, &t), RC_OK);
    char junk[4096];
    memset(junk, 'x', sizeof(junk));
    CHECK_INT(feed(&t, junk, sizeof(junk)), RC_OK);
    od = outputs_dir(&e);
    CHECK_INT(sandbox_tar_in_extract(&t, od, &st), RC_BACKEND);
    CHECK(strstr(sb->error, "not a valid tar") != NULL);
    CHECK_INT(entries(e.dir), 1); /* only out/: nothing left behind */
    (void)close(od);
    sandbox_tar_in_close(&t);

    free(tar.p);
    sandbox_free(sb);
    job_free(&e);
    config_fini(&cfg);
}

int
main(void)
{
    test_from_exit();
    test_from_wait();
    test_emit();
    test_io_ms();
    test_tar_cap();
    test_tmpfile();
    test_tar_in();
    return check_done("sandbox");
}
