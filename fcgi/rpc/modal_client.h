/* modal_client: Modal's control plane (modal.client.ModalClient) and task command router
 * (modal.task_command_router.TaskCommandRouter) over grpc.h, with credentials and tokens.
 *
 * Theory of operation. modal_settings_load resolves credentials like the official SDKs
 * (docs/modal.md#settings): MODAL_TOKEN_ID / MODAL_TOKEN_SECRET / MODAL_SERVER_URL /
 * MODAL_ENVIRONMENT / MODAL_IMAGE_BUILDER_VERSION beat the selected .modal.toml profile, which
 * beats the defaults. A struct modal_client holds one grpc_client for the control plane and,
 * once modal_router_open ran, one for the router of a task. Every control-plane call carries
 * the JS SDK's metadata (client type 8, client version 1.0.0, x-modal-host), the token
 * id/secret and the JWT from AuthTokenGet. That JWT, and the ids that do not change from job to
 * job (app, image builder version, built images), are shared by labbox's processes through
 * rpc/modal_store (<data_dir>/modal): one token serves every process until shortly before it
 * expires (docs/modal.md#auth-token). Each kind of call has its own deadline, like the SDKs:
 * none on creates and builds beyond the caller's, short ones on lookups
 * (docs/modal.md#deadlines). Router calls carry "authorization: Bearer <router JWT>"; an
 * UNAUTHENTICATED answer refreshes the router access once and retries
 * (docs/modal.md#router-access). Unary calls retry per docs/modal.md#retries-and-idempotency;
 * those rules (codes, backoff, server-directed retries, idempotency keys) are
 * rpc/modal_retry.h, handed to grpc_unary as its retry hook.
 *
 * Sandbox families (docs/modal.md#sandbox-families). Only creation and listing take the family as
 * an argument; every call about an existing sandbox picks its RPC from the sandbox id, as the SDKs
 * do: "sb-" and exactly 22 [0-9A-Za-z] is V1 (SandboxGetTaskId, TaskGetCommandRouterAccess,
 * SandboxWait, SandboxTerminate), any other id V2 (SandboxGetTaskIdV2,
 * SandboxGetCommandRouterAccess, SandboxWaitV2, SandboxTerminateV2). Router calls are the same for
 * both.
 *
 * Errors: functions returning enum rc fill a struct grpc_status; its message is the server's
 * grpc-message or a transport reason, never a credential.
 */
#ifndef LABBOX_MODAL_CLIENT_H
#define LABBOX_MODAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "parse/imagedef.h"
#include "rc.h"
#include "rpc/grpc.h"

#define MODAL_DEFAULT_SERVER_URL "https://api.modal.com"
#define MODAL_CLIENT_TYPE        "8"               /* CLIENT_TYPE_LIBMODAL_JS */
#define MODAL_CLIENT_VERSION     "1.0.0"           /* what JS/Go send */
#define MODAL_LIBMODAL_VERSION   "modal-js/0.11.1" /* docs/modal.md#headers: a released JS SDK */
#define MODAL_ID_MAX             128               /* bytes of any Modal object id we keep */

struct modal_settings {
    char token_id[256];
    char token_secret[256];
    char server_url[512];
    char environment[128];
    char image_builder_version[64]; /* "" = ask EnvironmentGetOrCreate */
    char profile[128];              /* profile read from the file, "" = none */
    char config_path[512];          /* the .modal.toml consulted */
    char instance[64];              /* value of the "labbox" tag: cfg->instance, or "1" */
    char data_dir[512];             /* where the shared store lives; "" = no sharing */
    char ca_file[512];              /* CAs for Modal's TLS (cfg->modal_ca_file); "" = system */
    double time_scale;              /* every fixed interval and deadline times this: 1, or
                                     * LABBOX_TEST_MODAL_TIME_SCALE in (0, 1] for tests */
};

/* modal_settings_load fills *out from the environment, the profile file and defaults. The
 * file is cfg->modal_config when non-empty, else $MODAL_CONFIG_PATH, else $HOME/.modal.toml (a
 * missing file is fine); the profile cfg->modal_profile, else $MODAL_PROFILE, else the active
 * one (cfg may be NULL). RC_NOTFOUND when no token id/secret is found anywhere; RC_BADREQ for
 * an unreadable or malformed file, an unknown requested profile or a value or path longer
 * than its field (never shortened); err gets a sentence a person understands (file path and
 * line or the setting's name, never secret values). On any error *out is all zero. */
enum rc modal_settings_load(const struct config *cfg, struct modal_settings *out, char *err,
                            size_t errlen) LB_MUST_CHECK;

struct modal_client;

/* modal_client_new copies s; NULL on OOM, an unusable server URL or an over-long token.
 * modal_client_free frees everything (calls still open are cancelled); NULL-safe. */
struct modal_client *modal_client_new(const struct modal_settings *s);
void modal_client_free(struct modal_client *mc);
/* modal_client_settings: the settings in use (borrowed for mc's life). */
const struct modal_settings *modal_client_settings(const struct modal_client *mc);
/* modal_client_scale_ms: ms times the settings' time_scale (at least 1 when ms > 0). */
int64_t modal_client_scale_ms(const struct modal_client *mc, int64_t ms);

