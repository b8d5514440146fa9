/* park: the engine of parked requests: one thread, epoll, one inotify instance, a timer heap. */
#include "http/park.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/fcgirec.h"
#include "log.h"
#include "util/clock.h"

#define WATCH_BUCKETS 256
#define EVENTS_MAX    256
#define NO_TIME       INT64_MAX
#define GONE_MASK     (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)

/* One inotify watch (one inode), shared by every subscription to it. */
struct watch {
    int wd;
    unsigned refs;      /* subscriptions */
    bool dead;          /* the kernel dropped it (IN_IGNORED); out of the table */
    struct watch *next; /* in its bucket */
    struct sub *subs;   /* subscriptions */
};

struct sub {
    struct sub *next, *prev; /* in w->subs */
    struct watch *w;
    struct parked *p;
    uint32_t mask;         /* events this subscriber wants */
    unsigned bit;          /* the why bit its events set */
    park_name_fn *name_ok; /* only events whose name it accepts (NULL = any) */
};

struct parked {
    struct park *pk;
    const struct park_ops *ops;
    void *ctx;
    int fd;                    /* the FastCGI connection (non-blocking) */
    struct fcgi_out out;       /* framed response bytes not yet sent */
    unsigned why;              /* reasons gathered for the next step */
    bool more;                 /* the owner has more to write (PARK_MORE) */
    bool ending;               /* FCGI_END_REQUEST is in out */
    bool closed;               /* done was called; freed at the end of the loop iteration */
    bool in_ready;             /* on the ready list */
    int64_t timer_at;          /* the owner's timer (monotonic ms), NO_TIME if none */
    int64_t progress_at;       /* when the client last took bytes, or when bytes became pending */
    int64_t stall_ms;          /* closed after this long without progress */
    int64_t key;               /* heap key: the earlier of the timer and the stall deadline */
    size_t hidx;               /* index in the heap, SIZE_MAX when not in it */
    struct parked *ready_next; /* ready list, incoming list, dead list */
    struct parked *all_next, *all_prev; /* every live parked request */
    struct sub subs[PARK_MAX_WATCHES];
    unsigned nsubs;
};

struct park {
    int ep, ino, evfd;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    struct parked *incoming; /* from park_detach, under mu */
    bool stopping;           /* under mu */
    /* The engine thread's own: */
    int64_t now;
    struct parked *all;
    struct parked *ready_head, *ready_tail;
    struct parked *dead;
    struct parked **heap;
    size_t nheap, capheap;
    struct watch *buckets[WATCH_BUCKETS];
    char *scratch;
};

static char tag_inotify, tag_eventfd; /* epoll data of the two non-request fds */

/* ------------------------------------------------------------------ timer heap */

static bool
earlier(const struct park *pk, size_t a, size_t b)
{
    return pk->heap[a]->key < pk->heap[b]->key;
}

static void
heap_swap(struct park *pk, size_t a, size_t b)
{
    struct parked *t = pk->heap[a];
    pk->heap[a] = pk->heap[b];
    pk->heap[b] = t;
    pk->heap[a]->hidx = a;
    pk->heap[b]->hidx = b;
}

