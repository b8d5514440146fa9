#!/usr/bin/env python3
"""Browser-test agent for labbox: reads the uploaded CSV files, reports progress slowly, draws charts.

Made for tests/browser/frontend.test.mjs, which needs a job that runs for a few seconds (so the
page shows log lines while the job is running and can be reloaded mid-run) and that writes image
outputs (so the page shows them as pictures). Standard library only.

inputs/params.json (optional) may set:
  seconds   how long to keep printing progress (default 6)
  interval  seconds between progress lines (default 0.25)
  long_line print two lines of this many characters first: words (stdout), one unbroken token
            (stderr); each ends in "<end>" (default 0: none)
Outputs: chart.png (histogram of the first numeric column), chart.svg (the same), report.html
(the main report, named by summary.json's "report"; it carries a script that must not run),
table.csv (150 rows to preview), summary.json.
Every fourth progress line goes to stderr. Exit status 0, or 2 when no CSV could be read.
"""
import csv
import json
import os
import struct
import sys
import time
import zlib

inp = os.environ.get("LABBOX_INPUT_DIR", "/workspace/inputs")
out = os.environ.get("LABBOX_OUTPUT_DIR", "/workspace/outputs")
os.makedirs(out, exist_ok=True)
try:
    with open(os.path.join(inp, "params.json")) as f:
        P = json.load(f)
except (FileNotFoundError, ValueError):
    P = {}
seconds = float(P.get("seconds", 6))
interval = max(0.05, float(P.get("interval", 0.25)))
long_line = int(P.get("long_line", 0))
if long_line > 10:
    words = " ".join("word%04d" % i for i in range(long_line // 9 + 1))
    print(words[:long_line - 5] + "<end>", flush=True)
    token = "".join("%x" % (i % 16) for i in range(long_line - 5))
    print(token + "<end>", file=sys.stderr, flush=True)


def numeric_columns(path):
    """{column: [values]} for the columns whose every non-empty cell is a number."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return {}
    head, body = rows[0], rows[1:]
    cols = {}
    for j, name in enumerate(head):
        vals = []
        try:
            for r in body:
                if j < len(r) and r[j].strip():
                    vals.append(float(r[j]))
        except ValueError:
            continue
        if vals:
            cols[name] = vals
    return cols


def histogram(vals, bins=20):
    lo, hi = min(vals), max(vals)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    return lo, hi, counts


def png(path, w, h, counts):
    """A bar chart as an RGB PNG, written with zlib and struct only."""
    px = bytearray(b"\xff" * (w * h * 3))

    def fill(x0, y0, x1, y1, rgb):
        for y in range(max(0, y0), min(h, y1)):
            row = y * w * 3
            for x in range(max(0, x0), min(w, x1)):
                px[row + 3 * x:row + 3 * x + 3] = rgb

    pad = 20
    fill(pad, h - pad, w - pad, h - pad + 1, b"\x88\x88\x88")
    fill(pad, pad, pad + 1, h - pad, b"\x88\x88\x88")
    top = max(counts) or 1
    bw = (w - 2 * pad) // len(counts)
    for i, c in enumerate(counts):
        bh = int((h - 2 * pad) * c / top)
        fill(pad + i * bw + 2, h - pad - bh, pad + (i + 1) * bw - 1, h - pad, b"\x2f\x5b\xd3")
    raw = b"".join(b"\x00" + bytes(px[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def svg(path, w, h, counts, title):
    pad = 20
    top = max(counts) or 1
    bw = (w - 2 * pad) / len(counts)
    bars = "".join(
        f'<rect x="{pad + i * bw + 2:.1f}" y="{h - pad - (h - 2 * pad) * c / top:.1f}" '
        f'width="{bw - 3:.1f}" height="{(h - 2 * pad) * c / top:.1f}" fill="#2f5bd3"/>'
        for i, c in enumerate(counts))
    t = title.replace("&", "&amp;").replace("<", "&lt;")
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
                f'<title>{t}</title><rect width="{w}" height="{h}" fill="#fff"/>{bars}'
                f'<path d="M{pad} {pad}V{h - pad}H{w - pad}" fill="none" stroke="#888"/></svg>\n')


tables = {}
names = sorted(os.path.relpath(os.path.join(root, n), inp) for root, _, files in os.walk(inp) for n in files)
for name in names:  # a dropped folder's files too, by their paths
    if name == "params.json":
        continue
    print(f"reading {name}", flush=True)
    cols = numeric_columns(os.path.join(inp, name))
    if cols:
        tables[name] = cols
        print(f"{name}: {len(next(iter(cols.values())))} rows, numeric columns: {', '.join(cols)}", flush=True)
    else:
        print(f"{name}: no numeric columns", file=sys.stderr, flush=True)

steps = max(1, int(seconds / interval))
for i in range(steps):
    msg = f"progress {i + 1}/{steps}"
    if i % 4 == 3:
        print(f"{msg}: note on stderr", file=sys.stderr, flush=True)
    else:
        print(msg, flush=True)
    time.sleep(interval)

if not tables:
    print("no CSV input could be read", file=sys.stderr, flush=True)
    sys.exit(2)

fname, cols = next(iter(tables.items()))
col, vals = next(iter(cols.items()))
lo, hi, counts = histogram(vals)
png(os.path.join(out, "chart.png"), 480, 240, counts)
svg(os.path.join(out, "chart.svg"), 480, 240, counts, f"{fname}: {col}")
summary = {f: {c: {"n": len(v), "mean": sum(v) / len(v), "min": min(v), "max": max(v)} for c, v in cs.items()}
           for f, cs in tables.items()}
summary = {"report": "report.html", "tables": summary}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
# The main report: a picture of its own (relative URL), and a script that must never run where
# labbox shows the report (it would mark the page and ask the server for ran-marker.png).
with open(os.path.join(out, "report.html"), "w") as f:
    f.write("<!doctype html><html><head><meta charset='utf-8'><title>report</title>"
            "<style>body{font-family:sans-serif}</style></head><body>"
            f"<h1 id='heading'>Report of the browser test</h1><p id='rows'>{len(vals)} values</p>"
            "<img id='chart' src='chart.svg' alt='chart' width='480' height='240'>"
            "<script>document.body.dataset.ran = 'yes';"
            "new Image().src = 'ran-marker.png?script-ran';</script></body></html>\n")
# A table to preview: 150 rows, a quoted cell with a comma, and markup that must stay text.
with open(os.path.join(out, "table.csv"), "w") as f:
    f.write('n,label,value\n1,"a, quoted",<b>not bold</b>\n')
    f.write("".join(f"{i},row {i},{i * i}\n" for i in range(2, 151)))
print(f"wrote chart.png, chart.svg, report.html, table.csv and summary.json ({col} from {fname}, "
      f"{lo:g} to {hi:g})", flush=True)
