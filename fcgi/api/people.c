/* people: who is asking (the web server's user, or the client address behind trusted proxies),
 * the 401 without a user, whose jobs a caller may see, and the 429 of a quota. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse/names.h"
#include "util/netaddr.h"

/* The client's address key into r->who; "unknown" when the web server passed no address. */
static void
identify_address(const struct config *cfg, struct req *r)
{
    struct netaddr_net *nets = NULL;
    size_t n = 0;
    struct netaddr a;
    char err[256];
    r->who.kind = OWNER_ADDRESS;
    /* trusted_proxies was checked at start-up; it is parsed only when there is a header. */
    if (r->forwarded_for != NULL && cfg->trusted_proxies[0] != '\0' &&
        netaddr_parse_nets(cfg->trusted_proxies, &nets, &n, err, sizeof(err)) != RC_OK)
        n = 0;
    if (netaddr_client(r->remote_addr, r->forwarded_for, nets, n, &a) == RC_OK) {
        char key[NETADDR_KEY_MAX];
        netaddr_key(&a, key);
        (void)snprintf(r->who.name, sizeof(r->who.name), "%s", key); /* fits: 64 < 129 */
    } else {
        (void)snprintf(r->who.name, sizeof(r->who.name), "unknown");
    }
    free(nets);
}

bool
api_identify(struct api *api, struct req *r)
{
    const struct config *cfg = r->cfg;
    (void)api;
    const char *why = NULL;
    memset(&r->who, 0, sizeof(r->who));
    r->admin = false;
    switch (config_identity(cfg)) {
    case IDENTITY_NONE:
        return true;
    case IDENTITY_ADDRESS:
        identify_address(cfg, r);
        return true;
    case IDENTITY_REMOTE_USER:
        break;
    }
    const char *u = r->remote_user;
    if (u == NULL || u[0] == '\0') {
        resp_problem(r, PROBLEM_UNAUTHORIZED, NULL, NULL,
                     "sign in first: this server runs jobs for signed-in users only, and the web "
                     "server in front of it named none");
        return false;
    }
    if (names_check_user(span_of(u), sizeof(r->who.name) - 1, &why) != RC_OK) {
        log_info("refused a user name from the web server: %s", why);
        resp_problem(r, PROBLEM_UNAUTHORIZED, NULL, NULL,
                     "the user name the web server passed is not usable: %s", why);
        return false;
    }
    r->who.kind = OWNER_USER;
    memcpy(r->who.name, u, strlen(u) + 1);
    r->admin = config_is_admin(cfg, u);
    return true;
}

bool
api_may_see(const struct api *api, const struct req *r, const struct job *job)
{
    /* Without users, the job id is the permission (a capability URL). */
    if (api->identity != IDENTITY_REMOTE_USER || r->admin)
        return true;
    return jobstore_owner_equal(&job->owner, &r->who);
}

unsigned
api_view(const struct api *api)
{
    return api->identity == IDENTITY_REMOTE_USER ? JOBSTORE_VIEW_OWNER : 0;
}

void
api_answer_refusal(struct req *r, enum jobindex_verdict v, int retry_after, uint64_t bytes)
{
    const struct config *cfg = r->cfg;
    const char *who = r->who.kind == OWNER_USER ? r->who.name : "this address";
    char hdr[48];
    (void)snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", retry_after > 0 ? retry_after : 10);
    switch (v) {
    case JOBINDEX_OK:
        break;
    case JOBINDEX_QUEUE_FULL:
        resp_problem(r, PROBLEM_QUEUE_FULL, NULL, NULL,
                     "too many jobs are waiting; try again shortly");
        break;
    case JOBINDEX_USER_QUEUED:
        resp_problem_with(r, PROBLEM_USER_QUOTA, hdr, "quota", "user_max_queued",
                          "%s has %llu jobs waiting, as many as one may (user_max_queued); try "
                          "again when one has started",
                          who, (unsigned long long)cfg->user_max_queued);
        break;
    case JOBINDEX_USER_BYTES:
        resp_problem_with(r, PROBLEM_USER_QUOTA, hdr, "quota", "user_max_bytes",
                          "the jobs of %s would keep more than %llu bytes (user_max_bytes)%s; "
                          "delete finished jobs, or wait until they expire",
                          who, (unsigned long long)cfg->user_max_bytes,
                          bytes > 0 ? " with this upload" : "");
        break;
    }
}
