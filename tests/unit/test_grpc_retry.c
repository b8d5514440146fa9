/* test_grpc_retry: grpc_unary's generic retry loop (the caller's hooks, attempt numbers,
 * metadata, deadlines) against a loopback port that refuses connections, and base URLs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "rpc/grpc.h"
#include "util/clock.h"

#define MAX_SEEN 16

/* What the hooks saw, and what the delay hook answers. */
struct seen {
    unsigned metas; /* meta hook calls */
    unsigned meta_n[MAX_SEEN];
    unsigned delays; /* delay hook calls */
    struct grpc_attempt a[MAX_SEEN];
    int codes[MAX_SEEN];
    int64_t answer[MAX_SEEN]; /* delay to return on call i */
    enum rc meta_rc;
    char line[64];
};

static enum rc
meta_hook(void *ctx, unsigned n, int64_t elapsed_ms, const char **out, size_t cap, size_t *out_n)
{
    struct seen *s = ctx;
    (void)elapsed_ms;
    *out_n = 0;
    if (s->metas < MAX_SEEN)
        s->meta_n[s->metas] = n;
    s->metas++;
    if (s->meta_rc != RC_OK)
        return s->meta_rc;
    CHECK(cap >= GRPC_RETRY_META_MAX);
    (void)snprintf(s->line, sizeof(s->line), "x-test-attempt: %u", n);
    out[(*out_n)++] = s->line;
    return RC_OK;
}

static int64_t
delay_hook(void *ctx, const struct grpc_attempt *a)
{
    struct seen *s = ctx;
    unsigned i = s->delays++;
    if (i >= MAX_SEEN)
        return -1;
    s->a[i] = *a;
    s->codes[i] = a->st->code;
    s->a[i].st = NULL; /* borrowed only during the hook */
    return s->answer[i];
}

/* A loopback port bound but not listening: connections to it are refused. */
static int
refusing_port(int *out_fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        if (fd >= 0)
            (void)close(fd);
        return -1;
    }
    *out_fd = fd;
    return ntohs(sa.sin_port);
}

static enum rc
unary(struct grpc_client *c, const struct grpc_retry *retry, int64_t deadline,
      struct grpc_status *st)
{
    char untouched = 'x';
    char *resp = &untouched;
    size_t resp_len = 1;
    static const char *const meta[] = {"x-test: 1", NULL};
    enum rc rc = grpc_unary(c, "/test.Service/Method", "", 0, meta, retry, 1000, deadline, &resp,
                            &resp_len, st);
    CHECK(resp == NULL && resp_len == 0);
    return rc;
}

static void
test_urls(void)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:1",
        "ftp://127.0.0.1:1",
        "http://",
        "https://",
        "http://h/path",
        "http://h?x",
        "http://u@h",
        "http://h h",
        "unix:///run/x.sock",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        struct grpc_client *c = grpc_client_new(bad[i], 0);
        if (c != NULL)
            check_fail(__FILE__, __LINE__, "grpc_client_new(bad)", "accepted \"%s\"", bad[i]);
        grpc_client_free(c);
    }
    static const char *const good[] = {"http://127.0.0.1:1", "https://api.example.com",
                                       "https://api.example.com/", "http://[::1]:50051", NULL};
    for (size_t i = 0; good[i] != NULL; i++) {
        struct grpc_client *c = grpc_client_new(good[i], GRPC_CLIENT_H2C);
        if (c == NULL)
            check_fail(__FILE__, __LINE__, "grpc_client_new(good)", "refused \"%s\"", good[i]);
        grpc_client_free(c);
    }
    grpc_client_free(NULL);
}

