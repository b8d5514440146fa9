/* store_fixture: a job store over a fresh temporary data dir, for the unit tests of the core
 * modules built on jobstore; closing it removes the dir. */
#ifndef LABBOX_TEST_STORE_FIXTURE_H
#define LABBOX_TEST_STORE_FIXTURE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jobstore.h"
#include "util/fsutil.h"

struct store_fixture {
    char dir[64];
    struct config cfg;
    struct jobstore js;
};

/* store_fixture_open: the store over a new /tmp/test_<name>.XXXXXX; false when it cannot be
 * made (nothing to close then). */
static inline bool
store_fixture_open(struct store_fixture *f, const char *name)
{
    int n = snprintf(f->dir, sizeof(f->dir), "/tmp/test_%s.XXXXXX", name);
    if (n < 0 || (size_t)n >= sizeof(f->dir) || mkdtemp(f->dir) == NULL)
        return false;
    if (config_init(&f->cfg) != RC_OK)
        return false;
    free(f->cfg.data_dir);
    f->cfg.data_dir = strdup(f->dir);
    if (f->cfg.data_dir != NULL && jobstore_open(&f->js, &f->cfg) == RC_OK)
        return true;
    config_fini(&f->cfg);
    return false;
}

static inline void
store_fixture_close(struct store_fixture *f)
{
    jobstore_close(&f->js);
    config_fini(&f->cfg);
    RC_IGNORE(fs_rmtree_at(AT_FDCWD, f->dir));
}

#endif
