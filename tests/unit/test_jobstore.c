/* test_jobstore: the typed job record (save/load round trip, the public view), staging and
 * publishing an upload, the outputs index with 1,000 long paths, cancel and lock. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/jobstore.h"
#include "json.h"
#include "store_fixture.h"
#include "util/clock.h"
#include "util/fsutil.h"

static int
entries(int dirfd)
{
    int n = 0;
    DIR *d = fs_opendir(dirfd);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

static void
fill(struct job *job)
{
    jobstore_job_init(job);
    memcpy(job->id, "abcdefghijklmnopqrstuvwxya", ID_LEN + 1);
    (void)snprintf(job->backend, sizeof(job->backend), "local");
    job->created_ms = 1795694400123LL;
    CHECK_INT(jobstore_job_add_input(job, "data.csv", 42, "text/csv", "ab12"), RC_OK);
    CHECK_INT(jobstore_job_add_input(job, "b.json", 7, "application/json", ""), RC_OK);
}

/* A file of n bytes at <dirfd>/name. */
static void
put_file(int dirfd, const char *name, size_t n)
{
    char buf[256];
    memset(buf, 'x', sizeof(buf));
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && n <= sizeof(buf) && write(fd, buf, n) == (ssize_t)n);
    if (fd >= 0)
        close(fd);
}