static void
heap_sift(struct park *pk, size_t i)
{
    while (i > 0 && earlier(pk, i, (i - 1) / 2)) {
        heap_swap(pk, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pk->nheap && earlier(pk, l, m))
            m = l;
        if (r < pk->nheap && earlier(pk, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(pk, i, m);
        i = m;
    }
}

static void
heap_remove(struct park *pk, struct parked *p)
{
    size_t i = p->hidx;
    if (i == SIZE_MAX)
        return;
    p->hidx = SIZE_MAX;
    pk->nheap--;
    if (i == pk->nheap)
        return;
    pk->heap[i] = pk->heap[pk->nheap];
    pk->heap[i]->hidx = i;
    heap_sift(pk, i);
}

/* The deadline of p: the earlier of its timer and its stall deadline. */
static int64_t
deadline(const struct parked *p)
{
    int64_t key = p->timer_at;
    if (fcgi_out_pending(&p->out) > 0 && p->progress_at + p->stall_ms < key)
        key = p->progress_at + p->stall_ms;
    return key;
}

/* Put p in the heap with key. */
static void
heap_set(struct park *pk, struct parked *p, int64_t key)
{
    if (key == NO_TIME) {
        heap_remove(pk, p);
        return;
    }
    p->key = key;
    if (p->hidx == SIZE_MAX) {
        if (pk->nheap == pk->capheap) {
            size_t cap = pk->capheap ? pk->capheap * 2 : 64;
            struct parked **h = realloc(pk->heap, cap * sizeof(struct parked *));
            if (h == NULL) {
                /* Without a timer this request waits for its watches and its client only. */
                log_err("out of memory for the timer of a parked request");
                return;
            }
            pk->heap = h;
            pk->capheap = cap;
        }
        p->hidx = pk->nheap;
        pk->heap[pk->nheap++] = p;
    }
    heap_sift(pk, p->hidx);
}

/* Keep p's heap key at or before its deadline. Lazily: a key that is already earlier stays
 * (the timer is re-armed at every write of a busy stream; expire corrects early keys). */
static void
heap_fix(struct park *pk, struct parked *p)
{
    int64_t key = deadline(p);
    if (p->hidx != SIZE_MAX && p->key <= key)
        return;
    heap_set(pk, p, key);
}

/* ------------------------------------------------------------------ watches */

static struct watch **
bucket(struct park *pk, int wd)
{
    return &pk->buckets[(unsigned)wd % WATCH_BUCKETS];
}

static struct watch *
find_watch(struct park *pk, int wd)
{
    for (struct watch *w = *bucket(pk, wd); w != NULL; w = w->next)
        if (w->wd == wd)
            return w;
    return NULL;
}

static void
unlink_watch(struct park *pk, struct watch *w)
{
    for (struct watch **pp = bucket(pk, w->wd); *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

static void
unsubscribe(struct park *pk, struct sub *s)
{
    struct watch *w = s->w;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (--w->refs > 0)
        return;
    if (!w->dead) {
        (void)inotify_rm_watch(pk->ino, w->wd);
        unlink_watch(pk, w);
    }
    free(w);
}

/* ------------------------------------------------------------------ requests */

static void
ready(struct park *pk, struct parked *p, unsigned why)
{
    p->why |= why;
    if (p->in_ready || p->closed)
        return;
    p->in_ready = true;
    p->ready_next = NULL;
    if (pk->ready_tail != NULL)
        pk->ready_tail->ready_next = p;
    else
        pk->ready_head = p;
    pk->ready_tail = p;
}

static void
close_parked(struct park *pk, struct parked *p, enum park_done how)
{
    if (p->closed)
        return;
    p->closed = true;
    for (unsigned i = 0; i < p->nsubs; i++)
        unsubscribe(pk, &p->subs[i]);
    p->nsubs = 0;
    heap_remove(pk, p);
    if (p->all_prev != NULL)
        p->all_prev->all_next = p->all_next;
    else if (pk->all == p)
        pk->all = p->all_next;
    if (p->all_next != NULL)
        p->all_next->all_prev = p->all_prev;
    /* The socket may have leaked into a child (libfcgi accepts without CLOEXEC): leave epoll
     * explicitly, since close alone would not. */
    (void)epoll_ctl(pk->ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    p->fd = -1;
    fcgi_out_fini(&p->out);
    p->ops->done(p->ctx, how);
    p->ctx = NULL;
    /* Freed at the end of this loop iteration: events of this round may still name it. */
    if (!p->in_ready) {
        p->ready_next = pk->dead;
        pk->dead = p;
    }
}

/* Send what is buffered, without blocking. */
static void
flush(struct park *pk, struct parked *p)
{
    while (fcgi_out_pending(&p->out) > 0) {
        ssize_t n = send(p->fd, fcgi_out_next(&p->out), fcgi_out_pending(&p->out), MSG_NOSIGNAL);
        if (n > 0) {
            fcgi_out_consume(&p->out, (size_t)n);
            p->progress_at = pk->now;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break; /* EPOLLOUT (edge-triggered) says when to go on */
        } else {
            close_parked(pk, p, PARK_DONE_GONE);
            return;
        }
    }
    if (p->ending && fcgi_out_pending(&p->out) == 0) {
        close_parked(pk, p, PARK_DONE_END);
        return;
    }
    heap_fix(pk, p);
}

static bool
below_half(const struct parked *p)
{
    return fcgi_out_pending(&p->out) < PARK_OUT_MAX / 2;
}

static void
call_step(struct park *pk, struct parked *p)
{
    unsigned why = p->why;
    p->why = 0;
    switch (p->ops->step(p, p->ctx, why)) {
    case PARK_WAIT:
        p->more = false;
        break;
    case PARK_MORE:
        p->more = true;
        break;
    case PARK_END:
        if (fcgi_out_end(&p->out, 0) != RC_OK) {
            close_parked(pk, p, PARK_DONE_ABORT);
            return;
        }
        p->more = false;
        p->ending = true;
        break;
    case PARK_ABORT:
    default:
        close_parked(pk, p, PARK_DONE_ABORT);
        return;
    }
    flush(pk, p);
    /* Another round later, after the other requests had theirs. */
    if (!p->closed && p->more && below_half(p))
        ready(pk, p, PARK_ROOM);
}

/* Read and drop what nginx sends after the request (the end of an empty stdin); false when
 * the connection is closed or broken. */
static bool
drain_input(struct parked *p)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(p->fd, buf, sizeof(buf));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void
on_conn(struct park *pk, struct parked *p, uint32_t ev)
{
    if (p->closed)
        return;
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !drain_input(p)) {
        close_parked(pk, p, PARK_DONE_GONE);
        return;
    }
    if (ev & EPOLLOUT) {
        flush(pk, p);
        if (!p->closed && p->more && below_half(p))
            ready(pk, p, PARK_ROOM);
    }
}

static void
wake_all_watchers(struct park *pk)
{
    for (struct parked *p = pk->all; p != NULL; p = p->all_next)
        for (unsigned i = 0; i < p->nsubs; i++)
            ready(pk, p, p->subs[i].bit);
}

static void
on_inotify_event(struct park *pk, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        wake_all_watchers(pk);
        return;
    }
    struct watch *w = find_watch(pk, ev->wd);
    if (w == NULL)
        return;
    bool gone = (ev->mask & GONE_MASK) != 0;
    for (struct sub *s = w->subs; s != NULL; s = s->next) {
        if (gone ||
            ((ev->mask & s->mask) && (s->name_ok == NULL || (ev->len > 0 && s->name_ok(ev->name)))))
            ready(pk, s->p, s->bit);
    }
    if (ev->mask & IN_IGNORED) {
        w->dead = true;
        unlink_watch(pk, w);
    }
}

static void
on_inotify(struct park *pk)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(pk->ino, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            on_inotify_event(pk, ev);
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
}

/* Adopt the requests park_detach queued; true when the engine is stopping. */
static bool
take_incoming(struct park *pk)
{
    uint64_t v;
    while (read(pk->evfd, &v, sizeof(v)) < 0 && errno == EINTR)
        continue;
    pthread_mutex_lock(&pk->mu);
    struct parked *list = pk->incoming;
    pk->incoming = NULL;
    bool stopping = pk->stopping;
    pthread_mutex_unlock(&pk->mu);
    /* The list is newest first: reverse it, so requests start in arrival order. */
    struct parked *rev = NULL;
    while (list != NULL) {
        struct parked *next = list->ready_next;
        list->ready_next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        struct parked *p = rev;
        rev = p->ready_next;
        p->ready_next = NULL;
        p->all_next = pk->all;
        if (pk->all != NULL)
            pk->all->all_prev = p;
        pk->all = p;
        p->progress_at = pk->now;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = p};
        if (epoll_ctl(pk->ep, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
            log_errno("epoll_ctl on a parked request");
            close_parked(pk, p, PARK_DONE_ABORT);
            continue;
        }
        ready(pk, p, PARK_START);
    }
    return stopping;
}

static void
expire(struct park *pk)
{
    while (pk->nheap > 0 && pk->heap[0]->key <= pk->now) {
        struct parked *p = pk->heap[0];
        if (fcgi_out_pending(&p->out) > 0 && p->progress_at + p->stall_ms <= pk->now) {
            log_info("a parked request took no byte for %lld ms: closed", (long long)p->stall_ms);
            close_parked(pk, p, PARK_DONE_STALLED);
            continue;
        }
        if (p->timer_at <= pk->now) {
            p->timer_at = NO_TIME;
            ready(pk, p, PARK_TIMER);
        }
        int64_t key = deadline(p);
        heap_set(pk, p, key > pk->now ? key : NO_TIME); /* an early key: the real one */
    }
}

static void
run_ready(struct park *pk)
{
    struct parked *batch = pk->ready_head;
    pk->ready_head = pk->ready_tail = NULL;
    while (batch != NULL) {
        struct parked *p = batch;
        batch = p->ready_next;
        p->ready_next = NULL;
        p->in_ready = false;
        if (p->closed) {
            p->ready_next = pk->dead; /* closed while it was on the list */
            pk->dead = p;
            continue;
        }
        call_step(pk, p);
    }
}

static void
reap(struct park *pk)
{
    while (pk->dead != NULL) {
        struct parked *p = pk->dead;
        pk->dead = p->ready_next;
        free(p);
    }
}

static void
close_all(struct park *pk)
{
    while (pk->all != NULL)
        close_parked(pk, pk->all, PARK_DONE_STOP);
    run_ready(pk); /* only moves the closed ones to the dead list */
    reap(pk);
}

static void *
engine(void *arg)
{
    struct park *pk = arg;
    struct epoll_event evs[EVENTS_MAX];
    for (;;) {
        int timeout = -1;
        pk->now = clock_mono_ms();
        if (pk->ready_head != NULL) {
            timeout = 0;
        } else if (pk->nheap > 0) {
            int64_t d = pk->heap[0]->key - pk->now;
            timeout = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
        }
        int n = epoll_wait(pk->ep, evs, EVENTS_MAX, timeout);
        if (n < 0) {
            if (errno != EINTR)
                log_errno("epoll_wait");
            n = 0;
        }
        pk->now = clock_mono_ms();
        bool stopping = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &tag_inotify)
                on_inotify(pk);
            else if (evs[i].data.ptr == &tag_eventfd)
                stopping |= take_incoming(pk);
            else
                on_conn(pk, evs[i].data.ptr, evs[i].events);
        }
        if (stopping) {
            close_all(pk);
            return NULL;
        }
        expire(pk);
        run_ready(pk);
        reap(pk);
    }
}

/* ------------------------------------------------------------------ the interface */

enum rc
park_start(struct park **out)
{
    enum rc rc = RC_IO;
    *out = NULL;
    struct park *pk = calloc(1, sizeof(*pk));
    if (pk == NULL)
        return RC_NOMEM;
    pk->ep = pk->ino = pk->evfd = -1;
    pthread_mutex_init(&pk->mu, NULL);
    pk->scratch = malloc(PARK_SCRATCH);
    if (pk->scratch == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    pk->ep = epoll_create1(EPOLL_CLOEXEC);
    pk->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    pk->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pk->ep < 0 || pk->ino < 0 || pk->evfd < 0) {
        log_errno("epoll, inotify or eventfd for parked requests");
        goto out;
    }
    struct epoll_event a = {.events = EPOLLIN, .data.ptr = &tag_inotify};
    struct epoll_event b = {.events = EPOLLIN, .data.ptr = &tag_eventfd};
    if (epoll_ctl(pk->ep, EPOLL_CTL_ADD, pk->ino, &a) != 0 ||
        epoll_ctl(pk->ep, EPOLL_CTL_ADD, pk->evfd, &b) != 0) {
        log_errno("epoll_ctl for parked requests");
        goto out;
    }
    if (pthread_create(&pk->thread, NULL, engine, pk) != 0) {
        log_err("cannot start the thread of parked requests");
        goto out;
    }
    pk->started = true;
    *out = pk;
    rc = RC_OK;
out:
    if (rc != RC_OK)
        park_stop(pk);
    return rc;
}

void
park_stop(struct park *pk)
{
    if (pk == NULL)
        return;
    pthread_mutex_lock(&pk->mu);
    pk->stopping = true;
    pthread_mutex_unlock(&pk->mu);
    if (pk->started) {
        uint64_t one = 1;
        if (write(pk->evfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            log_errno("waking the thread of parked requests");
        pthread_join(pk->thread, NULL);
    }
    /* Requests detached after the thread ended. */
    while (pk->incoming != NULL) {
        struct parked *p = pk->incoming;
        pk->incoming = p->ready_next;
        close(p->fd);
        fcgi_out_fini(&p->out);
        p->ops->done(p->ctx, PARK_DONE_STOP);
        free(p);
    }
    if (pk->ep >= 0)
        close(pk->ep);
    if (pk->ino >= 0)
        close(pk->ino);
    if (pk->evfd >= 0)
        close(pk->evfd);
    pthread_mutex_destroy(&pk->mu);
    free(pk->heap);
    free(pk->scratch);
    free(pk);
}

enum rc
park_detach(struct park *pk, struct req *r, const struct park_ops *ops, void *ctx, int64_t stall_ms)
{
    struct parked *p = calloc(1, sizeof(*p));
    int fd = -1;
    uint16_t reqid = 0;
    if (p == NULL)
        return RC_NOMEM;
    enum rc rc = resp_detach(r, &fd, &reqid);
    if (rc != RC_OK) {
        free(p);
        return rc;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        log_warnno("fcntl on a parked request"); /* its first write fails: it ends */
    p->pk = pk;
    p->ops = ops;
    p->ctx = ctx;
    p->fd = fd;
    p->stall_ms = stall_ms;
    p->timer_at = NO_TIME;
    p->hidx = SIZE_MAX;
    fcgi_out_init(&p->out, reqid, PARK_OUT_MAX);
    pthread_mutex_lock(&pk->mu);
    p->ready_next = pk->incoming;
    pk->incoming = p;
    pthread_mutex_unlock(&pk->mu);
    uint64_t one = 1;
    if (write(pk->evfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_errno("waking the thread of parked requests"); /* the counter is not full: cannot */
    return RC_OK;
}

size_t
parked_room(const struct parked *p)
{
    return fcgi_out_room(&p->out);
}

enum rc
parked_write(struct parked *p, const void *buf, size_t len)
{
    if (fcgi_out_pending(&p->out) == 0)
        p->progress_at = p->pk->now; /* the stall clock starts with the first unsent byte */
    return fcgi_out_stdout(&p->out, buf, len);
}

enum rc
parked_watch(struct parked *p, const char *path, uint32_t mask, park_name_fn *name_ok, unsigned bit)
{
    struct park *pk = p->pk;
    if (p->nsubs >= PARK_MAX_WATCHES)
        return RC_TOOBIG;
    int wd = inotify_add_watch(pk->ino, path, mask | IN_DELETE_SELF | IN_MOVE_SELF | IN_MASK_ADD);
    if (wd < 0) {
        LOG_AT(LOG_DEBUG, 1, "inotify on %s", path);
        return RC_IO;
    }
    struct watch *w = find_watch(pk, wd);
    if (w == NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL) {
            (void)inotify_rm_watch(pk->ino, wd);
            return RC_NOMEM;
        }
        w->wd = wd;
        w->next = *bucket(pk, wd);
        *bucket(pk, wd) = w;
    }
    struct sub *s = &p->subs[p->nsubs++];
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->p = p;
    s->mask = mask;
    s->bit = bit;
    s->name_ok = name_ok;
    s->next = w->subs;
    if (w->subs != NULL)
        w->subs->prev = s;
    w->subs = s;
    w->refs++;
    return RC_OK;
}

void
parked_timer(struct parked *p, int64_t ms)
{
    p->timer_at = ms < 0 ? NO_TIME : p->pk->now + ms;
    heap_fix(p->pk, p);
}

char *
parked_scratch(struct parked *p)
{
    return p->pk->scratch;
}
