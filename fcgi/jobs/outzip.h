/* outzip: all of a job's collected outputs as one zip file, written once. */
#ifndef LABBOX_OUTZIP_H
#define LABBOX_OUTZIP_H

#include <json-c/json.h>

#include "rc.h"

/* outzip_write: write to out_fd (an empty regular file) a zip (deflate) of the files that
 * index (the outputs index: [{path, ...}], borrowed) names under outputs_dirfd, in index order.
 * Paths that fail names_check_relpath, or are not regular files, are left out. RC_IO on a
 * read or write error (logged), RC_NOMEM. */
enum rc outzip_write(int outputs_dirfd, json_object *index, int out_fd) LB_MUST_CHECK;

#endif
