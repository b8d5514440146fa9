/* sandbox: the registry of compiled-in backends, the instance, and the policy every backend
 * shares (emitting output, I/O deadlines, exit -> result, temp files, tar streams of outputs). */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "parse/logsplit.h"
#include "util/clock.h"
#include "util/fsutil.h"

#define TAR_SLACK_ENTRIES   16u        /* entries allowed beyond output_max_files */
#define TAR_BYTES_PER_ENTRY 1536u      /* a header and up to 1 KiB of padding and extensions */
#define TAR_SLACK_BYTES     (1u << 20) /* end-of-archive blocks and record padding */
#define TMPFILE_TRIES       100        /* names tried where O_TMPFILE is missing */

#if WITH_LOCAL
extern const struct sandbox_ops sandbox_local_ops;
#endif
#if WITH_DOCKER
extern const struct sandbox_ops sandbox_docker_ops;
#endif
#if WITH_MODAL
extern const struct sandbox_ops sandbox_modal_ops;
#endif

static const struct sandbox_ops *const registry[] = {
#if WITH_LOCAL
    &sandbox_local_ops,
#endif
#if WITH_DOCKER
    &sandbox_docker_ops,
#endif
#if WITH_MODAL
    &sandbox_modal_ops,
#endif
    NULL,
};

const struct sandbox_ops *
sandbox_ops_by_name(const char *name)
{
    for (size_t i = 0; registry[i] != NULL; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const char *
sandbox_names(void)
{
    static char names[64];
    if (names[0] == '\0') {
        size_t n = 0;
        for (size_t i = 0; registry[i] != NULL; i++) {
            int k = snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "", registry[i]->name);
            if (k > 0 && (size_t)k < sizeof(names) - n)
                n += (size_t)k;
        }
    }
    return names;
}

struct sandbox *
sandbox_new(const struct sandbox_ops *ops, const struct config *cfg, const struct sandbox_job *job)
{
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return NULL;
    sb->ops = ops;
    sb->cfg = cfg;
    sb->job = job;
    sb->state = json_object_new_object();
    if (ops->priv_size > 0)
        sb->priv = calloc(1, ops->priv_size);
    if (sb->state == NULL || (ops->priv_size > 0 && sb->priv == NULL)) {
        json_object_put(sb->state);
        free(sb->priv);
        free(sb);
        return NULL;
    }
    return sb;
}

void
sandbox_free(struct sandbox *sb)
{
    if (sb == NULL)
        return;
    sb->ops->fini(sb);
    json_object_put(sb->state);
    free(sb->priv);
    free(sb);
}

enum rc
sandbox_fail(struct sandbox *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(sb->error, sizeof(sb->error), fmt, ap);
    va_end(ap);
    return RC_BACKEND;
}

enum rc
sandbox_persist(struct sandbox *sb)
{
    return sb->on_persist ? sb->on_persist(sb->cb_ctx, sb) : RC_OK;
}

const char *
sandbox_status_str(enum sandbox_status s)
{
    static const char *const names[SANDBOX_STATUS__MAX] = {
        "ok",            /* SANDBOX_OK */
        "runtime_error", /* SANDBOX_RUNTIME_ERROR */
        "signaled",      /* SANDBOX_SIGNALED */
        "timeout",       /* SANDBOX_TIMEOUT */
        "oom",           /* SANDBOX_OOM */
        "internal",      /* SANDBOX_INTERNAL */
    };
    return (unsigned)s < SANDBOX_STATUS__MAX ? names[s] : "invalid";
}

bool
sandbox_status_parse(const char *s, enum sandbox_status *out)
{
    for (int i = 0; s != NULL && i < SANDBOX_STATUS__MAX; i++) {
        if (strcmp(s, sandbox_status_str((enum sandbox_status)i)) == 0) {
            *out = (enum sandbox_status)i;
            return true;
        }
    }
    return false;
}

enum rc
sandbox_nop_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    (void)sb;
    (void)claimed;
    (void)ctx;
    return RC_OK;
}

enum rc
sandbox_noattach(struct sandbox *sb)
{
    return sandbox_fail(sb, "the %s backend cannot re-attach to a sandbox", sb->ops->name);
}

/*** Output ***/

void
sandbox_emit(struct sandbox *sb, enum sandbox_stream s, const char *p, size_t n)
{
    if (n == 0)
        return;
    sb->resume_offset[s] += n;
    if (sb->on_output != NULL)
        sb->on_output(sb->cb_ctx, s, p, n);
}

