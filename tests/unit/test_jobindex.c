/* test_jobindex: the fair queue (round-robin across owners, FIFO within one, positions, the
 * order after a rebuild, user_max_running), the quota tallies, list pages and cursors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/jobindex.h"

static const struct jobindex_quota NOLIMIT = {.max_queue = 1000, .per_owner = true};

/* Test ids: 26 characters of the id alphabet, made from an owner letter and a number. */
static void
make_id(char out[ID_LEN + 1], char owner, int n)
{
    (void)snprintf(out, ID_LEN + 1, "%c%c%c%c%c%c%c%c%c%c%c%c%c%caaaaaaaaaaaa", owner,
                   "abcdefghijklmnopqrstuvwxyz"[n / 26 % 26], "abcdefghijklmnopqrstuvwxyz"[n % 26],
                   'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a');
}

/* One upload of owner key, as the API makes it: reserve, admit, enqueue. */
static void
submit(struct jobindex *ji, const char *key, char owner, int n, int64_t created,
       const struct jobindex_quota *q)
{
    char id[ID_LEN + 1];
    int64_t round = 0;
    make_id(id, owner, n);
    CHECK_INT(jobindex_reserve(ji, key, q), JOBINDEX_OK);
    CHECK_INT(jobindex_admit(ji, key, 100, q, &round), JOBINDEX_OK);
    struct jobindex_rec rec = {.id = id,
                               .owner_key = key,
                               .state = JOB_QUEUED,
                               .created_ms = created,
                               .round = round,
                               .bytes = 100};
    CHECK_INT(jobindex_enqueue(ji, &rec), RC_OK);
}

/* Start the next job (as the dispatcher does) and return its owner letter. */
static char
start_next(struct jobindex *ji, uint64_t max_running)
{
    size_t deferred = 0;
    uint64_t dbytes = 0;
    struct ji_job *j = jobindex_pick(ji, max_running, &deferred, &dbytes);
    if (j == NULL)
        return '-';
    jobindex_take(ji, j);
    return j->id[0];
}

/* The queue's owners in order, as a string ("bbaa..."). */
static void
queue_owners(const struct jobindex *ji, char *out, size_t len)
{
    size_t i = 0;
    for (; i < ji->queue.n && i + 1 < len; i++)
        out[i] = ji->queue.v[i]->id[0];
    out[i] = '\0';
}

static void
test_a10_then_b1(void)
{
    struct jobindex ji;
    jobindex_init(&ji);
    for (int i = 0; i < 10; i++)
        submit(&ji, "u:a", 'a', i, 1000 + i, &NOLIMIT);
    /* Two slots take A's first two jobs. */
    CHECK_INT(start_next(&ji, 0), 'a');
    CHECK_INT(start_next(&ji, 0), 'a');
    submit(&ji, "u:b", 'b', 0, 2000, &NOLIMIT);
    char id[ID_LEN + 1];
    make_id(id, 'b', 0);
    /* B's one job is first in the queue: it starts in the next free slot. */
    CHECK_INT(jobindex_position(&ji, id), 1);
    make_id(id, 'a', 2);
    CHECK_INT(jobindex_position(&ji, id), 2);
    CHECK_INT(start_next(&ji, 0), 'b');
    char order[32];
    queue_owners(&ji, order, sizeof(order));
    CHECK_STR(order, "aaaaaaaa");
    jobindex_fini(&ji);
}

static void
test_round_robin(void)
{
    struct jobindex ji;
    jobindex_init(&ji);
    /* A submits 4, then B 3, then C 1, all before anything starts: one each per round, FIFO
     * within an owner. */
    for (int i = 0; i < 4; i++)
        submit(&ji, "u:a", 'a', i, 100 + i, &NOLIMIT);
    for (int i = 0; i < 3; i++)
        submit(&ji, "u:b", 'b', i, 200 + i, &NOLIMIT);
    submit(&ji, "u:c", 'c', 0, 300, &NOLIMIT);
    char order[32];
    queue_owners(&ji, order, sizeof(order));
    CHECK_STR(order, "abcababa");
    /* FIFO within A: its jobs come in creation order. */
    int64_t last = 0;
    for (size_t i = 0; i < ji.queue.n; i++) {
        if (ji.queue.v[i]->id[0] != 'a')
            continue;
        CHECK(ji.queue.v[i]->created_ms > last);
        last = ji.queue.v[i]->created_ms;
    }
    /* Positions are the ranks in this order. */
    for (size_t i = 0; i < ji.queue.n; i++)
        CHECK_INT(jobindex_position(&ji, ji.queue.v[i]->id), (long)i + 1);
    /* A late owner D after two starts still gets the current round: ahead of later rounds. */
    CHECK_INT(start_next(&ji, 0), 'a');
    CHECK_INT(start_next(&ji, 0), 'b');
    submit(&ji, "u:d", 'd', 0, 400, &NOLIMIT);
    queue_owners(&ji, order, sizeof(order));
    CHECK_STR(order, "cdababa");
    jobindex_fini(&ji);
}

