/* sandbox_local_cgroup: the local backend's cgroups, v1 and v2, and which limits they enforce.
 *
 * v1 (one hierarchy per controller, as on this project's hybrid CI hosts): a dir per job under
 * <root>/<controller>/labbox for memory (limit_in_bytes, memsw, swappiness 0), pids (pids.max),
 * cpu (cfs_quota_us over cfs_period_us) and cpuacct (accounting only).
 *
 * v2 (one hierarchy, Documentation/admin-guide/cgroup-v2.rst): a leaf per job under
 * <root>/labbox. Controllers reach a child only through its parent's cgroup.subtree_control,
 * so memory, pids and cpu are enabled, one by one, in <root>/cgroup.subtree_control and in
 * labbox/cgroup.subtree_control (labbox itself holds no process: the "no internal process"
 * rule). A leaf then has memory.max, memory.swap.max (0), memory.oom.group (1: an OOM kill
 * takes the whole job), pids.max and cpu.max ("$QUOTA $PERIOD"); cpu.stat's usage_usec counts
 * without the cpu controller. A job is killed whole with cgroup.kill.
 *
 * A limit is enforced only once its file took the value; one that is wanted and cannot be
 * written fails the job's start, unless allow_unenforced names it (then the rlimit fallbacks
 * of sandbox_local.c are all there is).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox_local.h"

#define CPU_PERIOD_US 100000

static const char *const v1_names[CG__MAX] = {"memory", "pids", "cpu", "cpuacct"};

/*** which limits (pure) ***/

static unsigned
bit_index(unsigned bit)
{
    unsigned i = 0;
    while (i < 31 && (1u << i) != bit)
        i++;
    return i;
}

unsigned
local_limits_wanted(const struct config *cfg)
{
    return LIMIT_MEMORY | LIMIT_PIDS | LIMIT_DISK | (cfg->cpus_milli > 0 ? LIMIT_CPUS : 0);
}

unsigned
local_limits_offered(const struct local_offer *o)
{
    unsigned b = 0;
    if (!o->priv)
        return 0;
    if (o->mode != CG_NONE) {
        b |= o->memory ? LIMIT_MEMORY : 0;
        b |= o->pids ? LIMIT_PIDS : 0;
        b |= o->cpu ? LIMIT_CPUS : 0;
    }
    return b | (o->loop ? LIMIT_DISK : 0);
}

unsigned
local_limits_decide(const struct config *cfg, const struct local_offer *o, char *err, size_t errlen)
{
    unsigned missing = local_limits_wanted(cfg) & ~local_limits_offered(o) & ~cfg->unenforced;
    size_t used = 0;
    if (errlen > 0)
        err[0] = '\0';
    for (unsigned bit = 1; missing != 0 && bit <= LIMIT__ALL; bit <<= 1) {
        if (!(missing & bit) || used >= errlen)
            continue;
        const char *why = !o->priv                 ? o->lacks
                          : o->why[bit_index(bit)] ? o->why[bit_index(bit)]
                                                   : "not available";
        int k = snprintf(err + used, errlen - used, "%s%s (%s)", used ? "; " : "cannot enforce ",
                         config_limit_name(bit), why);
        used = k < 0 ? errlen : used + (size_t)k;
    }
    if (missing != 0 && used < errlen)
        (void)snprintf(err + used, errlen - used,
                       "; allow_unenforced lists the limits labbox may run without");
    return missing;
}

/*** files ***/

