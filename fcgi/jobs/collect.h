/* collect: copies what a sandbox wrote into a job's outputs/ dir, treating it as hostile.
 *
 * Rules, the same for a directory tree (local backend) and a tar stream (docker, modal):
 * regular files only; symlinks, hard links (st_nlink > 1 or tar hardlink entries), devices,
 * FIFOs and sockets are skipped and counted; names must pass names_check_relpath; nothing is
 * ever followed or written outside dst (openat/mkdirat with O_NOFOLLOW relative to dst's fd);
 * total bytes and entries are capped: going over stops the copy and sets over_limit. Copied
 * files get mode 0644, directories 0755.
 */
#ifndef LABBOX_COLLECT_H
#define LABBOX_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rc.h"

struct collect_limits {
    uint64_t max_bytes; /* total bytes of regular files */
    uint64_t max_files; /* regular files + directories */
};

struct collect_stats {
    uint64_t files;   /* regular files copied */
    uint64_t bytes;   /* bytes copied */
    uint64_t skipped; /* entries not copied: links, devices, FIFOs, bad names */
    bool over_limit;  /* a cap was hit; what was copied so far stays */
};

/* collect_tree: copy the tree under src_dirfd (an open directory) into dst_dirfd (an empty
 * directory). RC_IO on a system error on our side (logged). */
enum rc collect_tree(int src_dirfd, int dst_dirfd, const struct collect_limits *lim,
                     struct collect_stats *out) LB_MUST_CHECK;

/* collect_tar_fd: read a tar stream from fd (a pipe or file) and extract its members under
 * strip_prefix (e.g. "outputs/"; entries outside it are skipped) into dst_dirfd with the same
 * rules. RC_BADREQ if the stream is not a readable tar. */
enum rc collect_tar_fd(int fd, const char *strip_prefix, int dst_dirfd,
                       const struct collect_limits *lim, struct collect_stats *out) LB_MUST_CHECK;

/* collect_tar_mem: the same from a buffer. */
enum rc collect_tar_mem(const void *p, size_t len, const char *strip_prefix, int dst_dirfd,
                        const struct collect_limits *lim, struct collect_stats *out) LB_MUST_CHECK;

/* Writes a tar of the tree under src_dirfd (regular files and directories only, paths
 * relative, prefixed by prefix such as "" or "workspace/") to write_fn in chunks; mode and
 * mtime kept, owner 0:0 or the given uid/gid. Used to stage inputs into docker and modal. */
typedef enum rc collect_write_fn(void *ctx, const void *p, size_t len);
enum rc collect_make_tar(int src_dirfd, const char *prefix, unsigned uid, unsigned gid,
                         collect_write_fn *write_fn, void *ctx) LB_MUST_CHECK;

#endif
