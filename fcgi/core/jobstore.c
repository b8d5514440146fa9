/* jobstore: job directories, the typed job record, its artifacts and the public job object. */
#include "core/jobstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/outzip.h"
#include "json.h"
#include "log.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/owner.h"

/* The layout (see jobstore.h). Nothing outside this file spells these names. */
#define LAYOUT_RECORD      "job.json"
#define LAYOUT_LOG         "log.jsonl"
#define LAYOUT_LOCK        "lock"
#define LAYOUT_SPARE       ".job.json.spare"
#define LAYOUT_CANCEL      "cancel"
#define LAYOUT_OUTPUTS_IDX "outputs.json"
#define LAYOUT_OUTPUTS_ZIP "outputs.zip"
#define LAYOUT_INPUTS_ZIP  "inputs.zip"
#define LAYOUT_INPUTS      "inputs"
#define LAYOUT_OUTPUTS     "outputs"
#define LAYOUT_OUTPUTS_TMP "outputs.tmp"
#define LAYOUT_JOBS        "jobs"
#define LAYOUT_TMP         "tmp"
#define PARAMS_NAME        "params.json"
#define STAGE_PREFIX       "up-"
#define DELETE_PREFIX      "del-"
#define OUTPUTS_IDX_MAX    (16u << 20) /* output_max_files entries of OUTPUT_PATH_MAX paths */
#define MODE_PRIVATE       0600        /* job.json, lock, cancel, outputs.json */
#define MODE_LOG           0640        /* log.jsonl: labbox's own group may read it */
#define SPARE_ROOM         (16u << 10) /* what a record may grow by over a job's life */
#define BLOCK              4096u

/*** the record ***/

void
jobstore_job_init(struct job *job)
{
    memset(job, 0, sizeof(*job));
    job->state = JOB_QUEUED;
    job->reason = REASON_NONE;
    job->exit_code = -1;
}

void
jobstore_job_fini(struct job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->ninputs; i++) {
        free(job->inputs[i].name);
        free(job->inputs[i].type);
    }
    free(job->inputs);
    json_object_put(job->sandbox);
    jobstore_job_init(job);
}

enum rc
jobstore_job_add_input(struct job *job, const char *name, uint64_t size, const char *type,
                       const char *sha256_hex)
{
    struct job_input *v = realloc(job->inputs, (job->ninputs + 1) * sizeof(*v));
    if (v == NULL)
        return RC_NOMEM;
    job->inputs = v;
    struct job_input *in = &v[job->ninputs];
    memset(in, 0, sizeof(*in));
    in->name = strdup(name);
    in->type = strdup(type);
    if (in->name == NULL || in->type == NULL) {
        free(in->name);
        free(in->type);
        return RC_NOMEM;
    }
    in->size = size;
    (void)snprintf(in->sha256, sizeof(in->sha256), "%s", sha256_hex ? sha256_hex : "");
    job->ninputs++;
    return RC_OK;
}

void
jobstore_job_set_sandbox(struct job *job, json_object *state)
{
    json_object_put(job->sandbox);
    job->sandbox = state ? json_object_get(state) : NULL;
}

bool
jobstore_owner_equal(const struct job_owner *a, const struct job_owner *b)
{
    return a->kind == b->kind && strcmp(a->name, b->name) == 0;
}

uint64_t
jobstore_input_bytes(const struct job *job)
{
    uint64_t n = 0;
    for (size_t i = 0; i < job->ninputs; i++)
        n += job->inputs[i].size;
    return n;
}

static void
set_detail(struct job *job, const char *detail)
{
    /* Truncation keeps a prefix of a human-readable text: acceptable here. */
    (void)snprintf(job->detail, sizeof(job->detail), "%s", detail ? detail : "");
}

enum rc
jobstore_set_state(struct job *job, enum job_state to, enum job_reason reason, const char *detail)
{
    if (!jobstate_can_transition(job->state, to))
        return RC_CONFLICT;
    job->state = to;
    job->reason = reason;
    set_detail(job, detail);
    if (to == JOB_STAGING)
        job->staging_ms = clock_real_ms();
    if (to == JOB_RUNNING)
        job->started_ms = clock_real_ms();
    if (jobstate_is_terminal(to))
        job->finished_ms = clock_real_ms();
    return RC_OK;
}

/*** record <-> JSON ***/

/* The stored form keeps the *_ms members (the truth) and the ISO times beside them for people
 * reading job.json; loading reads the *_ms members only. */
static const struct {
    const char *ms, *iso;
    size_t off;
} times[] = {
    {"created_ms", "created_at", offsetof(struct job, created_ms)},
    {"staging_ms", NULL, offsetof(struct job, staging_ms)},
    {"started_ms", "started_at", offsetof(struct job, started_ms)},
    {"finished_ms", "finished_at", offsetof(struct job, finished_ms)},
};

static int64_t *
time_at(struct job *job, size_t i)
{
    return (int64_t *)(void *)((char *)job + times[i].off);
}

static int64_t
time_of(const struct job *job, size_t i)
{
    return *(const int64_t *)(const void *)((const char *)job + times[i].off);
}

/* add: obj[key] = v, taking v; false (v released) on failure or when v is NULL by OOM. */
static bool
add(json_object *obj, const char *key, json_object *v, bool may_be_null)
{
    if (v == NULL && !may_be_null)
        return false;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static json_object *
iso_or_null(int64_t ms)
{
    char ts[32];
    if (ms <= 0)
        return NULL;
    clock_iso(ms, ts, sizeof(ts));
    return json_object_new_string(ts);
}

static json_object *
inputs_json(const struct job *job)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr != NULL && i < job->ninputs; i++) {
        const struct job_input *in = &job->inputs[i];
        json_object *o = json_object_new_object();
        bool ok = o != NULL && add(o, "name", json_object_new_string(in->name), false) &&
                  add(o, "size", json_object_new_int64((int64_t)in->size), false) &&
                  add(o, "type", json_object_new_string(in->type), false) &&
                  add(o, "sha256", json_object_new_string(in->sha256), false);
        if (!ok || json_object_array_add(arr, o) != 0) {
            json_object_put(o);
            json_object_put(arr);
            return NULL;
        }
    }
    return arr;
}

