/* test_router: the route table's matching: ids, rests, trailing slashes, HEAD, 405's Allow. */
#include <string.h>

#include "api/api.h"
#include "check.h"

#define ID "abcdefghijklmnopqrstuvwxya"

static const char *
route(const char *method, const char *path, struct api_args *a, char *allow)
{
    const struct api_route *rt = api_route_find(method, path, a, allow, 96);
    return rt ? rt->pattern : NULL;
}

int
main(void)
{
    struct api_args a;
    char allow[96];
    CHECK_STR(route("GET", "/api/health", &a, allow), "health");
    CHECK_STR(route("HEAD", "/api/health", &a, allow), "health");
    CHECK_STR(route("POST", "/api/jobs", &a, allow), "jobs");
    CHECK_STR(route("POST", "/api/jobs/", &a, allow), "jobs");
    CHECK_STR(route("GET", "/api/jobs", &a, allow), "jobs");
    CHECK_STR(route("HEAD", "/api/jobs/", &a, allow), "jobs");
    CHECK_STR(route("GET", "/api/jobs/" ID, &a, allow), "jobs/:id");
    CHECK_STR(a.id, ID);
    CHECK_STR(route("DELETE", "/api/jobs/" ID, &a, allow), "jobs/:id");
    CHECK_STR(route("GET", "/api/jobs/" ID "/outputs", &a, allow), "jobs/:id/outputs");
    CHECK_STR(route("GET", "/api/jobs/" ID "/outputs/", &a, allow), "jobs/:id/outputs");
    CHECK_STR(route("GET", "/api/jobs/" ID "/outputs.zip", &a, allow), "jobs/:id/outputs.zip");
    CHECK_STR(route("HEAD", "/api/jobs/" ID "/events", &a, allow), "jobs/:id/events");

    /* The rest of an output path, as sent (a trailing slash stays). */
    CHECK_STR(route("GET", "/api/jobs/" ID "/outputs/a/b.csv", &a, allow), "jobs/:id/outputs/*");
    CHECK_INT(a.rest_len, 7);
    CHECK(strncmp(a.rest, "a/b.csv", 7) == 0);
    CHECK_STR(route("GET", "/api/jobs/" ID "/outputs/a/", &a, allow), "jobs/:id/outputs/*");
    CHECK_INT(a.rest_len, 2);

    /* 404: nothing has the path. */
    CHECK(route("GET", "/api/jobs/short", &a, allow) == NULL);
    CHECK_STR(allow, "");
    CHECK(route("GET", "/api/nothing", &a, allow) == NULL);
    CHECK(route("GET", "/other", &a, allow) == NULL);
    CHECK(route("GET", "/api/jobs/" ID "/logs/x", &a, allow) == NULL);
    CHECK(route("GET", "/api/jobs/" ID "//logs", &a, allow) == NULL);
    CHECK(route("GET", "/api/healthx", &a, allow) == NULL);

    /* 405: the path exists with other methods. */
    CHECK(route("PUT", "/api/jobs/" ID, &a, allow) == NULL);
    CHECK_STR(allow, "GET, HEAD, DELETE");
    CHECK(route("PUT", "/api/jobs", &a, allow) == NULL);
    CHECK_STR(allow, "POST, GET, HEAD");
    CHECK(route("DELETE", "/api/jobs/" ID "/cancel", &a, allow) == NULL);
    CHECK_STR(allow, "POST");
    CHECK(route("POST", "/api/health", &a, allow) == NULL);
    CHECK_STR(allow, "GET, HEAD");

    /* Problem codes are stable. */
    CHECK_STR(problem_code(PROBLEM_QUEUE_FULL), "queue_full");
    CHECK_STR(problem_code(PROBLEM_USER_QUOTA), "user_quota");
    CHECK_INT(problem_status(PROBLEM_USER_QUOTA), 429);
    CHECK_STR(problem_code(PROBLEM_UNAUTHORIZED), "unauthorized");
    CHECK_INT(problem_status(PROBLEM_UNAUTHORIZED), 401);
    CHECK_INT(problem_status(PROBLEM_FORBIDDEN), 403);
    CHECK_INT(problem_status(PROBLEM_TOO_MANY_STREAMS), 503);
    CHECK_INT(problem_status(PROBLEM__MAX), 500);
    return check_done("router");
}
