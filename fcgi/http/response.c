/* response: status lines, headers, bodies and problem+json over FCGX. */
#include "http/request.h"

#include <stdio.h>
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
    if (r->started)
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
    if (r->client_gone)
        return RC_IO;
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
    if (r->client_gone || FCGX_FFlush(fr->out) != 0) {
        r->client_gone = true;
        return RC_IO;
    }
    return RC_OK;
}

void
resp_json(struct req *r, int status, json_object *obj, const char *headers)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (resp_start(r, status, "application/json", headers) == RC_OK && s != NULL)
        RC_IGNORE(resp_write(r, s, len));
    if (s != NULL)
        RC_IGNORE(resp_write(r, "\n", 1));
}

void
resp_problem(struct req *r, int status, const char *code, const char *title, const char *detail,
             const char *file, const char *headers)
{
    json_object *o = json_object_new_object();
    r->problem = code;
    if (o == NULL) {
        resp_empty(r, 500, NULL);
        return;
    }
    json_set_str(o, "type", "about:blank");
    json_set_str(o, "title", title);
    json_object_object_add(o, "status", json_object_new_int(status));
    json_set_str(o, "code", code);
    if (detail != NULL)
        json_set_str(o, "detail", detail);
    if (file != NULL)
        json_set_str(o, "file", file);
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (resp_start(r, status, "application/problem+json", headers) == RC_OK && s != NULL) {
        RC_IGNORE(resp_write(r, s, len));
        RC_IGNORE(resp_write(r, "\n", 1));
    }
    json_object_put(o);
}

void
resp_empty(struct req *r, int status, const char *headers)
{
    RC_IGNORE(resp_start(r, status, NULL, headers));
}
