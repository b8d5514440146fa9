"""Tests of the default agent (scripts/agent/agent.py): statistics, parsing, escaping, exit codes,
parameters, group hints, and that every text of every chart fits its picture.

Run: python3 -m unittest discover -s tests/agent -p "test_*.py"   (standard library only)
"""

import json
import math
import os
import random
import re
import statistics
import unittest
import unicodedata
import xml.dom.minidom
import xml.etree.ElementTree as ET
from collections import Counter

from helpers import EXPERIMENT, SLEEP_1, SLEEP_2, SLEEP_DF, SLEEP_P, SLEEP_T, Run, col, sleep_csv
import agent  # noqa: E402  (helpers put scripts/agent on the path)
import params  # noqa: E402
import stats  # noqa: E402

# Two-sided 5 %, 1 % and 10 % critical values of Student's t (R: qt(1 - alpha / 2, df)).
CRITICAL = [
    (1, 12.706204736174707, 0.05), (2, 4.302652729911275, 0.05), (5, 4.032142983557536, 0.01),
    (10, 2.228138851986274, 0.05), (20, 1.7247182429207868, 0.10), (30, 2.0422724563012373, 0.05),
    (120, 1.9799304050824413, 0.05),
]


def t_cdf_closed(t, df):
    """Exact Student t CDF for df = 1..4 (closed forms, independent of the agent's beta code)."""
    if df == 1:
        return 0.5 + math.atan(t) / math.pi
    if df == 2:
        return 0.5 + t / (2.0 * math.sqrt(2.0 + t * t))
    if df == 3:
        u = t / math.sqrt(3.0)
        return 0.5 + (u / (1.0 + u * u) + math.atan(u)) / math.pi
    if df == 4:
        return 0.5 + 0.375 * (t / math.sqrt(1.0 + t * t / 4.0)) * (1.0 - t * t / (12.0 * (1.0 + t * t / 4.0)))
    raise ValueError(df)


def t_two_sided_simpson(t, df, steps=20000):
    """Two-sided p by Simpson integration of the t density over [0, |t|]: an independent check."""
    c = math.exp(math.lgamma((df + 1) / 2.0) - math.lgamma(df / 2.0)) / math.sqrt(df * math.pi)
    f = lambda s: c * (1.0 + s * s / df) ** (-(df + 1) / 2.0)
    a, b = 0.0, abs(t)
    h = (b - a) / steps
    acc = f(a) + f(b)
    for i in range(1, steps):
        acc += (4 if i % 2 else 2) * f(a + i * h)
    return 1.0 - 2.0 * acc * h / 3.0


def welch_by_hand(a, b):
    ma, mb = statistics.mean(a), statistics.mean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    sp = math.sqrt(((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b))
                   / (len(a) + len(b) - 2))
    return t, df, (ma - mb) / sp


class Distribution(unittest.TestCase):
    def test_closed_forms(self):
        for df in (1, 2, 3, 4):
            for t in (-30.0, -3.1, -1.0, -0.2, 0.0, 0.05, 0.7, 1.96, 4.5, 12.0, 250.0):
                self.assertAlmostEqual(stats.t_cdf(t, df), t_cdf_closed(t, df), delta=1e-12,
                                       msg="df=%d t=%g" % (df, t))

    def test_critical_values(self):
        for df, t, alpha in CRITICAL:
            self.assertAlmostEqual(stats.t_two_sided_p(t, df), alpha, delta=1e-9, msg="df=%d" % df)
            self.assertAlmostEqual(stats.t_two_sided_p(-t, df), alpha, delta=1e-9)

    def test_fractional_df_against_integration(self):
        for df in (0.7, 2.5, 7.3, 17.776, 41.9, 300.5):
            for t in (0.01, 0.5, 1.5, 2.8, 6.0):
                self.assertAlmostEqual(stats.t_two_sided_p(t, df), t_two_sided_simpson(t, df),
                                       delta=1e-9, msg="df=%g t=%g" % (df, t))

    def test_large_df_tends_to_normal(self):
        for z in (0.5, 1.96, 3.0):
            self.assertAlmostEqual(stats.t_two_sided_p(z, 1e7), math.erfc(z / math.sqrt(2)), delta=1e-6)

    def test_edges(self):
        self.assertEqual(stats.t_two_sided_p(0.0, 5), 1.0)
        self.assertEqual(stats.t_two_sided_p(float("inf"), 5), 0.0)
        self.assertTrue(math.isnan(stats.t_two_sided_p(1.0, 0)))
        tiny = stats.t_two_sided_p(60.0, 30)
        self.assertTrue(0.0 < tiny < 1e-30, tiny)
        self.assertAlmostEqual(stats.betainc(2.0, 3.0, 0.4), 0.5248, delta=1e-12)   # 1 - sum binomial

    def test_welch_sleep(self):
        r = stats.welch(SLEEP_1, SLEEP_2)
        self.assertAlmostEqual(r["t"], SLEEP_T, delta=5e-5)
        self.assertAlmostEqual(r["df"], SLEEP_DF, delta=5e-4)
        self.assertAlmostEqual(r["p"], SLEEP_P, delta=5e-6)
        self.assertAlmostEqual(r["mean_diff"], 0.75 - 2.33, delta=1e-12)

    def test_welch_unequal_n(self):
        rng = random.Random(7)
        a = [rng.gauss(10, 1) for _ in range(8)]
        b = [rng.gauss(11, 3) for _ in range(23)]
        t, df, d = welch_by_hand(a, b)
        r = stats.welch(a, b)
        self.assertAlmostEqual(r["t"], t, delta=1e-10)
        self.assertAlmostEqual(r["df"], df, delta=1e-9)
        self.assertAlmostEqual(r["cohen_d"], d, delta=1e-10)
        self.assertAlmostEqual(r["p"], t_two_sided_simpson(t, df), delta=1e-9)

    def test_holm(self):
        adj = stats.holm([0.01, 0.04, 0.03, None])
        self.assertEqual(adj[3], None)
        self.assertAlmostEqual(adj[0], 0.03)
        self.assertAlmostEqual(adj[2], 0.06)
        self.assertAlmostEqual(adj[1], 0.06)   # monotone: max(0.04 * 1, 0.06)

    def test_quartiles_match_statistics_inclusive(self):
        xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
        d = stats.describe(xs)
        q = statistics.quantiles(xs, n=4, method="inclusive")
        self.assertEqual([d["q1"], d["median"], d["q3"]], q)
        self.assertAlmostEqual(d["std"], statistics.stdev(xs), delta=1e-12)


