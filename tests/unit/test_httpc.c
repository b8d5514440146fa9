/* test_httpc: address parsing, query escaping and connection failures of the libcurl wrapper. */
#include "rpc/httpc.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

int
main(void)
{
    struct httpc_target t;
    char err[200];

    CHECK_INT(httpc_target_parse("unix:///run/podman/podman.sock", &t, err, sizeof(err)), RC_OK);
    CHECK(t.is_unix && t.is_loopback);
    CHECK_STR(t.unix_path, "/run/podman/podman.sock");
    CHECK_STR(t.base, "http://localhost");
    CHECK_INT(httpc_target_parse("/var/run/docker.sock", &t, err, sizeof(err)), RC_OK);
    CHECK_STR(t.unix_path, "/var/run/docker.sock");
    CHECK_INT(httpc_target_parse("tcp://127.0.0.1:2375", &t, err, sizeof(err)), RC_OK);
    CHECK(!t.is_unix && t.is_loopback);
    CHECK_STR(t.base, "http://127.0.0.1:2375");
    CHECK_INT(httpc_target_parse("tcp://localhost:2375/", &t, err, sizeof(err)), RC_OK);
    CHECK(t.is_loopback);
    CHECK_INT(httpc_target_parse("tcp://[::1]:2375", &t, err, sizeof(err)), RC_OK);
    CHECK(t.is_loopback);
    CHECK_STR(t.base, "http://[::1]:2375");
    CHECK_INT(httpc_target_parse("tcp://10.0.0.5:2375", &t, err, sizeof(err)), RC_OK);
    CHECK(!t.is_loopback);
    CHECK_INT(httpc_target_parse("tcp://127.0.0.1.evil.com:2375", &t, err, sizeof(err)), RC_OK);
    CHECK(!t.is_loopback);
    CHECK_INT(httpc_target_parse("tcp://1270.0.0.1:2375", &t, err, sizeof(err)), RC_OK);
    CHECK(!t.is_loopback);

    static const char *const bad[] = {
        "",
        "unix://",
        "unix://relative",
        "relative/path",
        "tcp://host",
        "tcp://:80",
        "tcp://h:0",
        "tcp://h:65536",
        "tcp://h:12a",
        "tcp://h o:80",
        "tcp://user@h:80",
        "https://h:443",
        "ftp://h:21",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        if (httpc_target_parse(bad[i], &t, err, sizeof(err)) != RC_BADREQ || err[0] == '\0')
            check_fail(__FILE__, __LINE__, "bad address", "\"%s\" accepted", bad[i]);
        check_count++;
    }
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    CHECK_INT(httpc_target_parse(longp, &t, err, sizeof(err)), RC_BADREQ);

    char esc[64];
    CHECK_INT(httpc_escape("{\"label\":[\"a=b\"]}", esc, sizeof(esc)), RC_OK);
    CHECK_STR(esc, "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    CHECK_INT(httpc_escape("aZ09-_.~", esc, sizeof(esc)), RC_OK);
    CHECK_STR(esc, "aZ09-_.~");
    CHECK_INT(httpc_escape("////", esc, 12), RC_TOOBIG);
    CHECK_INT(httpc_escape("", esc, 1), RC_OK);
    CHECK_STR(esc, "");

    /* No server at the socket: RC_BACKEND with curl's reason, status 0. */
    CHECK_INT(httpc_target_parse("unix:///tmp/labbox-no-such-dir/x.sock", &t, err, sizeof(err)),
              RC_OK);
    struct httpc *h = httpc_new(&t);
    REQUIRE(h != NULL);
    struct httpc_req rq = {.method = "GET", .path = "/_ping", .max_body = 100, .timeout_ms = 2000};
    struct httpc_resp resp;
    CHECK_INT(httpc_do(h, &rq, &resp), RC_BACKEND);
    CHECK_INT(resp.status, 0);
    CHECK(strlen(httpc_error(h)) > 0);
    httpc_resp_fini(&resp);
    struct httpc_stream *st = NULL;
    struct httpc_req srq = rq;
    srq.timeout_ms = 0;
    srq.write_fn = NULL;
    CHECK_INT(httpc_stream_open(h, &srq, &st), RC_OK);
    bool done = false;
    for (int i = 0; i < 50 && !done; i++)
        CHECK_INT(httpc_stream_poll(st, 100, &done), RC_OK);
    CHECK(done);
    long status = -1;
    const char *body = NULL;
    CHECK_INT(httpc_stream_result(st, &status, &body), RC_BACKEND);
    CHECK_INT(status, 0);
    httpc_stream_free(st);
    httpc_free(h);
    return check_done("httpc");
}
