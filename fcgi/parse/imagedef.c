/* imagedef: Dockerfile instructions of a job image from the agent dir's definition. Pure. */
#include "parse/imagedef.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "util/sha256.h"
#include "util/span.h"

static const char *const INSTRUCTIONS[] = {
    "FROM",    "RUN",        "CMD",         "LABEL",  "MAINTAINER", "EXPOSE",  "ENV",
    "ADD",     "COPY",       "ENTRYPOINT",  "VOLUME", "USER",       "WORKDIR", "ARG",
    "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",  NULL,
};

void
imagedef_fini(struct imagedef *d)
{
    for (size_t i = 0; d->commands != NULL && i < d->n_commands; i++)
        free(d->commands[i]);
    free(d->commands);
    memset(d, 0, sizeof(*d));
}

/* The instruction keyword of line (upper-cased into kw), "" when it does not start with one. */
static void
keyword(const char *line, char kw[16])
{
    size_t n = 0;
    while (line[n] != '\0' && !isspace((unsigned char)line[n]) && n < 15) {
        kw[n] = (char)toupper((unsigned char)line[n]);
        n++;
    }
    kw[n] = '\0';
    if (line[n] != '\0' && !isspace((unsigned char)line[n]))
        kw[0] = '\0';
    for (size_t i = 0; INSTRUCTIONS[i] != NULL; i++)
        if (strcmp(kw, INSTRUCTIONS[i]) == 0)
            return;
    kw[0] = '\0';
}

/* Append one instruction (len bytes at p) to d after checking it; where names the source for
 * errors ("Dockerfile line 3"). */
static enum rc
add(struct imagedef *d, const char *p, size_t len, const char *where, bool from_ok, char *err,
    size_t errlen)
{
    char kw[16];
    if (d->n_commands >= IMAGEDEF_MAX_COMMANDS || len > IMAGEDEF_MAX_LINE) {
        (void)snprintf(err, errlen, "%s: more than %d instructions or %d bytes", where,
                       IMAGEDEF_MAX_COMMANDS, IMAGEDEF_MAX_LINE);
        return RC_BADREQ;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\0' || p[i] == '\n' || p[i] == '\r' || (unsigned char)p[i] == 0x7f ||
            ((unsigned char)p[i] < 0x20 && p[i] != '\t')) {
            (void)snprintf(err, errlen, "%s: a control character in the instruction", where);
            return RC_BADREQ;
        }
    }
    char *c = strndup(p, len);
    if (c == NULL)
        return RC_NOMEM;
    keyword(c, kw);
    const char *why = NULL;
    if (kw[0] == '\0')
        why = "not a Dockerfile instruction";
    else if (strcmp(kw, "FROM") == 0 && !from_ok)
        why = d->n_commands == 0 ? "the base image comes from the configuration: no FROM here"
                                 : "one stage only: a second FROM";
    else if (strcmp(kw, "FROM") != 0 && d->n_commands == 0)
        why = "the first instruction must be FROM";
    else if (strcmp(kw, "COPY") == 0 || strcmp(kw, "ADD") == 0)
        why = "COPY and ADD are not supported (the agent's files reach /workspace with each job)";
    if (why != NULL) {
        (void)snprintf(err, errlen, "%s: %s: %.60s", where, why, c);
        free(c);
        return RC_BADREQ;
    }
    char **nc = realloc(d->commands, (d->n_commands + 1) * sizeof(*nc));
    if (nc == NULL) {
        free(c);
        return RC_NOMEM;
    }
    d->commands = nc;
    d->commands[d->n_commands++] = c;
    return RC_OK;
}

/* A Dockerfile's instructions: continuation lines joined, comments and blank lines dropped. */
static enum rc
from_dockerfile(struct imagedef *d, const char *text, size_t len, char *err, size_t errlen)
{
    char *cur = NULL, where[48];
    size_t cur_len = 0;
    unsigned lineno = 0, start = 0;
    enum rc rc = RC_OK;
    const char *p = text, *end = text + len;
    while (p < end && rc == RC_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *b = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        lineno++;
        span_trim_ends(&b, &e);
        if (b == e || *b == '#')
            continue; /* blank lines and comments, also inside a continued instruction */
        bool more = e[-1] == '\\';
        if (more) {
            e--;
            span_trim_ends(&b, &e);
        }
        if (cur_len == 0)
            start = lineno;
        /* Past IMAGEDEF_MAX_LINE + 1 bytes nothing more is kept: add() refuses the line. */
        size_t take = (size_t)(e - b), room = IMAGEDEF_MAX_LINE + 1 - cur_len;
        if (take > room)
            take = room;
        char *n = realloc(cur, cur_len + take + 2);
        if (n == NULL) {
            rc = RC_NOMEM;
            break;
        }
        cur = n;
        if (cur_len > 0 && cur_len <= IMAGEDEF_MAX_LINE)
            cur[cur_len++] = ' ';
        memcpy(cur + cur_len, b, take);
        cur_len += take;
        if (!more) {
            (void)snprintf(where, sizeof(where), "Dockerfile line %u", start);
            rc = add(d, cur, cur_len, where, d->n_commands == 0, err, errlen);
            cur_len = 0;
        }
    }
    if (rc == RC_OK && cur_len > 0) {
        (void)snprintf(where, sizeof(where), "Dockerfile line %u", start);
        rc = add(d, cur, cur_len, where, d->n_commands == 0, err, errlen);
    }
    free(cur);
    if (rc == RC_OK && d->n_commands == 0) {
        (void)snprintf(err, errlen, "Dockerfile: no instructions");
        rc = RC_BADREQ;
    }
    return rc;
}

