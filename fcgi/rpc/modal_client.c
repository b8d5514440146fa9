/* modal_client: Modal credentials, auth tokens, control-plane and router calls. */
#include "rpc/modal_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "modal_client.pb-c.h"
#include "parse/imagedef.h"
#include "parse/jwt.h"
#include "parse/modaltoml.h"
#include "rpc/modal_retry.h"
#include "rpc/modal_store.h"
#include "task_command_router.pb-c.h"
#include "util/clock.h"
#include "util/id.h"

#define CP_PREFIX     "/modal.client.ModalClient/"
#define ROUTER_PREFIX "/modal.task_command_router.TaskCommandRouter/"
/* Per-attempt deadlines by kind of call (docs/modal.md#deadlines), scaled by time_scale. */
#define DL_AUTH          5000    /* AuthTokenGet, as the SDKs */
#define DL_LOOKUP        15000   /* lookups: app, environment, task id, router access, list, ... */
#define DL_NONE          0       /* creates and builds: bounded only by the caller's deadline */
#define DL_UNBOUNDED     1200000 /* a DL_NONE call without any deadline still ends */
#define DL_EXEC_START    30000   /* TaskExecStart */
#define DL_STDIN         60000   /* one TaskExecStdinWrite of up to 1 MiB */
#define WAIT_NOTE_MS     30000   /* a long wait is told every this long */
#define TASK_POLL_MS     500     /* SandboxGetTaskId polling */
#define JWT_DEFAULT_S    (20 * 60) /* lifetime assumed when exp is unreadable */
#define TOKEN_MARGIN_S   300       /* a token is renewed this long before its expiry ... */
#define TOKEN_MARGIN_DIV 5         /* ... or a fifth of its lifetime before, when that is less */
#define TOKEN_RETRY_MS   5000      /* a failed renewal of a valid token is tried again after */
#define ARGV_MAX_BYTES   65536     /* docs/modal.md#limits-and-constants */
#define TIME_SCALE_ENV   "LABBOX_TEST_MODAL_TIME_SCALE"
#define WAIT_CAPACITY    "Modal has not created the sandbox yet (waiting for capacity)"
#define WAIT_SCHEDULE    "Modal has not scheduled the sandbox yet (waiting for capacity)"

