/* agent: what labbox knows of the operator's agent beyond running it: its parameter schema,
 * agent_dir/params.schema.json (parse/pschema), for GET /api/agent, the check of every job's
 * params and `labbox check-config`. The file is read when it is needed (it is small), so an
 * agent changed in place is seen at once. */
#ifndef LABBOX_AGENT_H
#define LABBOX_AGENT_H

#include <stddef.h>

#include "config.h"
#include "parse/pschema.h"
#include "rc.h"

#define AGENT_SCHEMA_NAME "params.schema.json" /* in agent_dir */

/* agent_schema_load: the agent's schema into *out (caller frees with pschema_free), or NULL
 * when agent_dir has none. RC_BADREQ when it is outside the subset or not JSON, RC_IO when it
 * cannot be read (also over SCHEMA_MAX_BYTES): why says so (naming the file, never
 * agent_dir's path: the API may log it, labbox check-config prints it); RC_NOMEM. */
enum rc agent_schema_load(const struct config *cfg, struct pschema **out, char *why,
                          size_t whylen) LB_MUST_CHECK;

/* agent_check: is the agent's schema, if it has one, usable? RC_OK, or as agent_schema_load
 * with why saying what is wrong (check-config and serve refuse to go on). */
enum rc agent_check(const struct config *cfg, char *why, size_t whylen) LB_MUST_CHECK;

#endif
