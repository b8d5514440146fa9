/* test_modal_retry: Modal's retry decision table, RPCRetryPolicy details, the retry hook's
 * idempotency metadata and counting, and UUIDv4s. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "modal_client.pb-c.h"
#include "rpc/modal_retry.h"

/* An RPCStatus whose one detail has type_url and an RPCRetryPolicy of secs, packed into out. */
static size_t
status_details(const char *type_url, float secs, uint8_t *out, size_t cap)
{
    Modal__Client__RPCRetryPolicy rp = MODAL__CLIENT__RPCRETRY_POLICY__INIT;
    uint8_t rpbuf[16];
    rp.retry_after_secs = secs;
    size_t rpn = protobuf_c_message_pack(&rp.base, rpbuf);
    Modal__Client__StatusDetail d = MODAL__CLIENT__STATUS_DETAIL__INIT;
    Modal__Client__StatusDetail *ds[] = {&d};
    Modal__Client__RPCStatus st = MODAL__CLIENT__RPCSTATUS__INIT;
    d.type_url = check_mut(type_url);
    d.value.data = rpbuf;
    d.value.len = rpn;
    st.code = 8;
    st.message = check_mut("slow down");
    st.n_details = 1;
    st.details = ds;
    if (protobuf_c_message_get_packed_size(&st.base) > cap)
        return 0;
    return protobuf_c_message_pack(&st.base, out);
}

static void
test_table(void)
{
    const struct modal_retry_policy *cp = &MODAL_RETRY_CONTROL, *rt = &MODAL_RETRY_ROUTER;
    /* Retryable codes, exactly five. */
    int retryable = 0;
    for (int c = 0; c < GRPC_CODE__MAX; c++)
        retryable += modal_retry_is_retryable(c);
    CHECK_INT(retryable, 5);
    CHECK(modal_retry_is_retryable(GRPC_UNAVAILABLE));
    CHECK(modal_retry_is_retryable(GRPC_DEADLINE_EXCEEDED));
    CHECK(modal_retry_is_retryable(GRPC_CANCELLED));
    CHECK(modal_retry_is_retryable(GRPC_INTERNAL));
    CHECK(modal_retry_is_retryable(GRPC_UNKNOWN));
    CHECK(!modal_retry_is_retryable(GRPC_UNAUTHENTICATED));
    CHECK(!modal_retry_is_retryable(GRPC_RESOURCE_EXHAUSTED));

    /* Control plane: 100, 200, 400 ms (jitter 0.5 = unscaled), then give up. */
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.5), 100);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 1, -1, 0, 0.5), 200);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 2, -1, 0, 0.5), 400);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 3, -1, 0, 0.5), -1);
    /* Jitter bounds: 0.8x .. 1.2x; out of range is unscaled. */
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.0), 80);
    CHECK(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.999) <= 120);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 1.5), 100);
    /* Never retried. */
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_OK, 0, -1, 0, 0.5), -1);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_UNAUTHENTICATED, 0, -1, 0, 0.5), -1);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_PERMISSION_DENIED, 0, -1, 0, 0.5), -1);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_NOT_FOUND, 0, -1, 0, 0.5), -1);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_INVALID_ARGUMENT, 0, -1, 0, 0.5), -1);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, -1, 0, 0.5), -1);
    /* Cap at 1 s. */
    struct modal_retry_policy many = *cp;
    many.max_retries = 20;
    CHECK_INT(modal_retry_delay_ms(&many, GRPC_UNAVAILABLE, 10, -1, 0, 0.5), 1000);
    /* Router: 10 retries from 10 ms doubling, uncapped. */
    CHECK_INT(modal_retry_delay_ms(rt, GRPC_UNAVAILABLE, 0, -1, 0, 0.5), 10);
    CHECK_INT(modal_retry_delay_ms(rt, GRPC_UNAVAILABLE, 9, -1, 0, 0.5), 5120);
    CHECK_INT(modal_retry_delay_ms(rt, GRPC_UNAVAILABLE, 10, -1, 0, 0.5), -1);
    CHECK(cp->idempotency_meta && !rt->idempotency_meta);
    /* No retries. */
    struct modal_retry_policy none = *cp;
    none.max_retries = 0;
    CHECK_INT(modal_retry_delay_ms(&none, GRPC_UNAVAILABLE, 0, -1, 0, 0.5), -1);
    /* Server-directed retries: any code, not counted, at least 100 ms, at most 50. */
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 3, 2000, 0, 0.5), 2000);
    CHECK_INT(modal_retry_delay_ms(&none, GRPC_UNAVAILABLE, 0, 300, 0, 0.5), 300);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 0, 0, 0.5), 100);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 200, 49, 0.5), 200);
    CHECK_INT(modal_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 200, 50, 0.5), -1);
}

static void
test_details(void)
{
    uint8_t buf[256];
    size_t n =
        status_details("type.modal.com/modal.client.RPCRetryPolicy", 0.25f, buf, sizeof(buf));
    REQUIRE_VOID(n > 0);
    CHECK_INT(modal_retry_after_ms(buf, n), 250);
    /* Any prefix before the type name. */
    n = status_details("type.googleapis.com/modal.client.RPCRetryPolicy", 2.0f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), 2000);
    /* Zero, negative or absurd delays mean "now" (the minimum applies later). */
    n = status_details("type.modal.com/modal.client.RPCRetryPolicy", 0.0f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), 0);
    n = status_details("type.modal.com/modal.client.RPCRetryPolicy", -3.0f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), 0);
    n = status_details("type.modal.com/modal.client.RPCRetryPolicy", 1e9f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), 0);
    /* Other detail types, garbage, nothing: no server-directed retry. */
    n = status_details("type.modal.com/modal.client.SomethingElse", 0.25f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), -1);
    n = status_details("RPCRetryPolicy", 0.25f, buf, sizeof(buf));
    CHECK_INT(modal_retry_after_ms(buf, n), -1);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f, 0x01};
    CHECK_INT(modal_retry_after_ms(junk, sizeof(junk)), -1);
    CHECK_INT(modal_retry_after_ms(NULL, 0), -1);
}

