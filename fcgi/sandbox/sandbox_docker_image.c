/* sandbox_docker_image: the docker backend's agent image, built once per definition through the
 * Engine's POST /build, its output in the job's log. */
#include "sandbox/sandbox_docker_image.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "jobs/collect.h"
#include "json.h"
#include "log.h"
#include "util/fsutil.h"

#define IMAGE_REPO      "labbox-image"
#define LOOKUP_MS       30000L
#define BUILD_MS        1800000L /* a build, unless the I/O deadline is sooner */
#define CONTEXT_DIR     ".image-context"
#define BUILD_ERROR_MAX 300

/* The state of one build's response: a stream of JSON objects. */
struct build {
    struct sandbox *sb;
    struct json_tokener *tok;
    struct sandbox_notes notes;
    char error[BUILD_ERROR_MAX];
};

static void
on_object(struct build *b, json_object *o)
{
    const char *s = json_get_str(o, "stream");
    const char *e = json_get_str(o, "error");
    if (s != NULL)
        sandbox_notes_feed(&b->notes, s, strlen(s));
    if (e != NULL && b->error[0] == '\0') {
        size_t i = 0;
        for (; e[i] != '\0' && i + 1 < sizeof(b->error); i++) {
            b->error[i] = e[i];
            if ((unsigned char)e[i] < 0x20)
                b->error[i] = ' ';
        }
        b->error[i] = '\0';
    }
}

/* httpc_write_fn: the engine's build output, JSON objects one after the other. */
static enum rc
on_build_output(void *ctx, const char *p, size_t n)
{
    struct build *b = ctx;
    while (n > 0) {
        json_object *o = json_tokener_parse_ex(b->tok, p, (int)(n > 65536 ? 65536 : n));
        enum json_tokener_error err = json_tokener_get_error(b->tok);
        size_t used = json_tokener_get_parse_end(b->tok);
        if (o != NULL) {
            on_object(b, o);
            json_object_put(o);
        } else if (err != json_tokener_continue) {
            json_tokener_reset(b->tok);
            used = used > 0 ? used : 1; /* skip what does not parse (stray whitespace) */
        }
        if (used == 0 || used > n)
            used = n > 65536 ? 65536 : n;
        p += used;
        n -= used;
    }
    return RC_OK;
}

static enum rc
read_fd(void *ctx, char *buf, size_t cap, size_t *out_n)
{
    ssize_t r = read(*(const int *)ctx, buf, cap);
    if (r < 0) {
        log_errno("read of the image build context");
        return RC_IO;
    }
    *out_n = (size_t)r;
    return RC_OK;
}

static enum rc
write_fd(void *ctx, const void *p, size_t len)
{
    return fs_write_all(*(const int *)ctx, p, len);
}

/* The build context as a tar in fd: the Dockerfile of def and its context files, made in a
 * directory of the job dir and packed with collect_make_tar. */
