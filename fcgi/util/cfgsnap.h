/* cfgsnap: the configuration as immutable snapshots, replaced whole by a reload.
 *
 * Theory of operation. One snapshot is current. Readers (each request thread, the scheduler's
 * dispatcher) own a slot each; cfgsnap_enter records in the slot the generation current at
 * that moment, then returns the current snapshot, which the reader uses until cfgsnap_leave
 * (for a request: from its first byte to its last, so it never mixes two configurations).
 * One publisher thread (serve's signal thread) calls cfgsnap_publish: the new snapshot becomes
 * current, and the old one is retired, stamped with the generation that ends with it. Every
 * snapshot a reader can get between its enter and its leave retires in a generation no older
 * than the one in its slot, so cfgsnap_reclaim frees a retired snapshot once every slot is idle
 * or holds a later generation: a snapshot is never freed under a reader, however long the
 * reader keeps it, and never modified once published. The start-up snapshot belongs to the
 * caller and is never freed here (the job store keeps pointers into it, for the keys that need
 * a restart). All of it is lock-free: enter and leave are two atomic stores and a load.
 */
#ifndef LABBOX_CFGSNAP_H
#define LABBOX_CFGSNAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rc.h"

struct cfgsnap_node;

struct cfgsnap {
    _Atomic(const struct config *) current;
    const struct config *start;    /* the caller's; never freed here */
    struct cfgsnap_node *cur_node; /* the node of current, NULL while start is current */
    struct cfgsnap_node *retired;  /* retired and not yet freed (publisher only) */
    atomic_uint_fast64_t gen;      /* the current generation */
    atomic_uint_fast64_t *slots;   /* per reader: the generation at its enter, or idle */
    size_t nslots;
    atomic_size_t taken; /* slots handed out by cfgsnap_reader */
};

/* cfgsnap_init: start is current, with room for readers readers. RC_NOMEM. */
enum rc cfgsnap_init(struct cfgsnap *cs, const struct config *start, size_t readers) LB_MUST_CHECK;
/* cfgsnap_fini: free every snapshot published here (no reader may be inside any more). */
void cfgsnap_fini(struct cfgsnap *cs);

/* cfgsnap_reader: a slot for one reader thread, or -1 when all are taken. */
long cfgsnap_reader(struct cfgsnap *cs);
/* cfgsnap_enter: the current snapshot, valid for the reader until its cfgsnap_leave. A reader
 * is inside at most once at a time. */
const struct config *cfgsnap_enter(struct cfgsnap *cs, long reader);
void cfgsnap_leave(struct cfgsnap *cs, long reader);

/* For the publisher thread only: */
/* cfgsnap_current: the current snapshot. */
const struct config *cfgsnap_current(struct cfgsnap *cs);
/* cfgsnap_new: a zeroed configuration to load the next snapshot into, or NULL (out of
 * memory). It goes to cfgsnap_publish, or to cfgsnap_discard (config_fini and free). */
struct config *cfgsnap_new(void);
void cfgsnap_discard(struct config *next);
/* cfgsnap_publish: make next (from cfgsnap_new; no longer the caller's) the current snapshot
 * and retire the old one. */
void cfgsnap_publish(struct cfgsnap *cs, struct config *next);
/* cfgsnap_reclaim: free the retired snapshots no reader can still hold; returns how many are
 * left waiting for a reader. */
size_t cfgsnap_reclaim(struct cfgsnap *cs);

#endif
