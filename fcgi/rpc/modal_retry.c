/* modal_retry: Modal's retryable codes, backoff, server-directed retries, idempotency meta. */
#include "rpc/modal_retry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "modal_client.pb-c.h"
#include "util/clock.h"

const struct modal_retry_policy MODAL_RETRY_CONTROL = {3, 100, 2, 1000, true};
const struct modal_retry_policy MODAL_RETRY_ROUTER = {10, 10, 2, 0, false};

bool
modal_retry_is_retryable(int code)
{
    return code == GRPC_CANCELLED || code == GRPC_UNKNOWN || code == GRPC_DEADLINE_EXCEEDED ||
           code == GRPC_INTERNAL || code == GRPC_UNAVAILABLE;
}

int64_t
modal_retry_delay_ms(const struct modal_retry_policy *p, int code, unsigned retries,
                     int64_t retry_after_ms, unsigned throttles, double jitter)
{
    int64_t d;
    if (code == GRPC_OK)
        return -1;
    if (retry_after_ms >= 0) {
        if (throttles >= MODAL_THROTTLE_MAX)
            return -1;
        return retry_after_ms < MODAL_THROTTLE_MIN_MS ? MODAL_THROTTLE_MIN_MS : retry_after_ms;
    }
    if (!modal_retry_is_retryable(code) || retries >= p->max_retries)
        return -1;
    d = p->base_ms;
    for (unsigned i = 0; i < retries && d < INT64_C(1) << 40; i++)
        d *= p->factor;
    if (p->cap_ms > 0 && d > (int64_t)p->cap_ms)
        d = p->cap_ms;
    if (jitter < 0 || jitter >= 1)
        jitter = 0.5;
    return (int64_t)((double)d * (0.8 + 0.4 * jitter));
}

int64_t
modal_retry_after_ms(const unsigned char *details, size_t len)
{
    static const char suffix[] = "/modal.client.RPCRetryPolicy";
    int64_t out = -1;
    if (details == NULL)
        return -1;
    Modal__Client__RPCStatus *st = modal__client__rpcstatus__unpack(NULL, len, details);
    if (st == NULL)
        return -1;
    for (size_t i = 0; i < st->n_details; i++) {
        const char *t = st->details[i]->type_url;
        size_t tl = t ? strlen(t) : 0;
        if (tl < sizeof(suffix) - 1 || strcmp(t + tl - (sizeof(suffix) - 1), suffix) != 0)
            continue;
        Modal__Client__RPCRetryPolicy *rp = modal__client__rpcretry_policy__unpack(
            NULL, st->details[i]->value.len, st->details[i]->value.data);
        if (rp != NULL) {
            float s = rp->retry_after_secs;
            out = s > 0 && s < 86400 ? (int64_t)(s * 1000.0f) : 0;
            modal__client__rpcretry_policy__free_unpacked(rp, NULL);
        }
        break;
    }
    modal__client__rpcstatus__free_unpacked(st, NULL);
    return out;
}

static double
jitter01(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)clock_mono_ms() * 2654435761u;
    return (double)r / 4294967296.0;
}

/* "name: S.mmm" (seconds) into buf. */
static enum rc
seconds_line(char *buf, size_t cap, const char *name, int64_t ms)
{
    int k = snprintf(buf, cap, "%s: %" PRId64 ".%03d", name, ms / 1000, (int)(ms % 1000));
    return k > 0 && (size_t)k < cap ? RC_OK : RC_TOOBIG;
}

/* grpc_retry_meta_fn: the JS SDK's retry metadata: the idempotency key, the number of policy
 * retries and of server-directed (throttle) retries so far, and for each kind that happened,
 * the seconds since the first attempt. */
static enum rc
retry_meta(void *ctx, unsigned n, int64_t elapsed_ms, const char **out, size_t cap, size_t *out_n)
{
    struct modal_retry *r = ctx;
    (void)n;
    *out_n = 0;
    if (!r->policy.idempotency_meta)
        return RC_OK;
    if (cap < 5)
        return RC_TOOBIG;
    int k = snprintf(r->attempt, sizeof(r->attempt), "x-retry-attempt: %u", r->retries);
    int l = snprintf(r->throttle_attempt, sizeof(r->throttle_attempt),
                     "x-throttle-retry-attempt: %u", r->throttles);
    if (k < 0 || (size_t)k >= sizeof(r->attempt) || l < 0 ||
        (size_t)l >= sizeof(r->throttle_attempt))
        return RC_TOOBIG;
    out[(*out_n)++] = r->key;
    out[(*out_n)++] = r->attempt;
    out[(*out_n)++] = r->throttle_attempt;
    if (r->retries > 0) {
        if (seconds_line(r->delay, sizeof(r->delay), "x-retry-delay", elapsed_ms) != RC_OK)
            return RC_TOOBIG;
        out[(*out_n)++] = r->delay;
    }
    if (r->throttles > 0) {
        if (seconds_line(r->throttle_delay, sizeof(r->throttle_delay), "x-throttle-retry-delay",
                         elapsed_ms) != RC_OK)
            return RC_TOOBIG;
        out[(*out_n)++] = r->throttle_delay;
    }
    return RC_OK;
}

/* grpc_retry_delay_fn: modal_retry_delay_ms with the server's RPCRetryPolicy, counting. */
static int64_t
retry_delay(void *ctx, const struct grpc_attempt *a)
{
    struct modal_retry *r = ctx;
    int64_t after = modal_retry_after_ms(a->details, a->details_len);
    int64_t d =
        modal_retry_delay_ms(&r->policy, a->st->code, r->retries, after, r->throttles, jitter01());
    if (d >= 0 && after >= 0)
        r->throttles++;
    else if (d >= 0)
        r->retries++;
    return d;
}

enum rc
modal_retry_init(struct modal_retry *r, const struct modal_retry_policy *p)
{
    char uuid[37];
    memset(r, 0, sizeof(*r));
    r->policy = *p;
    r->hook.meta = retry_meta;
    r->hook.delay = retry_delay;
    r->hook.ctx = r;
    if (!p->idempotency_meta)
        return RC_OK;
    if (modal_uuid4(uuid) != RC_OK)
        return RC_IO;
    int k = snprintf(r->key, sizeof(r->key), "x-idempotency-key: %s", uuid);
    return k > 0 && (size_t)k < sizeof(r->key) ? RC_OK : RC_TOOBIG;
}

enum rc
modal_uuid4(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return RC_IO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return RC_OK;
}
