/* test_jobcache: status reads from the cache are never stale: a record replaced (even a
 * hundred times by records of the same size, so inode numbers are reused, or rewritten in
 * place), a deleted job, a
 * queued job rendered per read; repeated reads of an unchanged record do not load it; readers
 * in threads while a writer replaces the record never see an older record than the one before
 * their read began. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/jobcache.h"
#include "core/jobstore.h"
#include "store_fixture.h"
#include "util/fsutil.h"

static int renders;

/* The view: the record's detail (what the tests change) for every job but a queued one. */
static enum rc
render(void *ctx, uint64_t variant, int dirfd, const struct job *job, char **out, size_t *out_len)
{
    (void)ctx;
    (void)variant;
    (void)dirfd;
    renders++;
    *out = NULL;
    *out_len = 0;
    if (job->state == JOB_QUEUED)
        return RC_OK;
    *out = strdup(job->detail);
    if (*out == NULL)
        return RC_NOMEM;
    *out_len = strlen(*out);
    return RC_OK;
}

/* A published job (queued) with an empty detail; its dir fd in *out_dfd. */
static void
new_job(struct jobstore *js, struct job *job, int *out_dfd)
{
    struct jobstore_stage st;
    jobstore_job_init(job);
    REQUIRE_VOID(jobstore_stage_begin(js, &st) == RC_OK);
    memcpy(job->id, st.id, sizeof(job->id));
    (void)snprintf(job->backend, sizeof(job->backend), "local");
    REQUIRE_VOID(jobstore_stage_publish(js, &st, job) == RC_OK);
    REQUIRE_VOID(jobstore_open_job(js, job->id, out_dfd) == RC_OK);
}

static void
set_detail(int dfd, struct job *job, const char *detail)
{
    (void)snprintf(job->detail, sizeof(job->detail), "%s", detail);
    CHECK_INT(jobstore_save(dfd, job), RC_OK);
}

/* get: the view of id now ("" for none, "-" for an error). */
static const char *
get(struct jobcache *c, const char *id, char *buf, size_t len)
{
    struct jobcache_ref ref;
    enum rc rc = jobcache_get(c, id, 0, &ref);
    (void)snprintf(buf, len, "%s", rc == RC_NOTFOUND ? "404" : rc != RC_OK ? "-" : "");
    if (rc == RC_OK && ref.text != NULL)
        (void)snprintf(buf, len, "%.*s", (int)ref.len, ref.text);
    jobcache_put(&ref);
    return buf;
}

