"""SVG charts of the default agent (histograms, group bar charts) whose every text fits the picture.

No fonts are available to measure text, so widths are estimated: `text_width` rounds the advance
widths of DejaVu Sans and DejaVu Sans Bold (the widest common default sans-serif faces) up per
character class. Names and labels are cut with an ellipsis to the room the layout gives them; the
layout makes room for what must not be cut (tick numbers, the test statistics and the p-value).
tests/agent checks every <text> against the viewBox with its own, equally conservative measure.
"""

import math
import os
import re
import unicodedata
from collections import OrderedDict

from stats import histogram
from textfmt import esc, fmt, fmt_p

FONT = 11                  # the charts' font size (px), set on the <svg>
TITLE_FONT = 13
PAD = 8                    # empty margin around everything
ASCENT, DESCENT = 1.0, 0.3  # of the font size, above and below the baseline (rounded up)
WIDE_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZmw@%&#+<=>^~")
ROT = math.sqrt(0.5)       # sin and cos of the 45 degrees of slanted group labels
LABEL_MAX = 150            # longest slanted group label (px)
MIN_SLOT = 56              # narrowest room per group (px)
MAX_CHART_COLUMNS = 50     # histograms (and group charts) per table


def char_em(ch, bold=False):
    """Advance width of one character in em, rounded up (see the module's docstring)."""
    if ord(ch) < 128 and ch not in WIDE_ASCII:
        return 0.75 if bold else 0.7
    if unicodedata.east_asian_width(ch) in "WF":
        return 1.3
    return 1.1 if bold else 1.0


def text_width(s, size=FONT, bold=False):
    return size * sum(char_em(ch, bold) for ch in s)


def fit(s, avail, size=FONT, bold=False):
    """s, or its longest prefix plus an ellipsis, whose width is at most avail px ('' if none)."""
    s = str(s)
    if text_width(s, size, bold) <= avail:
        return s
    room = avail - size * char_em("…", bold)
    out, used = [], 0.0
    for ch in s:
        used += size * char_em(ch, bold)
        if used > room:
            break
        out.append(ch)
    head = "".join(out).rstrip()
    return head + "…" if head else ""


def fit_middle(s, avail, size=FONT):
    """s, or its start and end around an ellipsis, at most avail px wide: labels that differ
    only at the end ("condition_01", "condition_02") stay apart."""
    s = str(s)
    if text_width(s, size) <= avail:
        return s
    room = avail - size * char_em("…")
    head, tail, used = [], [], 0.0
    i, j = 0, len(s) - 1
    while i <= j:                      # take from the start twice as often as from the end
        ch = s[i] if len(head) <= 2 * len(tail) else s[j]
        used += size * char_em(ch)
        if used > room:
            break
        if len(head) <= 2 * len(tail):
            head.append(ch)
            i += 1
        else:
            tail.append(ch)
            j -= 1
    return ("".join(head) + "…" + "".join(reversed(tail))) if head else ""


def tick_labels(ticks):
    """Tick numbers as people write them: integers in full up to 10 million, else the fewest
    significant digits (3 or more) that tell every tick apart."""
    if all(abs(v) < 1e7 and abs(v - round(v)) < 1e-9 * max(1.0, abs(v)) for v in ticks):
        return ["%d" % round(v) for v in ticks]
    for digits in range(3, 12):
        labels = ["%.*g" % (digits, v) for v in ticks]
        if len(set(labels)) == len(labels):
            break
    return [lab.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e") for lab in labels]


def text(x, y, s, anchor="start", size=None, bold=False, fill=None, rotate=None):
    """One <text>; with rotate, the text is turned by that many degrees around (x, y)."""
    if not s:
        return ""
    attrs = ['x="%.1f" y="%.1f"' % (x, y)] if rotate is None else \
        ['transform="translate(%.1f %.1f) rotate(%g)"' % (x, y, rotate)]
    if anchor != "start":
        attrs.append('text-anchor="%s"' % anchor)
    if size is not None:
        attrs.append('font-size="%d"' % size)
    if bold:
        attrs.append('font-weight="bold"')
    if fill:
        attrs.append('fill="%s"' % fill)
    return "<text %s>%s</text>" % (" ".join(attrs), esc(s))


def nice_ticks(lo, hi, n=5):
    """About n + 1 round, finite tick values covering [lo, hi] (just lo and hi when that fails)."""
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / n
    if not (math.isfinite(raw) and raw > 0):
        return [lo, hi]
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if step >= raw:
            break
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    ticks = [k * step for k in range(first, last + 1)]
    if not 0 < last - first <= 50 or not all(math.isfinite(v) for v in ticks):
        return [lo, hi]
    return ticks


def svg_open(w, h, title):
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'role="img" font-family="sans-serif" font-size="%d"><title>%s</title>'
            '<rect width="100%%" height="100%%" fill="#fff"/>' % (w, h, w, h, FONT, esc(title)))