class AgentRuns(unittest.TestCase):
    def assertOk(self, run):
        self.assertEqual(run.rc, 0, "stdout:\n%s\nstderr:\n%s" % (run.stdout, run.stderr))

    def test_two_groups_sleep(self):
        run = Run(self, {"sleep.csv": sleep_csv()})
        self.assertOk(run)
        for line in ("labbox agent on backend local, job testjob123", "reading sleep.csv (",
                     "sleep.csv: 20 rows, 3 columns", "sleep.csv: Welch t-test extra by group",
                     "wrote outputs/summary.json", "wrote outputs/report.html"):
            self.assertIn(line, run.stdout)
        self.assertRegex(run.stdout, r"t=-1\.8608, df=17\.78, p=0\.0794")
        f = run.file("sleep.csv")
        self.assertEqual(f["status"], "analysed")
        self.assertEqual(f["rows"], 20)
        self.assertEqual(f["group_column"], "group")
        self.assertEqual([g["label"] for g in f["groups"]], ["1", "2"])
        comps = {c["column"]: c for c in f["comparisons"]}
        self.assertEqual(set(comps), {"extra"})          # "id" is not compared
        g1, g2 = comps["extra"]["groups"]
        self.assertAlmostEqual(g1["mean"], 0.75, delta=1e-12)
        self.assertAlmostEqual(g2["mean"], 2.33, delta=1e-12)
        self.assertAlmostEqual(g1["sd"], statistics.stdev(SLEEP_1), delta=1e-12)
        self.assertAlmostEqual(g2["se"], statistics.stdev(SLEEP_2) / math.sqrt(10), delta=1e-12)
        (t,) = comps["extra"]["tests"]
        self.assertEqual((t["a"], t["b"]), ("1", "2"))
        self.assertAlmostEqual(t["t"], SLEEP_T, delta=5e-5)
        self.assertAlmostEqual(t["df"], SLEEP_DF, delta=5e-4)
        self.assertAlmostEqual(t["p"], SLEEP_P, delta=5e-6)
        self.assertAlmostEqual(t["cohen_d"], welch_by_hand(SLEEP_1, SLEEP_2)[2], delta=1e-12)
        self.assertNotIn("p_holm", t)
        extra = col(f, "extra")
        allv = SLEEP_1 + SLEEP_2
        self.assertEqual(extra["type"], "numeric")
        self.assertEqual((extra["count"], extra["missing"]), (20, 0))
        self.assertAlmostEqual(extra["mean"], statistics.mean(allv), delta=1e-12)
        self.assertAlmostEqual(extra["std"], statistics.stdev(allv), delta=1e-12)
        expect = [min(allv)] + statistics.quantiles(allv, n=4, method="inclusive") + [max(allv)]
        for key, want in zip(("min", "q1", "median", "q3", "max"), expect):
            self.assertAlmostEqual(extra[key], want, delta=1e-12, msg=key)
        self.assertEqual(sum(extra["histogram"]["counts"]), 20)
        charts = set(os.listdir(os.path.join(run.out, "charts")))
        self.assertIn("sleep-extra.svg", charts)
        self.assertIn("sleep-extra-by-group.svg", charts)
        self.assertIn("sleep-id.svg", charts)
        for c in f["charts"]:
            self.assertTrue(os.path.isfile(os.path.join(run.out, c)), c)
        html = run.report()
        self.assertIn("<svg", html)
        self.assertNotRegex(html, r"(?i)(src|href)=\"(https?:)?//")   # nothing external

    def test_tsv_json_and_semicolon(self):
        tsv = "condition\tweight\tlen\ncontrol\t1.5\t10\ncontrol\t2.5\t11\ntreated\t3.5\tNA\ntreated\t4.0\t13\ntreated\t5.0\t\n"
        records = json.dumps([{"arm": "A", "y": 1, "z": "x"}, {"arm": "A", "y": 2, "z": None},
                              {"arm": "B", "y": 5.5, "z": "x"}, {"arm": "B", "y": 7, "z": "w"},
                              {"arm": "B", "y": None}])
        columns = json.dumps({"columns": {"a": [1, 2, 3, 4], "b": ["x", "y", "x", "null"]}})
        split = json.dumps({"columns": ["p", "q"], "index": [0, 1, 2], "data": [[1, 2], [3, 4], [5, "NaN"]]})
        semi = "\ufeffcohort;score;name\nA;1,5;a\nA;2,5;b\nB;3,0;c\nB;5,0;d\nB;4,5;e\n"
        run = Run(self, {"t.tsv": tsv, "r.json": records, "c.json": columns, "s.json": split,
                         "semi.csv": semi})
        self.assertOk(run)
        t = run.file("t.tsv")
        self.assertEqual((t["format"], t["delimiter"], t["rows"]), ("tsv", "\t", 5))
        self.assertEqual(col(t, "len")["missing"], 2)
        self.assertEqual(col(t, "len")["count"], 3)
        self.assertEqual(t["group_column"], "condition")
        (w,) = [c for c in t["comparisons"] if c["column"] == "weight"]
        self.assertAlmostEqual(w["tests"][0]["t"], welch_by_hand([1.5, 2.5], [3.5, 4.0, 5.0])[0], delta=1e-12)

        r = run.file("r.json")
        self.assertEqual(r["format"], "json")
        self.assertEqual(r["group_column"], "arm")
        self.assertEqual(col(r, "y")["count"], 4)
        self.assertEqual(col(r, "y")["missing"], 1)
        self.assertEqual(col(r, "z")["type"], "categorical")
        self.assertEqual(col(r, "z")["missing"], 2)        # null and absent
        self.assertEqual(col(r, "z")["top"][0], {"value": "x", "count": 2})
        (y,) = r["comparisons"]
        self.assertAlmostEqual(y["tests"][0]["t"], welch_by_hand([1, 2], [5.5, 7])[0], delta=1e-12)

        c = run.file("c.json")
        self.assertEqual(col(c, "a")["mean"], 2.5)
        self.assertEqual(col(c, "b")["missing"], 1)
        s = run.file("s.json")
        self.assertEqual(col(s, "q")["count"], 2)
        self.assertEqual(col(s, "q")["missing"], 1)

        m = run.file("semi.csv")
        self.assertEqual((m["delimiter"], m["encoding"]), (";", "utf-8 (BOM)"))
        self.assertEqual([x["name"] for x in m["columns"]], ["cohort", "score", "name"])
        self.assertEqual(col(m, "score")["type"], "numeric")
        self.assertAlmostEqual(col(m, "score")["mean"], 3.3, delta=1e-12)
        self.assertEqual(m["group_column"], "cohort")

    def test_missing_values_and_categorical(self):
        csv_text = "sample,value,kind\n" + "".join(
            "s%d,%s,%s\n" % (i, v, k) for i, (v, k) in enumerate(
                [("1", "a"), ("NA", "b"), ("NaN", "a"), ("null", "a"), ("", "c"), ("4", "N/A"),
                 ("2.5e1", "a"), ("-.5", "b")]))
        run = Run(self, {"m.csv": csv_text})
        self.assertOk(run)
        f = run.file("m.csv")
        v = col(f, "value")
        self.assertEqual((v["type"], v["count"], v["missing"]), ("numeric", 4, 4))
        self.assertAlmostEqual(v["mean"], (1 + 4 + 25 - 0.5) / 4, delta=1e-12)
        k = col(f, "kind")
        self.assertEqual((k["type"], k["count"], k["missing"], k["distinct"]), ("categorical", 7, 1, 3))
        self.assertEqual(k["top"][0], {"value": "a", "count": 4})
        self.assertIsNone(f["group_column"])      # "kind" is not a group-like name

    def test_hostile_names_are_escaped(self):
        evil = '<script>alert(1)</script>'
        label = '<img src=x onerror=alert(2)>&"\''
        rows = ["group,%s,\"a\x01b\"" % evil]
        for i in range(6):
            rows.append('"%s",%d,%d' % ((label.replace('"', '""') if i % 2 else "ok"), i, i * 2))
        run = Run(self, {"<b>evil<b>.csv": "\n".join(rows) + "\n"},
                  params={"title": "</title><script>alert(3)</script>"})
        self.assertOk(run)
        html = run.report()
        self.assertNotIn("<script", html.lower())
        self.assertNotIn("<img", html.lower())
        self.assertNotIn("<b>evil", html)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", html)
        self.assertIn("&lt;img src=x onerror=alert(2)&gt;&amp;&quot;&#x27;", html)
        self.assertNotIn("\x01", html)
        chart_dir = os.path.join(run.out, "charts")
        names = os.listdir(chart_dir)
        self.assertTrue(names)
        texts = []
        for n in names:
            self.assertRegex(n, r"^[A-Za-z0-9][A-Za-z0-9._-]*\.svg$")
            with open(os.path.join(chart_dir, n), encoding="utf-8") as fh:
                svg = fh.read()
            texts.append(svg)
            self.assertNotIn("<script", svg.lower())
            self.assertNotIn("<img", svg.lower())
            xml.dom.minidom.parseString(svg.encode("utf-8"))   # well-formed XML
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", "".join(texts))
        self.assertIn("&lt;img src=x onerror=alert(2)&gt;", "".join(texts))
        # the summary keeps the real names, and the log lines stay one line each
        f = run.file("<b>evil<b>.csv")
        self.assertEqual(f["columns"][1]["name"], evil)
        self.assertTrue(all("\x01" not in line for line in run.stdout.splitlines()))

    def test_garbage_only_fails_with_exit_2(self):
        junk = random.Random(3).randbytes(4096)
        run = Run(self, {"data.csv": junk})
        self.assertEqual(run.rc, 2, run.stdout + run.stderr)
        self.assertIn("no input could be read", run.stderr)
        self.assertIn("data.csv", run.stderr)
        self.assertIn("binary", run.stderr)
        self.assertEqual(run.file("data.csv")["status"], "error")
        self.assertIn("could not be read", run.report())

    def test_ragged_and_empty_fail(self):
        ragged = "a,b,c\n1,2,3\n4,5,6,7,8\n9,10,11\n"
        run = Run(self, {"ragged.csv": ragged, "empty.csv": "", "header.csv": "x,y\n",
                         "bad.json": "{not json"})
        self.assertEqual(run.rc, 2, run.stdout + run.stderr)
        self.assertIn("line 3 has 5 fields, but the header has 3", run.stderr)
        self.assertIn("empty.csv: empty file", run.stderr)
        self.assertIn("header.csv: no data rows", run.stderr)
        self.assertIn("bad.json: invalid JSON", run.stderr)

    def test_mixed_good_and_bad_exits_0(self):
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
        run = Run(self, {"good.csv": sleep_csv(), "bad.csv": b"\x00\x01\x02" * 100,
                         "figure.png": png, "notes.txt": "just some notes\nnothing tabular here\n"})
        self.assertOk(run)
        self.assertIn("error: bad.csv: binary content", run.stderr)
        self.assertEqual(run.file("good.csv")["status"], "analysed")
        self.assertEqual(run.file("bad.csv")["status"], "error")
        self.assertEqual(run.file("figure.png")["status"], "not_analysed")
        self.assertEqual(run.file("notes.txt")["status"], "not_analysed")
        html = run.report()
        self.assertIn("not analysed: PNG image", html)
        self.assertIn("could not be read: binary content", html)

    def test_only_images_fail(self):
        run = Run(self, {"scan.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"})
        self.assertEqual(run.rc, 2)
        self.assertIn("none of the 1 input(s) is a data table", run.stderr)
        self.assertIn("warning: scan.pdf was not analysed: PDF document", run.stderr)

    def test_params_group_column_and_three_groups(self):
        rng = random.Random(11)
        lines = ["condition,batch,signal,Sample ID"]
        data = {"b1": [], "b2": [], "b3": []}
        for i in range(30):
            b = "b%d" % (i % 3 + 1)
            v = round(rng.gauss({"b1": 5, "b2": 6, "b3": 9}[b], 1.0), 3)
            data[b].append(v)
            lines.append("%s,%s,%s,%d" % ("x" if i < 15 else "y", b, v, i))
        run = Run(self, {"three.csv": "\n".join(lines) + "\n"},
                  params={"group_column": "batch", "error_bars": "se", "bins": 7,
                          "title": "My run", "unknown_key": 1})
        self.assertOk(run)
        self.assertIn("params.json: unknown_key: not a parameter of this agent", run.stdout)
        self.assertEqual(run.summary["params"], {"group_column": "batch", "title": "My run",
                                                 "error_bars": "se", "bins": 7, "alpha": 0.05})
        f = run.file("three.csv")
        self.assertEqual(f["group_column"], "batch")
        self.assertEqual([c["column"] for c in f["comparisons"]], ["signal"])
        tests = f["comparisons"][0]["tests"]
        self.assertEqual([(t["a"], t["b"]) for t in tests], [("b1", "b2"), ("b1", "b3"), ("b2", "b3")])
        raw = [t["p"] for t in tests]
        for t, (a, b) in zip(tests, [("b1", "b2"), ("b1", "b3"), ("b2", "b3")]):
            tt, df, d = welch_by_hand(data[a], data[b])
            self.assertAlmostEqual(t["t"], tt, delta=1e-10)
            self.assertAlmostEqual(t["df"], df, delta=1e-9)
            self.assertAlmostEqual(t["p"], t_two_sided_simpson(tt, df), delta=1e-9)
        order = sorted(range(3), key=lambda i: raw[i])
        self.assertAlmostEqual(tests[order[0]]["p_holm"], min(1, 3 * raw[order[0]]), delta=1e-15)
        self.assertEqual(len(col(f, "signal")["histogram"]["counts"]), 7)
        self.assertIn("<title>My run</title>", run.report())
        with open(os.path.join(run.out, "charts", "three-signal-by-batch.svg")) as fh:
            self.assertIn("mean ± SE", fh.read())

    def test_params_group_column_missing_falls_back(self):
        run = Run(self, {"sleep.csv": sleep_csv()}, params={"group_column": "nope"})
        self.assertOk(run)
        f = run.file("sleep.csv")
        self.assertEqual(f["group_column"], "group")
        self.assertTrue(any("nope" in w for w in f["warnings"]))

    def test_bad_params_json_is_ignored(self):
        run = Run(self, {"sleep.csv": sleep_csv()}, params="[1, 2")
        self.assertOk(run)
        self.assertTrue(any("params.json ignored" in w for w in run.summary["warnings"]))

    def test_output_dir_created(self):
        run = Run(self, {"sleep.csv": sleep_csv()}, out_sub="deep/new/out")
        self.assertOk(run)
        self.assertTrue(os.path.isfile(os.path.join(run.out, "report.html")))

    def test_experiment_sample(self):
        with open(EXPERIMENT, "rb") as fh:
            run = Run(self, {"experiment.csv": fh.read()})
        self.assertOk(run)
        f = run.file("experiment.csv")
        self.assertEqual(f["rows"], 40)
        self.assertEqual(f["group_column"], "condition")
        self.assertEqual([g["label"] for g in f["groups"]], ["control", "caffeine"])

    def test_five_mib(self):
        rng = random.Random(5)
        parts = ["subject,treatment,response,dose,site\n"]
        size, i = len(parts[0]), 0
        while size < 5 * 1024 * 1024:
            i += 1
            line = "%d,%s,%.5f,%d,%s\n" % (i, "drug" if i % 2 else "placebo", rng.gauss(0, 1),
                                            rng.randint(0, 50), rng.choice(["north", "south", "NA"]))
            parts.append(line)
            size += len(line)
        run = Run(self, {"big.csv": "".join(parts)})
        self.assertOk(run)
        f = run.file("big.csv")
        self.assertEqual(f["rows"], i)
        self.assertEqual(f["group_column"], "treatment")
        self.assertGreater(os.path.getsize(os.path.join(run.dir, "inputs", "big.csv")), 5 * 1024 * 1024)



