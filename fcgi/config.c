/* config: the key table, the pure key = value parser, and the loader with env overrides. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "defaults.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/netaddr.h"
#include "util/owner.h"
#include "util/sha256.h"
#include "util/span.h"

#define DEF_ALLOWED_TYPES                                                                          \
    "text/plain text/csv application/json text/tab-separated-values application/xml text/xml "     \
    "application/pdf image/png image/jpeg image/gif image/tiff application/x-hdf5 "                \
    "application/x-hdf application/zip application/gzip "                                          \
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#ifndef LABBOX_DEFAULT_AGENT_DIR
#error "LABBOX_DEFAULT_AGENT_DIR (the installed default agent) comes from CMakeLists.txt"
#endif

enum key_kind {
    KEY_STR,   /* any text */
    KEY_PATH,  /* a path: relative ones in a file are relative to the file's directory */
    KEY_U64,   /* non-negative integer within [min, max] */
    KEY_BYTES, /* a size in bytes, optionally with a unit (512k, 100M, 16MiB, 1G) */
    KEY_MIB,   /* a size in MiB: a plain number is MiB, a unit converts (1G = 1024) */
    KEY_MODE,  /* permission bits, octal */
    KEY_BOOL,  /* on/off, true/false, yes/no, 1/0 */
    KEY_MILLI, /* a decimal number with up to three places, stored in thousandths */
};

struct key_def {
    const char *name;
    enum key_kind kind;
    size_t off;
    uint64_t min, max; /* numeric kinds: the range of the stored value */
};

#define KEY(f, kind, lo, hi)                                                                       \
    {                                                                                              \
#f, kind, offsetof(struct config, f), (lo), (hi)                                           \
    }
#define S(f)         KEY(f, KEY_STR, 0, 0)
#define P(f)         KEY(f, KEY_PATH, 0, 0)
#define U(f, lo, hi) KEY(f, KEY_U64, lo, hi)
#define Z(f, lo, hi) KEY(f, KEY_BYTES, lo, hi)
#define M(f, lo, hi) KEY(f, KEY_MIB, lo, hi)
#define B(f)         KEY(f, KEY_BOOL, 0, 0)
#define D(name, f, hi)                                                                             \
    {                                                                                              \
        name, KEY_MILLI, offsetof(struct config, f), 0, (hi)                                       \
    }

static const struct key_def keys[] = {
    P(data_dir),
    S(backend),
    P(listen),
    P(agent_dir),
    P(sandbox_dir),
    S(agent_command),
    S(agent_env),
    S(allowed_types),
    S(log_level),
    P(cgroup_root),
    S(allow_unenforced),
    S(docker_host),
    S(docker_image),
    S(modal_app),
    S(modal_image),
    P(modal_config),
    P(modal_ca_file),
    S(modal_profile),
    S(socket_group),
    S(output_group),
    S(instance),
    S(modal_image_commands),
    P(log_file),
    S(identity),
    S(trusted_proxies),
    S(admin_users),
    Z(max_file_bytes, 1, 1ull << 40),
    Z(max_job_bytes, 1, 1ull << 42),
    U(max_files, 1, 10000),
    U(max_concurrent, 0, 4096),
    U(max_queue, 0, 1000000),
    U(wall_timeout, 1, 7 * 86400),
    U(cpu_time, 1, 7 * 86400),
    M(memory_mb, 16, 1 << 24),
    U(pids, 8, 1 << 22),
    M(file_size_mb, 1, 1 << 24),
    D("cpus", cpus_milli, 1024000),
    M(workspace_max_mb, 16, 1 << 24),
    U(workspace_max_files, 64, 1ull << 32),
    U(sandbox_uid_base, 1000, 4000000000ull),
    U(sandbox_uid_count, 1, 1 << 24),
    Z(output_max_bytes, 0, 1ull << 42),
    U(output_max_files, 1, 1000000),
    Z(log_max_bytes, 4096, 1ull << 40),
    Z(log_line_max, 80, 1 << 20),
    U(log_flush_ms, 1, 60000),
    U(job_ttl, 1, 365ull * 86400),
    U(threads, 2, 1024),
    U(max_streams, 0, 1 << 20),
    M(disk_reserve_mb, 0, 1 << 24),
    KEY(socket_mode, KEY_MODE, 0, 0777),
    U(keepalive_ms, 100, 300000),
    U(modal_sandbox_version, 1, 2),
    U(user_max_queued, 0, 1000000),
    U(user_max_running, 0, 4096),
    Z(user_max_bytes, 0, 1ull << 44),
    B(network),
    B(allow_octet_stream),
};

#undef KEY
#undef S
#undef P
#undef U
#undef Z
#undef M
#undef B
#undef D

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Keys a reload (SIGHUP) applies; every other key needs a restart. Request threads read the
 * first group through the snapshot their request began with, the scheduler's dispatcher through
 * the one its round began with (util/cfgsnap.h); each supervisor reads the second group at its
 * start from <data_dir>/running.conf; serve applies the third itself. Not here, for example:
 * the job store keeps data_dir, identity decides the owners of jobs already queued (and the
 * user_* quotas go with it), the backends' connection keys feed the health probe, and running
 * jobs' work dirs live in sandbox_dir. */
