/* sandbox: the registry of compiled-in backends and the shared instance helpers. */
#include "sandbox/sandbox.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if WITH_LOCAL
extern const struct sandbox_ops sandbox_local_ops;
#endif
#if WITH_DOCKER
extern const struct sandbox_ops sandbox_docker_ops;
#endif
#if WITH_MODAL
extern const struct sandbox_ops sandbox_modal_ops;
#endif

static const struct sandbox_ops *const registry[] = {
#if WITH_LOCAL
    &sandbox_local_ops,
#endif
#if WITH_DOCKER
    &sandbox_docker_ops,
#endif
#if WITH_MODAL
    &sandbox_modal_ops,
#endif
    NULL,
};

const struct sandbox_ops *
sandbox_ops_by_name(const char *name)
{
    for (size_t i = 0; registry[i] != NULL; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const char *
sandbox_names(void)
{
    static char names[64];
    if (names[0] == '\0') {
        size_t n = 0;
        for (size_t i = 0; registry[i] != NULL; i++) {
            int k = snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "", registry[i]->name);
            if (k > 0 && (size_t)k < sizeof(names) - n)
                n += (size_t)k;
        }
    }
    return names;
}

struct sandbox *
sandbox_new(const struct sandbox_ops *ops, const struct config *cfg, const struct sandbox_job *job)
{
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return NULL;
    sb->ops = ops;
    sb->cfg = cfg;
    sb->job = job;
    sb->state = json_object_new_object();
    if (ops->priv_size > 0)
        sb->priv = calloc(1, ops->priv_size);
    if (sb->state == NULL || (ops->priv_size > 0 && sb->priv == NULL)) {
        json_object_put(sb->state);
        free(sb->priv);
        free(sb);
        return NULL;
    }
    return sb;
}

void
sandbox_free(struct sandbox *sb)
{
    if (sb == NULL)
        return;
    sb->ops->fini(sb);
    json_object_put(sb->state);
    free(sb->priv);
    free(sb);
}

enum rc
sandbox_fail(struct sandbox *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(sb->error, sizeof(sb->error), fmt, ap);
    va_end(ap);
    return RC_BACKEND;
}

enum rc
sandbox_persist(struct sandbox *sb)
{
    return sb->on_persist ? sb->on_persist(sb->cb_ctx, sb) : RC_OK;
}

void
sandbox_emit(struct sandbox *sb, enum sandbox_stream s, const char *p, size_t n)
{
    if (sb->on_output != NULL && n > 0)
        sb->on_output(sb->cb_ctx, s, p, n);
}

const char *
sandbox_status_str(enum sandbox_status s)
{
    static const char *const names[SANDBOX_STATUS__MAX] = {
        "ok",            /* SANDBOX_OK */
        "runtime_error", /* SANDBOX_RUNTIME_ERROR */
        "signaled",      /* SANDBOX_SIGNALED */
        "timeout",       /* SANDBOX_TIMEOUT */
        "oom",           /* SANDBOX_OOM */
        "canceled",      /* SANDBOX_CANCELED */
        "internal",      /* SANDBOX_INTERNAL */
    };
    return (unsigned)s < SANDBOX_STATUS__MAX ? names[s] : "invalid";
}

bool
sandbox_status_parse(const char *s, enum sandbox_status *out)
{
    for (int i = 0; s != NULL && i < SANDBOX_STATUS__MAX; i++) {
        if (strcmp(s, sandbox_status_str((enum sandbox_status)i)) == 0) {
            *out = (enum sandbox_status)i;
            return true;
        }
    }
    return false;
}

enum rc
sandbox_nop_init(struct sandbox *sb)
{
    (void)sb;
    return RC_OK;
}

void
sandbox_nop_fini(struct sandbox *sb)
{
    (void)sb;
}

enum rc
sandbox_nop_check(struct sandbox *sb)
{
    (void)sb;
    return RC_OK;
}

enum rc
sandbox_nop_reap_orphans(struct sandbox *sb, sandbox_claimed_fn *claimed, void *ctx)
{
    (void)sb;
    (void)claimed;
    (void)ctx;
    return RC_OK;
}

enum rc
sandbox_noattach(struct sandbox *sb)
{
    return sandbox_fail(sb, "the %s backend cannot re-attach to a sandbox", sb->ops->name);
}
