/* run: `labbox run`, one job in the foreground from the command line (see run.h). */
#include "cli/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "core/agent.h"
#include "core/intake.h"
#include "core/jobstore.h"
#include "core/supervisor.h"
#include "jobs/filetype.h"
#include "jobs/joblog.h"
#include "log.h"
#include "util/clock.h"
#include "util/fsutil.h"

#define READ_CHUNK 65536 /* bytes read from an input file, or from the log, at a time */
#define POLL_MS    50    /* how often the log is read while the job runs */

struct run_opts {
    const char *config;    /* --config */
    const char *backend;   /* --backend */
    const char *agent_dir; /* --agent-dir */
    const char *params;    /* --params: JSON text, or @FILE */
    const char *out;       /* --out */
    char **files;          /* the FILE and FOLDER arguments */
    int nfiles;
};

static volatile sig_atomic_t g_stop; /* Ctrl-C or SIGTERM: cancel */

static void
on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int
usage(void)
{
    (void)fprintf(stderr, "usage: labbox run [--config FILE] [--backend local|docker|modal] "
                          "[--agent-dir DIR]\n"
                          "                  [--params JSON|@FILE] [--out DIR] FILE|FOLDER...\n");
    return RUN_EXIT_USAGE;
}

/* parse_args: the whole command line ("labbox [--config F] run [OPTIONS] FILE..."): options
 * before the first file, "--" ends them. */
static bool
parse_args(int argc, char **argv, struct run_opts *o)
{
    static const char *const names[] = {"--config", "--backend", "--agent-dir", "--params",
                                        "--out"};
    const char **slots[] = {&o->config, &o->backend, &o->agent_dir, &o->params, &o->out};
    bool command = false;
    int i = 1;
    memset(o, 0, sizeof(*o));
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        size_t k = 0;
        while (k < 5 && strcmp(argv[i], names[k]) != 0)
            k++;
        if (!command && strcmp(argv[i], "run") == 0)
            command = true;
        else if (strncmp(argv[i], "--config=", 9) == 0)
            o->config = argv[i] + 9;
        else if (k < 5 && i + 1 < argc)
            *slots[k] = argv[++i];
        else if (k < 5 || argv[i][0] == '-')
            return false;
        else
            break; /* the first file: the rest are files too */
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    o->files = argv + i;
    o->nfiles = argc - i;
    return command && o->nfiles > 0;
}

/*** configuration ***/

/* Were data_dir and sandbox_dir configured (by the file or LABBOX_*), or are they defaults? */
static void
dirs_configured(const struct config *cfg, bool *data, bool *sandbox)
{
    struct config def;
    char err[256];
    *data = *sandbox = true;
    if (config_init(&def) != RC_OK)
        return;
    RC_IGNORE(config_finish(&def, err, sizeof(err)));
    *data = strcmp(def.data_dir, cfg->data_dir) != 0;
    *sandbox = strcmp(def.sandbox_dir, cfg->sandbox_dir) != 0;
    config_fini(&def);
}

/* The configuration of serve with run's options winning (they go through the environment, so
 * they are checked and named like LABBOX_* values), and a fresh temporary data dir (tmp, ""
 * when none) unless data_dir is configured. */