static const char *const reloadable[] = {
    "max_file_bytes",
    "max_job_bytes",
    "max_files",
    "allowed_types",
    "allow_octet_stream",
    "disk_reserve_mb",
    "keepalive_ms",
    "max_streams",
    "trusted_proxies",
    "admin_users",
    "max_queue",
    /* read by the scheduler */
    "max_concurrent",
    "job_ttl",
    /* read by supervisors */
    "agent_dir",
    "agent_command",
    "agent_env",
    "wall_timeout",
    "cpu_time",
    "memory_mb",
    "pids",
    "file_size_mb",
    "cpus",
    "workspace_max_mb",
    "workspace_max_files",
    "output_max_bytes",
    "output_max_files",
    "log_max_bytes",
    "log_line_max",
    "log_flush_ms",
    "network",
    "modal_image_commands",
    /* serve itself */
    "log_level",
    "log_file",
};

static const struct key_def *
find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
            return &keys[i];
    return NULL;
}

bool
config_is_reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
        if (strcmp(reloadable[i], key) == 0)
            return true;
    return false;
}

static enum rc
set_str(char **slot, const char *value)
{
    char *v = strdup(value);
    if (v == NULL)
        return RC_NOMEM;
    free(*slot);
    *slot = v;
    return RC_OK;
}

enum rc
config_init(struct config *cfg)
{
    enum rc rc = RC_OK;
    memset(cfg, 0, sizeof(*cfg));
    const struct {
        char **slot;
        const char *v;
    } strs[] = {
        {&cfg->data_dir, "./var"},
        {&cfg->backend, "local"},
        {&cfg->listen, ""},
        {&cfg->agent_dir, LABBOX_DEFAULT_AGENT_DIR},
        {&cfg->sandbox_dir, DEF_SANDBOX_DIR},
        {&cfg->agent_command, DEF_AGENT_COMMAND},
        {&cfg->agent_env, ""},
        {&cfg->allowed_types, DEF_ALLOWED_TYPES},
        {&cfg->log_level, "info"},
        {&cfg->cgroup_root, DEF_CGROUP_ROOT},
        {&cfg->allow_unenforced, ""},
        {&cfg->docker_host, DEF_DOCKER_HOST},
        {&cfg->docker_image, DEF_DOCKER_IMAGE},
        {&cfg->modal_app, DEF_MODAL_APP},
        {&cfg->modal_image, DEF_MODAL_IMAGE},
        {&cfg->modal_config, ""},
        {&cfg->modal_ca_file, ""},
        {&cfg->modal_profile, ""},
        {&cfg->socket_group, ""},
        {&cfg->output_group, ""},
        {&cfg->instance, ""},
        {&cfg->modal_image_commands, ""},
        {&cfg->log_file, ""},
        {&cfg->identity, DEF_IDENTITY},
        {&cfg->trusted_proxies, ""},
        {&cfg->admin_users, ""},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]) && rc == RC_OK; i++)
        rc = set_str(strs[i].slot, strs[i].v);
    cfg->max_file_bytes = DEF_MAX_FILE_BYTES;
    cfg->max_job_bytes = DEF_MAX_JOB_BYTES;
    cfg->max_files = DEF_MAX_FILES;
    cfg->max_concurrent = 0;
    cfg->max_queue = DEF_MAX_QUEUE;
    cfg->wall_timeout = DEF_WALL_TIMEOUT_S;
    cfg->cpu_time = DEF_CPU_TIME_S;
    cfg->memory_mb = DEF_MEMORY_MB;
    cfg->pids = DEF_PIDS;
    cfg->file_size_mb = DEF_FILE_SIZE_MB;
    cfg->cpus_milli = DEF_CPUS_MILLI;
    cfg->workspace_max_mb = DEF_WORKSPACE_MB;
    cfg->workspace_max_files = DEF_WORKSPACE_FILES;
    cfg->sandbox_uid_base = DEF_UID_BASE;
    cfg->sandbox_uid_count = DEF_UID_COUNT;
    cfg->output_max_bytes = DEF_OUTPUT_MAX_BYTES;
    cfg->output_max_files = DEF_OUTPUT_MAX_FILES;
    cfg->log_max_bytes = DEF_LOG_MAX_BYTES;
    cfg->log_line_max = DEF_LOG_LINE_MAX;
    cfg->log_flush_ms = DEF_LOG_FLUSH_MS;
    cfg->job_ttl = DEF_JOB_TTL_S;
    cfg->threads = DEF_THREADS;
    cfg->max_streams = DEF_MAX_STREAMS;
    cfg->disk_reserve_mb = DEF_DISK_RESERVE_MB;
    cfg->socket_mode = 0660;
    cfg->keepalive_ms = DEF_KEEPALIVE_MS;
    cfg->modal_sandbox_version = 1;
    cfg->user_max_queued = DEF_USER_MAX_QUEUED;
    cfg->user_max_running = DEF_USER_MAX_RUNNING;
    cfg->user_max_bytes = DEF_USER_MAX_BYTES;
    cfg->network = false;
    cfg->allow_octet_stream = false;
    if (rc != RC_OK)
        config_fini(cfg);
    return rc;
}

static bool
is_string_kind(enum key_kind kind)
{
    return kind == KEY_STR || kind == KEY_PATH;
}