static bool
write_text(const char *dir, const char *file, const char *text)
{
    char path[512];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return false;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static bool
has_file(const char *dir, const char *file)
{
    char path[512];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return false;
    return access(path, F_OK) == 0;
}

static uint64_t
read_u64(const char *dir, const char *file, const char *key)
{
    char path[512], buf[4096];
    if (dir[0] == '\0' || (size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    const char *p = buf;
    if (key != NULL) {
        size_t kl = strlen(key);
        for (p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                p += kl + 1;
                break;
            }
        }
        if (p == NULL)
            return 0;
    }
    return strtoull(p, NULL, 10);
}

/* Does the space-separated list in dir/file name word? */
static bool
lists(const char *dir, const char *file, const char *word)
{
    char path[512], buf[1024];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return false;
    buf[r] = '\0';
    size_t wl = strlen(word);
    for (char *p = buf; (p = strstr(p, word)) != NULL; p += wl)
        if ((p == buf || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || p[wl] == '\0'))
            return true;
    return false;
}

/*** probe ***/

static enum cg_mode
mode_of(const char *root)
{
    if (has_file(root, "cgroup.controllers"))
        return CG_V2;
    char dir[256];
    for (int c = 0; c < CG__MAX; c++) {
        (void)snprintf(dir, sizeof(dir), "%s/%s", root, v1_names[c]);
        if (has_file(dir, "cgroup.procs"))
            return CG_V1;
    }
    return CG_NONE;
}

/* v2: <root>/labbox with memory, pids and cpu enabled for its children, as far as the host
 * lets us; each controller separately, so one refused does not take the others along. */
static void
v2_prepare(const char *root)
{
    static const char *const ctl[] = {"memory", "pids", "cpu"};
    char base[256], word[16];
    (void)snprintf(base, sizeof(base), "%s/labbox", root);
    if (mkdir(base, 0755) != 0 && errno != EEXIST)
        return;
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        (void)snprintf(word, sizeof(word), "+%s", ctl[i]);
        if (!lists(root, "cgroup.subtree_control", ctl[i]))
            (void)write_text(root, "cgroup.subtree_control", word);
        if (!lists(base, "cgroup.subtree_control", ctl[i]))
            (void)write_text(base, "cgroup.subtree_control", word);
    }
}

void
cg_probe(const struct config *cfg, struct local_offer *o)
{
    const char *root = cfg->cgroup_root;
    char dir[256];
    o->mode = o->priv ? mode_of(root) : CG_NONE;
    o->memory = o->pids = o->cpu = false;
    const char *none = o->mode == CG_NONE ? "no cgroup hierarchy at cgroup_root" : NULL;
    if (o->mode == CG_V2) {
        v2_prepare(root);
        (void)snprintf(dir, sizeof(dir), "%s/labbox", root);
        o->memory = lists(dir, "cgroup.subtree_control", "memory");
        o->pids = lists(dir, "cgroup.subtree_control", "pids");
        o->cpu = lists(dir, "cgroup.subtree_control", "cpu");
        none = "the cgroup v2 controller cannot be enabled for labbox's cgroups";
    } else if (o->mode == CG_V1) {
        bool *have[] = {&o->memory, &o->pids, &o->cpu};
        static const char *const file[] = {"memory.limit_in_bytes", "pids.max", "cpu.cfs_quota_us"};
        /* The root of a hierarchy lacks some limit files (pids.max): look one level down,
         * where the jobs' dirs go. */
        for (int c = 0; c < 3; c++) {
            (void)snprintf(dir, sizeof(dir), "%s/%s/labbox", root, v1_names[c]);
            *have[c] = (mkdir(dir, 0755) == 0 || errno == EEXIST) && has_file(dir, file[c]) &&
                       faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == 0;
        }
        none = "no writable cgroup v1 hierarchy of that controller";
    }
    o->why[bit_index(LIMIT_MEMORY)] = o->memory ? NULL : none;
    o->why[bit_index(LIMIT_PIDS)] = o->pids ? NULL : none;
    o->why[bit_index(LIMIT_CPUS)] = o->cpu ? NULL : none;
}

/*** one job ***/

void
cg_paths(const struct config *cfg, const char *id, struct cg *cg)
{
    memset(cg, 0, sizeof(*cg));
    if (mode_of(cfg->cgroup_root) == CG_V2) {
        cg->v2 = true;
        (void)snprintf(cg->dir[CG_MEM], sizeof(cg->dir[CG_MEM]), "%s/labbox/%.32s",
                       cfg->cgroup_root, id);
        return;
    }
    for (int c = 0; c < CG__MAX; c++)
        (void)snprintf(cg->dir[c], sizeof(cg->dir[c]), "%s/%s/labbox/%.32s", cfg->cgroup_root,
                       v1_names[c], id);
}

/* mkdir the job's dir of one hierarchy (and labbox above it); "" if that fails. */
static void
make_dir(char *dir)
{
    char base[256];
    (void)snprintf(base, sizeof(base), "%s", dir);
    char *slash = strrchr(base, '/');
    if (slash != NULL) {
        *slash = '\0';
        if (mkdir(base, 0755) != 0 && errno != EEXIST)
            dir[0] = '\0';
    }
    if (dir[0] != '\0' && mkdir(dir, 0755) != 0 && errno != EEXIST)
        dir[0] = '\0';
}

static bool
same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return a[0] != '\0' && b[0] != '\0' && stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The limit files and values of one job. */
struct limit_write {
    unsigned bit;
    int ctl; /* v1 controller dir; v2: always the leaf */
    const char *file;
    char value[64];
    bool optional; /* absent file: fine (swap accounting off, no memory.oom.group) */
};

static size_t
limit_writes(const struct config *cfg, bool v2, struct limit_write *w)
{
    size_t n = 0;
    unsigned long long mem = (unsigned long long)cfg->memory_mb << 20;
    unsigned long long quota = cfg->cpus_milli * CPU_PERIOD_US / 1000;
    w[n] = (struct limit_write){
        .bit = LIMIT_MEMORY, .ctl = CG_MEM, .file = v2 ? "memory.max" : "memory.limit_in_bytes"};
    (void)snprintf(w[n++].value, sizeof(w->value), "%llu", mem);
    w[n] = (struct limit_write){.bit = LIMIT_MEMORY,
                                .ctl = CG_MEM,
                                .file = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                                .optional = true};
    (void)snprintf(w[n++].value, sizeof(w->value), "%llu", v2 ? 0 : mem);
    w[n++] = (struct limit_write){.bit = LIMIT_MEMORY,
                                  .ctl = CG_MEM,
                                  .file = v2 ? "memory.oom.group" : "memory.swappiness",
                                  .optional = true};
    (void)snprintf(w[n - 1].value, sizeof(w->value), "%d", v2 ? 1 : 0);
    w[n] = (struct limit_write){.bit = LIMIT_PIDS, .ctl = CG_PIDS, .file = "pids.max"};
    (void)snprintf(w[n++].value, sizeof(w->value), "%llu", (unsigned long long)cfg->pids);
    if (cfg->cpus_milli > 0) {
        if (v2) {
            w[n] = (struct limit_write){.bit = LIMIT_CPUS, .ctl = CG_CPU, .file = "cpu.max"};
            (void)snprintf(w[n++].value, sizeof(w->value), "%llu %d", quota, CPU_PERIOD_US);
        } else {
            w[n] =
                (struct limit_write){.bit = LIMIT_CPUS, .ctl = CG_CPU, .file = "cpu.cfs_period_us"};
            (void)snprintf(w[n++].value, sizeof(w->value), "%d", CPU_PERIOD_US);
            w[n] =
                (struct limit_write){.bit = LIMIT_CPUS, .ctl = CG_CPU, .file = "cpu.cfs_quota_us"};
            (void)snprintf(w[n++].value, sizeof(w->value), "%llu", quota);
        }
    }
    return n;
}

enum rc
cg_create(const struct config *cfg, const char *id, unsigned need, struct cg *cg,
          unsigned *out_applied, char *err, size_t errlen)
{
    struct limit_write w[8];
    unsigned applied = LIMIT__ALL, failed = 0;
    cg_paths(cfg, id, cg);
    if (!cg->v2 && cfg->cpus_milli == 0)
        cg->dir[CG_CPU][0] = '\0'; /* accounting is cpuacct's */
    if (cg->v2)
        v2_prepare(cfg->cgroup_root);
    for (int c = 0; c < CG__MAX; c++)
        if (cg->dir[c][0] != '\0')
            make_dir(cg->dir[c]);
    size_t n = limit_writes(cfg, cg->v2, w);
    for (size_t i = 0; i < n; i++) {
        const char *dir = cg->dir[cg->v2 ? CG_MEM : w[i].ctl];
        if (dir[0] != '\0' && write_text(dir, w[i].file, w[i].value))
            continue;
        if (w[i].optional && (dir[0] == '\0' || !has_file(dir, w[i].file)))
            continue;
        applied &= ~w[i].bit;
    }
    /* A v1 dir whose limit did not take is of no use (and must not look like a limit); cpu
     * may share its dir with cpuacct (co-mounted), which stays for the accounting. */
    for (int c = 0; !cg->v2 && c < CG_CPUACCT; c++) {
        unsigned bit = c == CG_MEM ? LIMIT_MEMORY : c == CG_PIDS ? LIMIT_PIDS : LIMIT_CPUS;
        if (!(applied & bit) && cg->dir[c][0] != '\0') {
            if (!(c == CG_CPU && same_dir(cg->dir[CG_CPU], cg->dir[CG_CPUACCT])))
                (void)rmdir(cg->dir[c]);
            cg->dir[c][0] = '\0';
        }
    }
    failed = need & ~applied & ~cfg->unenforced;
    if (failed != 0) {
        (void)snprintf(err, errlen, "cannot set the %s limit in the job's cgroup (%s)",
                       config_limit_name(failed & -failed), cg->v2 ? "v2" : "v1");
        cg_remove(cg);
        *out_applied = 0;
        return RC_BACKEND;
    }
    applied &= LIMIT_MEMORY | LIMIT_PIDS | (cfg->cpus_milli > 0 ? LIMIT_CPUS : 0);
    *out_applied = applied;
    return RC_OK;
}

void
cg_join(const struct cg *cg)
{
    char pid[32];
    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    for (int c = 0; c < CG__MAX; c++)
        if (cg->dir[c][0] != '\0')
            (void)write_text(cg->dir[c], "cgroup.procs", pid);
}

void
cg_stats(const struct cg *cg, uint64_t *cpu_ns, uint64_t *peak, bool *oom)
{
    const char *mem = cg->dir[CG_MEM];
    if (cg->v2) {
        *cpu_ns = read_u64(mem, "cpu.stat", "usage_usec") * 1000;
        *peak = read_u64(mem, "memory.peak", NULL);
        *oom = read_u64(mem, "memory.events", "oom_kill") > 0;
        return;
    }
    *cpu_ns = read_u64(cg->dir[CG_CPUACCT], "cpuacct.usage", NULL);
    *peak = read_u64(mem, "memory.max_usage_in_bytes", NULL);
    *oom = mem[0] != '\0' && (read_u64(mem, "memory.oom_control", "oom_kill") > 0 ||
                              read_u64(mem, "memory.failcnt", NULL) > 0);
}

/* Kill every process still in dir (v1 has no cgroup.kill). */
static void
kill_procs(const char *dir)
{
    char path[512], buf[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= sizeof(path))
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return;
    buf[r] = '\0';
    for (char *p = buf, *end; *p != '\0'; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 1)
            (void)kill((pid_t)pid, SIGKILL);
    }
}

void
cg_remove(struct cg *cg)
{
    /* A cgroup can only be removed once empty: whatever is left is killed first. */
    for (int round = 0; round < 40; round++) {
        bool left = false;
        for (int c = 0; c < CG__MAX; c++) {
            if (cg->dir[c][0] == '\0')
                continue;
            if (rmdir(cg->dir[c]) == 0 || errno == ENOENT) {
                cg->dir[c][0] = '\0';
                continue;
            }
            left = true;
            if (errno == EBUSY && !(cg->v2 && write_text(cg->dir[c], "cgroup.kill", "1")))
                kill_procs(cg->dir[c]);
        }
        if (!left)
            return;
        usleep(25000);
    }
}
