/* jobstore: job directories, job.json and the public job object. */
#include "core/jobstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "json.h"
#include "log.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

static int
open_sub(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0711) != 0 && errno != EEXIST) {
        log_errno("mkdir %s", name);
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        log_errno("open %s", name);
    return fd;
}

enum rc
jobstore_open(struct jobstore *js, const struct config *cfg)
{
    js->cfg = cfg;
    js->data_fd = js->jobs_fd = js->tmp_fd = -1;
    if (fs_mkdir_p(cfg->data_dir, 0711) != RC_OK)
        return RC_IO;
    js->data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (js->data_fd < 0) {
        log_errno("open %s", cfg->data_dir);
        return RC_IO;
    }
    js->jobs_fd = open_sub(js->data_fd, "jobs");
    js->tmp_fd = open_sub(js->data_fd, "tmp");
    if (js->jobs_fd < 0 || js->tmp_fd < 0) {
        jobstore_close(js);
        return RC_IO;
    }
    return RC_OK;
}

void
jobstore_close(struct jobstore *js)
{
    if (js->data_fd >= 0)
        close(js->data_fd);
    if (js->jobs_fd >= 0)
        close(js->jobs_fd);
    if (js->tmp_fd >= 0)
        close(js->tmp_fd);
    js->data_fd = js->jobs_fd = js->tmp_fd = -1;
}

enum rc
jobstore_open_job(const struct jobstore *js, const char *id, int *out_fd)
{
    *out_fd = -1;
    if (id == NULL || !id_is_valid(id, strlen(id)))
        return RC_NOTFOUND;
    int fd = openat(js->jobs_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RC_NOTFOUND : RC_IO;
    *out_fd = fd;
    return RC_OK;
}

enum rc
jobstore_read(int job_dirfd, json_object **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    enum rc rc = fs_read_all(job_dirfd, "job.json", JOB_JSON_MAX, &text, &len);
    if (rc != RC_OK)
        return rc;
    json_tokener *tok = json_tokener_new();
    json_object *obj = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    free(text);
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        log_err("job.json is not a JSON object");
        return RC_IO;
    }
    *out = obj;
    return RC_OK;
}

enum rc
jobstore_write(int job_dirfd, json_object *job)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(job, JSON_C_TO_STRING_PLAIN, &len);
    if (s == NULL)
        return RC_NOMEM;
    return fs_write_atomic(job_dirfd, "job.json", s, len);
}

enum job_state
jobstore_state(json_object *job)
{
    enum job_state st;
    if (!jobstate_parse(json_get_str(job, "state"), &st))
        return JOB_FAILED;
    return st;
}

enum rc
jobstore_set_state(json_object *job, enum job_state to, enum job_reason reason, const char *detail)
{
    enum job_state from = jobstore_state(job);
    if (!jobstate_can_transition(from, to))
        return RC_CONFLICT;
    char ts[32];
    clock_iso(clock_real_ms(), ts, sizeof(ts));
    bool ok = json_set_str(job, "state", jobstate_str(to)) &&
              json_set_str(job, "reason", jobstate_reason_str(reason)) &&
              json_set_str(job, "detail", detail);
    if (ok && to == JOB_RUNNING)
        ok =
            json_set_str(job, "started_at", ts) && json_set_i64(job, "started_ms", clock_real_ms());
    if (ok && jobstate_is_terminal(to))
        ok = json_set_str(job, "finished_at", ts) &&
             json_set_i64(job, "finished_ms", clock_real_ms());
    return ok ? RC_OK : RC_NOMEM;
}

json_object *
jobstore_public(json_object *job, long queue_position)
{
    /* Public members in the order of api.md; anything else stays private. */
    /* job.json also holds private members (sandbox, result, stop, *_ms): never shown. */
    static const char *const keys[] = {
        "id",          "state",     "reason", "detail", "backend", "created_at", "started_at",
        "finished_at", "exit_code", "signal", "usage",  "inputs",  "outputs"};
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(job, keys[i], &v))
            json_object_object_add(o, keys[i], json_object_get(v));
        else
            json_object_object_add(o, keys[i], NULL);
        if (i == 7) {
            json_object_object_add(o, "queue_position",
                                   queue_position >= 0 ? json_object_new_int64(queue_position)
                                                       : NULL);
        }
    }
    const char *id = json_get_str(job, "id");
    char buf[128];
    json_object *links = json_object_new_object();
    if (links != NULL && id != NULL) {
        static const char *const names[][2] = {{"self", ""},
                                               {"events", "/events"},
                                               {"logs", "/logs"},
                                               {"outputs", "/outputs"},
                                               {"archive", "/outputs.zip"},
                                               {"cancel", "/cancel"}};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            (void)snprintf(buf, sizeof(buf), "/api/jobs/%s%s", id, names[i][1]);
            json_object_object_add(links, names[i][0], json_object_new_string(buf));
        }
    }
    json_object_object_add(o, "links", links);
    return o;
}

enum rc
jobstore_foreach(const struct jobstore *js, jobstore_each_fn *fn, void *ctx)
{
    DIR *d = fs_opendir(js->jobs_fd);
    if (d == NULL)
        return RC_IO;
    struct dirent *de;
    bool go_on = true;
    while (go_on && (de = readdir(d)) != NULL) {
        int dfd = -1;
        json_object *job = NULL;
        if (!id_is_valid(de->d_name, strlen(de->d_name)) ||
            jobstore_open_job(js, de->d_name, &dfd) != RC_OK)
            continue;
        if (jobstore_read(dfd, &job) == RC_OK)
            go_on = fn(ctx, de->d_name, dfd, job);
        else
            log_warn("job=%s has no readable job.json; leaving it alone", de->d_name);
        json_object_put(job);
        close(dfd);
    }
    closedir(d);
    return RC_OK;
}

bool
jobstore_lock_is_held(int job_dirfd)
{
    int fd = openat(job_dirfd, "lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases our lock if we got it */
    return held;
}

enum rc
jobstore_remove(const struct jobstore *js, const char *id)
{
    char tmp[64];
    if (!id_is_valid(id, strlen(id)))
        return RC_NOTFOUND;
    (void)snprintf(tmp, sizeof(tmp), "del-%s", id);
    if (renameat(js->jobs_fd, id, js->tmp_fd, tmp) != 0) {
        if (errno == ENOENT)
            return RC_NOTFOUND;
        log_errno("rename job %s", id);
        return RC_IO;
    }
    return fs_rmtree_at(js->tmp_fd, tmp);
}