void
sandbox_emit_at(struct sandbox *sb, enum sandbox_stream s, uint64_t at, const char *p, size_t n)
{
    uint64_t done = sb->resume_offset[s];
    if (at + n <= done)
        return;
    size_t skip = done > at ? (size_t)(done - at) : 0;
    if (at > done)
        log_warn("%s: %llu bytes of %s are missing", sb->ops->name, (unsigned long long)(at - done),
                 s == SANDBOX_STDOUT ? "stdout" : "stderr");
    sandbox_emit(sb, s, p + skip, n - skip);
    sb->resume_offset[s] = at + n;
}

/*** Notes: labbox's own lines in the job's log ***/

void
sandbox_note(struct sandbox *sb, const char *fmt, ...)
{
    char line[SANDBOX_NOTE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= sizeof(line)) {
        /* Cut on a character boundary: never half a UTF-8 sequence. */
        size_t n = sizeof(line) - 1;
        while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
            n--;
        line[n] = '\0';
    }
    log_debug("%s: note: %s", sb->ops->name, line);
    if (sb->on_note != NULL)
        sb->on_note(sb->cb_ctx, line);
}

static enum rc
note_line(void *ctx, const char *line, size_t len, bool cut, uint64_t consumed)
{
    struct sandbox_notes *n = ctx;
    (void)cut;
    (void)consumed;
    sandbox_note(n->sb, "%s%.*s", n->prefix, (int)len, line);
    return RC_OK;
}

enum rc
sandbox_notes_open(struct sandbox *sb, const char *prefix, struct sandbox_notes *n)
{
    size_t pl = strlen(prefix);
    n->sb = sb;
    n->prefix = prefix;
    n->ls = logsplit_new(SANDBOX_NOTE_MAX - (pl < 400 ? pl : 400), 0, note_line, n);
    return n->ls != NULL ? RC_OK : RC_NOMEM;
}

void
sandbox_notes_feed(struct sandbox_notes *n, const char *p, size_t len)
{
    if (n->ls != NULL)
        RC_IGNORE(logsplit_feed(n->ls, p, len));
}

void
sandbox_notes_close(struct sandbox_notes *n)
{
    if (n->ls == NULL)
        return;
    RC_IGNORE(logsplit_finish(n->ls));
    logsplit_free(n->ls);
    n->ls = NULL;
}

/*** The agent's image ***/

void
sandbox_image_fini(struct sandbox_image *img)
{
    imagedef_fini(&img->def);
    free(img->dockerfile);
    free(img->requirements);
    memset(img, 0, sizeof(*img));
}

/* <dirfd>/name into *out (heap) when it is a regular file; NULL when absent. */
static enum rc
read_def_file(struct sandbox *sb, int dirfd, const char *name, char **out, size_t *out_len)
{
    enum rc rc = fs_read_all(dirfd, name, IMAGEDEF_MAX_FILE, out, out_len);
    if (rc == RC_NOTFOUND) {
        *out = NULL;
        return RC_OK;
    }
    if (rc == RC_TOOBIG)
        return sandbox_fail(sb, "the agent's %s is larger than %d bytes", name, IMAGEDEF_MAX_FILE);
    if (rc != RC_OK && rc != RC_NOMEM)
        return sandbox_fail(sb, "the agent's %s cannot be read", name);
    return rc;
}

enum rc
sandbox_image_load(struct sandbox *sb, const char *base, const char *extra_json,
                   struct sandbox_image *out)
{
    size_t dl = 0, rl = 0;
    char err[300];
    memset(out, 0, sizeof(*out));
    int dfd = open(sb->job->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_errno("open %s", sb->job->work_dir);
        return sandbox_fail(sb, "cannot open the job's work directory");
    }
    enum rc rc = read_def_file(sb, dfd, "Dockerfile", &out->dockerfile, &dl);
    if (rc == RC_OK && out->dockerfile == NULL)
        rc = read_def_file(sb, dfd, "requirements.txt", &out->requirements, &rl);
    (void)close(dfd);
    if (rc != RC_OK)
        return rc;
    rc = imagedef_build(&out->def, base, out->dockerfile, dl, out->requirements, rl, extra_json,
                        err, sizeof(err));
    if (rc == RC_BADREQ)
        return sandbox_fail(sb, "the agent's image definition is not usable: %s", err);
    if (rc != RC_OK)
        return rc;
    bool extra = extra_json != NULL && extra_json[0] != '\0';
    (void)snprintf(out->what, sizeof(out->what), "%s%s%s",
                   out->dockerfile ? "Dockerfile" : (out->requirements ? "requirements.txt" : ""),
                   extra && (out->dockerfile || out->requirements) ? " and " : "",
                   extra ? "modal_image_commands" : "");
    return RC_OK;
}

/*** Time ***/

long
sandbox_io_ms(const struct sandbox *sb, long cap_ms)
{
    if (sb->deadline_ms <= 0)
        return cap_ms;
    int64_t rest = sb->deadline_ms - clock_mono_ms();
    if (rest < 1)
        rest = 1;
    return rest < cap_ms ? (long)rest : cap_ms;
}

