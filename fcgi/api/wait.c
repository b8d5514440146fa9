/* wait: GET /api/jobs/<id>?wait=N, a long poll: the job object once the job has ended, or
 * after at most N seconds (JOB_WAIT_MAX_S at most) as it is then.
 *
 * A waiting request holds no request thread: the request thread checks the job and the query,
 * then parks the request on the engine of the event streams (http/park.h) before it has sent
 * a byte. The engine thread wakes it when the job's record is replaced (inotify on the job
 * directory: every state change is an atomic rename of job.json) and when its timer expires;
 * it then writes the whole answer itself (resp_text), in pieces when the job object is larger
 * than a parked request's buffer. A job deleted meanwhile is answered 404. Waiters count
 * against the same cap as event streams (each holds a connection and the job directory); over
 * it, a wait is answered at once, as a plain GET.
 */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "defaults.h"
#include "http/park.h"
#include "log.h"

#define WATCH_RECORD PARK_WATCH_BIT(0)
#define STALL_MS     30000 /* a client that takes none of the answer for this long is closed */

struct waiter {
    struct api *api;
    char id[ID_LEN + 1];
    int dirfd;        /* the job directory */
    int64_t wait_ms;  /* how long to wait */
    uint64_t job_ttl; /* from the configuration snapshot the wait began with */
    char *answer;     /* the whole answer, once decided */
    size_t len;       /* its bytes */
    size_t sent;      /* bytes of it handed to the engine */
};

/* wait_query: the ?wait= of r in *out_s (0 when absent; at most JOB_WAIT_MAX_S). false after
 * answering 400. */
static bool
wait_query(struct req *r, unsigned *out_s)
{
    char v[16];
    char *end = NULL;
    *out_s = 0;
    enum rc rc = req_query(r, "wait", v, sizeof(v));
    if (rc == RC_NOTFOUND)
        return true;
    errno = 0;
    unsigned long n = rc == RC_OK ? strtoul(v, &end, 10) : 0;
    if (rc != RC_OK || v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0') {
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "wait is a whole number of seconds");
        return false;
    }
    *out_s = n > JOB_WAIT_MAX_S ? JOB_WAIT_MAX_S : (unsigned)n;
    return true;
}

/* decide: the answer now: the job object when it ended (or when done), a 404 when the job was
 * deleted; false while the job is live and the wait goes on. */
static bool
decide(struct waiter *w, bool done)
{
    struct job job;
    int still = -1;
    if (jobstore_open_job(w->api->js, w->id, &still) != RC_OK) {
        w->answer = resp_problem_text(PROBLEM_NOT_FOUND, "no such job or resource", &w->len);
        return true; /* deleted while we waited */
    }
    close(still);
    enum rc rc = jobstore_load(w->dirfd, &job);
    if (rc == RC_OK && !done && !jobstate_is_terminal(job.state)) {
        jobstore_job_fini(&job);
        return false;
    }
    json_object *pub = rc == RC_OK ? api_job_public(w->api, w->job_ttl, w->dirfd, &job) : NULL;
    size_t n = 0;
    const char *s = pub ? json_object_to_json_string_length(
                              pub, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n)
                        : NULL;
    w->answer = s ? resp_text(200, "application/json", s, n, &w->len)
                  : resp_problem_text(PROBLEM_INTERNAL,
                                      "the server could not complete the "
                                      "request; see its log",
                                      &w->len);
    json_object_put(pub);
    jobstore_job_fini(&job);
    return true;
}

static enum park_next
wait_step(struct parked *p, void *ctx, unsigned why)
{
    struct waiter *w = ctx;
    if (why & PARK_START) {
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", w->dirfd);
        enum rc rc =
            parked_watch(p, path, JOBSTORE_RECORD_EVENTS, jobstore_event_is_record, WATCH_RECORD);
        if (rc != RC_OK) {
            log_errno("inotify on a job directory");
            return PARK_ABORT;
        }
        parked_timer(p, w->wait_ms);
    }
    /* The job may have ended between the request thread's look and the watch: look again. */
    if (w->answer == NULL && !decide(w, (why & PARK_TIMER) != 0))
        return PARK_WAIT;
    if (w->answer == NULL)
        return PARK_ABORT; /* out of memory */
    size_t room = parked_room(p), left = w->len - w->sent;
    size_t n = left < room ? left : room;
    if (n > 0 && parked_write(p, w->answer + w->sent, n) != RC_OK)
        return PARK_ABORT;
    w->sent += n;
    return w->sent == w->len ? PARK_END : PARK_MORE;
}

static void
waiter_free(struct waiter *w)
{
    if (w == NULL)
        return;
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->answer);
    atomic_fetch_sub(&w->api->streams, 1);
    free(w);
}

static void
wait_done(void *ctx, enum park_done how)
{
    (void)how;
    waiter_free(ctx);
}

static const struct park_ops wait_ops = {.step = wait_step, .done = wait_done};

bool
api_wait_job(struct api *api, struct req *r, int *dirfd, const struct job *job)
{
    unsigned wait_s = 0;
    if (!wait_query(r, &wait_s))
        return true;
    if (wait_s == 0 || jobstate_is_terminal(job->state) || api->park == NULL)
        return false; /* nothing to wait for: a plain answer */
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return false;
    /* Counted from here on; waiter_free gives the slot back. Over the cap: answer at once. */
    unsigned n = atomic_fetch_add(&api->streams, 1) + 1;
    w->api = api;
    w->dirfd = -1;
    w->job_ttl = r->cfg->job_ttl;
    if (n > r->cfg->max_streams || n > api->fd_streams) {
        waiter_free(w);
        return false;
    }
    memcpy(w->id, job->id, sizeof(w->id));
    w->wait_ms = (int64_t)wait_s * 1000;
    w->dirfd = *dirfd;
    *dirfd = -1; /* the waiter's now */
    if (park_detach(api->park, r, &wait_ops, w, STALL_MS) == RC_OK)
        return true; /* the engine answers */
    *dirfd = w->dirfd;
    w->dirfd = -1;
    waiter_free(w);
    return false;
}
