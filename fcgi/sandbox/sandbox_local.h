/* sandbox_local: the local backend's parts (private to sandbox_local*.c): the walls it puts
 * around an agent and the pure decisions behind them.
 *
 *   sandbox_local.c          the hooks: start (fork, setuid, exec bwrap), poll, collect, destroy
 *   sandbox_local_args.c     bwrap's command line and the seccomp program (pure)
 *   sandbox_local_cgroup.c   cgroup v1/v2: probe, limits, join, stats, removal; which limits
 *                            the host can enforce (pure)
 *   sandbox_local_fs.c       the per-job workspace filesystem (a loop-mounted ext4 image)
 *   sandbox_local_pool.c     workspace images made ahead of time, each used by one job
 *   sandbox_local_net.c      network = on: the sandbox's own namespace behind slirp4netns
 *   sandbox_walls.c          (shared with docker) per-job uids, the denied system calls
 */
#ifndef LABBOX_SANDBOX_LOCAL_H
#define LABBOX_SANDBOX_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/capability.h>

#include "config.h"
#include "rc.h"
#include "sandbox/sandbox_walls.h"
#include "util/caps.h"

#define BWRAP_PATH     "/usr/bin/bwrap"
#define SLIRP_PATH     "/usr/bin/slirp4netns"
#define MKFS_EXT4_PATH "/usr/sbin/mkfs.ext4"

/* The fds bwrap inherits from the child (everything else is closed at exec). */
enum local_fd {
    LFD_STATUS = 3,    /* --json-status-fd: {"child-pid": N} once set up */
    LFD_PASSWD = 4,    /* --ro-bind-data: our /etc/passwd */
    LFD_GROUP = 5,     /* --ro-bind-data: our /etc/group */
    LFD_SECCOMP = 6,   /* --seccomp: the BPF program */
    LFD_WORKSPACE = 7, /* --bind-fd: /workspace */
    LFD_INPUTS = 8,    /* --ro-bind-fd: /workspace/inputs */
    LFD_TMP = 9,       /* --bind-fd: /tmp, when it lives in the workspace filesystem */
    LFD_BLOCK = 10,    /* --block-fd: the agent starts when a byte arrives (network = on) */
    LFD_RESOLV = 11,   /* --ro-bind-data: /etc/resolv.conf (network = on) */
    LFD__END
};

/*** bwrap's command line (sandbox_local_args.c) ***/

struct local_argv {
    char **v; /* NULL-terminated; the strings are borrowed or owned by own[] */
    size_t n, cap;
    char *own[2]; /* strings built for this command line, freed with it */
    size_t nown;
};

struct local_args_in {
    bool network;       /* own namespace behind slirp4netns, resolv.conf at LFD_RESOLV */
    bool tmp_fd;        /* /tmp from LFD_TMP, else a tmpfs of tmp_bytes */
    uint64_t tmp_bytes; /* size of that tmpfs */
    bool seccomp;       /* a program is at LFD_SECCOMP */
    char *const *argv;  /* the agent command */
};

/* local_args_build: bwrap's argv for in; RC_NOMEM. Unbounded: any agent_command fits. */
enum rc local_args_build(const struct local_args_in *in, struct local_argv *a) LB_MUST_CHECK;
void local_args_free(struct local_argv *a);

/* local_seccomp_program: the filter for this architecture into prog (room for
 * LOCAL_SECCOMP_MAX instructions); returns the count, 0 where no filter is built. With
 * network off only AF_UNIX sockets may be made; with it on AF_INET and AF_INET6 as well;
 * other families fail with EAFNOSUPPORT. Pure. */
#define LOCAL_SECCOMP_MAX 128
struct sock_filter;
size_t local_seccomp_program(bool network, struct sock_filter *prog);

/*** cgroups (sandbox_local_cgroup.c) ***/

enum cg_mode { CG_NONE, CG_V1, CG_V2 };

/* The capabilities the local backend's walls need (docs/operations.md says what each is
 * for): without all of them it runs agents as its own user, with no cgroups, no uid of their
 * own and no workspace filesystem. */
#define LOCAL_CAPS                                                                                 \
    (CAPS_BIT(CAP_SYS_ADMIN) | CAPS_BIT(CAP_SETUID) | CAPS_BIT(CAP_SETGID) | CAPS_BIT(CAP_CHOWN) | \
     CAPS_BIT(CAP_DAC_OVERRIDE) | CAPS_BIT(CAP_KILL))

/* What this host offers, found by cg_probe (and local_probe for the rest). */
struct local_offer {
    bool priv;          /* labbox holds LOCAL_CAPS: cgroups, mounts and setuid are possible */
    char lacks[200];    /* when not: "labbox lacks CAP_..., CAP_..." */
    enum cg_mode mode;  /* which cgroup hierarchy under cgroup_root */
    bool memory, pids;  /* a job's cgroup takes that limit */
    bool cpu;           /* cpu.max (v2) or cfs quota (v1) */
    bool loop;          /* loop devices and mkfs.ext4: the workspace filesystem */
    const char *why[4]; /* per LIMIT_* bit index: why it is missing (static text) */
};

/* local_limits_wanted: the LIMIT_* bits cfg asks for (cpus only when cpus > 0). Pure. */
unsigned local_limits_wanted(const struct config *cfg);
/* local_limits_offered: the LIMIT_* bits the host can enforce. Pure. */
unsigned local_limits_offered(const struct local_offer *o);
/* local_limits_decide: the limits wanted but neither offered nor allowed unenforced; when
 * some are, a sentence naming each with its reason goes to err. Pure. */
