#!/usr/bin/env python3
"""labbox default agent: summary statistics, group comparisons and charts for every data table.

Runs as `python3 agent.py` in /workspace with the Python 3 standard library only (3.9+), next to
its modules (tables, xlsx, analysis, stats, charts, textfmt, params) and params.schema.json.

Environment:
  LABBOX_JOB_ID      job id, printed in the log and the report
  LABBOX_BACKEND     local | docker | modal, printed in the log and the report
  LABBOX_INPUT_DIR   uploaded files (default /workspace/inputs)
  LABBOX_OUTPUT_DIR  where results go (default /workspace/outputs; created if missing)

Inputs: every regular file in the input directory. CSV/TSV (.csv .tsv .tab, delimiter found with
csv.Sniffer and checked against the rows), JSON (.json: a list of records, a list of rows whose
first row is the header, a list of scalars, {"columns": [...], "data": [[...]]} as pandas writes
it, {"columns": {name: [values]}}, or a dict of equal-length lists), JSON Lines (.jsonl .ndjson)
and Excel workbooks (.xlsx .xlsm, see xlsx.py): every worksheet is a table of its own (up to 50),
its header the first row with two or more values; dates and times become ISO 8601 text; Excel
errors (#DIV/0!) count as missing. Files with other names are sniffed: text that parses as a
table of 2+ columns, and zip files that are workbooks, are analysed. Everything else (images,
PDFs, archives, other text, .xls, encrypted workbooks) is "not analysed", with the reason, in the
log (stderr), report.html and summary.json.

inputs/params.json (optional, a JSON object): the parameters params.schema.json declares
(group_column, value_columns, alpha, error_bars, bins, title). labbox checks them against that
schema before the job starts; the agent checks them again: an undeclared key is ignored and a bad
value falls back to its default, both named in the log.

Missing values: empty cells and NA, N/A, NaN, null, #N/A (any case). A column is numeric when
every non-missing value is a decimal number (thousands separators are not understood; when the
delimiter is not a comma, a decimal comma such as 1,5 is read as 1.5).

Statistics: sample standard deviation (n - 1); quartiles by linear interpolation between order
statistics (R type 7, numpy's default). Groups: per-group n, mean, SD, SE, median; for every pair
of groups Welch's t-test (t, Welch-Satterthwaite df, two-sided p from the Student t distribution
via the regularized incomplete beta function), Holm-adjusted p when there are 3+ groups, and
Cohen's d with the pooled SD; "significant" when p (Holm-adjusted with 3+ groups) < alpha.
Direction: first group minus second, in order of first appearance. Numeric columns named like
identifiers (id, subject_id, Sample ID) are not compared unless value_columns names them. When no
group column is found, the log and the report say which columns were considered and which could
hold groups, and how to set group_column.

Outputs: report.html (the main report: self-contained, charts inlined), summary.json (its
"report" key names report.html), charts/<file>-<column>.svg.
Exit status: 0 when at least one table was analysed; 2 when none was (every input was not a
table, or could not be read: the job should fail, and the reasons are on stderr; report.html and
summary.json are still written); 1 on an internal error (such as a broken params.schema.json).
"""

import datetime
import json
import math
import os
import sys
import traceback
from collections import OrderedDict

sys.dont_write_bytecode = True     # no __pycache__ next to the agent (its dir may be read-only)

import analysis  # noqa: E402
import charts  # noqa: E402
import params as schema_params  # noqa: E402
import tables  # noqa: E402
from textfmt import esc, fmt, fmt_p, logsafe, short  # noqa: E402

AGENT_NAME = "labbox-default-agent"
AGENT_VERSION = "1.1"
MAX_INPUT_BYTES = 256 * 1024 * 1024
MAX_LOG_TESTS = 40         # t-test lines printed per table
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "params.schema.json")
# every parameter the agent uses; params.schema.json declares exactly these (tests/agent checks)
PARAMS_USED = ("group_column", "value_columns", "alpha", "error_bars", "bins", "title")
REPORT = "report.html"
SUMMARY = "summary.json"


def say(msg):
    print(msg, flush=True)


