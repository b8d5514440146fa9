/* outputs: a job's files: the collected outputs (list, one file, all as a zip) and the inputs
 * (one file, all as a zip); files and zips are sent by nginx, as downloads or, with ?view=1,
 * shown inline when their type is safe to render (see send_file). */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "jobs/filetype.h"
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
        char enc[OUTPUT_PATH_MAX * 3 + 1], url[OUTPUT_PATH_MAX * 3 + 128], view[sizeof(url) + 8];
        if (path == NULL || !pct_encode(path, true, enc, sizeof(enc)))
            continue; /* collect never indexes such a path */
        const char *type = json_get_str(e, "type");
        bool viewable = type != NULL && filetype_view(type) != FILETYPE_VIEW_NONE;
        int k = snprintf(url, sizeof(url), "/api/jobs/%s/outputs/%s", id, enc);
        int kv = snprintf(view, sizeof(view), "%s?view=1", url);
        json_object *x = json_object_new_object();
        ok = k > 0 && (size_t)k < sizeof(url) && kv > 0 && (size_t)kv < sizeof(view) && x != NULL &&
             json_set_str(x, "path", path) && json_set_i64(x, "size", json_get_i64(e, "size", 0)) &&
             json_set_str(x, "type", type) && json_set_str(x, "url", url) &&
             json_set_str(x, "view_url", viewable ? view : NULL) &&
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

/* Where nginx sends a file from, by how it is shown: each internal location of
 * nginx/locations.conf.template adds the headers that make its files safe (nginx does not pass
 * labbox's own CSP or nosniff on). */
static const char *
location_of(enum filetype_view view)
{
    switch (view) {
    case FILETYPE_VIEW_DOC:
    case FILETYPE_VIEW_IMAGE:
    case FILETYPE_VIEW_TEXT:
        return "_labbox_view"; /* CSP sandbox, no scripts, images from here only */
    case FILETYPE_VIEW_PDF:
        return "_labbox_pdf"; /* Chromium's PDF viewer refuses a sandboxed document */
    case FILETYPE_VIEW_NONE:
        break;
    }
    return "_labbox_outputs"; /* a download: CSP sandbox in case it is opened anyway */
}

/* send_file: answer with X-Accel-Redirect for file path (checked) of job id, input or output,
 * of the given type. With ?view=1 and a type safe to show, inline from the view locations (text
 * as text/plain; charset=utf-8); else a download. */
static void
send_file(struct req *r, const char *id, bool input, const char *path, const char *type)
{
    char enc[OUTPUT_PATH_MAX * 3 + 1], base[NAME_MAX_BYTES * 3 + 1], rel[OUTPUT_PATH_MAX * 3 + 64];
    char headers[sizeof(rel) + sizeof(base) + 512], view[8];
    const char *slash = strrchr(path, '/');
    enum filetype_view how = FILETYPE_VIEW_NONE;
    if (req_query(r, "view", view, sizeof(view)) == RC_OK && strcmp(view, "1") == 0)
        how = filetype_view(type);
    int k = -1;
    if (pct_encode(path, true, enc, sizeof(enc)) &&
        pct_encode(slash ? slash + 1 : path, false, base, sizeof(base)) &&
        (input ? jobstore_input_relpath(id, enc, rel, sizeof(rel))
               : jobstore_output_relpath(id, enc, rel, sizeof(rel))) == RC_OK)
        k = snprintf(headers, sizeof(headers),
                     "X-Accel-Redirect: /%s/%s\r\n"
                     "Content-Disposition: %s; filename*=UTF-8''%s\r\n",
                     location_of(how), rel, how == FILETYPE_VIEW_NONE ? "attachment" : "inline",
                     base);
    if (k < 0 || (size_t)k >= sizeof(headers)) {
        api_internal(r);
        return;
    }
    RC_IGNORE(resp_start(r, 200, how == FILETYPE_VIEW_TEXT ? "text/plain; charset=utf-8" : type,
                         headers));
}

void
api_get_output(struct api *api, struct req *r, const struct api_args *a)
{
    int dfd;
    json_object *index;
    if (!load_index(api, r, a->id, &dfd, &index))
        return;
    /* nginx sends the file itself (sendfile, ranges, disable_symlinks) from an internal
     * location; we only name it and set the headers that make it safe. */
    json_object *found = find_output(index, a->rest);
    const char *type = found ? json_get_str(found, "type") : NULL;
    if (found == NULL)
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "the job has no such output");
    else
        send_file(r, a->id, false, a->rest, type ? type : "application/octet-stream");
    json_object_put(index);
    close(dfd);
}

