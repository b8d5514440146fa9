/* filetype: one libmagic handle behind a mutex, plus an extension table for outputs. */
#include "jobs/filetype.h"

#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static magic_t magic_handle;
static pthread_mutex_t magic_lock = PTHREAD_MUTEX_INITIALIZER;

enum rc
filetype_init(void)
{
    if (magic_handle != NULL)
        return RC_OK;
    magic_handle = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
    if (magic_handle == NULL) {
        log_errno("magic_open");
        return RC_IO;
    }
    /* The start of a file names its type; reading libmagic's default 7 MiB per upload only
     * costs memory that request threads then keep. */
    size_t bytes_max = 1024 * 1024;
    if (magic_setparam(magic_handle, MAGIC_PARAM_BYTES_MAX, &bytes_max) != 0)
        log_warn("magic_setparam: %s", magic_error(magic_handle));
    if (magic_load(magic_handle, NULL) != 0) {
        log_err("magic_load: %s", magic_error(magic_handle));
        magic_close(magic_handle);
        magic_handle = NULL;
        return RC_IO;
    }
    return RC_OK;
}

void
filetype_fini(void)
{
    if (magic_handle != NULL)
        magic_close(magic_handle);
    magic_handle = NULL;
}

enum rc
filetype_detect_fd(int fd, char *out, size_t outlen)
{
    enum rc rc = RC_OK;
    off_t pos = lseek(fd, 0, SEEK_CUR);
    if (lseek(fd, 0, SEEK_SET) < 0)
        return RC_IO;
    /* magic_descriptor may close or move the fd on some versions: give it a dup. */
    int dupfd = dup(fd);
    if (dupfd < 0)
        return RC_IO;
    pthread_mutex_lock(&magic_lock);
    const char *t = magic_handle ? magic_descriptor(magic_handle, dupfd) : NULL;
    if (t == NULL) {
        log_err("magic_descriptor: %s", magic_handle ? magic_error(magic_handle) : "not loaded");
        rc = RC_IO;
    } else {
        (void)snprintf(out, outlen, "%s", t);
    }
    pthread_mutex_unlock(&magic_lock);
    close(dupfd);
    (void)lseek(fd, pos, SEEK_SET);
    return rc;
}

void
filetype_for_output(const char *name, int fd, char *out, size_t outlen)
{
    static const char *const table[][2] = {
        {"html", "text/html"},        {"htm", "text/html"},
        {"svg", "image/svg+xml"},     {"png", "image/png"},
        {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},         {"webp", "image/webp"},
        {"csv", "text/csv"},          {"tsv", "text/tab-separated-values"},
        {"json", "application/json"}, {"txt", "text/plain"},
        {"log", "text/plain"},        {"md", "text/markdown"},
        {"pdf", "application/pdf"},   {"zip", "application/zip"},
        {"gz", "application/gzip"},   {"xml", "application/xml"},
        {"tif", "image/tiff"},        {"tiff", "image/tiff"},
    };
    const char *dot = strrchr(name, '.');
    if (dot != NULL && strchr(dot, '/') == NULL) {
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
            if (strcasecmp(dot + 1, table[i][0]) == 0) {
                (void)snprintf(out, outlen, "%s", table[i][1]);
                return;
            }
        }
    }
    if (fd >= 0 && filetype_detect_fd(fd, out, outlen) == RC_OK)
        return;
    (void)snprintf(out, outlen, "application/octet-stream");
}

enum filetype_view
filetype_view(const char *type)
{
    static const struct {
        const char *type;
        enum filetype_view view;
    } table[] = {
        {"text/html", FILETYPE_VIEW_DOC},         {"image/svg+xml", FILETYPE_VIEW_DOC},
        {"image/png", FILETYPE_VIEW_IMAGE},       {"image/jpeg", FILETYPE_VIEW_IMAGE},
        {"image/gif", FILETYPE_VIEW_IMAGE},       {"image/webp", FILETYPE_VIEW_IMAGE},
        {"application/json", FILETYPE_VIEW_TEXT}, {"application/xml", FILETYPE_VIEW_TEXT},
        {"application/pdf", FILETYPE_VIEW_PDF},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(type, table[i].type) == 0)
            return table[i].view;
    return strncmp(type, "text/", 5) == 0 ? FILETYPE_VIEW_TEXT : FILETYPE_VIEW_NONE;
}
