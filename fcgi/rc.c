/* rc: names and HTTP statuses of enum rc; the only two mapping tables. */
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

static const int rc_statuses[RC__MAX] = {
    200, /* RC_OK */
    503, /* RC_NOMEM */
    400, /* RC_BADREQ */
    413, /* RC_TOOBIG */
    415, /* RC_UNSUPPORTED */
    404, /* RC_NOTFOUND */
    409, /* RC_CONFLICT */
    429, /* RC_BUSY */
    504, /* RC_TIMEOUT */
    502, /* RC_BACKEND */
    500, /* RC_IO */
};

const char *
rc_str(enum rc rc)
{
    return (unsigned)rc < RC__MAX ? rc_names[rc] : "invalid";
}

int
rc_http_status(enum rc rc)
{
    return (unsigned)rc < RC__MAX ? rc_statuses[rc] : 500;
}