static enum rc
context_tar(struct sandbox *sb, const struct imagedef *def, int fd)
{
    char *text = imagedef_dockerfile(def);
    int cdir = -1;
    enum rc rc = text != NULL ? RC_OK : RC_NOMEM;
    RC_IGNORE(fs_rmtree_at(sb->job->dirfd, CONTEXT_DIR));
    if (rc == RC_OK && mkdirat(sb->job->dirfd, CONTEXT_DIR, 0700) != 0)
        rc = RC_IO;
    if (rc == RC_OK &&
        (cdir = openat(sb->job->dirfd, CONTEXT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = RC_IO;
    if (rc == RC_OK)
        rc = fs_write_atomic(cdir, "Dockerfile", text, strlen(text));
    for (size_t i = 0; rc == RC_OK && i < def->n_files; i++) {
        const char *name = def->files[i].name;
        while (*name == '/')
            name++;
        rc = fs_write_atomic(cdir, name, def->files[i].data, def->files[i].len);
    }
    if (rc == RC_OK)
        rc = collect_make_tar(cdir, "", 0, 0, write_fd, &fd);
    if (rc == RC_OK && lseek(fd, 0, SEEK_SET) != 0)
        rc = RC_IO;
    if (cdir >= 0)
        (void)close(cdir);
    RC_IGNORE(fs_rmtree_at(sb->job->dirfd, CONTEXT_DIR));
    free(text);
    if (rc != RC_OK && rc != RC_NOMEM)
        return sandbox_fail(sb, "docker: cannot make the image's build context: %s", rc_str(rc));
    return rc;
}

/* POST /build of def as tag, its output into the job's log. */
static enum rc
build(struct sandbox *sb, struct httpc *http, const char *api, const struct imagedef *def,
      const char *tag)
{
    struct build b = {.sb = sb};
    struct httpc_resp r = {0};
    char path[600], qtag[200];
    int fd = -1;
    enum rc rc = httpc_escape(tag, qtag, sizeof(qtag));
    int k = snprintf(path, sizeof(path), "%s/build?t=%s&rm=1&forcerm=1", api, qtag);
    if (rc != RC_OK || k < 0 || (size_t)k >= sizeof(path))
        return sandbox_fail(sb, "docker: the image tag does not fit a request");
    b.tok = json_tokener_new();
    if (b.tok == NULL || sandbox_notes_open(sb, "image build: ", &b.notes) != RC_OK) {
        json_tokener_free(b.tok);
        return RC_NOMEM;
    }
    rc = sandbox_tmpfile(sb, &fd);
    if (rc == RC_OK)
        rc = context_tar(sb, def, fd);
    off_t size = rc == RC_OK ? lseek(fd, 0, SEEK_END) : -1;
    if (rc == RC_OK && (size < 0 || lseek(fd, 0, SEEK_SET) != 0))
        rc = sandbox_fail(sb, "docker: the image's build context is unreadable");
    if (rc == RC_OK) {
        struct httpc_req rq = {
            .method = "POST",
            .path = path,
            .content_type = "application/x-tar",
            .read_fn = read_fd,
            .read_ctx = &fd,
            .read_len = (int64_t)size,
            .write_fn = on_build_output,
            .write_ctx = &b,
            .timeout_ms = sandbox_io_ms(sb, BUILD_MS),
        };
        rc = httpc_do(http, &rq, &r);
        if (rc != RC_OK)
            rc = sandbox_fail(sb, "docker engine at %s: the image build failed: %s",
                              sb->cfg->docker_host,
                              rc == RC_TIMEOUT ? "timed out" : httpc_error(http));
        else if (r.status != 200)
            rc = sandbox_fail(sb, "docker image build failed: HTTP %ld: %.200s", r.status,
                              r.body ? r.body : "");
        else if (b.error[0] != '\0')
            rc = sandbox_fail(sb, "docker image build failed: %s", b.error);
    }
    sandbox_notes_close(&b.notes);
    json_tokener_free(b.tok);
    httpc_resp_fini(&r);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

enum rc
docker_image_prepare(struct sandbox *sb, struct httpc *http, const char *api, char *out, size_t cap)
{
    struct sandbox_image img;
    struct httpc_resp r = {0};
    char hash[65], tag[128], path[300];
    enum rc rc = sandbox_image_load(sb, sb->cfg->docker_image, NULL, &img);
    if (rc != RC_OK)
        goto out;
    if (img.def.plain) {
        int k = snprintf(out, cap, "%s", sb->cfg->docker_image);
        rc = k >= 0 && (size_t)k < cap ? RC_OK : sandbox_fail(sb, "docker_image is too long");
        goto out;
    }
    imagedef_hash(&img.def, "docker", hash);
    int k = snprintf(tag, sizeof(tag), IMAGE_REPO ":%.16s", hash);
    int l = snprintf(path, sizeof(path), "%s/images/%s/json", api, tag);
    int m = snprintf(out, cap, "%s", tag);
    if (k < 0 || (size_t)k >= sizeof(tag) || l < 0 || (size_t)l >= sizeof(path) || m < 0 ||
        (size_t)m >= cap) {
        rc = sandbox_fail(sb, "docker: the image tag does not fit");
        goto out;
    }
    struct httpc_req rq = {.method = "GET",
                           .path = path,
                           .max_body = 1 << 20,
                           .timeout_ms = sandbox_io_ms(sb, LOOKUP_MS)};
    rc = httpc_do(http, &rq, &r);
    if (rc != RC_OK) {
        rc = sandbox_fail(sb, "docker engine at %s: %s", sb->cfg->docker_host, httpc_error(http));
        goto out;
    }
    if (r.status == 200)
        goto out; /* built before: the definition is unchanged */
    sandbox_note(sb, "docker image %s from %s on %s", tag, img.what, img.def.commands[0] + 5);
    rc = build(sb, http, api, &img.def, tag);
out:
    httpc_resp_fini(&r);
    sandbox_image_fini(&img);
    return rc;
}
