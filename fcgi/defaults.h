/* defaults: every cap and default of labbox in one place; config may override the marked ones. */
#ifndef LABBOX_DEFAULTS_H
#define LABBOX_DEFAULTS_H

/* Configurable (see config.c for the key names). */
#define DEF_MAX_FILE_BYTES   (5ull * 1024 * 1024)  /* per uploaded file */
#define DEF_MAX_JOB_BYTES    (50ull * 1024 * 1024) /* all files of one job */
#define DEF_MAX_FILES        32                    /* files per job */
#define DEF_MAX_QUEUE        100                   /* jobs waiting */
#define DEF_WALL_TIMEOUT_S   600                   /* seconds a job may run */
#define DEF_CPU_TIME_S       600                   /* RLIMIT_CPU of the agent */
#define DEF_MEMORY_MB        1024                  /* address space / cgroup memory */
#define DEF_PIDS             256                   /* processes in the sandbox */
#define DEF_FILE_SIZE_MB     256                   /* RLIMIT_FSIZE of the agent */
#define DEF_CPUS_MILLI       1000                  /* one CPU per job */
#define DEF_WORKSPACE_MB     1024                  /* the agent's writable space */
#define DEF_WORKSPACE_FILES  100000                /* files in it */
#define DEF_UID_BASE         1879048192u           /* 0x70000000: unused by distributions */
#define DEF_UID_COUNT        1024                  /* per-job uids from DEF_UID_BASE */
#define DEF_CGROUP_ROOT      "/sys/fs/cgroup"
#define DEF_SANDBOX_DIR      "/var/lib/labbox/sandboxes" /* root's /var/lib: nobody can squat it */
#define DEF_OUTPUT_MAX_BYTES (100ull * 1024 * 1024)      /* collected outputs, total */
#define DEF_OUTPUT_MAX_FILES 1000                        /* collected outputs, entries */
#define DEF_LOG_MAX_BYTES    (16ull * 1024 * 1024)       /* log.jsonl of one job */
#define DEF_LOG_LINE_MAX     16384                       /* longer output lines are cut */
#define DEF_LOG_FLUSH_MS     100                         /* a partial line is flushed after this */
#define DEF_JOB_TTL_S        86400                       /* finished jobs are kept this long */
#define DEF_THREADS          16                          /* FastCGI request threads */
#define DEF_MAX_STREAMS      4096                        /* concurrent /events streams */
#define DEF_DISK_RESERVE_MB  256                         /* uploads refused below this free space */
#define DEF_KEEPALIVE_MS     15000                       /* event stream keepalive interval */
#define DEF_DOCKER_HOST      "unix:///var/run/docker.sock"
#define DEF_DOCKER_IMAGE     "python:3.12-slim"
#define DEF_MODAL_APP        "labbox"
#define DEF_MODAL_IMAGE      "python:3.12-slim"
#define INSTANCE_FILE        "instance" /* <data_dir>/instance: the default instance name */
#define DEF_AGENT_COMMAND    "python3 agent.py"
#define DEF_IDENTITY         "address"    /* fair per client address out of the box */
#define DEF_USER_MAX_QUEUED  10           /* jobs one identity may have waiting */
#define DEF_USER_MAX_RUNNING 0            /* sandboxes one identity may use; 0 = any */
#define DEF_USER_MAX_BYTES   (1ull << 30) /* bytes one identity's jobs may keep */

/* Fixed caps. */
#define PARAMS_MAX_BYTES (64 * 1024)   /* the params part */
#define SCHEMA_MAX_BYTES (256 * 1024)  /* the agent's params.schema.json */
#define NAME_MAX_BYTES   200           /* an uploaded file name, bytes of UTF-8 */
#define PART_HEADERS_MAX (8 * 1024)    /* all headers of one multipart part */
#define BOUNDARY_MAX     70            /* RFC 2046 section 5.1.1 */
#define OUTPUT_PATH_MAX  1024          /* a relative output or input path */
#define OUTPUT_DEPTH_MAX 16            /* directory nesting in outputs and inputs */
#define JOB_JSON_MAX     (1024 * 1024) /* job.json is read whole */
#define CONFIG_FILE_MAX  (256 * 1024)
#define CONFIG_VALUE_MAX 4096 /* bytes of one configuration value, NUL included */
#define ID_LEN           26   /* base32 characters of a job id */
#define ZIP_BUILDS_MAX   2    /* zips built by request threads at once (old jobs) */
#define JOB_WAIT_MAX_S   60   /* GET /api/jobs/<id>?wait= waits at most this long */

#endif