class Parameters(unittest.TestCase):
    """Every parameter params.schema.json declares has its effect; nothing else is a parameter."""

    def test_schema_declares_exactly_what_the_agent_uses(self):
        schema = params.load_schema(agent.SCHEMA_PATH)
        self.assertEqual(sorted(schema["properties"]), sorted(agent.PARAMS_USED))
        self.assertIs(schema["additionalProperties"], False)

    def test_alpha_marks_significance(self):
        for alpha, want in ((None, False), (0.1, True), (0.07, False)):
            run = Run(self, {"sleep.csv": sleep_csv()}, params={} if alpha is None else {"alpha": alpha})
            self.assertEqual(run.rc, 0, run.stderr)
            (t,) = run.file("sleep.csv")["comparisons"][0]["tests"]
            self.assertEqual(t["significant"], want, alpha)
            self.assertEqual(run.summary["params"]["alpha"], alpha or 0.05)
            self.assertIn("p &lt; %s" % (alpha or 0.05), run.report())
            self.assertEqual(", significant" in run.stdout, want)

    def test_value_columns_choose_what_is_charted_and_compared(self):
        lines = ["subject_id,group,a,b,c"]
        for i in range(12):
            lines.append("%d,%s,%d,%d,%d" % (i, "xy"[i % 2], i, i * i, 100 - i))
        run = Run(self, {"v.csv": "\n".join(lines) + "\n"},
                  params={"value_columns": ["subject_id", "B", "nope", "group"]})
        self.assertEqual(run.rc, 0, run.stderr)
        f = run.file("v.csv")
        self.assertEqual([c["column"] for c in f["comparisons"]], ["subject_id", "b"])
        self.assertEqual(sorted(os.listdir(os.path.join(run.out, "charts"))),
                         ["v-b-by-group.svg", "v-b.svg", "v-subject_id-by-group.svg", "v-subject_id.svg"])
        self.assertTrue(any("'nope' is not a column" in w for w in f["warnings"]), f["warnings"])
        self.assertTrue(any("'group' is not numeric" in w for w in f["warnings"]), f["warnings"])
        run = Run(self, {"v.csv": "\n".join(lines) + "\n"})          # default: all but the id
        self.assertEqual([c["column"] for c in run.file("v.csv")["comparisons"]], ["a", "b", "c"])

    def test_bad_values_fall_back_to_defaults_and_are_named(self):
        run = Run(self, {"sleep.csv": sleep_csv()},
                  params={"alpha": 2, "bins": 2.5, "error_bars": "iqr", "title": 7, "value_columns": "extra",
                          "column": "extra"})
        self.assertEqual(run.rc, 0, run.stderr)
        for text in ("alpha: must be from 0.0001 to 0.5; using the default 0.05",
                     "bins: must be an integer; using none", 'error_bars: must be one of "sd", "se"',
                     "title: must be a string", "value_columns: must be a list of strings",
                     "column: not a parameter of this agent"):
            self.assertIn("params.json: " + text, run.stdout)
        self.assertEqual(run.summary["params"], {"alpha": 0.05, "error_bars": "sd", "title": "labbox report"})
        self.assertIn("mean ± SD", run.report())


