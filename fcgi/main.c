/* main: the labbox command line: serve, supervise, check-config, doctor, run, version, help.
 *
 * Every command takes --config FILE (before or after its name) and --help. Exit status: 0 on
 * success (and for help), 1 when a command fails while running, 2 for a usage or configuration
 * error (`run` has more: cli/run.h). `serve` is in serve.c, `supervise` in core/supervisor.c,
 * `doctor` in cli/doctor.c, `run` in cli/run.c (it parses its own arguments).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "cli/run.h"
#include "config.h"
#include "core/agent.h"
#include "core/supervisor.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "serve.h"
#include "util/clock.h"
#include "util/id.h"

struct cli {
    const char *config_path; /* --config, NULL = none */
    const char *arg;         /* the one positional argument after the command */
    int id_fd;               /* supervise --id-fd: the job id comes on this fd; -1 = none */
    bool print;              /* check-config --print */
    const char *nginx_user;  /* doctor --nginx-user */
};

struct command {
    const char *name;
    const char *synopsis; /* after "labbox NAME" */
    const char *summary;  /* one line for `labbox help` */
    const char *help;     /* the rest of `labbox NAME --help` */
    bool needs_arg;
    bool loads_config;
    int (*run)(struct cli *cli, struct config *cfg);
};

static int
run_serve(struct cli *cli, struct config *cfg)
{
    if (serve_open_log(cfg->log_file) != RC_OK)
        return 1;
    serve_main(cfg, cli->config_path);
}

/* read_id: the job id serve writes on the --id-fd pipe (never in argv: /proc/<pid>/cmdline is
 * every local user's to read, and the id is the job's only credential). */
static bool
read_id(int fd, char out[ID_LEN + 1])
{
    char buf[ID_LEN + 2];
    size_t n = 0;
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    (void)close(fd);
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    if (!id_is_valid(buf, n))
        return false;
    memcpy(out, buf, n);
    out[n] = '\0';
    return true;
}

static int
run_supervise(struct cli *cli, struct config *cfg)
{
    char id[ID_LEN + 1];
    int status = 2;
    if (cli->id_fd >= 0 && !read_id(cli->id_fd, id))
        (void)fprintf(stderr, "labbox: supervise: no job id on fd %d\n", cli->id_fd);
    else
        status = supervisor_main(cfg, cli->id_fd >= 0 ? id : cli->arg);
    config_fini(cfg);
    return status;
}

/* The backend's own check (for local: every limit it must enforce can be, the uid range is
 * free, the tools are there); 0 when usable, else 1 with the reason on stderr. */
static int
check_backend(const struct config *cfg)
{
    const struct sandbox_ops *ops = sandbox_ops_by_name(cfg->backend);
    struct sandbox *sb = ops ? sandbox_new(ops, cfg, NULL) : NULL;
    enum rc rc = sb == NULL ? RC_BACKEND : sandbox_init(sb);
    if (rc == RC_OK) {
        sb->deadline_ms = clock_mono_ms() + 10000;
        rc = sandbox_check(sb);
    }
    if (rc != RC_OK)
        (void)fprintf(stderr, "labbox: configuration ok, but backend %s is not usable: %s\n",
                      cfg->backend, sb ? sb->error : "out of memory");
    sandbox_free(sb);
    return rc == RC_OK ? 0 : 1;
}

static int
run_check_config(struct cli *cli, struct config *cfg)
{
    char err[1024] = "", *text = NULL;
    size_t len = 0;
    int status = 0;
    if (sandbox_ops_by_name(cfg->backend) == NULL) {
        (void)fprintf(stderr, "labbox: backend %s is not compiled into this build (have: %s)\n",
                      cfg->backend, sandbox_names());
        status = 2;
    } else if (config_check_files(cfg, err, sizeof(err)) != RC_OK ||
               agent_check(cfg, err, sizeof(err)) != RC_OK ||
               config_check_host(cfg, false, err, sizeof(err)) != RC_OK) {
        (void)fprintf(stderr, "labbox: configuration error: %s\n", err);
        status = 2;
    } else if (cli->print) {
        if (config_format(cfg, &text, &len) != RC_OK) {
            (void)fprintf(stderr, "labbox: out of memory\n");
            status = 1;
        } else if (fwrite(text, 1, len, stdout) != len) {
            status = 1;
        }
        free(text);
    } else if ((status = check_backend(cfg)) == 0) {
        printf("configuration ok: backend %s, data %s\n", cfg->backend, cfg->data_dir);
    }
    config_fini(cfg);
    return status;
}

