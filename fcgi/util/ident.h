/* ident: who a process or a named user is (uid, groups), and what the permission bits of a
 * file let them do. `labbox doctor` asks this for labbox's own user and for nginx's. */
#ifndef LABBOX_IDENT_H
#define LABBOX_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "rc.h"

#define IDENT_GROUPS_MAX 128 /* supplementary groups kept (a user with more is cut there) */

struct ident {
    char name[64]; /* the user's name, or "uid N" when it has none */
    uid_t uid;
    gid_t gid;                      /* the primary group */
    gid_t groups[IDENT_GROUPS_MAX]; /* supplementary groups, the primary one included */
    size_t ngroups;
};

/* ident_self: this process's effective uid and gid and its supplementary groups. */
enum rc ident_self(struct ident *out) LB_MUST_CHECK;
/* ident_user: the user called name with the groups it gets at login (getgrouplist).
 * RC_NOTFOUND for an unknown user. */
enum rc ident_user(const char *name, struct ident *out) LB_MUST_CHECK;
/* ident_group: the gid of the group called name; RC_NOTFOUND for an unknown group. */
enum rc ident_group(const char *name, gid_t *out) LB_MUST_CHECK;
/* ident_group_name: the name of gid into buf ("gid N" when it has none); returns buf. */
const char *ident_group_name(gid_t gid, char *buf, size_t len);
/* ident_user_name: the name of uid into buf ("uid N" when it has none); returns buf. */
const char *ident_user_name(uid_t uid, char *buf, size_t len);

/* ident_in_group: is gid id's primary or a supplementary group? Pure. */
bool ident_in_group(const struct ident *id, gid_t gid);
/* ident_may: do st's owner, group and permission bits let id do want (R_OK, W_OK, X_OK
 * bits)? uid 0 may do anything but execute a file no one may execute. ACLs and capabilities
 * other than root's are not considered. Pure. */
bool ident_may(const struct ident *id, const struct stat *st, int want);
/* ident_reach: may id search every directory from / down to path's parent, and do want on
 * path itself (want 0: only reach it)? When not, the path that stops it goes to blocked
 * (len bytes) and errno says why (EACCES, or what stat said). Symlinks are followed. */
bool ident_reach(const struct ident *id, const char *path, int want, char *blocked, size_t len);

#endif
