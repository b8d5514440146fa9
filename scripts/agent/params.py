"""The agent's parameters: params.schema.json, in the JSON Schema subset labbox understands, and
the check of inputs/params.json against it (the same rules labbox applies to a job's params).

The subset. The schema document is a JSON object with
  type                  "object" (required)
  properties            an object: parameter name -> property schema (required)
  additionalProperties  false: a parameter not in properties is an error; true (the default):
                        such parameters are passed on unchecked
  $schema $id $comment title description   strings, no effect on checking
and nothing else. A property schema is a JSON object with
  type         "string", "number", "integer", "boolean" or "array" (required)
  items        for "array" only, and required there: exactly {"type": "string"}
  enum         not for boolean or array: a non-empty list of distinct values of the type; the
               value must equal one of them (numbers compare by value: 1 equals 1.0)
  minimum maximum   number and integer only: inclusive bounds (numbers)
  maxLength    string only: at most this many characters (Unicode code points)
  default      a valid value; never inserted by the check: the agent uses it for a missing key,
               a form shows it
  title description $comment   strings, no effect on checking (a form's label and help)
and nothing else. Values: params is a JSON object; "string" is a JSON string; "number" any JSON
number; "integer" a number without a fractional part (3 and 3.0 are, 3.5 is not); "boolean"
true or false; "array" a list of strings. null is never valid: leave a key out for its default.
Names compare exactly (case matters). A schema outside the subset is an error, not ignored.
"""

import json
import math

ROOT_KEYS = {"type", "properties", "additionalProperties", "$schema", "$id", "$comment", "title",
             "description"}
PROP_KEYS = {"type", "items", "enum", "minimum", "maximum", "maxLength", "default", "title",
             "description", "$comment"}
TYPES = ("string", "number", "integer", "boolean", "array")
INFO_KEYS = ("$schema", "$id", "$comment", "title", "description")


class SchemaError(Exception):
    """params.schema.json is not in the subset."""


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_keywords(obj, allowed, info_keys, what):
    """obj is a JSON object with only allowed keywords, its informational ones strings."""
    if not isinstance(obj, dict):
        raise SchemaError("%s is not a JSON object" % what)
    extra = sorted(set(obj) - allowed)
    if extra:
        raise SchemaError("keyword(s) outside labbox's subset: %s" % ", ".join(extra))
    for k in info_keys:
        if k in obj and not isinstance(obj[k], str):
            raise SchemaError('"%s" must be a string' % k)


def check_schema(schema):
    """Raises SchemaError unless schema is in the subset (module docstring)."""
    check_keywords(schema, ROOT_KEYS, INFO_KEYS, "the schema")
    if schema.get("type") != "object":
        raise SchemaError('"type" must be "object"')
    if not isinstance(schema.get("additionalProperties", True), bool):
        raise SchemaError('"additionalProperties" must be true or false')
    props = schema.get("properties")
    if not isinstance(props, dict):
        raise SchemaError('"properties" must be an object')
    for name, prop in props.items():
        if not name:
            raise SchemaError("a property has an empty name")
        try:
            check_property(prop)
        except SchemaError as e:
            raise SchemaError("property %s: %s" % (name, e))