static json_object *
usage_json(const struct job *job)
{
    if (!job->has_usage)
        return NULL;
    json_object *o = json_object_new_object();
    if (o == NULL ||
        !add(o, "wall_ms", json_object_new_int64((int64_t)job->usage.wall_ms), false) ||
        !add(o, "cpu_ms", json_object_new_int64((int64_t)job->usage.cpu_ms), false) ||
        !add(o, "max_rss_kb", json_object_new_int64((int64_t)job->usage.max_rss_kb), false)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *
str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* The members the API shows, in the order of docs/api.md; queue_position and outputs are the
 * public view's own. */
static bool
add_public(json_object *o, const struct job *job, bool with_extras, unsigned view,
           long queue_position, json_object *outputs, uint64_t ttl_s)
{
    bool ok = add(o, "id", json_object_new_string(job->id), false) &&
              add(o, "state", json_object_new_string(jobstate_str(job->state)), false) &&
              add(o, "reason", str_or_null(jobstate_reason_str(job->reason)), true) &&
              add(o, "detail", str_or_null(job->detail), true) &&
              add(o, "backend", json_object_new_string(job->backend), false);
    if (ok && with_extras && (view & JOBSTORE_VIEW_OWNER)) {
        bool user = job->owner.kind == OWNER_USER;
        ok = add(o, "owner", user ? json_object_new_string(job->owner.name) : NULL, !user);
    }
    for (size_t i = 0; ok && i < sizeof(times) / sizeof(times[0]); i++)
        if (times[i].iso != NULL)
            ok = add(o, times[i].iso, iso_or_null(time_of(job, i)), true);
    if (ok && with_extras) /* retention deletes a finished job ttl_s after its end */
        ok = add(o, "expires_at",
                 jobstate_is_terminal(job->state) && job->finished_ms > 0
                     ? iso_or_null(job->finished_ms + (int64_t)ttl_s * 1000)
                     : NULL,
                 true);
    if (ok && with_extras)
        ok = add(o, "queue_position",
                 queue_position >= 0 ? json_object_new_int64(queue_position) : NULL, true);
    ok = ok &&
         add(o, "exit_code", job->exit_code >= 0 ? json_object_new_int(job->exit_code) : NULL,
             true) &&
         add(o, "signal", job->signo > 0 ? json_object_new_int(job->signo) : NULL, true) &&
         add(o, "usage", usage_json(job), !job->has_usage) &&
         add(o, "inputs", inputs_json(job), false);
    if (ok && with_extras && !(view & JOBSTORE_VIEW_NO_OUTPUTS))
        ok = add(o, "outputs", outputs ? json_object_get(outputs) : NULL, true);
    return ok;
}

/* The stored names of owner kinds, indexed by enum job_owner_kind. */
static const char *const owner_kinds[OWNER__MAX] = {
    NULL,      /* OWNER_NONE: no member */
    "address", /* OWNER_ADDRESS */
    "user",    /* OWNER_USER */
};

static json_object *
record_json(const struct job *job)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    bool ok = add_public(o, job, false, 0, -1, NULL, 0);
    for (size_t i = 0; ok && i < sizeof(times) / sizeof(times[0]); i++)
        ok = add(o, times[i].ms, json_object_new_int64(time_of(job, i)), false);
    if (ok && (unsigned)job->owner.kind < OWNER__MAX && owner_kinds[job->owner.kind] != NULL)
        ok = add(o, "owner", json_object_new_string(job->owner.name), false) &&
             add(o, "owner_kind", json_object_new_string(owner_kinds[job->owner.kind]), false);
    ok = ok && add(o, "round", json_object_new_int64(job->round), false) &&
         add(o, "kept_bytes", json_object_new_int64((int64_t)job->kept_bytes), false);
    if (ok && job->sandbox != NULL)
        ok = add(o, "sandbox", json_object_get(job->sandbox), false);
    if (ok && job->has_result)
        ok = add(o, "result", json_object_new_string(sandbox_status_str(job->result)), false) &&
             add(o, "stop", json_object_new_int(job->stop), false);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static enum rc
load_inputs(struct job *job, json_object *arr)
{
    size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *name = json_get_str(e, "name");
        const char *type = json_get_str(e, "type");
        int64_t size = json_get_i64(e, "size", 0);
        if (name == NULL)
            continue;
        enum rc rc = jobstore_job_add_input(job, name, size > 0 ? (uint64_t)size : 0,
                                            type ? type : "", json_get_str(e, "sha256"));
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

/* An owner the record names with a known kind and a name that fits; otherwise nobody. */
static void
load_owner(struct job *job, json_object *o)
{
    const char *kind = json_get_str(o, "owner_kind");
    const char *name = json_get_str(o, "owner");
    for (int k = OWNER_NONE + 1; kind != NULL && name != NULL && k < OWNER__MAX; k++) {
        if (strcmp(kind, owner_kinds[k]) == 0 && name[0] != '\0' &&
            strlen(name) < sizeof(job->owner.name)) {
            job->owner.kind = (enum job_owner_kind)k;
            memcpy(job->owner.name, name, strlen(name) + 1);
        }
    }
}

static enum rc
record_from_json(struct job *job, json_object *o)
{
    const char *id = json_get_str(o, "id");
    const char *backend = json_get_str(o, "backend");
    if (id == NULL || !id_is_valid(id, strlen(id)) ||
        !jobstate_parse(json_get_str(o, "state"), &job->state))
        return RC_IO;
    memcpy(job->id, id, ID_LEN + 1);
    if (!jobstate_reason_parse(json_get_str(o, "reason"), &job->reason))
        job->reason = REASON_NONE;
    set_detail(job, json_get_str(o, "detail"));
    (void)snprintf(job->backend, sizeof(job->backend), "%s", backend ? backend : "");
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
        *time_at(job, i) = json_get_i64(o, times[i].ms, 0);
    job->exit_code = (int)json_get_i64(o, "exit_code", -1);
    job->signo = (int)json_get_i64(o, "signal", 0);
    json_object *v = NULL;
    if (json_object_object_get_ex(o, "usage", &v) && json_object_is_type(v, json_type_object)) {
        job->has_usage = true;
        job->usage.wall_ms = (uint64_t)json_get_i64(v, "wall_ms", 0);
        job->usage.cpu_ms = (uint64_t)json_get_i64(v, "cpu_ms", 0);
        job->usage.max_rss_kb = (uint64_t)json_get_i64(v, "max_rss_kb", 0);
    }
    if (json_object_object_get_ex(o, "sandbox", &v) && json_object_is_type(v, json_type_object))
        job->sandbox = json_object_get(v);
    job->has_result = sandbox_status_parse(json_get_str(o, "result"), &job->result);
    job->stop = (int)json_get_i64(o, "stop", 0);
    load_owner(job, o);
    job->round = json_get_i64(o, "round", 0);
    int64_t kept = json_get_i64(o, "kept_bytes", 0);
    job->kept_bytes = kept > 0 ? (uint64_t)kept : 0;
    return json_object_object_get_ex(o, "inputs", &v) ? load_inputs(job, v) : RC_OK;
}

static enum rc
parse_json(const char *text, size_t len, json_type want, json_object **out)
{
    *out = NULL;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return RC_NOMEM;
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    bool whole = obj != NULL && json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!whole || !json_object_is_type(obj, want)) {
        json_object_put(obj);
        return RC_IO;
    }
    *out = obj;
    return RC_OK;
}

/* load_text: a record read whole (text: rc says how the read went) into *out. */
static enum rc
load_text(struct job *out, enum rc rc, char *text, size_t len)
{
    json_object *o = NULL;
    if (rc == RC_OK)
        rc = parse_json(text, len, json_type_object, &o);
    if (rc == RC_OK)
        rc = record_from_json(out, o);
    if (rc == RC_IO || rc == RC_TOOBIG) {
        log_err("%s is not a readable job record", LAYOUT_RECORD);
        rc = RC_IO;
    }
    json_object_put(o);
    free(text);
    return rc;
}

enum rc
jobstore_load(int dirfd, struct job *out)
{
    char *text = NULL;
    size_t len = 0;
    jobstore_job_init(out);
    enum rc rc = fs_read_all(dirfd, LAYOUT_RECORD, JOB_JSON_MAX, &text, &len);
    return load_text(out, rc, text, len);
}

/* The bytes of the regular files below dirfd (symlinks are not followed), the record aside. */
static uint64_t
measure(int dirfd, int depth)
{
    uint64_t sum = 0;
    DIR *d = depth < 32 ? fs_opendir(dirfd) : NULL;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (depth == 0 &&
             (strcmp(de->d_name, LAYOUT_RECORD) == 0 || strcmp(de->d_name, LAYOUT_SPARE) == 0)) ||
            fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            sum += (uint64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                sum += measure(sub, depth + 1);
                close(sub);
            }
        }
    }
    if (d != NULL)
        closedir(d);
    return sum;
}

