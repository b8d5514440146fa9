/* response: status lines, headers, bodies and problem+json over FCGX. */
#include "http/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "json.h"

const char *
http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

enum rc
resp_start(struct req *r, int status, const char *content_type, const char *headers)
{
    FCGX_Request *fr = r->fcgx;
    if (r->started || r->detached)
        return RC_CONFLICT;
    r->started = true;
    r->status = status;
    int n = FCGX_FPrintF(fr->out, "Status: %d %s\r\n", status, http_reason(status));
    if (n >= 0 && content_type != NULL)
        n = FCGX_FPrintF(fr->out, "Content-Type: %s\r\n", content_type);
    if (n >= 0)
        n = FCGX_PutS("Cache-Control: no-store\r\n", fr->out);
    if (n >= 0 && headers != NULL)
        n = FCGX_PutS(headers, fr->out);
    if (n >= 0)
        n = FCGX_PutS("\r\n", fr->out);
    if (n < 0) {
        r->client_gone = true;
        return RC_IO;
    }
    return RC_OK;
}

enum rc
resp_write(struct req *r, const void *p, size_t len)
{
    FCGX_Request *fr = r->fcgx;
    const char *c = p;
    if (r->client_gone || r->detached)
        return RC_IO;
    if (r->head)
        return RC_OK; /* HEAD: the headers were the answer */
    while (len > 0) {
        int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
        if (FCGX_PutStr(c, chunk, fr->out) != chunk) {
            r->client_gone = true;
            return RC_IO;
        }
        c += chunk;
        len -= (size_t)chunk;
    }
    return RC_OK;
}

enum rc
resp_flush(struct req *r)
{
    FCGX_Request *fr = r->fcgx;
    if (r->client_gone || r->detached || FCGX_FFlush(fr->out) != 0) {
        r->client_gone = true;
        return RC_IO;
    }
    return RC_OK;
}

enum rc
resp_detach(struct req *r, int *out_fd, uint16_t *out_reqid)
{
    FCGX_Request *fr = r->fcgx;
    if (r->detached)
        return RC_CONFLICT;
    if (resp_flush(r) != RC_OK)
        return RC_IO;
    /* ipcFd sits below libfcgi's "don't use" line: there is no other way to the connection.
     * FCGX_Free(fr, 0) frees the streams and params without writing FCGI_END_REQUEST or
     * closing; with ipcFd at -1, the FCGX_Finish_r and FCGX_Accept_r that follow only accept
     * the next connection (libfcgi 2.4.2, fcgiapp.c). */
    *out_fd = fr->ipcFd;
    *out_reqid = (uint16_t)fr->requestId;
    FCGX_Free(fr, 0);
    fr->ipcFd = -1;
    fr->envp = NULL;
    r->detached = true;
    r->started = true;
    r->method = r->path = r->query = r->content_type = "";
    return RC_OK;
}

void
resp_json_text(struct req *r, int status, const char *text, size_t len, const char *headers)
{
    if (resp_start(r, status, "application/json", headers) == RC_OK && text != NULL &&
        resp_write(r, text, len) == RC_OK)
        RC_IGNORE(resp_write(r, "\n", 1));
}

void
resp_json(struct req *r, int status, json_object *obj, const char *headers)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(obj, RESP_JSON_FLAGS, &len);
    resp_json_text(r, status, s, len, headers);
}

/* The one table of problems: code, title, status, and the Retry-After it carries (0 = none). */
static const struct {
    const char *code;
    const char *title;
    int status;
    int retry_after;
} problems[PROBLEM__MAX] = {
    {"bad_request", "Bad request", 400, 0},                 /* PROBLEM_BAD_REQUEST */
    {"bad_filename", "Bad file name", 400, 0},              /* PROBLEM_BAD_FILENAME */
    {"bad_params", "Bad parameters", 400, 0},               /* PROBLEM_BAD_PARAMS */
    {"unauthorized", "Unauthorized", 401, 0},               /* PROBLEM_UNAUTHORIZED */
    {"forbidden", "Forbidden", 403, 0},                     /* PROBLEM_FORBIDDEN */
    {"not_found", "Not found", 404, 0},                     /* PROBLEM_NOT_FOUND */
    {"method_not_allowed", "Method not allowed", 405, 0},   /* PROBLEM_METHOD_NOT_ALLOWED */
    {"already_finished", "Already finished", 409, 0},       /* PROBLEM_ALREADY_FINISHED */
    {"not_ready", "Not ready", 409, 0},                     /* PROBLEM_NOT_READY */
    {"file_too_large", "File too large", 413, 0},           /* PROBLEM_FILE_TOO_LARGE */
    {"job_too_large", "Job too large", 413, 0},             /* PROBLEM_JOB_TOO_LARGE */
    {"unsupported_type", "Unsupported type", 415, 0},       /* PROBLEM_UNSUPPORTED_TYPE */
    {"queue_full", "Queue full", 429, 10},                  /* PROBLEM_QUEUE_FULL */
    {"user_quota", "Quota reached", 429, 10},               /* PROBLEM_USER_QUOTA */
    {"internal", "Internal error", 500, 0},                 /* PROBLEM_INTERNAL */
    {"unavailable", "Unavailable", 503, 5},                 /* PROBLEM_UNAVAILABLE */
    {"too_many_streams", "Too many event streams", 503, 5}, /* PROBLEM_TOO_MANY_STREAMS */
};

