/* json: json-c accessors that tolerate missing and mistyped members. */
#include "json.h"

const char *
json_get_str(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int64_t
json_get_i64(json_object *obj, const char *key, int64_t def)
{
    json_object *v = NULL;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return def;
    return json_object_get_int64(v);
}

bool
json_get_bool(json_object *obj, const char *key, bool def)
{
    json_object *v = NULL;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_boolean))
        return def;
    return json_object_get_boolean(v);
}

bool
json_set_str(json_object *obj, const char *key, const char *s)
{
    if (s == NULL)
        return json_object_object_add(obj, key, NULL) == 0;
    return json_add(obj, key, json_object_new_string(s));
}

bool
json_set_i64(json_object *obj, const char *key, int64_t n)
{
    return json_add(obj, key, json_object_new_int64(n));
}

bool
json_add(json_object *obj, const char *key, json_object *v)
{
    if (v == NULL)
        return false;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

bool
json_push(json_object *arr, json_object *v)
{
    if (v == NULL)
        return false;
    if (json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}
