/* test_config: the key = value parser, sizes with units, paths relative to the file, validation
 * messages, reload merging, the round trip through config_format, argv splitting, the allowlist. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

    const char *bad_num = "max_files = 12k\n";
    CHECK_INT(config_parse(&cfg, bad_num, strlen(bad_num), err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "max_files") != NULL);
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

static void
test_sizes(void)
{
    struct config cfg;
    char err[256] = "";
    REQUIRE_VOID(config_init(&cfg) == RC_OK);
    const struct {
        const char *key, *value;
        uint64_t want;
    } ok[] = {
        {"max_file_bytes", "100", 100},
        {"max_file_bytes", "512k", 512 << 10},
        {"max_file_bytes", "512K", 512 << 10},
        {"max_file_bytes", "100M", 100ull << 20},
        {"max_file_bytes", "16MiB", 16ull << 20},
        {"max_file_bytes", "16 MiB", 16ull << 20},
        {"max_file_bytes", "1G", 1ull << 30},
        {"max_file_bytes", "1gib", 1ull << 30},
        {"max_file_bytes", "1T", 1ull << 40},
        {"max_file_bytes", "4096B", 4096},
        {"max_job_bytes", "2T", 2ull << 40},
        {"log_line_max", "16k", 16384},
        {"memory_mb", "512", 512},
        {"memory_mb", "2G", 2048},
        {"memory_mb", "512MiB", 512},
        {"file_size_mb", "1M", 1},
        {"disk_reserve_mb", "0", 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        err[0] = '\0';
        CHECK_INT(config_set(&cfg, ok[i].key, ok[i].value, err, sizeof(err)), RC_OK);
        char text[64];
        uint64_t got = 0;
        if (strcmp(ok[i].key, "max_file_bytes") == 0)
            got = cfg.max_file_bytes;
        else if (strcmp(ok[i].key, "max_job_bytes") == 0)
            got = cfg.max_job_bytes;
        else if (strcmp(ok[i].key, "log_line_max") == 0)
            got = cfg.log_line_max;
        else if (strcmp(ok[i].key, "memory_mb") == 0)
            got = cfg.memory_mb;
        else if (strcmp(ok[i].key, "file_size_mb") == 0)
            got = cfg.file_size_mb;
        else
            got = cfg.disk_reserve_mb;
        (void)snprintf(text, sizeof(text), "%s = %s", ok[i].key, ok[i].value);
        if (got != ok[i].want)
            check_fail(__FILE__, __LINE__, text, "got %llu, want %llu", (unsigned long long)got,
                       (unsigned long long)ok[i].want);
    }
    const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"max_file_bytes", "1.5G", "expected a size"},
        {"max_file_bytes", "-1", "expected a size"},
        {"max_file_bytes", "G", "expected a size"},
        {"max_file_bytes", "12q", "expected a size"},
        {"max_file_bytes", "100MB", "ambiguous"},
        {"max_file_bytes", "1kb", "ambiguous"},
        {"max_file_bytes", "2T", "out of range (1 B to 1 TiB)"},
        {"max_file_bytes", "0", "out of range"},
        {"max_file_bytes", "99999999999999999999", "expected a size"},
        {"max_file_bytes", "17179869184G", "expected a size"},
        {"memory_mb", "1500k", "not a whole number of MiB"},
        {"memory_mb", "8", "out of range (16 MiB to 16 TiB)"},
        {"max_files", "1k", "whole number"},
        {"socket_mode", "0999", "octal"},
        {"socket_mode", "01000", "octal"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(config_set(&cfg, bad[i].key, bad[i].value, err, sizeof(err)), RC_BADREQ);
        if (strstr(err, bad[i].msg) == NULL || strstr(err, bad[i].key) == NULL)
            check_fail(__FILE__, __LINE__, bad[i].value, "message '%s' lacks '%s' or the key", err,
                       bad[i].msg);
    }
    CHECK_INT(config_set(&cfg, "socket_mode", "0640", err, sizeof(err)), RC_OK);
    CHECK_INT(cfg.socket_mode, 0640);
    /* Values must fit one line of a file. */
    CHECK_INT(config_set(&cfg, "agent_command", "python3\nrm", err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "agent_command") != NULL);
    config_fini(&cfg);
}

