/* router: the route table of the API and the one entry point, api_dispatch.
 *
 * A route is a method, a pattern of path segments below /api/ and a handler. Pattern
 * segments are literals, ":id" (a segment of a job id's length; the handler checks it) or a
 * final "*" (the rest of the path, one or more segments, kept as sent). One trailing slash is
 * otherwise ignored. GET
 * routes answer HEAD too (the response layer sends no body). A path that some route matches
 * with another method answers 405 with Allow; anything else is 404.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "defaults.h"

static const struct api_route routes[] = {
    {"GET", "health", api_health},
    {"GET", "limits", api_limits},
    {"GET", "metrics", api_metrics},
    {"GET", "agent", api_agent},
    {"POST", "jobs", api_create_job},
    {"GET", "jobs", api_list_jobs},
    {"GET", "jobs/:id", api_get_job},
    {"DELETE", "jobs/:id", api_delete_job},
    {"GET", "jobs/:id/logs", api_get_logs},
    {"GET", "jobs/:id/events", api_events},
    {"POST", "jobs/:id/cancel", api_cancel_job},
    {"POST", "jobs/:id/rerun", api_rerun_job},
    {"GET", "jobs/:id/outputs", api_list_outputs},
    {"GET", "jobs/:id/outputs.zip", api_get_zip},
    {"GET", "jobs/:id/outputs/*", api_get_output},
    {"GET", "jobs/:id/inputs.zip", api_get_inputs_zip},
    {"GET", "jobs/:id/inputs/*", api_get_input},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* One segment of s up to '/' or the end: its length. */
static size_t
seglen(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash ? (size_t)(slash - s) : strlen(s);
}

bool
api_route_match(const char *pattern, const char *path, struct api_args *out)
{
    memset(out, 0, sizeof(*out));
    size_t plen = strlen(path);
    if (plen > 0 && path[plen - 1] == '/')
        plen--; /* one trailing slash is ignored */
    const char *p = pattern, *s = path, *end = path + plen, *full = path + strlen(path);
    for (;;) {
        size_t pl = seglen(p);
        if (pl == 1 && p[0] == '*') {
            if (s >= end)
                return false;
            out->rest = s; /* the rest as sent: a trailing slash is part of a path */
            out->rest_len = (size_t)(full - s);
            return true;
        }
        size_t sl = seglen(s);
        if (s + sl > end)
            sl = (size_t)(end - s);
        if (pl == 3 && strncmp(p, ":id", 3) == 0) {
            if (sl != ID_LEN)
                return false;
            memcpy(out->id, s, ID_LEN);
            out->id[ID_LEN] = '\0';
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return false;
        }
        p += pl;
        s += sl;
        if (*p == '\0')
            return s == end;
        if (s >= end || *s != '/')
            return false;
        p++;
        s++;
    }
}

static bool
method_fits(const struct api_route *rt, const char *method)
{
    return strcmp(rt->method, method) == 0 ||
           (strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

const struct api_route *
api_route_find(const char *method, const char *path, struct api_args *out, char *allow,
               size_t allowlen)
{
    size_t used = 0;
    if (allowlen > 0)
        allow[0] = '\0';
    if (strncmp(path, "/api/", 5) != 0)
        return NULL;
    for (size_t i = 0; i < NROUTES; i++) {
        struct api_args args;
        if (!api_route_match(routes[i].pattern, path + 5, &args))
            continue;
        if (method_fits(&routes[i], method)) {
            *out = args;
            return &routes[i];
        }
        bool get = strcmp(routes[i].method, "GET") == 0;
        int k = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "",
                         routes[i].method, get ? ", HEAD" : "");
        if (k > 0 && (size_t)k < allowlen - used)
            used += (size_t)k;
    }
    return NULL;
}

void
api_dispatch(struct api *api, struct req *r)
{
    struct api_args args;
    char allow[96], hdr[128];
    if (!api_identify(api, r))
        return; /* answered 401 */
    const struct api_route *rt = api_route_find(r->method, r->path, &args, allow, sizeof(allow));
    if (rt != NULL) {
        /* The rest of the path as a string of its own (it ends the path, bar a slash). */
        char rest[OUTPUT_PATH_MAX * 3 + 1];
        if (args.rest != NULL) {
            if (args.rest_len >= sizeof(rest)) {
                resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "no such job or resource");
                return;
            }
            memcpy(rest, args.rest, args.rest_len);
            rest[args.rest_len] = '\0';
            args.rest = rest;
        }
        rt->fn(api, r, &args);
    } else if (allow[0] != '\0') {
        (void)snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow); /* fits: 96 < 128 - 9 */
        resp_problem(r, PROBLEM_METHOD_NOT_ALLOWED, hdr, NULL,
                     "this resource does not answer %.16s", r->method);
    } else {
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL, "no such job or resource");
    }
}
