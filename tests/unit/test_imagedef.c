/* test_imagedef: image definitions from a Dockerfile, requirements.txt and extra instructions;
 * refusals name their source; hashes change with the definition and the salt only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse/imagedef.h"

static enum rc
build(struct imagedef *d, const char *dockerfile, const char *req, const char *extra, char *err)
{
    return imagedef_build(d, "python:3.12-slim", dockerfile, dockerfile ? strlen(dockerfile) : 0,
                          req, req ? strlen(req) : 0, extra, err, 200);
}

static void
test_plain_and_requirements(void)
{
    struct imagedef d;
    char err[200] = "";
    CHECK_INT(build(&d, NULL, NULL, NULL, err), RC_OK);
    CHECK_INT(d.n_commands, 1);
    CHECK_STR(d.commands[0], "FROM python:3.12-slim");
    CHECK(d.plain);
    CHECK_INT(d.n_files, 0);
    imagedef_fini(&d);

    /* As Modal's Python SDK builds Image.pip_install_from_requirements. */
    CHECK_INT(build(&d, NULL, "pandas==2.2.2\nscipy\n", "[\"ENV MPLBACKEND=Agg\"]", err), RC_OK);
    REQUIRE_VOID(d.n_commands == 4);
    CHECK_STR(d.commands[1], "COPY /.requirements.txt /.requirements.txt");
    CHECK_STR(d.commands[2], "RUN python -m pip install -r /.requirements.txt");
    CHECK_STR(d.commands[3], "ENV MPLBACKEND=Agg");
    CHECK(!d.plain);
    REQUIRE_VOID(d.n_files == 1);
    CHECK_STR(d.files[0].name, "/.requirements.txt");
    CHECK_MEM(d.files[0].data, d.files[0].len, "pandas==2.2.2\nscipy\n", 20);
    char *text = imagedef_dockerfile(&d);
    CHECK_STR(text, "FROM python:3.12-slim\nCOPY /.requirements.txt /.requirements.txt\n"
                    "RUN python -m pip install -r /.requirements.txt\nENV MPLBACKEND=Agg\n");
    free(text);
    imagedef_fini(&d);
}

static void
test_dockerfile(void)
{
    struct imagedef d;
    char err[200] = "";
    const char *df = "# syntax=docker/dockerfile:1\n"
                     "\n"
                     "FROM debian:12   \n"
                     "RUN apt-get update && \\\n"
                     "    # a comment inside\n"
                     "    apt-get install -y python3-pandas\r\n"
                     "ENV A=1\n"
                     "run echo lower-case keywords are fine";
    CHECK_INT(build(&d, df, "ignored\n", NULL, err), RC_OK);
    REQUIRE_VOID(d.n_commands == 4);
    CHECK_STR(d.commands[0], "FROM debian:12");
    CHECK_STR(d.commands[1], "RUN apt-get update && apt-get install -y python3-pandas");
    CHECK_STR(d.commands[2], "ENV A=1");
    CHECK_STR(d.commands[3], "run echo lower-case keywords are fine");
    CHECK_INT(d.n_files, 0); /* the Dockerfile decides; requirements.txt is not used */
    CHECK(!d.plain);
    imagedef_fini(&d);

    static const struct {
        const char *df, *extra, *want;
    } bad[] = {
        {"RUN x\n", NULL, "line 1: the first instruction must be FROM"},
        {"FROM a\nFROM b\n", NULL, "line 2: one stage only"},
        {"FROM a\nCOPY req.txt /\n", NULL, "line 2: COPY and ADD are not supported"},
        {"FROM a\nadd x /\n", NULL, "COPY and ADD"},
        {"FROM a\nRUN cat <<EOF\nhello\nEOF\n", NULL, "line 3: not a Dockerfile instruction"},
        {"# only comments\n\n", NULL, "no instructions"},
        {"FROM a\n", "{\"x\":1}", "expected a JSON array"},
        {"FROM a\n", "[\"RUN ok\", 3]", "item 2: expected a non-empty string"},
        {"FROM a\n", "[\"FROM b\"]", "item 1: one stage only"},
        {"FROM a\n", "[\"RUN a\\nRUN b\"]", "item 1: a control character"},
        {"FROM a\n", "[\"ADD x /\"]", "COPY and ADD"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(build(&d, bad[i].df, NULL, bad[i].extra, err), RC_BADREQ);
        if (strstr(err, bad[i].want) == NULL)
            check_fail(__FILE__, __LINE__, "error text", "case %zu: '%s' lacks '%s'", i, err,
                       bad[i].want);
        imagedef_fini(&d);
    }
    /* Extra instructions alone: no FROM of their own. */
    CHECK_INT(build(&d, NULL, NULL, "[\"FROM x\"]", err), RC_BADREQ);
    CHECK(strstr(err, "no FROM here") != NULL || strstr(err, "one stage only") != NULL);
    imagedef_fini(&d);
    CHECK_INT(imagedef_check_extra("[\"RUN pip install pandas\"]", err, sizeof(err)), RC_OK);
    CHECK_INT(imagedef_check_extra("", err, sizeof(err)), RC_OK);
    CHECK_INT(imagedef_check_extra("[\"COPY a b\"]", err, sizeof(err)), RC_BADREQ);
    CHECK_INT(imagedef_check_extra("RUN x", err, sizeof(err)), RC_BADREQ);
}

static void
test_hash(void)
{
    struct imagedef a, b;
    char err[200], ha[65], hb[65], hc[65];
    CHECK_INT(build(&a, NULL, "pandas\n", NULL, err), RC_OK);
    CHECK_INT(build(&b, NULL, "pandas\n", NULL, err), RC_OK);
    imagedef_hash(&a, "2025.06", ha);
    imagedef_hash(&b, "2025.06", hb);
    CHECK_INT(strlen(ha), 64);
    CHECK_STR(ha, hb);
    imagedef_hash(&a, "2024.10", hc);
    CHECK(strcmp(ha, hc) != 0); /* another builder version is another image */
    imagedef_fini(&b);
    CHECK_INT(build(&b, NULL, "pandas\nscipy\n", NULL, err), RC_OK);
    imagedef_hash(&b, "2025.06", hb);
    CHECK(strcmp(ha, hb) != 0); /* the requirements' bytes count */
    imagedef_fini(&b);
    CHECK_INT(build(&b, NULL, NULL, NULL, err), RC_OK);
    imagedef_hash(&b, "2025.06", hb);
    CHECK(strcmp(ha, hb) != 0);
    imagedef_fini(&a);
    imagedef_fini(&b);
}

int
main(void)
{
    test_plain_and_requirements();
    test_dockerfile();
    test_hash();
    return check_done("imagedef");
}
