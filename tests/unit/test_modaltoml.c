/* test_modaltoml: .modal.toml parsing and profile selection. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "parse/modaltoml.h"

static enum rc
sel(const char *text, const char *want, struct modaltoml_profile *p, bool *found, char *err)
{
    return modaltoml_select(text, strlen(text), want, p, found, err, 200);
}

int
main(void)
{
    struct modaltoml_profile p;
    bool found = false;
    char err[200];
    const char *file = "# written by modal token set\n"
                       "[default]\n"
                       "token_id = \"ak-default\"\n"
                       "token_secret = \"as-default\"\n"
                       "\n"
                       "[work]   # comment after a header\n"
                       "token_id = \"ak-work\"\r\n"
                       "token_secret = 'as-work\\literal'\n"
                       "server_url = \"http://127.0.0.1:9000\"\n"
                       "environment = \"main\"\n"
                       "image_builder_version = \"2025.06\"\n"
                       "active = true\n"
                       "unknown_key = 42\n"
                       "[\"quoted name\"]\n"
                       "token_id = \"ak-q\\u00e9\\t\\\"x\\\"\"\n"
                       "active = false\n";

    CHECK_INT(sel(file, NULL, &p, &found, err), RC_OK);
    CHECK(found);
    CHECK_STR(p.name, "work");
    CHECK_STR(p.token_id, "ak-work");
    CHECK_STR(p.token_secret, "as-work\\literal");
    CHECK_STR(p.server_url, "http://127.0.0.1:9000");
    CHECK_STR(p.environment, "main");
    CHECK_STR(p.image_builder_version, "2025.06");
    CHECK(p.active);

    CHECK_INT(sel(file, "default", &p, &found, err), RC_OK);
    CHECK(found);
    CHECK_STR(p.token_id, "ak-default");
    CHECK_STR(p.server_url, "");
    CHECK_INT(sel(file, "quoted name", &p, &found, err), RC_OK);
    CHECK_STR(p.token_id, "ak-q\xc3\xa9\t\"x\"");
    CHECK_INT(sel(file, "nope", &p, &found, err), RC_NOTFOUND);
    CHECK(!found);
    CHECK(strstr(err, "nope") != NULL);

    /* No active table: [default] is used; without it nothing is. */
    CHECK_INT(sel("[a]\ntoken_id=\"x\"\n[default]\ntoken_id = \"d\"\n", NULL, &p, &found, err),
              RC_OK);
    CHECK(found);
    CHECK_STR(p.token_id, "d");
    CHECK_INT(sel("[a]\ntoken_id=\"x\"\n", NULL, &p, &found, err), RC_OK);
    CHECK(!found);
    CHECK_INT(sel("", NULL, &p, &found, err), RC_OK);
    CHECK(!found);
    /* The first active table wins. */
    CHECK_INT(sel("[a]\nactive=true\ntoken_id=\"1\"\n[b]\nactive=true\ntoken_id=\"2\"\n", NULL, &p,
                  &found, err),
              RC_OK);
    CHECK_STR(p.token_id, "1");

    /* Errors name the line; no secret leaks into them. */
    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"[a]\ntoken_id = \"unterminated\n", "line 2: unterminated string"},
        {"[a]\ntoken_secret = \"as-SECRET\" trailing\n", "line 2: text after value"},
        {"[a\n", "line 1: expected ']'"},
        {"[a.b]\n", "dotted table"},
        {"[[a]]\n", "arrays of tables"},
        {"[a]\nx.y = 1\n", "dotted keys"},
        {"[a]\nkey\n", "expected '='"},
        {"[a]\nkey = [1, 2]\n", "unsupported value"},
        {"[a]\nkey = \"\"\"multi\"\"\"\n", "multi-line"},
        {"[a]\nactive = \"yes\"\n", "active must be"},
        {"[a]\ntoken_id = true\n", "expected a string"},
        {"[a]\nkey = \"bad \\q escape\"\n", "bad escape"},
        {"[a]\nkey = \"\\uD800\"\n", "line 2"},
        {"[]\n", "empty or invalid table name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(sel(bad[i].text, NULL, &p, &found, err), RC_BADREQ);
        if (strstr(err, bad[i].needle) == NULL)
            check_fail(__FILE__, __LINE__, "error text", "case %zu: '%s' lacks '%s'", i, err,
                       bad[i].needle);
        CHECK(strstr(err, "SECRET") == NULL);
        CHECK(!found);
    }
    /* A value too long for its field. */
    char longv[600];
    memset(longv, 'a', sizeof(longv));
    char text[800];
    (void)snprintf(text, sizeof(text), "[a]\ntoken_id = \"%.*s\"\n", 400, longv);
    CHECK_INT(sel(text, NULL, &p, &found, err), RC_BADREQ);
    CHECK(strstr(err, "too long") != NULL);
    /* Oversized input. */
    CHECK_INT(modaltoml_select("", MODALTOML_MAX_BYTES + 1, NULL, &p, &found, err, sizeof(err)),
              RC_TOOBIG);
    return check_done("modaltoml");
}
