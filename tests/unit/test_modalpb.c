/* test_modalpb: protobuf round trips of every Modal message labbox sends or reads, plus
 * wire-level checks of presence rules (docs/modal.md#presence-rules, #field-numbers). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "modal_client.pb-c.h"
#include "task_command_router.pb-c.h"

static uint8_t wire[65536];

/* Pack m and unpack it again with its own descriptor; caller frees the result. */
static ProtobufCMessage *
round_trip(const ProtobufCMessage *m, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > sizeof(wire))
        return NULL;
    *out_len = protobuf_c_message_pack(m, wire);
    return protobuf_c_message_unpack(m->descriptor, NULL, *out_len, wire);
}

static void
test_control(void)
{
    size_t n;
    {
        Modal__Client__AuthTokenGetRequest q = MODAL__CLIENT__AUTH_TOKEN_GET_REQUEST__INIT;
        CHECK_INT(protobuf_c_message_get_packed_size(&q.base), 0); /* empty frame 00 00 00 00 00 */
        Modal__Client__AuthTokenGetResponse r = MODAL__CLIENT__AUTH_TOKEN_GET_RESPONSE__INIT;
        r.token = check_mut("a.b.c");
        Modal__Client__AuthTokenGetResponse *u = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->token, "a.b.c");
        CHECK_MEM(wire, n,
                  "\x0a\x05"
                  "a.b.c",
                  7);
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__Client__AppGetOrCreateRequest q = MODAL__CLIENT__APP_GET_OR_CREATE_REQUEST__INIT;
        q.app_name = check_mut("labbox");
        q.environment_name = check_mut("main");
        q.object_creation_type =
            MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
        Modal__Client__AppGetOrCreateRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->app_name, "labbox");
        CHECK_STR(u->environment_name, "main");
        CHECK_INT(u->object_creation_type, 1);
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__Client__EnvironmentSettings s = MODAL__CLIENT__ENVIRONMENT_SETTINGS__INIT;
        Modal__Client__EnvironmentMetadata md = MODAL__CLIENT__ENVIRONMENT_METADATA__INIT;
        Modal__Client__EnvironmentGetOrCreateResponse r =
            MODAL__CLIENT__ENVIRONMENT_GET_OR_CREATE_RESPONSE__INIT;
        s.image_builder_version = check_mut("2025.06");
        md.settings = &s;
        r.metadata = &md;
        r.environment_id = check_mut("en-1");
        Modal__Client__EnvironmentGetOrCreateResponse *u = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(u != NULL && u->metadata != NULL && u->metadata->settings != NULL);
        CHECK_STR(u->metadata->settings->image_builder_version, "2025.06");
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        char *cmds[] = {check_mut("FROM python:3.12-slim")};
        Modal__Client__Image img = MODAL__CLIENT__IMAGE__INIT;
        Modal__Client__ImageGetOrCreateRequest q = MODAL__CLIENT__IMAGE_GET_OR_CREATE_REQUEST__INIT;
        img.n_dockerfile_commands = 1;
        img.dockerfile_commands = cmds;
        q.image = &img;
        q.app_id = check_mut("ap-1");
        q.builder_version = check_mut("2025.06");
        Modal__Client__ImageGetOrCreateRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL && u->image != NULL);
        CHECK_INT(u->image->n_dockerfile_commands, 1);
        CHECK_STR(u->image->dockerfile_commands[0], "FROM python:3.12-slim");
        CHECK_STR(u->builder_version, "2025.06");
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        /* Presence: result absent while building, present (status FAILURE) after. */
        Modal__Client__ImageGetOrCreateResponse r =
            MODAL__CLIENT__IMAGE_GET_OR_CREATE_RESPONSE__INIT;
        r.image_id = check_mut("im-1");
        Modal__Client__ImageGetOrCreateResponse *u = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK(u->result == NULL);
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__GenericResult g = MODAL__CLIENT__GENERIC_RESULT__INIT;
        g.status = MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_FAILURE;
        g.exception = check_mut("pull failed");
        r.result = &g;
        u = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(u != NULL && u->result != NULL);
        CHECK_INT(u->result->status, 2);
        CHECK_STR(u->result->exception, "pull failed");
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__Client__ImageJoinStreamingRequest q =
            MODAL__CLIENT__IMAGE_JOIN_STREAMING_REQUEST__INIT;
        q.image_id = check_mut("im-1");
        q.timeout = 55.0f;
        q.last_entry_id = check_mut("3-0");
        Modal__Client__ImageJoinStreamingRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK(u->timeout == 55.0f);
        CHECK_STR(u->last_entry_id, "3-0");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__GenericResult g = MODAL__CLIENT__GENERIC_RESULT__INIT;
        Modal__Client__ImageJoinStreamingResponse r =
            MODAL__CLIENT__IMAGE_JOIN_STREAMING_RESPONSE__INIT;
        g.status = MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS;
        r.result = &g;
        r.entry_id = check_mut("4-0");
        Modal__Client__ImageJoinStreamingResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL && v->result != NULL);
        CHECK_INT(v->result->status, 1);
        CHECK_STR(v->entry_id, "4-0");
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__Client__Resources res = MODAL__CLIENT__RESOURCES__INIT;
        Modal__Client__NetworkAccess net = MODAL__CLIENT__NETWORK_ACCESS__INIT;
        Modal__Client__Sandbox def = MODAL__CLIENT__SANDBOX__INIT;
        Modal__Client__SandboxTag t1 = MODAL__CLIENT__SANDBOX_TAG__INIT;
        Modal__Client__SandboxTag t2 = MODAL__CLIENT__SANDBOX_TAG__INIT;
        Modal__Client__SandboxTag *tags[] = {&t1, &t2};
        Modal__Client__SandboxCreateRequest q = MODAL__CLIENT__SANDBOX_CREATE_REQUEST__INIT;
        res.memory_mb = 1024;
        res.milli_cpu = 1000;
        net.network_access_type = MODAL__CLIENT__NETWORK_ACCESS__NETWORK_ACCESS_TYPE__BLOCKED;
        def.image_id = check_mut("im-1");
        def.timeout_secs = 1500;
        def.resources = &res;
        def.network_access = &net;
        t1.tag_name = check_mut("labbox");
        t1.tag_value = check_mut("1");
        t2.tag_name = check_mut("job");
        t2.tag_value = check_mut("abc");
        q.app_id = check_mut("ap-1");
        q.definition = &def;
        q.n_tags = 2;
        q.tags = tags;
        Modal__Client__SandboxCreateRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL && u->definition != NULL && u->definition->resources != NULL &&
                     u->definition->network_access != NULL);
        CHECK_INT(u->definition->n_entrypoint_args, 0);
        CHECK_INT(u->definition->timeout_secs, 1500);
        CHECK_INT(u->definition->resources->memory_mb, 1024);
        CHECK_INT(u->definition->resources->milli_cpu, 1000);
        CHECK_INT(u->definition->network_access->network_access_type, 2);
        CHECK_INT(u->n_tags, 2);
        CHECK_STR(u->tags[1]->tag_value, "abc");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__SandboxCreateResponse r = MODAL__CLIENT__SANDBOX_CREATE_RESPONSE__INIT;
        r.sandbox_id = check_mut("sb-0123456789012345678901");
        Modal__Client__SandboxCreateResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_STR(v->sandbox_id, "sb-0123456789012345678901");
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__Client__SandboxGetTaskIdRequest q = MODAL__CLIENT__SANDBOX_GET_TASK_ID_REQUEST__INIT;
        q.sandbox_id = check_mut("sb-1");
        Modal__Client__SandboxGetTaskIdRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->sandbox_id, "sb-1");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__SandboxGetTaskIdResponse r =
            MODAL__CLIENT__SANDBOX_GET_TASK_ID_RESPONSE__INIT;
        Modal__Client__SandboxGetTaskIdResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_STR(v->task_id, ""); /* not scheduled yet */
        CHECK(v->task_result == NULL);
        protobuf_c_message_free_unpacked(&v->base, NULL);
        r.task_id = check_mut("ta-1");
        v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_STR(v->task_id, "ta-1");
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__Client__TaskGetCommandRouterAccessRequest q =
            MODAL__CLIENT__TASK_GET_COMMAND_ROUTER_ACCESS_REQUEST__INIT;
        q.task_id = check_mut("ta-1");
        Modal__Client__TaskGetCommandRouterAccessRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->task_id, "ta-1");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__TaskGetCommandRouterAccessResponse r =
            MODAL__CLIENT__TASK_GET_COMMAND_ROUTER_ACCESS_RESPONSE__INIT;
        r.jwt = check_mut("x.y.z");
        r.url = check_mut("https://127.0.0.1:1");
        Modal__Client__TaskGetCommandRouterAccessResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_STR(v->jwt, "x.y.z");
        CHECK_STR(v->url, "https://127.0.0.1:1");
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__Client__SandboxWaitRequest q = MODAL__CLIENT__SANDBOX_WAIT_REQUEST__INIT;
        q.sandbox_id = check_mut("sb-1");
        q.timeout = 0.0f;
        Modal__Client__SandboxWaitRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->sandbox_id, "sb-1");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__SandboxWaitResponse r = MODAL__CLIENT__SANDBOX_WAIT_RESPONSE__INIT;
        Modal__Client__SandboxWaitResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK(v->result == NULL); /* still running */
        protobuf_c_message_free_unpacked(&v->base, NULL);
        Modal__Client__GenericResult g = MODAL__CLIENT__GENERIC_RESULT__INIT;
        g.status = MODAL__CLIENT__GENERIC_RESULT__GENERIC_STATUS__GENERIC_STATUS_TERMINATED;
        r.result = &g;
        v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL && v->result != NULL);
        CHECK_INT(v->result->status, 3);
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__Client__SandboxTerminateRequest q = MODAL__CLIENT__SANDBOX_TERMINATE_REQUEST__INIT;
        q.sandbox_id = check_mut("sb-1");
        Modal__Client__SandboxTerminateRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->sandbox_id, "sb-1");
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__Client__SandboxTag t = MODAL__CLIENT__SANDBOX_TAG__INIT;
        Modal__Client__SandboxTag *tags[] = {&t};
        Modal__Client__SandboxListRequest q = MODAL__CLIENT__SANDBOX_LIST_REQUEST__INIT;
        t.tag_name = check_mut("labbox");
        t.tag_value = check_mut("1");
        q.app_id = check_mut("ap-1");
        q.before_timestamp = 1234.5;
        q.n_tags = 1;
        q.tags = tags;
        Modal__Client__SandboxListRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK(u->before_timestamp == 1234.5);
        CHECK_INT(u->n_tags, 1);
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__Client__SandboxInfo si = MODAL__CLIENT__SANDBOX_INFO__INIT;
        Modal__Client__SandboxInfo *sis[] = {&si};
        Modal__Client__SandboxListResponse r = MODAL__CLIENT__SANDBOX_LIST_RESPONSE__INIT;
        si.id = check_mut("sb-2");
        si.created_at = 99.25;
        si.n_tags = 1;
        si.tags = tags;
        r.n_sandboxes = 1;
        r.sandboxes = sis;
        Modal__Client__SandboxListResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL && v->n_sandboxes == 1);
        CHECK_STR(v->sandboxes[0]->id, "sb-2");
        CHECK(v->sandboxes[0]->created_at == 99.25);
        CHECK_STR(v->sandboxes[0]->tags[0]->tag_name, "labbox");
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    /* RPCStatus / RPCRetryPolicy (grpc-status-details-bin): test_modal_retry decodes them. */
}