void
config_fini(struct config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_string_kind(keys[i].kind)) {
            char **slot = (char **)((char *)cfg + keys[i].off);
            free(*slot);
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

static bool
parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* fmt_size: v bytes as the largest exact 1024-based unit ("16 MiB", "1 TiB", "4095 B"). */
static void
fmt_size(uint64_t v, char *buf, size_t len)
{
    static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
    for (unsigned i = 0; i < 4; i++) {
        unsigned shift = 40 - 10 * i;
        if (v != 0 && v % (1ull << shift) == 0) {
            (void)snprintf(buf, len, "%llu %s", (unsigned long long)(v >> shift), names[i]);
            return;
        }
    }
    (void)snprintf(buf, len, "%llu B", (unsigned long long)v);
}

/* parse_size: a whole number, optional spaces, an optional 1024-based unit: k K KiB, M MiB,
 * G GiB, T TiB (any case) or B. A plain number counts units of plain (1 or 1 MiB). RC_BADREQ
 * with the reason in err (prefixed by the key). */
static enum rc
parse_size(const char *key, const char *v, uint64_t plain, uint64_t *out, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned shift;
    } units[] = {{"b", 0},   {"k", 10},   {"kib", 10}, {"m", 20},   {"mib", 20},
                 {"g", 30},  {"gib", 30}, {"t", 40},   {"tib", 40}, {"kb", 99},
                 {"mb", 99}, {"gb", 99},  {"tb", 99}};
    char *end = NULL;
    errno = 0;
    unsigned long long n = isdigit((unsigned char)v[0]) ? strtoull(v, &end, 10) : 0;
    if (end == NULL || errno != 0)
        goto bad;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end == '\0') {
        if (n > UINT64_MAX / plain)
            goto bad;
        *out = n * plain;
        return RC_OK;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].name) != 0)
            continue;
        if (units[i].shift == 99) {
            (void)snprintf(err, errlen,
                           "%s: '%s' is ambiguous: write %c or %ciB (sizes are 1024-based)", key,
                           end, toupper((unsigned char)end[0]), toupper((unsigned char)end[0]));
            return RC_BADREQ;
        }
        if (units[i].shift > 0 && n > (UINT64_MAX >> units[i].shift))
            goto bad;
        *out = (uint64_t)n << units[i].shift;
        return RC_OK;
    }
bad:
    (void)snprintf(err, errlen,
                   "%s: expected a size such as %s, got '%s' (a whole number, optionally with k, "
                   "M, G, T or KiB, MiB, GiB, TiB: 1024-based)",
                   key, plain == 1 ? "1048576, 512k, 100M or 1G" : "1024 (MiB), 512M or 2G", v);
    return RC_BADREQ;
}

static enum rc
set_number(const struct key_def *k, uint64_t *slot, const char *value, char *err, size_t errlen)
{
    uint64_t n = 0;
    enum rc rc = RC_OK;
    char lo[32], hi[32];
    if (k->kind == KEY_BYTES || k->kind == KEY_MIB) {
        uint64_t plain = k->kind == KEY_MIB ? 1ull << 20 : 1;
        rc = parse_size(k->name, value, plain, &n, err, errlen);
        if (rc != RC_OK)
            return rc;
        if (n % plain != 0) {
            (void)snprintf(err, errlen, "%s: %s is not a whole number of MiB", k->name, value);
            return RC_BADREQ;
        }
        n /= plain;
        if (n < k->min || n > k->max) {
            fmt_size(k->min * plain, lo, sizeof(lo));
            fmt_size(k->max * plain, hi, sizeof(hi));
            (void)snprintf(err, errlen, "%s: %s is out of range (%s to %s)", k->name, value, lo,
                           hi);
            return RC_BADREQ;
        }
        *slot = n;
        return RC_OK;
    }
    char *end = NULL;
    errno = 0;
    if (!isdigit((unsigned char)value[0])) {
        (void)snprintf(err, errlen, "%s: expected a whole number, got '%s'", k->name, value);
        return RC_BADREQ;
    }
    unsigned long long v = strtoull(value, &end, k->kind == KEY_MODE ? 8 : 10);
    if (errno != 0 || end == value || *end != '\0' || v < k->min || v > k->max) {
        if (k->kind == KEY_MODE)
            (void)snprintf(err, errlen, "%s: expected octal permission bits such as 0660, got '%s'",
                           k->name, value);
        else
            (void)snprintf(err, errlen, "%s: expected a whole number from %llu to %llu, got '%s'",
                           k->name, (unsigned long long)k->min, (unsigned long long)k->max, value);
        return RC_BADREQ;
    }
    *slot = v;
    return RC_OK;
}

/* set_relative: *slot = base/rel with "." and ".." resolved lexically (base is absolute and,
 * from config_load, free of symbolic links, so ".." means its parent). */
