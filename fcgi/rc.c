/* rc: the names of enum rc (HTTP statuses come from the problem table in http/response.c). */
#include "rc.h"

static const char *const rc_names[RC__MAX] = {
    "ok",          /* RC_OK */
    "nomem",       /* RC_NOMEM */
    "bad_request", /* RC_BADREQ */
    "too_big",     /* RC_TOOBIG */
    "unsupported", /* RC_UNSUPPORTED */
    "not_found",   /* RC_NOTFOUND */
    "conflict",    /* RC_CONFLICT */
    "busy",        /* RC_BUSY */
    "timeout",     /* RC_TIMEOUT */
    "backend",     /* RC_BACKEND */
    "io",          /* RC_IO */
};

const char *
rc_str(enum rc rc)
{
    return (unsigned)rc < RC__MAX ? rc_names[rc] : "invalid";
}
