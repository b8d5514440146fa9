/* events: GET /api/jobs/<id>/events, Server-Sent Events tailing log.jsonl and job.json.
 *
 * The stream is driven by inotify on the job directory (job.json is replaced by rename) and on
 * log.jsonl (appends), never by sleeping. Order: a state event first; then log events, each
 * with id = the byte offset in log.jsonl just after its record; a state event on every change;
 * after the terminal state, the rest of the log and an end event, then the stream closes. The
 * supervisor writes the terminal state after its last record, so reading the log once more
 * after seeing a terminal state cannot miss a line. A comment line every keepalive interval
 * both keeps proxies from timing out and detects a client that went away (the write fails),
 * which frees the request thread.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util/clock.h"
#include "util/id.h"

#define READ_CHUNK 65536

struct stream {
    struct api *api;
    struct req *r;
    const char *id;
    int dirfd;
    int logfd;
    uint64_t off;   /* next byte of log.jsonl to send */
    int last_state; /* the state last sent, -1 before the first */
    char *buf;      /* READ_CHUNK bytes */
};

static enum rc
send_state(struct stream *s, const struct job *job)
{
    json_object *pub = api_job_public(s->api, s->dirfd, job);
    if (pub == NULL)
        return RC_NOMEM;
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        pub, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    enum rc rc = resp_write(s->r, "event: state\ndata: ", 19);
    if (rc == RC_OK)
        rc = resp_write(s->r, text, len);
    if (rc == RC_OK)
        rc = resp_write(s->r, "\n\n", 2);
    s->last_state = job->state;
    json_object_put(pub);
    return rc;
}

/* Send every whole record from s->off to the current end of the log. */
static enum rc
send_log(struct stream *s)
{
    for (;;) {
        ssize_t got = pread(s->logfd, s->buf, READ_CHUNK, (off_t)s->off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? RC_IO : RC_OK;
        size_t start = 0, n = (size_t)got;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (s->buf[i] != '\n')
                continue;
            char head[64];
            int k = snprintf(head, sizeof(head),
                             "event: log\nid: %llu\ndata: ", (unsigned long long)(s->off + i + 1));
            enum rc rc = resp_write(s->r, head, (size_t)k);
            if (rc == RC_OK)
                rc = resp_write(s->r, s->buf + start, i - start);
            if (rc == RC_OK)
                rc = resp_write(s->r, "\n\n", 2);
            if (rc != RC_OK)
                return rc;
            start = i + 1;
            any = true;
        }
        if (!any) {
            /* A record longer than the chunk cannot be: lines are capped well below it. */
            return RC_OK;
        }
        s->off += start;
        if (start < n)
            return RC_OK; /* a record still being written */
    }
}

/* Read every pending inotify event; true when job.json was replaced or the job dir went away
 * (then reading job.json again tells which). */
static bool
drain_events(int ino)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(ino, buf, sizeof(buf));
        if (n <= 0)
            return changed;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)) ||
                (ev->len > 0 && jobstore_event_is_record(ev->name)))
                changed = true;
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
}

static void
run_stream(struct stream *s, int ino)
{
    struct job job;
    int64_t last_write;
    bool first = true, job_changed = true;
    jobstore_job_init(&job);
    for (;;) {
        /* job.json is read again only when it was replaced: appends to the log, by far the
         * most frequent wake-up, cost one pread and no JSON parse. */
        if (job_changed) {
            struct job fresh;
            int still = -1;
            /* Deleted: the dir left jobs/ (a live supervisor may still write to it). */
            if (jobstore_open_job(s->api->js, s->id, &still) != RC_OK)
                break;
            close(still);
            if (jobstore_load(s->dirfd, &fresh) != RC_OK) {
                jobstore_job_fini(&fresh);
                break; /* deleted */
            }
            jobstore_job_fini(&job);
            job = fresh;
            job_changed = false;
        }
        bool terminal = jobstate_is_terminal(job.state);
        enum rc rc = RC_OK;
        if (first || (int)job.state != s->last_state) {
            /* The log first, so that a state change never overtakes the lines before it. */
            if (!first)
                rc = send_log(s);
            if (rc == RC_OK)
                rc = send_state(s, &job);
            first = false;
        }
        if (rc == RC_OK)
            rc = send_log(s);
        if (rc == RC_OK && terminal)
            rc = resp_write(s->r, "event: end\ndata: {}\n\n", 21);
        if (rc == RC_OK)
            rc = resp_flush(s->r);
        if (rc != RC_OK || terminal)
            break;
        last_write = clock_mono_ms();
        /* Wait for a change or the keepalive. */
        for (;;) {
            struct pollfd p = {ino, POLLIN, 0};
            int64_t left = (int64_t)s->api->cfg->keepalive_ms - (clock_mono_ms() - last_write);
            int r = poll(&p, 1, left > 0 ? (int)left : 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r > 0) {
                job_changed |= drain_events(ino);
                break;
            }
            if (resp_write(s->r, ": keepalive\n\n", 13) != RC_OK || resp_flush(s->r) != RC_OK)
                goto out;
            last_write = clock_mono_ms();
        }
        if (atomic_load(&s->api->shutting_down))
            break;
    }
out:
    jobstore_job_fini(&job);
}

void
api_events(struct api *api, struct req *r, const struct api_args *a)
{
    const char *id = a->id;
    struct stream s = {.api = api, .r = r, .id = id, .dirfd = -1, .logfd = -1, .last_state = -1};
    struct job job;
    int ino = -1;
    bool counted = false;

    if (!api_load_job(api, r, id, &s.dirfd, &job))
        return;
    jobstore_job_fini(&job);
    unsigned n = atomic_fetch_add(&api->streams, 1) + 1;
    counted = true;
    if (n > api->cfg->max_streams) {
        resp_problem(r, PROBLEM_TOO_MANY_STREAMS, NULL, NULL,
                     "the server holds as many live streams as it can; try again shortly, or "
                     "poll the job");
        goto out;
    }
    s.logfd = jobstore_log_open(s.dirfd, JOBSTORE_LOG_READ);
    if (s.logfd < 0) {
        api_internal(r);
        goto out;
    }
    if (!api_log_offset(r, true, s.logfd, &s.off))
        goto out;
    ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino < 0 || jobstore_watch(api->js, id, ino) != RC_OK) {
        log_errno("inotify on job %s", id);
        api_internal(r);
        goto out;
    }
    s.buf = malloc(READ_CHUNK);
    if (s.buf == NULL) {
        api_internal(r);
        goto out;
    }
    if (resp_start(r, 200, "text/event-stream; charset=utf-8",
                   "X-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n") != RC_OK ||
        r->head)
        goto out;
    if (resp_write(r, "retry: 2000\n\n", 13) != RC_OK)
        goto out;
    run_stream(&s, ino);
out:
    free(s.buf);
    if (ino >= 0)
        close(ino);
    if (s.logfd >= 0)
        close(s.logfd);
    close(s.dirfd);
    if (counted)
        atomic_fetch_sub(&api->streams, 1);
}