static int
run_doctor(struct cli *cli, struct config *cfg)
{
    struct doctor_opts o = {.config_path = cli->config_path, .nginx_user = cli->nginx_user};
    int status = doctor_run(cfg, &o);
    config_fini(cfg);
    return status;
}

static int
run_version(struct cli *cli, struct config *cfg)
{
    (void)cli;
    (void)cfg;
    printf("labbox %s (%s), backends: %s\n", LABBOX_VERSION, LABBOX_COMMIT, sandbox_names());
    return 0;
}

static int run_help(struct cli *cli, struct config *cfg);

static const struct command commands[] = {
    {"serve", "[--config FILE]", "run the FastCGI server (nginx forwards /api/ to it)",
     "Runs until SIGTERM or SIGINT; running jobs keep running and the next serve picks them\n"
     "up. SIGHUP re-reads the configuration (see labbox.conf(5) for the keys that need a\n"
     "restart) and reopens log_file. Listens on `listen`: a unix socket path, fd:0, or\n"
     "systemd (socket activation). Tells systemd READY=1 and STOPPING=1 (Type=notify).\n",
     false, true, run_serve},
    {"check-config", "[--config FILE] [--print]", "check the configuration and exit",
     "Loads the file and the LABBOX_<KEY> environment as serve would, checks every value,\n"
     "that the backend is compiled in, that agent_dir exists and that its params.schema.json\n"
     "(if any) is in labbox's schema subset, and exits 0 (ok) or 2 (the message names the key\n"
     "or the schema's fault). --print writes every key's effective value as a config file.\n",
     false, true, run_check_config},
    {"doctor", "[--config FILE] [--nginx-user USER]",
     "check this host for labbox and say what to fix",
     "Checks, as the user it runs as (run it as labbox's user): data_dir and sandbox_dir (owner,\n"
     "mode, an upload's and a job's directory made and removed), free disk against\n"
     "disk_reserve_mb, the agent (its schema, its command), the backend's own check, a trivial\n"
     "sandbox (local), socket_group membership, nginx's user (from nginx's configuration, or\n"
     "--nginx-user) reaching the socket and the outputs, and the rendered nginx snippet under\n"
     "nginx -t. One line per check (ok, FAIL with what to do, skip with why); exits 1 if any\n"
     "failed.\n",
     false, true, run_doctor},
    {"supervise", "[--config FILE] (--id-fd N | JOB_ID)",
     "run one job (serve starts these; not for manual use)",
     "Runs one job from staging to its end, holding the job's lock (passed by serve as fd 3).\n"
     "serve starts one per job, in its own session, with --config <data_dir>/running.conf and\n"
     "the job id written on a pipe at fd N (--id-fd), never on the command line.\n",
     true, true, run_supervise},
    {"run",
     "[--config FILE] [--backend B] [--agent-dir DIR] [--params JSON|@FILE] [--out DIR]\n"
     "                  FILE|FOLDER...",
     "run one job in the foreground, without nginx or serve",
     "Checks the files (a folder as its files under its name) and params as an upload is\n"
     "checked, runs the agent in the backend's sandbox with the configured limits, prints the\n"
     "job's log on stdout as it happens (\"[stderr] \" and \"[labbox] \" mark lines), and\n"
     "links the outputs into --out (default ./labbox-<job id>; it must be empty or missing).\n"
     "Ctrl-C cancels the job and still collects. A temporary data dir is used unless\n"
     "data_dir is configured. Exit status: 0 succeeded, 1 failed, 2 usage or configuration,\n"
     "3 an input or the params refused, 4 timed out, 5 canceled, 6 labbox failed.\n",
     false, false, NULL},
    {"version", "", "print the version and the backends compiled in", "", false, false,
     run_version},
    {"help", "[COMMAND]", "print this help, or one command's", "", false, false, run_help},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
usage(FILE *f)
{
    (void)fprintf(f, "usage: labbox COMMAND [--config FILE] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        (void)fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    (void)fprintf(f,
                  "\nEvery configuration key can also be set as LABBOX_<KEY> in the environment.\n"
                  "`labbox COMMAND --help` describes a command; labbox(8) and labbox.conf(5) the "
                  "rest.\n");
}

static void
command_usage(FILE *f, const struct command *c)
{
    (void)fprintf(f, "usage: labbox %s%s%s\n", c->name, c->synopsis[0] ? " " : "", c->synopsis);
}

static void
command_help(const struct command *c)
{
    command_usage(stdout, c);
    printf("\n%s.\n", c->summary);
    if (c->help[0] != '\0')
        printf("\n%s", c->help);
}

static int
run_help(struct cli *cli, struct config *cfg)
{
    (void)cfg;
    const struct command *c = cli->arg ? find_command(cli->arg) : NULL;
    if (cli->arg != NULL && c == NULL) {
        (void)fprintf(stderr, "labbox: no command %s\n\n", cli->arg);
        usage(stderr);
        return 2;
    }
    if (c != NULL)
        command_help(c);
    else
        usage(stdout);
    return 0;
}

static bool
parse_fd(const char *s, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 3 || v > 1023)
        return false;
    *out = (int)v;
    return true;
}

