#!/usr/bin/env python3
"""pschema_parity: labbox's C schema check (fcgi/parse/pschema.c, through pschema_tool) gives
the verdicts and words of scripts/agent/params.py, the definition of the subset.

Cases: the agent's own schema with good and bad params, hand-written schemas outside the subset,
and a few thousand random schemas and params (seeded, so a failure repeats) built from pools of
keywords and values that hit every rule. For each case the schema's verdict (ok, or the
SchemaError text) must be equal; for a schema in the subset, the params' verdict (ok,
bad_request for a non-object, bad_params) with the first parameter in error and every
"name: why" problem in order ("; " between) must be equal too.

Run: python3 tests/unit/pschema_parity.py build/tests/pschema_tool [CASES]
"""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "..", "..", "scripts", "agent")
sys.path.insert(0, AGENT)
import params  # noqa: E402

VALUES = ["", "ab", "abcd", "äöü", "sd", "se", "x\u0001y", "😀", "\u00e9" * 4, 'q"\\', 0, 1, -1, 2,
          3, 0.5, 1.0, 2.0, 3.5, -0.0, 1e-05, 0.0001, 1e16, 2e15, 123456789.123, 1e300,
          0.1, 1.5e16, True, False, None, [], ["x"], ["x", "y"], ["x", 1], {}, {"a": [1, 2.5]}]
# Integers beyond 64 bits only as params: json-c (and so labbox) reads them as the nearest 64-bit
# value, which a schema's words would show (pschema.h).
PARAM_VALUES = VALUES + [10 ** 20, -10 ** 20]
NUMBERS = [0, 1, -1, 0.5, 2, 1.0, 0.0001, 1e-05, 2e15, 1e16, 123.456, -2.5, 2 ** 63 - 1]
TYPES = ["string", "number", "integer", "boolean", "array"]


def rand_prop(r):
    p = {}
    t = r.random()
    if t < 0.9:
        p["type"] = r.choice(TYPES)
    elif t < 0.95:
        p["type"] = r.choice(["null", ["string"], 3, "object"])
    if p.get("type") == "array" and r.random() < 0.85:
        p["items"] = {"type": "string"} if r.random() < 0.8 else r.choice([{"type": "number"}, [], {}])
    elif r.random() < 0.03:
        p["items"] = {"type": "string"}
    if r.random() < 0.3:
        p["minimum"] = r.choice(NUMBERS + ["1", None])
    if r.random() < 0.3:
        p["maximum"] = r.choice(NUMBERS + ["2"])
    if r.random() < 0.25:
        p["maxLength"] = r.choice([0, 2, 3, 10, -1, 2.0, "3", True])
    if r.random() < 0.3:
        p["enum"] = [r.choice(VALUES) for _ in range(r.randint(0, 4))] if r.random() < 0.5 else \
            r.sample(["sd", "se", "x"], r.randint(1, 3)) if p.get("type") == "string" else \
            [r.choice(NUMBERS) for _ in range(r.randint(1, 3))]
    if r.random() < 0.3:
        p["default"] = r.choice(VALUES)
    for k in ("title", "description", "$comment"):
        if r.random() < 0.15:
            p[k] = "t" if r.random() < 0.8 else 3
    if r.random() < 0.03:
        p[r.choice(["pattern", "format", "minLength", "nullable"])] = 1
    return p


def rand_schema(r):
    s = {"type": "object", "properties": {}}
    for i in range(r.randint(0, 4)):
        s["properties"][r.choice(["alpha", "bins", "group", "x%d" % i, "é", "b c"])] = rand_prop(r)
    roll = r.random()
    if roll < 0.3:
        s["additionalProperties"] = r.random() < 0.5
    elif roll < 0.33:
        s["additionalProperties"] = r.choice(["no", {}, None])
    if r.random() < 0.02:
        del s["type"]
    if r.random() < 0.02:
        s["properties"] = r.choice([[], None])
    if r.random() < 0.02:
        s["required"] = ["a"]
    if r.random() < 0.05:
        s["title"] = r.choice(["t", 1])
    return s