static void
test_record(int dfd)
{
    struct job job, back;
    fill(&job);
    job.owner.kind = OWNER_USER;
    (void)snprintf(job.owner.name, sizeof(job.owner.name), "alice");
    job.round = 7;
    /* What a terminal record counts as kept: regular files below the job dir, the record aside,
     * links not followed. */
    put_file(dfd, "log.jsonl", 100);
    CHECK_INT(mkdirat(dfd, "outputs", 0755), 0);
    int outs_fd = openat(dfd, "outputs", O_RDONLY | O_DIRECTORY);
    put_file(outs_fd, "a.txt", 20);
    CHECK_INT(symlinkat("/etc/passwd", outs_fd, "link"), 0);
    close(outs_fd);
    CHECK_INT(jobstore_set_state(&job, JOB_SUCCEEDED, REASON_NONE, NULL), RC_CONFLICT);
    CHECK_INT(jobstore_set_state(&job, JOB_STAGING, REASON_NONE, NULL), RC_OK);
    CHECK(job.staging_ms > 0);
    CHECK_INT(jobstore_set_state(&job, JOB_RUNNING, REASON_NONE, NULL), RC_OK);
    job.has_usage = true;
    job.usage = (struct job_usage){1234, 800, 51200};
    job.exit_code = 3;
    job.has_result = true;
    job.result = SANDBOX_RUNTIME_ERROR;
    job.stop = 2;
    json_object *sb = json_object_new_object();
    CHECK(json_set_str(sb, "container", "c0ffee"));
    jobstore_job_set_sandbox(&job, sb);
    json_object_put(sb);
    CHECK_INT(jobstore_set_state(&job, JOB_COLLECTING, REASON_NONE, NULL), RC_OK);
    CHECK_INT(jobstore_save(dfd, &job), RC_OK);
    CHECK_INT(job.kept_bytes, 0); /* measured for terminal records only */
    CHECK_INT(jobstore_set_state(&job, JOB_FAILED, REASON_EXIT_NONZERO, "exit 3"), RC_OK);
    CHECK_INT(jobstore_save(dfd, &job), RC_OK);
    CHECK_INT(job.kept_bytes, 120);
    CHECK_INT(jobstore_measure(dfd), 120);

    CHECK_INT(jobstore_load(dfd, &back), RC_OK);
    CHECK_STR(back.id, job.id);
    CHECK_INT(back.state, JOB_FAILED);
    CHECK_INT(back.reason, REASON_EXIT_NONZERO);
    CHECK_STR(back.detail, "exit 3");
    CHECK_STR(back.backend, "local");
    CHECK_INT(back.created_ms, job.created_ms);
    CHECK_INT(back.staging_ms, job.staging_ms);
    CHECK_INT(back.started_ms, job.started_ms);
    CHECK_INT(back.finished_ms, job.finished_ms);
    CHECK_INT(back.exit_code, 3);
    CHECK_INT(back.signo, 0);
    CHECK(back.has_usage);
    CHECK_INT(back.usage.cpu_ms, 800);
    CHECK(back.has_result);
    CHECK_INT(back.result, SANDBOX_RUNTIME_ERROR);
    CHECK_INT(back.stop, 2);
    REQUIRE_VOID(back.ninputs == 2);
    CHECK_STR(back.inputs[0].name, "data.csv");
    CHECK_INT(back.inputs[0].size, 42);
    CHECK_STR(back.inputs[1].type, "application/json");
    CHECK_STR(json_get_str(back.sandbox, "container"), "c0ffee");
    CHECK(jobstore_owner_equal(&back.owner, &job.owner));
    CHECK_INT(back.round, 7);
    CHECK_INT(back.kept_bytes, 120);

    /* The public view: the documented members in order, nothing private. */
    json_object *outs = json_object_new_array();
    json_object *pub = jobstore_public(&back, -1, outs, JOBSTORE_VIEW_OWNER, 3600);
    REQUIRE_VOID(pub != NULL);
    const char *text = json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    static const char *const order[] = {"\"id\"",         "\"state\"",          "\"reason\"",
                                        "\"detail\"",     "\"backend\"",        "\"owner\"",
                                        "\"created_at\"", "\"started_at\"",     "\"finished_at\"",
                                        "\"expires_at\"", "\"queue_position\"", "\"exit_code\"",
                                        "\"signal\"",     "\"usage\"",          "\"inputs\"",
                                        "\"outputs\"",    "\"links\""};
    const char *at = text;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *p = strstr(at, order[i]);
        CHECK(p != NULL);
        at = p ? p : at;
    }
    CHECK(strstr(text, "sandbox") == NULL && strstr(text, "c0ffee") == NULL);
    CHECK(strstr(text, "\"result\"") == NULL && strstr(text, "created_ms") == NULL);
    CHECK(strstr(text, "\"created_at\":\"2026-11-26T12:00:00.123Z\"") != NULL);
    CHECK(strstr(text, "\"archive\":\"/api/jobs/abcdefghijklmnopqrstuvwxya/outputs.zip\"") != NULL);
    CHECK(strstr(text, "\"signal\":null") != NULL);
    char expires[64], ts[32];
    clock_iso(back.finished_ms + 3600 * 1000, ts, sizeof(ts));
    (void)snprintf(expires, sizeof(expires), "\"expires_at\":\"%s\"", ts);
    CHECK(strstr(text, expires) != NULL);
    CHECK(strstr(text, "\"owner\":\"alice\"") != NULL);
    CHECK(strstr(text, "owner_kind") == NULL && strstr(text, "round") == NULL &&
          strstr(text, "kept_bytes") == NULL);
    json_object_put(pub);
    /* Without identity the owner is not shown; a list leaves outputs out; an owner that is an
     * address is never shown (null). */
    pub = jobstore_public(&back, -1, outs, JOBSTORE_VIEW_NO_OUTPUTS, 3600);
    text = json_object_to_json_string(pub);
    CHECK(strstr(text, "owner") == NULL && strstr(text, "\"links\"") != NULL);
    CHECK(!json_object_object_get_ex(pub, "outputs", NULL));
    json_object_put(pub);
    back.owner.kind = OWNER_ADDRESS;
    pub = jobstore_public(&back, -1, outs, JOBSTORE_VIEW_OWNER, 3600);
    text = json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PLAIN);
    CHECK(strstr(text, "\"owner\":null") != NULL && strstr(text, "alice") == NULL);
    json_object_put(pub);
    /* A live job has no end yet, so no expiry. */
    back.state = JOB_RUNNING;
    pub = jobstore_public(&back, -1, NULL, 0, 3600);
    CHECK(pub != NULL && strstr(json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PLAIN),
                                "\"expires_at\":null") != NULL);
    json_object_put(pub);
    json_object_put(outs);
    jobstore_job_fini(&back);
    jobstore_job_fini(&job);
    jobstore_job_fini(&job); /* fini twice is safe */

    /* Not a record: RC_IO, never a half-filled job. */
    int fd = openat(dfd, "job.json", O_WRONLY | O_TRUNC);
    CHECK(write(fd, "{\"id\":\"nope\"}", 13) == 13);
    close(fd);
    CHECK_INT(jobstore_load(dfd, &back), RC_IO);
    jobstore_job_fini(&back);
}

