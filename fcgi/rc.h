/* rc: the one result type of labbox; every fallible function returns an enum rc. */
#ifndef LABBOX_RC_H
#define LABBOX_RC_H

enum rc {
    RC_OK = 0,      /* success */
    RC_NOMEM,       /* allocation failed */
    RC_BADREQ,      /* the client sent something malformed */
    RC_TOOBIG,      /* a size or count cap was exceeded */
    RC_UNSUPPORTED, /* valid, but not something we accept (type, method) */
    RC_NOTFOUND,    /* no such job, file or route */
    RC_CONFLICT,    /* the object is in the wrong state for the request */
    RC_BUSY,        /* try again later (queue full, stream cap) */
    RC_TIMEOUT,     /* a deadline passed */
    RC_BACKEND,     /* the sandbox backend failed */
    RC_IO,          /* a system call failed */
    RC__MAX
};

#define LB_MUST_CHECK __attribute__((warn_unused_result))

/* RC_IGNORE: drop a result on purpose (best-effort cleanup); (void) does not silence gcc. */
#define RC_IGNORE(expr)                                                                            \
    do {                                                                                           \
        enum rc rc_ignored_ = (expr);                                                              \
        (void)rc_ignored_;                                                                         \
    } while (0)

/* rc_str returns a static, stable name for rc ("RC_OK" -> "ok"). */
const char *rc_str(enum rc rc);

#endif