static void
test_retries(const char *url)
{
    struct grpc_client *c = grpc_client_new(url, 0);
    struct grpc_status st;
    REQUIRE_VOID(c != NULL);

    /* No policy: one attempt, the transport failure as UNAVAILABLE. */
    CHECK_INT(unary(c, NULL, 0, &st), RC_BACKEND);
    CHECK_INT(st.code, GRPC_UNAVAILABLE);
    CHECK(st.message[0] != '\0');

    /* Metadata only: still one attempt. */
    struct seen s;
    memset(&s, 0, sizeof(s));
    struct grpc_retry meta_only = {.meta = meta_hook, .ctx = &s};
    CHECK_INT(unary(c, &meta_only, 0, &st), RC_BACKEND);
    CHECK_INT(s.metas, 1);
    CHECK_INT(s.meta_n[0], 0);

    /* Three retries after 20 ms each, then the hook gives up: four attempts, numbered. */
    memset(&s, 0, sizeof(s));
    s.answer[0] = s.answer[1] = s.answer[2] = 20;
    s.answer[3] = -1;
    struct grpc_retry both = {.meta = meta_hook, .delay = delay_hook, .ctx = &s};
    int64_t t0 = clock_mono_ms();
    CHECK_INT(unary(c, &both, 0, &st), RC_BACKEND);
    CHECK_INT(st.code, GRPC_UNAVAILABLE);
    CHECK_INT(s.metas, 4);
    CHECK_INT(s.delays, 4);
    for (unsigned i = 0; i < 4; i++) {
        CHECK_INT(s.meta_n[i], i);
        CHECK_INT(s.a[i].n, i);
        CHECK_INT(s.codes[i], GRPC_UNAVAILABLE);
        CHECK(s.a[i].details == NULL && s.a[i].details_len == 0);
        CHECK_INT(s.a[i].time_left_ms, -1);
        if (i > 0)
            CHECK(s.a[i].elapsed_ms >= s.a[i - 1].elapsed_ms + 20);
    }
    CHECK(clock_mono_ms() - t0 >= 60); /* the delays were waited */

    /* A total deadline: a delay that would end past it gives up instead of sleeping. */
    memset(&s, 0, sizeof(s));
    for (unsigned i = 0; i < MAX_SEEN; i++)
        s.answer[i] = 100;
    int64_t deadline = clock_mono_ms() + 250;
    CHECK_INT(unary(c, &both, deadline, &st), RC_BACKEND);
    REQUIRE_VOID(s.delays <= MAX_SEEN);
    for (unsigned i = 0; i + 1 < s.delays; i++)
        CHECK(s.a[i].time_left_ms > 100); /* each retry taken had room for its delay */
    if (st.code == GRPC_UNAVAILABLE) {
        /* The hook's next delay did not fit: no further attempt. */
        REQUIRE_VOID(s.delays >= 1);
        CHECK(s.a[s.delays - 1].time_left_ms <= 100);
        CHECK_INT(s.metas, s.delays);
    } else {
        /* On a loaded machine an attempt itself can run into the deadline. */
        CHECK_INT(st.code, GRPC_DEADLINE_EXCEEDED);
        CHECK(s.metas == s.delays || s.metas == s.delays + 1);
    }

    /* A deadline already past: no attempt at all. */
    memset(&s, 0, sizeof(s));
    CHECK_INT(unary(c, &both, clock_mono_ms() - 1, &st), RC_BACKEND);
    CHECK_INT(st.code, GRPC_DEADLINE_EXCEEDED);
    CHECK_INT(s.metas, 0);

    /* The meta hook's error ends the call before any attempt. */
    memset(&s, 0, sizeof(s));
    s.meta_rc = RC_TOOBIG;
    CHECK_INT(unary(c, &both, 0, &st), RC_TOOBIG);
    CHECK_INT(s.metas, 1);
    CHECK_INT(s.delays, 0);

    grpc_client_free(c);
}

static void
waiting_hook(void *ctx, int64_t elapsed_ms)
{
    struct seen *s = ctx;
    if (s->delays < MAX_SEEN)
        s->a[s->delays].elapsed_ms = elapsed_ms;
    s->delays++;
}

/* A server that accepts the connection and never answers: the waiting hook is told about the
 * wait every waiting_ms until the attempt's own deadline ends it. */
static void
test_waiting(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char url[64];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE_VOID(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                 listen(fd, 4) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    struct grpc_client *c = grpc_client_new(url, 0);
    REQUIRE_VOID(c != NULL);
    struct seen s;
    memset(&s, 0, sizeof(s));
    struct grpc_retry w = {.waiting = waiting_hook, .waiting_ms = 300, .waiting_ctx = &s};
    struct grpc_status st;
    char *resp = NULL;
    size_t resp_len = 0;
    CHECK_INT(
        grpc_unary(c, "/test.Service/Method", "", 0, NULL, &w, 1100, 0, &resp, &resp_len, &st),
        RC_BACKEND);
    CHECK_INT(st.code, GRPC_DEADLINE_EXCEEDED);
    CHECK(s.delays >= 2 && s.delays <= 4);
    for (unsigned i = 0; i < s.delays && i < MAX_SEEN; i++) {
        CHECK(s.a[i].elapsed_ms >= 300 * (int64_t)(i + 1));
        if (i > 0)
            CHECK(s.a[i].elapsed_ms >= s.a[i - 1].elapsed_ms + 250);
    }
    grpc_client_free(c);
    (void)close(fd);
}

int
main(void)
{
    int fd = -1;
    char url[64];
    int port = refusing_port(&fd);
    REQUIRE(port > 0);
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    test_urls();
    test_retries(url);
    test_waiting();
    (void)close(fd);
    return check_done("grpc_retry");
}