def heading(out, w, title_parts, lines):
    """Title (bold) and subtitle lines at the top left; returns the baseline of the last line."""
    avail = w - 2 * PAD
    if len(title_parts) == 2:          # "column by group": both names get a share of the room
        a, b = title_parts
        sep = text_width(" by ", TITLE_FONT, True)
        b_room = min(text_width(b, TITLE_FONT, True), (avail - sep) * 0.4)
        a = fit(a, avail - sep - b_room, TITLE_FONT, True)
        title = a + " by " + fit(b, avail - sep - text_width(a, TITLE_FONT, True), TITLE_FONT, True)
    else:
        title = fit(title_parts[0], avail, TITLE_FONT, True)
    y = PAD + ASCENT * TITLE_FONT
    out.append(text(PAD, y, title, size=TITLE_FONT, bold=True))
    y += DESCENT * TITLE_FONT + 3
    for line in lines:
        y += ASCENT * FONT + 2
        out.append(text(PAD, y, fit(line, avail), fill="#555"))
        y += DESCENT * FONT
    return y


def y_axis(out, ticks, labels, left, right, Y, axis_name, mt, ph):
    """Grid lines, right-aligned tick numbers ending at left - 4, and the turned axis name."""
    for v, lab in zip(ticks, labels):
        out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, right, Y(v), Y(v)))
        out.append(text(left - 4, Y(v) + 4, lab, anchor="end"))
    out.append(text(PAD + ASCENT * FONT, mt + ph / 2, fit(axis_name, ph), anchor="middle", fill="#555",
                    rotate=-90))


def left_margin(labels):
    """Room for the turned axis name, then the widest tick number, then the tick gap."""
    return PAD + (ASCENT + DESCENT) * FONT + 6 + max(text_width(s) for s in labels) + 4


def svg_histogram(col_name, edges, counts, n, missing):
    w, ph = 480, 200
    lo, hi = edges[0], edges[-1]
    yt = nice_ticks(0, max(counts) or 1, 5)
    ylabels = tick_labels(yt)
    span = abs(hi - lo)
    xt = [v for v in nice_ticks(lo, hi, 5) if lo - 1e-9 * span <= v <= hi + 1e-9 * span]
    xlabels = tick_labels(xt) if xt else []
    out = [svg_open(0, 0, "")]         # replaced below, once the height is known
    top = heading(out, w, [col_name], ["n = %d, missing = %d" % (n, missing)])
    mt = top + 12
    ml = left_margin(ylabels)
    mr = max(16.0, PAD + (text_width(xlabels[-1]) / 2 if xlabels else 0))
    pw = w - ml - mr
    h = int(math.ceil(mt + ph + 16 + DESCENT * FONT + 4 + (ASCENT + DESCENT) * FONT + PAD))
    ymax = yt[-1]
    X = lambda v: ml + (v - lo) / (hi - lo) * pw
    Y = lambda v: mt + ph - v / ymax * ph
    out[0] = svg_open(w, h, "Histogram of %s" % col_name)
    y_axis(out, yt, ylabels, ml, ml + pw, Y, "count", mt, ph)
    for i, k in enumerate(counts):
        x0, x1 = X(edges[i]), X(edges[i + 1])
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7fb5" stroke="#fff">'
                   '<title>%s to %s: %d</title></rect>'
                   % (x0, Y(k), max(x1 - x0, 0.5), mt + ph - Y(k), esc(fmt(edges[i])),
                      esc(fmt(edges[i + 1])), k))
    right_end = PAD                    # x tick numbers: none crosses an edge or its neighbour
    for v, lab in zip(xt, xlabels):
        half = text_width(lab) / 2
        out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>'
                   % (X(v), X(v), mt + ph, mt + ph + 4))
        if X(v) - half >= right_end + 4 and X(v) + half <= w - PAD:
            out.append(text(X(v), mt + ph + 16, lab, anchor="middle"))
            right_end = X(v) + half
    out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>' % (ml, ml + pw, mt + ph, mt + ph))
    cx = ml + pw / 2
    out.append(text(cx, h - PAD - DESCENT * FONT, fit(col_name, 2 * min(cx - PAD, w - PAD - cx)),
                    anchor="middle", fill="#555"))
    out.append("</svg>")
    return "".join(out)