/* Rebuilding the index from the records (any order) gives the same queue. */
static void
test_rebuild(void)
{
    struct jobindex ji, back;
    jobindex_init(&ji);
    jobindex_init(&back);
    for (int i = 0; i < 6; i++)
        submit(&ji, "u:a", 'a', i, 100 + i, &NOLIMIT);
    CHECK_INT(start_next(&ji, 0), 'a');
    for (int i = 0; i < 2; i++)
        submit(&ji, "u:b", 'b', i, 200 + i, &NOLIMIT);
    submit(&ji, "a:192.0.2.1", 'c', 0, 300, &NOLIMIT);
    /* Records, newest first (a directory listing has no order). */
    for (size_t k = ji.all.n; k > 0; k--) {
        const struct ji_job *j = ji.all.v[k - 1];
        struct jobindex_rec rec = {.id = j->id,
                                   .owner_key = j->owner->key,
                                   .state = j->state,
                                   .created_ms = j->created_ms,
                                   .round = j->round,
                                   .bytes = j->bytes};
        CHECK_INT(jobindex_add(&back, &rec), RC_OK);
    }
    REQUIRE_VOID(back.queue.n == ji.queue.n);
    for (size_t i = 0; i < ji.queue.n; i++)
        CHECK_STR(back.queue.v[i]->id, ji.queue.v[i]->id);
    CHECK_INT(back.current, ji.current);
    /* New jobs after the rebuild get the rounds they would have got before. */
    submit(&ji, "u:e", 'e', 0, 500, &NOLIMIT);
    submit(&back, "u:e", 'e', 0, 500, &NOLIMIT);
    for (size_t i = 0; i < ji.queue.n && i < back.queue.n; i++)
        CHECK_STR(back.queue.v[i]->id, ji.queue.v[i]->id);
    struct jobindex_rec dup = {.id = ji.all.v[0]->id, .owner_key = "u:a", .state = JOB_QUEUED};
    CHECK_INT(jobindex_add(&back, &dup), RC_CONFLICT);
    jobindex_fini(&ji);
    jobindex_fini(&back);
}

/* A job from a record (as at start-up), with an explicit round. */
static void
add_rec(struct jobindex *ji, const char *key, char owner, int n, enum job_state st, int64_t round,
        int64_t created)
{
    char id[ID_LEN + 1];
    make_id(id, owner, n);
    struct jobindex_rec rec = {.id = id,
                               .owner_key = key,
                               .state = st,
                               .created_ms = created,
                               .round = round,
                               .bytes = 100};
    CHECK_INT(jobindex_add(ji, &rec), RC_OK);
}