class GroupHints(unittest.TestCase):
    def test_german_gruppe_is_a_group_column(self):
        lines = ["Proband,Gruppe,Reaktionszeit"]
        for i in range(10):
            lines.append("P%d,%s,%d" % (i, ("Kontrolle", "Koffein")[i % 2], 400 + 7 * i + 30 * (i % 2)))
        run = Run(self, {"versuch.csv": "\n".join(lines) + "\n"})
        self.assertEqual(run.rc, 0, run.stderr)
        f = run.file("versuch.csv")
        self.assertEqual(f["group_column"], "Gruppe")
        self.assertEqual([c["column"] for c in f["comparisons"]], ["Reaktionszeit"])

    def test_other_languages_and_spellings(self):
        for name in ("Condición", "groupe", "Behandlungsgruppe", "treatment_arm", "Cohorts", "GRUPPO"):
            self.assertTrue(agent.analysis.group_like(name), name)
        for name in ("value", "Messwert", "sample id", "grouper_weight"):
            self.assertFalse(agent.analysis.group_like(name), name)

    def test_no_group_column_gives_a_hint(self):
        lines = ["Versuchsreihe,Dosis,Wert"]
        for i in range(12):
            lines.append("%s,%d,%.1f" % (("Serie A", "Serie B", "Serie C")[i % 3], i % 2, 10 + i * 0.5))
        run = Run(self, {"daten.csv": "\n".join(lines) + "\n"})
        self.assertEqual(run.rc, 0, run.stderr)
        f = run.file("daten.csv")
        self.assertIsNone(f["group_column"])
        self.assertEqual(f["group_suggestions"], ["Versuchsreihe", "Dosis"])
        for text in ("no column is named like a group", "Versuchsreihe (3 values)", "Dosis (2 values)",
                     'set the parameter group_column, e.g. {"group_column": "Versuchsreihe"}'):
            self.assertIn(text, f["group_hint"])
            self.assertIn(text, run.stdout)
        self.assertIn("daten.csv: hint: no group comparison", run.stdout)
        self.assertIn("group_column, e.g. {&quot;group_column&quot;: &quot;Versuchsreihe&quot;}", run.report())
        run = Run(self, {"daten.csv": "\n".join(lines) + "\n"}, params={"group_column": "versuchsreihe"})
        f = run.file("daten.csv")
        self.assertEqual(f["group_column"], "Versuchsreihe")
        self.assertNotIn("group_hint", f)

    def test_hint_names_the_candidates_that_failed(self):
        lines = ["group,value"] + ["g%d,%d" % (i, i) for i in range(30)]
        run = Run(self, {"g.csv": "\n".join(lines) + "\n"})
        f = run.file("g.csv")
        self.assertIn("'group' has 30 distinct value(s); a group column needs 2 to 20", f["group_hint"])