static enum rc
set_relative(char **slot, const char *key, const char *base, const char *rel, char *err,
             size_t errlen)
{
    char joined[PATH_MAX], clean[PATH_MAX];
    int n = snprintf(joined, sizeof(joined), "%s/%s", base, rel);
    if (n < 0 || (size_t)n >= sizeof(joined)) {
        (void)snprintf(err, errlen, "%s: path too long", key);
        return RC_BADREQ;
    }
    size_t len = 0;
    for (const char *p = joined; *p != '\0';) {
        while (*p == '/')
            p++;
        size_t seg = strcspn(p, "/");
        if (seg == 0 || (seg == 1 && p[0] == '.')) {
            p += seg;
            continue;
        }
        if (seg == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && clean[--len] != '/')
                ;
            p += seg;
            continue;
        }
        clean[len++] = '/';
        memcpy(clean + len, p, seg);
        len += seg;
        p += seg;
    }
    if (len == 0)
        clean[len++] = '/';
    clean[len] = '\0';
    return set_str(slot, clean);
}

/* parse_milli: "2", "0.5", "1.25" as thousandths; false for anything else. */
static bool
parse_milli(const char *v, uint64_t max, uint64_t *out)
{
    uint64_t whole = 0, frac = 0;
    const char *p = v;
    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > max / 1000)
            return false;
    }
    if (*p == '.') {
        int places = 0;
        for (p++; isdigit((unsigned char)*p); p++, places++) {
            if (places >= 3)
                return false;
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (places == 0)
            return false;
        for (; places < 3; places++)
            frac *= 10;
    }
    if (*p != '\0' || whole * 1000 + frac > max)
        return false;
    *out = whole * 1000 + frac;
    return true;
}

static const char *const limit_names[] = {"memory", "pids", "cpus", "disk"};

const char *
config_limit_name(unsigned bit)
{
    for (unsigned i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++)
        if (bit == 1u << i)
            return limit_names[i];
    return "?";
}

bool
config_parse_limits(const char *list, unsigned *out)
{
    const char *cur = list, *w;
    size_t n;
    *out = 0;
    while (config_next_type(&cur, &w, &n)) {
        bool known = false;
        for (unsigned i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++) {
            if (strlen(limit_names[i]) == n && memcmp(limit_names[i], w, n) == 0) {
                *out |= 1u << i;
                known = true;
            }
        }
        if (!known)
            return false;
    }
    return true;
}

/* set_key: assign one key; base (NULL = none) is the directory a relative path is relative to. */
static enum rc
set_key(struct config *cfg, const struct key_def *k, const char *value, const char *base, char *err,
        size_t errlen)
{
    void *slot = (char *)cfg + k->off;
    switch (k->kind) {
    case KEY_STR:
    case KEY_PATH: {
        if (strlen(value) >= CONFIG_VALUE_MAX || strpbrk(value, "\r\n") != NULL) {
            (void)snprintf(err, errlen, "%s: the value must be one line of at most %d bytes",
                           k->name, CONFIG_VALUE_MAX - 1);
            return RC_BADREQ;
        }
        bool special = strcmp(k->name, "listen") == 0 &&
                       (strncmp(value, "fd:", 3) == 0 || strcmp(value, "systemd") == 0);
        if (k->kind == KEY_STR || base == NULL || value[0] == '\0' || value[0] == '/' || special)
            return set_str(slot, value);
        return set_relative(slot, k->name, base, value, err, errlen);
    }
    case KEY_BOOL:
        if (!parse_bool(value, slot)) {
            (void)snprintf(err, errlen, "%s: expected on or off, got '%s'", k->name, value);
            return RC_BADREQ;
        }
        return RC_OK;
    case KEY_MILLI:
        if (!parse_milli(value, k->max, slot)) {
            (void)snprintf(err, errlen,
                           "%s: expected a number from 0 to %llu with at most 3 decimals, got '%s'",
                           k->name, (unsigned long long)(k->max / 1000), value);
            return RC_BADREQ;
        }
        return RC_OK;
    case KEY_U64:
    case KEY_BYTES:
    case KEY_MIB:
    case KEY_MODE:
        return set_number(k, slot, value, err, errlen);
    }
    return RC_BADREQ;
}

enum rc
config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct key_def *k = find_key(key, strlen(key));
    if (k == NULL) {
        (void)snprintf(err, errlen, "unknown configuration key '%s'", key);
        return RC_BADREQ;
    }
    return set_key(cfg, k, value, NULL, err, errlen);
}

/* parse_text: config_parse with the directory relative paths are relative to (NULL = none). */
static enum rc
parse_text(struct config *cfg, const char *text, size_t len, const char *base, char *err,
           size_t errlen)
{
    const char *p = text, *end = text + len;
    unsigned lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *b = p, *e = le;
        lineno++;
        p = nl ? nl + 1 : end;
        span_trim_ends(&b, &e);
        if (b == e || *b == '#')
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq == NULL) {
            (void)snprintf(err, errlen, "line %u: expected 'key = value'", lineno);
            return RC_BADREQ;
        }
        const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
        span_trim_ends(&kb, &ke);
        span_trim_ends(&vb, &ve);
        /* A value may be quoted to keep leading or trailing spaces. */
        if (ve - vb >= 2 && *vb == '"' && ve[-1] == '"') {
            vb++;
            ve--;
        }
        char key[64], val[CONFIG_VALUE_MAX];
        if ((size_t)(ke - kb) >= sizeof(key) || (size_t)(ve - vb) >= sizeof(val)) {
            (void)snprintf(err, errlen, "line %u: key or value too long", lineno);
            return RC_BADREQ;
        }
        memcpy(key, kb, (size_t)(ke - kb));
        key[ke - kb] = '\0';
        memcpy(val, vb, (size_t)(ve - vb));
        val[ve - vb] = '\0';
        if (memchr(val, '\0', (size_t)(ve - vb)) != NULL) {
            (void)snprintf(err, errlen, "line %u: NUL byte in value", lineno);
            return RC_BADREQ;
        }
        char sub[512];
        const struct key_def *k = find_key(key, strlen(key));
        enum rc rc = RC_BADREQ;
        if (k == NULL)
            (void)snprintf(sub, sizeof(sub), "unknown configuration key '%s'", key);
        else
            rc = set_key(cfg, k, val, base, sub, sizeof(sub));
        if (rc != RC_OK) {
            (void)snprintf(err, errlen, "line %u: %s", lineno,
                           rc == RC_NOMEM ? "out of memory" : sub);
            return rc;
        }
    }
    return RC_OK;
}

