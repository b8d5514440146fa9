/* test_nginxconf: the user nginx's workers run as, from its main configuration file. */
#include <string.h>

#include "check.h"
#include "parse/nginxconf.h"

struct tcase {
    const char *text;
    enum rc rc;
    const char *user, *group;
};

static const struct tcase cases[] = {
    /* Debian's /etc/nginx/nginx.conf as shipped (abridged). */
    {"user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n"
     "include /etc/nginx/modules-enabled/*.conf;\nevents {\n\tworker_connections 768;\n}\n"
     "http {\n\tsendfile on;\n\tinclude /etc/nginx/sites-enabled/*;\n}\n",
     RC_OK, "www-data", ""},
    {"user  nginx  nginx ;", RC_OK, "nginx", "nginx"},
    {"# user nobody;\nuser\t'www-data'\t\"web\";\n", RC_OK, "www-data", "web"},
    {"user a\\ b;", RC_OK, "a b", ""},
    {"events { user inner; }\nuser outer;", RC_OK, "outer", ""},
    {"events { }\nhttp { server { location / { } } }\n", RC_NOTFOUND, "", ""},
    {"http { user x; }", RC_NOTFOUND, "", ""},
    {"worker_processes 1; # user x;\n", RC_NOTFOUND, "", ""},
    {"pid a#b; user x;", RC_OK, "x", ""},
    {"", RC_NOTFOUND, "", ""},
    {"user first; user second;", RC_OK, "first", ""},
    {"user;", RC_BADREQ, "", ""},
    {"user a b c;", RC_BADREQ, "", ""},
    {"user \"\";", RC_BADREQ, "", ""},
    {"user www-data", RC_BADREQ, "", ""},
    {"user 'www-data;", RC_BADREQ, "", ""},
    {"user \"a\"b;", RC_BADREQ, "", ""},
    {"http {", RC_BADREQ, "", ""},
    {"}", RC_BADREQ, "", ""},
    {"http { a }", RC_BADREQ, "", ""},
    {"user aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", RC_BADREQ,
     "", ""},
};

int
main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char user[NGINXCONF_NAME_MAX], group[NGINXCONF_NAME_MAX];
        const struct tcase *c = &cases[i];
        CHECK_INT(nginxconf_user(c->text, strlen(c->text), user, group), c->rc);
        CHECK_STR(user, c->user);
        CHECK_STR(group, c->group);
        /* Every prefix parses without reading past it (ASan and valgrind watch). */
        for (size_t n = 0; n < strlen(c->text); n++) {
            enum rc rc = nginxconf_user(c->text, n, user, group);
            CHECK(rc == RC_OK || rc == RC_NOTFOUND || rc == RC_BADREQ);
            CHECK(rc == RC_OK || (user[0] == '\0' && group[0] == '\0'));
        }
    }
    /* A NUL byte inside a word: not a name, and "user\0x" is not the directive (found by
     * fuzz_nginxconf). */
    static const char nul_user[] = "user\t\0\0'www-data';";
    static const char nul_key[] = "user\0x nobody;";
    char user[NGINXCONF_NAME_MAX], group[NGINXCONF_NAME_MAX];
    CHECK_INT(nginxconf_user(nul_user, sizeof(nul_user) - 1, user, group), RC_BADREQ);
    CHECK_STR(user, "");
    CHECK_INT(nginxconf_user(nul_key, sizeof(nul_key) - 1, user, group), RC_NOTFOUND);
    CHECK_STR(user, "");
    return check_done("nginxconf");
}