def rand_params(r, schema):
    names = list(schema.get("properties", {}) or {}) if isinstance(schema.get("properties"), dict) else []
    doc = {}
    for _ in range(r.randint(0, 4)):
        name = r.choice(names + ["zzz"]) if names and r.random() < 0.85 else "zzz"
        doc[name] = r.choice(PARAM_VALUES)
    return doc if r.random() < 0.97 else r.choice([[1], "x", 3])


def python_verdict(schema_text, params_text):
    try:
        schema = json.loads(schema_text)
        params.check_schema(schema)
    except params.SchemaError as e:
        return {"schema": str(e)}
    except (TypeError, OverflowError, ValueError, AttributeError):
        return None  # params.py itself fails: nothing to compare
    out = {"schema": "ok"}
    if params_text is None:
        return out
    doc = json.loads(params_text)
    if not isinstance(doc, dict):
        out.update(rc="bad_request", param="", detail="params must be a JSON object")
        return out
    try:
        problems = params.check(schema, doc)
        first = next((n for n, v in doc.items() if params.check(schema, {n: v})), "")
    except (TypeError, OverflowError):
        return None
    out.update(rc="bad_params" if problems else "ok", param=first, detail="; ".join(problems))
    return out


def same(c, p):
    """C cuts texts at PSCHEMA_DETAIL_MAX with "..."; longer Python texts compare by prefix."""
    if c == p:
        return True
    if c.endswith("...") and len(c.encode()) > 700:
        return p.startswith(c[:-3])
    return False


def cases(n):
    r = random.Random(14)
    with open(os.path.join(AGENT, "params.schema.json"), encoding="utf-8") as f:
        agent = f.read()
    good = [{}, {"alpha": 0.01, "bins": 10, "error_bars": "se", "value_columns": ["a", "b"]},
            {"alpha": 0.6}, {"alpha": "0.05"}, {"bins": 2.5}, {"bins": True}, {"error_bars": "iqr"},
            {"value_columns": "a"}, {"group_column": None}, {"colour": "red", "alpha": 0},
            {"title": "x" * 201}, {"title": "ü" * 200}]
    for doc in good:
        yield agent, json.dumps(doc)
    yield agent, "[1, 2]"
    yield agent, '{"bins": 1e400, "alpha": -1e400}'  # infinite: not a number for either
    for text in ['[1]', '{"properties": {}}', '{"type": "object"}', '{"type": "object", "properties": {}, "x": 1, "a": 2}']:
        yield text, None
    for _ in range(n):
        s = rand_schema(r)
        yield json.dumps(s, ensure_ascii=r.random() < 0.5), json.dumps(rand_params(r, s))


def main():
    tool = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    todo = list(cases(n))
    lines = "".join(json.dumps([s, p]) + "\n" for s, p in todo)
    res = subprocess.run([tool], input=lines, capture_output=True, text=True, check=True)
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(got) == len(todo), "pschema_tool answered %d of %d cases" % (len(got), len(todo))
    compared = failed = 0
    schemas_ok = params_bad = 0
    for (s, p), c in zip(todo, got):
        want = python_verdict(s, p)
        if want is None:
            continue
        compared += 1
        schemas_ok += want["schema"] == "ok"
        params_bad += want.get("rc") == "bad_params"
        keys = ["schema", "rc", "param", "detail"]
        if all(same(c.get(k, ""), want.get(k, "")) for k in keys):
            continue
        failed += 1
        if failed <= 10:
            print("MISMATCH\n  schema %s\n  params %s\n  C      %s\n  Python %s" % (s, p, c, want))
    print("pschema parity: %d cases compared (%d schemas in the subset, %d params refused), %d differ"
          % (compared, schemas_ok, params_bad, failed))
    if compared < n // 2 or schemas_ok < n // 10 or params_bad < n // 20:
        print("too few cases of each kind were compared")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
