/* agent: the operator's agent as labbox describes and checks it (see agent.h). */
#include "core/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "defaults.h"
#include "util/fsutil.h"

enum rc
agent_schema_load(const struct config *cfg, struct pschema **out, char *why, size_t whylen)
{
    char *text = NULL, sub[PSCHEMA_DETAIL_MAX];
    size_t len = 0;
    *out = NULL;
    int dfd = open(cfg->agent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT)
        return RC_OK; /* no agent_dir, so no schema: jobs fail at staging, and say so */
    if (dfd < 0) {
        (void)snprintf(why, whylen, "agent_dir cannot be opened: %s", strerror(errno));
        return RC_IO;
    }
    enum rc rc = fs_read_all(dfd, AGENT_SCHEMA_NAME, SCHEMA_MAX_BYTES, &text, &len);
    close(dfd);
    if (rc == RC_NOTFOUND)
        return RC_OK; /* an agent without parameters to declare */
    if (rc != RC_OK) {
        (void)snprintf(why, whylen, "%s in agent_dir cannot be read%s", AGENT_SCHEMA_NAME,
                       rc == RC_TOOBIG ? ": it is larger than the 256 KiB cap" : "");
        free(text);
        return rc == RC_NOMEM ? RC_NOMEM : RC_IO;
    }
    rc = pschema_compile(text, len, out, sub, sizeof(sub));
    free(text);
    if (rc == RC_BADREQ)
        (void)snprintf(why, whylen, "%s in agent_dir is outside labbox's schema subset: %s",
                       AGENT_SCHEMA_NAME, sub);
    return rc;
}

enum rc
agent_check(const struct config *cfg, char *why, size_t whylen)
{
    struct pschema *s = NULL;
    enum rc rc = agent_schema_load(cfg, &s, why, whylen);
    pschema_free(s);
    return rc;
}
