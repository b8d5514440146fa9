/* test_config: the key = value parser, validation messages, argv splitting, the allowlist. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static void
test_parse(void)
{
    struct config cfg;
    char err[256] = "";
    CHECK_INT(config_init(&cfg), RC_OK);
    const char *text = "# comment\n\n  max_files = 3 \nbackend=docker\r\nnetwork = on\n"
                       "agent_command = \"python3 -u run.py\"\n";
    CHECK_INT(config_parse(&cfg, text, strlen(text), err, sizeof(err)), RC_OK);
    CHECK_INT(cfg.max_files, 3);
    CHECK_STR(cfg.backend, "docker");
    CHECK(cfg.network);
    CHECK_STR(cfg.agent_command, "python3 -u run.py");

    const char *bad_key = "max_files = 3\nmax_filez = 4\n";
    CHECK_INT(config_parse(&cfg, bad_key, strlen(bad_key), err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "line 2") != NULL);
    CHECK(strstr(err, "max_filez") != NULL);

    const char *bad_num = "max_file_bytes = 12k\n";
    CHECK_INT(config_parse(&cfg, bad_num, strlen(bad_num), err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "max_file_bytes") != NULL);
    const char *neg = "max_queue = -1\n";
    CHECK_INT(config_parse(&cfg, neg, strlen(neg), err, sizeof(err)), RC_BADREQ);
    const char *noeq = "max_queue\n";
    CHECK_INT(config_parse(&cfg, noeq, strlen(noeq), err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "line 1") != NULL);
    const char *badbool = "network = maybe\n";
    CHECK_INT(config_parse(&cfg, badbool, strlen(badbool), err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "network") != NULL);
    /* Not NUL-terminated input is read only up to len. */
    const char trunc[] = {'m', 'a', 'x', '_', 'f', 'i', 'l', 'e', 's', '=', '7', '9'};
    CHECK_INT(config_parse(&cfg, trunc, 11, err, sizeof(err)), RC_OK);
    CHECK_INT(cfg.max_files, 7);
    config_fini(&cfg);
}

/* cpus takes decimals (thousandths); allow_unenforced names known limits; the uid range fits
 * max_concurrent. */
static void
test_walls(void)
{
    struct config cfg;
    char err[256] = "";
    CHECK_INT(config_init(&cfg), RC_OK);
    CHECK_INT(cfg.cpus_milli, 1000);
    static const struct {
        const char *v;
        uint64_t milli;
    } ok[] = {{"0", 0}, {"2", 2000}, {"0.5", 500}, {"1.25", 1250}, {"0.001", 1}, {"1024", 1024000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_INT(config_set(&cfg, "cpus", ok[i].v, err, sizeof(err)), RC_OK);
        CHECK_INT(cfg.cpus_milli, ok[i].milli);
    }
    static const char *const bad[] = {"", ".5", "1.", "1.2345", "-1", "1e3", "1,5", "1025", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(config_set(&cfg, "cpus", bad[i], err, sizeof(err)), RC_BADREQ);
        CHECK(strstr(err, "cpus") != NULL);
    }
    CHECK_INT(config_set(&cfg, "allow_unenforced", "memory pids,cpus", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_OK);
    CHECK_INT(cfg.unenforced, LIMIT_MEMORY | LIMIT_PIDS | LIMIT_CPUS);
    CHECK_INT(config_set(&cfg, "allow_unenforced", "memory,network", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "allow_unenforced") != NULL);
    CHECK_INT(config_set(&cfg, "allow_unenforced", "", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "max_concurrent", "8", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "sandbox_uid_count", "4", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "sandbox_uid_count") != NULL);
    CHECK_INT(config_set(&cfg, "sandbox_uid_count", "8", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "sandbox_user", "nobody", err, sizeof(err)), RC_BADREQ);
    CHECK_STR(config_limit_name(LIMIT_DISK), "disk");
    config_fini(&cfg);
}

static void
test_finish(void)
{
    struct config cfg;
    char err[256] = "";
    CHECK_INT(config_init(&cfg), RC_OK);
    CHECK_INT(config_set(&cfg, "backend", "lxc", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "backend") != NULL);
    CHECK_INT(config_set(&cfg, "backend", "local", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "max_file_bytes", "100", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "max_job_bytes", "10", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "max_file_bytes") != NULL);
    CHECK_INT(config_set(&cfg, "max_job_bytes", "1000", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "data_dir", "/srv/labbox", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_OK);
    CHECK_STR(cfg.listen, "/srv/labbox/labbox.sock");
    CHECK(cfg.max_concurrent >= 1);
    config_fini(&cfg);
}

static void
test_argv(void)
{
    char **argv = NULL;
    CHECK_INT(config_split_argv("python3  -c 'print(\"a b\")' x\\ y \"q\\\"z\"", &argv), RC_OK);
    if (argv == NULL)
        return;
    CHECK_STR(argv[0], "python3");
    CHECK_STR(argv[1], "-c");
    CHECK_STR(argv[2], "print(\"a b\")");
    CHECK_STR(argv[3], "x y");
    CHECK_STR(argv[4], "q\"z");
    CHECK(argv[5] == NULL);
    config_free_argv(argv);
    CHECK_INT(config_split_argv("   ", &argv), RC_BADREQ);
    CHECK(argv == NULL);
    CHECK_INT(config_split_argv("echo 'open", &argv), RC_BADREQ);
}

static void
test_allowlist(void)
{
    struct config cfg;
    CHECK_INT(config_init(&cfg), RC_OK);
    CHECK(config_type_allowed(&cfg, "text/csv"));
    CHECK(config_type_allowed(&cfg, "image/png"));
    CHECK(!config_type_allowed(&cfg, "application/x-executable"));
    CHECK(!config_type_allowed(&cfg, "text/html"));
    CHECK(!config_type_allowed(&cfg, "text/x-shellscript"));
    CHECK(!config_type_allowed(&cfg, "text"));
    CHECK(!config_type_allowed(&cfg, "application/octet-stream"));
    cfg.allow_octet_stream = true;
    CHECK(config_type_allowed(&cfg, "application/octet-stream"));
    config_fini(&cfg);
}

int
main(void)
{
    test_parse();
    test_finish();
    test_walls();
    test_argv();
    test_allowlist();
    return check_done("config");
}