static void
test_stage(struct jobstore *js)
{
    struct jobstore_stage st;
    struct job job;
    int fd = -1;
    REQUIRE_VOID(jobstore_stage_begin(js, &st) == RC_OK);
    CHECK_INT(jobstore_stage_create_input(&st, "a.csv", &fd), RC_OK);
    CHECK(write(fd, "x,y\n", 4) == 4);
    close(fd);
    CHECK_INT(jobstore_stage_create_input(&st, "a.csv", &fd), RC_CONFLICT);
    CHECK(jobstore_input_is_reserved("params.json"));
    CHECK(!jobstore_input_is_reserved("a.csv"));
    CHECK_INT(jobstore_stage_write_params(&st, "{}", 2), RC_OK);
    /* An aborted stage leaves nothing in tmp/. */
    char id[ID_LEN + 1];
    memcpy(id, st.id, sizeof(id));
    jobstore_stage_abort(js, &st);
    jobstore_stage_abort(js, &st);
    int dfd = -1;
    CHECK_INT(jobstore_open_job(js, id, &dfd), RC_NOTFOUND);
    CHECK_INT(entries(js->tmp_fd), 0);

    REQUIRE_VOID(jobstore_stage_begin(js, &st) == RC_OK);
    CHECK_INT(jobstore_stage_create_input(&st, "in.csv", &fd), RC_OK);
    close(fd);
    jobstore_job_init(&job);
    memcpy(job.id, st.id, sizeof(job.id));
    (void)snprintf(job.backend, sizeof(job.backend), "local");
    CHECK_INT(jobstore_job_add_input(&job, "in.csv", 0, "text/plain", ""), RC_OK);
    CHECK_INT(jobstore_stage_publish(js, &st, &job), RC_OK);
    CHECK_INT(jobstore_open_job(js, job.id, &dfd), RC_OK);
    struct job back;
    CHECK_INT(jobstore_load(dfd, &back), RC_OK);
    CHECK_INT(back.state, JOB_QUEUED);
    jobstore_job_fini(&back);

    /* Cancel, lock and log. */
    CHECK(!jobstore_cancel_requested(dfd));
    CHECK_INT(jobstore_request_cancel(dfd), RC_OK);
    CHECK(jobstore_cancel_requested(dfd));
    jobstore_cancel_clear(dfd);
    CHECK(!jobstore_cancel_requested(dfd));
    CHECK(!jobstore_lock_is_held(dfd));
    int lock = jobstore_lock_take(dfd);
    CHECK(lock >= 0);
    CHECK(jobstore_lock_take(dfd) < 0);
    close(lock);
    int log = jobstore_log_open(dfd, JOBSTORE_LOG_READ);
    CHECK(log >= 0);
    close(log);
    int in = jobstore_inputs_open(dfd);
    CHECK(in >= 0 && faccessat(in, "in.csv", F_OK, 0) == 0);
    close(in);

    /* The outputs index of 1,000 outputs with 1 KiB paths: the record stays small. */
    int ofd = -1;
    CHECK_INT(jobstore_outputs_begin(dfd, &ofd), RC_OK);
    close(ofd);
    json_object *idx = json_object_new_array(), *got = NULL;
    char path[1100];
    memset(path, 'p', 1000);
    for (int i = 0; i < 1000; i++) {
        (void)snprintf(path + 1000, 100, "%04d", i);
        json_object *e = json_object_new_object();
        CHECK(json_set_str(e, "path", path) && json_set_i64(e, "size", i));
        CHECK_INT(json_object_array_add(idx, e), 0);
    }
    CHECK_INT(jobstore_outputs_commit(dfd, idx), RC_OK);
    CHECK_INT(jobstore_outputs_index(dfd, &got), RC_OK);
    CHECK(got != NULL && json_object_array_length(got) == 1000);
    int out = jobstore_outputs_open(dfd);
    CHECK(out >= 0);
    close(out);
    json_object_put(got);
    json_object_put(idx);
    CHECK_INT(jobstore_save(dfd, &job), RC_OK);
    struct stat rec;
    CHECK(fstatat(dfd, "job.json", &rec, 0) == 0 && rec.st_size < 4096);
    char rel[256];
    CHECK_INT(jobstore_output_relpath(job.id, "a%20b", rel, sizeof(rel)), RC_OK);
    CHECK(strstr(rel, "/outputs/a%20b") != NULL);
    CHECK_INT(jobstore_output_relpath(job.id, "a%20b", rel, 20), RC_TOOBIG);
    close(dfd);

    CHECK_INT(jobstore_remove(js, job.id), RC_OK);
    CHECK_INT(jobstore_remove(js, job.id), RC_NOTFOUND);
    jobstore_job_fini(&job);
}

/* The inputs of a dropped folder: nested paths staged without following links, a file and a
 * folder of one name refused, and a re-run's stage linked from the job. */