enum rc
config_parse(struct config *cfg, const char *text, size_t len, char *err, size_t errlen)
{
    return parse_text(cfg, text, len, NULL, err, errlen);
}

static enum rc
read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)snprintf(err, errlen, "cannot open configuration file %s: %s", path, strerror(errno));
        return RC_IO;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    size_t n = 0;
    enum rc rc = RC_OK;
    if (buf == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, CONFIG_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            (void)snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = RC_IO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CONFIG_FILE_MAX) {
            (void)snprintf(err, errlen, "%s is larger than %d bytes", path, CONFIG_FILE_MAX);
            rc = RC_TOOBIG;
            goto out;
        }
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

enum rc
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    enum rc rc = config_init(cfg);
    if (rc != RC_OK)
        return rc;
    if (path != NULL) {
        char *text = NULL, base[PATH_MAX];
        size_t len = 0;
        rc = read_file(path, &text, &len, err, errlen);
        if (rc == RC_OK && realpath(path, base) == NULL) {
            (void)snprintf(err, errlen, "cannot resolve %s: %s", path, strerror(errno));
            rc = RC_IO;
        }
        if (rc == RC_OK) {
            char *slash = strrchr(base, '/');
            slash[slash == base ? 1 : 0] = '\0';
            char sub[600];
            rc = parse_text(cfg, text, len, base, sub, sizeof(sub));
            if (rc != RC_OK)
                (void)snprintf(err, errlen, "%s: %s", path, sub);
        }
        free(text);
        if (rc != RC_OK)
            return rc;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        char env[80] = "LABBOX_";
        size_t n = strlen(env);
        for (const char *c = keys[i].name; *c && n + 1 < sizeof(env); c++)
            env[n++] = (char)toupper((unsigned char)*c);
        env[n] = '\0';
        const char *v = getenv(env);
        if (v == NULL)
            continue;
        char sub[512];
        rc = config_set(cfg, keys[i].name, v, sub, sizeof(sub));
        if (rc != RC_OK) {
            (void)snprintf(err, errlen, "environment %s: %s", env, sub);
            return rc;
        }
    }
    return config_finish(cfg, err, errlen);
}

static const char *const identity_names[] = {
    "none",        /* IDENTITY_NONE */
    "address",     /* IDENTITY_ADDRESS */
    "remote_user", /* IDENTITY_REMOTE_USER */
};

enum identity_mode
config_identity(const struct config *cfg)
{
    for (size_t i = 0; i < sizeof(identity_names) / sizeof(identity_names[0]); i++)
        if (strcmp(cfg->identity, identity_names[i]) == 0)
            return (enum identity_mode)i;
    return IDENTITY_NONE; /* config_finish refuses any other value */
}

bool
config_is_admin(const struct config *cfg, const char *user)
{
    size_t ul = strlen(user), n;
    const char *cur = cfg->admin_users, *t;
    while (config_next_type(&cur, &t, &n))
        if (n == ul && strncmp(t, user, ul) == 0)
            return true;
    return false;
}

/* The identity keys: a known mode, and trusted_proxies that parse. */
static enum rc
check_identity(const struct config *cfg, char *err, size_t errlen)
{
    bool known = false;
    for (size_t i = 0; i < sizeof(identity_names) / sizeof(identity_names[0]); i++)
        known = known || strcmp(cfg->identity, identity_names[i]) == 0;
    if (!known) {
        (void)snprintf(err, errlen, "identity: expected none, address or remote_user, got '%s'",
                       cfg->identity);
        return RC_BADREQ;
    }
    struct netaddr_net *nets = NULL;
    size_t n = 0;
    char sub[256];
    enum rc rc = netaddr_parse_nets(cfg->trusted_proxies, &nets, &n, sub, sizeof(sub));
    free(nets);
    if (rc == RC_BADREQ)
        (void)snprintf(err, errlen, "trusted_proxies: %s", sub);
    return rc;
}

