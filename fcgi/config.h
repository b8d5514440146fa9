/* config: labbox.conf (key = value) plus LABBOX_<KEY> overrides, validated at start-up and on
 * each reload (SIGHUP: serve swaps in a new immutable struct config, see main.c). */
#ifndef LABBOX_CONFIG_H
#define LABBOX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

struct config {
    char *data_dir;      /* absolute after config_finish */
    char *backend;       /* "local", "docker" or "modal" */
    char *listen;        /* unix socket path, "fd:0" or "systemd"; default <data_dir>/labbox.sock */
    char *agent_dir;     /* copied into /workspace */
    char *sandbox_dir;   /* where work dirs live; labbox's own, private to one instance */
    char *agent_command; /* argv, split like a shell without a shell */
    char *agent_env;     /* space-separated NAME or NAME=VALUE given to the agent */
    char *allowed_types; /* space/comma separated MIME types */
    char *log_level;     /* err warn info debug */
    char *cgroup_root;   /* local backend: where the cgroup hierarchies are mounted */
    char *allow_unenforced; /* limits the local backend may run without: "memory,pids,..." */
    char *docker_host;      /* unix:///path or /path */
    char *docker_image;     /* image reference */
    char *modal_app;        /* Modal app name */
    char *modal_image;      /* registry tag the Modal image is built from */
    char *modal_config;     /* path of .modal.toml ("" = ~/.modal.toml) */
    char *modal_ca_file;    /* PEM file of the CAs Modal's TLS certificates are checked against
                             * ("" = the system's) */
    char *modal_profile;    /* profile in .modal.toml ("" = the active one) */
    char *socket_group;     /* group given the FastCGI socket ("" = leave as is) */
    char *output_group;     /* group nginx reads output files through ("" = socket_group) */
    char *instance;         /* names this labbox's containers/sandboxes; "" = <data_dir>/instance */
    char *modal_image_commands; /* JSON array of Dockerfile instructions for the Modal image */
    char *log_file;             /* labbox's own log: appended to, reopened on SIGHUP; "" = stderr */
    char *identity;             /* who a request is: "none", "address" or "remote_user" */
    char *trusted_proxies;      /* addresses/CIDRs whose X-Forwarded-For is believed ("" = none) */
    char *admin_users;          /* remote_user names that see and manage every job */
    uint64_t max_file_bytes;
    uint64_t max_job_bytes;
    uint64_t max_files;
    uint64_t max_concurrent; /* 0 = number of CPUs */
    uint64_t max_queue;
    uint64_t wall_timeout; /* seconds */
    uint64_t cpu_time;     /* seconds */
    uint64_t memory_mb;
    uint64_t pids;
    uint64_t file_size_mb;
    uint64_t cpus_milli;          /* CPU limit in thousandths of a CPU ("cpus"); 0 = none */
    uint64_t workspace_max_mb;    /* size of the agent's writable space */
    uint64_t workspace_max_files; /* files (inodes) in it */
    uint64_t sandbox_uid_base;    /* local backend: first uid of the per-job range */
    uint64_t sandbox_uid_count;   /* and how many uids it has (>= max_concurrent) */
    uint64_t output_max_bytes;
    uint64_t output_max_files;
    uint64_t log_max_bytes;
    uint64_t log_line_max;
    uint64_t log_flush_ms;
    uint64_t job_ttl;     /* seconds */
    uint64_t threads;     /* FastCGI request threads */
    uint64_t max_streams; /* concurrent event streams */
    uint64_t disk_reserve_mb;
    uint64_t socket_mode;           /* permission bits of the FastCGI socket (octal in the file) */
    uint64_t keepalive_ms;          /* event stream keepalive comment interval */
    uint64_t modal_sandbox_version; /* 1 = V1 sandboxes (SandboxCreate), 2 = V2 (SandboxCreateV2) */
    unsigned unenforced;            /* LIMIT_* bits of allow_unenforced, set by config_finish */
    uint64_t user_max_queued;       /* per identity: jobs waiting (0 = no limit) */
    uint64_t user_max_running;      /* per identity: sandboxes at once (0 = no limit) */
    uint64_t user_max_bytes;        /* per identity: bytes of jobs kept (0 = no limit) */
    bool network;
    bool allow_octet_stream;
};

/* The limits a backend enforces; allow_unenforced names those it may run without. */
#define LIMIT_MEMORY 0x1u /* memory_mb */
#define LIMIT_PIDS   0x2u /* pids */
#define LIMIT_CPUS   0x4u /* cpus */
#define LIMIT_DISK   0x8u /* workspace_max_mb and workspace_max_files */
#define LIMIT__ALL   0xfu

/* config_limit_name: "memory", "pids", "cpus" or "disk" for one LIMIT_* bit (static). */
const char *config_limit_name(unsigned bit);
/* config_parse_limits: a list of limit names (separated by spaces or commas) as LIMIT_* bits;
 * false for an unknown name. Pure. */
