/* events: GET /api/jobs/<id>/events, Server-Sent Events tailing the job's log and record.
 *
 * Order: a state event first; then log events, each with id = the byte offset in log.jsonl
 * just after its record; a state event on every change seen, after the log lines written
 * before it; after the terminal state, the rest of the log and an end event, then the stream
 * closes. The supervisor writes the terminal state after its last record, so reading the log
 * to its end after seeing a terminal state cannot miss a line. Records of any size are sent
 * (a record longer than the read chunk is found by scanning ahead, then sent in pieces as the
 * client takes them). A stream resumes after the record whose id comes in Last-Event-ID (or
 * ?offset=). A comment line every keepalive interval keeps proxies from timing out. A stream
 * whose job is deleted closes without end.
 *
 * Streams hold no request thread. The request thread checks the job, the cap and the offset,
 * sends the headers and parks the request (http/park.h); from then on the engine thread drives
 * the stream (step below), woken by inotify on the job directory (the record is replaced by
 * rename) and on the log (appends), by its keepalive timer, and by its client taking bytes;
 * never by sleeping. A client that goes away is noticed at once (nginx closes the
 * connection). A stream reads the log only as fast as its client takes the events (at most
 * PARK_OUT_MAX bytes wait in memory per stream); a client that takes no byte for 4 keepalive
 * intervals is closed and resumes with Last-Event-ID. At most max_streams streams are open
 * (then 503 too_many_streams with Retry-After); at start-up the cap is lowered to what the
 * process's open-file limit allows (its soft limit is raised to the hard one first): a stream
 * holds 3 descriptors (the connection, the job directory, the log).
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http/park.h"
#include "json.h"
#include "log.h"

#define WATCH_JOB       PARK_WATCH_BIT(0)
#define WATCH_LOG       PARK_WATCH_BIT(1)
#define FDS_PER_STREAM  3
#define FDS_RESERVED    256 /* beyond the streams and 4 per request thread */
#define STALL_KEEPALIVE 4   /* keepalive intervals a stream may take no byte */

struct stream {
    struct api *api;
    char id[ID_LEN + 1];  /* the job */
    int dirfd;            /* the job directory */
    int logfd;            /* log.jsonl */
    uint64_t off;         /* next byte of log.jsonl to send */
    uint64_t rec_end;     /* 0, or the end (after its newline) of the record being sent in
                           * pieces: its event header is out, bytes [off, rec_end - 1) are not */
    struct job job;       /* the record as last loaded */
    bool job_stale;       /* the record was replaced since */
    bool started;         /* the first state event is out */
    bool wrote;           /* this step wrote something */
    int last_state;       /* the state last sent (enum job_state), -1 before the first */
    int64_t keepalive_ms; /* from the configuration snapshot the stream began with */
    uint64_t job_ttl;     /* the same */
};

enum log_res {
    LOG_IDLE, /* every whole record is out */
    LOG_FULL, /* out of room: more when the client takes some */
    LOG_FAIL, /* a read failed */
};

static bool
put(struct parked *p, struct stream *s, const void *buf, size_t len)
{
    if (parked_write(p, buf, len) != RC_OK)
        return false;
    s->wrote = true;
    return true;
}

/* The state event; false when it does not fit now. */
static bool
send_state(struct parked *p, struct stream *s)
{
    json_object *pub = api_job_public(s->api, s->job_ttl, s->dirfd, &s->job);
    if (pub == NULL)
        return false;
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        pub, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    bool ok = parked_room(p) >= len + 21 && put(p, s, "event: state\ndata: ", 19) &&
              put(p, s, text, len) && put(p, s, "\n\n", 2);
    if (ok)
        s->last_state = (int)s->job.state;
    json_object_put(pub);
    return ok;
}

static bool
put_log_head(struct parked *p, struct stream *s, uint64_t id, size_t datalen)
{
    char head[64];
    int k = snprintf(head, sizeof(head), "event: log\nid: %" PRIu64 "\ndata: ", id);
    return parked_room(p) >= (size_t)k + datalen && put(p, s, head, (size_t)k);
}

/* The rest of a record being sent in pieces, then its blank line. */
static enum log_res
send_piece(struct parked *p, struct stream *s)
{
    char *buf = parked_scratch(p);
    while (s->off + 1 < s->rec_end) {
        size_t want = s->rec_end - 1 - s->off;
        size_t room = parked_room(p);
        if (want > room)
            want = room;
        if (want > PARK_SCRATCH)
            want = PARK_SCRATCH;
        if (want == 0)
            return LOG_FULL;
        ssize_t got = pread(s->logfd, buf, want, (off_t)s->off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || !put(p, s, buf, (size_t)got))
            return LOG_FAIL;
        s->off += (uint64_t)got;
    }
    if (!(parked_room(p) >= 2 && put(p, s, "\n\n", 2)))
        return LOG_FULL;
    s->off = s->rec_end;
    s->rec_end = 0;
    return LOG_IDLE;
}