/*** How the agent ended ***/

void
sandbox_result_from_exit(struct sandbox_result *out, int code, int signo, bool oom)
{
    if (signo <= 0 && code > 128 && code <= 128 + 64) {
        signo = code - 128; /* 128 + n: died of signal n */
        code = -1;
    }
    if (signo > 0) {
        out->status = SANDBOX_SIGNALED;
        out->signo = signo;
        out->exit_code = -1;
    } else {
        out->status = code == 0 ? SANDBOX_OK : SANDBOX_RUNTIME_ERROR;
        out->signo = 0;
        out->exit_code = code >= 0 ? code : -1;
    }
    if (oom && out->status != SANDBOX_OK)
        out->status = SANDBOX_OOM;
}

void
sandbox_result_from_wait(struct sandbox_result *out, int wstatus, bool oom)
{
    if (WIFSIGNALED(wstatus))
        sandbox_result_from_exit(out, -1, WTERMSIG(wstatus), oom);
    else
        sandbox_result_from_exit(out, WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, 0, oom);
}

/*** Temp files and tar streams of outputs ***/

enum rc
sandbox_tmpfile(struct sandbox *sb, int *out_fd)
{
    int dirfd = sb->job->dirfd;
    int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    char name[64];
    for (int i = 0; fd < 0 && i < TMPFILE_TRIES; i++) {
        int k = snprintf(name, sizeof(name), ".sandbox-tmp-%ld-%d", (long)getpid(), i);
        if (k < 0 || (size_t)k >= sizeof(name))
            break;
        fd = openat(dirfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0)
            (void)unlinkat(dirfd, name, 0);
        else if (errno != EEXIST)
            break;
    }
    *out_fd = fd;
    if (fd >= 0)
        return RC_OK;
    log_errno("cannot create a temp file in %s", sb->job->dir);
    return sandbox_fail(sb, "cannot create a temporary file in the job directory");
}

uint64_t
sandbox_tar_cap(const struct config *cfg)
{
    uint64_t files = cfg->output_max_files, bytes = cfg->output_max_bytes;
    uint64_t per = TAR_BYTES_PER_ENTRY;
    if (files > (UINT64_MAX - TAR_SLACK_BYTES) / per - TAR_SLACK_ENTRIES)
        return UINT64_MAX;
    uint64_t slack = (files + TAR_SLACK_ENTRIES) * per + TAR_SLACK_BYTES;
    return bytes > UINT64_MAX - slack ? UINT64_MAX : bytes + slack;
}

enum rc
sandbox_tar_in_open(struct sandbox *sb, struct sandbox_tar_in *t)
{
    *t = (struct sandbox_tar_in){.sb = sb, .fd = -1, .cap = sandbox_tar_cap(sb->cfg)};
    return sandbox_tmpfile(sb, &t->fd);
}

enum rc
sandbox_tar_in_write(void *ctx, const char *p, size_t n)
{
    struct sandbox_tar_in *t = ctx;
    if (n > t->cap - t->bytes) {
        t->cut = true;
        return RC_TOOBIG;
    }
    t->bytes += n;
    enum rc rc = fs_write_all(t->fd, p, n);
    if (rc != RC_OK)
        log_errno("writing the outputs tar to a temp file");
    return rc;
}

enum rc
sandbox_tar_in_extract(struct sandbox_tar_in *t, int outputs_dirfd, struct collect_stats *out)
{
    struct sandbox *sb = t->sb;
    struct collect_limits lim = {sb->cfg->output_max_bytes, sb->cfg->output_max_files};
    memset(out, 0, sizeof(*out));
    if (lseek(t->fd, 0, SEEK_SET) != 0) {
        log_errno("lseek outputs tar");
        return sandbox_fail(sb, "the outputs tar is unreadable");
    }
    enum rc rc = collect_tar_fd(t->fd, SANDBOX_OUTPUTS_DIR "/", outputs_dirfd, &lim, out);
    if (t->cut) {
        log_info("%s: the outputs tar went over %llu bytes: keeping what came before",
                 sb->ops->name, (unsigned long long)t->cap);
        out->over_limit = true;
        if (rc == RC_BADREQ)
            rc = RC_OK; /* a tar cut at our cap ends badly: what came before it stays */
    }
    if (rc == RC_BADREQ)
        return sandbox_fail(sb, "the outputs archive from the %s sandbox is not a valid tar",
                            sb->ops->name);
    if (rc != RC_OK)
        return sandbox_fail(sb, "cannot extract the outputs: %s", rc_str(rc));
    return RC_OK;
}

void
sandbox_tar_in_close(struct sandbox_tar_in *t)
{
    if (t->fd >= 0)
        (void)close(t->fd);
    t->fd = -1;
}
