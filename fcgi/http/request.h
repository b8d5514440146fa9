/* request: one FastCGI request as handlers see it (struct req), and the ways to answer it.
 *
 * Only http/request.c and http/response.c touch libfcgi; handlers see this header only.
 */
#ifndef LABBOX_REQUEST_H
#define LABBOX_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "core/jobstore.h"
#include "rc.h"

struct req {
    void *fcgx;               /* the FCGX_Request; opaque to handlers */
    const char *method;       /* "GET", ... */
    const char *path;         /* decoded, normalized path (nginx $document_uri) */
    const char *query;        /* raw query string, "" if none */
    const char *content_type; /* "" if none */
    uint64_t content_length;  /* 0 if none */
    bool has_length;          /* CONTENT_LENGTH was given */
    bool started;             /* headers sent */
    bool client_gone;         /* a write failed */
    bool detached;            /* the connection left libfcgi (resp_detach) */
    int status;               /* the status answered, once started */
    const char *problem;      /* the problem code answered (static), or NULL */
    bool head;                /* a HEAD request: bodies are not sent */
    unsigned id;              /* request counter, for logs */
    /* What the web server says about the client (borrowed, NULL when not passed). */
    const char *remote_user;   /* REMOTE_USER: the user nginx authenticated */
    const char *remote_addr;   /* REMOTE_ADDR: nginx's peer */
    const char *forwarded_for; /* the X-Forwarded-For header (believed from trusted proxies) */
    /* Who is asking, as api_identify decided from the above and the identity setting. */
    struct job_owner who;
    bool admin; /* who is a user on admin_users */
    /* The configuration snapshot the whole request runs with (borrowed: set by serve when the
     * request begins, valid until it ends). */
    const struct config *cfg;
};

/* req_init fills r from the FCGX request (borrowed for the request's life). */
void req_init(struct req *r, void *fcgx, unsigned id);
/* req_param: a FastCGI param such as "HTTP_LAST_EVENT_ID", or NULL. Borrowed. */
const char *req_param(const struct req *r, const char *name);
/* req_query: the percent-decoded value of key in the query string into out (NUL-terminated):
 * RC_OK; RC_NOTFOUND when absent; RC_TOOBIG when longer than outlen - 1 (a value is never
 * silently cut). */
enum rc req_query(const struct req *r, const char *key, char *out, size_t outlen) LB_MUST_CHECK;
/* req_read: up to len body bytes; 0 at the end, -1 on error. */
ssize_t req_read(struct req *r, char *buf, size_t len);

/* resp_start: status line and headers. headers is NULL or "Name: value\r\n..." text. */
enum rc resp_start(struct req *r, int status, const char *content_type,
                   const char *headers) LB_MUST_CHECK;
/* resp_write: body bytes; RC_IO once the client is gone (r->client_gone). */
enum rc resp_write(struct req *r, const void *p, size_t len) LB_MUST_CHECK;
/* resp_flush: push buffered bytes to nginx now (event streams). */
enum rc resp_flush(struct req *r) LB_MUST_CHECK;

/* resp_detach: take the connection out of libfcgi, after flushing what was written, for
 * http/park.c: *out_fd is the connection (the caller now owns and closes it; blocking mode),
 * *out_reqid the FastCGI request id; the rest of the response is written as FastCGI records by
 * the caller (http/fcgirec.h). r then counts as answered (r->started) and finished for libfcgi:
 * its params and streams are freed (r's strings become ""; copy what you need first), resp_*
 * calls fail and the thread's FCGX_Finish_r does nothing. RC_IO when the flush failed (the
 * client is gone; nothing was taken), RC_CONFLICT when already detached. */
enum rc resp_detach(struct req *r, int *out_fd, uint16_t *out_reqid) LB_MUST_CHECK;

/* The problems the API answers with: one code each, with its status and title in the one
 * table in response.c (docs/api.md lists them). */
enum problem {
    PROBLEM_BAD_REQUEST,        /* 400 malformed request, body, params, offset or query */
    PROBLEM_BAD_FILENAME,       /* 400 an upload's name is not allowed */
    PROBLEM_BAD_PARAMS,         /* 400 params break the agent's schema (with "param") */
    PROBLEM_UNAUTHORIZED,       /* 401 identity = remote_user and no usable user */
    PROBLEM_FORBIDDEN,          /* 403 what only admins may ask for */
    PROBLEM_NOT_FOUND,          /* 404 no such job, resource or route */
    PROBLEM_METHOD_NOT_ALLOWED, /* 405 with Allow */
    PROBLEM_ALREADY_FINISHED,   /* 409 cancel after the end */
    PROBLEM_NOT_READY,          /* 409 outputs before collection */
    PROBLEM_FILE_TOO_LARGE,     /* 413 one file over max_file_bytes */
    PROBLEM_JOB_TOO_LARGE,      /* 413 the files together, or too many of them */
    PROBLEM_UNSUPPORTED_TYPE,   /* 415 a file's content type, or a body that is not multipart */
    PROBLEM_QUEUE_FULL,         /* 429 max_queue jobs wait; Retry-After */
    PROBLEM_USER_QUOTA,         /* 429 a per-identity quota; the "quota" member names it */
    PROBLEM_INTERNAL,           /* 500 the server failed; details went to its log */
    PROBLEM_UNAVAILABLE,        /* 503 shutting down or low on disk; Retry-After */
    PROBLEM_TOO_MANY_STREAMS,   /* 503 the event stream cap; Retry-After */
    PROBLEM__MAX
};

/* problem_code / problem_status: the stable code ("queue_full") and HTTP status of p. */
const char *problem_code(enum problem p);
int problem_status(enum problem p);

/* How JSON responses are printed (json-c flags). */
#define RESP_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
/* resp_json: a whole JSON response (obj borrowed). */
void resp_json(struct req *r, int status, json_object *obj, const char *headers);
/* resp_json_text: the same for JSON already printed with RESP_JSON_FLAGS (len bytes). */
void resp_json_text(struct req *r, int status, const char *text, size_t len, const char *headers);
/* resp_problem: an application/problem+json answer (RFC 9457) for p: status, code and title
 * from the table, detail from fmt (printf-style), "file" when file is not NULL. headers are
 * extra header lines or NULL; a code whose table entry has a Retry-After gets it unless
 * headers carry their own. The code is kept in r->problem for metrics. detail and file are
 * client-visible: never put a host path or a secret in them. */
void resp_problem(struct req *r, enum problem p, const char *headers, const char *file,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* resp_problem_with: resp_problem with one more string member (key: value) in the body. */
void resp_problem_with(struct req *r, enum problem p, const char *headers, const char *key,
                       const char *value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* resp_text: a whole answer as the text a FastCGI response carries on stdout (the Status line,
 * Content-Type, Cache-Control: no-store, a blank line, body and a newline), for a request
 * parked before it could answer (http/park.h). The caller frees it; NULL on OOM. */
char *resp_text(int status, const char *content_type, const char *body, size_t body_len,
                size_t *out_len);
/* resp_problem_text: the problem+json answer of p with detail, as resp_text. */
char *resp_problem_text(enum problem p, const char *detail, size_t *out_len);
/* resp_empty: a response with no body (204, 202 without body...). */
void resp_empty(struct req *r, int status, const char *headers);

/* http_reason: "Not Found" for 404 (static). */
const char *http_reason(int status);

#endif
