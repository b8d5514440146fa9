/* park: requests parked off the FastCGI threads (event streams, long-poll waits), all served by
 * one thread with epoll and inotify.
 *
 * Theory of operation. A handler that would otherwise hold its request thread while it waits
 * hands the request to the engine with park_detach: the FastCGI connection leaves libfcgi
 * (resp_detach, after what was written so far is flushed) together with an owner, a struct
 * park_ops and its context. From then on only the engine thread touches the request, and it
 * calls the owner's step when something the owner asked for happened, with the reasons in why:
 *   - PARK_START, once, first: the owner sets its watches and timer and writes its first bytes;
 *   - one of its watch bits: inotify saw a change on a path it watches (parked_watch),
 *     filtered by event mask and file name. Watches on one inode are shared by every parked
 *     request (one inotify instance for the process): 1,000 streams on 20 jobs cost 40 watches;
 *   - PARK_TIMER: the timer it set (parked_timer) expired (keepalives, long-poll deadlines);
 *   - PARK_ROOM: it answered PARK_MORE (it had more to write than parked_room allowed) and the
 *     output buffer drained below half.
 * The owner writes stdout bytes of the response with parked_write (status line and headers
 * too, if it detached before sending them) and answers with what it waits for next (enum
 * park_next). The engine frames the bytes as FastCGI records (http/fcgirec.h) into a buffer of
 * at most PARK_OUT_MAX bytes per request and writes them with non-blocking writes. The engine
 * never reads files itself; owners read them in step, into parked_scratch if they like (one
 * buffer for the engine). So a slow client only makes its owner stop reading ahead, memory
 * stays bounded, and no client can block the thread; a client that accepts no byte for
 * its stall_ms is closed (an event stream's client resumes with Last-Event-ID). When nginx drops
 * the connection (the client went away) the engine sees EOF at once and closes the request.
 *
 * A request ends when step answers PARK_END (the engine appends FCGI_END_REQUEST, sends the
 * rest and closes the connection), or PARK_ABORT, or when its client goes away, stalls, a
 * write fails, or park_stop runs (the connection is closed without FCGI_END_REQUEST; nginx
 * then ends the client's response all the same, so what ends a stream for its client is in
 * the response itself: an event stream's end event). In every case the
 * owner's done is called exactly once, on the engine thread (or in park_stop), and the
 * connection is closed. The engine always closes the connection at the end of a request, also
 * when nginx asked to keep it (fastcgi_keep_conn): nginx then opens a new one.
 */
#ifndef LABBOX_PARK_H
#define LABBOX_PARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "rc.h"

#define PARK_OUT_MAX     (128 * 1024) /* unsent response bytes per parked request */
#define PARK_SCRATCH     (64 * 1024)  /* parked_scratch's buffer */
#define PARK_MAX_WATCHES 4            /* watches per parked request */

/* Reasons step is called (why); owners choose their watch bits from PARK_WATCH_BIT(0) up. */
#define PARK_START        1u
#define PARK_TIMER        2u
#define PARK_ROOM         4u
#define PARK_WATCH_BIT(n) (256u << (n))

struct park;   /* the engine */
struct parked; /* one parked request */

enum park_next {
    PARK_WAIT,  /* nothing more to write until a watch fires or the timer expires */
    PARK_MORE,  /* more to write: call again with PARK_ROOM once the buffer drains */
    PARK_END,   /* the response is complete: send the rest, end the request, close */
    PARK_ABORT, /* close the connection now, without ending the response */
};

enum park_done {
    PARK_DONE_END,     /* the response ended (PARK_END) and was sent */
    PARK_DONE_GONE,    /* the client (nginx) closed the connection or a write failed */
    PARK_DONE_STALLED, /* no byte was accepted for the request's stall_ms */
    PARK_DONE_ABORT,   /* the owner answered PARK_ABORT, or parked_write failed */
    PARK_DONE_STOP,    /* park_stop */
};

struct park_ops {
    /* step: see the theory of operation; runs on the engine thread. */
    enum park_next (*step)(struct parked *p, void *ctx, unsigned why);
    /* done: the request is over (how); free ctx. */
    void (*done)(void *ctx, enum park_done how);
};

/* park_start: the engine and its thread. RC_NOMEM, RC_IO (epoll, inotify, eventfd or the thread;
 * logged). */
enum rc park_start(struct park **out) LB_MUST_CHECK;
/* park_stop: closes every parked request (done with PARK_DONE_STOP), stops the thread and
 * frees the engine. pk may be NULL. Later park_detach calls must not happen. */
void park_stop(struct park *pk);

/* park_detach: from a request thread, park r with its owner; a client that takes no byte of
 * pending output for stall_ms is closed. On RC_OK the engine owns the request and ctx (done
 * will be called) and r is finished for its thread (resp_detach). On failure nothing was
 * taken: RC_IO when the client is gone (flushing failed), RC_NOMEM. */
enum rc park_detach(struct park *pk, struct req *r, const struct park_ops *ops, void *ctx,
                    int64_t stall_ms) LB_MUST_CHECK;

/* The rest is for owners, inside step, on the engine thread. */

/* parked_room: stdout bytes parked_write accepts now. */
size_t parked_room(const struct parked *p);
/* parked_write: append stdout bytes, all or nothing; RC_TOOBIG when more than parked_room,
 * RC_NOMEM. */
enum rc parked_write(struct parked *p, const void *buf, size_t len) LB_MUST_CHECK;
/* parked_watch: call step with bit when inotify reports an event of mask on path and, when
 * name_ok is not NULL, name_ok accepts the name the event carries (an entry of the directory
 * path). The watched inode going away (deleted, moved, unmounted) and a lost inotify queue
 * (overflow) always set the bit. RC_IO when inotify refuses (logged at debug: ENOENT is an
 * ordinary race), RC_TOOBIG after PARK_MAX_WATCHES, RC_NOMEM. Watches end with the request. */
typedef bool park_name_fn(const char *name);
enum rc parked_watch(struct parked *p, const char *path, uint32_t mask, park_name_fn *name_ok,
                     unsigned bit) LB_MUST_CHECK;
/* parked_timer: call step with PARK_TIMER in ms milliseconds (replacing the timer set
 * before); ms < 0 cancels it. */
void parked_timer(struct parked *p, int64_t ms);
/* parked_scratch: a PARK_SCRATCH-byte buffer, the engine's; valid until step returns. */
char *parked_scratch(struct parked *p);

#endif