/* The sandbox's keys that depend on each other (after max_concurrent is known). */
static enum rc
check_sandbox_keys(struct config *cfg, char *err, size_t errlen)
{
    if (!config_parse_limits(cfg->allow_unenforced, &cfg->unenforced)) {
        (void)snprintf(err, errlen,
                       "allow_unenforced: expected limits among memory, pids, cpus and disk, got "
                       "'%s'",
                       cfg->allow_unenforced);
        return RC_BADREQ;
    }
    if (cfg->sandbox_uid_count < cfg->max_concurrent) {
        (void)snprintf(err, errlen,
                       "sandbox_uid_count (%llu) must be at least max_concurrent (%llu): each "
                       "running job has a uid of its own",
                       (unsigned long long)cfg->sandbox_uid_count,
                       (unsigned long long)cfg->max_concurrent);
        return RC_BADREQ;
    }
    if (cfg->sandbox_uid_base + cfg->sandbox_uid_count > 4000000000ull) {
        (void)snprintf(err, errlen,
                       "sandbox_uid_base + sandbox_uid_count must stay below 4000000000");
        return RC_BADREQ;
    }
    return RC_OK;
}

/* The keys whose value is one of a few names. */
static enum rc
check_names(const struct config *cfg, char *err, size_t errlen)
{
    if (strcmp(cfg->backend, "local") != 0 && strcmp(cfg->backend, "docker") != 0 &&
        strcmp(cfg->backend, "modal") != 0) {
        (void)snprintf(err, errlen, "backend: expected local, docker or modal, got '%s'",
                       cfg->backend);
        return RC_BADREQ;
    }
    if (cfg->log_level[0] != '\0' && strcmp(cfg->log_level, "err") != 0 &&
        strcmp(cfg->log_level, "warn") != 0 && strcmp(cfg->log_level, "info") != 0 &&
        strcmp(cfg->log_level, "debug") != 0) {
        (void)snprintf(err, errlen, "log_level: expected err, warn, info or debug, got '%s'",
                       cfg->log_level);
        return RC_BADREQ;
    }
    return check_identity(cfg, err, errlen);
}

/* An instance name: letters, digits, - and _, at most 63 characters ("" = not set). */
static enum rc
instance_valid(const char *v, const char *what, char *err, size_t errlen)
{
    for (const char *c = v; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_') {
            (void)snprintf(err, errlen, "%s: only letters, digits, - and _ allowed", what);
            return RC_BADREQ;
        }
    }
    if (strlen(v) > 63) {
        (void)snprintf(err, errlen, "%s: at most 63 characters", what);
        return RC_BADREQ;
    }
    return RC_OK;
}

/* modal_image_commands: "" or a JSON array of non-empty one-line strings (which Dockerfile
 * instructions labbox accepts is checked when a job builds its image). */
static enum rc
image_commands_valid(const char *v, char *err, size_t errlen)
{
    if (v[0] == '\0')
        return RC_OK;
    json_object *a = json_tokener_parse(v);
    bool ok = a != NULL && json_object_is_type(a, json_type_array);
    for (size_t i = 0; ok && i < json_object_array_length(a); i++) {
        json_object *it = json_object_array_get_idx(a, i);
        ok = json_object_is_type(it, json_type_string) && json_object_get_string_len(it) > 0 &&
             strpbrk(json_object_get_string(it), "\n\r") == NULL;
    }
    json_object_put(a);
    if (ok)
        return RC_OK;
    (void)snprintf(err, errlen,
                   "modal_image_commands: expected a JSON array of Dockerfile instructions, one "
                   "line each, e.g. [\"RUN pip install pandas\"]");
    return RC_BADREQ;
}

enum rc
config_instance(struct config *cfg, int data_fd, bool create, char *err, size_t errlen)
{
    char *text = NULL, id[ID_LEN + 1], name[32];
    size_t len = 0;
    if (cfg->instance[0] != '\0')
        return RC_OK;
    for (int round = 0; round < 2; round++) {
        enum rc rc = fs_read_all(data_fd, INSTANCE_FILE, 128, &text, &len);
        if (rc == RC_OK) {
            while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
            rc = len > 0 ? instance_valid(text, INSTANCE_FILE " in data_dir", err, errlen)
                         : RC_BADREQ;
            if (rc == RC_OK)
                rc = set_str(&cfg->instance, text);
            else if (len == 0)
                (void)snprintf(err, errlen, "%s in data_dir is empty", INSTANCE_FILE);
            free(text);
            return rc;
        }
        if (rc != RC_NOTFOUND || !create) {
            (void)snprintf(err, errlen, "%s in data_dir: %s", INSTANCE_FILE,
                           rc == RC_NOTFOUND ? "missing (labbox serve creates it)" : rc_str(rc));
            return rc;
        }
        /* First start: a random name, written once; of two racing starts the first wins. */
        if (id_new(id) != RC_OK)
            return RC_IO;
        int k = snprintf(name, sizeof(name), "lb-%.16s\n", id);
        char tmp[64];
        int t = snprintf(tmp, sizeof(tmp), ".%s.%ld.new", INSTANCE_FILE, (long)getpid());
        if (k < 0 || (size_t)k >= sizeof(name) || t < 0 || (size_t)t >= sizeof(tmp) ||
            fs_write_atomic(data_fd, tmp, name, (size_t)k) != RC_OK)
            return RC_IO;
        if (linkat(data_fd, tmp, data_fd, INSTANCE_FILE, 0) != 0 && errno != EEXIST) {
            (void)unlinkat(data_fd, tmp, 0);
            (void)snprintf(err, errlen, "cannot create %s in data_dir: %s", INSTANCE_FILE,
                           strerror(errno));
            return RC_IO;
        }
        (void)unlinkat(data_fd, tmp, 0);
    }
    return RC_IO;
}

