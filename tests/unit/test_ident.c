/* test_ident: what permission bits let a user do, and where a path stops a user. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/ident.h"

static struct stat
file(uid_t uid, gid_t gid, mode_t mode)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_uid = uid;
    st.st_gid = gid;
    st.st_mode = mode;
    return st;
}

static void
test_may(void)
{
    struct ident u = {.name = "u", .uid = 1000, .gid = 1000, .groups = {1000, 33}, .ngroups = 2};
    struct ident root = {.name = "root", .uid = 0, .gid = 0, .groups = {0}, .ngroups = 1};
    struct stat sock = file(999, 33, S_IFSOCK | 0660);
    CHECK(ident_may(&u, &sock, W_OK)); /* through group 33 */
    sock.st_gid = 34;
    CHECK(!ident_may(&u, &sock, W_OK));
    sock.st_mode = S_IFSOCK | 0666;
    CHECK(ident_may(&u, &sock, W_OK)); /* others */
    struct stat own = file(1000, 33, S_IFDIR | 0077);
    CHECK(!ident_may(&u, &own, X_OK)); /* the owner's bits decide, even when others may */
    struct stat dir = file(999, 999, S_IFDIR | 0711);
    CHECK(ident_may(&u, &dir, X_OK));
    CHECK(!ident_may(&u, &dir, R_OK));
    CHECK(!ident_may(&u, &dir, R_OK | X_OK));
    struct stat none = file(999, 999, S_IFREG | 0600);
    CHECK(ident_may(&root, &none, R_OK | W_OK));
    CHECK(!ident_may(&root, &none, X_OK)); /* root executes only what someone may */
    struct stat rootdir = file(999, 999, S_IFDIR | 0700);
    CHECK(ident_may(&root, &rootdir, X_OK));
    CHECK(ident_in_group(&u, 33));
    CHECK(ident_in_group(&u, 1000));
    CHECK(!ident_in_group(&u, 34));
}

static void
test_lookups(void)
{
    struct ident r;
    gid_t g = 1;
    char buf[64];
    CHECK_INT(ident_user("root", &r), RC_OK);
    CHECK_INT(r.uid, 0);
    CHECK(ident_in_group(&r, 0));
    CHECK_INT(ident_user("no-such-user-labbox-test", &r), RC_NOTFOUND);
    CHECK_INT(ident_group("root", &g), RC_OK);
    CHECK_INT(g, 0);
    CHECK_INT(ident_group("no-such-group-labbox-test", &g), RC_NOTFOUND);
    CHECK_STR(ident_user_name(0, buf, sizeof(buf)), "root");
    CHECK_STR(ident_group_name((gid_t)4000000001u, buf, sizeof(buf)), "gid 4000000001");
    CHECK_INT(ident_self(&r), RC_OK);
    CHECK_INT(r.uid, geteuid());
    CHECK(ident_in_group(&r, getegid()));
}

static void
test_reach(void)
{
    char top[] = "/tmp/labbox-ident-XXXXXX", deep[128], leaf[160], blocked[256];
    struct ident other = {.name = "other",
                          .uid = 4000000002u,
                          .gid = 4000000002u,
                          .groups = {4000000002u},
                          .ngroups = 1};
    REQUIRE_VOID(mkdtemp(top) != NULL);
    (void)snprintf(deep, sizeof(deep), "%s/a", top);
    (void)snprintf(leaf, sizeof(leaf), "%s/a/f", top);
    REQUIRE_VOID(mkdir(deep, 0711) == 0);
    FILE *f = fopen(leaf, "w");
    REQUIRE_VOID(f != NULL);
    (void)fclose(f);
    REQUIRE_VOID(chmod(leaf, 0644) == 0 && chmod(top, 0700) == 0);
    /* Another user is stopped at the 0700 top, whatever is below it. */
    CHECK(!ident_reach(&other, leaf, R_OK, blocked, sizeof(blocked)));
    CHECK_STR(blocked, top);
    CHECK_INT(errno, EACCES);
    REQUIRE_VOID(chmod(top, 0711) == 0);
    CHECK(ident_reach(&other, leaf, R_OK, blocked, sizeof(blocked)));
    CHECK(!ident_reach(&other, leaf, W_OK, blocked, sizeof(blocked)));
    CHECK_STR(blocked, leaf);
    CHECK(ident_reach(&other, deep, X_OK, blocked, sizeof(blocked)));
    (void)snprintf(leaf, sizeof(leaf), "%s/a/missing", top);
    CHECK(!ident_reach(&other, leaf, 0, blocked, sizeof(blocked)));
    CHECK_INT(errno, ENOENT);
    CHECK(!ident_reach(&other, "relative/path", 0, blocked, sizeof(blocked)));
    (void)snprintf(leaf, sizeof(leaf), "%s/a/f", top);
    (void)unlink(leaf);
    (void)rmdir(deep);
    (void)rmdir(top);
}

int
main(void)
{
    test_may();
    test_lookups();
    test_reach();
    return check_done("ident");
}
