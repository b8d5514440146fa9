/* json: small json-c helpers shared by job records, responses and backend payloads. */
#ifndef LABBOX_JSON_H
#define LABBOX_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* json_get_str: the string member key of obj, or NULL (borrowed from obj). */
const char *json_get_str(json_object *obj, const char *key);
/* json_get_i64: the integer member key, or def when absent or not a number. */
int64_t json_get_i64(json_object *obj, const char *key, int64_t def);
/* json_get_bool: the boolean member key, or def. */
bool json_get_bool(json_object *obj, const char *key, bool def);
/* json_set_str: obj[key] = s, or null when s is NULL. false on OOM (nothing leaks, obj
 * unchanged). */
bool json_set_str(json_object *obj, const char *key, const char *s);
/* json_set_i64: obj[key] = n. */
bool json_set_i64(json_object *obj, const char *key, int64_t n);
/* json_add / json_push: obj[key] = v, or append v to the array arr, taking v (freed when it
 * cannot be added); false if v is NULL (an allocation that failed) or on OOM. */
bool json_add(json_object *obj, const char *key, json_object *v);
bool json_push(json_object *arr, json_object *v);

#endif
