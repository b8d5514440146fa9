/* modal_retry: Modal's retry rules for gRPC calls, as a struct grpc_retry for grpc_unary.
 *
 * Theory of operation. Modal's SDKs retry the same five status codes everywhere (CANCELLED,
 * UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE) with exponential backoff and jitter; the
 * control plane and the task command router differ only in their numbers, so each is a
 * struct modal_retry_policy. On top of that the server may direct a retry: a
 * grpc-status-details-bin that decodes as modal.client.RPCStatus carrying a
 * modal.client.RPCRetryPolicy detail says how long to wait, for any code, without counting
 * against the policy's retries. Control-plane calls also carry the JS SDK's idempotency
 * metadata: one x-idempotency-key for all attempts of a logical call, x-retry-attempt and
 * x-throttle-retry-attempt (policy and server-directed retries so far), and x-retry-delay /
 * x-throttle-retry-delay once there was one of that kind.
 *
 * A struct modal_retry is the state of one logical call (counters, its key and the metadata
 * lines); modal_retry_init fills its hook, which the caller passes to grpc_unary. The table of
 * what is retried how is docs/modal.md#retries-and-idempotency.
 */
#ifndef LABBOX_MODAL_RETRY_H
#define LABBOX_MODAL_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"
#include "rpc/grpc.h"

#define MODAL_THROTTLE_MAX    50  /* server-directed retries of one call at most */
#define MODAL_THROTTLE_MIN_MS 100 /* shortest server-directed delay */

struct modal_retry_policy {
    unsigned max_retries;  /* attempts = max_retries + 1 */
    unsigned base_ms;      /* delay before the first retry */
    unsigned factor;       /* growth per retry */
    unsigned cap_ms;       /* 0 = no cap */
    bool idempotency_meta; /* add x-idempotency-key / x-retry-attempt / x-retry-delay */
};

/* The control plane: 3 retries, 100 ms doubling, cap 1 s, idempotency metadata. */
extern const struct modal_retry_policy MODAL_RETRY_CONTROL;
/* The task command router: 10 retries, 10 ms doubling, no cap, no idempotency metadata. */
extern const struct modal_retry_policy MODAL_RETRY_ROUTER;

/* modal_retry_is_retryable: CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE (also
 * the codes on which a stream is reopened). */
bool modal_retry_is_retryable(int code);

/* modal_retry_delay_ms decides, after a failed attempt with status code, whether to retry and
 * after how long: -1 = give up. retries and throttles count the earlier retries of each kind.
 * A server-directed retry_after_ms >= 0 wins (at least MODAL_THROTTLE_MIN_MS; more than
 * MODAL_THROTTLE_MAX throttles give up). Otherwise only retryable codes retry, at most
 * p->max_retries times, after base * factor^retries capped at cap_ms, scaled by
 * 0.8 + 0.4 * jitter (jitter in [0,1), else 0.5). Pure. */
int64_t modal_retry_delay_ms(const struct modal_retry_policy *p, int code, unsigned retries,
                             int64_t retry_after_ms, unsigned throttles, double jitter);

/* modal_retry_after_ms: the retry_after_secs of an RPCRetryPolicy detail (type URL ending in
 * "/modal.client.RPCRetryPolicy") of the RPCStatus details (len bytes), in ms (0 when not
 * positive); -1 when details is NULL, undecodable or has no such detail. Pure. */
int64_t modal_retry_after_ms(const unsigned char *details, size_t len);

/* The retry state of one logical call. */
struct modal_retry {
    struct grpc_retry hook; /* pass &hook to grpc_unary */
    struct modal_retry_policy policy;
    unsigned retries;          /* policy retries so far */
    unsigned throttles;        /* server-directed retries so far */
    char key[64];              /* "x-idempotency-key: <uuid>" */
    char attempt[48];          /* "x-retry-attempt: N" (policy retries so far) */
    char throttle_attempt[56]; /* "x-throttle-retry-attempt: N" (server-directed ones) */
    char delay[48];            /* "x-retry-delay: S.mmm" (seconds since the first attempt) */
    char throttle_delay[56];   /* "x-throttle-retry-delay: S.mmm" */
};

/* modal_retry_init prepares r for one logical call under a copy of p (the caller may then
 * adjust r->policy), with a fresh idempotency key when p asks for one. RC_IO if no random
 * bytes are available. */
enum rc modal_retry_init(struct modal_retry *r, const struct modal_retry_policy *p) LB_MUST_CHECK;

/* modal_uuid4 writes a random UUIDv4 (36 chars + NUL): idempotency keys and exec ids. RC_IO if
 * getrandom fails. */
enum rc modal_uuid4(char out[37]) LB_MUST_CHECK;

#endif