struct modal_client {
    struct modal_settings s;
    struct grpc_client *cp;
    struct modal_store *store; /* shared with labbox's other processes; NULL: this one only */
    char *token;               /* auth JWT, heap */
    int64_t token_exp_ms;      /* CLOCK_MONOTONIC ms when it expires */
    int64_t token_refresh_ms;  /* ... when to renew it */
    char builder[64];          /* cached builder version */
    modal_wait_fn *waiting;    /* told about long waits */
    void *waiting_ctx;
    struct grpc_client *router;
    char task_id[MODAL_ID_MAX];
    char sandbox_id[MODAL_ID_MAX]; /* of task_id; its shape picks the router access RPC */
    char *router_url;
    char *router_jwt;
    int64_t router_exp_ms;
    char meta_token_id[300], meta_token_secret[300], meta_auth[4200], meta_bearer[4200];
    char meta_host[600];
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
    if (rc == RC_OK && cfg != NULL && cfg->data_dir != NULL)
        rc = setting(out->data_dir, sizeof(out->data_dir), cfg->data_dir, "data_dir", err, errlen);
    if (rc == RC_OK && cfg != NULL && cfg->modal_ca_file != NULL)
        rc = setting(out->ca_file, sizeof(out->ca_file), cfg->modal_ca_file, "modal_ca_file", err,
                     errlen);
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
    out->time_scale = 1.0;
    const char *scale = env_nonempty(TIME_SCALE_ENV);
    if (scale != NULL) {
        char *end = NULL;
        double f = strtod(scale, &end);
        if (end == scale || *end != '\0' || !(f > 0.0 && f <= 1.0)) {
            (void)snprintf(err, errlen, "%s: expected a number in (0, 1]", TIME_SCALE_ENV);
            rc = RC_BADREQ;
            goto out;
        }
        out->time_scale = f;
    }
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

/* The host of url (after the scheme, before the port or path; an IPv6 literal keeps its
 * brackets, as JS's URL.hostname does) into out; false when it does not fit. */
static bool
url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = p[0] == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":/?#");
    if (n > strlen(p))
        n = strlen(p);
    int k = snprintf(out, cap, "%.*s", (int)n, p);
    return k > 0 && (size_t)k < cap;
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
    char host[512];
    struct modal_client *mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return NULL;
    mc->s = *s;
    if (!(mc->s.time_scale > 0.0 && mc->s.time_scale <= 1.0))
        mc->s.time_scale = 1.0;
    mc->cp = grpc_client_new(s->server_url, 0);
    if (mc->cp != NULL) {
        grpc_client_set_keepalive(mc->cp, modal_client_scale_ms(mc, GRPC_KEEPALIVE_MS));
        if (grpc_client_set_ca(mc->cp, s->ca_file) != RC_OK) {
            modal_client_free(mc);
            return NULL;
        }
    }
    int k =
        snprintf(mc->meta_token_id, sizeof(mc->meta_token_id), "x-modal-token-id: %s", s->token_id);
    int l = snprintf(mc->meta_token_secret, sizeof(mc->meta_token_secret),
                     "x-modal-token-secret: %s", s->token_secret);
    int m = url_host(s->server_url, host, sizeof(host))
                ? snprintf(mc->meta_host, sizeof(mc->meta_host), "x-modal-host: %s", host)
                : -1;
    if (mc->cp == NULL || k < 0 || (size_t)k >= sizeof(mc->meta_token_id) || l < 0 ||
        (size_t)l >= sizeof(mc->meta_token_secret) || m < 0 || (size_t)m >= sizeof(mc->meta_host)) {
        modal_client_free(mc);
        return NULL;
    }
    /* Without the shared store (no data dir, or it cannot be made) each process keeps its own
     * token: slower, never wrong. */
    if (s->data_dir[0] != '\0' && modal_store_open(s->data_dir, s->server_url, s->token_id,
                                                   s->token_secret, &mc->store) != RC_OK)
        log_warn("Modal: %s/" MODAL_STORE_DIR " is not usable: tokens and ids are not shared",
                 s->data_dir);
    return mc;
}

int64_t
modal_client_scale_ms(const struct modal_client *mc, int64_t ms)
{
    if (ms <= 0 || mc->s.time_scale >= 1.0)
        return ms;
    int64_t v = (int64_t)((double)ms * mc->s.time_scale);
    return v > 0 ? v : 1;
}

