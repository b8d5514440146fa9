/* sandbox_docker_walls: the docker backend's walls around an agent, as create parameters: a
 * seccomp profile made from the local backend's lists (sandbox_walls.c), the CPU limit, a sized
 * /tmp, a capped writable layer for /workspace where the engine's storage can, and the /proc
 * files that tell about the host masked (see sandbox_docker.h and docs/sandbox.md).
 *
 * The profile replaces the engine's default one, like the local backend's filter: every call is
 * allowed but the denied ones (EPERM), socket()/socketpair() only for the families
 * walls_family_allowed lets through (EAFNOSUPPORT otherwise: one rule per other family below
 * 64 and one for anything from 64 up, which also catches a family with high bits set, since
 * the kernel reads only the low 32), no new user namespaces (unshare and clone with
 * CLONE_NEWUSER: EPERM; clone3, whose flags seccomp cannot read: ENOSYS, so libc falls back to
 * clone), and system calls of other architectures killed (libseccomp's default for a profile
 * that names only the native one). Docker takes the profile's text in SecurityOpt; podman's
 * compatible API takes a path there, so for podman it is written to a file in sandbox_dir (the
 * work dir's parent, which the engine, on this host, can read) once per network setting.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "sandbox/sandbox_docker.h"
#include "sandbox/sandbox_walls.h"
#include "util/fsutil.h"

#define CLONE_NEWUSER_FLAG 0x10000000ull
#define FAMILIES           64 /* families below this get a rule each; the rest one rule */

#if defined(__x86_64__)
#define SCMP_ARCH "SCMP_ARCH_X86_64"
#elif defined(__aarch64__)
#define SCMP_ARCH "SCMP_ARCH_AARCH64"
#endif

/* Files of /proc (and /sys) that tell about the host: Docker's own masked paths, which a list
 * given in MaskedPaths replaces, and those the local backend covers as well. */
static const char *const masked_paths[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/proc/cmdline",
    "/proc/config.gz",
    "/proc/kallsyms",
    "/proc/modules",
    "/proc/key-users",
    "/proc/bootconfig",
    "/sys/devices/virtual/powercap",
};

/* One rule: names (NULL-terminated), an errno, and at most one comparison of the first argument
 * (op NULL: none). Whatever is made is owned by rules, or freed. */
static bool
rule(json_object *rules, const char *const *names, int err, const char *op, uint64_t value,
     uint64_t value2)
{
    json_object *r = json_object_new_object();
    if (r == NULL)
        return false;
    json_object *n = json_object_new_array();
    bool ok = json_add(r, "names", n);
    for (size_t i = 0; ok && names[i] != NULL; i++)
        ok = json_push(n, json_object_new_string(names[i]));
    ok = ok && json_add(r, "action", json_object_new_string("SCMP_ACT_ERRNO")) &&
         json_add(r, "errnoRet", json_object_new_int(err));
    if (ok && op != NULL) {
        json_object *args = json_object_new_array();
        ok = json_add(r, "args", args);
        json_object *a = ok ? json_object_new_object() : NULL;
        ok = ok && json_push(args, a) && json_add(a, "index", json_object_new_int(0)) &&
             json_add(a, "value", json_object_new_uint64(value)) &&
             json_add(a, "valueTwo", json_object_new_uint64(value2)) &&
             json_add(a, "op", json_object_new_string(op));
    }
    if (!ok) {
        json_object_put(r);
        return false;
    }
    return json_push(rules, r);
}

json_object *
docker_seccomp_profile(bool network)
{
#ifdef SCMP_ARCH
    static const char *const sock[] = {"socket", "socketpair", NULL};
    static const char *const userns[] = {"unshare", "clone", NULL};
    static const char *const clone3[] = {"clone3", NULL};
    const char *denied[WALLS_DENIED_MAX + 1];
    json_object *p = json_object_new_object();
    json_object *arch = json_object_new_array();
    json_object *rules = json_object_new_array();
    bool ok = p != NULL && arch != NULL && rules != NULL &&
              json_add(p, "defaultAction", json_object_new_string("SCMP_ACT_ALLOW")) &&
              json_push(arch, json_object_new_string(SCMP_ARCH)) &&
              json_add(p, "architectures", arch);
    if (!ok)
        json_object_put(arch);
    for (size_t i = 0; i < walls_ndenied; i++)
        denied[i] = walls_denied[i].name;
    denied[walls_ndenied] = NULL;
    ok = ok && rule(rules, denied, EPERM, NULL, 0, 0);
    for (unsigned f = 0; ok && f < FAMILIES; f++)
        if (!walls_family_allowed(network, f))
            ok = rule(rules, sock, EAFNOSUPPORT, "SCMP_CMP_EQ", f, 0);
    ok = ok && rule(rules, sock, EAFNOSUPPORT, "SCMP_CMP_GE", FAMILIES, 0) &&
         rule(rules, userns, EPERM, "SCMP_CMP_MASKED_EQ", CLONE_NEWUSER_FLAG, CLONE_NEWUSER_FLAG) &&
         rule(rules, clone3, ENOSYS, NULL, 0, 0);
    if (ok && json_add(p, "syscalls", rules))
        return p;
    if (!ok)
        json_object_put(rules);
    json_object_put(p);
    return NULL;
#else
    (void)network;
    return NULL; /* no profile for this architecture: the engine's default one applies */
#endif
}

