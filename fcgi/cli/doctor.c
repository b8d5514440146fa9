/* doctor: `labbox doctor`: the host checked against the configuration (see doctor.h).
 *
 * The checks use labbox's own code wherever labbox has some: the job store makes and removes
 * an upload's staging dir in data_dir, core/workdir a job's work dir in sandbox_dir, the
 * backend's check hook decides whether the backend is usable (for local: bubblewrap, the
 * limits it must enforce, the uid range), the local backend starts a trivial sandbox through
 * its own start and poll, and nginx's snippet comes from the installed renderer. What is
 * checked from permission bits alone (nginx's user reaching the socket and the outputs) is
 * what nginx, another user, will meet.
 */
#include "cli/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/agent.h"
#include "core/jobstore.h"
#include "core/workdir.h"
#include "log.h"
#include "parse/nginxconf.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_local.h"
#include "util/caps.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/ident.h"
#include "util/owner.h"

#ifndef LABBOX_NGINX_DIR
#define LABBOX_NGINX_DIR "/usr/local/share/labbox/nginx"
#endif

#define AGENT_PATH     "/usr/local/bin:/usr/bin:/bin" /* the agent's PATH (supervisor.c) */
#define NGINX_CONF     "/etc/nginx/nginx.conf"        /* when nginx -V does not say */
#define TRIAL_MS       30000                          /* the trial sandbox, start to end */
#define BACKEND_MS     10000                          /* the backend's check */
#define CMD_OUTPUT_MAX 4096                           /* output kept of render and nginx -t */

extern char **environ;

enum verdict { V_OK, V_FAIL, V_SKIP };

struct doc {
    const struct config *cfg;
    const struct doctor_opts *opts;
    struct ident me;     /* who doctor (and so, presumably, labbox) runs as */
    struct ident labbox; /* labbox's user: me, or data_dir's owner when that is another */
    struct ident nginx;  /* nginx's worker user, when known */
    bool have_nginx;     /* nginx is known */
    bool backend_ok;     /* the backend's check passed */
    bool other_user;     /* doctor runs as root, labbox as another user: write nothing of its */
    bool sandbox_dir_ok; /* sandbox_dir exists and a work dir can be made in it */
    bool in_group;       /* labbox's user may give files to the output group (or there is none) */
    char exe[PATH_MAX];  /* this labbox, read first: the trial sandbox's private mount namespace
                          * would show it relative to its mount */
    int failures;
    char name[16];          /* the check being reported */
    char made[4][PATH_MAX]; /* directories the probes made that did not exist: removed at the end */
    size_t nmade;
};

/*** output ***/

/* report: the check's one line; a failure gets a second line, fix (printf-style after fmt's
 * arguments is not possible, so fix is plain text built by the caller). */
static void __attribute__((format(printf, 4, 5)))
report(struct doc *d, enum verdict v, const char *fix, const char *fmt, ...)
{
    static const char *const words[] = {"ok", "FAIL", "skip"};
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf("%-4s %-12s %s\n", words[v], d->name, text);
    if (v == V_FAIL) {
        d->failures++;
        printf("     %-12s fix: %s\n", "", fix != NULL ? fix : "see docs/operations.md");
    }
    (void)fflush(stdout);
}

/* fixf: a fix line built printf-style into a static buffer (one report at a time). */
static const char *__attribute__((format(printf, 1, 2))) fixf(const char *fmt, ...)
{
    static char buf[768];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* config_arg: " --config FILE" for the commands a fix suggests, or "". */
static const char *
config_arg(const struct doc *d, char *buf, size_t len)
{
    if (d->opts->config_path == NULL)
        return "";
    (void)snprintf(buf, len, " --config %s", d->opts->config_path);
    return buf;
}

/*** small helpers ***/

/* parent_of: the nearest existing ancestor directory of path into buf. */
static void
parent_of(const char *path, char *buf, size_t len)
{
    struct stat st;
    (void)snprintf(buf, len, "%s", path);
    for (;;) {
        char *slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf) {
            (void)snprintf(buf, len, "/");
            return;
        }
        *slash = '\0';
        if (stat(buf, &st) == 0)
            return;
    }
}

