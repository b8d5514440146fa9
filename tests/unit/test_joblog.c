/* test_joblog: record format, the cap, and recovery of stream positions from log.jsonl. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check.h"
#include "jobs/joblog.h"
#include "util/fsutil.h"

static char *
slurp(int dfd, size_t *len)
{
    char *s = NULL;
    if (fs_read_all(dfd, "log.jsonl", 1 << 20, &s, len) != RC_OK)
        return NULL;
    return s;
}

int
main(void)
{
    char dir[] = "/tmp/test_joblog.XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    struct joblog jl;
    CHECK_INT(joblog_open(&jl, openat(dfd, "log.jsonl", O_WRONLY | O_APPEND | O_CREAT, 0644), 400),
              RC_OK);
    CHECK_INT(joblog_append(&jl, JOBLOG_STDOUT, "hello \"world\" </script>", 23, 24), RC_OK);
    CHECK_INT(joblog_append(&jl, JOBLOG_STDERR, "oops", 4, 5), RC_OK);
    CHECK_INT(joblog_append(&jl, JOBLOG_STDOUT, "two", 3, 28), RC_OK);
    CHECK_INT(joblog_system(&jl, "state: %s", "running"), RC_OK);
    size_t len = 0;
    char *text = slurp(dfd, &len);
    REQUIRE(text != NULL);
    CHECK_INT(len, jl.size);
    /* Each line is one JSON object with t, stream, line (and pos for agent streams). */
    int lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(l);
        CHECK(o != NULL);
        json_object *v;
        CHECK(json_object_object_get_ex(o, "t", &v));
        CHECK(json_object_object_get_ex(o, "stream", &v));
        if (lines == 0) {
            json_object_object_get_ex(o, "line", &v);
            CHECK_STR(json_object_get_string(v), "hello \"world\" </script>");
            CHECK(strstr(l, "<\\/script>") == NULL); /* no slash escaping */
        }
        if (lines == 3)
            CHECK(!json_object_object_get_ex(o, "pos", &v));
        json_object_put(o);
        lines++;
    }
    CHECK_INT(lines, 4);
    free(text);

    /* Positions come back from the last record of each stream. */
    uint64_t pos[2];
    int rw = openat(dfd, "log.jsonl", O_RDWR);
    REQUIRE(rw >= 0);
    CHECK_INT(joblog_recover_positions(rw, pos), RC_OK);
    CHECK_INT(pos[0], 28);
    CHECK_INT(pos[1], 5);

    /* The cap: agent records stop, a system note still fits. */
    char big[200];
    memset(big, 'x', sizeof(big));
    enum rc rc = RC_OK;
    for (int i = 0; i < 10 && rc == RC_OK; i++)
        rc = joblog_append(&jl, JOBLOG_STDOUT, big, sizeof(big), 100);
    CHECK_INT(rc, RC_TOOBIG);
    CHECK(jl.full);
    CHECK(jl.size <= 400);
    CHECK_INT(joblog_system(&jl, "log limit reached"), RC_OK);

    /* A torn last line (a crash mid-write) is cut away by recovery. */
    int fd = openat(dfd, "log.jsonl", O_WRONLY | O_APPEND);
    CHECK(write(fd, "{\"t\":1,\"stream\":\"stdout\",\"line\":\"tor", 36) == 36);
    close(fd);
    CHECK_INT(joblog_recover_positions(rw, pos), RC_OK);
    close(rw);
    text = slurp(dfd, &len);
    REQUIRE(text != NULL);
    CHECK(len > 0 && text[len - 1] == '\n');
    CHECK(strstr(text, "tor\"") == NULL && strstr(text, "\"tor") == NULL);
    free(text);

    joblog_close(&jl);
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, dir));
    close(dfd);
    return check_done("joblog");
}
