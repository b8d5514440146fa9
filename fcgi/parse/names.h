/* names: validation of client-supplied file names and output paths. Pure. */
#ifndef LABBOX_NAMES_H
#define LABBOX_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "rc.h"
#include "util/span.h"

/* names_check_upload: one path component as an uploaded file name: 1..NAME_MAX_BYTES bytes of
 * valid UTF-8 (no overlongs, no surrogates), no '/', '\\', NUL, C0/C1 control characters or
 * DEL, no bidirectional controls or invisible format characters (U+061C, U+200B..U+200F,
 * U+2028..U+202E, U+2060..U+206F, U+FEFF), not starting with '.', not "..", no trailing space or
 * dot. Every component of an input's relative path is one (names_check_input_path). Returns
 * RC_OK (*out_why = NULL) or RC_BADREQ with a static reason in *out_why. Strict UTF-8 means
 * RFC 3629: overlong forms, surrogates, code points above U+10FFFF and truncated
 * sequences are all refused. */
enum rc names_check_upload(struct span name, const char **out_why) LB_MUST_CHECK;

/* names_check_relpath: a relative output path "a/b/c.png": components separated by single
 * '/', each passing the upload rules except that a leading dot is allowed (".hidden" files
 * in outputs are fine) while "." and ".." are not; at most OUTPUT_PATH_MAX bytes and
 * OUTPUT_DEPTH_MAX components (so no leading, trailing or doubled '/'). RC_OK (*out_why =
 * NULL) or RC_BADREQ with a static reason in *out_why. */
enum rc names_check_relpath(struct span path, const char **out_why) LB_MUST_CHECK;

/* names_check_input_path: an uploaded file's relative path "a/b/c.csv" (a browser sends one for
 * a file of a dropped folder): the rules of names_check_relpath, with every component an
 * upload name (so no leading dot). A full path as old browsers sent it (C:\\x\\y.csv,
 * /Users/u/y.csv) is refused, not cut. RC_OK (*out_why = NULL) or RC_BADREQ with a static
 * reason in *out_why. */
enum rc names_check_input_path(struct span path, const char **out_why) LB_MUST_CHECK;

/* names_check_user: a user name the web server passed (REMOTE_USER): 1..max bytes of valid
 * UTF-8 without control characters (C0, DEL, C1). RC_OK (*out_why = NULL) or RC_BADREQ with a
 * static reason in *out_why. */
enum rc names_check_user(struct span name, size_t max, const char **out_why) LB_MUST_CHECK;

#endif