void
modal_client_set_waiting(struct modal_client *mc, modal_wait_fn *fn, void *ctx)
{
    mc->waiting = fn;
    mc->waiting_ctx = ctx;
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
    modal_store_close(mc->store);
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

/* Metadata of a control-plane call, as the JS SDK sends it; with_auth adds
 * x-modal-auth-token when cached. */
static void
cp_meta(struct modal_client *mc, bool with_auth, const char *out[8])
{
    size_t n = 0;
    out[n++] = "x-modal-client-type: " MODAL_CLIENT_TYPE;
    out[n++] = "x-modal-client-version: " MODAL_CLIENT_VERSION;
    out[n++] = "x-modal-libmodal-version: " MODAL_LIBMODAL_VERSION;
    out[n++] = mc->meta_token_id;
    out[n++] = mc->meta_token_secret;
    out[n++] = mc->meta_host;
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

/* The point, in CLOCK_REALTIME s, from which a token expiring at exp_s (fetched at fetched_s)
 * is renewed: shortly before its expiry (docs/modal.md#auth-token). */
static int64_t
token_renew_at(int64_t exp_s, int64_t fetched_s)
{
    int64_t life = exp_s - fetched_s;
    int64_t margin =
        life / TOKEN_MARGIN_DIV < TOKEN_MARGIN_S ? life / TOKEN_MARGIN_DIV : TOKEN_MARGIN_S;
    return exp_s - (margin > 0 ? margin : 0);
}

/* Use token t from now on: x-modal-auth-token, its expiry and renewal point. */
static enum rc
token_install(struct modal_client *mc, const struct modal_store_token *t, struct grpc_status *st)
{
    int64_t now = clock_mono_ms(), now_s = clock_real_ms() / 1000;
    int k = snprintf(mc->meta_auth, sizeof(mc->meta_auth), "x-modal-auth-token: %s", t->token);
    if (k < 0 || (size_t)k >= sizeof(mc->meta_auth)) {
        /* Never send a shortened token. */
        explicit_bzero(mc->meta_auth, sizeof(mc->meta_auth));
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "auth token too long");
        return RC_BACKEND;
    }
    if (mc->token != NULL)
        explicit_bzero(mc->token, strlen(mc->token));
    free(mc->token);
    mc->token = strdup(t->token);
    if (mc->token == NULL)
        return RC_NOMEM;
    mc->token_exp_ms = now + (t->exp_s - now_s) * 1000;
    mc->token_refresh_ms = now + (token_renew_at(t->exp_s, t->fetched_s) - now_s) * 1000;
    return RC_OK;
}

/* AuthTokenGet: a new token into *out (out->token heap). With a valid token to fall back on,
 * one attempt; otherwise the control plane's retries. */
static enum rc
token_fetch(struct modal_client *mc, bool have_valid, struct modal_store_token *out,
            struct grpc_status *st)
{
    const char *meta[8];
    char *resp = NULL;
    size_t resp_len = 0;
    Modal__Client__AuthTokenGetRequest req = MODAL__CLIENT__AUTH_TOKEN_GET_REQUEST__INIT;
    uint8_t buf[8];
    struct modal_retry retry;

    memset(out, 0, sizeof(*out));
    size_t len = protobuf_c_message_pack(&req.base, buf);
    cp_meta(mc, false, meta);
    enum rc rc = modal_retry_init(&retry, &MODAL_RETRY_CONTROL);
    if (rc != RC_OK)
        return rc;
    if (have_valid)
        retry.policy.max_retries = 0;
    rc = grpc_unary(mc->cp, CP_PREFIX "AuthTokenGet", buf, len, meta, &retry.hook,
                    modal_client_scale_ms(mc, DL_AUTH), 0, &resp, &resp_len, st);
    if (rc != RC_OK)
        return rc;
    Modal__Client__AuthTokenGetResponse *r =
        modal__client__auth_token_get_response__unpack(NULL, resp_len, (const uint8_t *)resp);
    free(resp);
    if (r == NULL || r->token == NULL || r->token[0] == '\0') {
        st->code = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "did not receive auth token");
        if (r != NULL)
            modal__client__auth_token_get_response__free_unpacked(r, NULL);
        return RC_BACKEND;
    }
    out->fetched_s = clock_real_ms() / 1000;
    if (jwt_exp(r->token, strlen(r->token), &out->exp_s) != RC_OK || out->exp_s <= out->fetched_s)
        out->exp_s = out->fetched_s + JWT_DEFAULT_S;
    out->token = strdup(r->token);
    explicit_bzero(r->token, strlen(r->token));
    modal__client__auth_token_get_response__free_unpacked(r, NULL);
    if (out->token == NULL)
        return RC_NOMEM;
    log_debug("Modal: new auth token, valid for %" PRId64 " s", out->exp_s - out->fetched_s);
    return RC_OK;
}

static bool
auth_denied(const struct grpc_status *st)
{
    return st->code == GRPC_UNAUTHENTICATED || st->code == GRPC_PERMISSION_DENIED;
}

/* A token from the shared store when it is not due yet (due: may it be due?); RC_NOTFOUND. */
static enum rc
token_from_store(struct modal_client *mc, bool due_ok, struct grpc_status *st)
{
    struct modal_store_token t;
    enum rc rc = mc->store != NULL ? modal_store_token_read(mc->store, &t) : RC_NOTFOUND;
    if (rc != RC_OK)
        return rc;
    int64_t now_s = clock_real_ms() / 1000;
    if (now_s < token_renew_at(t.exp_s, t.fetched_s) || (due_ok && now_s < t.exp_s))
        rc = token_install(mc, &t, st);
    else
        rc = RC_NOTFOUND;
    modal_store_token_wipe(&t);
    return rc;
}

