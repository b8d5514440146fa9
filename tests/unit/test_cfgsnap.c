/* test_cfgsnap: configuration snapshots are freed only when no reader can hold them, and
 * readers racing a publisher always see a whole, live snapshot. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/cfgsnap.h"

/* snap: a fresh snapshot with defaults, max_queue = tag and data_dir "/snap/<tag>". */
static struct config *
snap(uint64_t tag)
{
    char dir[64];
    struct config *c = cfgsnap_new();
    if (c == NULL || config_init(c) != RC_OK) {
        cfgsnap_discard(c);
        return NULL;
    }
    (void)snprintf(dir, sizeof(dir), "/snap/%llu", (unsigned long long)tag);
    free(c->data_dir);
    c->data_dir = strdup(dir);
    c->max_queue = tag;
    return c;
}

static void
test_lifetimes(void)
{
    struct config start;
    struct cfgsnap cs;
    REQUIRE_VOID(config_init(&start) == RC_OK);
    start.max_queue = 1;
    REQUIRE_VOID(cfgsnap_init(&cs, &start, 2) == RC_OK);
    long a = cfgsnap_reader(&cs), b = cfgsnap_reader(&cs);
    CHECK_INT(a, 0);
    CHECK_INT(b, 1);
    CHECK_INT(cfgsnap_reader(&cs), -1); /* only two slots */

    /* The start-up snapshot is the caller's: replacing it retires nothing to free. */
    CHECK(cfgsnap_enter(&cs, a) == &start);
    struct config *s2 = snap(2);
    REQUIRE_VOID(s2 != NULL);
    cfgsnap_publish(&cs, s2);
    CHECK(cfgsnap_current(&cs) == s2);
    CHECK_INT(cfgsnap_reclaim(&cs), 0);
    cfgsnap_leave(&cs, a);

    /* A reader inside keeps the snapshot it got, and the ones after it, until it leaves. */
    const struct config *held = cfgsnap_enter(&cs, a);
    CHECK(held == s2);
    cfgsnap_publish(&cs, snap(3));
    cfgsnap_publish(&cs, snap(4));
    CHECK_INT(cfgsnap_reclaim(&cs), 2);
    CHECK_STR(held->data_dir, "/snap/2"); /* still whole */
    /* A reader that enters now holds only the current one. */
    const struct config *cur = cfgsnap_enter(&cs, b);
    CHECK_INT(cur->max_queue, 4);
    cfgsnap_leave(&cs, a);
    CHECK_INT(cfgsnap_reclaim(&cs), 0);
    cfgsnap_publish(&cs, snap(5));
    CHECK_INT(cfgsnap_reclaim(&cs), 1); /* b still holds 4 */
    CHECK_STR(cur->data_dir, "/snap/4");
    cfgsnap_leave(&cs, b);
    CHECK_INT(cfgsnap_reclaim(&cs), 0);
    CHECK_INT(cfgsnap_enter(&cs, a)->max_queue, 5);
    cfgsnap_leave(&cs, a);

    /* Discarding an unpublished snapshot frees it (valgrind/ASan see the rest). */
    cfgsnap_discard(snap(6));
    cfgsnap_discard(NULL);
    cfgsnap_fini(&cs);
    config_fini(&start);
}

#define READERS 3
#define ROUNDS  3000

struct race {
    struct cfgsnap *cs;
    long slot;
    atomic_bool *stop;
    atomic_ulong *total; /* reads by every reader, for the publisher to pace itself */
    unsigned long bad, reads;
};

/* A reader: enter, check the snapshot is whole and not older than the last one seen (data_dir
 * matches max_queue; freed memory would be zeroed by config_fini or poisoned by ASan), leave. */
static void *
reader(void *arg)
{
    struct race *r = arg;
    uint64_t last = 0;
    char want[64];
    while (!atomic_load(r->stop)) {
        const struct config *c = cfgsnap_enter(r->cs, r->slot);
        for (int i = 0; i < 20; i++) {
            (void)snprintf(want, sizeof(want), "/snap/%llu", (unsigned long long)c->max_queue);
            if (c->max_queue < last || c->data_dir == NULL || strcmp(c->data_dir, want) != 0)
                r->bad++;
        }
        last = c->max_queue;
        r->reads++;
        cfgsnap_leave(r->cs, r->slot);
        atomic_fetch_add(r->total, 1);
    }
    return NULL;
}

static void
test_race(void)
{
    struct cfgsnap cs;
    struct config *first = snap(1);
    REQUIRE_VOID(first != NULL);
    REQUIRE_VOID(cfgsnap_init(&cs, first, READERS) == RC_OK);
    atomic_bool stop = false;
    atomic_ulong total = 0;
    struct race r[READERS];
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct race){&cs, cfgsnap_reader(&cs), &stop, &total, 0, 0};
        REQUIRE_VOID(pthread_create(&t[i], NULL, reader, &r[i]) == 0);
    }
    for (uint64_t i = 2; i <= ROUNDS; i++) {
        /* Every 10 snapshots, let the readers read (on a loaded machine they may not have run
         * at all yet), so that publishing really races reading. */
        unsigned long seen = atomic_load(&total);
        for (int spin = 0; i % 10 == 0 && spin < 100000 && atomic_load(&total) == seen; spin++)
            sched_yield();
        struct config *c = snap(i);
        REQUIRE_VOID(c != NULL);
        cfgsnap_publish(&cs, c);
        (void)cfgsnap_reclaim(&cs);
    }
    atomic_store(&stop, true);
    unsigned long bad = 0, reads = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        bad += r[i].bad;
        reads += r[i].reads;
    }
    CHECK_INT(bad, 0);
    CHECK(reads > 0);
    CHECK_INT(cfgsnap_reclaim(&cs), 0); /* every reader is out: all retired ones go */
    printf("race: %lu reads of %d snapshots by %d readers\n", reads, ROUNDS, READERS);
    cfgsnap_fini(&cs);
    cfgsnap_discard(first);
}

int
main(void)
{
    test_lifetimes();
    test_race();
    return check_done("cfgsnap");
}
