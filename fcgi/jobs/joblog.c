/* joblog: writes and recovers log.jsonl records. */
#include "jobs/joblog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "json.h"
#include "log.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"

#define SYSTEM_MARGIN 65536 /* bytes system records may use past max_bytes */

const char *
joblog_stream_str(enum joblog_stream s)
{
    static const char *const names[JOBLOG_STREAM__MAX] = {"stdout", "stderr", "system"};
    return (unsigned)s < JOBLOG_STREAM__MAX ? names[s] : "system";
}

enum rc
joblog_open(struct joblog *jl, int fd, uint64_t max_bytes)
{
    struct stat st;
    memset(jl, 0, sizeof(*jl));
    jl->fd = fd;
    if (jl->fd < 0)
        return RC_IO;
    if (fstat(jl->fd, &st) != 0) {
        log_errno("fstat the job log");
        close(jl->fd);
        jl->fd = -1;
        return RC_IO;
    }
    jl->size = (uint64_t)st.st_size;
    jl->max_bytes = max_bytes;
    jl->full = jl->size >= max_bytes;
    jl->nospace = false;
    return RC_OK;
}

void
joblog_close(struct joblog *jl)
{
    if (jl->fd >= 0)
        close(jl->fd);
    jl->fd = -1;
}

enum rc
joblog_append(struct joblog *jl, enum joblog_stream s, const char *line, size_t len, uint64_t pos)
{
    enum rc rc = RC_NOMEM;
    json_object *rec = json_object_new_object();
    if (rec == NULL)
        return RC_NOMEM;
    if (!json_set_i64(rec, "t", clock_real_ms()) ||
        !json_set_str(rec, "stream", joblog_stream_str(s)))
        goto out;
    json_object *l = json_object_new_string_len(line, (int)len);
    if (l == NULL || json_object_object_add(rec, "line", l) != 0)
        goto out;
    if (s != JOBLOG_SYSTEM && !json_set_i64(rec, "pos", (int64_t)pos))
        goto out;
    size_t n = 0;
    const char *text = json_object_to_json_string_length(
        rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (text == NULL)
        goto out;
    uint64_t limit = jl->max_bytes + (s == JOBLOG_SYSTEM ? SYSTEM_MARGIN : 0);
    if (jl->size + n + 1 > limit) {
        if (s != JOBLOG_SYSTEM)
            jl->full = true;
        rc = RC_TOOBIG;
        goto out;
    }
    /* One write for record and newline, so a reader sees whole lines. */
    char *buf = malloc(n + 1);
    if (buf == NULL)
        goto out;
    memcpy(buf, text, n);
    buf[n] = '\n';
    rc = fs_write_all(jl->fd, buf, n + 1);
    free(buf);
    if (rc != RC_OK) {
        /* Never a torn record: what was written of it goes (which frees space too). */
        int e = errno;
        jl->nospace = jl->nospace || e == ENOSPC || e == EDQUOT;
        if (ftruncate(jl->fd, (off_t)jl->size) != 0)
            log_errno("cut a torn record off log.jsonl");
        errno = e;
        log_errno("write log.jsonl");
    } else {
        jl->size += n + 1;
    }
out:
    json_object_put(rec);
    return rc;
}

enum rc
joblog_system(struct joblog *jl, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k < 0)
        return RC_BADREQ;
    size_t n = (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
    return joblog_append(jl, JOBLOG_SYSTEM, line, n, 0);
}

enum rc
joblog_recover_positions(int fd, uint64_t out_pos[2])
{
    out_pos[0] = out_pos[1] = 0;
    if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return RC_IO;
    enum rc rc = RC_OK;
    char buf[65536];
    char *line = NULL;
    size_t line_len = 0, line_cap = 0;
    uint64_t off = 0, good_end = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = RC_IO;
            goto out;
        }
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            off++;
            if (buf[i] != '\n') {
                if (line_len + 2 > line_cap) {
                    size_t nc = line_cap ? line_cap * 2 : 4096;
                    char *nl = realloc(line, nc);
                    if (nl == NULL) {
                        rc = RC_NOMEM;
                        goto out;
                    }
                    line = nl;
                    line_cap = nc;
                }
                line[line_len++] = buf[i];
                continue;
            }
            good_end = off;
            json_object *rec = NULL;
            if (line_len > 0) {
                line[line_len] = '\0'; /* room was kept when the line grew */
                rec = json_tokener_parse(line);
            }
            const char *st = json_get_str(rec, "stream");
            int64_t pos = json_get_i64(rec, "pos", -1);
            if (st != NULL && pos >= 0) {
                if (strcmp(st, "stdout") == 0)
                    out_pos[0] = (uint64_t)pos;
                else if (strcmp(st, "stderr") == 0)
                    out_pos[1] = (uint64_t)pos;
            }
            json_object_put(rec);
            line_len = 0;
        }
    }
    if (good_end < off && ftruncate(fd, (off_t)good_end) != 0)
        rc = RC_IO;
out:
    free(line);
    return rc;
}

bool
joblog_record_text(const char *rec, size_t len, json_object **out_obj, const char **out_prefix,
                   const char **out_line)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, rec, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    const char *stream = json_get_str(o, "stream");
    *out_obj = o;
    *out_line = json_get_str(o, "line");
    *out_prefix = "";
    if (stream != NULL && strcmp(stream, "stderr") == 0)
        *out_prefix = "[stderr] ";
    else if (stream != NULL && strcmp(stream, "system") == 0)
        *out_prefix = "[labbox] ";
    return *out_line != NULL;
}