def group_label_layout(labels, ns, slot):
    """Labels under the bars, "n=5" below each: level, cut to the slot, when they fit or the
    slots are wide (few groups); else slanted by 45 degrees, cut to LABEL_MAX.
    -> (texts, slanted, height of the band under the axis)."""
    if all(text_width(g) <= slot - 6 for g in labels) or slot >= 110:
        return [fit_middle(g, slot - 6) for g in labels], False, 2 * FONT + 10
    texts = [fit_middle(g, LABEL_MAX) for g in labels]
    longest = max(text_width(t) for t in texts)
    return texts, True, 20 + ROT * (longest + (ASCENT + DESCENT) * FONT)


def group_stats_lines(bars, tests):
    """Subtitle lines; all but the first are never cut (the chart is made wide enough)."""
    lines = ["bars: mean ± %s" % bars.upper()]
    if len(tests) == 1 and tests[0]["p"] is not None:
        t = tests[0]
        lines.append("Welch t = %s, df = %s, p = %s" % (fmt(t["t"]), fmt(t["df"]), fmt_p(t["p"])))
    elif len(tests) > 1:
        lines.append("pairwise Welch t-tests in report.html")
    return lines


def svg_group_bars(col_name, group_name, gstats, bars, tests):
    """Mean (and error bar) per group; None when the values span more than floating point can."""
    k = len(gstats)
    ph = 212
    lines = group_stats_lines(bars, tests)
    pts = []
    for g in gstats:
        if g["mean"] is not None:
            e = g[bars] or 0.0
            pts += [v for v in (g["mean"] - e, g["mean"] + e) if math.isfinite(v)] or [g["mean"]]
    yt = nice_ticks(min(pts + [0.0]), max(pts + [0.0]), 5)
    ylo, yhi = yt[0], yt[-1]
    if not math.isfinite(yhi - ylo):
        return None
    ylabels = tick_labels(yt)
    ml, mr = left_margin(ylabels), 16.0
    labels = [str(g["label"]) for g in gstats]
    ns = [g["n"] for g in gstats]
    # the width: room for every group and for the test line, which is never cut
    w = max(360.0, ml + mr + MIN_SLOT * k, max(text_width(s) for s in lines[1:] or [""]) + 2 * PAD)
    texts, slanted, band = group_label_layout(labels, ns, (w - ml - mr) / k)
    if slanted:                        # the first label reaches left of its slot's centre
        first = ROT * (text_width(texts[0]) + ASCENT * FONT) + PAD
        ml = max(ml, first - (w - ml - mr) / k / 2)
        w = max(w, ml + mr + MIN_SLOT * k)
    w = int(math.ceil(w))
    slot = (w - ml - mr) / k
    out = [svg_open(0, 0, "")]
    top = heading(out, w, [col_name, group_name], lines)
    mt = top + 12
    pw = w - ml - mr
    h = int(math.ceil(mt + ph + band + 4 + (ASCENT + DESCENT) * FONT + PAD))
    out[0] = svg_open(w, h, "%s by %s" % (col_name, group_name))
    Y = lambda v: mt + ph - (v - ylo) / (yhi - ylo) * ph
    y_axis(out, yt, ylabels, ml, ml + pw, Y, col_name, mt, ph)
    for i, g in enumerate(gstats):
        cx = ml + slot * (i + 0.5)
        group_bar(out, g, cx, min(48.0, slot * 0.6), bars, Y)
        n_label = fit("n=%d" % g["n"], slot - 4)
        if slanted:
            out.append(text(cx, mt + ph + 14, n_label, anchor="middle", fill="#555"))
            y0 = mt + ph + 20 + ROT * ASCENT * FONT
            out.append(text(cx + 3, y0, texts[i], anchor="end", rotate=-45))
        else:
            out.append(text(cx, mt + ph + 16, texts[i], anchor="middle"))
            out.append(text(cx, mt + ph + 30, n_label, anchor="middle", fill="#555"))
    out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>' % (ml, ml + pw, Y(0.0), Y(0.0)))
    cx = ml + pw / 2
    out.append(text(cx, h - PAD - DESCENT * FONT, fit(group_name, 2 * min(cx - PAD, w - PAD - cx)),
                    anchor="middle", fill="#555"))
    out.append("</svg>")
    return "".join(out)