static int
load_config(const struct run_opts *o, struct config *cfg, char *tmp, size_t tmplen)
{
    char err[1024];
    const char *base = getenv("TMPDIR");
    tmp[0] = '\0';
    if ((o->backend && setenv("LABBOX_BACKEND", o->backend, 1) != 0) ||
        (o->agent_dir && setenv("LABBOX_AGENT_DIR", o->agent_dir, 1) != 0))
        return RUN_EXIT_INTERNAL;
    enum rc rc = config_load(cfg, o->config, err, sizeof(err));
    bool data = true, sandbox = true;
    if (rc == RC_OK)
        dirs_configured(cfg, &data, &sandbox);
    if (rc == RC_OK && !data) {
        int k = snprintf(tmp, tmplen, "%s/labbox-run-XXXXXX", base && base[0] ? base : "/tmp");
        if (k < 0 || (size_t)k >= tmplen || mkdtemp(tmp) == NULL) {
            (void)fprintf(stderr, "labbox: cannot make a temporary data dir: %s\n",
                          strerror(errno));
            tmp[0] = '\0';
            return RUN_EXIT_INTERNAL;
        }
        /* The sandbox user must reach nothing here, but other labbox tools may look. */
        (void)chmod(tmp, 0711);
        /* The work dirs too, unless configured: the default below /var/lib is root's to make. */
        char sbdir[PATH_MAX];
        int m = snprintf(sbdir, sizeof(sbdir), "%s/sandboxes", tmp);
        config_fini(cfg);
        rc = setenv("LABBOX_DATA_DIR", tmp, 1) == 0 &&
                     (sandbox || (m > 0 && (size_t)m < sizeof(sbdir) &&
                                  setenv("LABBOX_SANDBOX_DIR", sbdir, 1) == 0))
                 ? config_load(cfg, o->config, err, sizeof(err))
                 : RC_IO;
    }
    if (rc != RC_OK) {
        (void)fprintf(stderr, "labbox: configuration error: %s\n", err[0] ? err : "out of memory");
        return RUN_EXIT_USAGE;
    }
    /* Only warnings of labbox's own unless asked for more: the job's log is the output. */
    (void)log_set_level(getenv("LABBOX_LOG_LEVEL") ? cfg->log_level : "warn");
    return RUN_EXIT_SUCCEEDED;
}

/*** staging ***/

/* read_params: --params as text, or @FILE's contents; *out is the caller's. */
static bool
read_params(const char *arg, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (arg[0] != '@') {
        *out = strdup(arg);
        *out_len = strlen(arg);
        return *out != NULL;
    }
    int fd = open(arg + 1, O_RDONLY | O_CLOEXEC);
    char *buf = fd >= 0 ? malloc(PARAMS_MAX_BYTES + 2) : NULL;
    ssize_t n = buf != NULL ? read(fd, buf, PARAMS_MAX_BYTES + 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        (void)fprintf(stderr, "labbox: cannot read %s: %s\n", arg + 1, strerror(errno));
        free(buf);
        return false;
    }
    buf[n] = '\0'; /* past PARAMS_MAX_BYTES intake says it is too large */
    *out = buf;
    *out_len = (size_t)n;
    return true;
}

/* One file, read from fd (taken), as input name. RC_OK, or a refusal (in->err) or RC_IO. */
static enum rc
add_file(struct intake *in, int fd, const char *name)
{
    char *buf = malloc(READ_CHUNK);
    enum rc rc = buf != NULL ? intake_file_begin(in, name, strlen(name)) : RC_NOMEM;
    while (rc == RC_OK) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR && !g_stop)
            continue;
        if (n <= 0) {
            rc = n == 0 ? intake_file_end(in) : RC_IO;
            break;
        }
        rc = intake_file_data(in, buf, (size_t)n);
    }
    if (rc == RC_IO && in->err.problem == INTAKE_NONE)
        (void)fprintf(stderr, "labbox: cannot read %s: %s\n", name, strerror(errno));
    free(buf);
    close(fd);
    return rc;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of directory fd (taken), sorted; *out is the caller's (each name and the
 * array). RC_IO. */
static enum rc
list_dir(int fd, char ***out, size_t *out_n)
{
    DIR *d = fdopendir(fd);
    char **v = NULL;
    size_t n = 0;
    struct dirent *de;
    *out = NULL;
    *out_n = 0;
    if (d == NULL) {
        close(fd);
        return RC_IO;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char **nv = realloc(v, (n + 1) * sizeof(*v));
        if (nv == NULL || (nv[n] = strdup(de->d_name)) == NULL) {
            v = nv ? nv : v;
            break;
        }
        v = nv;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_names);
    *out = v;
    *out_n = n;
    return RC_OK;
}

/* A folder, like a dropped one: its files under prefix/, hidden entries and links left out
 * (said on stderr). */
