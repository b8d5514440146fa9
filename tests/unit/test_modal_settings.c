/* test_modal_settings: where modal_settings_load finds Modal credentials (environment, profile,
 * defaults) and that a value or path too long for its field is an error, never a shortened one. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "rpc/modal_client.h"

static char dir[64];
static char toml[128];

static void
clear_env(void)
{
    static const char *const names[] = {
        "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET",          "MODAL_SERVER_URL",  "MODAL_ENVIRONMENT",
        "MODAL_PROFILE",  "MODAL_IMAGE_BUILDER_VERSION", "MODAL_CONFIG_PATH", NULL,
    };
    for (size_t i = 0; names[i] != NULL; i++)
        (void)unsetenv(names[i]);
}

/* A string of n copies of c (static buffer, n < 2048). */
static const char *
longstr(char c, size_t n)
{
    static char buf[2048];
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void
test_sources(struct config *cfg)
{
    struct modal_settings s;
    char err[400];

    /* The active profile of the file; defaults for what it lacks. */
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_STR(s.token_id, "ak-work");
    CHECK_STR(s.token_secret, "as-work");
    CHECK_STR(s.server_url, "http://127.0.0.1:9000"); /* one trailing slash stripped */
    CHECK_STR(s.environment, "main");
    CHECK_STR(s.profile, "work");
    CHECK_STR(s.config_path, toml);
    CHECK_STR(s.instance, "1");
    CHECK_STR(s.image_builder_version, "");

    /* The environment beats the profile; MODAL_PROFILE picks another one. */
    (void)setenv("MODAL_TOKEN_ID", "ak-env", 1);
    (void)setenv("MODAL_PROFILE", "default", 1);
    (void)setenv("MODAL_IMAGE_BUILDER_VERSION", "2025.06", 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_STR(s.token_id, "ak-env");
    CHECK_STR(s.token_secret, "as-default");
    CHECK_STR(s.server_url, MODAL_DEFAULT_SERVER_URL);
    CHECK_STR(s.profile, "default");
    CHECK_STR(s.image_builder_version, "2025.06");
    clear_env();

    /* Set but empty is unset, as in the SDKs: the profile's environment stays. */
    (void)setenv("MODAL_ENVIRONMENT", "", 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_STR(s.environment, "main");
    (void)setenv("MODAL_ENVIRONMENT", "staging", 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_STR(s.environment, "staging");
    clear_env();

    /* No credentials anywhere. */
    char path[160];
    (void)snprintf(path, sizeof(path), "%s/empty.toml", dir);
    REQUIRE_VOID(check_write_file(path, "# nothing\n"));
    char e2[200];
    CHECK_INT(config_set(cfg, "modal_config", path, e2, sizeof(e2)), RC_OK);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_NOTFOUND);
    CHECK(strstr(err, "no Modal credentials") != NULL);
    CHECK_STR(s.token_id, "");
    /* A requested profile needs the file. */
    (void)snprintf(path, sizeof(path), "%s/missing.toml", dir);
    CHECK_INT(config_set(cfg, "modal_config", path, e2, sizeof(e2)), RC_OK);
    (void)setenv("MODAL_PROFILE", "work", 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "does not exist") != NULL);
    clear_env();
    CHECK_INT(config_set(cfg, "modal_config", toml, e2, sizeof(e2)), RC_OK);
}

static void
test_too_long(struct config *cfg)
{
    struct modal_settings s;
    char err[400], e2[200];
    struct modal_settings zero;
    memset(&zero, 0, sizeof(zero));

    /* A token that does not fit is refused, named, and never echoed; nothing is left behind. */
    (void)setenv("MODAL_TOKEN_SECRET", longstr('s', 256), 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "MODAL_TOKEN_SECRET") != NULL);
    CHECK(strstr(err, "sss") == NULL);
    CHECK(memcmp(&s, &zero, sizeof(s)) == 0);
    /* One byte less fits exactly. */
    (void)setenv("MODAL_TOKEN_SECRET", longstr('s', 255), 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_INT(strlen(s.token_secret), 255);
    clear_env();

    (void)setenv("MODAL_SERVER_URL", longstr('u', 600), 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "MODAL_SERVER_URL") != NULL);
    clear_env();

    /* A config path that does not fit is an error, not another file. */
    char path[2200];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, longstr('p', 600));
    CHECK_INT(config_set(cfg, "modal_config", path, e2, sizeof(e2)), RC_OK);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "modal_config") != NULL);
    CHECK_INT(config_set(cfg, "modal_config", "", e2, sizeof(e2)), RC_OK);
    (void)setenv("MODAL_CONFIG_PATH", path, 1);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "MODAL_CONFIG_PATH") != NULL);
    clear_env();
    const char *home = getenv("HOME");
    char saved[512] = "";
    if (home != NULL)
        (void)snprintf(saved, sizeof(saved), "%s", home);
    (void)setenv("HOME", longstr('h', 505), 1); /* + "/.modal.toml" = 517 > 511 */
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "HOME") != NULL);
    if (saved[0] != '\0')
        (void)setenv("HOME", saved, 1);
    else
        (void)unsetenv("HOME");
    CHECK_INT(config_set(cfg, "modal_config", toml, e2, sizeof(e2)), RC_OK);

    /* The instance tag too. */
    CHECK_INT(config_set(cfg, "instance", longstr('i', 100), e2, sizeof(e2)), RC_OK);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "instance") != NULL);
    CHECK_INT(config_set(cfg, "instance", "lab-7", e2, sizeof(e2)), RC_OK);
    CHECK_INT(modal_settings_load(cfg, &s, err, sizeof(err)), RC_OK);
    CHECK_STR(s.instance, "lab-7");
}

int
main(void)
{
    struct config cfg;
    char err[200];

    (void)snprintf(dir, sizeof(dir), "/tmp/labbox-modalset.XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    (void)snprintf(toml, sizeof(toml), "%s/modal.toml", dir);
    REQUIRE(check_write_file(toml, "[default]\n"
                                   "token_id = \"ak-default\"\n"
                                   "token_secret = \"as-default\"\n"
                                   "[work]\n"
                                   "token_id = \"ak-work\"\n"
                                   "token_secret = \"as-work\"\n"
                                   "server_url = \"http://127.0.0.1:9000/\"\n"
                                   "environment = \"main\"\n"
                                   "active = true\n"));
    REQUIRE(config_init(&cfg) == RC_OK);
    REQUIRE(config_set(&cfg, "modal_config", toml, err, sizeof(err)) == RC_OK);
    clear_env();

    test_sources(&cfg);
    test_too_long(&cfg);

    config_fini(&cfg);
    char path[160];
    (void)snprintf(path, sizeof(path), "%s/empty.toml", dir);
    (void)unlink(path);
    (void)unlink(toml);
    (void)rmdir(dir);
    return check_done("modal_settings");
}
