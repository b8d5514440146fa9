/* jobcache: status reads from memory: per job, the record as last read and the view rendered
 * from it, used for as long as the record's file is the same one.
 *
 * Validation. job.json is replaced whole by a rename (or, a full disk's last resort, rewritten
 * in place), so the record is current exactly when the file behind the name is the file that
 * was read, unchanged. jobcache_get asks for the identity of the file behind the name
 * (jobstore_record_ident: its handle, ctime and size; no open, no read, no parse) and compares
 * it with the identity of the file the entry was read from (taken from the open file, not the
 * name: jobstore_load_ident). A read that begins after a change (a state written, a cancel, a
 * delete: the job dir leaves jobs/) sees the change. On a filesystem without file handles
 * nothing is kept: every read loads the record.
 *
 * What an entry holds is immutable: the record (without the backend's private state) and the
 * text the caller's render function made from it at load time (NULL when the view has live
 * parts, such as a queued job's position, and must be rendered per read). Entries are
 * reference counted: a reader holds one from jobcache_get to jobcache_put without any lock.
 * The table is direct-mapped (JOBCACHE_SLOTS slots by a hash of the id, under striped
 * mutexes); a load replaces its slot's entry; entries hold no file descriptor, and at most
 * JOBCACHE_BYTES of rendered text is kept (a larger view is rendered on each read).
 */
#ifndef LABBOX_JOBCACHE_H
#define LABBOX_JOBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/jobstore.h"
#include "rc.h"

#define JOBCACHE_SLOTS 1024                /* jobs kept */
#define JOBCACHE_BYTES (16u * 1024 * 1024) /* rendered text kept, all jobs */

struct jobcache;
struct jc_entry;

/* jobcache_render_fn: the view of job for variant (the caller's: what else the view depends on,
 * such as a setting a reload may change; entries of another variant do not match), dirfd: its
 * directory (for what else the view shows, such as the outputs index of an ended job); *out
 * NULL when it must be rendered per read. *out is malloc'd (the cache owns it then). */
typedef enum rc jobcache_render_fn(void *ctx, uint64_t variant, int dirfd, const struct job *job,
                                   char **out, size_t *out_len);

/* One read: job and text stay valid until jobcache_put. */
struct jobcache_ref {
    struct jc_entry *entry;
    const struct job *job; /* the record (no sandbox state) */
    const char *text;      /* the rendered view, or NULL (render it from job) */
    size_t len;
};

/* jobcache_new: an empty cache over js (borrowed) with render(ctx, ...) for views. NULL on
 * OOM. */
struct jobcache *jobcache_new(const struct jobstore *js, jobcache_render_fn *render, void *ctx);
void jobcache_free(struct jobcache *c);

/* jobcache_get: job id as it is now, its view for variant: from the cache when the record is
 * unchanged and the entry's variant is this one, else loaded (and rendered) and kept.
 * RC_NOTFOUND for no such job; RC_IO, RC_NOMEM; the render function's errors. On RC_OK, *out is
 * the caller's until jobcache_put. */
enum rc jobcache_get(struct jobcache *c, const char *id, uint64_t variant,
                     struct jobcache_ref *out) LB_MUST_CHECK;
/* jobcache_put: done with a read; NULL-safe on an empty ref. */
void jobcache_put(struct jobcache_ref *ref);

/* jobcache_stats: reads answered from memory and reads that loaded the record, so far. */
void jobcache_stats(const struct jobcache *c, unsigned long long *hits, unsigned long long *loads);

#endif