def group_bar(out, g, cx, bw, bars, Y):
    """One group's bar from 0 to the mean, with its error bar, and a tooltip."""
    if g["mean"] is None:
        return
    y0, y1 = Y(0.0), Y(g["mean"])
    out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7fb5">'
               '<title>%s: mean %s, SD %s, n %d</title></rect>'
               % (cx - bw / 2, min(y0, y1), bw, max(abs(y1 - y0), 0.5), esc(g["label"]),
                  esc(fmt(g["mean"])), esc(fmt(g["sd"])), g["n"]))
    e = g[bars]
    if e and math.isfinite(g["mean"] - e) and math.isfinite(g["mean"] + e):
        ya, yb = Y(g["mean"] - e), Y(g["mean"] + e)
        out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>' % (cx, cx, ya, yb))
        for yy in (ya, yb):
            out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>'
                       % (cx - 6, cx + 6, yy, yy))


def slug(s, limit=60):
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")
    return (s or "x")[:limit]


class ChartWriter:
    """Writes charts/<stem>.svg under the output dir; stems that differ only in case get -2, -3."""

    def __init__(self, out_dir):
        self.dir = os.path.join(out_dir, "charts")
        self.used = set()

    def write(self, stem, svg):
        base = stem
        k = 2
        while base.lower() in self.used:
            base = "%s-%d" % (stem, k)
            k += 1
        self.used.add(base.lower())
        os.makedirs(self.dir, exist_ok=True)
        rel = "charts/%s.svg" % base
        with open(os.path.join(self.dir, base + ".svg"), "w", encoding="utf-8", errors="replace") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n")
        return rel


def make_charts(stem, result, cols, params, charts):
    """Histograms of the charted numeric columns and a bar chart per group comparison.
    -> [(relative path, svg, caption)]; adds "histogram" to result's columns, "charts" to result."""
    made = []
    numeric = [c for c in cols if c.numeric and c.present > 0 and c.charted]
    for c in numeric[:MAX_CHART_COLUMNS]:
        xs = [x for x in c.nums if x == x]
        lo, hi = min(xs), max(xs)
        if not math.isfinite(hi - lo):
            result.setdefault("warnings", []).append(
                "no histogram of %s: its range is too large for floating point" % c.name)
            continue
        bins = params.get("bins") or max(5, min(50, int(math.ceil(math.log2(len(xs)))) + 1))
        edges, counts = histogram(xs, lo, hi, bins)
        info = next(i for i in result["columns"] if i["name"] == c.name)
        info["histogram"] = OrderedDict([("edges", edges), ("counts", counts)])
        svg = svg_histogram(c.name, edges, counts, len(xs), c.missing)
        rel = charts.write("%s-%s" % (stem, slug(c.name)), svg)
        made.append((rel, svg, "Histogram of %s" % c.name))
    bars = params["error_bars"]
    for comp in result["comparisons"][:MAX_CHART_COLUMNS]:
        if not any(g["n"] for g in comp["groups"]):
            continue
        svg = svg_group_bars(comp["column"], result["group_column"], comp["groups"], bars, comp["tests"])
        if svg is None:
            result.setdefault("warnings", []).append(
                "no chart of %s by group: its range is too large for floating point" % comp["column"])
            continue
        rel = charts.write("%s-%s-by-%s" % (stem, slug(comp["column"]), slug(result["group_column"], 30)), svg)
        made.append((rel, svg, "%s by %s" % (comp["column"], result["group_column"])))
    if len(numeric) > MAX_CHART_COLUMNS:
        result.setdefault("warnings", []).append(
            "charts drawn for the first %d numeric columns only" % MAX_CHART_COLUMNS)
    result["charts"] = [m[0] for m in made]
    return made