bool config_parse_limits(const char *list, unsigned *out);
/* Who a request is (the identity key): nobody, its client address, or the web server's user. */
enum identity_mode {
    IDENTITY_NONE,        /* capability URLs only: no owner, no quotas, a FIFO queue */
    IDENTITY_ADDRESS,     /* the client address counts for quotas and fairness */
    IDENTITY_REMOTE_USER, /* REMOTE_USER owns jobs; requests without one are refused */
};

/* config_identity: cfg->identity as an enum (checked by config_finish). */
enum identity_mode config_identity(const struct config *cfg);
/* config_is_admin: is user on admin_users? */
bool config_is_admin(const struct config *cfg, const char *user);

/* config_init fills cfg with defaults (owned strings); config_fini frees and zeroes it. */
enum rc config_init(struct config *cfg) LB_MUST_CHECK;
void config_fini(struct config *cfg);

/* config_set assigns one key from text. RC_BADREQ with a message naming the key in err for an
 * unknown key or a bad value. Pure: no I/O. */
enum rc config_set(struct config *cfg, const char *key, const char *value, char *err,
                   size_t errlen) LB_MUST_CHECK;

/* config_parse applies a whole file's text (len bytes, need not be NUL-terminated): lines of
 * "key = value", '#' comments, blank lines. The first error names its line and key. Pure. */
enum rc config_parse(struct config *cfg, const char *text, size_t len, char *err,
                     size_t errlen) LB_MUST_CHECK;

/* config_load: defaults, then the file at path (NULL = none), then LABBOX_<KEY> from the
 * environment, then config_finish. A relative path in the file (data_dir, listen, agent_dir,
 * sandbox_dir, modal_config, log_file) is relative to the file's directory; one from the
 * environment or a default is relative to the working directory. */
enum rc config_load(struct config *cfg, const char *path, char *err, size_t errlen) LB_MUST_CHECK;

/* config_instance: the default instance name (cfg->instance unset): the one stored in data_fd's
 * file "instance", or with create (`labbox serve`) a new random one ("lb-" and 16 characters)
 * stored there on first start, so that every data dir, and so every deployment, has its own.
 * RC_BADREQ/RC_IO/RC_NOTFOUND with err. */
enum rc config_instance(struct config *cfg, int data_fd, bool create, char *err,
                        size_t errlen) LB_MUST_CHECK;

/* config_finish resolves derived values (absolute data_dir, listen path, CPU count) and checks
 * cross-key constraints. */
enum rc config_finish(struct config *cfg, char *err, size_t errlen) LB_MUST_CHECK;

/* config_check_files checks what the configuration names on this host: agent_dir must be a
 * directory labbox can read. RC_BADREQ with a message naming the key and the path. */
enum rc config_check_files(const struct config *cfg, char *err, size_t errlen) LB_MUST_CHECK;

/* config_output_group: the group nginx reads job output files through: output_group, or
 * socket_group when that is empty; "" = none (outputs are then readable by any local user who
 * knows the job's id). */
const char *config_output_group(const struct config *cfg);

/* config_check_host checks what labbox's user must own on this host: sandbox_dir is a
 * directory of that user's nobody else can control (owner_private_dir; with create, made if
 * missing), and labbox's user may give files to the output group. Run as root for a data dir
 * another user owns (check-config before the service starts), it checks for that user.
 * RC_BADREQ with the key and the reason in err; RC_IO when sandbox_dir cannot be made or
 * reached (owner_private_dir). */
enum rc config_check_host(const struct config *cfg, bool create, char *err,
                          size_t errlen) LB_MUST_CHECK;

/* config_is_reloadable: whether a change of key takes effect on SIGHUP (see the table in
 * config.c); every other key needs a restart. A key added without a decision needs a restart. */
bool config_is_reloadable(const char *key);

/* config_keep_restart_keys copies every key that needs a restart from running into next, so a
 * reload changes only what it can, then re-checks cross-key constraints (config_finish). The
 * names of the keys whose values differ are written space separated (each buffer len bytes,
 * "" if none): those kept at their running values to kept, the others to applied. */
enum rc config_keep_restart_keys(struct config *next, const struct config *running, char *kept,
                                 char *applied, size_t len, char *err, size_t errlen) LB_MUST_CHECK;

/* config_format writes every key of cfg as a config file (key = "value" lines) that
 * config_parse reads back to the same values. *out is the caller's (free). Pure. */
enum rc config_format(const struct config *cfg, char **out, size_t *out_len) LB_MUST_CHECK;

/* config_split_argv splits s like a POSIX shell would split words (quotes and backslashes, no
 * expansion). *out_argv is a NULL-terminated heap array the caller frees with
 * config_free_argv. RC_BADREQ on an unterminated quote or an empty command. */
enum rc config_split_argv(const char *s, char ***out_argv) LB_MUST_CHECK;
void config_free_argv(char **argv);

/* config_next_type: the next type of an allowed_types list at *cursor (separated by spaces,
 * tabs or commas), advancing *cursor; false at the end. Pure. */
bool config_next_type(const char **cursor, const char **out_p, size_t *out_len);

/* config_type_allowed reports whether MIME type is on cfg's allowlist. */
bool config_type_allowed(const struct config *cfg, const char *type);

#endif