/* Told every 30 s (scaled) that a call is still waiting for Modal: what (a sentence) and how
 * long so far. Sandbox creation and scheduling (capacity) and image builds tell it. */
typedef void modal_wait_fn(void *ctx, const char *what, int64_t elapsed_ms);
/* modal_client_set_waiting: the observer of long waits (fn NULL: none). */
void modal_client_set_waiting(struct modal_client *mc, modal_wait_fn *fn, void *ctx);

/* modal_client_auth makes sure a valid auth JWT is at hand: this client's, else the shared
 * store's, else a new one from AuthTokenGet (5 s deadline), which goes into the store. RC_BACKEND
 * with st on failure (UNAUTHENTICATED/PERMISSION_DENIED = the token was rejected). */
enum rc modal_client_auth(struct modal_client *mc, struct grpc_status *st) LB_MUST_CHECK;

/* ---- control-plane operations (docs/modal.md#rpcs-labbox-uses) ---- */

/* modal_app_get_or_create: the app id the shared store has for name, else
 * AppGetOrCreate(name, environment, CREATE_IF_MISSING), remembered in the store.
 * modal_app_forget drops the stored id (it turned out stale). */
enum rc modal_app_get_or_create(struct modal_client *mc, const char *name,
                                char out_app_id[MODAL_ID_MAX],
                                struct grpc_status *st) LB_MUST_CHECK;
void modal_app_forget(struct modal_client *mc, const char *name);
/* modal_client_probe: a real round trip for health checks: the token (from the store unless
 * due) and AppGetOrCreate(app) without the store (the answer refreshes it). */
enum rc modal_client_probe(struct modal_client *mc, const char *app,
                           struct grpc_status *st) LB_MUST_CHECK;

/* Gets each piece of a build log as Modal sends it (text, not necessarily whole lines). */
typedef void modal_log_fn(void *ctx, const char *p, size_t len);

/* modal_image_get: the image of def: the id the shared store has for the definition's hash
 * (salted with the image builder version), else ImageGetOrCreate with def's dockerfile commands
 * and context files, then ImageJoinStreaming until a result, by deadline_ms, the build's log
 * going to log_fn (may be NULL); a built image is remembered in the store. A finished but
 * failed build is RC_BACKEND with st->code = FAILED_PRECONDITION and a message "image build
 * failed (STATUS): exception". modal_image_forget drops def's stored id (it turned out stale). */
enum rc modal_image_get(struct modal_client *mc, const char *app_id, const struct imagedef *def,
                        int64_t deadline_ms, modal_log_fn *log_fn, void *log_ctx,
                        char out_image_id[MODAL_ID_MAX], struct grpc_status *st) LB_MUST_CHECK;
void modal_image_forget(struct modal_client *mc, const struct imagedef *def);

struct modal_sandbox_spec {
    const char *app_id;
    const char *image_id;
    uint32_t timeout_secs;  /* sandbox lifetime */
    uint32_t memory_mb;     /* 0 = Modal's default */
    uint32_t milli_cpu;     /* 0 = Modal's default */
    uint32_t milli_cpu_max; /* 0 = no CPU limit beyond the request */
    bool block_network;
    const char *job_id;  /* tagged job=<id>, plus labbox=<instance> */
    const char *owner;   /* tagged owner=<owner> unless NULL: whose sandbox it is */
    int version;         /* 2: SandboxCreateV2; anything else: SandboxCreate (V1) */
    int64_t deadline_ms; /* CLOCK_MONOTONIC ms: the create (with its capacity wait) ends by then */
};

/* modal_sandbox_create creates an idle sandbox (no entrypoint) -> sandbox id, waiting for
 * capacity as long as spec->deadline_ms allows (no per-attempt deadline, as in the SDKs; the
 * waiting observer hears of it every 30 s). V1
 * (SandboxCreate) leaves out_task_id "": the task comes from modal_sandbox_task_id. V2
 * (SandboxCreateV2) fills out_task_id when the reply carries the task id and router access,
 * and then has already connected the router (modal_router_client is that task's); otherwise
 * out_task_id is "" as for V1. out_sandbox_id is set whenever the sandbox was created, even
 * when an unusable router access makes the call fail (RC_BACKEND), so the caller can
 * terminate it; it is "" when nothing was created. */
enum rc modal_sandbox_create(struct modal_client *mc, const struct modal_sandbox_spec *spec,
                             char out_sandbox_id[MODAL_ID_MAX], char out_task_id[MODAL_ID_MAX],
                             struct grpc_status *st) LB_MUST_CHECK;

/* A finished sandbox's GenericResult, flattened. */
struct modal_result {
    int status; /* GenericResult.GenericStatus */
    int exitcode;
    char exception[256];
};

/* modal_generic_status_name: "SUCCESS", "TIMEOUT", ... (static). */
const char *modal_generic_status_name(int status);

/* modal_sandbox_task_id polls SandboxGetTaskId(V2) every 500 ms until a task id (RC_OK), the
 * sandbox finished (RC_CONFLICT, *out_res filled) or deadline_ms (RC_TIMEOUT); the waiting
 * observer hears of a long wait every 30 s. */