/* The type of input path of job (NULL when the job has no such input): as libmagic named it
 * at the upload; params.json is JSON. */
static const char *
input_type(int dfd, const struct job *job, const char *path)
{
    const char *why = NULL;
    if (names_check_relpath(span_of(path), &why) != RC_OK)
        return NULL;
    for (size_t i = 0; i < job->ninputs; i++)
        if (strcmp(job->inputs[i].name, path) == 0)
            return job->inputs[i].type;
    return jobstore_input_is_reserved(path) && jobstore_has_params(dfd) ? "application/json" : NULL;
}

void
api_get_input(struct api *api, struct req *r, const struct api_args *a)
{
    int dfd;
    struct job job;
    if (!api_load_job(api, r, a->id, &dfd, &job))
        return;
    const char *type = input_type(dfd, &job, a->rest);
    if (type == NULL)
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "the job has no such input");
    else
        send_file(r, a->id, true, a->rest, type[0] ? type : "application/octet-stream");
    jobstore_job_fini(&job);
    close(dfd);
}

/*** zips ***/

/* Build a zip the job lacks (outputs of a job that ended before zips were built at collection
 * or whose build failed then; inputs of a job still running). At most ZIP_BUILDS_MAX at once;
 * false after answering. */
static bool
build_zip_now(struct api *api, struct req *r, int dfd, enum jobstore_zip kind, int src_dirfd,
              json_object *index)
{
    if (atomic_fetch_add(&api->zip_builds, 1) >= ZIP_BUILDS_MAX) {
        atomic_fetch_sub(&api->zip_builds, 1);
        resp_problem(r, PROBLEM_UNAVAILABLE, NULL, NULL,
                     "zips are being built for other jobs; try again shortly");
        return false;
    }
    enum rc rc = src_dirfd >= 0 ? jobstore_zip_build(dfd, kind, src_dirfd, index) : RC_IO;
    atomic_fetch_sub(&api->zip_builds, 1);
    if (rc != RC_OK)
        api_internal(r);
    return rc == RC_OK;
}

/* send_zip: the job's zip of that kind, built now if it has none (from the files index names
 * under src_dirfd), sent by nginx like any file: sendfile, ranges, no request thread held. */
static void
send_zip(struct api *api, struct req *r, const char *id, int dfd, enum jobstore_zip kind,
         int src_dirfd, json_object *index)
{
    char rel[128], headers[512];
    const char *what = kind == JOBSTORE_ZIP_INPUTS ? "inputs" : "outputs";
    if (!jobstore_zip_exists(dfd, kind) && !build_zip_now(api, r, dfd, kind, src_dirfd, index))
        return;
    int k = -1;
    if (jobstore_zip_relpath(id, kind, rel, sizeof(rel)) == RC_OK)
        k = snprintf(headers, sizeof(headers),
                     "X-Accel-Redirect: /_labbox_outputs/%s\r\n"
                     "Content-Disposition: attachment; filename=\"labbox-%s-%s.zip\"\r\n",
                     rel, id, what);
    if (k < 0 || (size_t)k >= sizeof(headers)) {
        api_internal(r);
        return;
    }
    RC_IGNORE(resp_start(r, 200, "application/zip", headers));
}

void
api_get_zip(struct api *api, struct req *r, const struct api_args *args)
{
    int dfd;
    json_object *index;
    if (!load_index(api, r, args->id, &dfd, &index))
        return;
    int ofd = jobstore_zip_exists(dfd, JOBSTORE_ZIP_OUTPUTS) ? -1 : jobstore_outputs_open(dfd);
    send_zip(api, r, args->id, dfd, JOBSTORE_ZIP_OUTPUTS, ofd, index);
    if (ofd >= 0)
        close(ofd);
    json_object_put(index);
    close(dfd);
}

void
api_get_inputs_zip(struct api *api, struct req *r, const struct api_args *args)
{
    int dfd, in = -1;
    struct job job;
    json_object *index = NULL;
    if (!api_load_job(api, r, args->id, &dfd, &job))
        return;
    if (!jobstore_zip_exists(dfd, JOBSTORE_ZIP_INPUTS) &&
        (jobstore_inputs_index(dfd, &job, &index) != RC_OK || (in = jobstore_inputs_open(dfd)) < 0))
        api_internal(r);
    else
        send_zip(api, r, args->id, dfd, JOBSTORE_ZIP_INPUTS, in, index);
    if (in >= 0)
        close(in);
    json_object_put(index);
    jobstore_job_fini(&job);
    close(dfd);
}
