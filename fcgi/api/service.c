/* service: the endpoints about the service itself: health, limits, metrics, the agent. */
#include "api/api.h"

#include <stdlib.h>

#include "core/agent.h"
#include "core/metrics.h"
#include "defaults.h"
#include "json.h"
#include "log.h"

void
api_health(struct api *api, struct req *r, const struct api_args *a)
{
    size_t queued = 0, running = 0;
    char why[512];
    (void)a;
    bool ok = scheduler_backend_status(api->sched, why, sizeof(why));
    bool down = atomic_load(&api->shutting_down);
    scheduler_counts(api->sched, &queued, &running);
    json_object *o = json_object_new_object();
    bool built = o != NULL && json_set_str(o, "status", ok && !down ? "ok" : "degraded") &&
                 json_set_str(o, "backend", r->cfg->backend) &&
                 json_set_str(o, "instance", r->cfg->instance) &&
                 json_object_object_add(o, "backend_ok", json_object_new_boolean(ok)) == 0 &&
                 (ok || json_set_str(o, "backend_error", why)) &&
                 (!down || json_set_str(o, "detail", "shutting down")) &&
                 json_set_i64(o, "queued", (int64_t)queued) &&
                 json_set_i64(o, "running", (int64_t)running) &&
                 json_set_i64(o, "max_concurrent", (int64_t)r->cfg->max_concurrent) &&
                 json_set_str(o, "version", LABBOX_VERSION);
    if (built)
        resp_json(r, ok && !down ? 200 : 503, o, NULL);
    else
        api_internal(r);
    json_object_put(o);
}

static bool
add_types(const struct config *cfg, json_object *o)
{
    json_object *types = json_object_new_array();
    const char *cur = cfg->allowed_types, *t;
    size_t n;
    bool ok = types != NULL;
    while (ok && config_next_type(&cur, &t, &n)) {
        json_object *s = json_object_new_string_len(t, (int)n);
        ok = s != NULL && json_object_array_add(types, s) == 0;
        if (!ok)
            json_object_put(s);
    }
    if (ok && cfg->allow_octet_stream) {
        json_object *s = json_object_new_string("application/octet-stream");
        ok = s != NULL && json_object_array_add(types, s) == 0;
        if (!ok)
            json_object_put(s);
    }
    if (ok && json_object_object_add(o, "allowed_types", types) == 0)
        return true;
    json_object_put(types);
    return false;
}

/* Who the caller is and the quotas that apply to them (null: no limit). */
static bool
add_identity(const struct api *api, const struct req *r, json_object *o)
{
    static const char *const modes[] = {"none", "address", "remote_user"};
    const struct config *cfg = r->cfg;
    enum identity_mode mode = api->identity;
    const struct {
        const char *key;
        uint64_t v;
    } quotas[] = {{"user_max_queued", cfg->user_max_queued},
                  {"user_max_running", cfg->user_max_running},
                  {"user_max_bytes", cfg->user_max_bytes}};
    bool ok = json_set_str(o, "identity", modes[mode]) &&
              json_set_str(o, "user", r->who.kind == OWNER_USER ? r->who.name : NULL) &&
              json_object_object_add(o, "admin", json_object_new_boolean(r->admin)) == 0;
    for (size_t i = 0; ok && i < sizeof(quotas) / sizeof(quotas[0]); i++) {
        bool on = mode != IDENTITY_NONE && quotas[i].v > 0;
        ok = on ? json_set_i64(o, quotas[i].key, (int64_t)quotas[i].v)
                : json_object_object_add(o, quotas[i].key, NULL) == 0;
    }
    return ok;
}

void
api_limits(struct api *api, struct req *r, const struct api_args *a)
{
    const struct config *cfg = r->cfg;
    (void)api;
    (void)a;
    json_object *o = json_object_new_object();
    bool ok = o != NULL && json_set_i64(o, "max_file_bytes", (int64_t)cfg->max_file_bytes) &&
              json_set_i64(o, "max_job_bytes", (int64_t)cfg->max_job_bytes) &&
              json_set_i64(o, "max_files", (int64_t)cfg->max_files) && add_types(cfg, o) &&
              json_set_i64(o, "wall_timeout_s", (int64_t)cfg->wall_timeout) &&
              json_set_i64(o, "params_max_bytes", PARAMS_MAX_BYTES) && add_identity(api, r, o);
    if (ok)
        resp_json(r, 200, o, NULL);
    else
        api_internal(r);
    json_object_put(o);
}

void
api_metrics(struct api *api, struct req *r, const struct api_args *a)
{
    char why[8];
    char *text = NULL;
    size_t len = 0;
    (void)a;
    struct metrics_gauges g = {.streams = atomic_load(&api->streams)};
    g.backend_ok = scheduler_backend_status(api->sched, why, sizeof(why));
    scheduler_counts(api->sched, &g.queued, &g.running);
    if (metrics_render(&g, &text, &len) != RC_OK) {
        api_internal(r);
        return;
    }
    if (resp_start(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL) == RC_OK)
        RC_IGNORE(resp_write(r, text, len));
    free(text);
}

/* The agent as a client needs it: its title and description, and the schema of its params
 * (agent_dir/params.schema.json, null when it declares none) to build a form from. */
void
api_agent(struct api *api, struct req *r, const struct api_args *a)
{
    struct pschema *schema = NULL;
    char why[PSCHEMA_DETAIL_MAX + 128];
    (void)api;
    (void)a;
    if (agent_schema_load(r->cfg, &schema, why, sizeof(why)) != RC_OK) {
        log_err("the agent's parameter schema is unusable: %s", why);
        api_internal(r);
        return;
    }
    json_object *doc = schema ? pschema_doc(schema) : NULL;
    json_object *o = json_object_new_object();
    bool built = o != NULL && json_set_str(o, "title", json_get_str(doc, "title")) &&
                 json_set_str(o, "description", json_get_str(doc, "description")) &&
                 json_object_object_add(o, "params_schema", json_object_get(doc)) == 0 &&
                 json_set_i64(o, "params_max_bytes", PARAMS_MAX_BYTES);
    if (built)
        resp_json(r, 200, o, NULL);
    else
        api_internal(r);
    json_object_put(o);
    pschema_free(schema);
}
