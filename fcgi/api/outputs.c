/* outputs: the collected outputs of a job: list, one file (sent by nginx), all as a zip. */
#include "api/api.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
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

struct zip_out {
    struct req *r;
    bool failed;
};

static la_ssize_t
zip_write(struct archive *a, void *ctx, const void *p, size_t len)
{
    struct zip_out *z = ctx;
    (void)a;
    if (resp_write(z->r, p, len) != RC_OK) {
        z->failed = true;
        return -1;
    }
    return (la_ssize_t)len;
}

static int
zip_close(struct archive *a, void *ctx)
{
    (void)a;
    (void)ctx;
    return ARCHIVE_OK;
}

void
api_get_zip(struct api *api, struct req *r, const struct api_args *args)
{
    const char *id = args->id;
    int dfd, ofd = -1;
    json_object *src;
    struct archive *a = NULL;
    struct archive_entry *ent = NULL;
    char *buf = NULL;
    if (!load_index(api, r, id, &dfd, &src))
        return;
    ofd = jobstore_outputs_open(dfd);
    char headers[160];
    (void)snprintf(headers, sizeof(headers),
                   "Content-Disposition: attachment; filename=\"labbox-%s-outputs.zip\"\r\n"
                   "X-Content-Type-Options: nosniff\r\n",
                   id);
    a = archive_write_new();
    ent = archive_entry_new();
    buf = malloc(65536);
    if (a == NULL || ent == NULL || buf == NULL || archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_zip_set_compression_deflate(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
        api_internal(r);
        goto out;
    }
    if (resp_start(r, 200, "application/zip", headers) != RC_OK || r->head)
        goto out;
    struct zip_out z = {r, false};
    if (archive_write_open2(a, &z, NULL, zip_write, zip_close, NULL) != ARCHIVE_OK)
        goto out;
    size_t n = src ? json_object_array_length(src) : 0;
    for (size_t i = 0; i < n && ofd >= 0 && !z.failed; i++) {
        json_object *e = json_object_array_get_idx(src, i);
        const char *path = json_get_str(e, "path");
        const char *why;
        if (path == NULL || names_check_relpath(span_of(path), &why) != RC_OK)
            continue;
        int fd = openat(ofd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        archive_entry_clear(ent);
        archive_entry_set_pathname_utf8(ent, path);
        archive_entry_set_filetype(ent, AE_IFREG);
        archive_entry_set_perm(ent, 0644);
        archive_entry_set_size(ent, st.st_size);
        archive_entry_set_mtime(ent, st.st_mtime, 0);
        if (archive_write_header(a, ent) != ARCHIVE_OK) {
            close(fd);
            break;
        }
        for (;;) {
            ssize_t got = read(fd, buf, 65536);
            if (got <= 0)
                break;
            if (archive_write_data(a, buf, (size_t)got) < 0) {
                z.failed = true;
                break;
            }
        }
        close(fd);
    }
    if (archive_write_close(a) != ARCHIVE_OK && !z.failed)
        log_warn("zip: %s", archive_error_string(a));
out:
    if (a != NULL)
        archive_write_free(a);
    if (ent != NULL)
        archive_entry_free(ent);
    free(buf);
    if (ofd >= 0)
        close(ofd);
    json_object_put(src);
    close(dfd);
}
