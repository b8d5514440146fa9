/* joblist: GET /api/jobs: the caller's jobs (everyone's for an admin's ?all=1), newest first,
 * a page at a time (limit, cursor), optionally of one state. The scheduler's index picks the
 * page without reading a directory; only the page's own records are read. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

#define LIST_DEFAULT  20    /* jobs per page without ?limit */
#define LIST_MAX      100   /* the largest ?limit */
#define LIST_SCAN_MAX 10000 /* index entries one page examines at most (a filtered page) */

static void
bad(struct req *r, const char *what)
{
    resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "%s", what);
}

/* The query: limit, cursor, state, all. false after answering 400. */
static bool
parse_query(struct req *r, struct jobindex_page *pg, bool *out_all)
{
    char v[JOBINDEX_CURSOR_MAX];
    enum rc rc = req_query(r, "limit", v, sizeof(v));
    pg->limit = LIST_DEFAULT;
    if (rc != RC_NOTFOUND) {
        char *end = NULL;
        unsigned long n = rc == RC_OK && v[0] >= '1' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;
        if (n < 1 || n > LIST_MAX || end == NULL || *end != '\0') {
            bad(r, "limit must be a whole number from 1 to 100");
            return false;
        }
        pg->limit = n;
    }
    rc = req_query(r, "cursor", v, sizeof(v));
    if (rc != RC_NOTFOUND) {
        if (rc != RC_OK || !jobindex_cursor_parse(v, &pg->cursor_created, pg->cursor_id)) {
            bad(r, "cursor is not one this server gave out (take it from \"next\")");
            return false;
        }
        pg->has_cursor = true;
    }
    rc = req_query(r, "state", v, sizeof(v));
    pg->state = -1;
    if (rc != RC_NOTFOUND) {
        enum job_state st;
        if (rc != RC_OK || !jobstate_parse(v, &st)) {
            bad(r, "state must be queued, staging, running, collecting, succeeded, failed, "
                   "timed_out or canceled");
            return false;
        }
        pg->state = (int)st;
    }
    rc = req_query(r, "all", v, sizeof(v));
    *out_all = rc == RC_OK && strcmp(v, "1") == 0;
    if (rc != RC_NOTFOUND && !*out_all && (rc != RC_OK || strcmp(v, "0") != 0)) {
        bad(r, "all is 1 or 0");
        return false;
    }
    return true;
}

/* The job object of id for the list, or NULL when it is gone or no longer fits the filter. */
static json_object *
list_item(struct api *api, struct req *r, const char *id, int state)
{
    int dfd = -1;
    struct job job;
    json_object *o = NULL;
    jobstore_job_init(&job);
    if (jobstore_open_job(api->js, id, &dfd) == RC_OK && jobstore_load(dfd, &job) == RC_OK &&
        (state < 0 || (int)job.state == state) && api_may_see(api, r, &job)) {
        long pos = job.state == JOB_QUEUED ? scheduler_position(api->sched, id) : -1;
        o = jobstore_public(&job, pos, NULL, api_view(api) | JOBSTORE_VIEW_NO_OUTPUTS,
                            r->cfg->job_ttl);
    }
    jobstore_job_fini(&job);
    if (dfd >= 0)
        close(dfd);
    return o;
}

/* The page's jobs and the cursor to go on (null at the end). */
static json_object *
page_json(struct api *api, struct req *r, const struct jobindex_page *pg, char (*ids)[ID_LEN + 1],
          size_t n, bool more, int64_t next_created, const char *next_id)
{
    json_object *o = json_object_new_object();
    json_object *arr = json_object_new_array();
    bool ok = o != NULL && arr != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *item = list_item(api, r, ids[i], pg->state);
        if (item != NULL && json_object_array_add(arr, item) != 0) {
            json_object_put(item);
            ok = false;
        }
    }
    ok = ok && json_object_object_add(o, "jobs", arr) == 0;
    if (ok)
        arr = NULL;
    char cursor[JOBINDEX_CURSOR_MAX];
    if (more)
        jobindex_cursor_format(next_created, next_id, cursor);
    ok = ok && json_set_str(o, "next", more ? cursor : NULL);
    json_object_put(arr);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

void
api_list_jobs(struct api *api, struct req *r, const struct api_args *a)
{
    struct jobindex_page pg = {.owner_key = NULL, .scan_max = LIST_SCAN_MAX};
    char key[JOBINDEX_KEY_MAX], next_id[ID_LEN + 1] = "";
    int64_t next_created = 0;
    bool all = false, more = false;
    (void)a;
    if (api->identity != IDENTITY_REMOTE_USER) {
        resp_problem(r, PROBLEM_NOT_FOUND, NULL, NULL,
                     "jobs are listed only when the web server names the user (identity = "
                     "remote_user); here a job's link is the permission to see it");
        return;
    }
    if (!parse_query(r, &pg, &all))
        return;
    if (all && !r->admin) {
        resp_problem(r, PROBLEM_FORBIDDEN, NULL, NULL,
                     "only admins (admin_users) may list every job");
        return;
    }
    if (!all) {
        jobindex_owner_key(&r->who, key);
        pg.owner_key = key;
    }
    char(*ids)[ID_LEN + 1] = calloc(pg.limit, sizeof(*ids));
    if (ids == NULL) {
        api_internal(r);
        return;
    }
    size_t n = scheduler_list(api->sched, &pg, ids, &more, &next_created, next_id);
    json_object *o = page_json(api, r, &pg, ids, n, more, next_created, next_id);
    if (o != NULL)
        resp_json(r, 200, o, NULL);
    else
        api_internal(r);
    json_object_put(o);
    free(ids);
}
