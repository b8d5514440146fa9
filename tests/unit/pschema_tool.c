/* pschema_tool: the C verdicts of parse/pschema for pschema_parity.py, which compares them with
 * scripts/agent/params.py. Each stdin line is a JSON array [schema_text, params_text]; each
 * stdout line a JSON object: {"schema": "ok" or why} and, when the schema compiled and params
 * is a string, "rc" ("ok", "bad_request", "bad_params"), "param" and "detail". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "parse/pschema.h"

static void
one(json_object *c)
{
    char why[PSCHEMA_DETAIL_MAX];
    struct pschema *s = NULL;
    struct pschema_verdict v;
    json_object *res = json_object_new_object();
    json_object *st = json_object_array_get_idx(c, 0), *pt = json_object_array_get_idx(c, 1);
    enum rc rc = pschema_compile(json_object_get_string(st), (size_t)json_object_get_string_len(st),
                                 &s, why, sizeof(why));
    json_object_object_add(res, "schema", json_object_new_string(rc == RC_OK ? "ok" : why));
    if (rc == RC_OK && json_object_is_type(pt, json_type_string)) {
        rc = pschema_check(s, json_object_get_string(pt), (size_t)json_object_get_string_len(pt),
                           &v);
        json_object_object_add(res, "rc",
                               json_object_new_string(rc == RC_OK       ? "ok"
                                                      : rc == RC_BADREQ ? "bad_request"
                                                                        : "bad_params"));
        json_object_object_add(res, "param", json_object_new_string(v.param));
        json_object_object_add(res, "detail", json_object_new_string(v.detail));
    }
    puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
    json_object_put(res);
    pschema_free(s);
}

int
main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_object *c = json_tokener_parse(line);
        if (!json_object_is_type(c, json_type_array)) {
            fprintf(stderr, "pschema_tool: a line is not a JSON array\n");
            free(line);
            return 2;
        }
        one(c);
        json_object_put(c);
    }
    free(line);
    return 0;
}
