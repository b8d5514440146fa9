/* caps: the Linux capabilities of the calling thread: what it holds, and giving them up.
 *
 * labbox runs as its own user with a few capabilities given by its service unit (ambient
 * capabilities: docs/operations.md); root has them all. Capabilities are per thread: serve's
 * request threads drop them all, the dispatcher keeps them for the supervisors it spawns
 * (which inherit the ambient set), and every process labbox starts for something untrusted
 * (bwrap, slirp4netns, mkfs, the output typer) drops them before it execs or reads. Raw
 * capget/capset/prctl: no libcap. */
#ifndef LABBOX_CAPS_H
#define LABBOX_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc.h"

/* One bit per capability number (linux/capability.h: CAPS_BIT(CAP_SYS_ADMIN)). */
#define CAPS_BIT(cap) (UINT64_C(1) << (cap))

/* caps_effective: the calling thread's effective set (0 when it cannot be read). */
uint64_t caps_effective(void);
/* caps_missing: the bits of want the calling thread does not hold in its effective set. */
uint64_t caps_missing(uint64_t want);
/* caps_names: "CAP_SYS_ADMIN, CAP_KILL" for the bits of mask, into buf. */
void caps_names(uint64_t mask, char *buf, size_t len);

/* caps_drop_bounding: remove every capability from the calling thread's bounding set, when it
 * holds CAP_SETPCAP (root does; labbox's unit does not grant it: bwrap empties the sandbox's
 * bounding set itself). Call before a uid change that clears CAP_SETPCAP. Safe after fork. */
void caps_drop_bounding(void);
/* caps_drop_all: clear the calling thread's ambient, inheritable, permitted and effective
 * sets: nothing it execs or does from now on has a capability. Safe after fork. */
enum rc caps_drop_all(void) LB_MUST_CHECK;

#endif
