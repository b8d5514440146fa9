/* test_grpc_retry: the retry decision table (docs/modal.md#retries-and-idempotency), UUIDv4s. */
#include <string.h>

#include "check.h"
#include "rpc/grpc.h"

int
main(void)
{
    const struct grpc_retry_policy *cp = &GRPC_RETRY_CONTROL, *rt = &GRPC_RETRY_ROUTER;
    /* Retryable codes, exactly five. */
    int retryable = 0;
    for (int c = 0; c < GRPC_CODE__MAX; c++)
        retryable += grpc_retry_is_retryable(c);
    CHECK_INT(retryable, 5);
    CHECK(grpc_retry_is_retryable(GRPC_UNAVAILABLE));
    CHECK(grpc_retry_is_retryable(GRPC_DEADLINE_EXCEEDED));
    CHECK(grpc_retry_is_retryable(GRPC_CANCELLED));
    CHECK(grpc_retry_is_retryable(GRPC_INTERNAL));
    CHECK(grpc_retry_is_retryable(GRPC_UNKNOWN));
    CHECK(!grpc_retry_is_retryable(GRPC_UNAUTHENTICATED));
    CHECK(!grpc_retry_is_retryable(GRPC_RESOURCE_EXHAUSTED));

    /* Control plane: 100, 200, 400 ms (jitter 0.5 = unscaled), then give up. */
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.5, -1), 100);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 1, -1, 0, 0.5, -1), 200);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 2, -1, 0, 0.5, -1), 400);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 3, -1, 0, 0.5, -1), -1);
    /* Jitter bounds: 0.8x .. 1.2x. */
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.0, -1), 80);
    CHECK(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.999, -1) <= 120);
    /* Never retried. */
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_OK, 0, -1, 0, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAUTHENTICATED, 0, -1, 0, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_PERMISSION_DENIED, 0, -1, 0, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_NOT_FOUND, 0, -1, 0, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_INVALID_ARGUMENT, 0, -1, 0, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, -1, 0, 0.5, -1), -1);
    /* Cap at 1 s. */
    struct grpc_retry_policy many = *cp;
    many.max_retries = 20;
    CHECK_INT(grpc_retry_delay_ms(&many, GRPC_UNAVAILABLE, 10, -1, 0, 0.5, -1), 1000);
    /* Router: 10 retries from 10 ms doubling, uncapped. */
    CHECK_INT(grpc_retry_delay_ms(rt, GRPC_UNAVAILABLE, 0, -1, 0, 0.5, -1), 10);
    CHECK_INT(grpc_retry_delay_ms(rt, GRPC_UNAVAILABLE, 9, -1, 0, 0.5, -1), 5120);
    CHECK_INT(grpc_retry_delay_ms(rt, GRPC_UNAVAILABLE, 10, -1, 0, 0.5, -1), -1);
    CHECK(cp->idempotency_meta && !rt->idempotency_meta);
    /* No retries. */
    CHECK_INT(grpc_retry_delay_ms(&GRPC_RETRY_NONE, GRPC_UNAVAILABLE, 0, -1, 0, 0.5, -1), -1);
    /* Deadline: a delay that ends past the time left gives up. */
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.5, 100), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_UNAVAILABLE, 0, -1, 0, 0.5, 101), 100);
    /* Server-directed retries: any code, not counted, at least 100 ms, at most 50. */
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 3, 2000, 0, 0.5, -1), 2000);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 0, 0, 0.5, -1), 100);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 200, 50, 0.5, -1), -1);
    CHECK_INT(grpc_retry_delay_ms(cp, GRPC_RESOURCE_EXHAUSTED, 0, 5000, 0, 0.5, 1000), -1);

    char a[37], b[37];
    CHECK_INT(grpc_uuid4(a), RC_OK);
    CHECK_INT(grpc_uuid4(b), RC_OK);
    CHECK_INT(strlen(a), 36);
    CHECK(strcmp(a, b) != 0);
    CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    return check_done("grpc_retry");
}