static void
test_max_running(void)
{
    struct jobindex ji;
    jobindex_init(&ji);
    /* A runs one job and has the next in the queue; B's job is behind it. */
    add_rec(&ji, "u:a", 'a', 0, JOB_STAGING, 1, 100);
    add_rec(&ji, "u:a", 'a', 1, JOB_QUEUED, 2, 101);
    add_rec(&ji, "u:b", 'b', 0, JOB_QUEUED, 3, 200);
    add_rec(&ji, "u:b", 'b', 1, JOB_QUEUED, 4, 201);
    CHECK_INT(ji.current, 1);
    /* With user_max_running = 1, A's waits and B's starts although it is behind. */
    size_t deferred = 0;
    uint64_t dbytes = 0;
    struct ji_job *j = jobindex_pick(&ji, 1, &deferred, &dbytes);
    REQUIRE_VOID(j != NULL);
    CHECK_INT(j->id[0], 'b');
    CHECK_INT(deferred, 1);
    CHECK_INT(dbytes, 100);
    jobindex_take(&ji, j);
    /* Everyone at the cap: nothing starts; a job is counted as deferred once. */
    CHECK(jobindex_pick(&ji, 1, &deferred, &dbytes) == NULL);
    CHECK_INT(deferred, 1); /* b1 is new to waiting; a1 was counted before */
    CHECK(jobindex_pick(&ji, 1, &deferred, &dbytes) == NULL);
    CHECK_INT(deferred, 0);
    /* Without the cap it would have been A's. */
    CHECK_INT(jobindex_pick(&ji, 0, &deferred, &dbytes)->id[0], 'a');
    /* A's job ends: its next one may start, first in line. */
    char id[ID_LEN + 1];
    make_id(id, 'a', 0);
    jobindex_end(&ji, id, JOB_SUCCEEDED, 5000, 300);
    CHECK_INT(jobindex_get(&ji, id)->owner->running, 0);
    CHECK_INT(jobindex_get(&ji, id)->bytes, 300);
    CHECK_INT(start_next(&ji, 1), 'a');
    jobindex_fini(&ji);
}

static void
test_quotas(void)
{
    struct jobindex ji;
    struct jobindex_quota q = {
        .max_queue = 5, .per_owner = true, .user_max_queued = 2, .user_max_bytes = 1000};
    int64_t round;
    jobindex_init(&ji);
    submit(&ji, "u:a", 'a', 0, 100, &q);
    /* One upload in flight and one queued: user_max_queued = 2 is reached. */
    CHECK_INT(jobindex_reserve(&ji, "u:a", &q), JOBINDEX_OK);
    CHECK_INT(jobindex_reserve(&ji, "u:a", &q), JOBINDEX_USER_QUEUED);
    /* Bytes: 100 kept; 901 more would pass 1000. */
    CHECK_INT(jobindex_admit(&ji, "u:a", 901, &q, &round), JOBINDEX_USER_BYTES);
    CHECK_INT(jobindex_admit(&ji, "u:a", 900, &q, &round), JOBINDEX_OK);
    jobindex_release(&ji, "u:a", 900); /* publishing failed */
    CHECK_INT(jobindex_reserve(&ji, "u:a", &q), JOBINDEX_OK);
    CHECK_INT(jobindex_admit(&ji, "u:a", 900, &q, &round), JOBINDEX_OK);
    char id[ID_LEN + 1];
    make_id(id, 'a', 1);
    struct jobindex_rec rec = {.id = id,
                               .owner_key = "u:a",
                               .state = JOB_QUEUED,
                               .created_ms = 101,
                               .round = round,
                               .bytes = 900};
    CHECK_INT(jobindex_enqueue(&ji, &rec), RC_OK);
    /* At 1000 bytes kept a new upload is refused before its body is read. */
    CHECK_INT(start_next(&ji, 0), 'a');
    CHECK_INT(start_next(&ji, 0), 'a');
    CHECK_INT(jobindex_reserve(&ji, "u:a", &q), JOBINDEX_USER_BYTES);
    /* Other owners are not affected; the whole queue is (max_queue = 5). */
    for (int i = 0; i < 2; i++)
        submit(&ji, "u:b", 'b', i, 200 + i, &q);
    for (int i = 0; i < 2; i++)
        submit(&ji, "u:c", 'c', i, 300 + i, &q);
    CHECK_INT(jobindex_reserve(&ji, "u:d", &q), JOBINDEX_OK);
    CHECK_INT(jobindex_reserve(&ji, "u:e", &q), JOBINDEX_QUEUE_FULL);
    jobindex_release(&ji, "u:d", 0);
    CHECK(jobindex_get(&ji, id) != NULL);
    /* Deleting a job gives its bytes back. */
    jobindex_end(&ji, id, JOB_SUCCEEDED, 7000, 950);
    CHECK_INT(jobindex_first_finished(&ji, "u:a"), 7000);
    CHECK(jobindex_remove(&ji, id));
    CHECK(!jobindex_remove(&ji, id));
    CHECK_INT(jobindex_reserve(&ji, "u:a", &q), JOBINDEX_OK);
    jobindex_release(&ji, "u:a", 0);
    /* Without identity (per_owner off) only max_queue applies. */
    struct jobindex_quota none = q;
    none.per_owner = false;
    none.max_queue = 100;
    for (int i = 0; i < 3; i++)
        submit(&ji, "", 'z', i, 900 + i, &none);
    CHECK_INT(ji.reserved, 0);
    jobindex_fini(&ji);
}

