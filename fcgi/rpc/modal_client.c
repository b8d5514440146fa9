/* modal_client: Modal credentials, auth tokens, control-plane and router calls. */
#include "rpc/modal_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "modal_client.pb-c.h"
#include "parse/jwt.h"
#include "parse/modaltoml.h"
#include "rpc/modal_retry.h"
#include "task_command_router.pb-c.h"
#include "util/clock.h"
#include "util/id.h"

#define CP_PREFIX      "/modal.client.ModalClient/"
#define ROUTER_PREFIX  "/modal.task_command_router.TaskCommandRouter/"
#define AUTH_TIMEOUT   5000      /* ms per AuthTokenGet attempt */
#define CP_ATTEMPT_MS  60000     /* default per-attempt deadline of control-plane calls */
#define JWT_DEFAULT_S  (20 * 60) /* lifetime assumed when exp is unreadable */
#define ARGV_MAX_BYTES 65536     /* docs/modal.md#limits-and-constants */

struct modal_client {
    struct modal_settings s;
    struct grpc_client *cp;
    char *token;              /* auth JWT, heap */
    int64_t token_exp_ms;     /* CLOCK_MONOTONIC ms when it expires */
    int64_t token_refresh_ms; /* ... when to refresh it */
    char builder[64];         /* cached builder version */
    struct grpc_client *router;
    char task_id[MODAL_ID_MAX];
    char sandbox_id[MODAL_ID_MAX]; /* of task_id; its shape picks the router access RPC */
    char *router_url;
    char *router_jwt;
    int64_t router_exp_ms;
    char meta_token_id[300], meta_token_secret[300], meta_auth[4200], meta_bearer[4200];
};

/* protobuf-c wants char * for strings it never modifies when packing. */
static char *
mut(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {s};
    return u.m;
}

/* ------------------------------------------------------------------ settings */

/* Copy src (NULL = "") into dst of cap bytes. false when it does not fit: dst is then "", never
 * a shortened value. */
static bool
copy(char *dst, size_t cap, const char *src)
{
    int k = snprintf(dst, cap, "%s", src ? src : "");
    if (k >= 0 && (size_t)k < cap)
        return true;
    dst[0] = '\0';
    return false;
}

/* copy for the setting named what: RC_BADREQ with err when src does not fit. */
static enum rc
setting(char *dst, size_t cap, const char *src, const char *what, char *err, size_t errlen)
{
    if (copy(dst, cap, src))
        return RC_OK;
    (void)snprintf(err, errlen, "%s is longer than %zu bytes", what, cap - 1);
    return RC_BADREQ;
}

static const char *
env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The instance tag and the .modal.toml to read: cfg->modal_config, $MODAL_CONFIG_PATH, or
 * $HOME/.modal.toml ("" when none of them is set). */
static enum rc
settings_paths(const struct config *cfg, struct modal_settings *out, char *err, size_t errlen)
{
    enum rc rc = setting(
        out->instance, sizeof(out->instance),
        cfg != NULL && cfg->instance != NULL && cfg->instance[0] != '\0' ? cfg->instance : "1",
        "instance", err, errlen);
    if (rc != RC_OK)
        return rc;
    if (cfg != NULL && cfg->modal_config != NULL && cfg->modal_config[0] != '\0')
        return setting(out->config_path, sizeof(out->config_path), cfg->modal_config,
                       "modal_config", err, errlen);
    if (env_nonempty("MODAL_CONFIG_PATH") != NULL)
        return setting(out->config_path, sizeof(out->config_path), getenv("MODAL_CONFIG_PATH"),
                       "MODAL_CONFIG_PATH", err, errlen);
    if (env_nonempty("HOME") != NULL) {
        int k =
            snprintf(out->config_path, sizeof(out->config_path), "%s/.modal.toml", getenv("HOME"));
        if (k < 0 || (size_t)k >= sizeof(out->config_path)) {
            out->config_path[0] = '\0';
            (void)snprintf(err, errlen, "$HOME/.modal.toml is longer than %zu bytes",
                           sizeof(out->config_path) - 1);
            return RC_BADREQ;
        }
    }
    return RC_OK;
}

/* Read out->config_path (a missing file is fine unless a profile is wanted) and select the
 * profile want (NULL = the active one) into *prof. */
static enum rc
settings_file(struct modal_settings *out, const char *want, struct modaltoml_profile *prof,
              bool *found, char *err, size_t errlen)
{
    enum rc rc = RC_OK;
    char *text = NULL;
    size_t len = 0, cap = MODALTOML_MAX_BYTES + 1;
    int fd = -1;
    char perr[200];

    if (out->config_path[0] != '\0') {
        fd = open(out->config_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
            (void)snprintf(err, errlen, "cannot read %s: %s", out->config_path, strerror(errno));
            return RC_BADREQ;
        }
    }
    if (fd < 0) {
        if (want == NULL)
            return RC_OK;
        (void)snprintf(err, errlen, "profile '%.100s' requested but %s does not exist", want,
                       out->config_path);
        return RC_BADREQ;
    }
    text = malloc(cap);
    if (text == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)snprintf(err, errlen, "cannot read %s: %s", out->config_path, strerror(errno));
            rc = RC_BADREQ;
            goto out;
        }
        len += (size_t)n;
        if (n == 0 || len == cap)
            break;
    }
    rc = modaltoml_select(text, len, want, prof, found, perr, sizeof(perr));
    if (rc != RC_OK) {
        (void)snprintf(err, errlen, "%s: %s", out->config_path, perr);
        rc = RC_BADREQ;
    }
out:
    if (text != NULL)
        explicit_bzero(text, len);
    free(text);
    (void)close(fd);
    return rc;
}

/* The environment beats the profile, which beats the defaults. */
static enum rc
settings_values(struct modal_settings *out, const struct modaltoml_profile *prof, char *err,
                size_t errlen)
{
    const char *v;
    enum rc rc = setting(out->token_id, sizeof(out->token_id),
                         (v = env_nonempty("MODAL_TOKEN_ID")) ? v : prof->token_id,
                         "MODAL_TOKEN_ID", err, errlen);
    if (rc == RC_OK)
        rc = setting(out->token_secret, sizeof(out->token_secret),
                     (v = env_nonempty("MODAL_TOKEN_SECRET")) ? v : prof->token_secret,
                     "MODAL_TOKEN_SECRET", err, errlen);
    if (rc == RC_OK)
        rc = setting(out->server_url, sizeof(out->server_url),
                     (v = env_nonempty("MODAL_SERVER_URL"))
                         ? v
                         : (prof->server_url[0] ? prof->server_url : MODAL_DEFAULT_SERVER_URL),
                     "MODAL_SERVER_URL", err, errlen);
    if (rc == RC_OK)
        rc = setting(out->environment, sizeof(out->environment),
                     (v = env_nonempty("MODAL_ENVIRONMENT")) ? v : prof->environment,
                     "MODAL_ENVIRONMENT", err, errlen);
    if (rc == RC_OK)
        rc = setting(
            out->image_builder_version, sizeof(out->image_builder_version),
            (v = env_nonempty("MODAL_IMAGE_BUILDER_VERSION")) ? v : prof->image_builder_version,
            "MODAL_IMAGE_BUILDER_VERSION", err, errlen);
    return rc;
}