static enum rc
add_dir(struct intake *in, int fd, const char *prefix, int depth)
{
    char **names = NULL, path[OUTPUT_PATH_MAX + NAME_MAX + 2];
    size_t n = 0;
    int dup_fd = dup(fd);
    enum rc rc = dup_fd >= 0 ? list_dir(dup_fd, &names, &n) : RC_IO;
    for (size_t i = 0; rc == RC_OK && i < n && !g_stop; i++) {
        struct stat st;
        int k = snprintf(path, sizeof(path), "%s/%s", prefix, names[i]);
        if (k < 0 || (size_t)k >= sizeof(path) || depth > OUTPUT_DEPTH_MAX) {
            rc = intake_file_begin(in, path, strlen(path)); /* refused: too long or deep */
        } else if (names[i][0] == '.' || fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                   !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            (void)fprintf(stderr, "labbox: leaving out %s (hidden, a link or not a file)\n", path);
        } else {
            int sub =
                openat(fd, names[i],
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
            if (sub < 0) {
                rc = RC_IO;
            } else if (S_ISDIR(st.st_mode)) {
                rc = add_dir(in, sub, path, depth + 1);
                close(sub);
            } else {
                rc = add_file(in, sub, path);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* One command-line argument: a file as its base name, a folder as its own name and its files. */
static enum rc
add_arg(struct intake *in, const char *arg)
{
    struct stat st;
    char real[PATH_MAX];
    int fd = open(arg, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        (void)fprintf(stderr, "labbox: cannot read %s: %s\n", arg,
                      fd < 0 ? strerror(errno) : "not a file or a folder");
        if (fd >= 0)
            close(fd);
        return RC_NOTFOUND;
    }
    if (S_ISREG(st.st_mode)) {
        const char *slash = strrchr(arg, '/');
        return add_file(in, fd, slash ? slash + 1 : arg);
    }
    enum rc rc = RC_IO;
    if (realpath(arg, real) != NULL) {
        const char *slash = strrchr(real, '/');
        rc = add_dir(in, fd, slash && slash[1] ? slash + 1 : "folder", 1);
    }
    close(fd);
    return rc;
}

/* stage_job: the files and params through intake into a published job (out_id). A run exit
 * status; refusals are said on stderr. */
static int
stage_job(const struct config *cfg, struct jobstore *js, const struct pschema *schema,
          const struct run_opts *o, char *out_id)
{
    struct jobstore_stage st = {.dirfd = -1, .inputs_fd = -1};
    struct job job;
    struct intake in;
    char *params = NULL;
    size_t plen = 0;
    int status = RUN_EXIT_INTERNAL;
    jobstore_job_init(&job);
    intake_init(&in, cfg, schema, &st, &job);
    enum rc rc = o->params && !read_params(o->params, &params, &plen) ? RC_NOTFOUND : RC_OK;
    if (rc == RC_OK)
        rc = jobstore_stage_begin(js, &st);
    for (int i = 0; rc == RC_OK && i < o->nfiles && !g_stop; i++)
        rc = add_arg(&in, o->files[i]);
    if (rc == RC_OK && params != NULL && !g_stop)
        rc = intake_params(&in, params, plen);
    if (g_stop) {
        (void)fprintf(stderr, "labbox: canceled before the job started\n");
        status = RUN_EXIT_CANCELED;
    } else if (in.err.problem != INTAKE_NONE) {
        (void)fprintf(stderr, "labbox: refused (%s): %s\n", intake_problem_code(in.err.problem),
                      in.err.detail);
        status = RUN_EXIT_REFUSED;
    } else if (rc == RC_NOTFOUND) {
        status = RUN_EXIT_USAGE;
    } else if (rc == RC_OK) {
        memcpy(job.id, st.id, sizeof(job.id));
        (void)snprintf(job.backend, sizeof(job.backend), "%s", cfg->backend);
        job.created_ms = clock_real_ms();
        memcpy(out_id, st.id, ID_LEN + 1);
        if (jobstore_stage_publish(js, &st, &job) == RC_OK) {
            (void)fprintf(stderr, "labbox: job %s: %zu files, %llu bytes, backend %s\n", job.id,
                          job.ninputs, (unsigned long long)in.total, cfg->backend);
            status = RUN_EXIT_SUCCEEDED;
        }
    }
    intake_fini(&in);
    jobstore_stage_abort(js, &st);
    jobstore_job_fini(&job);
    free(params);
    return status;
}

/*** the job's run ***/

/* The job's log, followed: records are printed once whole (up to a newline). */
struct tail {
    int fd;       /* log.jsonl */
    uint64_t off; /* the next record starts here */
    char *buf;
    size_t cap;
};

/* tail_print: every whole record written since the last call, on stdout. */
static void
tail_print(struct tail *t)
{
    for (;;) {
        ssize_t n = t->buf ? pread(t->fd, t->buf, t->cap, (off_t)t->off) : -1;
        if (n <= 0)
            break;
        char *end = memrchr(t->buf, '\n', (size_t)n);
        if (end == NULL) {
            if ((size_t)n < t->cap)
                break;                              /* a record still being written */
            char *nb = realloc(t->buf, t->cap * 2); /* a record longer than the buffer */
            t->buf = nb ? nb : t->buf;
            t->cap = nb ? t->cap * 2 : t->cap;
            if (nb == NULL)
                break;
            continue;
        }
        for (char *p = t->buf; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
            json_object *o = NULL;
            const char *prefix, *line;
            if (joblog_record_text(p, (size_t)(nl - p), &o, &prefix, &line))
                (void)printf("%s%s\n", prefix, line);
            json_object_put(o);
            p = nl + 1;
        }
        t->off += (uint64_t)(end - t->buf) + 1;
    }
    (void)fflush(stdout);
}

/* The supervisor, in the child: a session of its own (the terminal's Ctrl-C is run's to
 * handle), the job's lock as fd 3 as serve passes it. */
static void
child(const struct config *cfg, const char *id, int lock)
{
    (void)setsid();
    (void)signal(SIGINT, SIG_DFL);
    (void)signal(SIGTERM, SIG_DFL);
    if ((lock != 3 && dup2(lock, 3) < 0) || setenv("LABBOX_LOCK_FD", "3", 1) != 0)
        _exit(1);
    _exit(supervisor_main(cfg, id));
}

/* follow: print the log while the supervisor pid runs; a stop request cancels the job. */
static int
follow(int dfd, pid_t pid, struct tail *t)
{
    bool asked = false;
    int status = -1;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        tail_print(t);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (g_stop && !asked) {
            asked = true;
            (void)fprintf(stderr, "labbox: canceling: the agent is stopped and what it wrote is "
                                  "collected\n");
            if (jobstore_request_cancel(dfd) != RC_OK)
                (void)fprintf(stderr, "labbox: the cancel request could not be written\n");
        }
        (void)usleep(POLL_MS * 1000); /* a signal cuts it short */
    }
    tail_print(t);
    return status;
}

/* deliver: the job's outputs into dir (made if missing): hard links, or copies across
 * filesystems. The number of files, or -1 (said on stderr). */
static long
deliver(int dfd, const char *dir)
{
    json_object *index = NULL;
    long n = -1;
    int ofd = jobstore_outputs_open(dfd), out = -1;
    if (ofd < 0)
        return 0; /* nothing was collected */
    if ((mkdir(dir, 0755) == 0 || errno == EEXIST) &&
        (out = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
        fs_link_tree(ofd, out, NULL) == RC_OK && jobstore_outputs_index(dfd, &index) == RC_OK)
        n = index ? (long)json_object_array_length(index) : 0;
    else
        (void)fprintf(stderr, "labbox: the outputs could not be put in %s: %s\n", dir,
                      strerror(errno));
    json_object_put(index);
    close(ofd);
    if (out >= 0)
        close(out);
    return n;
}

/* report: how the job ended, on stderr; its exit status. */
static int
report(const struct job *job, long outputs, const char *dir)
{
    static const struct {
        enum job_state state;
        int status;
    } ends[] = {{JOB_SUCCEEDED, RUN_EXIT_SUCCEEDED},
                {JOB_FAILED, RUN_EXIT_FAILED},
                {JOB_TIMED_OUT, RUN_EXIT_TIMED_OUT},
                {JOB_CANCELED, RUN_EXIT_CANCELED}};
    int status = RUN_EXIT_INTERNAL;
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
        if (ends[i].state == job->state)
            status = ends[i].status;
    if (status == RUN_EXIT_INTERNAL) {
        (void)fprintf(stderr, "labbox: job %s: its supervisor ended before the job did (%s)\n",
                      job->id, jobstate_str(job->state));
        return status;
    }
    (void)fprintf(stderr, "labbox: job %s %s%s%s%s%s%s; ", job->id, jobstate_str(job->state),
                  job->reason != REASON_NONE ? " (" : "",
                  job->reason != REASON_NONE ? jobstate_reason_str(job->reason) : "",
                  job->reason != REASON_NONE ? ")" : "", job->detail[0] ? ": " : "", job->detail);
    if (outputs < 0)
        (void)fprintf(stderr, "its outputs could not be delivered\n");
    else
        (void)fprintf(stderr, "%ld output file%s in %s\n", outputs, outputs == 1 ? "" : "s", dir);
    return outputs < 0 ? RUN_EXIT_INTERNAL : status;
}

/* supervise: run the published job id to its end, log on stdout, outputs into out (or
 * labbox-<id>). A run exit status. */
static int
supervise(const struct config *cfg, struct jobstore *js, const char *id, const char *out)
{
    struct tail t = {.fd = -1, .cap = READ_CHUNK};
    struct job job;
    char dir[PATH_MAX];
    int dfd = -1, lock = -1, status = RUN_EXIT_INTERNAL;
    jobstore_job_init(&job);
    (void)snprintf(dir, sizeof(dir), "%s", out ? out : ""); /* checked by the caller */
    if (out == NULL)
        (void)snprintf(dir, sizeof(dir), "labbox-%s", id);
    if (jobstore_open_job(js, id, &dfd) != RC_OK || (lock = jobstore_lock_take(dfd)) < 0 ||
        (t.fd = jobstore_log_open(dfd, JOBSTORE_LOG_READ)) < 0 || (t.buf = malloc(t.cap)) == NULL)
        goto out;
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child(cfg, id, lock);
    close(lock);
    lock = -1;
    if (pid < 0) {
        (void)fprintf(stderr, "labbox: cannot start the supervisor: %s\n", strerror(errno));
        goto out;
    }
    (void)follow(dfd, pid, &t);
    if (jobstore_load(dfd, &job) == RC_OK)
        status = report(&job, jobstate_is_terminal(job.state) ? deliver(dfd, dir) : 0, dir);
out:
    if (lock >= 0)
        close(lock);
    if (t.fd >= 0)
        close(t.fd);
    free(t.buf);
    if (dfd >= 0)
        close(dfd);
    jobstore_job_fini(&job);
    return status;
}

/* An --out that exists must be an empty folder: outputs never overwrite anything. */
static bool
out_ok(const char *out)
{
    char **names = NULL;
    size_t n = 0;
    if (out == NULL || strlen(out) >= PATH_MAX - 1)
        return out == NULL;
    int fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    bool empty = list_dir(fd, &names, &n) == RC_OK && n == 0;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return empty;
}

int
run_main(int argc, char **argv)
{
    struct run_opts o;
    struct config cfg;
    struct jobstore js = {.data_fd = -1, .jobs_fd = -1, .tmp_fd = -1};
    struct pschema *schema = NULL;
    char tmp[PATH_MAX] = "", id[ID_LEN + 1] = "", why[PSCHEMA_DETAIL_MAX + 128];
    struct sigaction sa = {.sa_handler = on_signal};
    bool magic = false;

    if (!parse_args(argc, argv, &o))
        return usage();
    if (!out_ok(o.out)) {
        (void)fprintf(stderr, "labbox: --out %s must be an empty folder or not exist yet\n", o.out);
        return RUN_EXIT_USAGE;
    }
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN);
    memset(&cfg, 0, sizeof(cfg));
    int status = load_config(&o, &cfg, tmp, sizeof(tmp));
    if (status == RUN_EXIT_SUCCEEDED &&
        agent_schema_load(&cfg, &schema, why, sizeof(why)) != RC_OK) {
        (void)fprintf(stderr, "labbox: configuration error: %s\n", why);
        status = RUN_EXIT_USAGE;
    }
    if (status == RUN_EXIT_SUCCEEDED &&
        (!(magic = filetype_init() == RC_OK) || jobstore_open(&js, &cfg) != RC_OK))
        status = RUN_EXIT_INTERNAL;
    if (status == RUN_EXIT_SUCCEEDED)
        status = stage_job(&cfg, &js, schema, &o, id);
    if (status == RUN_EXIT_SUCCEEDED)
        status = supervise(&cfg, &js, id, o.out);
    pschema_free(schema);
    jobstore_close(&js);
    if (magic)
        filetype_fini();
    if (tmp[0] != '\0' && fs_rmtree_at(AT_FDCWD, tmp) != RC_OK)
        (void)fprintf(stderr, "labbox: the temporary data dir %s could not be removed\n", tmp);
    config_fini(&cfg);
    return status;
}