enum rc
config_finish(struct config *cfg, char *err, size_t errlen)
{
    enum rc rc = check_names(cfg, err, errlen);
    if (rc != RC_OK)
        return rc;
    if (cfg->max_file_bytes > cfg->max_job_bytes) {
        (void)snprintf(err, errlen, "max_file_bytes (%llu) is larger than max_job_bytes (%llu)",
                       (unsigned long long)cfg->max_file_bytes,
                       (unsigned long long)cfg->max_job_bytes);
        return RC_BADREQ;
    }
    char **argv = NULL;
    rc = config_split_argv(cfg->agent_command, &argv);
    config_free_argv(argv);
    if (rc != RC_OK) {
        (void)snprintf(err, errlen, "agent_command: %s",
                       rc == RC_NOMEM ? "out of memory" : "empty, or an unterminated quote");
        return rc;
    }
    if (cfg->max_concurrent == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->max_concurrent = n > 0 ? (uint64_t)n : 1;
    }
    rc = check_sandbox_keys(cfg, err, errlen);
    if (rc != RC_OK)
        return rc;
    if (strncmp(cfg->listen, "fd:", 3) == 0 && strcmp(cfg->listen, "fd:0") != 0) {
        (void)snprintf(err, errlen, "listen: expected a socket path, fd:0 or systemd, got '%s'",
                       cfg->listen);
        return RC_BADREQ;
    }
    const struct {
        char **slot;
        const char *name;
    } paths[] = {{&cfg->data_dir, "data_dir"},
                 {&cfg->agent_dir, "agent_dir"},
                 {&cfg->sandbox_dir, "sandbox_dir"},
                 {&cfg->log_file, "log_file"}};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *v = *paths[i].slot;
        bool optional = paths[i].slot == &cfg->log_file;
        if (v[0] == '\0' && !optional) {
            (void)snprintf(err, errlen, "%s: must not be empty", paths[i].name);
            return RC_BADREQ;
        }
        if (v[0] != '\0' && v[0] != '/') {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof(cwd)) == NULL)
                return RC_IO;
            rc = set_relative(paths[i].slot, paths[i].name, cwd, v, err, errlen);
            if (rc != RC_OK)
                return rc;
        }
    }
    rc = instance_valid(cfg->instance, "instance", err, errlen);
    if (rc == RC_OK)
        rc = image_commands_valid(cfg->modal_image_commands, err, errlen);
    if (rc != RC_OK)
        return rc;
    if (cfg->listen[0] == '\0') {
        char sock[PATH_MAX];
        int k = snprintf(sock, sizeof(sock), "%s/labbox.sock", cfg->data_dir);
        if (k < 0 || (size_t)k >= sizeof(sock))
            return RC_BADREQ;
        rc = set_str(&cfg->listen, sock);
        if (rc != RC_OK)
            return rc;
    }
    return RC_OK;
}

enum rc
config_check_files(const struct config *cfg, char *err, size_t errlen)
{
    struct stat st;
    const char *why = NULL;
    if (stat(cfg->agent_dir, &st) != 0)
        why = errno == ENOENT ? "does not exist" : strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "is not a directory";
    else if (access(cfg->agent_dir, R_OK | X_OK) != 0)
        why = "cannot be read by labbox's user";
    if (why == NULL)
        return RC_OK;
    (void)snprintf(err, errlen,
                   "agent_dir: %s %s (it is copied into every sandbox: point it at "
                   "your agent's directory)",
                   cfg->agent_dir, why);
    return RC_BADREQ;
}

/* The user labbox runs as: this process's, except that root checking a data dir another user
 * owns (check-config before `systemctl start`) checks for that user. */
static uid_t
service_uid(const struct config *cfg)
{
    struct stat st;
    if (geteuid() == 0 && stat(cfg->data_dir, &st) == 0)
        return st.st_uid;
    return geteuid();
}

const char *
config_output_group(const struct config *cfg)
{
    return cfg->output_group[0] != '\0' ? cfg->output_group : cfg->socket_group;
}

enum rc
config_check_host(const struct config *cfg, bool create, char *err, size_t errlen)
{
    uid_t uid = service_uid(cfg);
    gid_t gid;
    enum rc rc = RC_OK;
    /* Membership is a property of the process: checked only as labbox's own user. */
    if (config_output_group(cfg)[0] != '\0' && uid == geteuid())
        rc = owner_group(cfg->output_group[0] != '\0' ? "output_group" : "socket_group",
                         config_output_group(cfg), "the files nginx sends", false, &gid, err,
                         errlen);
    if (rc == RC_OK)
        rc = owner_private_dir("sandbox_dir", cfg->sandbox_dir, uid, create, err, errlen);
    return rc;
}

