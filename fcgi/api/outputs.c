/* outputs: the collected outputs of a job: list, one file, all as a zip (both sent by nginx). */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "jobs/outzip.h"
#include "json.h"
#include "log.h"
#include "parse/names.h"

/* Load a job's outputs index once it has ended: *out_index (caller puts; an empty array when
 * the job has none) and the job dir (caller closes). false after answering 404/409/500. */
static bool
load_index(struct api *api, struct req *r, const char *id, int *out_dirfd, json_object **out_index)
{
    struct job job;
    *out_index = NULL;
    if (!api_load_job(api, r, id, out_dirfd, &job))
        return false;
    bool ended = jobstate_is_terminal(job.state);
    jobstore_job_fini(&job);
    if (!ended) {
        resp_problem(r, PROBLEM_NOT_READY, NULL, NULL, "the job's outputs are not collected yet");
    } else if (jobstore_outputs_index(*out_dirfd, out_index) != RC_OK) {
        api_internal(r);
    } else {
        if (*out_index == NULL)
            *out_index = json_object_new_array();
        if (*out_index != NULL)
            return true;
        api_internal(r);
    }
    close(*out_dirfd);
    *out_dirfd = -1;
    return false;
}

/* Percent-encode everything but unreserved characters and (when keep_slash) '/'; false when
 * out cannot hold all of it (never a shortened name). */
static bool
pct_encode(const char *s, bool keep_slash, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (n + (plain ? 1 : 3) >= outlen)
            return false;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return true;
}

void
api_list_outputs(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    int dfd;
    json_object *index, *o = NULL, *arr = NULL;
    if (!load_index(api, r, id, &dfd, &index))
        return;
    arr = json_object_new_array();
    o = json_object_new_object();
    bool ok = arr != NULL && o != NULL && json_object_object_add(o, "outputs", arr) == 0;
    if (!ok)
        json_object_put(arr);
    size_t n = json_object_array_length(index);
    for (size_t i = 0; ok && i < n; i++) {
        json_object *e = json_object_array_get_idx(index, i);
        const char *path = json_get_str(e, "path");
        char enc[OUTPUT_PATH_MAX * 3 + 1], url[OUTPUT_PATH_MAX * 3 + 128];
        if (path == NULL || !pct_encode(path, true, enc, sizeof(enc)))
            continue; /* collect never indexes such a path */
        int k = snprintf(url, sizeof(url), "/api/jobs/%s/outputs/%s", id, enc);
        json_object *x = json_object_new_object();
        ok = k > 0 && (size_t)k < sizeof(url) && x != NULL && json_set_str(x, "path", path) &&
             json_set_i64(x, "size", json_get_i64(e, "size", 0)) &&
             json_set_str(x, "type", json_get_str(e, "type")) && json_set_str(x, "url", url) &&
             json_object_array_add(arr, x) == 0;
        if (!ok)
            json_object_put(x);
    }
    if (ok)
        resp_json(r, 200, o, NULL);
    else
        api_internal(r);
    json_object_put(o);
    json_object_put(index);
    close(dfd);
}

/* The index entry of path, or NULL (borrowed from index). */
static json_object *
find_output(json_object *index, const char *path)
{
    const char *why = NULL;
    if (names_check_relpath(span_of(path), &why) != RC_OK)
        return NULL;
    size_t n = json_object_array_length(index);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(index, i);
        const char *p = json_get_str(e, "path");
        if (p != NULL && strcmp(p, path) == 0)
            return e;
    }
    return NULL;
}

void
api_get_output(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id, *path = a->rest;
    int dfd;
    json_object *index;
    if (!load_index(api, r, id, &dfd, &index))
        return;
    json_object *found = find_output(index, path);
    /* nginx sends the file itself (sendfile, ranges, disable_symlinks) from its internal
     * location; we only name it and set the headers that make it safe to download. */
    char enc[OUTPUT_PATH_MAX * 3 + 1], base[NAME_MAX_BYTES * 3 + 1], rel[OUTPUT_PATH_MAX * 3 + 64];
    char headers[sizeof(rel) + sizeof(base) + 512];
    const char *slash = strrchr(path, '/');
    if (found == NULL) {
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "the job has no such output");
        goto out;
    }
    int k = -1;
    if (pct_encode(path, true, enc, sizeof(enc)) &&
        pct_encode(slash ? slash + 1 : path, false, base, sizeof(base)) &&
        jobstore_output_relpath(id, enc, rel, sizeof(rel)) == RC_OK)
        k = snprintf(headers, sizeof(headers),
                     "X-Accel-Redirect: /_labbox_outputs/%s\r\n"
                     "Content-Disposition: attachment; filename*=UTF-8''%s\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: sandbox\r\n",
                     rel, base);
    if (k < 0 || (size_t)k >= sizeof(headers)) {
        api_internal(r);
        goto out;
    }
    const char *type = json_get_str(found, "type");
    RC_IGNORE(resp_start(r, 200, type ? type : "application/octet-stream", headers));
out:
    json_object_put(index);
    close(dfd);
}

/*** zip ***/

/* Build the zip of a job that has none (one ended before zips were built at collection, or
 * whose build failed then). At most ZIP_BUILDS_MAX at once; false after answering. */
static bool
build_zip_now(struct api *api, struct req *r, int dfd, json_object *index)
{
    char name[64];
    int zfd = -1, ofd = -1;
    if (atomic_fetch_add(&api->zip_builds, 1) >= ZIP_BUILDS_MAX) {
        atomic_fetch_sub(&api->zip_builds, 1);
        resp_problem(r, PROBLEM_UNAVAILABLE, NULL, NULL,
                     "the outputs zip is being built for other jobs; try again shortly");
        return false;
    }
    enum rc rc = jobstore_zip_begin(dfd, &zfd, name, sizeof(name));
    if (rc == RC_OK) {
        ofd = jobstore_outputs_open(dfd);
        rc = ofd >= 0 ? outzip_write(ofd, index, zfd) : RC_IO;
    }
    if (ofd >= 0)
        close(ofd);
    if (zfd >= 0)
        close(zfd);
    if (rc == RC_OK)
        rc = jobstore_zip_commit(dfd, name);
    else if (zfd >= 0)
        jobstore_zip_abort(dfd, name);
    atomic_fetch_sub(&api->zip_builds, 1);
    if (rc != RC_OK)
        api_internal(r);
    return rc == RC_OK;
}

void
api_get_zip(struct api *api, struct req *r, const struct api_args *args)
{
    const char *id = args->id;
    int dfd;
    json_object *index;
    char rel[128], headers[512];
    if (!load_index(api, r, id, &dfd, &index))
        return;
    if (!jobstore_zip_exists(dfd) && !build_zip_now(api, r, dfd, index))
        goto out;
    /* nginx sends it like any output: sendfile, ranges, no request thread held. */
    int k = -1;
    if (jobstore_zip_relpath(id, rel, sizeof(rel)) == RC_OK)
        k = snprintf(headers, sizeof(headers),
                     "X-Accel-Redirect: /_labbox_outputs/%s\r\n"
                     "Content-Disposition: attachment; filename=\"labbox-%s-outputs.zip\"\r\n"
                     "X-Content-Type-Options: nosniff\r\n",
                     rel, id);
    if (k < 0 || (size_t)k >= sizeof(headers)) {
        api_internal(r);
        goto out;
    }
    RC_IGNORE(resp_start(r, 200, "application/zip", headers));
out:
    json_object_put(index);
    close(dfd);
}
