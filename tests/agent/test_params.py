"""Tests of the JSON Schema subset for agent parameters (scripts/agent/params.py): which schemas
are in it, and which values each property accepts. labbox's own check follows the same rules.

Run: python3 -m unittest discover -s tests/agent -p "test_*.py"   (standard library only)
"""

import copy
import os
import unittest

from helpers import AGENT_DIR
import params  # noqa: E402  (helpers put scripts/agent on the path)

BASE = {"type": "object", "additionalProperties": False, "properties": {
    "s": {"type": "string", "maxLength": 3, "default": "ab"},
    "e": {"type": "string", "enum": ["sd", "se"]},
    "n": {"type": "number", "minimum": 0.5, "maximum": 2},
    "i": {"type": "integer", "minimum": 1},
    "b": {"type": "boolean", "default": False},
    "a": {"type": "array", "items": {"type": "string"}},
    "k": {"type": "integer", "enum": [1, 2, 3]},
}}


def with_prop(**prop):
    s = copy.deepcopy(BASE)
    s["properties"]["x"] = prop
    return s


class Schemas(unittest.TestCase):
    def test_the_agents_schema_is_in_the_subset(self):
        schema = params.load_schema(os.path.join(AGENT_DIR, "params.schema.json"))
        for name, prop in schema["properties"].items():
            self.assertIn("description", prop, name)
            self.assertIn("title", prop, name)

    def test_valid_schemas(self):
        params.check_schema(BASE)
        params.check_schema({"type": "object", "properties": {}})
        params.check_schema(dict(BASE, title="t", description="d", **{"$schema": "x", "$comment": "c", "$id": "i"}))

    def test_schemas_outside_the_subset(self):
        bad = [
            ([1], "not a JSON object"),
            ({"properties": {}}, '"type" must be "object"'),
            ({"type": "object"}, '"properties" must be an object'),
            ({"type": "object", "properties": {}, "required": ["a"]}, "outside labbox's subset: required"),
            ({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}, "true or false"),
            ({"type": "object", "properties": {"": {"type": "string"}}}, "empty name"),
            (with_prop(type="null"), "property x: \"type\" must be one of"),
            (with_prop(type=["string", "null"]), "must be one of"),
            (with_prop(type="string", pattern="a+"), "outside labbox's subset: pattern"),
            (with_prop(type="array"), '"items" is required'),
            (with_prop(type="array", items={"type": "number"}), '"items" is required'),
            (with_prop(type="string", items={"type": "string"}), '"items" is required'),
            (with_prop(type="string", minimum=1), '"minimum" is a number, for number and integer only'),
            (with_prop(type="number", maximum="2"), '"maximum" is a number'),
            (with_prop(type="number", maxLength=2), '"maxLength" is a non-negative integer, for strings only'),
            (with_prop(type="string", maxLength=-1), '"maxLength" is a non-negative'),
            (with_prop(type="boolean", enum=[True]), '"enum" is a non-empty list, not for boolean'),
            (with_prop(type="string", enum=[]), '"enum" is a non-empty list'),
            (with_prop(type="string", enum=["a", 1]), "enum value 1: must be a string"),
            (with_prop(type="integer", enum=[1, 1.0]), '"enum" repeats a value'),
            (with_prop(type="number", minimum=0, default=-1), "default: must be at least 0"),
            (with_prop(type="string", default=None), "default: must be a string"),
            (with_prop(type="string", title=3), '"title" must be a string'),
        ]
        for schema, why in bad:
            with self.assertRaises(params.SchemaError, msg=why) as cm:
                params.check_schema(schema)
            self.assertIn(why, str(cm.exception))


class Values(unittest.TestCase):
    def check(self, name, value):
        return params.value_error(BASE["properties"][name], value)

    def test_types(self):
        ok = [("s", "abc"), ("s", "äöü"), ("s", ""), ("e", "se"), ("n", 0.5), ("n", 2), ("n", 1.25),
              ("i", 3), ("i", 3.0), ("i", 10 ** 20), ("b", True), ("b", False), ("a", []), ("a", ["x", "y"]),
              ("k", 2), ("k", 2.0)]
        for name, v in ok:
            self.assertIsNone(self.check(name, v), (name, v))
        bad = [("s", "abcd", "must be at most 3 characters"), ("s", 1, "must be a string"),
               ("s", None, "must be a string"), ("e", "iqr", 'must be one of "sd", "se"'),
               ("n", 0.4, "must be from 0.5 to 2"), ("n", "1", "must be a number"), ("n", True, "must be a number"),
               ("n", None, "must be a number"), ("i", 3.5, "must be an integer"), ("i", 0, "must be at least 1"),
               ("i", False, "must be an integer"), ("b", 0, "must be true or false"), ("b", "true", "must be true or false"),
               ("a", "x", "must be a list of strings"), ("a", ["x", 1], "must be a list of strings"),
               ("k", 4, "must be one of 1, 2, 3"), ("k", True, "must be an integer")]
        for name, v, why in bad:
            self.assertEqual(self.check(name, v), why, (name, v))

    def test_apply(self):
        got, problems = params.apply(BASE, {"s": "x", "i": 4.0, "n": 9, "zzz": 1})
        self.assertEqual(got, {"s": "x", "e": None, "n": None, "i": 4, "b": False, "a": None, "k": None})
        self.assertIsInstance(got["i"], int)
        self.assertEqual(problems, ["n: must be from 0.5 to 2; using none",
                                    "zzz: not a parameter of this agent (it has: s, e, n, i, b, a, k)"])


    def test_check(self):
        """labbox's verdict: names outside the schema are problems only when it is closed."""
        self.assertEqual(params.check(BASE, {"s": "x", "i": 4.0}), [])
        self.assertEqual(params.check(BASE, {"n": 9, "zzz": 1, "s": 1}),
                         ["n: must be from 0.5 to 2",
                          "zzz: not a parameter of this agent (it has: s, e, n, i, b, a, k)",
                          "s: must be a string"])
        opened = dict(BASE, additionalProperties=True)
        self.assertEqual(params.check(opened, {"zzz": 1, "b": "no"}), ["b: must be true or false"])


if __name__ == "__main__":
    unittest.main()
