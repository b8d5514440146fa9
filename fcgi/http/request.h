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
    int status;               /* the status answered, once started */
    const char *problem;      /* the problem code answered (static), or NULL */
    unsigned id;              /* request counter, for logs */
};

/* req_init fills r from the FCGX request (borrowed for the request's life). */
void req_init(struct req *r, void *fcgx, unsigned id);
/* req_param: a FastCGI param such as "HTTP_LAST_EVENT_ID", or NULL. Borrowed. */
const char *req_param(const struct req *r, const char *name);
/* req_query: the percent-decoded value of key in the query string into out (NUL-terminated);
 * false when absent or longer than outlen - 1. */
bool req_query(const struct req *r, const char *key, char *out, size_t outlen);
/* req_read: up to len body bytes; 0 at the end, -1 on error. */
ssize_t req_read(struct req *r, char *buf, size_t len);

/* resp_start: status line and headers. headers is NULL or "Name: value\r\n..." text. */
enum rc resp_start(struct req *r, int status, const char *content_type,
                   const char *headers) LB_MUST_CHECK;
/* resp_write: body bytes; RC_IO once the client is gone (r->client_gone). */
enum rc resp_write(struct req *r, const void *p, size_t len) LB_MUST_CHECK;
/* resp_flush: push buffered bytes to nginx now (event streams). */
enum rc resp_flush(struct req *r) LB_MUST_CHECK;

/* resp_json: a whole JSON response (obj borrowed). */
void resp_json(struct req *r, int status, json_object *obj, const char *headers);
/* resp_problem: an application/problem+json error (RFC 9457) with our stable code (a static
 * string: it is kept in r->problem for metrics); file may be NULL. detail and file are
 * client-visible: never put a host path or a secret in them. */
void resp_problem(struct req *r, int status, const char *code, const char *title,
                  const char *detail, const char *file, const char *headers);
/* resp_empty: a response with no body (204, 202 without body...). */
void resp_empty(struct req *r, int status, const char *headers);

/* http_reason: "Not Found" for 404 (static). */
const char *http_reason(int status);

#endif