enum rc
modal_settings_load(const struct config *cfg, struct modal_settings *out, char *err, size_t errlen)
{
    enum rc rc;
    struct modaltoml_profile prof;
    bool found = false;

    memset(out, 0, sizeof(*out));
    memset(&prof, 0, sizeof(prof));
    const char *want = NULL;
    if (cfg != NULL && cfg->modal_profile != NULL && cfg->modal_profile[0] != '\0')
        want = cfg->modal_profile;
    else
        want = env_nonempty("MODAL_PROFILE");
    rc = settings_paths(cfg, out, err, errlen);
    if (rc == RC_OK)
        rc = settings_file(out, want, &prof, &found, err, errlen);
    if (rc == RC_OK && found)
        rc = setting(out->profile, sizeof(out->profile), prof.name, "profile name", err, errlen);
    if (rc == RC_OK)
        rc = settings_values(out, &prof, err, errlen);
    if (rc != RC_OK)
        goto out;
    /* Strip one trailing slash: "https://api.modal.com/" is common in hand-written files. */
    size_t ul = strlen(out->server_url);
    if (ul > 0 && out->server_url[ul - 1] == '/')
        out->server_url[ul - 1] = '\0';
    if (out->token_id[0] == '\0' || out->token_secret[0] == '\0') {
        (void)snprintf(err, errlen,
                       "no Modal credentials: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET or create "
                       "~/.modal.toml (looked in %s%s%s)",
                       out->config_path[0] ? out->config_path : "no file",
                       found ? ", profile " : "", found ? out->profile : "");
        rc = RC_NOTFOUND;
    }
out:
    explicit_bzero(&prof, sizeof(prof));
    if (rc != RC_OK)
        explicit_bzero(out, sizeof(*out));
    return rc;
}

/* The host of url is localhost, 127.0.0.1, ::1 or 172.21.0.1: the router then speaks h2c. */
static bool
url_is_loopback(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]", "172.21.0.1", NULL};
    for (size_t i = 0; hosts[i] != NULL; i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(p, hosts[i], n) == 0 && (p[n] == '\0' || p[n] == ':' || p[n] == '/'))
            return true;
    }
    return false;
}

/* id is "sb-" and exactly 22 [0-9A-Za-z]: a V1 sandbox; anything else is V2. */
static bool
id_is_v1(const char *id)
{
    if (id == NULL || strncmp(id, "sb-", 3) != 0)
        return false;
    size_t n = 0;
    for (const char *c = id + 3; *c != '\0'; c++, n++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z')))
            return false;
    return n == 22;
}

/* ------------------------------------------------------------------ client */

struct modal_client *
modal_client_new(const struct modal_settings *s)
{
    struct modal_client *mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return NULL;
    mc->s = *s;
    mc->cp = grpc_client_new(s->server_url, 0);
    int k =
        snprintf(mc->meta_token_id, sizeof(mc->meta_token_id), "x-modal-token-id: %s", s->token_id);
    int l = snprintf(mc->meta_token_secret, sizeof(mc->meta_token_secret),
                     "x-modal-token-secret: %s", s->token_secret);
    if (mc->cp == NULL || k < 0 || (size_t)k >= sizeof(mc->meta_token_id) || l < 0 ||
        (size_t)l >= sizeof(mc->meta_token_secret)) {
        modal_client_free(mc);
        return NULL;
    }
    return mc;
}

static void
router_close(struct modal_client *mc)
{
    grpc_client_free(mc->router);
    mc->router = NULL;
    free(mc->router_url);
    mc->router_url = NULL;
    if (mc->router_jwt != NULL)
        explicit_bzero(mc->router_jwt, strlen(mc->router_jwt));
    free(mc->router_jwt);
    mc->router_jwt = NULL;
}

void
modal_client_free(struct modal_client *mc)
{
    if (mc == NULL)
        return;
    router_close(mc);
    grpc_client_free(mc->cp);
    if (mc->token != NULL)
        explicit_bzero(mc->token, strlen(mc->token));
    free(mc->token);
    explicit_bzero(mc, sizeof(*mc));
    free(mc);
}

const struct modal_settings *
modal_client_settings(const struct modal_client *mc)
{
    return &mc->s;
}

/* Metadata of a control-plane call; with_auth adds x-modal-auth-token when cached. */
static void
cp_meta(struct modal_client *mc, bool with_auth, const char *out[8])
{
    size_t n = 0;
    out[n++] = "x-modal-client-type: " MODAL_CLIENT_TYPE;
    out[n++] = "x-modal-client-version: " MODAL_CLIENT_VERSION;
    out[n++] = "x-modal-libmodal-version: " MODAL_LIBMODAL_VERSION;
    out[n++] = mc->meta_token_id;
    out[n++] = mc->meta_token_secret;
    if (with_auth && mc->token != NULL)
        out[n++] = mc->meta_auth;
    out[n] = NULL;
}

static enum rc
unpack(const ProtobufCMessageDescriptor *d, const char *p, size_t len, ProtobufCMessage **out,
       struct grpc_status *st)
{
    *out = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)p);
    if (*out == NULL) {
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "undecodable %s", d->short_name);
        return RC_BACKEND;
    }
    return RC_OK;
}

/* The path of method under prefix into out (cap bytes). */
static enum rc
rpc_path(char *out, size_t cap, const char *prefix, const char *method, struct grpc_status *st)
{
    int k = snprintf(out, cap, "%s%s", prefix, method);
    if (k > 0 && (size_t)k < cap)
        return RC_OK;
    st->code = GRPC_INVALID_ARGUMENT;
    (void)snprintf(st->message, sizeof(st->message), "method name too long");
    return RC_BACKEND;
}

static enum rc
pack(const ProtobufCMessage *req, uint8_t **out, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    *out = malloc(n ? n : 1);
    if (*out == NULL)
        return RC_NOMEM;
    *out_len = protobuf_c_message_pack(req, *out);
    return RC_OK;
}