class Outcomes(unittest.TestCase):
    def test_summary_names_the_report(self):
        run = Run(self, {"sleep.csv": sleep_csv()})
        self.assertEqual(run.summary["report"], "report.html")
        self.assertTrue(os.path.isfile(os.path.join(run.out, run.summary["report"])))

    def test_files_not_analysed_are_named_with_the_reason(self):
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        run = Run(self, {"good.csv": sleep_csv(), "scan.pdf": b"%PDF-1.4\n", "photo.png": png,
                         "old.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100)})
        self.assertEqual(run.rc, 0, run.stderr)
        for name, why in (("scan.pdf", "PDF document"), ("photo.png", "PNG image"),
                          ("old.xls", "Excel 97-2003 workbook (save it as .xlsx or CSV to analyse it)")):
            self.assertIn("warning: %s was not analysed: %s" % (name, why), run.stderr)
            self.assertEqual(run.file(name)["status"], "not_analysed")
            self.assertIn("<li>%s: not analysed: %s</li>" % (name, why), run.report())
        self.assertIn("3 of the inputs were not analysed", run.report())
        self.assertIn("done: 1 table(s) analysed, 3 input(s) not analysed, 0 could not be read", run.stdout)


# ----------------------------------------------------------------------------- SVG text extents

SVG_NS = "{http://www.w3.org/2000/svg}"
# Advance widths in em, rounded up from DejaVu Sans and DejaVu Sans Bold (the widest common
# default sans-serif faces): A-Z, m, w and the wide symbols up to 1.0 (bold 1.1), every other
# ASCII character up to 0.64 (bold 0.72). East Asian wide characters and emoji: 1.3.
WIDE_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZmw@%&#+<=>^~")
ASCENT, DESCENT = 1.0, 0.3     # of the font size, above and below the baseline


def char_em(ch, bold):
    if ord(ch) < 128 and ch not in WIDE_ASCII:
        return 0.75 if bold else 0.7
    if unicodedata.east_asian_width(ch) in "WF":
        return 1.3
    return 1.1 if bold else 1.0


def text_width(s, size, bold):
    return size * sum(char_em(ch, bold) for ch in s)


def parse_transform(s):
    """The 2x3 matrix (a, b, c, d, e, f) of an SVG transform list of translate/rotate/scale/matrix."""
    m = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

    def mul(p, q):
        a, b, c, d, e, f = p
        A, B, C, D, E, F = q
        return (a * A + c * B, b * A + d * B, a * C + c * D, b * C + d * D, a * E + c * F + e, b * E + d * F + f)
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", s or ""):
        v = [float(x) for x in re.split(r"[\s,]+", args.strip()) if x]
        if name == "translate":
            q = (1, 0, 0, 1, v[0], v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            q = (v[0], 0, 0, v[1] if len(v) > 1 else v[0], 0, 0)
        elif name == "rotate":
            r = math.radians(v[0])
            q = (math.cos(r), math.sin(r), -math.sin(r), math.cos(r), 0, 0)
            if len(v) == 3:
                q = mul(mul((1, 0, 0, 1, v[1], v[2]), q), (1, 0, 0, 1, -v[1], -v[2]))
        elif name == "matrix":
            q = tuple(v)
        else:
            raise AssertionError("transform %s is not understood by this test" % name)
        m = mul(m, q)
    return m


def svg_text_boxes(svg_text):
    """[(text, (x0, y0, x1, y1)), ...] for every <text>, and the viewBox (x0, y0, x1, y1)."""
    root = ET.fromstring(svg_text)
    vb = [float(v) for v in root.get("viewBox").split()]
    view = (vb[0], vb[1], vb[0] + vb[2], vb[1] + vb[3])
    out = []

    def walk(el, inherited, matrix):
        attrs = dict(inherited)
        for k in ("font-size", "font-weight", "text-anchor"):
            if el.get(k) is not None:
                attrs[k] = el.get(k)
        style = el.get("style") or ""
        if re.search(r"font|anchor", style):
            raise AssertionError("style attributes are not understood by this test: %r" % style)
        if el.get("transform"):
            a, b, c, d, e, f = matrix
            A, B, C, D, E, F = parse_transform(el.get("transform"))
            matrix = (a * A + c * B, b * A + d * B, a * C + c * D, b * C + d * D, a * E + c * F + e, b * E + d * F + f)
        if el.tag == SVG_NS + "text":
            for sub in el.iter():
                if sub is not el and any(sub.get(k) for k in ("x", "y", "dx", "dy", "font-size", "transform")):
                    raise AssertionError("positioned <tspan>s are not understood by this test")
            s = "".join(el.itertext())
            size = float(attrs.get("font-size", "16"))
            bold = attrs.get("font-weight") in ("bold", "bolder", "600", "700", "800", "900")
            w = text_width(s, size, bold)
            x, y = float(el.get("x", "0")), float(el.get("y", "0"))
            x0 = x - w * {"start": 0.0, "middle": 0.5, "end": 1.0}[attrs.get("text-anchor", "start")]
            a, b, c, d, e, f = matrix
            pts = [(a * px + c * py + e, b * px + d * py + f)
                   for px in (x0, x0 + w) for py in (y - ASCENT * size, y + DESCENT * size)]
            out.append((s, (min(p[0] for p in pts), min(p[1] for p in pts),
                            max(p[0] for p in pts), max(p[1] for p in pts))))
            return
        for child in el:
            walk(child, attrs, matrix)
    walk(root, {}, (1.0, 0.0, 0.0, 1.0, 0.0, 0.0))
    return out, view


class SvgTextMeasure(unittest.TestCase):
    """The test's own measure, checked on hand-made SVGs (so that a broken measure cannot pass)."""

    def test_anchor_and_rotation(self):
        svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50" font-size="10">'
               '<text x="50" y="20" text-anchor="middle">abcd</text>'
               '<text x="90" y="40" text-anchor="end" font-weight="bold">MM</text>'
               '<text transform="translate(10 25) rotate(-90)" text-anchor="middle">ab</text></svg>')
        boxes, view = svg_text_boxes(svg)
        self.assertEqual(view, (0, 0, 100, 50))
        (_, b1), (_, b2), (_, b3) = boxes
        self.assertAlmostEqual(b1[0], 36.0)
        self.assertAlmostEqual(b1[2], 64.0)
        self.assertAlmostEqual(b2[0], 68.0)
        self.assertAlmostEqual(b2[2], 90.0)
        self.assertAlmostEqual(b3[0], 0.0)      # rotated: the ascent points left
        self.assertAlmostEqual(b3[2], 13.0)
        self.assertAlmostEqual(b3[1], 18.0)
        self.assertAlmostEqual(b3[3], 32.0)
        self.assertEqual(overflowing(svg), [])
        self.assertEqual(len(overflowing(svg.replace('x="90"', 'x="110"'))), 1)


def overflowing(svg_text):
    boxes, (vx0, vy0, vx1, vy1) = svg_text_boxes(svg_text)
    return ["%r at x %.1f..%.1f, y %.1f..%.1f (viewBox %g..%g, %g..%g)" % (s, x0, x1, y0, y1, vx0, vx1, vy0, vy1)
            for s, (x0, y0, x1, y1) in boxes
            if x0 < vx0 - 1e-6 or y0 < vy0 - 1e-6 or x1 > vx1 + 1e-6 or y1 > vy1 + 1e-6]


def chart_inputs():
    """Representative tables: two groups, many groups, long names and labels, negative and huge values."""
    rng = random.Random(42)
    files = {"sleep.csv": sleep_csv()}
    lines = ["condition,response"]
    for i in range(200):
        lines.append("condition_number_%02d,%.3f" % (i % 20 + 1, rng.gauss(i % 20, 2)))
    files["many.csv"] = "\n".join(lines) + "\n"
    longcol = "Mean fluorescence intensity of the GFP channel after 24 hours of WWW treatment (arbitrary units)"
    longgrp = "Experimental treatment group assignment as recorded in the MMMM laboratory notebook"
    labels = ["Wildtype control animals housed in standard cages, cohort A of the WWW study",
              "Knockout animals housed in enriched cages, cohort B of the MMM study"]
    lines = ['"%s","%s",other' % (longgrp, longcol)]
    for i in range(30):
        lines.append('"%s",%.4f,%d' % (labels[i % 2], rng.gauss(100 + 20 * (i % 2), 10), i))
    files["long.csv"] = "\n".join(lines) + "\n"
    lines = ["group,neg,huge,tiny,big_negative"]
    for i in range(24):
        g = ("A", "B", "C")[i % 3]
        lines.append("%s,%.3f,%.6g,%.6g,%.6g" % (g, rng.gauss(-12345.678, 500), rng.uniform(1e299, 8e299),
                                                  rng.uniform(1e-300, 9e-300), -rng.uniform(1e15, 9e15)))
    files["values.csv"] = "\n".join(lines) + "\n"
    lines = ["群,値"]
    for i in range(12):
        lines.append("%s,%d" % (("対照群の長いラベル名です", "処理群の長いラベル名です")[i % 2], rng.randint(-50, 50)))
    files["wide.csv"] = "\n".join(lines) + "\n"
    return files


class ChartsFit(unittest.TestCase):
    def test_every_text_fits_its_viewbox(self):
        run = Run(self, chart_inputs(), params={"group_column": "群"})
        self.assertEqual(run.rc, 0, run.stdout + run.stderr)
        chart_dir = os.path.join(run.out, "charts")
        svgs = {}
        for n in sorted(os.listdir(chart_dir)):
            with open(os.path.join(chart_dir, n), encoding="utf-8") as fh:
                svgs[n] = fh.read()
        for k, s in enumerate(re.findall(r"<svg\b.*?</svg>", run.report(), re.S)):
            svgs["report.html #%d" % (k + 1)] = s
        kinds = Counter("by" if "-by-" in n else "hist" for n in svgs if n.endswith(".svg"))
        self.assertGreaterEqual(kinds["by"], 5)
        self.assertGreaterEqual(kinds["hist"], 8)
        bad = []
        for n, s in svgs.items():
            bad += ["%s: %s" % (n, b) for b in overflowing(s)]
        self.assertEqual(bad, [], "text outside the viewBox:\n" + "\n".join(bad))

    def test_two_group_chart_shows_the_p_value(self):
        run = Run(self, {"sleep.csv": sleep_csv()})
        self.assertEqual(run.rc, 0, run.stdout + run.stderr)
        with open(os.path.join(run.out, "charts", "sleep-extra-by-group.svg"), encoding="utf-8") as fh:
            svg = fh.read()
        texts = [s for s, _ in svg_text_boxes(svg)[0]]
        self.assertTrue(any("p = 0.0794" in s for s in texts), texts)
        self.assertTrue(any("t = -1.861" in s and "df = 17.78" in s for s in texts), texts)
        self.assertEqual(overflowing(svg), [])


if __name__ == "__main__":
    unittest.main()