/* Remove everything: owners go with their last job, nothing leaks (valgrind). */
static void
test_remove_all(void)
{
    struct jobindex ji;
    jobindex_init(&ji);
    for (int i = 0; i < 40; i++)
        submit(&ji, i % 2 ? "u:a" : "u:b", i % 2 ? 'a' : 'b', i, 100 + i, &NOLIMIT);
    CHECK_INT(start_next(&ji, 0), 'b');
    char id[ID_LEN + 1];
    make_id(id, 'a', 3);
    CHECK(jobindex_unqueue(&ji, id, 1));
    CHECK(!jobindex_unqueue(&ji, id, 1));
    CHECK_INT(jobindex_position(&ji, id), -1);
    while (ji.all.n > 0) {
        char victim[ID_LEN + 1];
        memcpy(victim, ji.all.v[ji.all.n / 2]->id, sizeof(victim));
        CHECK(jobindex_remove(&ji, victim));
    }
    CHECK_INT(ji.owners.n, 0);
    CHECK_INT(ji.queue.n, 0);
    CHECK_INT(ji.jobs.n, 0);
    jobindex_fini(&ji);
}

/* Walk pages of limit until the end; collect the ids. */
static size_t
walk(const struct jobindex *ji, const char *key, int state, size_t limit, size_t scan_max,
     char (*all)[ID_LEN + 1], size_t max, size_t *out_pages)
{
    struct jobindex_page pg = {
        .owner_key = key, .state = state, .limit = limit, .scan_max = scan_max};
    char(*ids)[ID_LEN + 1] = calloc(limit, sizeof(*ids));
    size_t total = 0;
    bool more = true;
    *out_pages = 0;
    while (more && ids != NULL) {
        int64_t nc = 0;
        char nid[ID_LEN + 1] = "";
        size_t n = jobindex_list(ji, &pg, ids, &more, &nc, nid);
        (*out_pages)++;
        for (size_t i = 0; i < n && total < max; i++)
            memcpy(all[total++], ids[i], ID_LEN + 1);
        if (more) {
            /* Through the cursor's text, as a client would send it back. */
            char cur[JOBINDEX_CURSOR_MAX];
            jobindex_cursor_format(nc, nid, cur);
            CHECK(jobindex_cursor_parse(cur, &pg.cursor_created, pg.cursor_id));
            pg.has_cursor = true;
        }
    }
    free(ids);
    return total;
}

static void
test_list(void)
{
    struct jobindex ji;
    char(*got)[ID_LEN + 1] = calloc(64, sizeof(*got));
    size_t pages = 0;
    REQUIRE_VOID(got != NULL);
    jobindex_init(&ji);
    /* A: 26 jobs, B: 10, interleaved in time; A's last two share a millisecond. */
    for (int i = 0; i < 26; i++)
        submit(&ji, "u:a", 'a', i, 1000 + (i < 25 ? i : 24) * 10, &NOLIMIT);
    for (int i = 0; i < 10; i++)
        submit(&ji, "u:b", 'b', i, 1005 + i * 10, &NOLIMIT);
    /* A's jobs, newest first, 7 a page: all 26, each once, in order, 4 pages. */
    size_t n = walk(&ji, "u:a", -1, 7, 10000, got, 64, &pages);
    CHECK_INT(n, 26);
    CHECK_INT(pages, 4);
    for (size_t i = 0; i < n; i++) {
        char want[ID_LEN + 1];
        make_id(want, 'a', 25 - (int)i);
        CHECK_STR(got[i], want);
    }
    /* Everyone's: 36. A page exactly at the end says there is no more. */
    n = walk(&ji, NULL, -1, 36, 10000, got, 64, &pages);
    CHECK_INT(n, 36);
    CHECK_INT(pages, 1);
    char want[ID_LEN + 1];
    make_id(want, 'a', 25); /* a25 and a24 at 1240 are the newest; the id orders them */
    CHECK_STR(got[0], want);
    make_id(want, 'a', 24);
    CHECK_STR(got[1], want);
    /* An unknown owner has no jobs. */
    CHECK_INT(walk(&ji, "u:nobody", -1, 5, 10000, got, 64, &pages), 0);
    /* By state: start 3 (a0, b0, a1) and end a0. */
    for (int i = 0; i < 3; i++)
        (void)start_next(&ji, 0);
    char id[ID_LEN + 1];
    make_id(id, 'a', 0);
    jobindex_end(&ji, id, JOB_FAILED, 9000, 100);
    n = walk(&ji, "u:a", JOB_FAILED, 10, 10000, got, 64, &pages);
    /* a0 (failed), and a1 (started: may be anything by now; the API checks the record). */
    CHECK_INT(n, 2);
    n = walk(&ji, "u:a", JOB_QUEUED, 10, 10000, got, 64, &pages);
    CHECK_INT(n, 24);
    /* A bounded scan: pages of at most 4 examined entries still reach everything. */
    n = walk(&ji, "u:a", JOB_FAILED, 10, 4, got, 64, &pages);
    CHECK_INT(n, 2);
    CHECK(pages >= 7);
    jobindex_fini(&ji);
    free(got);
}