uint64_t
jobstore_measure(int dirfd)
{
    return measure(dirfd, 0);
}

/*** space reserved for the record ***/

/* Write len bytes of p at offset 0 of fd, then spaces up to end: the record stays valid JSON
 * (trailing white space) in a file of end bytes. Never allocates when the blocks exist. */
static enum rc
write_padded(int fd, const char *p, size_t len, size_t end, bool sync)
{
    char spaces[512];
    memset(spaces, ' ', sizeof(spaces));
    for (size_t off = 0; off < end;) {
        size_t n = off < len ? len - off : end - off;
        const char *src = off < len ? p + off : spaces;
        if (off >= len && n > sizeof(spaces))
            n = sizeof(spaces);
        ssize_t w = pwrite(fd, src, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RC_IO;
        off += (size_t)w;
    }
    return !sync || fdatasync(fd) == 0 ? RC_OK : RC_IO;
}

/* The spare: a file of spaces, its blocks written (not just reserved), big enough for the
 * record to grow by SPARE_ROOM. When the disk is full, the record is written into it and it
 * replaces job.json: a job's state stays writable however full the disk gets. Synced unless
 * the caller syncs it (a stage's, with the stage). */
static enum rc
make_spare(int dirfd, size_t record_len, bool sync)
{
    size_t size = (record_len + SPARE_ROOM + BLOCK - 1) / BLOCK * BLOCK;
    int fd = openat(dirfd, LAYOUT_SPARE, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                    MODE_PRIVATE);
    enum rc rc = fd >= 0 ? write_padded(fd, "", 0, size, sync) : RC_IO;
    if (fd >= 0)
        close(fd);
    if (rc != RC_OK)
        (void)unlinkat(dirfd, LAYOUT_SPARE, 0);
    return rc;
}

/* The disk is full: the record into the spare, renamed over job.json (atomic, and it frees the
 * old record's blocks); without a spare, over job.json in place within the blocks it has (not
 * atomic: the last resort). */
static enum rc
save_reserved(int dirfd, const char *s, size_t len)
{
    struct stat st;
    int fd = openat(dirfd, LAYOUT_SPARE, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && len <= (size_t)st.st_size &&
        write_padded(fd, s, len, (size_t)st.st_size, true) == RC_OK &&
        renameat(dirfd, LAYOUT_SPARE, dirfd, LAYOUT_RECORD) == 0) {
        close(fd);
        (void)fsync(dirfd);
        log_warn("the disk is full: the job record went into its reserved space");
        RC_IGNORE(make_spare(dirfd, len, true)); /* for the next one, if space came back */
        return RC_OK;
    }
    if (fd >= 0)
        close(fd);
    fd = openat(dirfd, LAYOUT_RECORD, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    enum rc rc = RC_IO;
    if (fd >= 0 && fstat(fd, &st) == 0 && len <= (size_t)st.st_blocks * 512) {
        size_t end = len > (size_t)st.st_size ? len : (size_t)st.st_size;
        rc = write_padded(fd, s, len, end, true);
    }
    if (fd >= 0)
        close(fd);
    if (rc == RC_OK)
        log_warn("the disk is full: the job record was rewritten in place");
    else
        log_err("the disk is full and the job record has no room left");
    return rc;
}

/* write_new: a new file name in dirfd holding len bytes of p, its writeback started; not
 * synced (the stage is synced whole before it is published). */
static enum rc
write_new(int dirfd, const char *name, const char *p, size_t len, mode_t mode)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    enum rc rc = fd >= 0 ? fs_write_all(fd, p, len) : RC_IO;
    if (rc == RC_OK)
        fs_writeback(fd, 0, 0);
    else
        log_errno("write %s", name);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* write_record: job's record as job.json, replacing the one there atomically (into the spare
 * when the disk is full), or, fresh (a stage's first record: nobody reads the stage, which
 * appears whole), written as a new file. */
static enum rc
write_record(int dirfd, const struct job *job, bool fresh)
{
    json_object *o = record_json(job);
    if (o == NULL)
        return RC_NOMEM;
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    enum rc rc = s == NULL ? RC_NOMEM
                 : fresh   ? write_new(dirfd, LAYOUT_RECORD, s, len, MODE_PRIVATE)
                           : fs_write_atomic_mode(dirfd, LAYOUT_RECORD, s, len, MODE_PRIVATE);
    if (rc == RC_IO && !fresh && (errno == ENOSPC || errno == EDQUOT))
        rc = save_reserved(dirfd, s, len);
    /* A finished job's record never changes again: its reserve goes. */
    if (rc == RC_OK && jobstate_is_terminal(job->state))
        (void)unlinkat(dirfd, LAYOUT_SPARE, 0);
    json_object_put(o);
    return rc;
}

enum rc
jobstore_save(int dirfd, struct job *job)
{
    if (jobstate_is_terminal(job->state))
        job->kept_bytes = measure(dirfd, 0);
    return write_record(dirfd, job, false);
}

json_object *
jobstore_public(const struct job *job, long queue_position, json_object *outputs, unsigned view,
                uint64_t ttl_s)
{
    /* The links, in the order of docs/api.md. */
    static const char *const names[][2] = {{"self", ""},
                                           {"events", "/events"},
                                           {"logs", "/logs"},
                                           {"outputs", "/outputs"},
                                           {"archive", "/outputs.zip"},
                                           {"cancel", "/cancel"}};
    json_object *o = json_object_new_object();
    json_object *links = json_object_new_object();
    bool ok = o != NULL && links != NULL &&
              add_public(o, job, true, view, queue_position, outputs, ttl_s);
    for (size_t i = 0; ok && i < sizeof(names) / sizeof(names[0]); i++) {
        char buf[64];
        int k = snprintf(buf, sizeof(buf), "/api/jobs/%s%s", job->id, names[i][1]);
        ok = k > 0 && (size_t)k < sizeof(buf) &&
             add(links, names[i][0], json_object_new_string(buf), false);
    }
    if (ok) {
        ok = add(o, "links", links, false);
        links = NULL;
    }
    json_object_put(links);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/*** the store ***/

static int
open_sub(int dirfd, const char *name, mode_t mode)
{
    if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST) {
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
    char err[512];
    js->cfg = cfg;
    js->data_fd = js->jobs_fd = js->tmp_fd = -1;
    js->share_gid = (gid_t)-1;
    if (config_output_group(cfg)[0] != '\0' &&
        owner_group("output_group", config_output_group(cfg), "the files nginx sends", false,
                    &js->share_gid, err, sizeof(err)) != RC_OK) {
        log_err("%s", err);
        return RC_BADREQ;
    }
    js->jobs_sync = NULL;
    if (fs_mkdir_p(cfg->data_dir, 0711) != RC_OK)
        return RC_IO;
    js->data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (js->data_fd < 0) {
        log_errno("open %s", cfg->data_dir);
        return RC_IO;
    }
    js->jobs_fd = open_sub(js->data_fd, LAYOUT_JOBS, 0711);
    js->tmp_fd = open_sub(js->data_fd, LAYOUT_TMP, 0700);
    js->jobs_sync = js->jobs_fd >= 0 ? fs_group_new(js->jobs_fd) : NULL;
    if (js->jobs_fd < 0 || js->tmp_fd < 0 || js->jobs_sync == NULL) {
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
    fs_group_free(js->jobs_sync);
    js->jobs_sync = NULL;
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
jobstore_foreach(const struct jobstore *js, jobstore_each_fn *fn, void *ctx)
{
    DIR *d = fs_opendir(js->jobs_fd);
    if (d == NULL)
        return RC_IO;
    struct dirent *de;
    bool go_on = true;
    while (go_on && (de = readdir(d)) != NULL) {
        int dfd = -1;
        struct job job;
        if (!id_is_valid(de->d_name, strlen(de->d_name)) ||
            jobstore_open_job(js, de->d_name, &dfd) != RC_OK)
            continue;
        if (jobstore_load(dfd, &job) == RC_OK && strcmp(job.id, de->d_name) == 0)
            go_on = fn(ctx, dfd, &job);
        else
            log_warn("job=%s has no readable record; leaving it alone", de->d_name);
        jobstore_job_fini(&job);
        close(dfd);
    }
    closedir(d);
    return RC_OK;
}

static enum rc
name_in(char *out, size_t len, const char *prefix, const char *id)
{
    int k = snprintf(out, len, "%s%s", prefix, id);
    return k > 0 && (size_t)k < len ? RC_OK : RC_TOOBIG;
}

enum rc
jobstore_unlink(const struct jobstore *js, const char *id)
{
    char tmp[64];
    if (!id_is_valid(id, strlen(id)) || name_in(tmp, sizeof(tmp), DELETE_PREFIX, id) != RC_OK)
        return RC_NOTFOUND;
    if (renameat(js->jobs_fd, id, js->tmp_fd, tmp) != 0) {
        if (errno == ENOENT)
            return RC_NOTFOUND;
        log_errno("rename job %s", id);
        return RC_IO;
    }
    return RC_OK;
}

bool
jobstore_unlinked_is_live(const struct jobstore *js, const char *id)
{
    char tmp[64];
    if (name_in(tmp, sizeof(tmp), DELETE_PREFIX, id) != RC_OK)
        return false;
    int dfd = openat(js->tmp_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return false;
    bool live = jobstore_lock_is_held(dfd);
    close(dfd);
    return live;
}

enum rc
jobstore_purge(const struct jobstore *js, const char *id)
{
    char tmp[64];
    if (name_in(tmp, sizeof(tmp), DELETE_PREFIX, id) != RC_OK)
        return RC_NOTFOUND;
    enum rc rc = fs_rmtree_at(js->tmp_fd, tmp);
    if (rc != RC_OK)
        log_warn("job=%s: its files could not all be removed (%s)", id, rc_str(rc));
    return rc;
}

enum rc
jobstore_remove(const struct jobstore *js, const char *id)
{
    enum rc rc = jobstore_unlink(js, id);
    return rc == RC_OK ? jobstore_purge(js, id) : rc;
}

void
jobstore_clear_tmp(const struct jobstore *js, jobstore_live_fn *live, void *ctx)
{
    DIR *d = fs_opendir(js->tmp_fd);
    if (d == NULL)
        return;
    struct dirent *de;
    size_t plen = strlen(DELETE_PREFIX);
    while ((de = readdir(d)) != NULL) {
        const char *id = de->d_name + plen;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strncmp(de->d_name, DELETE_PREFIX, plen) == 0 && id_is_valid(id, strlen(id)) &&
            jobstore_unlinked_is_live(js, id)) {
            if (live != NULL)
                live(ctx, id);
            continue;
        }
        if (fs_rmtree_at(js->tmp_fd, de->d_name) != RC_OK)
            log_warn("cannot remove %s/%s", LAYOUT_TMP, de->d_name);
    }
    closedir(d);
}

/*** an upload being staged ***/

static void
stage_close(struct jobstore_stage *st)
{
    if (st->inputs_fd >= 0)
        close(st->inputs_fd);
    if (st->dirfd >= 0)
        close(st->dirfd);
    st->inputs_fd = st->dirfd = -1;
}

enum rc
jobstore_stage_begin(const struct jobstore *js, struct jobstore_stage *st)
{
    char name[64];
    st->dirfd = st->inputs_fd = -1;
    if (id_new(st->id) != RC_OK || name_in(name, sizeof(name), STAGE_PREFIX, st->id) != RC_OK)
        return RC_IO;
    if (mkdirat(js->tmp_fd, name, 0700) != 0) {
        log_errno("mkdir %s", name);
        return RC_IO;
    }
    st->dirfd = openat(js->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* nginx passes through to the outputs: its group (0710), or anyone (0711) without one. */
    bool grouped = js->share_gid != (gid_t)-1;
    if (st->dirfd >= 0 && ((grouped && fchown(st->dirfd, (uid_t)-1, js->share_gid) != 0) ||
                           fchmod(st->dirfd, grouped ? 0710 : 0711) != 0)) {
        log_errno("give %s to the output group", name);
        jobstore_stage_abort(js, st);
        return RC_IO;
    }
    if (st->dirfd >= 0)
        st->inputs_fd = open_sub(st->dirfd, LAYOUT_INPUTS, 0700);
    /* nginx sends inputs too (downloads, inputs.zip): shared like the outputs. */
    if (st->inputs_fd >= 0 && jobstore_share(st->dirfd, st->inputs_fd, true) != RC_OK) {
        close(st->inputs_fd);
        st->inputs_fd = -1;
    }
    if (st->inputs_fd < 0) {
        jobstore_stage_abort(js, st);
        return RC_IO;
    }
    return RC_OK;
}

/* open_parent: an O_DIRECTORY fd (the caller's) of the directory that holds relpath (checked
 * by the caller) below dirfd, its directories made (0755) one component at a time with
 * mkdirat and opened with O_NOFOLLOW, so nothing is ever followed out; *out_base is relpath's
 * last component. RC_CONFLICT when a component exists as something else, RC_IO. */
static enum rc
open_parent(int dirfd, const char *relpath, int *out_fd, const char **out_base)
{
    char comp[NAME_MAX_BYTES + 1];
    const char *p = relpath, *slash;
    int fd = dup(dirfd);
    *out_fd = -1;
    while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
        size_t n = (size_t)(slash - p);
        if (n >= sizeof(comp)) {
            close(fd);
            return RC_TOOBIG;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int sub = -1;
        if (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST)
            sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        fd = sub;
        if (fd < 0)
            return e == ENOTDIR || e == ELOOP ? RC_CONFLICT : RC_IO;
        p = slash + 1;
    }
    if (fd < 0)
        return RC_IO;
    *out_fd = fd;
    *out_base = p;
    return RC_OK;
}

enum rc
jobstore_stage_create_input(struct jobstore_stage *st, const char *name, int *out_fd)
{
    const char *base = NULL;
    int dfd = -1;
    *out_fd = -1;
    enum rc rc = open_parent(st->inputs_fd, name, &dfd, &base);
    if (rc != RC_OK)
        return rc;
    *out_fd = openat(dfd, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    close(dfd);
    if (*out_fd >= 0)
        return RC_OK;
    if (e == EEXIST)
        return RC_CONFLICT;
    log_errno("create input");
    return RC_IO;
}

enum rc
jobstore_stage_link_inputs(struct jobstore_stage *st, int src_dirfd, bool skip_params)
{
    int in = jobstore_inputs_open(src_dirfd);
    if (in < 0) {
        log_errno("open %s", LAYOUT_INPUTS);
        return RC_IO;
    }
    enum rc rc = fs_link_tree(in, st->inputs_fd, skip_params ? PARAMS_NAME : NULL);
    close(in);
    return rc;
}

bool
jobstore_input_is_reserved(const char *name)
{
    return strcmp(name, PARAMS_NAME) == 0;
}

enum rc
jobstore_stage_write_params(struct jobstore_stage *st, const char *text, size_t len)
{
    int fd = -1;
    enum rc rc = jobstore_stage_create_input(st, PARAMS_NAME, &fd);
    if (rc == RC_OK && fs_write_all(fd, text, len) != RC_OK) {
        log_errno("write %s", PARAMS_NAME);
        rc = RC_IO;
    }
    if (rc == RC_OK)
        fs_writeback(fd, 0, 0); /* synced at publish */
    if (fd >= 0)
        close(fd);
    return rc;
}

enum rc
jobstore_stage_publish(const struct jobstore *js, struct jobstore_stage *st, const struct job *job)
{
    char name[64];
    enum rc rc = name_in(name, sizeof(name), STAGE_PREFIX, st->id);
    struct stat rec;
    if (rc == RC_OK)
        rc = write_record(st->dirfd, job, true);
    /* Room for every later state of the record, or no job: a full disk must not strand it
     * (synced with the stage below). */
    if (rc == RC_OK)
        rc = fstatat(st->dirfd, LAYOUT_RECORD, &rec, AT_SYMLINK_NOFOLLOW) == 0
                 ? make_spare(st->dirfd, (size_t)rec.st_size, false)
                 : RC_IO;
    /* The lock and the log are made when first opened: every file made here costs (0.6 ms
     * each on the test machine's ext4) and needs syncing. */
    /* Durable, then visible: every file's data and every name of the stage (one journal
     * commit where the filesystem has one: each file's writeback began when it was complete),
     * then the rename into jobs/ and jobs/ itself (shared with the uploads publishing at the
     * same time). A crash before the rename leaves only tmp/, emptied at start-up. */
    if (rc == RC_OK)
        rc = fs_sync_tree(st->dirfd);
    if (rc != RC_OK)
        return rc;
    if (renameat(js->tmp_fd, name, js->jobs_fd, st->id) != 0) {
        log_errno("publish job %s", st->id);
        return RC_IO;
    }
    stage_close(st);
    if (fs_group_fsync(js->jobs_sync) != RC_OK) {
        /* Not durable: no job (the caller aborts the stage, which is gone already). */
        RC_IGNORE(jobstore_remove(js, st->id));
        return RC_IO;
    }
    st->id[0] = '\0';
    return RC_OK;
}

void
jobstore_stage_abort(const struct jobstore *js, struct jobstore_stage *st)
{
    char name[64];
    stage_close(st);
    if (st->id[0] != '\0' && name_in(name, sizeof(name), STAGE_PREFIX, st->id) == RC_OK &&
        fs_rmtree_at(js->tmp_fd, name) != RC_OK)
        log_warn("cannot remove the staging dir %s", name);
    st->id[0] = '\0';
}

/*** artifacts ***/

enum rc
jobstore_request_cancel(int dirfd)
{
    int fd =
        openat(dirfd, LAYOUT_CANCEL, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MODE_PRIVATE);
    if (fd < 0) {
        log_errno("create %s", LAYOUT_CANCEL);
        return RC_IO;
    }
    close(fd);
    return RC_OK;
}

bool
jobstore_cancel_requested(int dirfd)
{
    struct stat st;
    return fstatat(dirfd, LAYOUT_CANCEL, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void
jobstore_cancel_clear(int dirfd)
{
    if (unlinkat(dirfd, LAYOUT_CANCEL, 0) != 0 && errno != ENOENT)
        log_errno("unlink %s", LAYOUT_CANCEL);
}

int
jobstore_lock_take(int dirfd)
{
    return fs_lock_open(dirfd, LAYOUT_LOCK, MODE_PRIVATE);
}

bool
jobstore_lock_is_held(int dirfd)
{
    int fd = openat(dirfd, LAYOUT_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases our lock if we got it */
    return held;
}

int
jobstore_log_open(int dirfd, enum jobstore_log_mode mode)
{
    static const int flags[] = {
        O_RDONLY,            /* JOBSTORE_LOG_READ */
        O_WRONLY | O_APPEND, /* JOBSTORE_LOG_APPEND */
        O_RDWR,              /* JOBSTORE_LOG_REPAIR */
    };
    /* Created by whoever opens it first: a queued job's log is empty, not missing. */
    int fd = openat(dirfd, LAYOUT_LOG, flags[mode] | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MODE_LOG);
    if (fd < 0)
        log_errno("open %s", LAYOUT_LOG);
    return fd;
}

int
jobstore_inputs_open(int dirfd)
{
    return openat(dirfd, LAYOUT_INPUTS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int
jobstore_outputs_open(int dirfd)
{
    return openat(dirfd, LAYOUT_OUTPUTS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

enum rc
jobstore_outputs_begin(int dirfd, int *out_fd)
{
    *out_fd = -1;
    if (fs_rmtree_at(dirfd, LAYOUT_OUTPUTS_TMP) != RC_OK ||
        fs_rmtree_at(dirfd, LAYOUT_OUTPUTS) != RC_OK ||
        (unlinkat(dirfd, LAYOUT_OUTPUTS_IDX, 0) != 0 && errno != ENOENT) ||
        (unlinkat(dirfd, LAYOUT_OUTPUTS_ZIP, 0) != 0 && errno != ENOENT))
        return RC_IO;
    *out_fd = open_sub(dirfd, LAYOUT_OUTPUTS_TMP, 0700);
    if (*out_fd >= 0 && jobstore_share(dirfd, *out_fd, true) != RC_OK) {
        close(*out_fd);
        *out_fd = -1;
    }
    return *out_fd >= 0 ? RC_OK : RC_IO;
}

enum rc
jobstore_outputs_commit(int dirfd, json_object *index)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        index, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s == NULL)
        return RC_NOMEM;
    enum rc rc = fs_write_atomic_mode(dirfd, LAYOUT_OUTPUTS_IDX, s, len, MODE_PRIVATE);
    if (rc == RC_OK && renameat(dirfd, LAYOUT_OUTPUTS_TMP, dirfd, LAYOUT_OUTPUTS) != 0) {
        log_errno("rename %s", LAYOUT_OUTPUTS_TMP);
        rc = RC_IO;
    }
    return rc;
}

enum rc
jobstore_outputs_index(int dirfd, json_object **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    enum rc rc = fs_read_all(dirfd, LAYOUT_OUTPUTS_IDX, OUTPUTS_IDX_MAX, &text, &len);
    if (rc == RC_NOTFOUND)
        return RC_OK;
    if (rc == RC_OK)
        rc = parse_json(text, len, json_type_array, out);
    if (rc != RC_OK)
        log_err("%s is unreadable (%s)", LAYOUT_OUTPUTS_IDX, rc_str(rc));
    free(text);
    return rc;
}

enum rc
jobstore_output_relpath(const char *id, const char *enc, char *out, size_t len)
{
    int k = snprintf(out, len, "%s/%s/%s", id, LAYOUT_OUTPUTS, enc);
    return k > 0 && (size_t)k < len ? RC_OK : RC_TOOBIG;
}

static const char *const zip_names[] = {
    LAYOUT_OUTPUTS_ZIP, /* JOBSTORE_ZIP_OUTPUTS */
    LAYOUT_INPUTS_ZIP,  /* JOBSTORE_ZIP_INPUTS */
};

enum rc
jobstore_zip_begin(int dirfd, enum jobstore_zip kind, int *out_fd, char *name, size_t namelen)
{
    int k = snprintf(name, namelen, ".%s.%ld.tmp", zip_names[kind], (long)gettid());
    *out_fd = -1;
    if (k <= 0 || (size_t)k >= namelen)
        return RC_TOOBIG;
    *out_fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*out_fd < 0) {
        log_errno("create %s", name);
        return RC_IO;
    }
    if (jobstore_share(dirfd, *out_fd, false) != RC_OK) {
        close(*out_fd);
        *out_fd = -1;
        (void)unlinkat(dirfd, name, 0);
        return RC_IO;
    }
    return RC_OK;
}

enum rc
jobstore_share(int dirfd, int fd, bool dir)
{
    struct stat jd, st;
    if (fstat(dirfd, &jd) != 0 || fstat(fd, &st) != 0)
        return RC_IO;
    bool all = (jd.st_mode & 0001) != 0; /* a job dir anyone may pass: no output group */
    mode_t mode = dir ? (all ? 0711 : 0710) : (all ? 0644 : 0640);
    if ((st.st_gid != jd.st_gid && fchown(fd, (uid_t)-1, jd.st_gid) != 0) ||
        ((st.st_mode & 07777) != mode && fchmod(fd, mode) != 0)) {
        log_errno("give an output to the output group");
        return RC_IO;
    }
    return RC_OK;
}

enum rc
jobstore_zip_commit(int dirfd, enum jobstore_zip kind, const char *name)
{
    if (renameat(dirfd, name, dirfd, zip_names[kind]) != 0) {
        log_errno("rename %s", name);
        jobstore_zip_abort(dirfd, name);
        return RC_IO;
    }
    return RC_OK;
}

void
jobstore_zip_abort(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
        log_errno("unlink %s", name);
}

enum rc
jobstore_zip_build(int dirfd, enum jobstore_zip kind, int src_dirfd, json_object *index)
{
    char name[64];
    int zfd = -1;
    enum rc rc = jobstore_zip_begin(dirfd, kind, &zfd, name, sizeof(name));
    if (rc == RC_OK)
        rc = outzip_write(src_dirfd, index, zfd);
    if (zfd >= 0)
        close(zfd);
    if (rc == RC_OK)
        rc = jobstore_zip_commit(dirfd, kind, name);
    else if (zfd >= 0)
        jobstore_zip_abort(dirfd, name);
    return rc;
}

bool
jobstore_zip_exists(int dirfd, enum jobstore_zip kind)
{
    struct stat st;
    return fstatat(dirfd, zip_names[kind], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

enum rc
jobstore_zip_relpath(const char *id, enum jobstore_zip kind, char *out, size_t len)
{
    int k = snprintf(out, len, "%s/%s", id, zip_names[kind]);
    return k > 0 && (size_t)k < len ? RC_OK : RC_TOOBIG;
}

/* add_path: arr += {"path": path}; false on OOM. */
static bool
add_path(json_object *arr, const char *path)
{
    json_object *o = json_object_new_object();
    if (o == NULL || !json_set_str(o, "path", path) || json_object_array_add(arr, o) != 0) {
        json_object_put(o);
        return false;
    }
    return true;
}

enum rc
jobstore_inputs_index(int dirfd, const struct job *job, json_object **out)
{
    json_object *arr = json_object_new_array();
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < job->ninputs; i++)
        ok = add_path(arr, job->inputs[i].name);
    /* params.json goes with the inputs it came with. */
    if (ok && jobstore_has_params(dirfd))
        ok = add_path(arr, PARAMS_NAME);
    if (!ok) {
        json_object_put(arr);
        arr = NULL;
    }
    *out = arr;
    return ok ? RC_OK : RC_NOMEM;
}

enum rc
jobstore_input_relpath(const char *id, const char *enc, char *out, size_t len)
{
    int k = snprintf(out, len, "%s/%s/%s", id, LAYOUT_INPUTS, enc);
    return k > 0 && (size_t)k < len ? RC_OK : RC_TOOBIG;
}

enum rc
jobstore_params_read(int dirfd, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int in = jobstore_inputs_open(dirfd);
    if (in < 0)
        return RC_IO;
    enum rc rc = fs_read_all(in, PARAMS_NAME, PARAMS_MAX_BYTES, out, out_len);
    close(in);
    return rc;
}

bool
jobstore_has_params(int dirfd)
{
    struct stat st;
    int in = jobstore_inputs_open(dirfd);
    bool has =
        in >= 0 && fstatat(in, PARAMS_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    if (in >= 0)
        close(in);
    return has;
}

bool
jobstore_event_is_record(const char *name)
{
    return strcmp(name, LAYOUT_RECORD) == 0;
}

/*** the record's identity ***/

/* ident_of: the handle, ctime and size of path (relative to dirfd; "" with AT_EMPTY_PATH for
 * dirfd itself). The handle first: a change between the two calls makes a mismatch later. */
static enum rc
ident_of(int dirfd, const char *path, int flags, struct jobstore_ident *out)
{
    union {
        struct file_handle fh;
        unsigned char buf[sizeof(struct file_handle) + JOBSTORE_IDENT_MAX];
    } u;
    memset(out, 0, sizeof(*out));
    u.fh.handle_bytes = JOBSTORE_IDENT_MAX;
    if (name_to_handle_at(dirfd, path, &u.fh, &out->mount_id, flags) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return RC_NOTFOUND;
        if (errno == EOPNOTSUPP || errno == EOVERFLOW)
            return RC_UNSUPPORTED;
        return RC_IO;
    }
    struct stat st;
    if (fstatat(dirfd, path, &st, flags | AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? RC_NOTFOUND : RC_IO;
    out->type = u.fh.handle_type;
    out->len = u.fh.handle_bytes;
    memcpy(out->handle, u.fh.f_handle, out->len);
    out->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    out->size = (int64_t)st.st_size;
    return RC_OK;
}

enum rc
jobstore_record_ident(const struct jobstore *js, const char *id, struct jobstore_ident *out)
{
    char path[ID_LEN + sizeof("/" LAYOUT_RECORD)];
    memset(out, 0, sizeof(*out));
    if (id == NULL || !id_is_valid(id, strlen(id)))
        return RC_NOTFOUND;
    (void)snprintf(path, sizeof(path), "%s/%s", id, LAYOUT_RECORD); /* fits: the id's length */
    return ident_of(js->jobs_fd, path, 0, out);
}

enum rc
jobstore_load_ident(int dirfd, struct job *out, struct jobstore_ident *ident)
{
    char *text = NULL;
    size_t len = 0;
    jobstore_job_init(out);
    memset(ident, 0, sizeof(*ident));
    int fd = openat(dirfd, LAYOUT_RECORD, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RC_NOTFOUND : load_text(out, RC_IO, NULL, 0);
    /* The identity of the file opened, not of the name (it may have moved on meanwhile), taken
     * before the read: a rewrite in place during the read makes a later mismatch, not a match. */
    enum rc rc = ident_of(fd, "", AT_EMPTY_PATH, ident);
    if (rc == RC_UNSUPPORTED)
        rc = RC_OK;
    if (rc == RC_OK)
        rc = fs_read_fd(fd, JOB_JSON_MAX, &text, &len);
    close(fd);
    if (rc != RC_OK)
        memset(ident, 0, sizeof(*ident));
    return load_text(out, rc, text, len);
}

bool
jobstore_ident_equal(const struct jobstore_ident *a, const struct jobstore_ident *b)
{
    return a->len > 0 && a->len == b->len && a->type == b->type && a->mount_id == b->mount_id &&
           a->ctime_ns == b->ctime_ns && a->size == b->size &&
           memcmp(a->handle, b->handle, a->len) == 0;
}
