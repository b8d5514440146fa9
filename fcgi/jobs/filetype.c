/* filetype: libmagic, one handle per thread, plus an extension table for outputs. */
#include "jobs/filetype.h"

#include <magic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

/* One handle per thread (a libmagic handle is not safe to share): request threads type their
 * uploads at once, instead of queueing on one handle's mutex (about 0.4 ms a small text file).
 * A thread's handle is made on its first use and closed when the thread ends; the database is
 * mapped, not copied, so a handle costs little memory. */
static pthread_key_t magic_key;
static pthread_once_t magic_once = PTHREAD_ONCE_INIT;
static bool magic_key_ok;

static void
close_handle(void *m)
{
    magic_close(m);
}

static void
make_key(void)
{
    magic_key_ok = pthread_key_create(&magic_key, close_handle) == 0;
}

static magic_t
open_handle(void)
{
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
    if (m == NULL) {
        log_errno("magic_open");
        return NULL;
    }
    /* The start of a file names its type; reading libmagic's default 7 MiB per upload only
     * costs memory that request threads then keep. */
    size_t bytes_max = 1024 * 1024;
    if (magic_setparam(m, MAGIC_PARAM_BYTES_MAX, &bytes_max) != 0)
        log_warn("magic_setparam: %s", magic_error(m));
    if (magic_load(m, NULL) != 0) {
        log_err("magic_load: %s", magic_error(m));
        magic_close(m);
        return NULL;
    }
    return m;
}

/* This thread's handle, made now if needed; NULL on failure (logged). */
static magic_t
handle(void)
{
    (void)pthread_once(&magic_once, make_key);
    if (!magic_key_ok)
        return NULL;
    magic_t m = pthread_getspecific(magic_key);
    if (m == NULL && (m = open_handle()) != NULL && pthread_setspecific(magic_key, m) != 0) {
        magic_close(m);
        m = NULL;
    }
    return m;
}

enum rc
filetype_init(void)
{
    return handle() != NULL ? RC_OK : RC_IO;
}

void
filetype_fini(void)
{
    magic_t m = magic_key_ok ? pthread_getspecific(magic_key) : NULL;
    if (m != NULL) {
        magic_close(m);
        (void)pthread_setspecific(magic_key, NULL);
    }
}

enum rc
filetype_detect_fd(int fd, char *out, size_t outlen)
{
    enum rc rc = RC_OK;
    magic_t m = handle();
    off_t pos = lseek(fd, 0, SEEK_CUR);
    if (m == NULL || lseek(fd, 0, SEEK_SET) < 0)
        return RC_IO;
    /* magic_descriptor may close or move the fd on some versions: give it a dup. */
    int dupfd = dup(fd);
    if (dupfd < 0)
        return RC_IO;
    const char *t = magic_descriptor(m, dupfd);
    if (t == NULL) {
        log_err("magic_descriptor: %s", magic_error(m));
        rc = RC_IO;
    } else {
        (void)snprintf(out, outlen, "%s", t);
    }
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