def warn(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- report

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child,td.l,th.l{text-align:left}th{background:#f3f3f3}
.err{color:#a00}.warn{color:#8a5a00}.muted{color:#666}.charts{display:flex;flex-wrap:wrap;gap:12px}
.box{border:1px solid #e0c080;background:#fff8e8;padding:.5em 1em;margin:1em 0}
figure{margin:0;border:1px solid #eee;padding:4px;max-width:100%}figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555}code{background:#f5f5f5;padding:0 3px}
"""


def html_table(head, rows, left=()):
    out = ["<table><tr>"]
    out += ['<th%s>%s</th>' % (' class="l"' if i in left else "", esc(h)) for i, h in enumerate(head)]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>" + "".join('<td%s>%s</td>' % (' class="l"' if i in left else "", esc(v))
                                    for i, v in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def label(entry):
    """A table's name for people: the file, and the sheet of a workbook."""
    return entry["name"] if entry.get("sheet") is None else "%s [%s]" % (entry["name"], entry["sheet"])


def outcome(f):
    if f["status"] == "analysed":
        return "analysed: %s, %d rows, %d columns" % (f["format"].upper(), f["rows"], len(f["columns"]))
    if f["status"] == "error":
        return "could not be read: %s" % f["error"]
    if f["status"] == "parameters":
        return "parameters"
    return "not analysed: %s" % f["reason"]


def report_head(summary):
    title = summary["params"].get("title") or "labbox report"
    o = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
         '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
         'style-src \'unsafe-inline\'; img-src data:">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         "<title>%s</title><style>%s</style></head><body>" % (esc(title), CSS),
         "<h1>%s</h1>" % esc(title),
         '<p class="muted">job <code>%s</code> on backend <code>%s</code>, %s UTC, %s %s. '
         'Machine-readable results: <a href="%s">%s</a>.</p>'
         % (esc(summary["job_id"]), esc(summary["backend"]), esc(summary["generated_at"]),
            esc(AGENT_NAME), esc(AGENT_VERSION), SUMMARY, SUMMARY)]
    for w in summary["warnings"]:
        o.append('<p class="warn">%s</p>' % esc(w))
    left_out = [f for f in summary["files"] if f["status"] in ("not_analysed", "error")]
    if left_out:
        o.append('<div class="box"><p><strong>%d of the inputs %s not analysed:</strong></p><ul>%s</ul>'
                 '<p class="muted">The default agent analyses CSV, TSV, JSON and .xlsx tables.</p></div>'
                 % (len(left_out), "was" if len(left_out) == 1 else "were",
                    "".join("<li>%s: %s</li>" % (esc(label(f)), esc(outcome(f))) for f in left_out)))
    o.append("<h2>Inputs</h2>")
    o.append(html_table(["file", "bytes", "result"],
                        [(label(f), f["bytes"], outcome(f)) for f in summary["files"]], left=(0, 2)))
    return o


def report_columns(f):
    o = []
    num = [c for c in f["columns"] if c["type"] == "numeric"]
    cat = [c for c in f["columns"] if c["type"] != "numeric"]
    if num:
        o.append("<h3>Numeric columns</h3>")
        o.append(html_table(
            ["column", "count", "missing", "mean", "SD", "min", "Q1", "median", "Q3", "max"],
            [(c["name"], c["count"], c["missing"], fmt(c["mean"]), fmt(c["std"]), fmt(c["min"]),
              fmt(c["q1"]), fmt(c["median"]), fmt(c["q3"]), fmt(c["max"])) for c in num]))
    if cat:
        o.append("<h3>Categorical columns</h3>")
        o.append(html_table(
            ["column", "count", "missing", "distinct", "top values"],
            [(c["name"], c["count"], c["missing"],
              ("%d+" if c.get("distinct_capped") else "%d") % c.get("distinct", 0),
              ", ".join("%s (%d)" % (short(t["value"], 40), t["count"]) for t in c.get("top", [])))
             for c in cat], left=(0, 4)))
    return o


def report_groups(f, alpha):
    if f.get("group_column") is None:
        if f.get("group_hint"):
            return ['<h3>Groups</h3><p class="warn">%s</p>' % esc(f["group_hint"])]
        return []
    o = ["<h3>Groups by %s</h3>" % esc(f["group_column"]),
         "<p>%s</p>" % esc(", ".join("%s (%d rows)" % (g["label"], g["rows"]) for g in f["groups"]))]
    for comp in f["comparisons"]:
        o.append("<h4>%s</h4>" % esc(comp["column"]))
        o.append(html_table(["group", "n", "mean", "SD", "SE", "median"],
                            [(g["label"], g["n"], fmt(g["mean"]), fmt(g["sd"]), fmt(g["se"]),
                              fmt(g["median"])) for g in comp["groups"]]))
        if not comp["tests"]:
            continue
        holm_col = any("p_holm" in t for t in comp["tests"])
        head = (["comparison", "mean diff", "Welch t", "df", "p"] + (["p (Holm)"] if holm_col else [])
                + ["Cohen's d", "p < %s" % fmt(alpha)])
        trs = []
        for t in comp["tests"]:
            r = ["%s − %s" % (t["a"], t["b"]), fmt(t["mean_diff"]), fmt(t["t"]), fmt(t["df"]), fmt_p(t["p"])]
            if holm_col:
                r.append(fmt_p(t.get("p_holm")))
            r += [fmt(t["cohen_d"]), "yes" if t["significant"] else "no"]
            trs.append(r)
        o.append(html_table(head, trs))
    return o


def render_report(summary, inline_charts):
    o = report_head(summary)
    for k, f in enumerate(summary["files"]):
        if f["status"] == "error":
            o.append('<h2>%s</h2><p class="err">Could not be read: %s</p>' % (esc(label(f)), esc(f["error"])))
            continue
        if f["status"] != "analysed":
            continue
        o.append("<h2>%s</h2>" % esc(label(f)))
        delim = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(f.get("delimiter"), None)
        source = ("sheet %s" % f["sheet"]) if f.get("sheet") is not None else "encoding %s" % (f.get("encoding") or "?")
        o.append('<p class="muted">%s%s, %s: %d rows, %d columns.</p>'
                 % (esc(f["format"].upper()), ", %s-delimited" % delim if delim else "",
                    esc(source), f["rows"], len(f["columns"])))
        for w in f.get("warnings", []):
            o.append('<p class="warn">%s</p>' % esc(w))
        o += report_columns(f)
        o += report_groups(f, summary["params"]["alpha"])
        made = inline_charts.get(k, [])
        if made:
            o.append('<h3>Charts</h3><div class="charts">')
            for rel, svg, caption in made:
                o.append('<figure>%s<figcaption>%s (<a href="%s">SVG</a>)</figcaption></figure>'
                         % (svg, esc(caption), esc(rel)))
            o.append("</div>")
    o.append("</body></html>\n")
    return "".join(o)


# ----------------------------------------------------------------------------- main

def load_params(path, schema, summary):
    """The parameters: params.json's valid values over the schema's defaults; the rest named in
    the log and the summary's warnings."""
    doc = {}
    if os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read(1024 * 1024).decode("utf-8-sig"))
        except (OSError, ValueError) as e:
            summary["warnings"].append("params.json ignored: %s" % e)
            doc = {}
        if not isinstance(doc, dict):
            summary["warnings"].append("params.json ignored: not a JSON object")
            doc = {}
    params, problems = schema_params.apply(schema, doc)
    for p in problems:
        summary["warnings"].append("params.json: %s" % p)
    for name in ("group_column", "title"):
        if isinstance(params[name], str):
            params[name] = params[name].strip() or None
    if not params["title"]:
        params["title"] = schema["properties"]["title"].get("default")
    for w in summary["warnings"]:
        say(logsafe(w, 300))
    return params


def log_tests(name, result):
    printed = 0
    total = sum(len(c["tests"]) for c in result["comparisons"])
    for comp in result["comparisons"]:
        for t in comp["tests"]:
            if printed >= MAX_LOG_TESTS:
                break
            printed += 1
            head = "%s: Welch t-test %s by %s (%s vs %s)" % (
                logsafe(name), logsafe(comp["column"]), logsafe(result["group_column"]),
                logsafe(t["a"], 30), logsafe(t["b"], 30))
            if t["t"] is None:
                say("%s: %s" % (head, t.get("note", "undefined")))
                continue
            say("%s: t=%.4f, df=%.2f, p=%s%s, d=%s%s" % (
                head, t["t"], t["df"], fmt_p(t["p"]),
                ", p (Holm)=%s" % fmt_p(t["p_holm"]) if "p_holm" in t else "", fmt(t["cohen_d"]),
                ", significant" if t["significant"] else ""))
    if total > printed:
        say("%s: ... %d more tests in %s" % (logsafe(name), total - printed, SUMMARY))


def analyse_part(entry, part, stem, params, writer):
    """Fills entry for one table; -> the charts made [(path, svg, caption)]."""
    name = label(entry)
    table = part.table
    result, cols = analysis.analyse(table, params)
    entry["status"] = "analysed"
    entry["format"] = table.format
    if table.delimiter is not None:
        entry["delimiter"] = table.delimiter
    if table.encoding is not None:
        entry["encoding"] = table.encoding
    entry.update(result)
    say("%s: %d rows, %d columns" % (logsafe(name), result["rows"], len(result["columns"])))
    made = charts.make_charts(stem, entry, cols, params, writer)
    entry["warnings"] = table.warnings + entry.get("warnings", [])
    for w in entry["warnings"]:
        say("%s: note: %s" % (logsafe(name), logsafe(w, 300)))
    if result["group_column"] is not None:
        say("%s: groups by %s: %s" % (logsafe(name), logsafe(result["group_column"]),
                                      ", ".join(logsafe(g["label"], 30) for g in result["groups"])))
    elif result.get("group_hint"):
        say("%s: hint: %s" % (logsafe(name), logsafe(result["group_hint"], 1000)))
    log_tests(name, result)
    return made


def process_file(name, path, params, writer):
    """-> [(summary entry, charts made)], one per table of the file (or one saying why none)."""
    size = os.path.getsize(path)
    say("reading %s (%d bytes)" % (logsafe(name), size))
    if size > MAX_INPUT_BYTES:
        raise tables.DataError("too large for the default agent (%d bytes)" % size)
    with open(path, "rb") as f:
        data = f.read()
    base = charts.slug(os.path.splitext(name)[0], 40)
    out = []
    for part in tables.load(name, data):
        entry = OrderedDict([("name", name)])
        if part.sheet is not None:
            entry["sheet"] = part.sheet
        entry["bytes"] = size
        made = []
        if part.skipped is not None:
            entry["status"], entry["reason"] = "not_analysed", part.skipped
        elif part.error is not None:
            entry["status"], entry["error"] = "error", part.error
        else:
            stem = base if part.sheet is None else "%s-%s" % (base, charts.slug(part.sheet, 30))
            try:
                made = analyse_part(entry, part, stem, params, writer)
            except tables.DataError as e:
                entry = OrderedDict([(k, entry[k]) for k in ("name", "sheet", "bytes") if k in entry])
                entry["status"], entry["error"] = "error", str(e)
        out.append((entry, made))
    return out


def error_entry(e, message):
    return OrderedDict([("name", e.name), ("bytes", e.stat(follow_symlinks=False).st_size),
                        ("status", "error"), ("error", message)])


def clean_json(x):
    """Non-finite floats (never expected) become null so that summary.json stays valid JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return OrderedDict((k, clean_json(v)) for k, v in x.items())
    if isinstance(x, list):
        return [clean_json(v) for v in x]
    return x


def shown(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def run_inputs(entries, in_dir, params, writer, summary):
    """Every input file -> summary["files"]; -> ({index in files: charts}, counts)."""
    inline = {}
    counts = {"analysed": 0, "not_analysed": 0, "error": 0}
    for e in entries:
        if e.name == "params.json":
            summary["files"].append(OrderedDict([("name", e.name), ("bytes", e.stat(follow_symlinks=False).st_size),
                                                 ("status", "parameters")]))
            continue
        if not e.is_file(follow_symlinks=False):
            results = [(OrderedDict([("name", e.name), ("bytes", 0), ("status", "not_analysed"),
                                     ("reason", "not a regular file")]), [])]
        else:
            try:
                results = process_file(e.name, e.path, params, writer)
            except tables.DataError as err:
                results = [(error_entry(e, str(err)), [])]
            except Exception as err:   # one odd file must not stop the others
                if not isinstance(err, (OSError, MemoryError, RecursionError, ArithmeticError, ValueError)):
                    traceback.print_exc()
                results = [(error_entry(e, "%s: %s" % (type(err).__name__, err)), [])]
        for entry, made in results:
            counts[entry["status"]] += 1
            if entry["status"] == "error":
                warn("error: %s: %s" % (logsafe(label(entry)), logsafe(entry["error"], 300)))
            elif entry["status"] == "not_analysed":
                warn("warning: %s was not analysed: %s" % (logsafe(label(entry)), logsafe(entry["reason"], 300)))
            else:
                inline[len(summary["files"])] = made
            summary["files"].append(entry)
    return inline, counts


def verdict(summary, counts, in_dir):
    """Why the job failed (no table analysed), or None."""
    if counts["analysed"]:
        return None
    failed = [f for f in summary["files"] if f["status"] == "error"]
    skipped = [f for f in summary["files"] if f["status"] == "not_analysed"]
    if failed:
        return "no input could be read: %s" % "; ".join(
            "%s: %s" % (logsafe(label(f)), logsafe(f["error"], 200)) for f in failed)
    if skipped:
        return ("none of the %d input(s) is a data table the default agent reads (CSV, TSV, JSON, "
                ".xlsx): %s" % (len(skipped), "; ".join("%s: %s" % (logsafe(label(f)), logsafe(f["reason"], 200))
                                                         for f in skipped)))
    return "no input files in %s" % in_dir


def main():
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
        sys.stderr.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass
    job = os.environ.get("LABBOX_JOB_ID", "") or "unknown"
    backend = os.environ.get("LABBOX_BACKEND", "") or "unknown"
    in_dir = os.environ.get("LABBOX_INPUT_DIR", "") or "/workspace/inputs"
    out_dir = os.environ.get("LABBOX_OUTPUT_DIR", "") or "/workspace/outputs"
    say("labbox agent on backend %s, job %s" % (logsafe(backend), logsafe(job)))
    try:
        schema = schema_params.load_schema(SCHEMA_PATH)
    except schema_params.SchemaError as e:
        warn("error: the agent's params.schema.json is broken: %s" % e)
        return 1

    summary = OrderedDict([
        ("agent", AGENT_NAME), ("version", AGENT_VERSION), ("job_id", job), ("backend", backend),
        ("generated_at", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("report", REPORT), ("params", {}), ("warnings", []), ("files", [])])
    os.makedirs(out_dir, exist_ok=True)

    fatal = None
    try:
        entries = sorted(os.scandir(in_dir), key=lambda e: e.name)
    except OSError as e:
        entries = []
        fatal = "cannot read the input directory %s: %s" % (in_dir, e.strerror or e)
    params = load_params(os.path.join(in_dir, "params.json"), schema, summary)
    summary["params"] = OrderedDict((k, v) for k, v in params.items() if v is not None)

    inline, counts = run_inputs(entries, in_dir, params, charts.ChartWriter(out_dir), summary)
    fatal = fatal or verdict(summary, counts, in_dir)
    if fatal is not None:
        summary["warnings"].append(fatal)

    summary_path = os.path.join(out_dir, SUMMARY)
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(clean_json(summary), f, indent=2, allow_nan=False)
        f.write("\n")
    say("wrote %s" % shown(summary_path))
    report_path = os.path.join(out_dir, REPORT)
    with open(report_path, "w", encoding="utf-8", errors="replace") as f:
        f.write(render_report(summary, inline))
    say("wrote %s" % shown(report_path))

    if fatal is not None:
        warn("error: %s" % fatal)
        return 2
    say("done: %d table(s) analysed, %d input(s) not analysed, %d could not be read"
        % (counts["analysed"], counts["not_analysed"], counts["error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
