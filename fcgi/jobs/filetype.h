/* filetype: content types by libmagic (uploads) and by name (outputs being served). */
#ifndef LABBOX_FILETYPE_H
#define LABBOX_FILETYPE_H

#include <stddef.h>

#include "rc.h"

/* filetype_init opens the calling thread's magic handle (MAGIC_MIME_TYPE) with the system
 * database: a start-up check that the database loads. Other threads get theirs on first use,
 * closed when they end; filetype_fini closes the calling thread's. */
enum rc filetype_init(void) LB_MUST_CHECK;
void filetype_fini(void);

/* filetype_detect_fd: the MIME type of the open file's content ("text/csv"), into out. Safe
 * from any thread (each has its own handle). RC_IO when libmagic fails. The file offset is
 * restored. */
enum rc filetype_detect_fd(int fd, char *out, size_t outlen) LB_MUST_CHECK;

/* filetype_for_output: the type to serve an output file as: by extension for the common
 * report formats (html, svg, png, csv, json, ...), else by content when fd >= 0, else
 * application/octet-stream. */
void filetype_for_output(const char *name, int fd, char *out, size_t outlen);

/* How a type may be shown in a browser (GET .../outputs/<path>?view=1): as a document in a
 * sandbox (HTML, SVG), an image, plain text, a PDF (the browser's viewer), or not at all (a
 * download). */
enum filetype_view {
    FILETYPE_VIEW_NONE,  /* only downloaded */
    FILETYPE_VIEW_DOC,   /* text/html, image/svg+xml: sandboxed, no scripts */
    FILETYPE_VIEW_IMAGE, /* png, jpeg, gif, webp */
    FILETYPE_VIEW_TEXT,  /* other text types (csv, tsv, plain, ...), json, xml: as text */
    FILETYPE_VIEW_PDF,   /* application/pdf */
};

/* filetype_view: the way type may be shown. Pure. */
enum filetype_view filetype_view(const char *type);

#endif
