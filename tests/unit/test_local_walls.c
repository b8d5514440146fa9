/* test_local_walls: the local backend's pure decisions: which limits a host can enforce and
 * which are missing, the per-job uid range against host users, the seccomp program (run in a
 * child), bwrap's command line for any length of agent_command. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "sandbox/sandbox_local.h"

static struct config cfg;

static void
reset(void)
{
    config_fini(&cfg);
    char err[256];
    if (config_init(&cfg) != RC_OK || config_finish(&cfg, err, sizeof(err)) != RC_OK)
        abort();
}

static struct local_offer
offer(bool priv, enum cg_mode mode, bool mem, bool pids, bool cpu, bool loop)
{
    struct local_offer o = {
        .priv = priv, .mode = mode, .memory = mem, .pids = pids, .cpu = cpu, .loop = loop};
    (void)snprintf(o.lacks, sizeof(o.lacks), "labbox lacks CAP_SYS_ADMIN");
    o.why[0] = mem ? NULL : "no memory controller";
    o.why[1] = pids ? NULL : "no pids controller";
    o.why[2] = cpu ? NULL : "no cpu controller";
    o.why[3] = loop ? NULL : "no loop devices";
    return o;
}

static void
test_limits(void)
{
    char err[512];
    reset();
    /* Defaults want all four (cpus = 1). */
    CHECK_INT(local_limits_wanted(&cfg), LIMIT_MEMORY | LIMIT_PIDS | LIMIT_CPUS | LIMIT_DISK);
    cfg.cpus_milli = 0;
    CHECK_INT(local_limits_wanted(&cfg), LIMIT_MEMORY | LIMIT_PIDS | LIMIT_DISK);
    cfg.cpus_milli = 1000;

    /* A host that offers everything: nothing missing, no message. */
    struct local_offer o = offer(true, CG_V1, true, true, true, true);
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    o.mode = CG_V2;
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), 0);

    /* Hybrid v2 without memory and pids (this CI host's unified hierarchy). */
    o = offer(true, CG_V2, false, false, true, true);
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), LIMIT_MEMORY | LIMIT_PIDS);
    CHECK(strstr(err, "memory (no memory controller)") != NULL);
    CHECK(strstr(err, "pids (no pids controller)") != NULL);
    CHECK(strstr(err, "allow_unenforced") != NULL);
    /* ... allowed by the operator: runs. */
    CHECK(config_parse_limits("memory, pids", &cfg.unenforced));
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), 0);
    /* ... only one allowed: the other is still missing. */
    CHECK(config_parse_limits("memory", &cfg.unenforced));
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), LIMIT_PIDS);
    CHECK(strstr(err, "memory") == NULL);
    cfg.unenforced = 0;

    /* No cgroups at all: the controllers' flags do not count. */
    o = offer(true, CG_NONE, true, true, true, true);
    CHECK_INT(local_limits_offered(&o), LIMIT_DISK);
    /* Without the capabilities: nothing can be enforced, whatever the probe saw. */
    o = offer(false, CG_V1, true, true, true, true);
    CHECK_INT(local_limits_offered(&o), 0);
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), LIMIT__ALL);
    CHECK(strstr(err, "memory (labbox lacks CAP_SYS_ADMIN)") != NULL);
    /* No loop devices: the disk limit is missing unless allowed. */
    o = offer(true, CG_V1, true, true, true, false);
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), LIMIT_DISK);
    CHECK(strstr(err, "disk (no loop devices)") != NULL);
    CHECK(config_parse_limits("disk", &cfg.unenforced));
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), 0);
    /* cpus = 0 wants no CPU limit: a host without the cpu controller is fine. */
    cfg.unenforced = 0;
    cfg.cpus_milli = 0;
    o = offer(true, CG_V1, true, true, false, true);
    CHECK_INT(local_limits_decide(&cfg, &o, err, sizeof(err)), 0);
    /* A message that does not fit is cut, not overrun. */
    o = offer(false, CG_NONE, false, false, false, false);
    cfg.cpus_milli = 1000;
    char tiny[16];
    CHECK_INT(local_limits_decide(&cfg, &o, tiny, sizeof(tiny)), LIMIT__ALL);
    CHECK_INT(strlen(tiny), sizeof(tiny) - 1);

    CHECK(!config_parse_limits("memory,swap", &cfg.unenforced));
    CHECK(config_parse_limits("", &cfg.unenforced) && cfg.unenforced == 0);
}

