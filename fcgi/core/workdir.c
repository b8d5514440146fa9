/* workdir: making, probing and naming a job's work dir under sandbox_dir (see workdir.h). */
#include "core/workdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util/fsutil.h"
#include "util/id.h"
#include "util/owner.h"

enum rc
workdir_path(const struct config *cfg, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", cfg->sandbox_dir, name);
    return n > 0 && (size_t)n < len ? RC_OK : RC_TOOBIG;
}

enum rc
workdir_name(const char *id, char out[ID_LEN + 1])
{
    return id_alias(id, out);
}

enum rc
workdir_job_path(const struct config *cfg, const char *id, char *buf, size_t len)
{
    char name[ID_LEN + 1];
    enum rc rc = workdir_name(id, name);
    return rc == RC_OK ? workdir_path(cfg, name, buf, len) : rc;
}

enum rc
workdir_make(const struct config *cfg, const char *path, int *out_fd, char *why, size_t whylen)
{
    char err[600];
    *out_fd = -1;
    /* labbox's own directory, made if missing (0711), refused if anyone else could control it;
     * the details (with the host path) go to labbox's log only. */
    enum rc rc =
        owner_private_dir("sandbox_dir", cfg->sandbox_dir, geteuid(), true, err, sizeof(err));
    int e = errno;
    if (rc == RC_IO) {
        (void)snprintf(why, whylen, "cannot create sandbox_dir: %s", strerror(e));
        return RC_IO;
    }
    if (rc != RC_OK) {
        log_err("%s", err);
        (void)snprintf(why, whylen,
                       "sandbox_dir is not a directory only labbox controls (labbox's log and "
                       "check-config say why)");
        return RC_IO;
    }
    if (fs_rmtree_at(AT_FDCWD, path) != RC_OK) {
        (void)snprintf(why, whylen, "cannot remove an earlier work dir in sandbox_dir");
        return RC_IO;
    }
    /* labbox's alone: the backend gives the agent what it may see. */
    if (mkdir(path, 0700) != 0) {
        (void)snprintf(why, whylen, "cannot make a work dir in sandbox_dir: %s", strerror(errno));
        return RC_IO;
    }
    *out_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*out_fd < 0) {
        (void)snprintf(why, whylen, "cannot open a new work dir in sandbox_dir: %s",
                       strerror(errno));
        return RC_IO;
    }
    return RC_OK;
}

/* fill: what a staged job has in its work dir: inputs/ with a file, outputs/. */
static enum rc
fill(int work, char *why, size_t whylen)
{
    static const char probe[] = "labbox staging probe\n";
    const char *step = "mkdir inputs";
    int in = -1, fd = -1;
    enum rc rc = RC_IO;
    if (mkdirat(work, SANDBOX_INPUTS_DIR, 0755) != 0)
        goto out;
    step = "open inputs";
    in = openat(work, SANDBOX_INPUTS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        goto out;
    step = "create a file";
    fd = openat(in, "probe.txt", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    step = "write a file";
    if (fs_write_all(fd, probe, sizeof(probe) - 1) != RC_OK)
        goto out;
    step = "mkdir outputs";
    if (mkdirat(work, SANDBOX_OUTPUTS_DIR, 0755) != 0)
        goto out;
    rc = RC_OK;
out:
    if (rc != RC_OK)
        (void)snprintf(why, whylen, "cannot stage a work dir in sandbox_dir: %s: %s", step,
                       strerror(errno));
    if (fd >= 0)
        close(fd);
    if (in >= 0)
        close(in);
    return rc;
}

enum rc
workdir_probe(const struct config *cfg, char *why, size_t whylen)
{
    char id[ID_LEN + 1], path[4096];
    int work = -1;
    enum rc rc = id_new(id);
    if (rc != RC_OK) {
        (void)snprintf(why, whylen, "cannot make a job id for the staging probe");
        return rc;
    }
    if (workdir_path(cfg, id, path, sizeof(path)) != RC_OK) {
        (void)snprintf(why, whylen, "sandbox_dir is too long");
        return RC_IO;
    }
    rc = workdir_make(cfg, path, &work, why, whylen);
    if (rc == RC_OK)
        rc = fill(work, why, whylen);
    if (work >= 0)
        close(work);
    /* Whatever was made goes, also after a failure half-way. */
    if (fs_rmtree_at(AT_FDCWD, path) != RC_OK && rc == RC_OK) {
        (void)snprintf(why, whylen, "cannot remove a work dir from sandbox_dir");
        rc = RC_IO;
    }
    return rc;
}