/* The extra instructions of a JSON array into d (d NULL: only check them). */
static enum rc
from_extra(struct imagedef *d, const char *json, char *err, size_t errlen)
{
    struct imagedef scratch = {0};
    struct imagedef *t = d != NULL ? d : &scratch;
    char where[64];
    enum rc rc = RC_OK;
    if (json == NULL || json[0] == '\0')
        return RC_OK;
    json_object *a = json_tokener_parse(json);
    if (a == NULL || !json_object_is_type(a, json_type_array)) {
        (void)snprintf(err, errlen,
                       "modal_image_commands: expected a JSON array of Dockerfile instructions");
        json_object_put(a);
        return RC_BADREQ;
    }
    if (d == NULL) {
        /* Checking alone: stand in for the FROM that comes first. */
        rc = add(t, "FROM base", 9, "modal_image_commands", true, err, errlen);
    }
    size_t n = json_object_array_length(a);
    for (size_t i = 0; i < n && rc == RC_OK; i++) {
        json_object *it = json_object_array_get_idx(a, i);
        (void)snprintf(where, sizeof(where), "modal_image_commands item %zu", i + 1);
        if (!json_object_is_type(it, json_type_string) || json_object_get_string_len(it) == 0) {
            (void)snprintf(err, errlen, "%s: expected a non-empty string", where);
            rc = RC_BADREQ;
            break;
        }
        rc = add(t, json_object_get_string(it), (size_t)json_object_get_string_len(it), where,
                 false, err, errlen);
    }
    json_object_put(a);
    imagedef_fini(&scratch);
    return rc;
}

enum rc
imagedef_check_extra(const char *extra_json, char *err, size_t errlen)
{
    return from_extra(NULL, extra_json, err, errlen);
}

enum rc
imagedef_build(struct imagedef *out, const char *base, const char *dockerfile,
               size_t dockerfile_len, const char *requirements, size_t requirements_len,
               const char *extra_json, char *err, size_t errlen)
{
    static const char copy[] = "COPY " IMAGEDEF_REQ_NAME " " IMAGEDEF_REQ_NAME;
    static const char pip[] = "RUN python -m pip install -r " IMAGEDEF_REQ_NAME;
    enum rc rc;
    char from[600];
    memset(out, 0, sizeof(*out));
    if (dockerfile_len > IMAGEDEF_MAX_FILE || requirements_len > IMAGEDEF_MAX_FILE) {
        (void)snprintf(err, errlen, "%s is larger than %d bytes",
                       dockerfile_len > IMAGEDEF_MAX_FILE ? "Dockerfile" : "requirements.txt",
                       IMAGEDEF_MAX_FILE);
        return RC_BADREQ;
    }
    if (dockerfile != NULL)
        return (rc = from_dockerfile(out, dockerfile, dockerfile_len, err, errlen)) != RC_OK
                   ? rc
                   : from_extra(out, extra_json, err, errlen);
    int k = snprintf(from, sizeof(from), "FROM %s", base);
    if (k < 0 || (size_t)k >= sizeof(from) || base[0] == '\0') {
        (void)snprintf(err, errlen, "the base image name is empty or too long");
        return RC_BADREQ;
    }
    rc = add(out, from, (size_t)k, "the base image", true, err, errlen);
    if (rc == RC_OK && requirements != NULL) {
        /* COPY is ours here, not the operator's: appended without add()'s refusal. */
        char *c = strdup(copy), *r = strdup(pip);
        char **nc = c && r ? realloc(out->commands, (out->n_commands + 2) * sizeof(*nc)) : NULL;
        if (nc == NULL) {
            free(c);
            free(r);
            return RC_NOMEM;
        }
        out->commands = nc;
        out->commands[out->n_commands++] = c;
        out->commands[out->n_commands++] = r;
        out->files[0] = (struct imagedef_file){IMAGEDEF_REQ_NAME, requirements, requirements_len};
        out->n_files = 1;
    }
    if (rc == RC_OK)
        rc = from_extra(out, extra_json, err, errlen);
    out->plain = rc == RC_OK && out->n_commands == 1;
    return rc;
}

void
imagedef_hash(const struct imagedef *d, const char *salt, char out[65])
{
    struct sha256 h;
    char num[32];
    if (!sha256_init(&h)) {
        out[0] = '\0';
        return;
    }
    sha256_update(&h, "labbox-image 1", 15);
    sha256_update(&h, salt, strlen(salt) + 1);
    for (size_t i = 0; i < d->n_commands; i++)
        sha256_update(&h, d->commands[i], strlen(d->commands[i]) + 1);
    for (size_t i = 0; i < d->n_files; i++) {
        int k = snprintf(num, sizeof(num), "%zu", d->files[i].len);
        sha256_update(&h, d->files[i].name, strlen(d->files[i].name) + 1);
        sha256_update(&h, num, (size_t)k + 1);
        sha256_update(&h, d->files[i].data, d->files[i].len);
    }
    sha256_hex(&h, out);
}

char *
imagedef_dockerfile(const struct imagedef *d)
{
    size_t n = 1;
    for (size_t i = 0; i < d->n_commands; i++)
        n += strlen(d->commands[i]) + 1;
    char *t = malloc(n), *p = t;
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < d->n_commands; i++) {
        size_t l = strlen(d->commands[i]);
        memcpy(p, d->commands[i], l);
        p += l;
        *p++ = '\n';
    }
    *p = '\0';
    return t;
}