/* value_text: one key's value as config_format writes it (unquoted); false if it does not fit. */
static bool
value_text(const struct config *cfg, const struct key_def *k, char *buf, size_t len)
{
    const void *slot = (const char *)cfg + k->off;
    int n;
    switch (k->kind) {
    case KEY_STR:
    case KEY_PATH:
        n = snprintf(buf, len, "%s", *(char *const *)slot);
        break;
    case KEY_BOOL:
        n = snprintf(buf, len, "%s", *(const bool *)slot ? "on" : "off");
        break;
    case KEY_MODE:
        n = snprintf(buf, len, "0%03llo", (unsigned long long)*(const uint64_t *)slot);
        break;
    case KEY_MILLI: {
        unsigned long long v = (unsigned long long)*(const uint64_t *)slot;
        n = snprintf(buf, len, "%llu.%03llu", v / 1000, v % 1000);
        break;
    }
    default:
        n = snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)slot);
        break;
    }
    return n >= 0 && (size_t)n < len;
}

/* append_name adds a key name to a space-separated list in buf (len bytes), as far as it fits. */
static void
append_name(char *buf, size_t len, const char *name)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", name);
    if (n < 0 || (size_t)n >= len - used)
        buf[used] = '\0';
}

enum rc
config_keep_restart_keys(struct config *next, const struct config *running, char *kept,
                         char *applied, size_t len, char *err, size_t errlen)
{
    char a[CONFIG_VALUE_MAX], b[CONFIG_VALUE_MAX];
    kept[0] = applied[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *k = &keys[i];
        if (!value_text(next, k, a, sizeof(a)) || !value_text(running, k, b, sizeof(b)) ||
            strcmp(a, b) == 0)
            continue;
        if (config_is_reloadable(k->name)) {
            append_name(applied, len, k->name);
            continue;
        }
        append_name(kept, len, k->name);
        void *dst = (char *)next + k->off;
        const void *src = (const char *)running + k->off;
        if (is_string_kind(k->kind)) {
            if (set_str(dst, *(char *const *)src) != RC_OK)
                return RC_NOMEM;
        } else if (k->kind == KEY_BOOL) {
            *(bool *)dst = *(const bool *)src;
        } else {
            *(uint64_t *)dst = *(const uint64_t *)src;
        }
    }
    return config_finish(next, err, errlen);
}

enum rc
config_format(const struct config *cfg, char **out, size_t *out_len)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap), val[CONFIG_VALUE_MAX];
    enum rc rc = RC_OK;
    *out = NULL;
    if (buf == NULL)
        return RC_NOMEM;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *k = &keys[i];
        if (!value_text(cfg, k, val, sizeof(val))) {
            rc = RC_TOOBIG;
            goto out;
        }
        const char *q = is_string_kind(k->kind) ? "\"" : "";
        size_t need = strlen(k->name) + strlen(val) + 8;
        if (len + need > cap) {
            char *nb = realloc(buf, cap * 2 + need);
            if (nb == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            buf = nb;
            cap = cap * 2 + need;
        }
        int n = snprintf(buf + len, cap - len, "%s = %s%s%s\n", k->name, q, val, q);
        if (n < 0 || (size_t)n >= cap - len) {
            rc = RC_TOOBIG;
            goto out;
        }
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    return rc;
}

void
config_free_argv(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

enum rc
config_split_argv(const char *s, char ***out_argv)
{
    *out_argv = NULL;
    size_t cap = 8, n = 0, len = strlen(s);
    char **argv = calloc(cap, sizeof(*argv));
    char *word = malloc(len + 1);
    enum rc rc = RC_OK;
    if (argv == NULL || word == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (*p == '\0')
            break;
        size_t w = 0;
        char quote = 0;
        for (; *p; p++) {
            char c = *p;
            if (quote == '\'') {
                if (c == '\'')
                    quote = 0;
                else
                    word[w++] = c;
            } else if (quote == '"') {
                if (c == '"')
                    quote = 0;
                else if (c == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
                    word[w++] = *++p;
                else
                    word[w++] = c;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '\\' && p[1] != '\0') {
                word[w++] = *++p;
            } else if (c == ' ' || c == '\t' || c == '\n') {
                break;
            } else {
                word[w++] = c;
            }
        }
        if (quote != 0) {
            rc = RC_BADREQ;
            goto out;
        }
        word[w] = '\0';
        if (n + 2 > cap) {
            char **na = realloc(argv, cap * 2 * sizeof(*argv));
            if (na == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            argv = na;
            cap *= 2;
        }
        argv[n] = strdup(word);
        if (argv[n] == NULL) {
            rc = RC_NOMEM;
            goto out;
        }
        argv[++n] = NULL;
    }
    if (n == 0) {
        rc = RC_BADREQ;
        goto out;
    }
    *out_argv = argv;
    argv = NULL;
out:
    config_free_argv(argv);
    free(word);
    return rc;
}

bool
config_next_type(const char **cursor, const char **out_p, size_t *out_len)
{
    const char *p = *cursor;
    while (*p == ' ' || *p == ',' || *p == '\t')
        p++;
    const char *b = p;
    while (*p && *p != ' ' && *p != ',' && *p != '\t')
        p++;
    *cursor = p;
    *out_p = b;
    *out_len = (size_t)(p - b);
    return p > b;
}

bool
config_type_allowed(const struct config *cfg, const char *type)
{
    size_t tl = strlen(type), n;
    const char *cur = cfg->allowed_types, *t;
    if (strcmp(type, "application/octet-stream") == 0)
        return cfg->allow_octet_stream;
    while (config_next_type(&cur, &t, &n))
        if (n == tl && strncasecmp(t, type, tl) == 0)
            return true;
    return false;
}