/* The SecurityOpt entry that installs the profile: its text for Docker, a path for podman. */
static enum rc
seccomp_opt(const struct config *cfg, const struct docker_walls_in *in, char *out, size_t outlen)
{
    bool podman = in->podman;
    json_object *p = docker_seccomp_profile(cfg->network);
    if (p == NULL) {
        out[0] = '\0';
        return RC_OK;
    }
    size_t len = 0;
    const char *text = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
    enum rc rc = text != NULL ? RC_OK : RC_NOMEM;
    if (rc == RC_OK && !podman) {
        int k = snprintf(out, outlen, "seccomp=%s", text);
        rc = k > 0 && (size_t)k < outlen ? RC_OK : RC_TOOBIG;
    } else if (rc == RC_OK) {
        char path[4200];
        const char *name = cfg->network ? "seccomp-network-on.json" : "seccomp-network-off.json";
        int k = snprintf(path, sizeof(path), "%s/%s", in->profile_dir, name);
        int m = snprintf(out, outlen, "seccomp=%s", path);
        rc = k > 0 && (size_t)k < sizeof(path) && m > 0 && (size_t)m < outlen ? RC_OK : RC_TOOBIG;
        int dfd = open(in->profile_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rc == RC_OK)
            rc = dfd >= 0 ? fs_write_atomic_mode(dfd, name, text, len, 0644) : RC_IO;
        if (dfd >= 0)
            close(dfd);
    }
    json_object_put(p);
    return rc;
}

enum rc
docker_walls(const struct config *cfg, const struct docker_walls_in *in, json_object *hc,
             json_object *secopt, char *err, size_t errlen)
{
    char *opt = malloc(DOCKER_SECCOMP_MAX);
    char tmpfs[128];
    enum rc rc = opt != NULL ? seccomp_opt(cfg, in, opt, DOCKER_SECCOMP_MAX) : RC_NOMEM;
    if (rc != RC_OK) {
        (void)snprintf(err, errlen, "docker: cannot install the seccomp profile (%s)", rc_str(rc));
        free(opt);
        return RC_BACKEND;
    }
    bool ok = opt[0] == '\0' || json_push(secopt, json_object_new_string(opt));
    free(opt);
    if (cfg->cpus_milli > 0)
        ok = ok &&
             json_add(hc, "NanoCpus", json_object_new_int64((int64_t)cfg->cpus_milli * 1000000));
    /* /tmp: a tmpfs of workspace_max_mb (podman 4 refuses nr_inodes=; elsewhere it caps the
     * files too). Its pages count against memory_mb. */
    int k = in->podman ? snprintf(tmpfs, sizeof(tmpfs), "rw,nosuid,nodev,size=%llum",
                                  (unsigned long long)cfg->workspace_max_mb)
                       : snprintf(tmpfs, sizeof(tmpfs), "rw,nosuid,nodev,size=%llum,nr_inodes=%llu",
                                  (unsigned long long)cfg->workspace_max_mb,
                                  (unsigned long long)cfg->workspace_max_files);
    json_object *t = json_object_new_object();
    ok = ok && k > 0 && (size_t)k < sizeof(tmpfs) && json_add(hc, "Tmpfs", t) &&
         json_add(t, "/tmp", json_object_new_string(tmpfs));
    json_object *masks = json_object_new_array();
    ok = ok && json_add(hc, "MaskedPaths", masks);
    for (size_t i = 0; ok && i < sizeof(masked_paths) / sizeof(masked_paths[0]); i++)
        ok = json_push(masks, json_object_new_string(masked_paths[i]));
    if (ok && in->cap_layer) {
        char size[32];
        json_object *so = json_object_new_object();
        (void)snprintf(size, sizeof(size), "%llum", (unsigned long long)cfg->workspace_max_mb);
        ok = json_add(hc, "StorageOpt", so) && json_add(so, "size", json_object_new_string(size));
    }
    if (!ok) {
        (void)snprintf(err, errlen, "out of memory");
        return RC_NOMEM;
    }
    return RC_OK;
}