enum rc
modal_client_auth(struct modal_client *mc, struct grpc_status *st)
{
    enum rc rc;
    const char *meta[8];
    char *resp = NULL;
    size_t resp_len = 0;
    Modal__Client__AuthTokenGetRequest req = MODAL__CLIENT__AUTH_TOKEN_GET_REQUEST__INIT;
    Modal__Client__AuthTokenGetResponse *r = NULL;
    uint8_t buf[8];
    int64_t now = clock_mono_ms();

    memset(st, 0, sizeof(*st));
    if (mc->token != NULL && now < mc->token_refresh_ms)
        return RC_OK;
    size_t len = protobuf_c_message_pack(&req.base, buf);
    cp_meta(mc, false, meta);
    struct modal_retry retry;
    rc = modal_retry_init(&retry, &MODAL_RETRY_CONTROL);
    if (rc != RC_OK)
        return rc;
    if (mc->token != NULL && now < mc->token_exp_ms)
        retry.policy.max_retries = 0; /* refreshing a still-valid token: one try */
    rc = grpc_unary(mc->cp, CP_PREFIX "AuthTokenGet", buf, len, meta, &retry.hook, AUTH_TIMEOUT, 0,
                    &resp, &resp_len, st);
    if (rc != RC_OK) {
        if (mc->token != NULL && now < mc->token_exp_ms && st->code != GRPC_UNAUTHENTICATED &&
            st->code != GRPC_PERMISSION_DENIED) {
            /* Keep the still-valid token; try again in a little while. */
            mc->token_refresh_ms = now + 5000;
            memset(st, 0, sizeof(*st));
            return RC_OK;
        }
        return rc;
    }
    r = modal__client__auth_token_get_response__unpack(NULL, resp_len, (const uint8_t *)resp);
    free(resp);
    if (r == NULL || r->token == NULL || r->token[0] == '\0') {
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "did not receive auth token");
        if (r != NULL)
            modal__client__auth_token_get_response__free_unpacked(r, NULL);
        return RC_BACKEND;
    }
    int64_t exp_s = 0, life_ms = JWT_DEFAULT_S * 1000;
    if (jwt_exp(r->token, strlen(r->token), &exp_s) == RC_OK) {
        int64_t l = (exp_s - clock_real_ms() / 1000) * 1000;
        life_ms = l > 0 ? l : 0;
    }
    if (mc->token != NULL)
        explicit_bzero(mc->token, strlen(mc->token));
    free(mc->token);
    mc->token = strdup(r->token);
    modal__client__auth_token_get_response__free_unpacked(r, NULL);
    if (mc->token == NULL)
        return RC_NOMEM;
    uint32_t rnd = 0;
    /* Jitter only: without entropy the refresh simply happens at the half-life. */
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = 0;
    mc->token_exp_ms = now + life_ms;
    mc->token_refresh_ms =
        now + life_ms / 2 + (int64_t)((double)life_ms * 0.1 * (rnd / 4294967296.0));
    int k = snprintf(mc->meta_auth, sizeof(mc->meta_auth), "x-modal-auth-token: %s", mc->token);
    if (k < 0 || (size_t)k >= sizeof(mc->meta_auth)) {
        /* Never send a shortened token: drop it. */
        explicit_bzero(mc->token, strlen(mc->token));
        free(mc->token);
        mc->token = NULL;
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "auth token too long");
        return RC_BACKEND;
    }
    return RC_OK;
}

/* One unary control-plane call of method (e.g. "SandboxCreate") with Modal's control-plane
 * retries; *out is the unpacked response (caller frees with protobuf_c_message_free_unpacked).
 * deadline_ms: CLOCK_MONOTONIC ms bounding all attempts (0 = none); attempt_ms per attempt
 * (0 = CP_ATTEMPT_MS). RC_BACKEND with st for a gRPC error or an undecodable response;
 * RC_NOMEM; RC_IO without random bytes for the idempotency key. */
static enum rc
cp_call(struct modal_client *mc, const char *method, const ProtobufCMessage *req,
        const ProtobufCMessageDescriptor *resp_desc, int64_t attempt_ms, int64_t deadline_ms,
        ProtobufCMessage **out, struct grpc_status *st)
{
    enum rc rc;
    uint8_t *body = NULL;
    size_t body_len = 0;
    char *resp = NULL;
    size_t resp_len = 0;
    const char *meta[8];
    char path[128];
    struct modal_retry retry;

    *out = NULL;
    rc = modal_client_auth(mc, st);
    if (rc == RC_OK)
        rc = rpc_path(path, sizeof(path), CP_PREFIX, method, st);
    if (rc == RC_OK)
        rc = modal_retry_init(&retry, &MODAL_RETRY_CONTROL);
    if (rc == RC_OK)
        rc = pack(req, &body, &body_len);
    if (rc != RC_OK)
        return rc;
    cp_meta(mc, true, meta);
    rc = grpc_unary(mc->cp, path, body, body_len, meta, &retry.hook,
                    attempt_ms > 0 ? attempt_ms : CP_ATTEMPT_MS, deadline_ms, &resp, &resp_len, st);
    free(body);
    if (rc == RC_OK)
        rc = unpack(resp_desc, resp, resp_len, out, st);
    free(resp);
    return rc;
}

/* ------------------------------------------------------------------ control plane */

static enum rc
bad_reply(struct grpc_status *st, const char *what)
{
    st->code = GRPC_INTERNAL;
    (void)snprintf(st->message, sizeof(st->message), "reply without %s", what);
    return RC_BACKEND;
}

/* Copy the id field what of a reply into out: RC_BACKEND with st when it is missing or longer
 * than MODAL_ID_MAX - 1 bytes (out is then ""). */
static enum rc
take_id(char out[MODAL_ID_MAX], const char *id, const char *what, struct grpc_status *st)
{
    if (id == NULL || id[0] == '\0') {
        out[0] = '\0';
        return bad_reply(st, what);
    }
    if (copy(out, MODAL_ID_MAX, id))
        return RC_OK;
    st->code = GRPC_INTERNAL;
    (void)snprintf(st->message, sizeof(st->message), "reply with a %s over %d bytes", what,
                   MODAL_ID_MAX - 1);
    return RC_BACKEND;
}

