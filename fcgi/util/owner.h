/* owner: who owns and may change the host paths and groups labbox uses: the group files are
 * given to (the FastCGI socket, the files nginx sends), and the directories where others must
 * not be able to plant anything (sandbox_dir). */
#ifndef LABBOX_OWNER_H
#define LABBOX_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rc.h"

/* owner_group: the gid of group name, which this process must be able to give its files to:
 * a member (its group or a supplementary one), or root when root_may. RC_BADREQ with "key
 * name: why" (and what to do) in err; what says what is given ("the socket"). */
enum rc owner_group(const char *key, const char *name, const char *what, bool root_may, gid_t *out,
                    char *err, size_t errlen) LB_MUST_CHECK;

/* owner_private_dir: path is a directory only user uid controls: not a symbolic link, owned
 * by uid, not writable by group or others; and each directory above it is owned by root or
 * uid and writable by others only with the sticky bit (so nobody else can swap it out). With
 * create, a missing path is made (parents 0755) and it is given mode 0711 (passable for the
 * sandbox uids, not listable); without, a missing path is fine. RC_BADREQ with "key: path why" in
 * err when someone else could control it; RC_IO (errno set, the reason in err) when it cannot be
 * made or reached (a file where a directory should be, no permission): nothing to refuse, but
 * no job can be staged until that is fixed. */
enum rc owner_private_dir(const char *key, const char *path, uid_t uid, bool create, char *err,
                          size_t errlen) LB_MUST_CHECK;

#endif