static void
test_cursor(void)
{
    char buf[JOBINDEX_CURSOR_MAX], id[ID_LEN + 1];
    int64_t c = 0;
    const char *good = "abcdefghijklmnopqrstuvwxya";
    jobindex_cursor_format(1795694400123LL, good, buf);
    CHECK_STR(buf, "1a217ba127b.abcdefghijklmnopqrstuvwxya");
    CHECK(jobindex_cursor_parse(buf, &c, id));
    CHECK_INT(c, 1795694400123LL);
    CHECK_STR(id, good);
    jobindex_cursor_format(0, good, buf);
    CHECK(jobindex_cursor_parse(buf, &c, id) && c == 0);
    static const char *const bad[] = {
        "",
        ".",
        "1a2189a6c7b",
        "1a2189a6c7b.",
        ".abcdefghijklmnopqrstuvwxya",
        "01a.abcdefghijklmnopqrstuvwxya",               /* a leading zero */
        "1A2.abcdefghijklmnopqrstuvwxya",               /* upper case */
        "-1.abcdefghijklmnopqrstuvwxya",                /* a sign */
        "8000000000000000.abcdefghijklmnopqrstuvwxya",  /* above INT64_MAX */
        "10000000000000000.abcdefghijklmnopqrstuvwxya", /* 17 digits */
        "1a.abcdefghijklmnopqrstuvwxy",                 /* a short id */
        "1a.abcdefghijklmnopqrstuvwxyaa",               /* a long id */
        "1a.ABCDEFGHIJKLMNOPQRSTUVWXYA",                /* not the id alphabet */
        "1a.abcdefghijklmnopqrstuvwxy1",
        "1a.abcdefghijklmnopqrstuvwxya.",
        "1a..abcdefghijklmnopqrstuvwxya",
        " 1a.abcdefghijklmnopqrstuvwxya",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (jobindex_cursor_parse(bad[i], &c, id))
            check_fail(__FILE__, __LINE__, "parse", "accepted \"%s\"", bad[i]);
        check_count++;
    }
}

static void
test_owner_keys(void)
{
    char key[JOBINDEX_KEY_MAX];
    struct job_owner o = {.kind = OWNER_USER};
    (void)snprintf(o.name, sizeof(o.name), "alice");
    jobindex_owner_key(&o, key);
    CHECK_STR(key, "u:alice");
    o.kind = OWNER_ADDRESS;
    jobindex_owner_key(&o, key);
    CHECK_STR(key, "a:alice");
    o.kind = OWNER_NONE;
    jobindex_owner_key(&o, key);
    CHECK_STR(key, "");
    /* The longest name fits. */
    o.kind = OWNER_USER;
    memset(o.name, 'x', sizeof(o.name) - 1);
    o.name[sizeof(o.name) - 1] = '\0';
    jobindex_owner_key(&o, key);
    CHECK_INT(strlen(key), JOB_OWNER_MAX + 1);
}

int
main(void)
{
    test_a10_then_b1();
    test_round_robin();
    test_rebuild();
    test_max_running();
    test_quotas();
    test_remove_all();
    test_list();
    test_cursor();
    test_owner_keys();
    return check_done("jobindex");
}