/* write_file: dir/name = text. */
static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    REQUIRE_VOID(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void
test_load_relative(void)
{
    char tmpl[] = "/tmp/labbox-test-config-XXXXXX", path[PATH_MAX + 32], want[PATH_MAX + 32];
    char err[512] = "";
    REQUIRE_VOID(mkdtemp(tmpl) != NULL);
    (void)snprintf(path, sizeof(path), "%s/etc", tmpl);
    REQUIRE_VOID(mkdir(path, 0755) == 0);
    write_file(path, "labbox.conf",
               "agent_dir = ../agent\ndata_dir = ./data\nsandbox_dir = /srv/sb\n"
               "listen = systemd\nlog_file = labbox.log\nmemory_mb = 1G\n");
    (void)snprintf(path, sizeof(path), "%s/etc/labbox.conf", tmpl);
    struct config cfg;
    REQUIRE_VOID(unsetenv("LABBOX_AGENT_DIR") == 0 && unsetenv("LABBOX_DATA_DIR") == 0);
    CHECK_INT(config_load(&cfg, path, err, sizeof(err)), RC_OK);
    (void)snprintf(want, sizeof(want), "%s/agent", tmpl);
    CHECK_STR(cfg.agent_dir, want);
    (void)snprintf(want, sizeof(want), "%s/etc/data", tmpl);
    CHECK_STR(cfg.data_dir, want);
    (void)snprintf(want, sizeof(want), "%s/etc/labbox.log", tmpl);
    CHECK_STR(cfg.log_file, want);
    CHECK_STR(cfg.sandbox_dir, "/srv/sb");
    CHECK_STR(cfg.listen, "systemd");
    CHECK_INT(cfg.memory_mb, 1024);
    /* agent_dir does not exist yet: check_files names the key and the path. */
    CHECK_INT(config_check_files(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "agent_dir") != NULL && strstr(err, "does not exist") != NULL);
    CHECK(strstr(err, cfg.agent_dir) != NULL);
    char agent[PATH_MAX + 32];
    (void)snprintf(agent, sizeof(agent), "%s/agent", tmpl);
    REQUIRE_VOID(mkdir(agent, 0755) == 0);
    CHECK_INT(config_check_files(&cfg, err, sizeof(err)), RC_OK);
    config_fini(&cfg);
    /* The environment is relative to the working directory, and overrides the file. */
    REQUIRE_VOID(setenv("LABBOX_AGENT_DIR", "./elsewhere", 1) == 0);
    char cwd[PATH_MAX];
    REQUIRE_VOID(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_INT(config_load(&cfg, path, err, sizeof(err)), RC_OK);
    (void)snprintf(want, sizeof(want), "%s/elsewhere", cwd);
    CHECK_STR(cfg.agent_dir, want);
    config_fini(&cfg);
    REQUIRE_VOID(unsetenv("LABBOX_AGENT_DIR") == 0);
    /* A bad line names the file, the line and the key. */
    write_file(tmpl, "bad.conf", "threads = 8\nmax_job_bytes = 10 MB\n");
    (void)snprintf(path, sizeof(path), "%s/bad.conf", tmpl);
    CHECK_INT(config_load(&cfg, path, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "bad.conf: line 2: max_job_bytes") != NULL);
    config_fini(&cfg);
    (void)snprintf(path, sizeof(path), "%s/etc/labbox.conf", tmpl);
    CHECK(unlink(path) == 0);
    (void)snprintf(path, sizeof(path), "%s/etc", tmpl);
    CHECK(rmdir(path) == 0);
    (void)snprintf(path, sizeof(path), "%s/bad.conf", tmpl);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(agent) == 0);
    CHECK(rmdir(tmpl) == 0);
}

static void
test_reload_merge(void)
{
    struct config run, next;
    char err[256] = "", kept[256], applied[256];
    REQUIRE_VOID(config_init(&run) == RC_OK && config_init(&next) == RC_OK);
    CHECK_INT(config_set(&run, "data_dir", "/srv/a", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "data_dir", "/srv/b", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "threads", "32", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "max_file_bytes", "1M", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "allowed_types", "text/csv", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "log_level", "debug", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&run, err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&next, err, sizeof(err)), RC_OK);
    CHECK_INT(config_keep_restart_keys(&next, &run, kept, applied, sizeof(kept), err, sizeof(err)),
              RC_OK);
    /* data_dir, and what derives from it (listen), need a restart. */
    CHECK_STR(kept, "data_dir listen threads");
    CHECK_STR(applied, "allowed_types log_level max_file_bytes");
    CHECK_STR(next.data_dir, "/srv/a");
    CHECK_STR(next.listen, "/srv/a/labbox.sock");
    CHECK_STR(next.instance, run.instance);
    CHECK_INT(next.threads, 16);
    CHECK_INT(next.max_file_bytes, 1 << 20);
    CHECK_STR(next.allowed_types, "text/csv");
    CHECK(config_is_reloadable("memory_mb"));
    CHECK(config_is_reloadable("max_concurrent")); /* the scheduler reads each round's snapshot */
    CHECK(config_is_reloadable("max_queue"));
    CHECK(config_is_reloadable("job_ttl"));
    CHECK(!config_is_reloadable("sandbox_dir"));
    CHECK(!config_is_reloadable("identity"));
    CHECK(!config_is_reloadable("no_such_key"));
    /* A reload that would break a cross-key rule fails. */
    CHECK_INT(config_set(&next, "max_file_bytes", "2M", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&next, "max_job_bytes", "1M", err, sizeof(err)), RC_OK);
    CHECK_INT(config_keep_restart_keys(&next, &run, kept, applied, sizeof(kept), err, sizeof(err)),
              RC_BADREQ);
    CHECK(strstr(err, "max_file_bytes") != NULL);
    config_fini(&run);
    config_fini(&next);
}

static void
test_format_round_trip(void)
{
    struct config a, b;
    char err[256] = "", *text = NULL;
    size_t len = 0;
    REQUIRE_VOID(config_init(&a) == RC_OK && config_init(&b) == RC_OK);
    CHECK_INT(config_set(&a, "agent_command", "python3 -c 'print(\"x  y\")'", err, sizeof(err)),
              RC_OK);
    CHECK_INT(config_set(&a, "agent_env", " A=1 B ", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&a, "modal_profile", "\"quoted\"", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&a, "socket_mode", "0640", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&a, "network", "on", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&a, "max_job_bytes", "3G", err, sizeof(err)), RC_OK);
    CHECK_INT(config_format(&a, &text, &len), RC_OK);
    REQUIRE_VOID(text != NULL);
    CHECK(strstr(text, "socket_mode = 0640\n") != NULL);
    CHECK(strstr(text, "max_job_bytes = 3221225472\n") != NULL);
    CHECK_INT(config_parse(&b, text, len, err, sizeof(err)), RC_OK);
    char *again = NULL;
    size_t again_len = 0;
    CHECK_INT(config_format(&b, &again, &again_len), RC_OK);
    CHECK_MEM(text, len, again, again_len);
    CHECK_STR(b.agent_env, " A=1 B ");
    CHECK_STR(b.modal_profile, "\"quoted\"");
    CHECK_STR(b.agent_command, a.agent_command);
    free(text);
    free(again);
    config_fini(&a);
    config_fini(&b);
}

/* identity, trusted_proxies, admin_users and the user_* quotas. */
static void
test_identity(void)
{
    struct config cfg;
    char err[256] = "";
    CHECK_INT(config_init(&cfg), RC_OK);
    /* The default is fair per address, with bounded quotas. */
    CHECK_INT(config_identity(&cfg), IDENTITY_ADDRESS);
    CHECK(cfg.user_max_queued > 0 && cfg.user_max_queued < cfg.max_queue);
    CHECK(cfg.user_max_bytes > 0);
    CHECK_INT(cfg.user_max_running, 0);
    const char *text = "identity = remote_user\ntrusted_proxies = 10.0.0.0/8, ::1\n"
                       "admin_users = root, alice\nuser_max_queued = 0\nuser_max_running = 2\n"
                       "user_max_bytes = 1000\n";
    CHECK_INT(config_parse(&cfg, text, strlen(text), err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_OK);
    CHECK_INT(config_identity(&cfg), IDENTITY_REMOTE_USER);
    CHECK(config_is_admin(&cfg, "alice") && config_is_admin(&cfg, "root"));
    CHECK(!config_is_admin(&cfg, "ali") && !config_is_admin(&cfg, "alice2") &&
          !config_is_admin(&cfg, ""));
    CHECK_INT(cfg.user_max_running, 2);
    CHECK_INT(config_set(&cfg, "identity", "none", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_OK);
    CHECK_INT(config_identity(&cfg), IDENTITY_NONE);
    CHECK_INT(config_set(&cfg, "identity", "ldap", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "identity") != NULL && strstr(err, "ldap") != NULL);
    CHECK_INT(config_set(&cfg, "identity", "address", err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&cfg, "trusted_proxies", "10.0.0.0/8 proxy.example", err, sizeof(err)),
              RC_OK);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "trusted_proxies") != NULL && strstr(err, "proxy.example") != NULL);
    CHECK_INT(config_set(&cfg, "user_max_running", "5000", err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "user_max_running") != NULL);
    config_fini(&cfg);
}

/* The default instance: a random name made once per data dir and kept there; an explicit one
 * wins; a broken file is an error, never a guess. */
static void
test_instance(void)
{
    char dir[] = "/tmp/lbcfg-inst-XXXXXX", path[128], err[256] = "";
    struct config a, b, c;
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE_VOID(fd >= 0);
    REQUIRE_VOID(config_init(&a) == RC_OK && config_init(&b) == RC_OK && config_init(&c) == RC_OK);
    CHECK_INT(config_finish(&a, err, sizeof(err)), RC_OK);
    CHECK_STR(a.instance, "");
    CHECK_INT(config_instance(&a, fd, false, err, sizeof(err)), RC_NOTFOUND);
    CHECK_INT(config_instance(&a, fd, true, err, sizeof(err)), RC_OK);
    CHECK_INT(strncmp(a.instance, "lb-", 3), 0);
    CHECK_INT(strlen(a.instance), 19);
    CHECK_INT(config_instance(&b, fd, false, err, sizeof(err)), RC_OK);
    CHECK_STR(b.instance, a.instance); /* the same data dir, the same name */
    CHECK_INT(config_set(&c, "instance", "mine", err, sizeof(err)), RC_OK);
    CHECK_INT(config_instance(&c, fd, true, err, sizeof(err)), RC_OK);
    CHECK_STR(c.instance, "mine");
    (void)snprintf(path, sizeof(path), "%s/instance", dir);
    FILE *f = fopen(path, "w");
    REQUIRE_VOID(f != NULL);
    (void)fputs("bad name!\n", f);
    (void)fclose(f);
    config_fini(&b);
    REQUIRE_VOID(config_init(&b) == RC_OK);
    CHECK_INT(config_instance(&b, fd, true, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "instance") != NULL);
    CHECK_INT(config_set(&b, "modal_image_commands", "[\"RUN x\"]", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&b, err, sizeof(err)), RC_OK);
    CHECK_INT(config_set(&b, "modal_image_commands", "RUN x", err, sizeof(err)), RC_OK);
    CHECK_INT(config_finish(&b, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "modal_image_commands") != NULL);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
    (void)close(fd);
    config_fini(&a);
    config_fini(&b);
    config_fini(&c);
}

int
main(void)
{
    test_instance();
    test_sizes();
    test_load_relative();
    test_reload_merge();
    test_format_round_trip();
    test_identity();
    test_parse();
    test_finish();
    test_walls();
    test_argv();
    test_allowlist();
    return check_done("config");
}