enum rc
modal_app_get_or_create(struct modal_client *mc, const char *name, char out_app_id[MODAL_ID_MAX],
                        struct grpc_status *st)
{
    Modal__Client__AppGetOrCreateRequest req = MODAL__CLIENT__APP_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__AppGetOrCreateResponse *r = NULL;
    req.app_name = mut(name);
    req.environment_name = mc->s.environment;
    req.object_creation_type =
        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
    enum rc rc = cp_call(mc, "AppGetOrCreate", &req.base,
                         &modal__client__app_get_or_create_response__descriptor, 0, 0,
                         (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_app_id, r->app_id, "app_id", st);
    modal__client__app_get_or_create_response__free_unpacked(r, NULL);
    return rc;
}

/* The configured image builder version, else the environment's (EnvironmentGetOrCreate,
 * cached): *out borrowed for mc's life. */
static enum rc
builder_version(struct modal_client *mc, const char **out, struct grpc_status *st)
{
    *out = mc->s.image_builder_version[0] != '\0' ? mc->s.image_builder_version : mc->builder;
    if (**out != '\0')
        return RC_OK;
    Modal__Client__EnvironmentGetOrCreateRequest req =
        MODAL__CLIENT__ENVIRONMENT_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__EnvironmentGetOrCreateResponse *r = NULL;
    req.deployment_name = mc->s.environment;
    enum rc rc = cp_call(mc, "EnvironmentGetOrCreate", &req.base,
                         &modal__client__environment_get_or_create_response__descriptor, 0, 0,
                         (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    if (r->metadata != NULL && r->metadata->settings != NULL &&
        !copy(mc->builder, sizeof(mc->builder), r->metadata->settings->image_builder_version)) {
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message),
                       "reply with an image builder version over %zu bytes",
                       sizeof(mc->builder) - 1);
        rc = RC_BACKEND;
    }
    modal__client__environment_get_or_create_response__free_unpacked(r, NULL);
    return rc;
}

const char *
modal_generic_status_name(int status)
{
    static const char *const names[] = {
        "UNSPECIFIED",             /* 0 */
        "SUCCESS",                 /* 1 */
        "FAILURE",                 /* 2 */
        "TERMINATED",              /* 3 */
        "TIMEOUT",                 /* 4 */
        "INIT_FAILURE",            /* 5 */
        "INTERNAL_FAILURE",        /* 6 */
        "IDLE_TIMEOUT",            /* 7 */
        "MEMORY_MANAGER_EVICTION", /* 8 */
    };
    return status >= 0 && status < (int)(sizeof(names) / sizeof(names[0])) ? names[status]
                                                                           : "UNKNOWN";
}

static void
flatten(const Modal__Client__GenericResult *g, struct modal_result *out)
{
    out->status = (int)g->status;
    out->exitcode = g->exitcode;
    /* A message for people: a shortened one is still the message. */
    (void)snprintf(out->exception, sizeof(out->exception), "%s", g->exception ? g->exception : "");
}

static enum rc
build_failed(struct grpc_status *st, const Modal__Client__GenericResult *g)
{
    st->code = GRPC_FAILED_PRECONDITION;
    (void)snprintf(st->message, sizeof(st->message), "image build failed (%s)%s%.400s",
                   modal_generic_status_name((int)g->status),
                   g->exception && g->exception[0] ? ": " : "", g->exception ? g->exception : "");
    return RC_BACKEND;
}

/* State of one ImageJoinStreaming stream. */
struct join_state {
    char entry_id[128];
    bool finished;
    struct modal_result res;
};

static enum rc
on_join(void *ctx, const char *p, size_t len)
{
    struct join_state *js = ctx;
    Modal__Client__ImageJoinStreamingResponse *r =
        modal__client__image_join_streaming_response__unpack(NULL, len, (const uint8_t *)p);
    if (r == NULL)
        return RC_BADREQ;
    if (r->entry_id != NULL && r->entry_id[0] != '\0' &&
        !copy(js->entry_id, sizeof(js->entry_id), r->entry_id)) {
        modal__client__image_join_streaming_response__free_unpacked(r, NULL);
        return RC_TOOBIG; /* resuming from a shortened entry id would skip or repeat */
    }
    if (r->result != NULL && r->result->status != 0 && !js->finished) {
        js->finished = true;
        flatten(r->result, &js->res);
    }
    modal__client__image_join_streaming_response__free_unpacked(r, NULL);
    return RC_OK;
}

/* ImageJoinStreaming for image_id, reopened until a result arrives (at most 3 retryable
 * failures) or deadline_ms (0 = 120 s per attempt, no overall limit). */
static enum rc
image_join(struct modal_client *mc, char *image_id, int64_t deadline_ms, struct grpc_status *st)
{
    enum rc rc;
    struct join_state js;
    unsigned failures = 0;

    memset(&js, 0, sizeof(js));
    while (!js.finished) {
        Modal__Client__ImageJoinStreamingRequest jr =
            MODAL__CLIENT__IMAGE_JOIN_STREAMING_REQUEST__INIT;
        uint8_t *body = NULL;
        size_t body_len = 0;
        const char *meta[8];
        jr.image_id = image_id;
        jr.last_entry_id = js.entry_id;
        int64_t left = deadline_ms > 0 ? deadline_ms - clock_mono_ms() : 120000;
        if (left <= 0) {
            st->code = GRPC_DEADLINE_EXCEEDED;
            (void)snprintf(st->message, sizeof(st->message), "image build still running");
            return RC_BACKEND;
        }
        jr.timeout = left > 55000 ? 55.0f : (float)left / 1000.0f;
        rc = modal_client_auth(mc, st);
        if (rc == RC_OK)
            rc = pack(&jr.base, &body, &body_len);
        if (rc != RC_OK)
            return rc;
        cp_meta(mc, true, meta);
        struct grpc_call *call = grpc_call_start(mc->cp, CP_PREFIX "ImageJoinStreaming", body,
                                                 body_len, meta, left + 5000, on_join, &js);
        free(body);
        if (call == NULL)
            return RC_NOMEM;
        while (!grpc_call_done(call) && !js.finished)
            if (grpc_client_run(mc->cp, 1000) != RC_OK)
                break;
        *st = *grpc_call_status(call);
        bool done = grpc_call_done(call);
        grpc_call_free(call);
        if (js.finished)
            break;
        if (done && st->code != GRPC_OK && (!modal_retry_is_retryable(st->code) || ++failures > 3))
            return RC_BACKEND;
    }
    memset(st, 0, sizeof(*st));
    if (js.res.status != MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS) {
        Modal__Client__GenericResult g = MODAL__CLIENT__GENERIC_RESULT__INIT;
        g.status = (Modal__Client__GenericResult__GenericStatus)js.res.status;
        g.exception = js.res.exception;
        return build_failed(st, &g);
    }
    return RC_OK;
}

enum rc
modal_image_build(struct modal_client *mc, const char *app_id, const char *tag, int64_t deadline_ms,
                  char out_image_id[MODAL_ID_MAX], struct grpc_status *st)
{
    enum rc rc;
    const char *builder = NULL;
    char from[600];
    Modal__Client__ImageGetOrCreateRequest req = MODAL__CLIENT__IMAGE_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__Image img = MODAL__CLIENT__IMAGE__INIT;
    Modal__Client__ImageGetOrCreateResponse *r = NULL;
    char *cmds[1];

    out_image_id[0] = '\0';
    int k = snprintf(from, sizeof(from), "FROM %s", tag);
    if (k < 0 || (size_t)k >= sizeof(from)) {
        st->code = GRPC_INVALID_ARGUMENT;
        (void)snprintf(st->message, sizeof(st->message), "image tag longer than %zu bytes",
                       sizeof(from) - 6);
        return RC_BACKEND;
    }
    rc = builder_version(mc, &builder, st);
    if (rc != RC_OK)
        return rc;
    cmds[0] = from;
    img.n_dockerfile_commands = 1;
    img.dockerfile_commands = cmds;
    req.image = &img;
    req.app_id = mut(app_id);
    req.builder_version = mut(builder);
    rc = cp_call(mc, "ImageGetOrCreate", &req.base,
                 &modal__client__image_get_or_create_response__descriptor, 0, deadline_ms,
                 (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_image_id, r->image_id, "image_id", st);
    if (rc == RC_OK && r->result != NULL && r->result->status != 0) {
        if (r->result->status !=
            MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS)
            rc = build_failed(st, r->result);
    } else if (rc == RC_OK) {
        rc = image_join(mc, out_image_id, deadline_ms, st);
    }
    modal__client__image_get_or_create_response__free_unpacked(r, NULL);
    return rc;
}

/* The request parts shared by SandboxCreate and SandboxCreateV2 (tags point into it). */
struct create_parts {
    Modal__Client__Sandbox def;
    Modal__Client__Resources res;
    Modal__Client__NetworkAccess net;
    Modal__Client__SandboxTag t_lb, t_job, t_owner;
    Modal__Client__SandboxTag *tags[3];
    size_t n_tags;
};

static void
create_parts_init(struct modal_client *mc, const struct modal_sandbox_spec *spec,
                  struct create_parts *cp)
{
    Modal__Client__Sandbox def = MODAL__CLIENT__SANDBOX__INIT;
    Modal__Client__Resources res = MODAL__CLIENT__RESOURCES__INIT;
    Modal__Client__NetworkAccess net = MODAL__CLIENT__NETWORK_ACCESS__INIT;
    Modal__Client__SandboxTag tag = MODAL__CLIENT__SANDBOX_TAG__INIT;
    cp->def = def;
    cp->res = res;
    cp->net = net;
    cp->t_lb = tag;
    cp->t_job = tag;
    cp->t_owner = tag;
    cp->res.memory_mb = spec->memory_mb;
    cp->res.milli_cpu = spec->milli_cpu;
    cp->net.network_access_type = spec->block_network
                                      ? MODAL__CLIENT__NETWORK_ACCESS__NETWORK_ACCESS_TYPE__BLOCKED
                                      : MODAL__CLIENT__NETWORK_ACCESS__NETWORK_ACCESS_TYPE__OPEN;
    cp->def.image_id = mut(spec->image_id);
    cp->def.resources = &cp->res;
    cp->def.timeout_secs = spec->timeout_secs;
    cp->def.network_access = &cp->net;
    cp->t_lb.tag_name = mut("labbox");
    cp->t_lb.tag_value = mut(mc->s.instance[0] ? mc->s.instance : "1");
    cp->t_job.tag_name = mut("job");
    cp->t_job.tag_value = mut(spec->job_id ? spec->job_id : "");
    cp->t_owner.tag_name = mut("owner");
    cp->t_owner.tag_value = mut(spec->owner ? spec->owner : "");
    cp->tags[0] = &cp->t_lb;
    cp->n_tags = 1;
    if (spec->job_id != NULL)
        cp->tags[cp->n_tags++] = &cp->t_job;
    if (spec->owner != NULL)
        cp->tags[cp->n_tags++] = &cp->t_owner;
}

static enum rc router_install(struct modal_client *mc, const char *url, const char *jwt,
                              struct grpc_status *st);

/* SandboxCreateV2: the reply usually carries the task id and router access
 * (docs/modal.md#sandbox-families). */
static enum rc
sandbox_create_v2(struct modal_client *mc, const struct modal_sandbox_spec *spec,
                  char out_sandbox_id[MODAL_ID_MAX], char out_task_id[MODAL_ID_MAX],
                  struct grpc_status *st)
{
    struct create_parts cp;
    Modal__Client__SandboxCreateV2Request req = MODAL__CLIENT__SANDBOX_CREATE_V2_REQUEST__INIT;
    Modal__Client__SandboxCreateV2Response *r = NULL;

    create_parts_init(mc, spec, &cp);
    req.app_id = mut(spec->app_id);
    req.definition = &cp.def;
    req.n_tags = cp.n_tags;
    req.tags = cp.tags;
    enum rc rc = cp_call(mc, "SandboxCreateV2", &req.base,
                         &modal__client__sandbox_create_v2_response__descriptor, 0, 0,
                         (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_sandbox_id, r->sandbox_id, "sandbox_id", st);
    if (rc != RC_OK)
        goto out;
    const Modal__Client__CommandRouterAccess *a = r->command_router_access;
    if (r->task_id == NULL || r->task_id[0] == '\0' || a == NULL || a->url == NULL ||
        a->url[0] == '\0' || a->jwt == NULL || a->jwt[0] == '\0')
        goto out; /* the caller asks for the task and the access */
    if (strcmp(mc->task_id, r->task_id) != 0)
        router_close(mc);
    rc = take_id(mc->task_id, r->task_id, "task_id", st);
    if (rc == RC_OK)
        rc = take_id(mc->sandbox_id, r->sandbox_id, "sandbox_id", st);
    if (rc == RC_OK)
        rc = router_install(mc, a->url, a->jwt, st);
    if (rc == RC_OK)
        rc = take_id(out_task_id, r->task_id, "task_id", st);
out:
    modal__client__sandbox_create_v2_response__free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_sandbox_create(struct modal_client *mc, const struct modal_sandbox_spec *spec,
                     char out_sandbox_id[MODAL_ID_MAX], char out_task_id[MODAL_ID_MAX],
                     struct grpc_status *st)
{
    struct create_parts cp;
    Modal__Client__SandboxCreateRequest req = MODAL__CLIENT__SANDBOX_CREATE_REQUEST__INIT;
    Modal__Client__SandboxCreateResponse *r = NULL;

    out_sandbox_id[0] = '\0';
    out_task_id[0] = '\0';
    if (spec->version == 2)
        return sandbox_create_v2(mc, spec, out_sandbox_id, out_task_id, st);
    create_parts_init(mc, spec, &cp);
    req.app_id = mut(spec->app_id);
    req.definition = &cp.def;
    req.n_tags = cp.n_tags;
    req.tags = cp.tags;
    enum rc rc =
        cp_call(mc, "SandboxCreate", &req.base, &modal__client__sandbox_create_response__descriptor,
                0, 0, (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_sandbox_id, r->sandbox_id, "sandbox_id", st);
    modal__client__sandbox_create_response__free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_sandbox_task_id(struct modal_client *mc, const char *sandbox_id, int64_t deadline_ms,
                      char out_task_id[MODAL_ID_MAX], struct modal_result *out_res,
                      struct grpc_status *st)
{
    for (;;) {
        Modal__Client__SandboxGetTaskIdRequest req =
            MODAL__CLIENT__SANDBOX_GET_TASK_ID_REQUEST__INIT;
        Modal__Client__SandboxGetTaskIdResponse *r = NULL;
        req.sandbox_id = mut(sandbox_id);
        enum rc rc = cp_call(mc, id_is_v1(sandbox_id) ? "SandboxGetTaskId" : "SandboxGetTaskIdV2",
                             &req.base, &modal__client__sandbox_get_task_id_response__descriptor,
                             10000, deadline_ms, (ProtobufCMessage **)&r, st);
        if (rc != RC_OK)
            return rc;
        if (r->task_result != NULL) {
            flatten(r->task_result, out_res);
            modal__client__sandbox_get_task_id_response__free_unpacked(r, NULL);
            return RC_CONFLICT;
        }
        if (r->task_id != NULL && r->task_id[0] != '\0') {
            rc = take_id(out_task_id, r->task_id, "task_id", st);
            modal__client__sandbox_get_task_id_response__free_unpacked(r, NULL);
            return rc;
        }
        modal__client__sandbox_get_task_id_response__free_unpacked(r, NULL);
        if (deadline_ms > 0 && clock_mono_ms() + 500 >= deadline_ms)
            return RC_TIMEOUT;
        (void)usleep(500 * 1000);
    }
}

enum rc
modal_sandbox_wait(struct modal_client *mc, const char *sandbox_id, float timeout_s, bool *out_done,
                   struct modal_result *out_res, struct grpc_status *st)
{
    Modal__Client__SandboxWaitRequest req = MODAL__CLIENT__SANDBOX_WAIT_REQUEST__INIT;
    Modal__Client__SandboxWaitResponse *r = NULL;
    req.sandbox_id = mut(sandbox_id);
    req.timeout = timeout_s;
    *out_done = false;
    enum rc rc = cp_call(mc, id_is_v1(sandbox_id) ? "SandboxWait" : "SandboxWaitV2", &req.base,
                         &modal__client__sandbox_wait_response__descriptor,
                         (int64_t)(timeout_s * 1000.0f) + 10000, 0, (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    if (r->result != NULL) {
        *out_done = true;
        flatten(r->result, out_res);
    }
    modal__client__sandbox_wait_response__free_unpacked(r, NULL);
    return RC_OK;
}

enum rc
modal_sandbox_terminate(struct modal_client *mc, const char *sandbox_id, struct grpc_status *st)
{
    Modal__Client__SandboxTerminateRequest req = MODAL__CLIENT__SANDBOX_TERMINATE_REQUEST__INIT;
    ProtobufCMessage *r = NULL;
    req.sandbox_id = mut(sandbox_id);
    enum rc rc =
        cp_call(mc, id_is_v1(sandbox_id) ? "SandboxTerminate" : "SandboxTerminateV2", &req.base,
                &modal__client__sandbox_terminate_response__descriptor, 15000, 0, &r, st);
    if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_sandbox_list(struct modal_client *mc, int version, const char *app_id, const char *job_id,
                   modal_list_fn *fn, void *ctx, struct grpc_status *st)
{
    bool v2 = version == 2;
    enum rc rc = RC_OK;
    double before = 0;
    Modal__Client__SandboxTag t_job = MODAL__CLIENT__SANDBOX_TAG__INIT;
    Modal__Client__SandboxTag t_lb = MODAL__CLIENT__SANDBOX_TAG__INIT;
    Modal__Client__SandboxTag *tags[2] = {&t_lb, &t_job};
    t_lb.tag_name = mut("labbox");
    t_lb.tag_value = mut(mc->s.instance[0] ? mc->s.instance : "1");
    t_job.tag_name = mut("job");
    t_job.tag_value = mut(job_id ? job_id : "");
    for (unsigned page = 0; page < 1000; page++) {
        Modal__Client__SandboxListRequest req = MODAL__CLIENT__SANDBOX_LIST_REQUEST__INIT;
        Modal__Client__SandboxListResponse *r = NULL;
        req.app_id = mut(app_id);
        req.before_timestamp = before;
        req.environment_name = mc->s.environment;
        req.include_finished = false;
        req.n_tags = job_id ? 2 : 1;
        req.tags = tags;
        rc = cp_call(mc, v2 ? "SandboxListV2" : "SandboxList", &req.base,
                     &modal__client__sandbox_list_response__descriptor, 0, 0,
                     (ProtobufCMessage **)&r, st);
        if (rc != RC_OK)
            return rc;
        size_t n = r->n_sandboxes;
        for (size_t i = 0; i < n && rc == RC_OK; i++) {
            const Modal__Client__SandboxInfo *si = r->sandboxes[i];
            const char *job = NULL;
            for (size_t k = 0; k < si->n_tags; k++)
                if (si->tags[k]->tag_name != NULL && strcmp(si->tags[k]->tag_name, "job") == 0)
                    job = si->tags[k]->tag_value;
            /* SandboxListV2 may report V1 sandboxes too: those belong to the V1 listing. */
            if (si->id != NULL && si->id[0] != '\0' && !(v2 && id_is_v1(si->id)))
                rc = fn(ctx, si->id, job);
            before = si->created_at;
        }
        modal__client__sandbox_list_response__free_unpacked(r, NULL);
        if (rc != RC_OK || n == 0 || before <= 0)
            return rc;
    }
    return rc;
}

/* ------------------------------------------------------------------ router */

/* Use router access (url, jwt) for mc->task_id: (re)connect when the URL changed, swap the JWT. */
static enum rc
router_install(struct modal_client *mc, const char *url, const char *jwt, struct grpc_status *st)
{
    if (mc->router == NULL || mc->router_url == NULL || strcmp(mc->router_url, url) != 0) {
        router_close(mc);
        unsigned flags = url_is_loopback(mc->s.server_url) ? GRPC_CLIENT_H2C : 0;
        mc->router = grpc_client_new(url, flags);
        mc->router_url = strdup(url);
        if (mc->router == NULL || mc->router_url == NULL) {
            st->code = GRPC_INVALID_ARGUMENT;
            (void)snprintf(st->message, sizeof(st->message), "unusable router URL");
            router_close(mc);
            return RC_BACKEND;
        }
    }
    if (mc->router_jwt != NULL)
        explicit_bzero(mc->router_jwt, strlen(mc->router_jwt));
    free(mc->router_jwt);
    mc->router_jwt = strdup(jwt);
    if (mc->router_jwt == NULL)
        return RC_NOMEM;
    int64_t exp_s = 0;
    mc->router_exp_ms = jwt_exp(jwt, strlen(jwt), &exp_s) == RC_OK
                            ? clock_mono_ms() + (exp_s - clock_real_ms() / 1000) * 1000
                            : clock_mono_ms() + JWT_DEFAULT_S * 1000;
    int k = snprintf(mc->meta_bearer, sizeof(mc->meta_bearer), "authorization: Bearer %s",
                     mc->router_jwt);
    if (k < 0 || (size_t)k >= sizeof(mc->meta_bearer))
        return bad_reply(st, "a usable router jwt");
    return RC_OK;
}

/* V2 router access: SandboxGetCommandRouterAccess by sandbox id (docs/modal.md#router-access). */
static enum rc
router_access_v2(struct modal_client *mc, struct grpc_status *st)
{
    Modal__Client__SandboxGetCommandRouterAccessRequest req =
        MODAL__CLIENT__SANDBOX_GET_COMMAND_ROUTER_ACCESS_REQUEST__INIT;
    Modal__Client__SandboxGetCommandRouterAccessResponse *r = NULL;
    req.target_case = MODAL__CLIENT__SANDBOX_GET_COMMAND_ROUTER_ACCESS_REQUEST__TARGET_SANDBOX_ID;
    req.sandbox_id = mc->sandbox_id;
    enum rc rc = cp_call(mc, "SandboxGetCommandRouterAccess", &req.base,
                         &modal__client__sandbox_get_command_router_access_response__descriptor,
                         15000, 0, (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    if (r->url == NULL || r->url[0] == '\0' || r->jwt == NULL || r->jwt[0] == '\0')
        rc = bad_reply(st, "router url or jwt");
    else
        rc = router_install(mc, r->url, r->jwt, st);
    modal__client__sandbox_get_command_router_access_response__free_unpacked(r, NULL);
    return rc;
}

/* Fetch router access for mc->task_id by the RPC of its sandbox's family. */
static enum rc
router_access(struct modal_client *mc, struct grpc_status *st)
{
    if (mc->sandbox_id[0] != '\0' && !id_is_v1(mc->sandbox_id))
        return router_access_v2(mc, st);
    Modal__Client__TaskGetCommandRouterAccessRequest req =
        MODAL__CLIENT__TASK_GET_COMMAND_ROUTER_ACCESS_REQUEST__INIT;
    Modal__Client__TaskGetCommandRouterAccessResponse *r = NULL;
    req.task_id = mc->task_id;
    enum rc rc = cp_call(mc, "TaskGetCommandRouterAccess", &req.base,
                         &modal__client__task_get_command_router_access_response__descriptor, 15000,
                         0, (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    if (r->url == NULL || r->url[0] == '\0' || r->jwt == NULL || r->jwt[0] == '\0')
        rc = bad_reply(st, "router url or jwt");
    else
        rc = router_install(mc, r->url, r->jwt, st);
    modal__client__task_get_command_router_access_response__free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_router_open(struct modal_client *mc, const char *sandbox_id, const char *task_id,
                  struct grpc_status *st)
{
    if (strcmp(mc->task_id, task_id) != 0)
        router_close(mc);
    if (!copy(mc->task_id, sizeof(mc->task_id), task_id) ||
        !copy(mc->sandbox_id, sizeof(mc->sandbox_id), sandbox_id)) {
        router_close(mc);
        st->code = GRPC_INVALID_ARGUMENT;
        (void)snprintf(st->message, sizeof(st->message), "task or sandbox id over %d bytes",
                       MODAL_ID_MAX - 1);
        return RC_BACKEND;
    }
    return router_access(mc, st);
}

enum rc
modal_router_refresh(struct modal_client *mc, struct grpc_status *st)
{
    /* docs/modal.md#router-access: skip when the current JWT still has more than 30 s left. */
    if (mc->router_jwt != NULL && mc->router_exp_ms - clock_mono_ms() > 30000) {
        memset(st, 0, sizeof(*st));
        return RC_OK;
    }
    return router_access(mc, st);
}

struct grpc_client *
modal_router_client(struct modal_client *mc)
{
    return mc->router;
}

/* A unary router call with Modal's router retries and one JWT refresh on UNAUTHENTICATED;
 * like cp_call otherwise. */
static enum rc
router_call(struct modal_client *mc, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, int64_t attempt_ms, int64_t deadline_ms,
            ProtobufCMessage **out, struct grpc_status *st)
{
    enum rc rc;
    uint8_t *body = NULL;
    size_t body_len = 0;
    char *resp = NULL;
    size_t resp_len = 0;
    char path[128];

    *out = NULL;
    if (mc->router == NULL) {
        st->code = GRPC_FAILED_PRECONDITION;
        (void)snprintf(st->message, sizeof(st->message), "no router connection");
        return RC_BACKEND;
    }
    rc = rpc_path(path, sizeof(path), ROUTER_PREFIX, method, st);
    if (rc == RC_OK)
        rc = pack(req, &body, &body_len);
    if (rc != RC_OK)
        return rc;
    for (int round = 0; round < 2; round++) {
        const char *meta[2] = {mc->meta_bearer, NULL};
        struct modal_retry retry;
        rc = modal_retry_init(&retry, &MODAL_RETRY_ROUTER);
        if (rc != RC_OK)
            break;
        rc = grpc_unary(mc->router, path, body, body_len, meta, &retry.hook, attempt_ms,
                        deadline_ms, &resp, &resp_len, st);
        if (rc == RC_OK || st->code != GRPC_UNAUTHENTICATED || round == 1)
            break;
        /* The router rejected its JWT: fetch access again and retry once. */
        mc->router_exp_ms = 0;
        struct grpc_status st2;
        if (router_access(mc, &st2) != RC_OK)
            break;
    }
    free(body);
    if (rc == RC_OK)
        rc = unpack(resp_desc, resp, resp_len, out, st);
    free(resp);
    return rc;
}

/* An asynchronous router call (streaming or unary), for the caller to drive with
 * grpc_client_run(modal_router_client(mc), ...). NULL on OOM or without a router. */
static struct grpc_call *
router_start(struct modal_client *mc, const char *method, const ProtobufCMessage *req,
             int64_t timeout_ms, grpc_msg_fn *on_msg, void *ctx)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    char path[128];
    struct grpc_status st;
    if (mc->router == NULL || rpc_path(path, sizeof(path), ROUTER_PREFIX, method, &st) != RC_OK ||
        pack(req, &body, &body_len) != RC_OK)
        return NULL;
    const char *meta[2] = {mc->meta_bearer, NULL};
    struct grpc_call *call =
        grpc_call_start(mc->router, path, body, body_len, meta, timeout_ms, on_msg, ctx);
    free(body);
    return call;
}

static bool
env_name_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

enum rc
modal_exec_start(struct modal_client *mc, const struct modal_exec_spec *spec,
                 struct grpc_status *st)
{
    enum rc rc = RC_OK;
    Modal__TaskCommandRouter__TaskExecStartRequest req =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_START_REQUEST__INIT;
    Modal__TaskCommandRouter__TaskExecStartRequest__EnvEntry *entries = NULL;
    Modal__TaskCommandRouter__TaskExecStartRequest__EnvEntry **eptr = NULL;
    char **keys = NULL;
    size_t argc = 0, argbytes = 0, envc = 0;
    ProtobufCMessage *r = NULL;

    memset(st, 0, sizeof(*st));
    while (spec->argv[argc] != NULL)
        argbytes += strlen(spec->argv[argc++]) + 1;
    if (argc == 0 || argbytes > ARGV_MAX_BYTES) {
        st->code = GRPC_INVALID_ARGUMENT;
        (void)snprintf(st->message, sizeof(st->message), "command line empty or over %d bytes",
                       ARGV_MAX_BYTES);
        return RC_BADREQ;
    }
    while (spec->envp != NULL && spec->envp[envc] != NULL)
        envc++;
    if (envc > 0) {
        entries = calloc(envc, sizeof(*entries));
        eptr = calloc(envc, sizeof(*eptr)); /* NOLINT(bugprone-sizeof-expression): pointers */
        keys = calloc(envc, sizeof(*keys));
        if (entries == NULL || eptr == NULL || keys == NULL) {
            rc = RC_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < envc; i++) {
        const char *e = spec->envp[i];
        const char *eq = strchr(e, '=');
        if (eq == NULL || !env_name_ok(e, (size_t)(eq - e))) {
            st->code = GRPC_INVALID_ARGUMENT;
            (void)snprintf(st->message, sizeof(st->message), "invalid environment entry %zu", i);
            rc = RC_BADREQ;
            goto out;
        }
        keys[i] = strndup(e, (size_t)(eq - e));
        if (keys[i] == NULL) {
            rc = RC_NOMEM;
            goto out;
        }
        Modal__TaskCommandRouter__TaskExecStartRequest__EnvEntry init =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_START_REQUEST__ENV_ENTRY__INIT;
        entries[i] = init;
        entries[i].key = keys[i];
        entries[i].value = mut(eq + 1);
        eptr[i] = &entries[i];
    }
    req.task_id = mc->task_id;
    req.exec_id = mut(spec->exec_id);
    req.n_command_args = argc;
    union {
        char *const *c;
        char **m;
    } av = {spec->argv};
    req.command_args = av.m;
    req.stdout_config =
        spec->stdout_pipe
            ? MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDOUT_CONFIG__TASK_EXEC_STDOUT_CONFIG_PIPE
            : MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDOUT_CONFIG__TASK_EXEC_STDOUT_CONFIG_DEVNULL;
    req.stderr_config =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE;
    req.timeout_secs = spec->timeout_secs;
    req.workdir = mut(spec->workdir ? spec->workdir : "");
    req.n_env = envc;
    req.env = eptr;
    rc = router_call(mc, "TaskExecStart", &req.base,
                     &modal__task_command_router__task_exec_start_response__descriptor, 30000, 0,
                     &r, st);
out:
    if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    for (size_t i = 0; keys != NULL && i < envc; i++)
        free(keys[i]);
    free(keys);
    free(eptr);
    free(entries);
    return rc;
}

enum rc
modal_exec_stdin_write(struct modal_client *mc, const char *exec_id, uint64_t offset, const void *p,
                       size_t len, bool eof, int64_t deadline_ms, struct grpc_status *st)
{
    Modal__TaskCommandRouter__TaskExecStdinWriteRequest req =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIN_WRITE_REQUEST__INIT;
    ProtobufCMessage *r = NULL;
    union {
        const void *c;
        uint8_t *m;
    } d = {p};
    req.task_id = mc->task_id;
    req.exec_id = mut(exec_id);
    req.offset = offset;
    req.data.data = d.m;
    req.data.len = len;
    req.eof = eof;
    enum rc rc =
        router_call(mc, "TaskExecStdinWrite", &req.base,
                    &modal__task_command_router__task_exec_stdin_write_response__descriptor, 60000,
                    deadline_ms, &r, st);
    if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_exec_poll(struct modal_client *mc, const char *exec_id, bool *out_done, int *out_code,
                int *out_signal, struct grpc_status *st)
{
    Modal__TaskCommandRouter__TaskExecPollRequest req =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_REQUEST__INIT;
    Modal__TaskCommandRouter__TaskExecPollResponse *r = NULL;
    req.task_id = mc->task_id;
    req.exec_id = mut(exec_id);
    *out_done = false;
    *out_code = -1;
    *out_signal = -1;
    enum rc rc = router_call(mc, "TaskExecPoll", &req.base,
                             &modal__task_command_router__task_exec_poll_response__descriptor,
                             15000, 0, (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    if (r->exit_status_case ==
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_RESPONSE__EXIT_STATUS_CODE) {
        *out_done = true;
        *out_code = r->code;
    } else if (r->exit_status_case ==
               MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_RESPONSE__EXIT_STATUS_SIGNAL) {
        *out_done = true;
        *out_signal = r->signal;
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return RC_OK;
}

bool
modal_exec_wait_decode(const char *p, size_t len, int *out_code, int *out_signal)
{
    bool ok = false;
    Modal__TaskCommandRouter__TaskExecWaitResponse *r =
        modal__task_command_router__task_exec_wait_response__unpack(NULL, len, (const uint8_t *)p);
    *out_code = -1;
    *out_signal = -1;
    if (r == NULL)
        return false;
    if (r->exit_status_case ==
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_CODE) {
        *out_code = r->code;
        ok = true;
    } else if (r->exit_status_case ==
               MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_SIGNAL) {
        *out_signal = r->signal;
        ok = true;
    }
    modal__task_command_router__task_exec_wait_response__free_unpacked(r, NULL);
    return ok;
}

enum rc
modal_exec_stdio_decode(const char *p, size_t len, char **out, size_t *out_len)
{
    Modal__TaskCommandRouter__TaskExecStdioReadResponse *r =
        modal__task_command_router__task_exec_stdio_read_response__unpack(NULL, len,
                                                                          (const uint8_t *)p);
    *out = NULL;
    *out_len = 0;
    if (r == NULL)
        return RC_BADREQ;
    size_t n = r->data.len;
    *out = malloc(n ? n : 1);
    if (*out == NULL) {
        modal__task_command_router__task_exec_stdio_read_response__free_unpacked(r, NULL);
        return RC_NOMEM;
    }
    if (n > 0)
        memcpy(*out, r->data.data, n);
    *out_len = n;
    modal__task_command_router__task_exec_stdio_read_response__free_unpacked(r, NULL);
    return RC_OK;
}

struct grpc_call *
modal_exec_wait_start(struct modal_client *mc, const char *exec_id, int64_t timeout_ms)
{
    Modal__TaskCommandRouter__TaskExecWaitRequest req =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_REQUEST__INIT;
    req.task_id = mc->task_id;
    req.exec_id = mut(exec_id);
    return router_start(mc, "TaskExecWait", &req.base, timeout_ms, NULL, NULL);
}

struct grpc_call *
modal_exec_stdio_start(struct modal_client *mc, const char *exec_id, int fd, uint64_t offset,
                       grpc_msg_fn *on_msg, void *ctx)
{
    Modal__TaskCommandRouter__TaskExecStdioReadRequest req =
        MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_READ_REQUEST__INIT;
    req.task_id = mc->task_id;
    req.exec_id = mut(exec_id);
    req.offset = offset;
    req.file_descriptor =
        fd == 1
            ? MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_FILE_DESCRIPTOR__TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDERR
            : MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_FILE_DESCRIPTOR__TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDOUT;
    return router_start(mc, "TaskExecStdioRead", &req.base, 0, on_msg, ctx);
}