/* A record longer than the chunk starts at s->off: find its end and send its event header
 * (then s->rec_end is set and send_piece sends the rest). LOG_IDLE without s->rec_end when it
 * is not whole yet (it is being written). */
static enum log_res
start_long_record(struct parked *p, struct stream *s)
{
    char *buf = parked_scratch(p);
    uint64_t at = s->off + PARK_SCRATCH; /* the first chunk had no newline */
    for (;;) {
        ssize_t got = pread(s->logfd, buf, PARK_SCRATCH, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return LOG_FAIL;
        if (got == 0)
            return LOG_IDLE;
        const char *nl = memchr(buf, '\n', (size_t)got);
        if (nl != NULL) {
            uint64_t end = at + (uint64_t)(nl - buf) + 1;
            if (!put_log_head(p, s, end, 0))
                return LOG_FULL;
            s->rec_end = end;
            return LOG_IDLE;
        }
        at += (uint64_t)got;
    }
}

/* Send the whole records from s->off on, as far as the room goes. */
static enum log_res
send_log(struct parked *p, struct stream *s)
{
    char *buf = parked_scratch(p);
    for (;;) {
        if (s->rec_end > 0) {
            enum log_res lr = send_piece(p, s);
            if (lr != LOG_IDLE)
                return lr;
        }
        ssize_t got = pread(s->logfd, buf, PARK_SCRATCH, (off_t)s->off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return LOG_FAIL;
        size_t n = (size_t)got, start = 0;
        bool full = false;
        while (start < n) {
            const char *nl = memchr(buf + start, '\n', n - start);
            if (nl == NULL)
                break;
            size_t end = (size_t)(nl - buf);
            if (!put_log_head(p, s, s->off + end + 1, end - start + 2)) {
                full = true;
                break;
            }
            if (!put(p, s, buf + start, end - start) || !put(p, s, "\n\n", 2))
                return LOG_FAIL;
            start = end + 1;
        }
        s->off += start;
        if (full)
            return LOG_FULL;
        if (n < PARK_SCRATCH)
            return LOG_IDLE; /* the end of the log, or a record still being written */
        if (start == 0) {
            enum log_res lr = start_long_record(p, s);
            if (s->rec_end == 0)
                return lr; /* not whole yet, no room, or a read failed */
        }
        /* The chunk ended inside a record: read on from its start. */
    }
}

static enum park_next
stream_begin(struct parked *p, struct stream *s)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", s->dirfd);
    if (parked_watch(p, path, JOBSTORE_RECORD_EVENTS, jobstore_event_is_record, WATCH_JOB) !=
        RC_OK) {
        log_errno("inotify on a job directory");
        return PARK_ABORT;
    }
    (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", s->logfd);
    if (parked_watch(p, path, JOBSTORE_LOG_EVENTS, NULL, WATCH_LOG) != RC_OK) {
        log_errno("inotify on a job log");
        return PARK_ABORT;
    }
    s->job_stale = true;
    return PARK_WAIT;
}

static enum park_next
stream_step(struct parked *p, void *ctx, unsigned why)
{
    struct stream *s = ctx;
    enum park_next next = PARK_WAIT;
    s->wrote = false;
    if ((why & PARK_START) && stream_begin(p, s) == PARK_ABORT)
        return PARK_ABORT;
    if (why & WATCH_JOB)
        s->job_stale = true;
    if (s->job_stale) {
        /* The record is loaded again only when it was replaced: appends to the log, by far
         * the most frequent wake-up, cost one pread and no JSON parse. */
        struct job fresh;
        int still = -1;
        /* Deleted: the directory left jobs/ (its supervisor may still write to it). */
        if (jobstore_open_job(s->api->js, s->id, &still) != RC_OK)
            return PARK_END;
        close(still);
        if (jobstore_load(s->dirfd, &fresh) != RC_OK) {
            jobstore_job_fini(&fresh);
            return PARK_END; /* deleted */
        }
        jobstore_job_fini(&s->job);
        s->job = fresh;
        s->job_stale = false;
    }
    if (!s->started) {
        if (!send_state(p, s))
            return PARK_ABORT;
        s->started = true;
    }
    /* The log first, so that a state change never overtakes the lines before it. */
    enum log_res lr = send_log(p, s);
    if (lr == LOG_FAIL) {
        log_errno("reading a job log for its stream");
        return PARK_ABORT;
    }
    if (lr == LOG_FULL) {
        next = PARK_MORE;
    } else {
        bool changed = (int)s->job.state != s->last_state;
        if (changed && !send_state(p, s))
            next = PARK_MORE;
        else if (jobstate_is_terminal(s->job.state))
            next = put(p, s, "event: end\ndata: {}\n\n", 21) ? PARK_END : PARK_MORE;
    }
    if ((why & PARK_TIMER) && !s->wrote && parked_room(p) >= 13)
        (void)put(p, s, ": keepalive\n\n", 13);
    if (s->wrote || (why & (PARK_START | PARK_TIMER)))
        parked_timer(p, s->keepalive_ms);
    return next;
}

static void
stream_free(struct stream *s)
{
    if (s == NULL)
        return;
    jobstore_job_fini(&s->job);
    if (s->logfd >= 0)
        close(s->logfd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    atomic_fetch_sub(&s->api->streams, 1);
    free(s);
}

static void
stream_done(void *ctx, enum park_done how)
{
    if (how == PARK_DONE_STALLED)
        log_info("an event stream took nothing for %d keepalive intervals: closed",
                 STALL_KEEPALIVE);
    stream_free(ctx);
}

static const struct park_ops stream_ops = {.step = stream_step, .done = stream_done};

void
api_events(struct api *api, struct req *r, const struct api_args *a)
{
    struct stream *s = NULL;
    struct job job;
    int dirfd = -1;

    if (!api_load_job(api, r, a->id, &dirfd, &job))
        return;
    jobstore_job_fini(&job);
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(dirfd);
        api_internal(r);
        return;
    }
    s->api = api;
    memcpy(s->id, a->id, sizeof(s->id));
    s->dirfd = dirfd;
    s->logfd = -1;
    s->last_state = -1;
    s->keepalive_ms = (int64_t)r->cfg->keepalive_ms;
    s->job_ttl = r->cfg->job_ttl;
    jobstore_job_init(&s->job);
    /* Counted from here on; stream_free gives the slot back. */
    unsigned n = atomic_fetch_add(&api->streams, 1) + 1;
    if (n > r->cfg->max_streams || n > api->fd_streams) {
        resp_problem(r, PROBLEM_TOO_MANY_STREAMS, NULL, NULL,
                     "the server holds as many live streams as it can; try again shortly, or "
                     "poll the job");
        goto out;
    }
    s->logfd = jobstore_log_open(s->dirfd, JOBSTORE_LOG_READ);
    if (s->logfd < 0) {
        api_internal(r);
        goto out;
    }
    if (!api_log_offset(r, true, s->logfd, &s->off))
        goto out;
    if (resp_start(r, 200, "text/event-stream; charset=utf-8",
                   "X-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\n") != RC_OK ||
        r->head || resp_write(r, "retry: 2000\n\n", 13) != RC_OK)
        goto out;
    if (park_detach(api->park, r, &stream_ops, s, s->keepalive_ms * STALL_KEEPALIVE) == RC_OK)
        return; /* the engine owns the stream now */
out:
    stream_free(s);
}

/* The streams that fit the open-file limit (raised to its hard limit first). */
static unsigned
fd_capacity(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return UINT_MAX;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warnno("cannot raise the open-file limit to %llu", (unsigned long long)want);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return UINT_MAX;
    rlim_t reserved = (rlim_t)cfg->threads * 4 + FDS_RESERVED;
    rlim_t fit = rl.rlim_cur > reserved ? (rl.rlim_cur - reserved) / FDS_PER_STREAM : 0;
    if (fit > UINT_MAX)
        fit = UINT_MAX;
    if (fit < cfg->max_streams)
        log_warn("max_streams %llu does not fit the open-file limit %llu (%d descriptors a "
                 "stream, %llu kept for the rest): at most %llu streams",
                 (unsigned long long)cfg->max_streams, (unsigned long long)rl.rlim_cur,
                 FDS_PER_STREAM, (unsigned long long)reserved, (unsigned long long)fit);
    return (unsigned)fit;
}

enum rc
api_events_start(struct api *api, const struct config *cfg)
{
    api->fd_streams = fd_capacity(cfg);
    return park_start(&api->park);
}

void
api_events_stop(struct api *api)
{
    park_stop(api->park);
    api->park = NULL;
}
