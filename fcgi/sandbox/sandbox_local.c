/* sandbox_local: placeholder. */
#include "sandbox/sandbox.h"

const struct sandbox_ops sandbox_local_ops = {.name = "local"};