unsigned local_limits_decide(const struct config *cfg, const struct local_offer *o, char *err,
                             size_t errlen);

/* One job's cgroups: a v2 leaf, or one dir per v1 controller ("" where none). */
enum cg_ctl { CG_MEM, CG_PIDS, CG_CPU, CG_CPUACCT, CG__MAX };
struct cg {
    bool v2;
    char dir[CG__MAX][256]; /* v2: dir[CG_MEM] is the leaf */
};

/* cg_probe: which controllers under cfg->cgroup_root can limit a job (creates
 * <root>/labbox and, on v2, enables the controllers there). */
void cg_probe(const struct config *cfg, struct local_offer *o);
/* cg_create: the job's cgroups with every limit in need applied (*out_applied: those that
 * took); a limit that cannot be written is an error (RC_BACKEND, reason in err) unless cfg
 * allows running without it. */
enum rc cg_create(const struct config *cfg, const char *id, unsigned need, struct cg *cg,
                  unsigned *out_applied, char *err, size_t errlen) LB_MUST_CHECK;
/* cg_paths: the dirs a job of this id would have (for cleanup without the original). */
void cg_paths(const struct config *cfg, const char *id, struct cg *cg);
/* cg_join: move the calling process into cg (the child, before it execs bwrap). */
void cg_join(const struct cg *cg);
/* cg_stats: CPU ns, peak memory bytes and whether the kernel OOM-killed in it. */
void cg_stats(const struct cg *cg, uint64_t *cpu_ns, uint64_t *peak, bool *oom);
/* cg_remove: kill what is left in cg and remove its dirs. */
void cg_remove(struct cg *cg);

/*** the workspace filesystem (sandbox_local_fs.c) ***/

struct ws {
    bool mounted;  /* a filesystem of its own is mounted at the work dir */
    int root_fd;   /* the work dir (its filesystem's root when mounted) */
    int ws_fd;     /* /workspace */
    int inputs_fd; /* O_PATH: the staged inputs, bound read-only over /workspace/inputs */
    int tmp_fd;    /* /tmp, or -1 (then a tmpfs) */
    int lock_fd;   /* the staged work dir, flocked while the job lives (reap_orphans) */
    bool handed;   /* no filesystem of its own: the staged dir was given to uid */
    uid_t uid;     /* the job's uid and gid */
    gid_t gid;
    char path[4096]; /* the work dir */
};

/* ws_setup: give the job its workspace: with enforce, a size- and inode-limited ext4 image
 * mounted over the staged work dir in this process's own mount namespace, the staged agent
 * files copied in and everything owned by uid; without, the staged dir itself, chowned.
 * RC_BACKEND with the reason in err. */
enum rc ws_setup(struct ws *w, const struct config *cfg, const char *work_dir, bool enforce,
                 uid_t uid, gid_t gid, char *err, size_t errlen) LB_MUST_CHECK;
/* ws_full: the workspace filesystem has (almost) no space or no inodes left. */
bool ws_full(const struct ws *w);
/* ws_teardown: close and unmount (the image goes with its loop device); a staged dir that was
 * handed to the job's uid is emptied as that uid (whatever modes and sticky bits the agent
 * left, it owns all it wrote: labbox needs no CAP_FOWNER). Idempotent. */
void ws_teardown(struct ws *w);
/* ws_available: loop devices and mkfs.ext4 are there (for the probe); reason in *why. */
bool ws_available(const char **why);
/* ws_image_new: a workspace image for cfg, made by mkfs.ext4 in an unnamed file (O_TMPFILE)
 * in dir: its fd, or -1 with the reason in err. */
int ws_image_new(const struct config *cfg, const char *dir, char *err, size_t errlen);
/* ws_image_key: what an image for cfg is made of (size, inodes, owner) as text, for names. */
void ws_image_key(const struct config *cfg, char *out, size_t len);

/*** workspace images made ahead of time (sandbox_local_pool.c) ***/

/* pool_take: an image for cfg made ahead of time, now this caller's alone (it has no name
 * left); -1 when the pool has none. */
int pool_take(const struct config *cfg);
/* pool_fill: make images for cfg until the pool holds POOL_SIZE; drop images made for other
 * settings. Best effort (failures are logged at debug). */
void pool_fill(const struct config *cfg);

/*** network = on (sandbox_local_net.c) ***/

struct net {
    pid_t slirp; /* slirp4netns, -1 if none */
    int exit_w;  /* slirp4netns exits when this closes (also when the supervisor dies) */
};

/* net_start: slirp4netns for the sandbox whose pid 1 (host pid) is pid, run as uid/gid;
 * returns once the namespace is configured. RC_BACKEND with the reason in err. */
enum rc net_start(struct net *n, pid_t pid, uid_t uid, gid_t gid, int64_t deadline_ms, char *err,
                  size_t errlen) LB_MUST_CHECK;
void net_stop(struct net *n);
/* net_tun_usable: slirp4netns, as the job's uid, can open /dev/net/tun (it is open to all, or
 * labbox may make a node of its own: CAP_MKNOD); else false with the reason in why. */
bool net_tun_usable(char *why, size_t len);

#endif