/* find_exec: name (a bare command) on the colon-separated dirs of path, into out. */
static bool
find_exec(const char *name, const char *path, char *out, size_t len)
{
    const char *p = path;
    while (*p != '\0') {
        size_t n = strcspn(p, ":");
        int k = snprintf(out, len, "%.*s/%s", (int)n, p, name);
        if (n > 0 && k > 0 && (size_t)k < len && access(out, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* run_capture: run argv (argv[0] a path) with stdin from /dev/null and stdout and stderr
 * into out (cut at len - 1 bytes); the exit status, or -1 when it could not run. */
static int
run_capture(char *const argv[], char *out, size_t len)
{
    int pfd[2], status = -1;
    size_t used = 0;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    bool ok = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
              posix_spawn_file_actions_adddup2(&fa, pfd[1], 1) == 0 &&
              posix_spawn_file_actions_adddup2(&fa, pfd[1], 2) == 0 &&
              posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    for (ssize_t r = 1; ok && r != 0;) {
        char buf[512];
        r = read(pfd[0], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        size_t take = (size_t)r < len - 1 - used ? (size_t)r : len - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    out[used] = '\0';
    close(pfd[0]);
    while (ok && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!ok)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* first_line: the first line of text that says something (nginx -t's "[emerg] ..."). */
static const char *
first_line(char *text)
{
    char *emerg = strstr(text, "[emerg]");
    char *line = emerg != NULL ? emerg : text;
    line[strcspn(line, "\n")] = '\0';
    return line[0] != '\0' ? line : "(no message)";
}

static void
mode_text(mode_t m, char *buf, size_t len)
{
    (void)snprintf(buf, len, "0%03o", (unsigned)(m & 07777));
}

/*** who ***/

static void
check_user(struct doc *d)
{
    char groups[512] = "", g[64];
    struct stat st;
    for (size_t i = 0, used = 0; i < d->me.ngroups && used < sizeof(groups); i++) {
        int k = snprintf(groups + used, sizeof(groups) - used, "%s%s", i ? " " : "",
                         ident_group_name(d->me.groups[i], g, sizeof(g)));
        used = k < 0 ? sizeof(groups) : used + (size_t)k;
    }
    if (d->me.uid == 0 && stat(d->cfg->data_dir, &st) == 0 && st.st_uid != 0) {
        char owner[64], ca[512];
        (void)ident_user_name(st.st_uid, owner, sizeof(owner));
        report(d, V_FAIL,
               fixf("run doctor as the user labbox runs as: runuser -u %s -- labbox doctor%s",
                    owner, config_arg(d, ca, sizeof(ca))),
               "doctor runs as root, but data_dir belongs to %s: what root may do says nothing "
               "about what labbox may, and what root made there labbox could not use",
               owner);
        d->other_user = true;
        if (ident_user(owner, &d->labbox) != RC_OK)
            d->labbox = d->me;
        return;
    }
    report(d, V_OK, NULL, "checking as %s (uid %lu; groups %s): run doctor as labbox's user",
           d->me.name, (unsigned long)d->me.uid, groups);
}

/*** data_dir and sandbox_dir ***/

/* probe_data: make and remove an upload's staging dir, as the API does for every upload. */
static bool
probe_data(const struct config *cfg, char *why, size_t len)
{
    struct jobstore js;
    struct jobstore_stage st = {.dirfd = -1, .inputs_fd = -1};
    errno = 0;
    if (jobstore_open(&js, cfg) != RC_OK) {
        (void)snprintf(why, len, "cannot open data_dir's jobs/ and tmp/%s%s",
                       errno != 0 ? ": " : " (the log line above says why)",
                       errno != 0 ? strerror(errno) : "");
        return false;
    }
    enum rc rc = jobstore_stage_begin(&js, &st);
    if (rc != RC_OK)
        (void)snprintf(why, len, "cannot make an upload's staging dir in data_dir/tmp: %s",
                       strerror(errno));
    jobstore_stage_abort(&js, &st);
    jobstore_close(&js);
    return rc == RC_OK;
}

static bool
probe_sandbox(const struct config *cfg, char *why, size_t len)
{
    return workdir_probe(cfg, why, len) == RC_OK;
}

/* made_by_probe: path does not exist; when labbox may make it, note the topmost directory
 * the probe will create (removed at the end) and return true; else report and return false. */
static bool
made_by_probe(struct doc *d, const char *path)
{
    char parent[PATH_MAX];
    parent_of(path, parent, sizeof(parent));
    if (access(parent, W_OK | X_OK) != 0) {
        report(
            d, V_FAIL,
            fixf("install -d -m 0711 -o %s -g %lu %s", d->me.name, (unsigned long)d->me.gid, path),
            "%s does not exist, and %s may not create it in %s", path, d->me.name, parent);
        return false;
    }
    size_t plen = strcmp(parent, "/") == 0 ? 0 : strlen(parent);
    size_t top = plen + 1 + strcspn(path + plen + 1, "/");
    if (d->nmade < sizeof(d->made) / sizeof(d->made[0]))
        (void)snprintf(d->made[d->nmade++], sizeof(d->made[0]), "%.*s", (int)top, path);
    return true;
}

/* check_dir: key's directory is labbox's: its owner, not writable for others (private: and as
 * serve judges sandbox_dir, owner_private_dir), and probe (the code a job runs) can make and
 * remove what a job makes in it. A directory that does not
 * exist yet is made by the probe as labbox would make it, and removed at the end. */
static bool
check_dir(struct doc *d, const char *key, const char *path, bool private,
          bool (*probe)(const struct config *, char *, size_t), const char *made)
{
    struct stat st;
    char owner[64], mode[8], why[512];
    (void)snprintf(d->name, sizeof(d->name), "%s", key);
    bool missing = false;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            report(d, V_FAIL, fixf("check the path's permissions: namei -l %s", path), "%s: %s",
                   path, strerror(errno));
            return false;
        }
        missing = true;
        memset(&st, 0, sizeof(st));
    }
    if (d->other_user) {
        report(d, V_SKIP, NULL, "%s: doctor does not run as labbox's user (see user)", path);
        return false;
    }
    if (missing && !made_by_probe(d, path))
        return false;
    mode_text(st.st_mode, mode, sizeof(mode));
    (void)ident_user_name(st.st_uid, owner, sizeof(owner));
    if (!missing && !S_ISDIR(st.st_mode)) {
        report(d, V_FAIL, fixf("remove it, or set %s to a directory", key), "%s is not a directory",
               path);
        return false;
    }
    if (!missing && st.st_uid != d->me.uid) {
        report(d, V_FAIL, fixf("chown -R %s: %s", d->me.name, path),
               "%s is owned by %s, but labbox runs as %s", path, owner, d->me.name);
        return false;
    }
    if (!missing && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        report(d, V_FAIL, fixf("chmod go-w %s", path),
               "%s is writable for its group or for everyone (mode %s)", path, mode);
        return false;
    }
    /* sandbox_dir as serve judges it: no symbolic link, nobody else may swap a directory
     * above it. */
    char err[600];
    if (private && owner_private_dir(key, path, d->me.uid, false, err, sizeof(err)) != RC_OK) {
        report(d, V_FAIL,
               fixf("use a directory only %s controls, such as /var/lib/labbox/sandboxes (the "
                    "default)",
                    d->me.name),
               "%s", err);
        return false;
    }
    if (!probe(d->cfg, why, sizeof(why))) {
        report(d, V_FAIL,
               fixf("make %s writable for %s (under systemd it must be below a "
                    "StateDirectory= or ReadWritePaths=)",
                    path, d->me.name),
               "%s: %s", path, why);
        return false;
    }
    if (missing)
        report(d, V_OK, NULL, "%s does not exist yet: labbox makes it, and %s (tried)", path, made);
    else
        report(d, V_OK, NULL, "%s: owned by %s, mode %s; %s", path, owner, mode, made);
    return true;
}

static void
check_disk(struct doc *d)
{
    char at[PATH_MAX];
    struct stat st;
    (void)snprintf(at, sizeof(at), "%s", d->cfg->data_dir);
    if (stat(at, &st) != 0)
        parent_of(d->cfg->data_dir, at, sizeof(at));
    int fd = open(at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t free_mb = fd >= 0 ? fs_free_mb(fd) : UINT64_MAX;
    if (fd >= 0)
        close(fd);
    if (free_mb == UINT64_MAX) {
        report(d, V_SKIP, NULL, "the free space at %s cannot be measured", at);
        return;
    }
    if (free_mb < d->cfg->disk_reserve_mb) {
        report(d, V_FAIL, fixf("free space on the file system of %s, or lower disk_reserve_mb", at),
               "%llu MiB free at %s, below disk_reserve_mb (%llu): every upload gets 503",
               (unsigned long long)free_mb, at, (unsigned long long)d->cfg->disk_reserve_mb);
        return;
    }
    report(d, V_OK, NULL, "%llu MiB free at %s (disk_reserve_mb %llu)", (unsigned long long)free_mb,
           at, (unsigned long long)d->cfg->disk_reserve_mb);
}

/*** the agent ***/

/* is_interpreter: a program whose first non-option argument is the script it runs. */
static bool
is_interpreter(const char *prog)
{
    static const char *const names[] = {"python3", "python", "sh",   "bash",
                                        "node",    "perl",   "ruby", "Rscript"};
    const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(base, names[i]) == 0 || (strncmp(base, "python3.", 8) == 0 && i == 0))
            return true;
    return false;
}

/* agent_program: argv[0] as the sandbox will find it; false with why. */
static bool
agent_program(const struct doc *d, const char *prog, char *why, size_t len)
{
    char path[PATH_MAX];
    bool local = strcmp(d->cfg->backend, "local") == 0;
    if (prog[0] != '/' && strchr(prog, '/') != NULL) {
        int k = snprintf(path, sizeof(path), "%s/%s", d->cfg->agent_dir, prog);
        if (k > 0 && (size_t)k < sizeof(path) && access(path, X_OK) == 0)
            return true;
        (void)snprintf(why, len, "%s is not an executable file in agent_dir", prog);
        return false;
    }
    if (!local)
        return true; /* the image's PATH: nothing to see from here */
    if (prog[0] == '/' ? access(prog, X_OK) == 0 : find_exec(prog, AGENT_PATH, path, sizeof(path)))
        return true;
    (void)snprintf(why, len, "%s is not installed on the sandbox's PATH (%s)", prog, AGENT_PATH);
    return false;
}

/* agent_script: an interpreter's script, relative to /workspace (agent_dir). */
static bool
agent_script(const struct doc *d, char **argv, char *why, size_t len)
{
    char path[PATH_MAX];
    if (!is_interpreter(argv[0]))
        return true;
    for (char **a = argv + 1; *a != NULL; a++) {
        if (strcmp(*a, "-m") == 0 || strcmp(*a, "-c") == 0 || strcmp(*a, "-e") == 0)
            return true; /* a module or inline code, not a file */
        if ((*a)[0] == '-')
            continue;
        if ((*a)[0] == '/')
            return true;
        int k = snprintf(path, sizeof(path), "%s/%s", d->cfg->agent_dir, *a);
        if (k > 0 && (size_t)k < sizeof(path) && access(path, R_OK) == 0)
            return true;
        (void)snprintf(why, len, "%s's script %s is not in agent_dir", argv[0], *a);
        return false;
    }
    return true;
}

static void
check_agent(struct doc *d)
{
    char err[1024], why[512] = "";
    char **argv = NULL;
    if (config_check_files(d->cfg, err, sizeof(err)) != RC_OK) {
        report(d, V_FAIL,
               "install the agent there, or set agent_dir (a relative agent_dir is relative to "
               "the configuration file)",
               "%s", err);
        return;
    }
    if (agent_check(d->cfg, err, sizeof(err)) != RC_OK) {
        report(d, V_FAIL,
               "fix agent_dir/params.schema.json: docs/api.md (The agent) has the subset", "%s",
               err);
        return;
    }
    if (config_split_argv(d->cfg->agent_command, &argv) != RC_OK) {
        report(d, V_FAIL, "set agent_command to a command line", "agent_command cannot be split");
        return;
    }
    bool ok =
        agent_program(d, argv[0], why, sizeof(why)) && agent_script(d, argv, why, sizeof(why));
    if (ok)
        report(d, V_OK, NULL, "%s has `%s`", d->cfg->agent_dir, d->cfg->agent_command);
    else
        report(d, V_FAIL,
               fixf("install %s, or change agent_command (it runs in /workspace, a copy of "
                    "agent_dir)",
                    argv[0]),
               "agent_command `%s`: %s", d->cfg->agent_command, why);
    config_free_argv(argv);
}

/*** the backend ***/

static const char *
backend_fix(const struct doc *d)
{
    const struct config *cfg = d->cfg;
    if (strcmp(cfg->backend, "docker") == 0)
        return fixf("check docker_host and that labbox's user may use the engine (the docker "
                    "group); pull or build the image: docker pull %s",
                    cfg->docker_image);
    if (strcmp(cfg->backend, "modal") == 0)
        return "check Modal's credentials (MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, or "
               "modal_config and modal_profile) and that MODAL_SERVER_URL is reachable";
    uint64_t lacks = caps_missing(LOCAL_CAPS);
    if (lacks != 0) {
        char names[200];
        caps_names(LOCAL_CAPS, names, sizeof(names));
        for (char *c = names; (c = strchr(c, ',')) != NULL;)
            memmove(c, c + 1, strlen(c + 1) + 1); /* systemd's list: spaces, no commas */
        return fixf("doctor lacks the capabilities labbox.service gives labbox: run it as the "
                    "unit runs labbox: systemd-run --pipe --wait --collect -p User=%s "
                    "-p SupplementaryGroups=%s -p AmbientCapabilities=\"%s\" labbox doctor "
                    "(docs/operations.md)",
                    d->labbox.name, config_output_group(cfg), names);
    }
    return "the reason names what is missing; docs/sandbox.md says what each limit needs, and "
           "allow_unenforced names the limits labbox may run without";
}

static void
check_backend(struct doc *d)
{
    const struct config *cfg = d->cfg;
    if (d->other_user) {
        /* Its check may leave state behind (cgroups, Modal's store in data_dir). */
        report(d, V_SKIP, NULL, "doctor does not run as labbox's user (see user)");
        return;
    }
    const struct sandbox_ops *ops = sandbox_ops_by_name(cfg->backend);
    if (ops == NULL) {
        report(d, V_FAIL, fixf("set backend to one of: %s", sandbox_names()),
               "backend %s is not compiled into this labbox", cfg->backend);
        return;
    }
    struct sandbox *sb = sandbox_new(ops, cfg, NULL);
    enum rc rc = sb == NULL ? RC_NOMEM : sandbox_init(sb);
    if (rc == RC_OK) {
        sb->deadline_ms = clock_mono_ms() + BACKEND_MS;
        rc = sandbox_check(sb);
    }
    d->backend_ok = rc == RC_OK;
    if (d->backend_ok && strcmp(cfg->backend, "docker") == 0)
        report(d, V_OK, NULL, "docker: the engine at %s answers and has %s", cfg->docker_host,
               cfg->docker_image);
    else if (d->backend_ok && strcmp(cfg->backend, "modal") == 0)
        report(d, V_OK, NULL, "modal: Modal accepted the token and knows the app %s",
               cfg->modal_app);
    else if (d->backend_ok)
        report(d, V_OK, NULL,
               "%s: its check passed (bubblewrap; every limit to enforce can be, or is in "
               "allow_unenforced; the uid range)",
               cfg->backend);
    else
        report(d, V_FAIL, backend_fix(d), "%s: %s", cfg->backend,
               sb != NULL ? sb->error : "out of memory");
    sandbox_free(sb);
}

/*** a trial sandbox (local) ***/

struct trial_out {
    char text[512];
    size_t n;
};

static void
trial_output(void *ctx, enum sandbox_stream s, const char *p, size_t n)
{
    struct trial_out *o = ctx;
    (void)s;
    size_t take = n < sizeof(o->text) - 1 - o->n ? n : sizeof(o->text) - 1 - o->n;
    memcpy(o->text + o->n, p, take);
    o->n += take;
    o->text[o->n] = '\0';
}

/* trial_stage: the trial's work dir, staged as a job's: inputs/probe.txt, outputs/. */
static bool
trial_stage(const struct config *cfg, const char *path, char *why, size_t len)
{
    int work = -1, in = -1, fd = -1;
    bool ok = workdir_make(cfg, path, &work, why, len) == RC_OK &&
              mkdirat(work, SANDBOX_INPUTS_DIR, 0755) == 0 &&
              mkdirat(work, SANDBOX_OUTPUTS_DIR, 0755) == 0 &&
              (in = openat(work, SANDBOX_INPUTS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
              (fd = openat(in, "probe.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >= 0 &&
              fs_write_all(fd, "probe\n", 6) == RC_OK;
    if (!ok && why[0] == '\0')
        (void)snprintf(why, len, "cannot stage the trial's work dir: %s", strerror(errno));
    int fds[] = {fd, in, work};
    for (size_t i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ok;
}

/* trial_run: start, poll to the end (cancel at the deadline), destroy; the agent's result. */
static enum rc
trial_run(struct sandbox *sb, struct sandbox_result *res)
{
    bool done = false, canceled = false;
    int64_t deadline = clock_mono_ms() + TRIAL_MS;
    sb->deadline_ms = deadline;
    enum rc rc = sandbox_start(sb);
    while (rc == RC_OK && !done) {
        rc = sandbox_poll(sb, 100, &done, res);
        if (rc == RC_OK && !done && !canceled && clock_mono_ms() > deadline) {
            canceled = true;
            rc = sandbox_cancel(sb);
        }
    }
    RC_IGNORE(sandbox_destroy(sb));
    if (rc == RC_OK && canceled)
        return sandbox_fail(sb, "the trial did not end within %d s", TRIAL_MS / 1000);
    return rc;
}

static void
check_sandbox(struct doc *d)
{
    static const char marker[] = "labbox doctor: the sandbox ran";
    char id[ID_LEN + 1], path[PATH_MAX], why[512] = "";
    char *argv[] = {(char *)(uintptr_t) "/bin/sh", (char *)(uintptr_t) "-c",
                    (char *)(uintptr_t) "test -d /workspace/outputs && "
                                        "test -r /workspace/inputs/probe.txt && "
                                        "echo 'labbox doctor: the sandbox ran'",
                    NULL};
    char *envp[] = {(char *)(uintptr_t) "PATH=" AGENT_PATH, NULL};
    if (strcmp(d->cfg->backend, "local") != 0) {
        report(d, V_SKIP, NULL, "the %s backend's check above covers it", d->cfg->backend);
        return;
    }
    if (!d->backend_ok || !d->sandbox_dir_ok) {
        report(d, V_SKIP, NULL, "needs the backend and sandbox_dir checks to pass");
        return;
    }
    if (id_new(id) != RC_OK || workdir_path(d->cfg, id, path, sizeof(path)) != RC_OK) {
        report(d, V_FAIL, NULL, "cannot name the trial's work dir");
        return;
    }
    struct trial_out out = {.n = 0};
    struct sandbox_job job = {.id = id,
                              .dir = path,
                              .dirfd = -1,
                              .work_dir = path,
                              .argv = argv,
                              .envp = envp,
                              .timeout_s = TRIAL_MS / 1000};
    struct sandbox *sb = NULL;
    struct sandbox_result res = {.status = SANDBOX_INTERNAL};
    enum rc rc = trial_stage(d->cfg, path, why, sizeof(why)) ? RC_OK : RC_IO;
    if (rc == RC_OK && (sb = sandbox_new(sandbox_ops_by_name("local"), d->cfg, &job)) == NULL)
        rc = RC_NOMEM;
    if (rc == RC_OK && (rc = sandbox_init(sb)) == RC_OK) {
        sb->on_output = trial_output;
        sb->cb_ctx = &out;
        rc = trial_run(sb, &res);
    }
    if (rc != RC_OK && sb != NULL)
        (void)snprintf(why, sizeof(why), "%s", sb->error);
    sandbox_free(sb);
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, path));
    if (rc == RC_OK && res.status == SANDBOX_OK && strstr(out.text, marker) != NULL)
        report(d, V_OK, NULL, "a trivial sandbox ran as a job's would (%llu ms)",
               (unsigned long long)res.wall_ms);
    else
        report(d, V_FAIL, "run bwrap by hand to see more; docs/sandbox.md says what it needs",
               "a trivial sandbox failed: %s%s%.200s",
               rc != RC_OK ? why : sandbox_status_str(res.status), out.n ? "; it said: " : "",
               out.text);
}

/*** nginx: its user, the socket, the outputs, the snippet ***/

/* nginx_conf_path: where nginx reads its configuration (nginx -V), else NGINX_CONF. */
static void
nginx_conf_path(const char *nginx, char *buf, size_t len)
{
    char out[CMD_OUTPUT_MAX];
    char *argv[] = {(char *)(uintptr_t)nginx, (char *)(uintptr_t) "-V", NULL};
    (void)snprintf(buf, len, "%s", NGINX_CONF);
    if (nginx[0] == '\0' || run_capture(argv, out, sizeof(out)) != 0)
        return;
    const char *p = strstr(out, "--conf-path=");
    if (p != NULL)
        (void)snprintf(buf, len, "%.*s", (int)strcspn(p + 12, " \n"), p + 12);
}

static void
find_nginx(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[PATH_MAX];
    (void)snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "");
    if (!find_exec("nginx", dirs, buf, len))
        buf[0] = '\0';
}

static void
check_nginx_user(struct doc *d, const char *nginx)
{
    char conf[PATH_MAX], user[NGINXCONF_NAME_MAX] = "", group[NGINXCONF_NAME_MAX], *text = NULL;
    size_t len = 0;
    const char *from = "--nginx-user";
    if (d->opts->nginx_user != NULL) {
        (void)snprintf(user, sizeof(user), "%s", d->opts->nginx_user);
    } else if (nginx[0] == '\0') {
        report(d, V_SKIP, NULL, "nginx is not installed here; --nginx-user names its user");
        return;
    } else {
        nginx_conf_path(nginx, conf, sizeof(conf));
        from = conf;
        enum rc rc = fs_read_all(AT_FDCWD, conf, 1 << 20, &text, &len);
        if (rc == RC_OK)
            rc = nginxconf_user(text, len, user, group);
        free(text);
        if (rc == RC_NOTFOUND)
            (void)snprintf(user, sizeof(user), "nobody");
        else if (rc != RC_OK) {
            report(d, V_SKIP, NULL, "cannot read nginx's user from %s; --nginx-user names it",
                   conf);
            return;
        }
    }
    if (ident_user(user, &d->nginx) != RC_OK) {
        report(d, V_FAIL, fixf("name nginx's worker user with --nginx-user, or fix %s", from),
               "nginx's user %s (from %s) does not exist", user, from);
        return;
    }
    d->have_nginx = true;
    report(d, V_OK, NULL, "nginx's workers run as %s (from %s)", user, from);
}

/* socket_path: listen when labbox binds a path itself, else NULL with the reason. */
static const char *
socket_path(const struct config *cfg, const char **why)
{
    if (strcmp(cfg->listen, "systemd") == 0) {
        *why = "listen = systemd: labbox.socket gives the socket its group (SocketGroup=)";
        return NULL;
    }
    if (strncmp(cfg->listen, "fd:", 3) == 0) {
        *why = "listen = fd:0: whoever passes the socket sets who may connect";
        return NULL;
    }
    return cfg->listen;
}

/* member: labbox's user may give files to gid. As labbox's user, the process's own groups
 * decide, as they do for serve (they include the unit's SupplementaryGroups= when doctor runs
 * with the unit's credentials); for another user, the group database. */
static bool
member(const struct doc *d, const char *key, const char *g, gid_t gid)
{
    char err[400];
    gid_t got;
    if (d->labbox.uid == geteuid())
        return owner_group(key, g, "files", false, &got, err, sizeof(err)) == RC_OK;
    return ident_in_group(&d->labbox, gid);
}

/* check_group: labbox's user is a member of key's group g (what serve requires). */
static void
check_group(struct doc *d, const char *key, const char *g, const char *given)
{
    gid_t gid;
    (void)snprintf(d->name, sizeof(d->name), "%s", key);
    if (ident_group(g, &gid) != RC_OK)
        report(d, V_FAIL, fixf("groupadd %s, or set %s to nginx's group", g, key),
               "there is no group %s", g);
    else if (d->labbox.uid != 0 && !member(d, key, g, gid))
        report(d, V_FAIL,
               fixf("usermod -aG %s %s (then restart labbox; labbox.service names it in "
                    "SupplementaryGroups=)",
                    g, d->labbox.name),
               "labbox's user %s is not a member of %s: labbox refuses to start", d->labbox.name,
               g);
    else
        report(d, V_OK, NULL, "%s may give %s to %s", d->labbox.name, given, g);
}

/* in_output_group: labbox's user may give files to the output group (output_group, else
 * socket_group), which the job store and the configuration check require: without it the
 * checks that go through them would only repeat socket_group's or output_group's failure. */
static bool
in_output_group(const struct doc *d)
{
    const char *g = config_output_group(d->cfg);
    gid_t gid;
    return g[0] == '\0' || d->labbox.uid == 0 ||
           (ident_group(g, &gid) == RC_OK && member(d, "output_group", g, gid));
}

/* socket_group (when labbox binds the socket) and output_group (the files nginx sends). */
static void
check_socket_group(struct doc *d)
{
    const char *why = NULL;
    const char *g = d->cfg->socket_group;
    if (socket_path(d->cfg, &why) == NULL)
        report(d, V_SKIP, NULL, "%s", why);
    else if (g[0] == '\0')
        report(d, V_SKIP, NULL, "socket_group is not set: the socket keeps labbox's group");
    else
        check_group(d, "socket_group", g, "the socket");
    if (d->cfg->output_group[0] != '\0')
        check_group(d, "output_group", d->cfg->output_group, "the files nginx sends");
}

static void
check_socket(struct doc *d)
{
    const char *why = NULL, *sock = socket_path(d->cfg, &why);
    char dir[PATH_MAX], blocked[PATH_MAX], mode[8], gname[64], ngroup[64];
    struct stat st;
    gid_t gid = d->labbox.gid;
    if (sock == NULL || !d->have_nginx) {
        report(d, V_SKIP, NULL, "%s", sock == NULL ? why : "nginx's user is not known");
        return;
    }
    (void)snprintf(dir, sizeof(dir), "%s", sock);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    if (slash == NULL || dir[0] == '\0')
        (void)snprintf(dir, sizeof(dir), "/"); /* config_finish makes listen absolute */
    if (!ident_reach(&d->nginx, dir, X_OK, blocked, sizeof(blocked))) {
        report(d, V_FAIL, fixf("chmod o+x %s", blocked),
               "nginx's user %s cannot reach %s (stopped at %s): nginx answers 502", d->nginx.name,
               sock, blocked);
        return;
    }
    /* The socket as it is, or as labbox will make it. */
    if (stat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        if (d->cfg->socket_group[0] != '\0')
            RC_IGNORE(ident_group(d->cfg->socket_group, &gid));
        memset(&st, 0, sizeof(st));
        st.st_mode = S_IFSOCK | (mode_t)d->cfg->socket_mode;
        st.st_uid = d->labbox.uid;
        st.st_gid = gid;
    }
    mode_text(st.st_mode, mode, sizeof(mode));
    (void)ident_group_name(st.st_gid, gname, sizeof(gname));
    if (ident_may(&d->nginx, &st, W_OK)) {
        report(d, V_OK, NULL, "nginx's user %s may connect to %s (group %s, mode %s)",
               d->nginx.name, sock, gname, mode);
        return;
    }
    report(d, V_FAIL,
           d->cfg->socket_group[0] != '\0'
               ? fixf("usermod -aG %s %s, or set socket_group to a group of %s's",
                      d->cfg->socket_group, d->nginx.name, d->nginx.name)
               : fixf("set socket_group to a group %s is in (such as %s)", d->nginx.name,
                      ident_group_name(d->nginx.gid, ngroup, sizeof(ngroup))),
           "nginx's user %s may not connect to %s (group %s, mode %s): nginx answers 502",
           d->nginx.name, sock, gname, mode);
}

/* an_output: the path of some job's first output file, into buf; false when there is none. */
static bool
an_output(const char *jobs, char *buf, size_t len)
{
    int dfd = open(jobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fs_opendir(dfd) : NULL;
    struct dirent *de;
    bool found = false;
    while (d != NULL && !found && (de = readdir(d)) != NULL) {
        char outs[PATH_MAX];
        if (!id_is_valid(de->d_name, strlen(de->d_name)) ||
            snprintf(outs, sizeof(outs), "%s/%s/outputs", jobs, de->d_name) >= (int)sizeof(outs))
            continue;
        int ofd = open(outs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *od = ofd >= 0 ? fs_opendir(ofd) : NULL;
        struct dirent *oe;
        while (od != NULL && !found && (oe = readdir(od)) != NULL)
            found =
                oe->d_type == DT_REG && snprintf(buf, len, "%s/%s", outs, oe->d_name) < (int)len;
        if (od != NULL)
            closedir(od);
        if (ofd >= 0)
            close(ofd);
    }
    if (d != NULL)
        closedir(d);
    if (dfd >= 0)
        close(dfd);
    return found;
}

static void
check_outputs(struct doc *d)
{
    char jobs[PATH_MAX], blocked[PATH_MAX], file[PATH_MAX];
    if (!d->have_nginx) {
        report(d, V_SKIP, NULL, "nginx's user is not known");
        return;
    }
    (void)snprintf(jobs, sizeof(jobs), "%s/jobs", d->cfg->data_dir);
    if (access(jobs, F_OK) != 0) {
        report(d, V_SKIP, NULL, "%s does not exist yet", jobs);
        return;
    }
    if (!ident_reach(&d->nginx, jobs, X_OK, blocked, sizeof(blocked))) {
        report(d, V_FAIL, fixf("chmod o+x %s (labbox makes its directories 0711)", blocked),
               "nginx's user %s cannot reach %s (stopped at %s): outputs would fail", d->nginx.name,
               jobs, blocked);
        return;
    }
    if (!an_output(jobs, file, sizeof(file))) {
        report(d, V_OK, NULL, "nginx's user %s reaches %s (no output yet to read)", d->nginx.name,
               jobs);
        return;
    }
    if (!ident_reach(&d->nginx, file, R_OK, blocked, sizeof(blocked))) {
        report(d, V_FAIL, "labbox must run with umask 022 (the unit's UMask=0022)",
               "nginx's user %s cannot read %s (stopped at %s)", d->nginx.name, file, blocked);
        return;
    }
    report(d, V_OK, NULL, "nginx's user %s reaches %s and reads its outputs (%s)", d->nginx.name,
           jobs, file);
}

/* write_nginx_conf: a minimal nginx.conf including the snippet as an operator does. */
static bool
write_nginx_conf(const char *dir)
{
    static const char *const lines[] = {
        "# labbox doctor: the rendered snippet, included as an operator includes it\n",
        "pid @/nginx.pid;\nerror_log @/error.log;\nevents { }\nhttp {\n    access_log off;\n",
        "    client_body_temp_path @/body;\n    proxy_temp_path @/proxy;\n",
        "    fastcgi_temp_path @/fastcgi;\n    uwsgi_temp_path @/uwsgi;\n",
        "    scgi_temp_path @/scgi;\n    include @/snippet/http.conf;\n    server {\n",
        "        listen unix:@/test.sock;\n        include @/snippet/locations.conf;\n",
        "    }\n}\n"};
    char text[4096];
    size_t n = 0;
    /* Every @ is the directory. */
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        for (const char *p = lines[i]; *p != '\0'; p++) {
            int k = *p == '@' ? snprintf(text + n, sizeof(text) - n, "%s", dir)
                              : snprintf(text + n, sizeof(text) - n, "%c", *p);
            if (k < 0 || (size_t)k >= sizeof(text) - n)
                return false;
            n += (size_t)k;
        }
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = dfd >= 0 && fs_write_atomic_mode(dfd, "nginx.conf", text, n, 0644) == RC_OK;
    if (dfd >= 0)
        close(dfd);
    return ok;
}

/* render: the installed renderer, fed this configuration, into dir/snippet; its access log in
 * dir (the operator's, /var/log/nginx by default, is not labbox's user's to open). */
static int
render(const struct doc *d, const char *renderer, const char *dir, char *out, size_t len)
{
    char snippet[PATH_MAX], body[32], alog[PATH_MAX];
    (void)snprintf(snippet, sizeof(snippet), "%s/snippet", dir);
    (void)snprintf(alog, sizeof(alog), "%s/access.log", dir);
    (void)snprintf(body, sizeof(body), "%llu",
                   (unsigned long long)d->cfg->max_job_bytes + (1ull << 20));
    const char *sock =
        strncmp(d->cfg->listen, "/", 1) == 0 ? d->cfg->listen : "/run/labbox/labbox.sock";
    char *with_file[] = {(char *)(uintptr_t)renderer,
                         (char *)(uintptr_t) "--config",
                         (char *)(uintptr_t)d->opts->config_path,
                         (char *)(uintptr_t) "--labbox",
                         (char *)(uintptr_t)d->exe,
                         (char *)(uintptr_t) "--access-log",
                         alog,
                         snippet,
                         NULL};
    char *with_values[] = {(char *)(uintptr_t)renderer,
                           (char *)(uintptr_t) "--socket",
                           (char *)(uintptr_t)sock,
                           (char *)(uintptr_t) "--data",
                           (char *)(uintptr_t)d->cfg->data_dir,
                           (char *)(uintptr_t) "--max-body",
                           body,
                           (char *)(uintptr_t) "--access-log",
                           alog,
                           snippet,
                           NULL};
    return run_capture(d->opts->config_path != NULL ? with_file : with_values, out, len);
}

static void
check_nginx_t(struct doc *d, const char *nginx)
{
    char renderer[PATH_MAX], dir[] = "/tmp/labbox-doctor-XXXXXX", out[CMD_OUTPUT_MAX];
    char conf[PATH_MAX + 16], prefix[PATH_MAX + 16], elog[PATH_MAX + 16];
    (void)snprintf(renderer, sizeof(renderer), "%s/render", LABBOX_NGINX_DIR);
    if (nginx[0] == '\0') {
        report(d, V_SKIP, NULL, "nginx is not installed here");
        return;
    }
    if (access(renderer, X_OK) != 0) {
        report(d, V_SKIP, NULL, "the snippet's renderer is not installed (%s)", renderer);
        return;
    }
    if (!d->in_group) {
        report(d, V_SKIP, NULL,
               "render checks the configuration as serve does: it needs "
               "labbox's user in %s (see above)",
               config_output_group(d->cfg));
        return;
    }
    if (mkdtemp(dir) == NULL) {
        report(d, V_FAIL, "check that /tmp is writable", "mkdtemp: %s", strerror(errno));
        return;
    }
    int status = render(d, renderer, dir, out, sizeof(out));
    if (status != 0) {
        report(d, V_FAIL, fixf("%s --help", renderer), "%s failed: %s", renderer, first_line(out));
    } else if (!write_nginx_conf(dir)) {
        report(d, V_FAIL, NULL, "cannot write a test nginx.conf in %s", dir);
    } else {
        (void)snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
        (void)snprintf(prefix, sizeof(prefix), "%s/", dir);
        (void)snprintf(elog, sizeof(elog), "%s/error.log", dir);
        char *argv[] = {(char *)(uintptr_t)nginx,
                        (char *)(uintptr_t) "-t",
                        (char *)(uintptr_t) "-q",
                        (char *)(uintptr_t) "-p",
                        prefix,
                        (char *)(uintptr_t) "-c",
                        conf,
                        (char *)(uintptr_t) "-e",
                        elog,
                        NULL};
        status = run_capture(argv, out, sizeof(out));
        if (status == 0)
            report(d, V_OK, NULL, "the snippet %s renders passes nginx -t (%s)", renderer, nginx);
        else
            report(d, V_FAIL,
                   fixf("render it (%s ... DIR), include it in a server { } and run nginx -t: "
                        "the message names the line",
                        renderer),
                   "nginx -t on the rendered snippet: %s", first_line(out));
    }
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, dir));
}

/*** all of it ***/

int
doctor_run(const struct config *cfg, const struct doctor_opts *opts)
{
    struct doc d = {.cfg = cfg, .opts = opts};
    char nginx[PATH_MAX];
    /* The probes' own log lines would only repeat what the report says. */
    (void)log_set_level("err");
    if (ident_self(&d.me) != RC_OK) {
        (void)fprintf(stderr, "labbox: cannot tell which user this is: %s\n", strerror(errno));
        return 1;
    }
    d.labbox = d.me;
    ssize_t n = readlink("/proc/self/exe", d.exe, sizeof(d.exe) - 1);
    d.exe[n > 0 ? n : 0] = '\0';
    (void)snprintf(d.name, sizeof(d.name), "config");
    report(&d, V_OK, NULL, "%s: backend %s, data_dir %s",
           opts->config_path ? opts->config_path : "(no file: defaults and LABBOX_*)", cfg->backend,
           cfg->data_dir);
    (void)snprintf(d.name, sizeof(d.name), "user");
    check_user(&d);
    d.in_group = in_output_group(&d);
    if (d.in_group)
        (void)check_dir(&d, "data_dir", cfg->data_dir, false, probe_data,
                        "an upload's staging dir can be made and removed");
    else {
        (void)snprintf(d.name, sizeof(d.name), "data_dir");
        report(&d, V_SKIP, NULL, "%s: the job store needs labbox's user in %s (see %s)",
               cfg->data_dir, config_output_group(cfg),
               cfg->output_group[0] != '\0' ? "output_group" : "socket_group");
    }
    d.sandbox_dir_ok = check_dir(&d, "sandbox_dir", cfg->sandbox_dir, true, probe_sandbox,
                                 "a job's work dir can be made and removed");
    const struct {
        const char *name;
        void (*fn)(struct doc *);
    } plain[] = {{"disk", check_disk},
                 {"agent", check_agent},
                 {"backend", check_backend},
                 {"sandbox", check_sandbox},
                 {"socket_group", check_socket_group}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        (void)snprintf(d.name, sizeof(d.name), "%s", plain[i].name);
        plain[i].fn(&d);
    }
    find_nginx(nginx, sizeof(nginx));
    (void)snprintf(d.name, sizeof(d.name), "nginx_user");
    check_nginx_user(&d, nginx);
    (void)snprintf(d.name, sizeof(d.name), "socket");
    check_socket(&d);
    (void)snprintf(d.name, sizeof(d.name), "outputs");
    check_outputs(&d);
    (void)snprintf(d.name, sizeof(d.name), "nginx -t");
    check_nginx_t(&d, nginx);
    for (size_t i = d.nmade; i-- > 0;)
        RC_IGNORE(fs_rmtree_at(AT_FDCWD, d.made[i]));
    printf("%d check%s failed\n", d.failures, d.failures == 1 ? "" : "s");
    return d.failures == 0 ? 0 : 1;
}
