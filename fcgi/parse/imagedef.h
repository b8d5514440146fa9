/* imagedef: the image a job's agent runs in, from the agent dir's definition files. Pure: the
 * caller reads the files and hands over their bytes.
 *
 * Theory of operation. Researchers' agents need packages a stock image lacks. An operator says
 * which, in the agent dir (docs/modal.md#images):
 *
 *   Dockerfile        its instructions, verbatim (continuation lines joined, comments and
 *                     blank lines dropped). One stage: exactly one FROM, first; no COPY or ADD
 *                     (the agent's files reach /workspace with each job; an image definition
 *                     installs software). It names its own base image.
 *   requirements.txt  without a Dockerfile: FROM <base>, then what Modal's Python SDK does for
 *                     Image.pip_install_from_requirements: the file as the build context file
 *                     /.requirements.txt, "COPY /.requirements.txt /.requirements.txt" and
 *                     "RUN python -m pip install -r /.requirements.txt".
 *   extra commands    a JSON array of Dockerfile instructions (the modal_image_commands key),
 *                     appended to either.
 *
 * Without any of them the definition is just FROM <base> (imagedef.plain). The definition's hash
 * (SHA-256 over its commands and context files, plus a salt the caller chooses, such as Modal's
 * image builder version) names it: the same hash is the same image, so a built image is reused
 * until the definition changes.
 */
#ifndef LABBOX_IMAGEDEF_H
#define LABBOX_IMAGEDEF_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"

#define IMAGEDEF_MAX_COMMANDS 256                  /* instructions of one definition */
#define IMAGEDEF_MAX_LINE     65536                /* bytes of one (joined) instruction */
#define IMAGEDEF_MAX_FILE     (1 << 20)            /* bytes of a Dockerfile or requirements.txt */
#define IMAGEDEF_REQ_NAME     "/.requirements.txt" /* the context file's name */

struct imagedef_file {
    const char *name; /* in the build context, e.g. IMAGEDEF_REQ_NAME */
    const char *data; /* borrowed from the caller's bytes */
    size_t len;
};

struct imagedef {
    char **commands; /* n_commands heap strings, commands[0] is the FROM */
    size_t n_commands;
    struct imagedef_file files[1]; /* context files (requirements.txt) */
    size_t n_files;
    bool plain; /* only FROM <base>: nothing to build beyond the registry image */
};

/* imagedef_build fills *out. base: the base image tag (used without a Dockerfile). dockerfile,
 * requirements: the files' bytes or NULL when absent. extra_json: the JSON array of extra
 * instructions, NULL or "" for none. RC_BADREQ with err (naming the file or key and line) for
 * a definition labbox refuses; RC_NOMEM. *out must be freed with imagedef_fini either way. */
enum rc imagedef_build(struct imagedef *out, const char *base, const char *dockerfile,
                       size_t dockerfile_len, const char *requirements, size_t requirements_len,
                       const char *extra_json, char *err, size_t errlen) LB_MUST_CHECK;
void imagedef_fini(struct imagedef *d);

/* imagedef_check_extra: is extra_json a usable list of instructions (for config checks)? */
enum rc imagedef_check_extra(const char *extra_json, char *err, size_t errlen) LB_MUST_CHECK;

/* imagedef_hash: 64 hex digits of SHA-256 over salt, the commands and the context files. */
void imagedef_hash(const struct imagedef *d, const char *salt, char out[65]);

/* imagedef_dockerfile: the commands as Dockerfile text (one per line), heap, caller frees;
 * NULL on OOM. */
char *imagedef_dockerfile(const struct imagedef *d);

#endif