static void
test_router(void)
{
    size_t n;
    {
        char *argv[] = {check_mut("sh"), check_mut("-c"), check_mut("echo hi")};
        Modal__TaskCommandRouter__TaskExecStartRequest__EnvEntry e1 =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_START_REQUEST__ENV_ENTRY__INIT;
        Modal__TaskCommandRouter__TaskExecStartRequest__EnvEntry *env[] = {&e1};
        Modal__TaskCommandRouter__TaskExecStartRequest q =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_START_REQUEST__INIT;
        e1.key = check_mut("LABBOX_X");
        e1.value = check_mut("a=b");
        q.task_id = check_mut("ta-1");
        q.exec_id = check_mut("0b0e2f8e-4a3b-4c55-9d3e-1f2a3b4c5d6e");
        q.n_command_args = 3;
        q.command_args = argv;
        q.stdout_config =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDOUT_CONFIG__TASK_EXEC_STDOUT_CONFIG_PIPE;
        q.stderr_config =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE;
        q.timeout_secs = 600;
        q.workdir = check_mut("/workspace");
        q.n_env = 1;
        q.env = env;
        Modal__TaskCommandRouter__TaskExecStartRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL && u->n_command_args == 3 && u->n_env == 1);
        CHECK_STR(u->command_args[2], "echo hi");
        CHECK_STR(u->env[0]->key, "LABBOX_X");
        CHECK_STR(u->env[0]->value, "a=b");
        CHECK_INT(u->timeout_secs, 600);
        CHECK_STR(u->workdir, "/workspace");
        CHECK_INT(u->stdout_config, 1);
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__TaskCommandRouter__TaskExecStdioReadRequest q =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_READ_REQUEST__INIT;
        q.task_id = check_mut("ta-1");
        q.exec_id = check_mut("e");
        q.offset = 1ull << 40;
        q.file_descriptor =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_FILE_DESCRIPTOR__TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDERR;
        Modal__TaskCommandRouter__TaskExecStdioReadRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK(u->offset == 1ull << 40);
        CHECK_INT(u->file_descriptor, 1);
        protobuf_c_message_free_unpacked(&u->base, NULL);
        uint8_t bin[] = {0, 1, 2, 0xff, 0};
        Modal__TaskCommandRouter__TaskExecStdioReadResponse r =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIO_READ_RESPONSE__INIT;
        r.data.data = bin;
        r.data.len = sizeof(bin);
        Modal__TaskCommandRouter__TaskExecStdioReadResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_MEM(v->data.data, v->data.len, bin, sizeof(bin));
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        uint8_t chunk[1000];
        memset(chunk, 0xab, sizeof(chunk));
        Modal__TaskCommandRouter__TaskExecStdinWriteRequest q =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_STDIN_WRITE_REQUEST__INIT;
        q.task_id = check_mut("ta-1");
        q.exec_id = check_mut("e");
        q.offset = 4096;
        q.data.data = chunk;
        q.data.len = sizeof(chunk);
        q.eof = true;
        Modal__TaskCommandRouter__TaskExecStdinWriteRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK(u->offset == 4096 && u->eof);
        CHECK_MEM(u->data.data, u->data.len, chunk, sizeof(chunk));
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    {
        Modal__TaskCommandRouter__TaskExecWaitRequest q =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_REQUEST__INIT;
        q.task_id = check_mut("ta-1");
        q.exec_id = check_mut("e");
        Modal__TaskCommandRouter__TaskExecWaitRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        CHECK_STR(u->exec_id, "e");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        /* An explicit code 0 is on the wire (08 00); unset is nothing. */
        Modal__TaskCommandRouter__TaskExecWaitResponse r =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__INIT;
        r.exit_status_case = MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_CODE;
        r.code = 0;
        Modal__TaskCommandRouter__TaskExecWaitResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_MEM(wire, n, "\x08\x00", 2);
        CHECK_INT(v->exit_status_case,
                  MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_CODE);
        CHECK_INT(v->code, 0);
        protobuf_c_message_free_unpacked(&v->base, NULL);
        r.exit_status_case =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_SIGNAL;
        r.signal = 9;
        v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_INT(v->exit_status_case,
                  MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_SIGNAL);
        CHECK_INT(v->signal, 9);
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
    {
        Modal__TaskCommandRouter__TaskExecPollRequest q =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_REQUEST__INIT;
        q.task_id = check_mut("ta-1");
        q.exec_id = check_mut("e");
        Modal__TaskCommandRouter__TaskExecPollRequest *u = (void *)round_trip(&q.base, &n);
        REQUIRE_VOID(u != NULL);
        protobuf_c_message_free_unpacked(&u->base, NULL);
        Modal__TaskCommandRouter__TaskExecPollResponse r =
            MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_RESPONSE__INIT;
        Modal__TaskCommandRouter__TaskExecPollResponse *v = (void *)round_trip(&r.base, &n);
        REQUIRE_VOID(v != NULL);
        CHECK_INT(n, 0);
        CHECK_INT(v->exit_status_case,
                  MODAL__TASK_COMMAND_ROUTER__TASK_EXEC_POLL_RESPONSE__EXIT_STATUS__NOT_SET);
        protobuf_c_message_free_unpacked(&v->base, NULL);
    }
}

int
main(void)
{
    test_control();
    test_router();
    return check_done("modalpb");
}
