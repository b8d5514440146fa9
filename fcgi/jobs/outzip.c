/* outzip: a zip of collected outputs, through libarchive, into a file. */
#include "jobs/outzip.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "parse/names.h"

#define ZIP_CHUNK 65536

/* Add one file; false on a write error (the zip is then useless). */
static bool
add_file(struct archive *a, struct archive_entry *ent, int dirfd, const char *path, char *buf)
{
    const char *why = NULL;
    struct stat st;
    if (names_check_relpath(span_of(path), &why) != RC_OK)
        return true;
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return true;
    }
    archive_entry_clear(ent);
    archive_entry_set_pathname_utf8(ent, path);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0644);
    archive_entry_set_size(ent, st.st_size);
    archive_entry_set_mtime(ent, st.st_mtime, 0);
    bool ok = archive_write_header(a, ent) == ARCHIVE_OK;
    while (ok) {
        ssize_t got = read(fd, buf, ZIP_CHUNK);
        if (got <= 0) {
            ok = got == 0;
            break;
        }
        ok = archive_write_data(a, buf, (size_t)got) == got;
    }
    close(fd);
    return ok;
}

enum rc
outzip_write(int outputs_dirfd, json_object *index, int out_fd)
{
    enum rc rc = RC_NOMEM;
    struct archive *a = archive_write_new();
    struct archive_entry *ent = archive_entry_new();
    char *buf = malloc(ZIP_CHUNK);
    if (a == NULL || ent == NULL || buf == NULL)
        goto out;
    rc = RC_IO;
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_zip_set_compression_deflate(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(a, out_fd) != ARCHIVE_OK)
        goto out;
    size_t n = json_object_array_length(index);
    for (size_t i = 0; i < n; i++) {
        const char *path = json_get_str(json_object_array_get_idx(index, i), "path");
        if (path != NULL && !add_file(a, ent, outputs_dirfd, path, buf))
            goto out;
    }
    if (archive_write_close(a) == ARCHIVE_OK)
        rc = RC_OK;
out:
    if (rc == RC_IO) {
        const char *why = a ? archive_error_string(a) : NULL;
        log_err("writing the outputs zip: %s", why ? why : "write failed");
    }
    if (a != NULL)
        archive_write_free(a);
    if (ent != NULL)
        archive_entry_free(ent);
    free(buf);
    return rc;
}
