/* typer: the types of agent outputs, found by libmagic in a process of its own without any
 * privilege.
 *
 * libmagic parses every output an agent wrote, hostile by assumption. The supervisor holds
 * labbox's capabilities (or is root), so the parsing happens in a child forked from it: the
 * child keeps only its socket, drops to the nobody uid (when the supervisor may change uids),
 * gives up every capability, cannot gain any (no_new_privs), cannot be traced or read by
 * other processes of that uid (not dumpable), and runs under tight rlimits. It opens nothing:
 * the supervisor hands it each file as an open fd over a SOCK_SEQPACKET socket (SCM_RIGHTS)
 * with its name, and reads back the type. A child that dies or takes longer than
 * TYPER_FILE_MS over one file is killed; that file is application/octet-stream and a fresh
 * child types the rest. */
#ifndef LABBOX_TYPER_H
#define LABBOX_TYPER_H

#include <stddef.h>
#include <sys/types.h>

#include "rc.h"

#define TYPER_FILE_MS 10000 /* the longest libmagic may look at one output */

struct typer {
    pid_t pid; /* the child, -1 when none */
    int sock;  /* our end, -1 when none */
};

/* typer_init: an idle typer (the child starts at the first file). */
void typer_init(struct typer *t);
/* typer_type: the type to serve output name (its fd, any offset) as; never fails: a type
 * that cannot be found is application/octet-stream. filetype_init must have run. */
void typer_type(struct typer *t, const char *name, int fd, char *out, size_t outlen);
/* typer_fini: end the child. */
void typer_fini(struct typer *t);

#endif
