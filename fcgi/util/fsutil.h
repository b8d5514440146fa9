/* fsutil: openat-relative file helpers: atomic replace, recursive remove, whole-file read,
 * durability (writeback, a tree synced, group commit). */
#ifndef LABBOX_FSUTIL_H
#define LABBOX_FSUTIL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

/* fs_write_atomic: write len bytes to <dirfd>/name via a temp file, fsync, rename, fsync dir.
 * On failure errno says why (ENOSPC: the disk is full). */
enum rc fs_write_atomic(int dirfd, const char *name, const void *p, size_t len) LB_MUST_CHECK;
/* fs_write_atomic_mode: the same with the file's permission bits (before the umask). */
enum rc fs_write_atomic_mode(int dirfd, const char *name, const void *p, size_t len,
                             unsigned mode) LB_MUST_CHECK;

/* fs_read_all: read <dirfd>/name whole (at most max bytes; RC_TOOBIG beyond) into a
 * NUL-terminated heap buffer the caller frees. RC_NOTFOUND if absent. */
enum rc fs_read_all(int dirfd, const char *name, size_t max, char **out,
                    size_t *out_len) LB_MUST_CHECK;
/* fs_read_fd: the same from an open fd, from its current offset to the end. */
enum rc fs_read_fd(int fd, size_t max, char **out, size_t *out_len) LB_MUST_CHECK;

/* fs_rmtree_at: remove <dirfd>/name and everything below it, at any depth and path length,
 * never following symlinks and never entering another filesystem mounted inside. Missing is
 * not an error; RC_IO (logged) if anything could not be removed (the rest is removed). */
enum rc fs_rmtree_at(int dirfd, const char *name) LB_MUST_CHECK;

/* fs_mkdir_p: create path and its parents with mode (absolute or cwd-relative). */
enum rc fs_mkdir_p(const char *path, unsigned mode) LB_MUST_CHECK;

/* fs_write_all / fs_read_full: loop over EINTR and short counts. */
enum rc fs_write_all(int fd, const void *p, size_t len) LB_MUST_CHECK;

/* fs_copy_fd: copy all of src (from its current offset) to dst; *out_bytes gets the count.
 * RC_TOOBIG, with nothing more written, once more than max bytes would be copied. */
enum rc fs_copy_fd(int src, int dst, uint64_t max, uint64_t *out_bytes) LB_MUST_CHECK;

/* fs_copy_tree: copy the regular files and directories under src_dirfd into dst_dirfd
 * (trusted source such as the operator's agent dir; links are skipped). */
enum rc fs_copy_tree(int src_dirfd, int dst_dirfd) LB_MUST_CHECK;
/* fs_copy_tree_except: the same, leaving out the top-level entry called skip. */
enum rc fs_copy_tree_except(int src_dirfd, int dst_dirfd, const char *skip) LB_MUST_CHECK;

/* fs_link_tree: the regular files and directories under src_dirfd, at the same relative paths
 * under dst_dirfd: files hard-linked (copied where a link cannot be made: another filesystem),
 * directories created 0755, links and special files skipped; the top-level
 * entry named skip (NULL: none) is left out. For trusted trees (a job's inputs). RC_CONFLICT
 * when a file exists in dst, RC_TOOBIG beyond 32 levels, RC_IO (logged). */
enum rc fs_link_tree(int src_dirfd, int dst_dirfd, const char *skip) LB_MUST_CHECK;

/* fs_lock_open: open <dirfd>/name (created with mode, never through a symlink) and take an
 * exclusive flock without waiting: the fd (CLOEXEC) holding it, or -1 with errno set
 * (EWOULDBLOCK: someone else holds it). */
int fs_lock_open(int dirfd, const char *name, unsigned mode);

/* fs_opendir: a DIR stream from the start of dirfd's directory, over a dup of dirfd (dirfd
 * stays the caller's); NULL with errno on failure. Close it with closedir. */
DIR *fs_opendir(int dirfd);

/* fs_free_mb: free space in MiB of the filesystem holding fd, or UINT64_MAX if unknown. */
uint64_t fs_free_mb(int fd);

/* fs_writeback: start writing fd's dirty pages in [off, off + len) to disk now (len 0: to the
 * end), without waiting (sync_file_range SYNC_FILE_RANGE_WRITE): a later fdatasync then has
 * little left to wait for, and on a journaling filesystem the blocks are allocated in the
 * transaction the next sync commits. A hint: durability still needs the fdatasync. */
void fs_writeback(int fd, uint64_t off, uint64_t len);

/* fs_sync_tree: make what is below dirfd durable: fdatasync every regular file, fsync every
 * directory after its entries (links are not followed; depth at most 64). RC_IO. */
enum rc fs_sync_tree(int dirfd) LB_MUST_CHECK;

/* Group commit of one directory's fsync: callers that changed the directory (a rename into
 * it) call fs_group_fsync after their change; one of them fsyncs it for every change made
 * before that fsync began, the others wait for it instead of fsyncing again. */
struct fs_group;
/* fs_group_new: a group over fd (borrowed; it stays open for the group's life). NULL on OOM. */
struct fs_group *fs_group_new(int fd);
void fs_group_free(struct fs_group *g);
/* fs_group_fsync: return once an fsync of the fd that began after this call has succeeded;
 * RC_IO when the one that covered this call failed. */
enum rc fs_group_fsync(struct fs_group *g) LB_MUST_CHECK;

#endif