def check_property(prop):
    check_keywords(prop, PROP_KEYS, ("title", "description", "$comment"), "it")
    t = prop.get("type")
    if t not in TYPES:
        raise SchemaError('"type" must be one of %s' % ", ".join(TYPES))
    if (t == "array") != ("items" in prop) or (t == "array" and prop["items"] != {"type": "string"}):
        raise SchemaError('"items" is required for arrays, only for them, and must be {"type": "string"}')
    for k in ("minimum", "maximum"):
        if k in prop and (t not in ("number", "integer") or not is_number(prop[k])):
            raise SchemaError('"%s" is a number, for number and integer only' % k)
    if "maxLength" in prop and (t != "string" or not isinstance(prop["maxLength"], int)
                                or isinstance(prop["maxLength"], bool) or prop["maxLength"] < 0):
        raise SchemaError('"maxLength" is a non-negative integer, for strings only')
    if "enum" in prop:
        e = prop["enum"]
        if t in ("boolean", "array") or not isinstance(e, list) or not e:
            raise SchemaError('"enum" is a non-empty list, not for boolean or array')
        for v in e:
            why = value_error(dict(prop, enum=[v]), v)
            if why:
                raise SchemaError("enum value %s: %s" % (json.dumps(v), why))
        if len({json.dumps(v, sort_keys=True) if not is_number(v) else float(v) for v in e}) != len(e):
            raise SchemaError('"enum" repeats a value')
    if "default" in prop:
        why = value_error(prop, prop["default"])
        if why:
            raise SchemaError("default: %s" % why)


def value_error(prop, v):
    """Why v is not valid for the property schema prop, or None when it is."""
    t = prop["type"]
    if t == "string" and not isinstance(v, str):
        return "must be a string"
    if t == "boolean" and not isinstance(v, bool):
        return "must be true or false"
    if t == "array" and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        return "must be a list of strings"
    if t in ("number", "integer"):
        if not is_number(v) or not math.isfinite(v):
            return "must be a number" if t == "number" else "must be an integer"
        if t == "integer" and v != math.floor(v):
            return "must be an integer"
        lo, hi = prop.get("minimum"), prop.get("maximum")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return "must be %s" % (
                "from %s to %s" % (num(lo), num(hi)) if lo is not None and hi is not None
                else "at least %s" % num(lo) if lo is not None else "at most %s" % num(hi))
    if t == "string" and "maxLength" in prop and len(v) > prop["maxLength"]:
        return "must be at most %d characters" % prop["maxLength"]
    if "enum" in prop and not any(v == e and isinstance(v, bool) == isinstance(e, bool) for e in prop["enum"]):
        return "must be one of %s" % ", ".join(json.dumps(e) for e in prop["enum"])
    return None


def num(x):
    return ("%d" % x) if is_number(x) and x == math.floor(x) and abs(x) < 1e15 else repr(x)


def check(schema, doc):
    """labbox's verdict on a job's params: doc (a dict) against schema (checked), as the
    "name: why" problems in doc's order; [] when it passes. Unlike apply(), a name the schema
    does not declare is a problem only when additionalProperties is false. labbox refuses the
    job (400 bad_params) with these words (fcgi/parse/pschema.c gives the same)."""
    props = schema["properties"]
    problems = []
    for name, v in doc.items():
        prop = props.get(name)
        if prop is None:
            if schema.get("additionalProperties", True) is False:
                problems.append("%s: not a parameter of this agent (it has: %s)" % (name, ", ".join(props)))
            continue
        why = value_error(prop, v)
        if why:
            problems.append("%s: %s" % (name, why))
    return problems


def apply(schema, doc):
    """-> (params, problems): params holds every property of the schema, from doc where doc's
    value is valid, else its default (None when it has none); problems are "name: why" texts for
    the invalid values and for names the schema does not declare."""
    props = schema["properties"]
    params = {name: prop.get("default") for name, prop in props.items()}
    problems = []
    for name, v in doc.items():
        prop = props.get(name)
        if prop is None:
            problems.append("%s: not a parameter of this agent (it has: %s)" % (name, ", ".join(props)))
            continue
        why = value_error(prop, v)
        if why:
            problems.append("%s: %s; using %s" % (name, why, "the default %s" % json.dumps(prop["default"])
                                                  if "default" in prop else "none"))
            continue
        params[name] = int(v) if prop["type"] == "integer" else v
    return params, problems


def load_schema(path):
    """The schema at path, checked; SchemaError when it is unreadable or outside the subset."""
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        raise SchemaError("cannot read %s: %s" % (path, e))
    check_schema(schema)
    return schema