static void
test_hook(void)
{
    struct modal_retry r;
    const char *meta[GRPC_RETRY_META_MAX];
    size_t n = 99;
    char key[64];

    /* Control plane: one key for every attempt; the JS SDK's counts of policy and throttle
     * retries so far, and the delay of each kind once there was one. */
    REQUIRE_VOID(modal_retry_init(&r, &MODAL_RETRY_CONTROL) == RC_OK);
    REQUIRE_VOID(r.hook.meta != NULL && r.hook.delay != NULL && r.hook.ctx == &r);
    CHECK_INT(r.hook.meta(r.hook.ctx, 0, 0, meta, GRPC_RETRY_META_MAX, &n), RC_OK);
    REQUIRE_VOID(n == 3);
    CHECK_INT(strncmp(meta[0], "x-idempotency-key: ", 19), 0);
    CHECK_INT(strlen(meta[0]), 19 + 36);
    CHECK_STR(meta[1], "x-retry-attempt: 0");
    CHECK_STR(meta[2], "x-throttle-retry-attempt: 0");
    (void)snprintf(key, sizeof(key), "%s", meta[0]);
    r.retries = 2;
    CHECK_INT(r.hook.meta(r.hook.ctx, 2, 1234, meta, GRPC_RETRY_META_MAX, &n), RC_OK);
    REQUIRE_VOID(n == 4);
    CHECK_STR(meta[0], key);
    CHECK_STR(meta[1], "x-retry-attempt: 2");
    CHECK_STR(meta[2], "x-throttle-retry-attempt: 0");
    CHECK_STR(meta[3], "x-retry-delay: 1.234");
    r.retries = 0;
    r.throttles = 1;
    CHECK_INT(r.hook.meta(r.hook.ctx, 1, 5, meta, GRPC_RETRY_META_MAX, &n), RC_OK);
    REQUIRE_VOID(n == 4);
    CHECK_STR(meta[1], "x-retry-attempt: 0");
    CHECK_STR(meta[2], "x-throttle-retry-attempt: 1");
    CHECK_STR(meta[3], "x-throttle-retry-delay: 0.005");
    r.retries = 1;
    CHECK_INT(r.hook.meta(r.hook.ctx, 2, 7, meta, GRPC_RETRY_META_MAX, &n), RC_OK);
    REQUIRE_VOID(n == 5);
    CHECK_STR(meta[3], "x-retry-delay: 0.007");
    CHECK_STR(meta[4], "x-throttle-retry-delay: 0.007");
    r.retries = 0;
    r.throttles = 0;
    /* A second logical call gets another key. */
    struct modal_retry r2;
    REQUIRE_VOID(modal_retry_init(&r2, &MODAL_RETRY_CONTROL) == RC_OK);
    CHECK(strcmp(r2.key, key) != 0);

    /* Counting: policy retries and server-directed ones separately. */
    struct grpc_status st = {GRPC_UNAVAILABLE, "down"};
    struct grpc_attempt a = {0, 0, -1, &st, NULL, 0};
    int64_t d = r.hook.delay(r.hook.ctx, &a);
    CHECK(d >= 80 && d <= 120);
    CHECK_INT(r.retries, 1);
    uint8_t buf[256];
    a.details_len =
        status_details("type.modal.com/modal.client.RPCRetryPolicy", 0.25f, buf, sizeof(buf));
    a.details = buf;
    st.code = GRPC_RESOURCE_EXHAUSTED;
    CHECK_INT(r.hook.delay(r.hook.ctx, &a), 250);
    CHECK_INT(r.retries, 1);
    CHECK_INT(r.throttles, 1);
    a.details = NULL;
    a.details_len = 0;
    CHECK_INT(r.hook.delay(r.hook.ctx, &a), -1);
    st.code = GRPC_UNAVAILABLE;
    d = r.hook.delay(r.hook.ctx, &a);
    CHECK(d >= 160 && d <= 240);
    d = r.hook.delay(r.hook.ctx, &a);
    CHECK(d >= 320 && d <= 480);
    CHECK_INT(r.hook.delay(r.hook.ctx, &a), -1);
    CHECK_INT(r.retries, 3);

    /* A refresh of a still-valid token: one attempt only. */
    REQUIRE_VOID(modal_retry_init(&r, &MODAL_RETRY_CONTROL) == RC_OK);
    r.policy.max_retries = 0;
    CHECK_INT(r.hook.delay(r.hook.ctx, &a), -1);

    /* Router: no idempotency metadata. */
    REQUIRE_VOID(modal_retry_init(&r, &MODAL_RETRY_ROUTER) == RC_OK);
    CHECK_INT(r.hook.meta(r.hook.ctx, 3, 100, meta, GRPC_RETRY_META_MAX, &n), RC_OK);
    CHECK_INT(n, 0);
    d = r.hook.delay(r.hook.ctx, &a);
    CHECK(d >= 8 && d <= 12);
}

static void
test_uuid(void)
{
    char a[37], b[37];
    CHECK_INT(modal_uuid4(a), RC_OK);
    CHECK_INT(modal_uuid4(b), RC_OK);
    CHECK_INT(strlen(a), 36);
    CHECK(strcmp(a, b) != 0);
    CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    CHECK_INT(strspn(a, "0123456789abcdef-"), 36);
}

int
main(void)
{
    test_table();
    test_details();
    test_hook();
    test_uuid();
    return check_done("modal_retry");
}