static void
test_folders(struct jobstore *js)
{
    struct jobstore_stage st, st2;
    struct job job, job2;
    int fd = -1, dfd = -1;
    REQUIRE_VOID(jobstore_stage_begin(js, &st) == RC_OK);
    CHECK_INT(jobstore_stage_create_input(&st, "run1/day1/a.csv", &fd), RC_OK);
    CHECK(write(fd, "x\n", 2) == 2);
    close(fd);
    CHECK_INT(jobstore_stage_create_input(&st, "run1/b.csv", &fd), RC_OK);
    close(fd);
    CHECK_INT(jobstore_stage_create_input(&st, "run1/b.csv", &fd), RC_CONFLICT);
    CHECK_INT(jobstore_stage_create_input(&st, "run1/b.csv/c.csv", &fd), RC_CONFLICT);
    CHECK_INT(jobstore_stage_create_input(&st, "run1", &fd), RC_CONFLICT);
    /* A link planted where a folder goes is never followed. */
    CHECK(symlinkat("/tmp", st.inputs_fd, "evil") == 0);
    CHECK_INT(jobstore_stage_create_input(&st, "evil/x.csv", &fd), RC_CONFLICT);
    CHECK(unlinkat(st.inputs_fd, "evil", 0) == 0);
    CHECK_INT(jobstore_stage_write_params(&st, "{\"a\": 1}", 8), RC_OK);
    jobstore_job_init(&job);
    memcpy(job.id, st.id, sizeof(job.id));
    CHECK_INT(jobstore_job_add_input(&job, "run1/day1/a.csv", 2, "text/plain", ""), RC_OK);
    CHECK_INT(jobstore_job_add_input(&job, "run1/b.csv", 0, "text/plain", ""), RC_OK);
    CHECK_INT(jobstore_stage_publish(js, &st, &job), RC_OK);
    REQUIRE_VOID(jobstore_open_job(js, job.id, &dfd) == RC_OK);

    /* The inputs zip's index: every input, then params.json. */
    json_object *idx = NULL;
    CHECK_INT(jobstore_inputs_index(dfd, &job, &idx), RC_OK);
    CHECK_STR(
        json_object_to_json_string_ext(idx,
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        "[{\"path\":\"run1/day1/a.csv\"},{\"path\":\"run1/b.csv\"},{\"path\":\"params.json\"}]");
    int in = jobstore_inputs_open(dfd);
    CHECK(!jobstore_zip_exists(dfd, JOBSTORE_ZIP_INPUTS));
    CHECK_INT(jobstore_zip_build(dfd, JOBSTORE_ZIP_INPUTS, in, idx), RC_OK);
    CHECK(jobstore_zip_exists(dfd, JOBSTORE_ZIP_INPUTS));
    CHECK(!jobstore_zip_exists(dfd, JOBSTORE_ZIP_OUTPUTS));
    json_object_put(idx);
    char *text = NULL;
    size_t len = 0;
    CHECK_INT(jobstore_params_read(dfd, &text, &len), RC_OK);
    CHECK(text != NULL && len == 8 && strcmp(text, "{\"a\": 1}") == 0);
    free(text);
    char rel[256];
    CHECK_INT(jobstore_input_relpath(job.id, "run1/b.csv", rel, sizeof(rel)), RC_OK);
    CHECK(strstr(rel, "/inputs/run1/b.csv") != NULL);
    CHECK_INT(jobstore_zip_relpath(job.id, JOBSTORE_ZIP_INPUTS, rel, sizeof(rel)), RC_OK);
    CHECK(strstr(rel, "/inputs.zip") != NULL);

    /* A re-run: the same files (the same inodes), params left out for new ones. */
    REQUIRE_VOID(jobstore_stage_begin(js, &st2) == RC_OK);
    CHECK_INT(jobstore_stage_link_inputs(&st2, dfd, true), RC_OK);
    struct stat a, b;
    CHECK(fstatat(in, "run1/day1/a.csv", &a, 0) == 0);
    CHECK(fstatat(st2.inputs_fd, "run1/day1/a.csv", &b, 0) == 0 && a.st_ino == b.st_ino);
    CHECK(faccessat(st2.inputs_fd, "params.json", F_OK, 0) != 0);
    jobstore_job_init(&job2);
    memcpy(job2.id, st2.id, sizeof(job2.id));
    CHECK_INT(jobstore_stage_publish(js, &st2, &job2), RC_OK);
    CHECK(jobstore_has_params(dfd));
    close(in);
    close(dfd);
    CHECK_INT(jobstore_remove(js, job.id), RC_OK);
    CHECK_INT(jobstore_remove(js, job2.id), RC_OK);
    jobstore_job_fini(&job);
    jobstore_job_fini(&job2);
}

int
main(void)
{
    struct store_fixture f;
    REQUIRE(store_fixture_open(&f, "jobstore"));
    int dfd = open(f.dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    REQUIRE(mkdirat(dfd, "rec", 0755) == 0);
    int rfd = openat(dfd, "rec", O_RDONLY | O_DIRECTORY);
    REQUIRE(rfd >= 0);
    test_record(rfd);
    close(rfd);
    test_stage(&f.js);
    test_folders(&f.js);
    close(dfd);
    store_fixture_close(&f);
    return check_done("jobstore");
}