int
main(int argc, char **argv)
{
    struct cli cli = {.id_fd = -1};
    const char *name = NULL;
    bool help = false, extra = false, bad_option = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 && i + 1 < argc)
            cli.config_path = argv[++i];
        else if (strncmp(a, "--config=", 9) == 0)
            cli.config_path = a + 9;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            help = true;
        else if (strcmp(a, "--version") == 0 && name == NULL)
            name = "version";
        else if (strcmp(a, "--print") == 0)
            cli.print = true;
        else if (strcmp(a, "--nginx-user") == 0 && i + 1 < argc)
            cli.nginx_user = argv[++i];
        else if (strcmp(a, "--id-fd") == 0 && i + 1 < argc)
            bad_option = bad_option || !parse_fd(argv[++i], &cli.id_fd);
        else if (a[0] == '-')
            bad_option = true;
        else if (name == NULL)
            name = a;
        else if (cli.arg == NULL)
            cli.arg = a;
        else
            extra = true;
    }
    const struct command *c = name ? find_command(name) : NULL;
    if (help && (name == NULL || c != NULL)) {
        if (c != NULL)
            command_help(c);
        else
            usage(stdout);
        return 0;
    }
    if (c != NULL && c->run == NULL)
        return run_main(argc, argv); /* run: its own options and any number of files */
    bool has_arg = cli.arg != NULL || cli.id_fd >= 0;
    bool args_ok =
        c != NULL && !bad_option && !extra && (c->run == run_help || has_arg == c->needs_arg) &&
        !(cli.arg != NULL && cli.id_fd >= 0) && (!cli.print || c->run == run_check_config) &&
        (!cli.nginx_user || c->run == run_doctor) && (cli.id_fd < 0 || c->run == run_supervise);
    if (!args_ok) {
        if (c != NULL) {
            (void)fprintf(stderr, "labbox: wrong arguments for %s\n", name);
            command_usage(stderr, c);
            return 2;
        }
        if (name != NULL)
            (void)fprintf(stderr, "labbox: unknown command %s\n\n", name);
        usage(stderr);
        return 2;
    }
    struct config cfg = {0};
    char err[1024] = "";
    if (c->loads_config) {
        if (config_load(&cfg, cli.config_path, err, sizeof(err)) != RC_OK) {
            (void)fprintf(stderr, "labbox: configuration error: %s\n",
                          err[0] ? err : "out of memory");
            config_fini(&cfg);
            return 2;
        }
        (void)log_set_level(cfg.log_level);
    }
    return c->run(&cli, &cfg);
}
