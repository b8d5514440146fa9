"""Tests of the default agent (scripts/agent/agent.py): statistics, parsing, escaping, exit codes.

Run: python3 -m unittest discover -s tests/agent -p "test_*.py"   (standard library only)
"""

import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unittest
import xml.dom.minidom

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
AGENT_DIR = os.path.join(ROOT, "scripts", "agent")
AGENT = os.path.join(AGENT_DIR, "agent.py")
EXPERIMENT = os.path.join(ROOT, "tests", "data", "experiment.csv")
sys.path.insert(0, AGENT_DIR)
sys.dont_write_bytecode = True   # no __pycache__ in scripts/agent, which is copied into sandboxes
import agent  # noqa: E402

# R's `sleep` data set; R documents this output of t.test(extra ~ group, data = sleep):
#   Welch Two Sample t-test: t = -1.8608, df = 17.776, p-value = 0.07939,
#   mean in group 1 = 0.75, mean in group 2 = 2.33
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
SLEEP_T, SLEEP_DF, SLEEP_P = -1.8608, 17.776, 0.07939

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
                self.assertAlmostEqual(agent.t_cdf(t, df), t_cdf_closed(t, df), delta=1e-12,
                                       msg="df=%d t=%g" % (df, t))

    def test_critical_values(self):
        for df, t, alpha in CRITICAL:
            self.assertAlmostEqual(agent.t_two_sided_p(t, df), alpha, delta=1e-9, msg="df=%d" % df)
            self.assertAlmostEqual(agent.t_two_sided_p(-t, df), alpha, delta=1e-9)

    def test_fractional_df_against_integration(self):
        for df in (0.7, 2.5, 7.3, 17.776, 41.9, 300.5):
            for t in (0.01, 0.5, 1.5, 2.8, 6.0):
                self.assertAlmostEqual(agent.t_two_sided_p(t, df), t_two_sided_simpson(t, df),
                                       delta=1e-9, msg="df=%g t=%g" % (df, t))

    def test_large_df_tends_to_normal(self):
        for z in (0.5, 1.96, 3.0):
            self.assertAlmostEqual(agent.t_two_sided_p(z, 1e7), math.erfc(z / math.sqrt(2)), delta=1e-6)

    def test_edges(self):
        self.assertEqual(agent.t_two_sided_p(0.0, 5), 1.0)
        self.assertEqual(agent.t_two_sided_p(float("inf"), 5), 0.0)
        self.assertTrue(math.isnan(agent.t_two_sided_p(1.0, 0)))
        tiny = agent.t_two_sided_p(60.0, 30)
        self.assertTrue(0.0 < tiny < 1e-30, tiny)
        self.assertAlmostEqual(agent.betainc(2.0, 3.0, 0.4), 0.5248, delta=1e-12)   # 1 - sum binomial

    def test_welch_sleep(self):
        r = agent.welch(SLEEP_1, SLEEP_2)
        self.assertAlmostEqual(r["t"], SLEEP_T, delta=5e-5)
        self.assertAlmostEqual(r["df"], SLEEP_DF, delta=5e-4)
        self.assertAlmostEqual(r["p"], SLEEP_P, delta=5e-6)
        self.assertAlmostEqual(r["mean_diff"], 0.75 - 2.33, delta=1e-12)

    def test_welch_unequal_n(self):
        rng = random.Random(7)
        a = [rng.gauss(10, 1) for _ in range(8)]
        b = [rng.gauss(11, 3) for _ in range(23)]
        t, df, d = welch_by_hand(a, b)
        r = agent.welch(a, b)
        self.assertAlmostEqual(r["t"], t, delta=1e-10)
        self.assertAlmostEqual(r["df"], df, delta=1e-9)
        self.assertAlmostEqual(r["cohen_d"], d, delta=1e-10)
        self.assertAlmostEqual(r["p"], t_two_sided_simpson(t, df), delta=1e-9)

    def test_holm(self):
        adj = agent.holm([0.01, 0.04, 0.03, None])
        self.assertEqual(adj[3], None)
        self.assertAlmostEqual(adj[0], 0.03)
        self.assertAlmostEqual(adj[2], 0.06)
        self.assertAlmostEqual(adj[1], 0.06)   # monotone: max(0.04 * 1, 0.06)

    def test_quartiles_match_statistics_inclusive(self):
        xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
        d = agent.describe(xs)
        q = statistics.quantiles(xs, n=4, method="inclusive")
        self.assertEqual([d["q1"], d["median"], d["q3"]], q)
        self.assertAlmostEqual(d["std"], statistics.stdev(xs), delta=1e-12)


class Run:
    """One agent run in a temporary /workspace-like directory."""

    def __init__(self, tc, files, params=None, out_sub="outputs"):
        self.dir = tempfile.mkdtemp(prefix="agent-test-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        inp = os.path.join(self.dir, "inputs")
        os.mkdir(inp)
        for name, content in files.items():
            with open(os.path.join(inp, name), "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        if params is not None:
            with open(os.path.join(inp, "params.json"), "w") as f:
                f.write(params if isinstance(params, str) else json.dumps(params))
        self.out = os.path.join(self.dir, out_sub)
        env = {"PATH": "/usr/bin:/bin", "LABBOX_JOB_ID": "testjob123", "LABBOX_BACKEND": "local",
               "LABBOX_INPUT_DIR": inp, "LABBOX_OUTPUT_DIR": self.out}
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, AGENT], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=120)
        self.seconds = time.monotonic() - t0
        self.rc, self.stdout, self.stderr = p.returncode, p.stdout, p.stderr
        self.summary = None
        if os.path.exists(os.path.join(self.out, "summary.json")):
            with open(os.path.join(self.out, "summary.json")) as f:
                self.summary = json.load(f)

    def file(self, name):
        return next(f for f in self.summary["files"] if f["name"] == name)

    def report(self):
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            return f.read()


def col(entry, name):
    return next(c for c in entry["columns"] if c["name"] == name)


def sleep_csv():
    lines = ["id,group,extra"]
    for i, v in enumerate(SLEEP_1):
        lines.append("%d,1,%s" % (i + 1, v))
    for i, v in enumerate(SLEEP_2):
        lines.append("%d,2,%s" % (i + 1, v))
    return "\n".join(lines) + "\n"


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
        self.assertIn("none of the 1 input file(s) is a data table", run.stderr)

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
        self.assertIn("ignoring unknown param(s): unknown_key", run.stdout)
        self.assertEqual(run.summary["params"], {"group_column": "batch", "title": "My run",
                                                 "error_bars": "se", "bins": 7})
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

    def test_five_mib_is_fast(self):
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
        self.assertLess(run.seconds, 30.0)   # about 2 s on one free core; generous for CI


if __name__ == "__main__":
    unittest.main()