static void
test_uid_range(void)
{
    char err[256];
    const char *passwd = "root:x:0:0:root:/root:/bin/bash\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                         "svc:x:200500:200500::/:/bin/false\n";
    const char *group = "root:x:0:\nsvcgrp:x:300010:\n";
    const char *subuid = "alice:100000:65536\nbob:165536:65536\n";
    CHECK_INT(uid_range_check(1879048192, 1024, passwd, group, subuid, subuid, err, sizeof(err)),
              RC_OK);
    /* A user inside the range. */
    CHECK_INT(uid_range_check(200000, 1024, passwd, group, NULL, NULL, err, sizeof(err)),
              RC_BADREQ);
    CHECK(strstr(err, "'svc'") != NULL && strstr(err, "/etc/passwd") != NULL);
    /* The range ends right before it / starts right after it. */
    CHECK_INT(uid_range_check(200000, 500, passwd, group, NULL, NULL, err, sizeof(err)), RC_OK);
    CHECK_INT(uid_range_check(200501, 500, passwd, group, NULL, NULL, err, sizeof(err)), RC_OK);
    CHECK_INT(uid_range_check(200500, 1, passwd, group, NULL, NULL, err, sizeof(err)), RC_BADREQ);
    /* A group. */
    CHECK_INT(uid_range_check(300000, 100, NULL, group, NULL, NULL, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "/etc/group") != NULL);
    /* A subordinate range overlapping at either end. */
    CHECK_INT(uid_range_check(231000, 1000, NULL, NULL, subuid, NULL, err, sizeof(err)), RC_BADREQ);
    CHECK(strstr(err, "'bob'") != NULL && strstr(err, "/etc/subuid") != NULL);
    CHECK_INT(uid_range_check(90000, 10001, NULL, NULL, NULL, subuid, err, sizeof(err)), RC_BADREQ);
    CHECK_INT(uid_range_check(90000, 10000, NULL, NULL, NULL, subuid, err, sizeof(err)), RC_OK);
    CHECK_INT(uid_range_check(231072, 10, NULL, NULL, subuid, NULL, err, sizeof(err)), RC_OK);
    /* nobody. */
    CHECK_INT(uid_range_check(65000, 1000, passwd, NULL, NULL, NULL, err, sizeof(err)), RC_BADREQ);
    /* Comments and malformed lines are no users. */
    CHECK_INT(uid_range_check(5, 10, "#x:x:7:7\nbroken\n:x:\n", NULL, NULL, NULL, err, sizeof(err)),
              RC_OK);
}

/* socket(family) under the program, in a child; the errno (0 if it worked). */
static int
socket_errno(bool network, int family, int type, bool pair)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter prog[LOCAL_SECCOMP_MAX];
        struct sock_fprog fp = {(unsigned short)local_seccomp_program(network, prog), prog};
        int e = 0;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0)
            e = 1000;
        else {
            int sv[2];
            int r = pair ? socketpair(family, type, 0, sv) : socket(family, type, 0);
            e = r < 0 ? errno : 0;
        }
        ssize_t w = write(p[1], &e, sizeof(e));
        _exit(w == sizeof(e) ? 0 : 1);
    }
    close(p[1]);
    int e = -1;
    if (read(p[0], &e, sizeof(e)) != sizeof(e))
        e = -1;
    close(p[0]);
    (void)waitpid(pid, NULL, 0);
    return e;
}

static void
test_seccomp(void)
{
    struct sock_filter prog[LOCAL_SECCOMP_MAX];
    if (local_seccomp_program(false, prog) == 0) {
        printf("# no seccomp program on this architecture\n");
        return;
    }
    CHECK_INT(socket_errno(false, AF_UNIX, SOCK_STREAM, false), 0);
    CHECK_INT(socket_errno(false, AF_UNIX, SOCK_DGRAM, true), 0);
    CHECK_INT(socket_errno(false, AF_INET, SOCK_STREAM, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(false, AF_INET6, SOCK_DGRAM, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(false, AF_VSOCK, SOCK_STREAM, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(false, AF_VSOCK, SOCK_STREAM, true), EAFNOSUPPORT);
    CHECK_INT(socket_errno(false, AF_NETLINK, SOCK_RAW, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(false, AF_PACKET, SOCK_DGRAM, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(true, AF_INET, SOCK_STREAM, false), 0);
    CHECK_INT(socket_errno(true, AF_INET6, SOCK_STREAM, false), 0);
    CHECK_INT(socket_errno(true, AF_UNIX, SOCK_STREAM, true), 0);
    CHECK_INT(socket_errno(true, AF_VSOCK, SOCK_STREAM, false), EAFNOSUPPORT);
    CHECK_INT(socket_errno(true, AF_NETLINK, SOCK_RAW, false), EAFNOSUPPORT);
    /* The family is an int: high bits of the register do not smuggle one through. */
    CHECK_INT(socket_errno(false, (int)(AF_UNIX | 0x10000), SOCK_STREAM, false), EAFNOSUPPORT);
}

static void
test_args(void)
{
    char *argv[302];
    char words[300][8];
    for (int i = 0; i < 300; i++) {
        (void)snprintf(words[i], sizeof(words[i]), "w%d", i);
        argv[i] = words[i];
    }
    argv[300] = NULL;
    struct local_args_in in = {
        .network = true, .tmp_fd = false, .tmp_bytes = 1 << 20, .seccomp = true, .argv = argv};
    struct local_argv a;
    if (local_args_build(&in, &a) != RC_OK) {
        CHECK_FAIL("local_args_build");
        return;
    }
    /* Everything up to "--", then the whole agent command, NULL-terminated. */
    size_t dash = 0;
    while (dash < a.n && strcmp(a.v[dash], "--") != 0)
        dash++;
    CHECK_INT(a.n - dash - 1, 300);
    CHECK_STR(a.v[a.n - 1], "w299");
    CHECK(a.v[a.n] == NULL);
    bool share_net = false, block = false, cmdline = false;
    for (size_t i = 0; i < dash; i++) {
        share_net |= strcmp(a.v[i], "--share-net") == 0;
        block |= strcmp(a.v[i], "--block-fd") == 0;
        cmdline |= strcmp(a.v[i], "/proc/cmdline") == 0;
    }
    CHECK(!share_net); /* never the host's network namespace */
    CHECK(block);      /* the agent waits for slirp4netns */
    CHECK(cmdline);
    local_args_free(&a);
}

int
main(void)
{
    test_limits();
    test_uid_range();
    test_seccomp();
    test_args();
    config_fini(&cfg);
    return check_done("local_walls");
}
