/* rerun: POST /api/jobs/<id>/rerun: a new job with the inputs of an existing one (hard links,
 * never a second upload) and the params of the request body, or the old job's when the body is
 * empty; the params pass the same checks as an upload's (core/intake). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/agent.h"
#include "core/intake.h"
#include "defaults.h"
#include "log.h"

/* read_params: the request body (at most PARAMS_MAX_BYTES) into *out (caller frees; NULL when
 * the body is empty). false after answering. */
static bool
read_params(struct req *r, char **out, size_t *out_len)
{
    char *buf = malloc(PARAMS_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t n = 1;
    *out = NULL;
    *out_len = 0;
    while (buf != NULL && n > 0 && len <= PARAMS_MAX_BYTES) {
        n = req_read(r, buf + len, PARAMS_MAX_BYTES + 1 - len);
        len += n > 0 ? (size_t)n : 0;
    }
    if (buf == NULL || n < 0) {
        free(buf);
        if (n >= 0)
            api_internal(r);
        return false; /* a client gone away gets no answer */
    }
    if (len > PARAMS_MAX_BYTES) {
        free(buf);
        resp_problem(r, PROBLEM_BAD_REQUEST, NULL, NULL, "params is larger than %d bytes",
                     PARAMS_MAX_BYTES);
        return false;
    }
    buf[len] = '\0';
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    *out_len = len;
    return true;
}

/* Is params.json one of the old job's uploaded files (it came without params)? */
static bool
params_is_input(const struct job *job)
{
    for (size_t i = 0; i < job->ninputs; i++)
        if (jobstore_input_is_reserved(job->inputs[i].name))
            return true;
    return false;
}

/* stage: the old job's inputs (and its params, unless the body brought new ones) into a new
 * stage, through intake's params check. RC_OK, or an error (in->err set for a refusal). */
static enum rc
stage(struct api *api, struct intake *in, int old_dfd, const struct job *old, char *params,
      size_t len)
{
    char *old_params = NULL;
    enum rc rc = jobstore_stage_begin(api->js, in->stage);
    if (rc == RC_OK)
        rc = jobstore_stage_link_inputs(in->stage, old_dfd, !params_is_input(old));
    for (size_t i = 0; rc == RC_OK && i < old->ninputs; i++)
        rc = jobstore_job_add_input(in->job, old->inputs[i].name, old->inputs[i].size,
                                    old->inputs[i].type, old->inputs[i].sha256);
    if (rc == RC_OK && params == NULL && !params_is_input(old)) {
        rc = jobstore_params_read(old_dfd, &old_params, &len);
        params = old_params;
        if (rc == RC_NOTFOUND)
            rc = RC_OK; /* the old job had none: neither has the new one */
    }
    if (rc == RC_OK && params != NULL)
        rc = intake_params(in, params, len);
    free(old_params);
    return rc;
}

void
api_rerun_job(struct api *api, struct req *r, const struct api_args *a)
{
    int dfd = -1;
    struct job old, job;
    struct jobstore_stage st = {.dirfd = -1, .inputs_fd = -1};
    struct sched_ticket ticket;
    struct pschema *schema = NULL;
    struct intake in;
    char *params = NULL, why[PSCHEMA_DETAIL_MAX + 128];
    size_t len = 0;
    bool reserved = false;
    jobstore_job_init(&job);
    intake_init(&in, r->cfg, NULL, &st, &job);
    if (!api_load_job(api, r, a->id, &dfd, &old))
        return;
    if (!read_params(r, &params, &len) || !api_room_for_job(api, r))
        goto out;
    /* The same queue room and quotas as an upload of these files. */
    uint64_t bytes = jobstore_input_bytes(&old) + len;
    enum jobindex_verdict v = scheduler_reserve(api->sched, r->cfg, &r->who, bytes, &ticket);
    if (v != JOBINDEX_OK) {
        api_answer_refusal(r, v, ticket.retry_after, 0);
        goto out;
    }
    reserved = true;
    if (agent_schema_load(r->cfg, &schema, why, sizeof(why)) != RC_OK) {
        log_err("the agent's parameter schema is unusable: %s", why);
        api_internal(r);
        goto out;
    }
    in.schema = schema;
    enum rc rc = stage(api, &in, dfd, &old, params, len);
    v = rc == RC_OK && in.err.problem == INTAKE_NONE ? scheduler_admit(api->sched, &ticket, bytes)
                                                     : JOBINDEX_OK;
    if (in.err.problem != INTAKE_NONE) {
        log_info("re-run of job=%s refused: %s: %s", a->id, intake_problem_code(in.err.problem),
                 in.err.detail);
        api_answer_intake(r, &in.err);
    } else if (v != JOBINDEX_OK) {
        api_answer_refusal(r, v, ticket.retry_after, bytes);
    } else if (rc != RC_OK || api_publish_job(api, r, &st, &job, &ticket) != RC_OK) {
        api_internal(r);
    } else {
        reserved = false; /* the ticket went to the new job */
        log_info("job=%s created: a re-run of job=%s", job.id, a->id);
        api_answer_created(api, r, &job);
    }
out:
    jobstore_stage_abort(api->js, &st);
    if (reserved)
        scheduler_release(api->sched, &ticket);
    pschema_free(schema);
    free(params);
    jobstore_job_fini(&job);
    jobstore_job_fini(&old);
    if (dfd >= 0)
        close(dfd);
}