const char *
problem_code(enum problem p)
{
    return (unsigned)p < PROBLEM__MAX ? problems[p].code : "internal";
}

int
problem_status(enum problem p)
{
    return (unsigned)p < PROBLEM__MAX ? problems[p].status : 500;
}

static bool
add_str(json_object *o, const char *key, const char *s)
{
    return s == NULL || json_set_str(o, key, s);
}

/* The problem+json body of p (caller puts): type, title, status, code, detail (when not
 * empty), file, and one more member (key, value) when key is not NULL. NULL on OOM. */
static json_object *
problem_json(enum problem p, const char *file, const char *key, const char *value,
             const char *detail)
{
    json_object *o = json_object_new_object();
    bool ok = o != NULL && json_set_str(o, "type", "about:blank") &&
              json_set_str(o, "title", problems[p].title) &&
              json_set_i64(o, "status", problems[p].status) &&
              json_set_str(o, "code", problems[p].code) &&
              add_str(o, "detail", detail[0] ? detail : NULL) && add_str(o, "file", file) &&
              (key == NULL || add_str(o, key, value));
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* The problem answer; extra is one more member (key, value), or NULLs. */
static void
problem_answer(struct req *r, enum problem p, const char *headers, const char *file,
               const char *key, const char *value, const char *detail)
{
    char hdr[1024];
    if ((unsigned)p >= PROBLEM__MAX)
        p = PROBLEM_INTERNAL;
    int k = snprintf(hdr, sizeof(hdr), "%s", headers ? headers : "");
    if (problems[p].retry_after > 0 && (headers == NULL || strstr(headers, "Retry-After:") == NULL))
        k = snprintf(hdr, sizeof(hdr), "%sRetry-After: %d\r\n", headers ? headers : "",
                     problems[p].retry_after);
    if (k < 0 || (size_t)k >= sizeof(hdr))
        hdr[0] = '\0'; /* never half a header line */
    r->problem = problems[p].code;
    json_object *o = problem_json(p, file, key, value, detail);
    if (o == NULL) {
        resp_empty(r, problems[p].status, hdr[0] ? hdr : NULL);
        return;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, RESP_JSON_FLAGS, &len);
    if (resp_start(r, problems[p].status, "application/problem+json", hdr[0] ? hdr : NULL) ==
            RC_OK &&
        s != NULL) {
        RC_IGNORE(resp_write(r, s, len));
        RC_IGNORE(resp_write(r, "\n", 1));
    }
    json_object_put(o);
}

char *
resp_text(int status, const char *content_type, const char *body, size_t body_len, size_t *out_len)
{
    char head[256];
    int k = snprintf(head, sizeof(head),
                     "Status: %d %s\r\nContent-Type: %s\r\n"
                     "Cache-Control: no-store\r\n\r\n",
                     status, http_reason(status), content_type);
    char *out = k > 0 && (size_t)k < sizeof(head) ? malloc((size_t)k + body_len + 1) : NULL;
    if (out == NULL)
        return NULL;
    memcpy(out, head, (size_t)k);
    memcpy(out + k, body, body_len);
    out[(size_t)k + body_len] = '\n';
    *out_len = (size_t)k + body_len + 1;
    return out;
}

char *
resp_problem_text(enum problem p, const char *detail, size_t *out_len)
{
    if ((unsigned)p >= PROBLEM__MAX)
        p = PROBLEM_INTERNAL;
    json_object *o = problem_json(p, NULL, NULL, NULL, detail);
    size_t len = 0;
    const char *s = o ? json_object_to_json_string_length(
                            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
                      : NULL;
    char *out =
        s ? resp_text(problems[p].status, "application/problem+json", s, len, out_len) : NULL;
    json_object_put(o);
    return out;
}

void
resp_problem(struct req *r, enum problem p, const char *headers, const char *file, const char *fmt,
             ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(detail, sizeof(detail), fmt, ap); /* a cut sentence is still a sentence */
    va_end(ap);
    problem_answer(r, p, headers, file, NULL, NULL, detail);
}

void
resp_problem_with(struct req *r, enum problem p, const char *headers, const char *key,
                  const char *value, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    problem_answer(r, p, headers, NULL, key, value, detail);
}

void
resp_empty(struct req *r, int status, const char *headers)
{
    RC_IGNORE(resp_start(r, status, NULL, headers));
}