enum rc modal_sandbox_task_id(struct modal_client *mc, const char *sandbox_id, int64_t deadline_ms,
                              char out_task_id[MODAL_ID_MAX], struct modal_result *out_res,
                              struct grpc_status *st) LB_MUST_CHECK;

/* modal_sandbox_wait: SandboxWait(V2)(timeout_s); *out_done and *out_res when it finished. */
enum rc modal_sandbox_wait(struct modal_client *mc, const char *sandbox_id, float timeout_s,
                           bool *out_done, struct modal_result *out_res,
                           struct grpc_status *st) LB_MUST_CHECK;

/* modal_sandbox_terminate: SandboxTerminate(V2) (idempotent). */
enum rc modal_sandbox_terminate(struct modal_client *mc, const char *sandbox_id,
                                struct grpc_status *st) LB_MUST_CHECK;

/* Called per listed sandbox; job is its job tag value or NULL. A non-RC_OK return stops. */
typedef enum rc modal_list_fn(void *ctx, const char *sandbox_id, const char *job);

/* modal_sandbox_list: the running sandboxes in app_id having tag labbox=<instance> and, when
 * job_id is non-NULL, job=<job_id>; all pages, newest first. version 2 lists with
 * SandboxListV2 and reports only V2-shaped ids (Modal's SandboxListV2 may include V1 sandboxes:
 * list version 1 for those), any other version with SandboxList (V1 only). */
enum rc modal_sandbox_list(struct modal_client *mc, int version, const char *app_id,
                           const char *job_id, modal_list_fn *fn, void *ctx,
                           struct grpc_status *st) LB_MUST_CHECK;

/* ---- the task command router ---- */

/* modal_router_open: router access for task_id of sandbox_id, TaskGetCommandRouterAccess(task_id)
 * for a V1 id, SandboxGetCommandRouterAccess(sandbox_id) for a V2 one, and a router connection
 * (h2c when the control plane is loopback, docs/modal.md#http2-and-tls). Replaces any earlier
 * router. Exec calls name task_id. */
enum rc modal_router_open(struct modal_client *mc, const char *sandbox_id, const char *task_id,
                          struct grpc_status *st) LB_MUST_CHECK;
/* modal_router_refresh: fetch router access again (new JWT) for the open task, by the RPC
 * of its sandbox's family. */
enum rc modal_router_refresh(struct modal_client *mc, struct grpc_status *st) LB_MUST_CHECK;
/* modal_router_client: the router's grpc client (borrowed), NULL before modal_router_open. */
struct grpc_client *modal_router_client(struct modal_client *mc);

struct modal_exec_spec {
    const char *exec_id;   /* client-chosen UUID */
    char *const *argv;     /* NULL-terminated */
    char *const *envp;     /* "NAME=VALUE", NULL-terminated, may be NULL */
    const char *workdir;   /* NULL = the image's */
    uint32_t timeout_secs; /* 0 = none */
    bool stdout_pipe;      /* else /dev/null */
};

/* modal_exec_start: TaskExecStart (idempotent per exec id). RC_BADREQ when argv exceeds
 * 65536 bytes or an env name is invalid. */
enum rc modal_exec_start(struct modal_client *mc, const struct modal_exec_spec *spec,
                         struct grpc_status *st) LB_MUST_CHECK;
/* modal_exec_stdin_write: TaskExecStdinWrite of len bytes at offset (eof closes stdin). */
enum rc modal_exec_stdin_write(struct modal_client *mc, const char *exec_id, uint64_t offset,
                               const void *p, size_t len, bool eof, int64_t deadline_ms,
                               struct grpc_status *st) LB_MUST_CHECK;
/* modal_exec_poll: TaskExecPoll; *out_done, and then *out_code / *out_signal (one is -1). */
enum rc modal_exec_poll(struct modal_client *mc, const char *exec_id, bool *out_done, int *out_code,
                        int *out_signal, struct grpc_status *st) LB_MUST_CHECK;
/* modal_exec_wait_decode: parse a TaskExecWaitResponse; false if neither member is set. */
bool modal_exec_wait_decode(const char *p, size_t len, int *out_code, int *out_signal);
/* modal_exec_stdio_decode: the data of a TaskExecStdioReadResponse, copied into *out (heap,
 * caller frees). RC_BADREQ if undecodable. */
enum rc modal_exec_stdio_decode(const char *p, size_t len, char **out,
                                size_t *out_len) LB_MUST_CHECK;
/* modal_exec_wait_start / modal_exec_stdio_start: the asynchronous TaskExecWait (response kept
 * in the call) and TaskExecStdioRead (fd 0 stdout, 1 stderr; messages to on_msg). */
struct grpc_call *modal_exec_wait_start(struct modal_client *mc, const char *exec_id,
                                        int64_t timeout_ms);
struct grpc_call *modal_exec_stdio_start(struct modal_client *mc, const char *exec_id, int fd,
                                         uint64_t offset, grpc_msg_fn *on_msg, void *ctx);

#endif