/* Renew the token (the store, when there is one, is locked by the caller). */
static enum rc
token_renew(struct modal_client *mc, struct grpc_status *st)
{
    struct modal_store_token t;
    int64_t now = clock_mono_ms();
    bool have_valid = mc->token != NULL && now < mc->token_exp_ms;
    enum rc rc = token_fetch(mc, have_valid, &t, st);
    if (rc == RC_OK) {
        if (mc->store != NULL && modal_store_token_write(mc->store, &t) != RC_OK)
            log_warn("Modal: the auth token could not be shared with labbox's other processes");
        rc = token_install(mc, &t, st);
        modal_store_token_wipe(&t);
        return rc;
    }
    if (rc != RC_BACKEND || auth_denied(st))
        return rc;
    /* A transient failure: keep a still-valid token, ours or the store's, and try later. */
    struct grpc_status st2;
    if (!have_valid && token_from_store(mc, true, &st2) == RC_OK)
        have_valid = true;
    if (!have_valid)
        return rc;
    mc->token_refresh_ms = now + TOKEN_RETRY_MS;
    memset(st, 0, sizeof(*st));
    return RC_OK;
}

enum rc
modal_client_auth(struct modal_client *mc, struct grpc_status *st)
{
    memset(st, 0, sizeof(*st));
    if (mc->token != NULL && clock_mono_ms() < mc->token_refresh_ms)
        return RC_OK;
    if (mc->store == NULL)
        return token_renew(mc, st);
    /* Another process may have renewed it: read first, and again under the lock, so that of
     * several processes whose token is due only one asks Modal. */
    enum rc rc = token_from_store(mc, false, st);
    if (rc != RC_NOTFOUND)
        return rc;
    if (modal_store_lock(mc->store) != RC_OK)
        return token_renew(mc, st);
    rc = token_from_store(mc, false, st);
    if (rc == RC_NOTFOUND)
        rc = token_renew(mc, st);
    modal_store_unlock(mc->store);
    return rc;
}

/* What a waiting hook of a unary call tells the client's observer. */
struct wait_note {
    struct modal_client *mc;
    const char *what;
};

static void
on_waiting(void *ctx, int64_t elapsed_ms)
{
    struct wait_note *w = ctx;
    if (w->mc->waiting != NULL)
        w->mc->waiting(w->mc->waiting_ctx, w->what, elapsed_ms);
}

/* One unary control-plane call of method (e.g. "SandboxCreate") with Modal's control-plane
 * retries; *out is the unpacked response (caller frees with protobuf_c_message_free_unpacked).
 * attempt_ms: the per-attempt deadline (DL_*, scaled here; DL_NONE = none); deadline_ms:
 * CLOCK_MONOTONIC ms bounding all attempts (0 = none; a call with neither ends after
 * DL_UNBOUNDED). waiting: what the client's observer is told every WAIT_NOTE_MS the call is
 * still waiting (NULL: nothing). RC_BACKEND with st for a gRPC error or an undecodable
 * response; RC_NOMEM; RC_IO without random bytes for the idempotency key. */
static enum rc
cp_call_ex(struct modal_client *mc, const char *method, const ProtobufCMessage *req,
           const ProtobufCMessageDescriptor *resp_desc, int64_t attempt_ms, int64_t deadline_ms,
           const char *waiting, ProtobufCMessage **out, struct grpc_status *st)
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
    attempt_ms = modal_client_scale_ms(mc, attempt_ms);
    if (attempt_ms <= 0 && deadline_ms <= 0)
        deadline_ms = clock_mono_ms() + modal_client_scale_ms(mc, DL_UNBOUNDED);
    struct wait_note note = {mc, waiting};
    if (waiting != NULL) {
        retry.hook.waiting = on_waiting;
        retry.hook.waiting_ms = modal_client_scale_ms(mc, WAIT_NOTE_MS);
        retry.hook.waiting_ctx = &note;
    }
    rc = grpc_unary(mc->cp, path, body, body_len, meta, &retry.hook, attempt_ms, deadline_ms, &resp,
                    &resp_len, st);
    free(body);
    if (rc == RC_OK)
        rc = unpack(resp_desc, resp, resp_len, out, st);
    free(resp);
    return rc;
}