static void
test_fresh(struct jobstore *js, struct jobcache *c)
{
    struct job job;
    int dfd = -1;
    char buf[64], want[64];
    unsigned long long hits, loads, hits0, loads0;
    new_job(js, &job, &dfd);
    REQUIRE_VOID(dfd >= 0);

    /* Queued: no text, rendered per read by the caller; the record itself is kept. */
    struct jobcache_ref ref;
    REQUIRE_VOID(jobcache_get(c, job.id, 0, &ref) == RC_OK);
    CHECK(ref.text == NULL);
    CHECK_INT(ref.job->state, JOB_QUEUED);
    CHECK_STR(ref.job->id, job.id);
    jobcache_put(&ref);

    CHECK_INT(jobstore_set_state(&job, JOB_STAGING, REASON_NONE, NULL), RC_OK);
    set_detail(dfd, &job, "first");
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "first");
    /* Unchanged: no load, no render. */
    jobcache_stats(c, &hits0, &loads0);
    int r0 = renders;
    for (int i = 0; i < 100; i++)
        CHECK_STR(get(c, job.id, buf, sizeof(buf)), "first");
    jobcache_stats(c, &hits, &loads);
    CHECK_INT(renders, r0);
    CHECK_INT((int)(hits - hits0), 100);
    CHECK_INT((int)(loads - loads0), 0);

    /* Replaced twice between reads by records of the same size: the second file usually gets
     * the inode number of the one read before (freed by the first replacement), but never its
     * handle; each read shows the record just written. */
    for (int i = 0; i < 60; i++) {
        (void)snprintf(want, sizeof(want), "detail %04d", i);
        set_detail(dfd, &job, "interim....");
        set_detail(dfd, &job, want);
        if (strcmp(get(c, job.id, buf, sizeof(buf)), want) != 0) {
            CHECK_STR(buf, want);
            break;
        }
    }

    /* A reference stays good while the record changes under it. */
    REQUIRE_VOID(jobcache_get(c, job.id, 0, &ref) == RC_OK);
    set_detail(dfd, &job, "changed");
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "changed");
    CHECK(ref.text != NULL && ref.len == 11 && memcmp(ref.text, "detail 0059", 11) == 0);
    jobcache_put(&ref);
    jobcache_put(&ref); /* an empty ref */

    /* Rewritten in place (a full disk's last resort, same size): the ctime tells. The pause
     * puts the write in a later clock tick on kernels without fine-grained timestamps. */
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "changed");
    usleep(20000);
    char *text = NULL;
    size_t tlen = 0;
    REQUIRE_VOID(fs_read_all(dfd, "job.json", 1 << 20, &text, &tlen) == RC_OK);
    char *at = strstr(text, "changed");
    REQUIRE_VOID(at != NULL);
    memcpy(at, "CHANGED", 7);
    int rfd = openat(dfd, "job.json", O_WRONLY);
    CHECK(rfd >= 0 && pwrite(rfd, text, tlen, 0) == (ssize_t)tlen);
    if (rfd >= 0)
        close(rfd);
    free(text);
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "CHANGED");

    /* Deleted: gone at once, and again. */
    close(dfd);
    CHECK_INT(jobstore_unlink(js, job.id), RC_OK);
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "404");
    CHECK_STR(get(c, job.id, buf, sizeof(buf)), "404");
    CHECK_INT(jobstore_purge(js, job.id), RC_OK);
    CHECK_STR(get(c, "not-an-id", buf, sizeof(buf)), "404");
    CHECK_STR(get(c, "aaaaaaaaaaaaaaaaaaaaaaaaaa", buf, sizeof(buf)), "404");
    jobstore_job_fini(&job);
}

/* Readers race a writer: a reader that starts after record n was written must see n or later. */
struct race {
    struct jobcache *c;
    const char *id;
    atomic_int written; /* the last record number fully written */
    atomic_bool stop;
    atomic_int stale;
};

static void *
reader(void *arg)
{
    struct race *rc = arg;
    char buf[64];
    while (!atomic_load(&rc->stop)) {
        int before = atomic_load(&rc->written);
        int seen = -1;
        if (sscanf(get(rc->c, rc->id, buf, sizeof(buf)), "n %d", &seen) != 1 || seen < before)
            atomic_fetch_add(&rc->stale, 1);
    }
    return NULL;
}

static void
test_race(struct jobstore *js, struct jobcache *c)
{
    struct job job;
    int dfd = -1;
    char d[32];
    pthread_t t[4];
    new_job(js, &job, &dfd);
    REQUIRE_VOID(dfd >= 0);
    CHECK_INT(jobstore_set_state(&job, JOB_STAGING, REASON_NONE, NULL), RC_OK);
    set_detail(dfd, &job, "n 0");
    struct race rc = {.c = c, .id = job.id};
    for (int i = 0; i < 4; i++)
        REQUIRE_VOID(pthread_create(&t[i], NULL, reader, &rc) == 0);
    for (int n = 1; n <= 200; n++) {
        (void)snprintf(d, sizeof(d), "n %d", n);
        set_detail(dfd, &job, d);
        atomic_store(&rc.written, n);
    }
    atomic_store(&rc.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(atomic_load(&rc.stale), 0);
    close(dfd);
    CHECK_INT(jobstore_remove(js, job.id), RC_OK);
    jobstore_job_fini(&job);
}

int
main(void)
{
    struct store_fixture f;
    REQUIRE(store_fixture_open(&f, "jobcache"));
    struct jobstore_ident id;
    if (jobstore_record_ident(&f.js, "aaaaaaaaaaaaaaaaaaaaaaaaaa", &id) == RC_UNSUPPORTED) {
        fprintf(stderr, "jobcache: %s gives no file handles; the cache keeps nothing there\n",
                f.dir);
    }
    struct jobcache *c = jobcache_new(&f.js, render, NULL);
    REQUIRE(c != NULL);
    test_fresh(&f.js, c);
    test_race(&f.js, c);
    jobcache_free(c);
    store_fixture_close(&f);
    return check_done("jobcache");
}
