/* ident: users, groups and permission bits (see ident.h). */
#include "util/ident.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NSS_BUF 16384

const char *
ident_user_name(uid_t uid, char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[NSS_BUF];
    if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res != NULL)
        (void)snprintf(buf, len, "%s", res->pw_name);
    else
        (void)snprintf(buf, len, "uid %lu", (unsigned long)uid);
    return buf;
}

const char *
ident_group_name(gid_t gid, char *buf, size_t len)
{
    struct group gr, *res = NULL;
    char tmp[NSS_BUF];
    if (getgrgid_r(gid, &gr, tmp, sizeof(tmp), &res) == 0 && res != NULL)
        (void)snprintf(buf, len, "%s", res->gr_name);
    else
        (void)snprintf(buf, len, "gid %lu", (unsigned long)gid);
    return buf;
}

enum rc
ident_group(const char *name, gid_t *out)
{
    struct group gr, *res = NULL;
    char tmp[NSS_BUF];
    if (getgrnam_r(name, &gr, tmp, sizeof(tmp), &res) != 0 || res == NULL)
        return RC_NOTFOUND;
    *out = res->gr_gid;
    return RC_OK;
}

enum rc
ident_self(struct ident *out)
{
    gid_t all[NGROUPS_MAX];
    memset(out, 0, sizeof(*out));
    out->uid = geteuid();
    out->gid = getegid();
    (void)ident_user_name(out->uid, out->name, sizeof(out->name));
    int n = getgroups(NGROUPS_MAX, all);
    if (n < 0)
        return RC_IO;
    out->groups[out->ngroups++] = out->gid;
    for (int i = 0; i < n && out->ngroups < IDENT_GROUPS_MAX; i++)
        if (all[i] != out->gid)
            out->groups[out->ngroups++] = all[i];
    return RC_OK;
}

enum rc
ident_user(const char *name, struct ident *out)
{
    struct passwd pw, *res = NULL;
    char tmp[NSS_BUF];
    memset(out, 0, sizeof(*out));
    if (getpwnam_r(name, &pw, tmp, sizeof(tmp), &res) != 0 || res == NULL)
        return RC_NOTFOUND;
    (void)snprintf(out->name, sizeof(out->name), "%s", res->pw_name);
    out->uid = res->pw_uid;
    out->gid = res->pw_gid;
    int n = IDENT_GROUPS_MAX;
    if (getgrouplist(res->pw_name, res->pw_gid, out->groups, &n) < 0)
        n = IDENT_GROUPS_MAX; /* more than fit: the first ones were filled */
    out->ngroups = (size_t)n;
    return RC_OK;
}

bool
ident_in_group(const struct ident *id, gid_t gid)
{
    if (id->gid == gid)
        return true;
    for (size_t i = 0; i < id->ngroups; i++)
        if (id->groups[i] == gid)
            return true;
    return false;
}

bool
ident_may(const struct ident *id, const struct stat *st, int want)
{
    mode_t m = st->st_mode;
    if (id->uid == 0)
        return !(want & X_OK) || S_ISDIR(m) || (m & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
    unsigned shift = st->st_uid == id->uid ? 6 : ident_in_group(id, st->st_gid) ? 3 : 0;
    unsigned bits = (m >> shift) & 7u; /* R_OK 4, W_OK 2, X_OK 1: the same layout */
    return ((unsigned)want & ~bits) == 0;
}

bool
ident_reach(const struct ident *id, const char *path, int want, char *blocked, size_t len)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf) || path[0] != '/') {
        (void)snprintf(blocked, len, "%s", path);
        errno = EINVAL;
        return false;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        bool last = i == n || (c == '/' && i + 1 == n);
        int need = last ? want : X_OK;
        bool ok = stat(buf, &st) == 0;
        if (ok && !ident_may(id, &st, need)) {
            errno = EACCES;
            ok = false;
        }
        if (!ok) {
            (void)snprintf(blocked, len, "%s", buf);
            return false;
        }
        buf[i] = c;
        if (last)
            break;
    }
    return true;
}