static enum rc
cp_call(struct modal_client *mc, const char *method, const ProtobufCMessage *req,
        const ProtobufCMessageDescriptor *resp_desc, int64_t attempt_ms, int64_t deadline_ms,
        ProtobufCMessage **out, struct grpc_status *st)
{
    return cp_call_ex(mc, method, req, resp_desc, attempt_ms, deadline_ms, NULL, out, st);
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

/* The store's key for kind ("app", "builder", "image") and name, in this environment. */
static bool
store_key(const struct modal_client *mc, const char *kind, const char *name, char *out, size_t cap)
{
    int k = snprintf(out, cap, "%s:%s:%s", kind, mc->s.environment, name);
    return k > 0 && (size_t)k < cap;
}

/* The id the shared store has for kind/name into out (cap bytes); false when none. */
static bool
store_get(struct modal_client *mc, const char *kind, const char *name, char *out, size_t cap)
{
    char key[320];
    out[0] = '\0';
    return mc->store != NULL && store_key(mc, kind, name, key, sizeof(key)) &&
           modal_store_get(mc->store, key, out, cap) == RC_OK;
}

/* Remember (value) or forget (NULL) the id of kind/name in the shared store, if any. */
static void
store_put(struct modal_client *mc, const char *kind, const char *name, const char *value)
{
    char key[320];
    if (mc->store != NULL && store_key(mc, kind, name, key, sizeof(key)) &&
        modal_store_put(mc->store, key, value) != RC_OK)
        log_warn("Modal: the %s id could not be %s the shared store", kind,
                 value ? "saved in" : "removed from");
}

void
modal_app_forget(struct modal_client *mc, const char *name)
{
    store_put(mc, "app", name, NULL);
}

/* AppGetOrCreate(name, environment, CREATE_IF_MISSING), the store consulted first when
 * use_store; the answer is stored. */
static enum rc
app_lookup(struct modal_client *mc, const char *name, bool use_store, char out_app_id[MODAL_ID_MAX],
           struct grpc_status *st)
{
    Modal__Client__AppGetOrCreateRequest req = MODAL__CLIENT__APP_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__AppGetOrCreateResponse *r = NULL;
    memset(st, 0, sizeof(*st));
    if (use_store && store_get(mc, "app", name, out_app_id, MODAL_ID_MAX))
        return RC_OK;
    req.app_name = mut(name);
    req.environment_name = mc->s.environment;
    req.object_creation_type =
        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
    enum rc rc = cp_call(mc, "AppGetOrCreate", &req.base,
                         &modal__client__app_get_or_create_response__descriptor, DL_LOOKUP, 0,
                         (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_app_id, r->app_id, "app_id", st);
    modal__client__app_get_or_create_response__free_unpacked(r, NULL);
    if (rc == RC_OK)
        store_put(mc, "app", name, out_app_id);
    return rc;
}

enum rc
modal_app_get_or_create(struct modal_client *mc, const char *name, char out_app_id[MODAL_ID_MAX],
                        struct grpc_status *st)
{
    return app_lookup(mc, name, true, out_app_id, st);
}

enum rc
modal_client_probe(struct modal_client *mc, const char *app, struct grpc_status *st)
{
    char id[MODAL_ID_MAX];
    return app_lookup(mc, app, false, id, st);
}

/* The configured image builder version, else the environment's (EnvironmentGetOrCreate,
 * cached): *out borrowed for mc's life. */
static enum rc
builder_version(struct modal_client *mc, const char **out, struct grpc_status *st)
{
    *out = mc->s.image_builder_version[0] != '\0' ? mc->s.image_builder_version : mc->builder;
    if (**out != '\0' || store_get(mc, "builder", "", mc->builder, sizeof(mc->builder)))
        return RC_OK;
    Modal__Client__EnvironmentGetOrCreateRequest req =
        MODAL__CLIENT__ENVIRONMENT_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__EnvironmentGetOrCreateResponse *r = NULL;
    req.deployment_name = mc->s.environment;
    enum rc rc = cp_call(mc, "EnvironmentGetOrCreate", &req.base,
                         &modal__client__environment_get_or_create_response__descriptor, DL_LOOKUP,
                         0, (ProtobufCMessage **)&r, st);
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
    if (rc == RC_OK && mc->builder[0] != '\0')
        store_put(mc, "builder", "", mc->builder);
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
    bool progress; /* log entries arrived on this stream */
    struct modal_result res;
    modal_log_fn *log_fn;
    void *log_ctx;
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
    for (size_t i = 0; i < r->n_task_logs; i++) {
        const char *d = r->task_logs[i]->data;
        js->progress = true;
        if (js->log_fn != NULL && d != NULL && d[0] != '\0')
            js->log_fn(js->log_ctx, d, strlen(d));
    }
    if (r->result != NULL && r->result->status != 0 && !js->finished) {
        js->finished = true;
        flatten(r->result, &js->res);
    }
    modal__client__image_join_streaming_response__free_unpacked(r, NULL);
    return RC_OK;
}

/* One ImageJoinStreaming call for image_id from js->entry_id, until it ends, a result arrives
 * or left_ms passes; its status in *st. */
static enum rc
image_join_once(struct modal_client *mc, char *image_id, int64_t left_ms, struct join_state *js,
                struct grpc_status *st)
{
    Modal__Client__ImageJoinStreamingRequest jr = MODAL__CLIENT__IMAGE_JOIN_STREAMING_REQUEST__INIT;
    uint8_t *body = NULL;
    size_t body_len = 0;
    const char *meta[8];
    jr.image_id = image_id;
    jr.last_entry_id = js->entry_id;
    jr.timeout = left_ms > 55000 ? 55.0f : (float)left_ms / 1000.0f; /* what the SDKs ask */
    enum rc rc = modal_client_auth(mc, st);
    if (rc == RC_OK)
        rc = pack(&jr.base, &body, &body_len);
    if (rc != RC_OK)
        return rc;
    cp_meta(mc, true, meta);
    int64_t to = (left_ms > 55000 ? 55000 : left_ms) + modal_client_scale_ms(mc, 5000);
    struct grpc_call *call = grpc_call_start(mc->cp, CP_PREFIX "ImageJoinStreaming", body, body_len,
                                             meta, to, on_join, js);
    free(body);
    if (call == NULL)
        return RC_NOMEM;
    while (!grpc_call_done(call) && !js->finished)
        if (grpc_client_run(mc->cp, 1000) != RC_OK)
            break;
    *st = *grpc_call_status(call);
    if (!grpc_call_done(call) && !js->finished) {
        st->code = GRPC_UNAVAILABLE;
        (void)snprintf(st->message, sizeof(st->message), "the HTTP/2 client failed");
    }
    grpc_call_free(call);
    return RC_OK;
}

/* ImageJoinStreaming for image_id, reopened from the last entry until a result arrives or
 * deadline_ms (0 = 20 minutes); 3 retryable failures in a row without a log entry end it. */
static enum rc
image_join(struct modal_client *mc, char *image_id, int64_t deadline_ms, struct join_state *js,
           struct grpc_status *st)
{
    unsigned failures = 0;
    if (deadline_ms <= 0)
        deadline_ms = clock_mono_ms() + modal_client_scale_ms(mc, DL_UNBOUNDED);
    while (!js->finished) {
        int64_t left = deadline_ms - clock_mono_ms();
        if (left <= 0) {
            st->code = GRPC_DEADLINE_EXCEEDED;
            (void)snprintf(st->message, sizeof(st->message), "image build still running");
            return RC_BACKEND;
        }
        js->progress = false;
        enum rc rc = image_join_once(mc, image_id, left, js, st);
        if (rc != RC_OK)
            return rc;
        if (js->finished)
            break;
        if (js->progress)
            failures = 0;
        if (st->code != GRPC_OK && (!modal_retry_is_retryable(st->code) || ++failures > 3))
            return RC_BACKEND;
    }
    memset(st, 0, sizeof(*st));
    if (js->res.status != MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS) {
        Modal__Client__GenericResult g = MODAL__CLIENT__GENERIC_RESULT__INIT;
        g.status = (Modal__Client__GenericResult__GenericStatus)js->res.status;
        g.exception = js->res.exception;
        return build_failed(st, &g);
    }
    return RC_OK;
}

/* The store's name of def's image: its hash salted with the builder version. */
static enum rc
image_key(struct modal_client *mc, const struct imagedef *def, const char **out_builder,
          char hash[65], struct grpc_status *st)
{
    enum rc rc = builder_version(mc, out_builder, st);
    if (rc == RC_OK)
        imagedef_hash(def, *out_builder, hash);
    return rc;
}

void
modal_image_forget(struct modal_client *mc, const struct imagedef *def)
{
    const char *builder = NULL;
    char hash[65];
    struct grpc_status st;
    if (image_key(mc, def, &builder, hash, &st) == RC_OK)
        store_put(mc, "image", hash, NULL);
}

/* ImageGetOrCreate of def (its dockerfile commands and context files), then the build's
 * result, joined when Modal has none yet (js->res and the log). */
static enum rc
image_create(struct modal_client *mc, const char *app_id, const struct imagedef *def,
             const char *builder, int64_t deadline_ms, struct join_state *js,
             char out_image_id[MODAL_ID_MAX], struct grpc_status *st)
{
    Modal__Client__ImageGetOrCreateRequest req = MODAL__CLIENT__IMAGE_GET_OR_CREATE_REQUEST__INIT;
    Modal__Client__Image img = MODAL__CLIENT__IMAGE__INIT;
    Modal__Client__ImageContextFile cf[1];
    Modal__Client__ImageContextFile *cfp[1] = {&cf[0]};
    Modal__Client__ImageGetOrCreateResponse *r = NULL;
    img.n_dockerfile_commands = def->n_commands;
    img.dockerfile_commands = def->commands;
    for (size_t i = 0; i < def->n_files && i < 1; i++) {
        Modal__Client__ImageContextFile init = MODAL__CLIENT__IMAGE_CONTEXT_FILE__INIT;
        union {
            const char *c;
            uint8_t *m;
        } d = {def->files[i].data};
        cf[i] = init;
        cf[i].filename = mut(def->files[i].name);
        cf[i].data.data = d.m;
        cf[i].data.len = def->files[i].len;
        img.n_context_files = i + 1;
    }
    img.context_files = cfp;
    req.image = &img;
    req.app_id = mut(app_id);
    req.builder_version = mut(builder);
    enum rc rc = cp_call_ex(mc, "ImageGetOrCreate", &req.base,
                            &modal__client__image_get_or_create_response__descriptor, DL_NONE,
                            deadline_ms, "building the image", (ProtobufCMessage **)&r, st);
    if (rc != RC_OK)
        return rc;
    rc = take_id(out_image_id, r->image_id, "image_id", st);
    if (rc == RC_OK && r->result != NULL && r->result->status != 0) {
        if (r->result->status !=
            MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS)
            rc = build_failed(st, r->result);
    } else if (rc == RC_OK) {
        rc = image_join(mc, out_image_id, deadline_ms, js, st);
    }
    modal__client__image_get_or_create_response__free_unpacked(r, NULL);
    return rc;
}

enum rc
modal_image_get(struct modal_client *mc, const char *app_id, const struct imagedef *def,
                int64_t deadline_ms, modal_log_fn *log_fn, void *log_ctx,
                char out_image_id[MODAL_ID_MAX], struct grpc_status *st)
{
    const char *builder = NULL;
    char hash[65];
    struct join_state js;
    out_image_id[0] = '\0';
    memset(st, 0, sizeof(*st));
    memset(&js, 0, sizeof(js));
    js.log_fn = log_fn;
    js.log_ctx = log_ctx;
    enum rc rc = image_key(mc, def, &builder, hash, st);
    if (rc != RC_OK)
        return rc;
    if (store_get(mc, "image", hash, out_image_id, MODAL_ID_MAX))
        return RC_OK;
    rc = image_create(mc, app_id, def, builder, deadline_ms, &js, out_image_id, st);
    if (rc == RC_OK)
        store_put(mc, "image", hash, out_image_id);
    else
        out_image_id[0] = '\0';
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
    cp->res.memory_mb_max = spec->memory_mb; /* a hard limit as well, as the SDKs' memory=(r, l) */
    cp->res.milli_cpu = spec->milli_cpu;
    cp->res.milli_cpu_max = spec->milli_cpu_max; /* the SDKs' cpu=(r, l) */
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
    enum rc rc = cp_call_ex(mc, "SandboxCreateV2", &req.base,
                            &modal__client__sandbox_create_v2_response__descriptor, DL_NONE,
                            spec->deadline_ms, WAIT_CAPACITY, (ProtobufCMessage **)&r, st);
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
    enum rc rc = cp_call_ex(mc, "SandboxCreate", &req.base,
                            &modal__client__sandbox_create_response__descriptor, DL_NONE,
                            spec->deadline_ms, WAIT_CAPACITY, (ProtobufCMessage **)&r, st);
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
    int64_t t0 = clock_mono_ms(), poll = modal_client_scale_ms(mc, TASK_POLL_MS);
    int64_t note = t0 + modal_client_scale_ms(mc, WAIT_NOTE_MS);
    for (;;) {
        Modal__Client__SandboxGetTaskIdRequest req =
            MODAL__CLIENT__SANDBOX_GET_TASK_ID_REQUEST__INIT;
        Modal__Client__SandboxGetTaskIdResponse *r = NULL;
        req.sandbox_id = mut(sandbox_id);
        enum rc rc = cp_call(mc, id_is_v1(sandbox_id) ? "SandboxGetTaskId" : "SandboxGetTaskIdV2",
                             &req.base, &modal__client__sandbox_get_task_id_response__descriptor,
                             DL_LOOKUP, deadline_ms, (ProtobufCMessage **)&r, st);
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
        int64_t now = clock_mono_ms();
        if (deadline_ms > 0 && now + poll >= deadline_ms)
            return RC_TIMEOUT;
        if (now >= note && mc->waiting != NULL) {
            mc->waiting(mc->waiting_ctx, WAIT_SCHEDULE, now - t0);
            note = now + modal_client_scale_ms(mc, WAIT_NOTE_MS);
        }
        (void)usleep((useconds_t)poll * 1000);
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
    enum rc rc =
        cp_call(mc, id_is_v1(sandbox_id) ? "SandboxWait" : "SandboxWaitV2", &req.base,
                &modal__client__sandbox_wait_response__descriptor,
                (int64_t)(timeout_s * 1000.0f) + DL_LOOKUP, 0, (ProtobufCMessage **)&r, st);
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
                &modal__client__sandbox_terminate_response__descriptor, DL_LOOKUP, 0, &r, st);
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
                     &modal__client__sandbox_list_response__descriptor, DL_LOOKUP, 0,
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
        if (mc->router != NULL) {
            grpc_client_set_keepalive(mc->router, modal_client_scale_ms(mc, GRPC_KEEPALIVE_MS));
            if (grpc_client_set_ca(mc->router, mc->s.ca_file) != RC_OK) {
                router_close(mc);
                return RC_NOMEM;
            }
        }
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
                         DL_LOOKUP, 0, (ProtobufCMessage **)&r, st);
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
                         &modal__client__task_get_command_router_access_response__descriptor,
                         DL_LOOKUP, 0, (ProtobufCMessage **)&r, st);
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
        rc = grpc_unary(mc->router, path, body, body_len, meta, &retry.hook,
                        modal_client_scale_ms(mc, attempt_ms), deadline_ms, &resp, &resp_len, st);
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
                     &modal__task_command_router__task_exec_start_response__descriptor,
                     DL_EXEC_START, 0, &r, st);
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
                    &modal__task_command_router__task_exec_stdin_write_response__descriptor,
                    DL_STDIN, deadline_ms, &r, st);
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
                             DL_LOOKUP, 0, (ProtobufCMessage **)&r, st);
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
