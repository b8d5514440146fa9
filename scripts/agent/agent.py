#!/usr/bin/env python3
"""labbox default agent: summary statistics, group comparisons and charts for every data table.

Runs as `python3 agent.py` in /workspace with the Python 3 standard library only (3.9+).

Environment:
  LABBOX_JOB_ID      job id, printed in the log and the report
  LABBOX_BACKEND     local | docker | modal, printed in the log and the report
  LABBOX_INPUT_DIR   uploaded files (default /workspace/inputs)
  LABBOX_OUTPUT_DIR  where results go (default /workspace/outputs; created if missing)

Inputs: every regular file in the input directory. CSV/TSV (.csv .tsv .tab, delimiter found with
csv.Sniffer and checked against the rows), JSON (.json: a list of records, a list of rows whose
first row is the header, a list of scalars, {"columns": [...], "data": [[...]]} as pandas writes
it, {"columns": {name: [values]}}, or a dict of equal-length lists) and JSON Lines (.jsonl
.ndjson). Files with other names are sniffed: text that parses as a table of 2+ columns is
analysed; images, PDFs, archives and other text are listed as "not analysed".

inputs/params.json (optional, a JSON object) may set:
  group_column  name of the column that holds the group/condition of each row
                (default: the first column named like group, condition, treatment, arm,
                class, label or cohort that has 2..20 distinct values)
  title         report title (default "labbox report")
  error_bars    "sd" (default) or "se": what the bars of the group charts show
  bins          number of histogram bins, 1..200 (default: Sturges' rule, 5..50)
Unknown keys are ignored (and named in the log); a bad value falls back to the default.

Missing values: empty cells and NA, N/A, NaN, null, #N/A (any case). A column is numeric when
every non-missing value is a decimal number (thousands separators are not understood; when the
delimiter is not a comma, a decimal comma such as 1,5 is read as 1.5).

Statistics: sample standard deviation (n - 1); quartiles by linear interpolation between order
statistics (R type 7, numpy's default). Groups: per-group n, mean, SD, SE, median; for every pair
of groups Welch's t-test (t, Welch-Satterthwaite df, two-sided p from the Student t distribution
via the regularized incomplete beta function), Holm-adjusted p when there are 3+ groups, and
Cohen's d with the pooled SD. Direction: first group minus second, in order of first appearance.
Numeric columns named like identifiers (id, subject_id, Sample ID) are not compared.

Outputs: report.html (self-contained, charts inlined), summary.json, charts/<file>-<column>.svg.
Exit status: 0 when at least one input was analysed; 2 when no input could be read (reason on
stderr; report.html and summary.json are still written); 1 on an internal error.
"""

import csv
import datetime
import html
import io
import json
import math
import os
import re
import sys
import traceback
from array import array
from collections import Counter, OrderedDict

AGENT_NAME = "labbox-default-agent"
AGENT_VERSION = "1.0"

MISSING = frozenset({"", "na", "n/a", "nan", "null", "#n/a"})
NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
NUM_COMMA_RE = re.compile(r"[+-]?\d+,\d+\Z")
GROUP_WORDS = ("group", "condition", "treatment", "arm", "class", "label", "cohort")
MAX_GROUPS = 20            # more distinct values than this: not a grouping column
TOP_N = 10                 # top values listed for a categorical column
CAT_CAP = 10000            # distinct values tracked per categorical column
SNIFF_CHARS = 64 * 1024
MAX_INPUT_BYTES = 256 * 1024 * 1024
MAX_CHART_COLUMNS = 50     # histograms (and group charts) per file
MAX_LOG_TESTS = 40         # t-test lines printed per file
DELIMITERS = (",", ";", "\t", "|")

TABLE_EXT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
             ".jsonl": "jsonl", ".ndjson": "jsonl"}
NONDATA_EXT = {
    ".png": "PNG image", ".jpg": "JPEG image", ".jpeg": "JPEG image", ".gif": "GIF image",
    ".bmp": "BMP image", ".tif": "TIFF image", ".tiff": "TIFF image", ".webp": "WebP image",
    ".svg": "SVG image", ".pdf": "PDF document", ".zip": "ZIP archive", ".gz": "gzip file",
    ".tgz": "tar archive", ".tar": "tar archive", ".xz": "xz file", ".bz2": "bzip2 file",
    ".xlsx": "Excel workbook (export it as CSV to analyse it)",
    ".xls": "Excel workbook (export it as CSV to analyse it)",
    ".docx": "Word document", ".doc": "Word document", ".pptx": "PowerPoint file",
    ".odt": "OpenDocument text", ".ods": "OpenDocument spreadsheet (export it as CSV)",
    ".h5": "HDF5 file", ".hdf5": "HDF5 file", ".npy": "NumPy array", ".npz": "NumPy archive",
    ".parquet": "Parquet file", ".fcs": "flow cytometry file", ".mp4": "video", ".wav": "audio",
}
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"), (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"), (b"GIF89a", "GIF image"), (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (or XLSX/DOCX)"), (b"\x1f\x8b", "gzip file"),
    (b"II*\x00", "TIFF image"), (b"MM\x00*", "TIFF image"), (b"RIFF", "RIFF file (WebP/WAV)"),
    (b"\xd0\xcf\x11\xe0", "OLE document (XLS/DOC)"), (b"\x7fELF", "ELF executable"),
    (b"\x89HDF", "HDF5 file"), (b"PAR1", "Parquet file"),
)
# bytes that may appear in text: printable ASCII, tab, LF, CR and anything >= 0x80 (UTF-8, cp1252)
TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r" + bytes(range(128, 256))
XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
LOG_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class DataError(Exception):
    """An input that cannot be read as a table; the message is shown to the user."""


# ----------------------------------------------------------------------------- small helpers

def say(msg):
    print(msg, flush=True)


def warn(msg):
    print(msg, file=sys.stderr, flush=True)


def logsafe(s, limit=80):
    """A name made safe for one log line: control characters escaped, long names cut."""
    s = str(s)
    if len(s) > limit:
        s = s[:limit] + "..."
    return LOG_BAD.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 256
                       else "\\u%04x" % ord(m.group()), s)


def esc(s):
    """Text for HTML and SVG (XML): markup escaped, characters XML forbids replaced."""
    return html.escape(XML_BAD.sub("\ufffd", str(s)), quote=True)


def fmt(x, digits=4):
    if x is None:
        return "–"
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    return "%.*g" % (digits, x)


def fmt_p(p):
    if p is None:
        return "–"
    if p == 0:
        return "< 1e-300"
    return "%.3g" % p if p < 0.001 else "%.4f" % p


def finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None


# ----------------------------------------------------------------------------- distributions

def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, 100001):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError("incomplete beta continued fraction did not converge")


def betainc(a, b, x, y=None):
    """Regularized incomplete beta I_x(a, b) for a, b > 0; y = 1 - x may be given exactly."""
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, y) / b


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df > 0 degrees of freedom (df may be fractional)."""
    if math.isnan(t) or not df > 0:
        return float("nan")
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2)))


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom."""
    p = t_two_sided_p(t, df)
    return 1.0 - 0.5 * p if t > 0 else 0.5 * p


# ----------------------------------------------------------------------------- statistics

def _fsum(xs):
    try:
        return math.fsum(xs)
    except (OverflowError, ValueError):     # intermediate overflow near the float limit
        return float("nan")


def mean_sd(xs):
    """Mean and sample SD; None where undefined (n < 2 for the SD) or not finite."""
    n = len(xs)
    if n == 0:
        return None, None
    m = _fsum(x / n for x in xs)
    if not math.isfinite(m):
        return None, None
    if n < 2:
        return m, None
    sd = math.sqrt(_fsum((x - m) * (x - m) for x in xs) / (n - 1))
    return m, (sd if math.isfinite(sd) else None)


def quantile(sorted_xs, p):
    """Linear interpolation between order statistics (R type 7)."""
    n = len(sorted_xs)
    h = (n - 1) * p
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    return sorted_xs[lo] + (h - lo) * (sorted_xs[hi] - sorted_xs[lo])


def describe(xs):
    xs = sorted(xs)
    n = len(xs)
    m, sd = mean_sd(xs)
    return OrderedDict([
        ("count", n), ("mean", m), ("std", sd), ("min", xs[0]), ("q1", quantile(xs, 0.25)),
        ("median", quantile(xs, 0.5)), ("q3", quantile(xs, 0.75)), ("max", xs[-1]),
    ])


def welch(a, b):
    """Welch's unequal-variance t-test of two samples (lists of floats, n >= 2 each)."""
    na, nb = len(a), len(b)
    ma, sa = mean_sd(a)
    mb, sb = mean_sd(b)
    res = OrderedDict([("test", "welch_t"), ("mean_diff", None), ("t", None), ("df", None),
                       ("p", None), ("cohen_d", None)])
    if None in (ma, sa, mb, sb) or not math.isfinite(ma - mb):
        res["note"] = "values too large for a t-test"
        return res
    res["mean_diff"] = ma - mb
    va, vb = sa * sa / na, sb * sb / nb
    pooled = math.sqrt(((na - 1) * sa * sa + (nb - 1) * sb * sb) / (na + nb - 2))
    if pooled > 0:
        res["cohen_d"] = (ma - mb) / pooled
    if va + vb <= 0:
        res["note"] = "both groups are constant: t is undefined"
        return res
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    res["t"], res["df"], res["p"] = t, df, t_two_sided_p(t, df)
    return res


def holm(ps):
    """Holm step-down adjusted p-values; None entries stay None."""
    idx = sorted((i for i, p in enumerate(ps) if p is not None), key=lambda i: ps[i])
    m = len(idx)
    out = [None] * len(ps)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def histogram(xs, lo, hi, bins):
    if hi <= lo:
        lo, hi, bins = lo - 0.5, hi + 0.5, 1
    width = (hi - lo) / bins
    counts = [0] * bins
    last = bins - 1
    for x in xs:
        k = int((x - lo) / width)
        counts[k if k < last else last] += 1
    return [lo + i * width for i in range(bins)] + [hi], counts


# ----------------------------------------------------------------------------- reading inputs

class Table:
    def __init__(self, fmt_name, header, rows, delimiter=None, encoding=None, decimal_comma=False):
        self.format = fmt_name
        self.header = header
        self.rows = rows              # callable -> iterator of (where, list of cells)
        self.delimiter = delimiter
        self.encoding = encoding
        self.decimal_comma = decimal_comma
        self.warnings = []


def decode_text(data):
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise DataError("starts with a UTF-16 byte order mark but is not valid UTF-16")
    if b"\x00" in data:
        raise DataError("binary content (NUL bytes), not a text table")
    sample = data[:SNIFF_CHARS]
    if len(sample.translate(None, TEXT_BYTES)) > max(2, len(sample) // 100):
        raise DataError("binary content (control characters), not a text table")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8 (BOM)"
        except UnicodeDecodeError as e:
            raise DataError("has a UTF-8 byte order mark but invalid UTF-8 at byte %d" % e.start)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def unique_names(raw):
    names, seen = [], set()
    for i, h in enumerate(raw):
        name = str(h).strip() or "column_%d" % (i + 1)
        base, k = name, 2
        while name in seen:
            name = "%s_%d" % (base, k)
            k += 1
        seen.add(name)
        names.append(name)
    return names


def delimiter_score(sample, d):
    try:
        rows = []
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=d):
            if row and any(c.strip() for c in row):
                rows.append(row)
            if len(rows) >= 200:
                break
    except csv.Error:
        return 0.0, 0
    if not rows:
        return 0.0, 0
    n = len(rows[0])
    return sum(1 for r in rows if len(r) == n) / len(rows), n


def choose_delimiter(sample, kind):
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    scores = {d: delimiter_score(sample, d) for d in DELIMITERS}
    valid = [d for d in DELIMITERS if scores[d][1] >= 2 and scores[d][0] >= 0.9]
    if kind == "tsv" and "\t" in valid:
        return "\t", scores["\t"][1]
    if sniffed in valid:
        return sniffed, scores[sniffed][1]
    if valid:
        best = max(valid, key=lambda d: (scores[d][0], scores[d][1]))
        return best, scores[best][1]
    d = "\t" if kind == "tsv" else ","
    return d, scores[d][1]


def read_delimited(data, kind, strict):
    text, encoding = decode_text(data)
    if not text.strip():
        raise DataError("empty file")
    body = text
    forced = None
    m = re.match(r"sep=(.)\r?\n", text)            # Excel's "sep=;" first line
    if m:
        forced, body = m.group(1), text[m.end():]
    sample = body[:SNIFF_CHARS]
    if len(body) > SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n") + 1]
    if forced:
        delim, ncols = forced, delimiter_score(sample, forced)[1]
    else:
        delim, ncols = choose_delimiter(sample, kind)
    if not strict and ncols < 2:
        raise DataError("text, but not a table of two or more columns")
    params = dict(delimiter=delim, quotechar='"', doublequote=True, strict=False)

    def raw_rows():
        reader = csv.reader(io.StringIO(body, newline=""), **params)
        try:
            for row in reader:
                yield reader.line_num + (1 if forced else 0), row
        except csv.Error as e:
            raise DataError("line %d: %s" % (reader.line_num + (1 if forced else 0), e))

    header = None
    header_line = 0
    for where, row in raw_rows():
        if row and any(c.strip() for c in row):
            header, header_line = row, where
            break
    if header is None:
        raise DataError("empty file")
    header_is_data = all(NUM_RE.match(c.strip()) for c in header)
    names = (["column_%d" % (i + 1) for i in range(len(header))] if header_is_data
             else unique_names(header))

    def rows():
        for where, row in raw_rows():
            if where < header_line or (where == header_line and not header_is_data):
                continue
            yield "line %d" % where, row

    fmt_name = {"\t": "tsv"}.get(delim, "csv")
    t = Table(fmt_name, names, rows, delimiter=delim, encoding=encoding,
              decimal_comma=(delim != ","))
    if header_is_data:
        t.warnings.append("the first row is all numbers, so it was read as data and the "
                          "columns were named column_1, column_2, ...")
    return t


def json_cell(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return v


def table_from_records(records, what):
    keys = OrderedDict()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError("%s %d is not an object like the others" % (what, i + 1))
        for k in rec:
            keys.setdefault(k, None)
    cols = list(keys)
    names = unique_names(cols)

    def rows():
        for i, rec in enumerate(records):
            yield "%s %d" % (what, i + 1), [json_cell(rec.get(k)) for k in cols]
    return Table("json", names, rows)


def table_from_columns(mapping):
    lengths = {len(v) if isinstance(v, list) else -1 for v in mapping.values()}
    if -1 in lengths or len(lengths) != 1:
        raise DataError("JSON object of columns, but not every column is a list of the same length")
    names = unique_names(list(mapping))
    cols = list(mapping.values())
    n = lengths.pop()

    def rows():
        for i in range(n):
            yield "row %d" % (i + 1), [json_cell(c[i]) for c in cols]
    return Table("json", names, rows)


def table_from_matrix(columns, data):
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise DataError('JSON "data" must be a list of rows (lists)')
    for i, r in enumerate(data):
        if len(r) != len(columns):
            raise DataError("JSON row %d has %d values, but there are %d columns"
                            % (i + 1, len(r), len(columns)))
    names = unique_names(columns)

    def rows():
        for i, r in enumerate(data):
            yield "row %d" % (i + 1), [json_cell(v) for v in r]
    return Table("json", names, rows)


def read_json(data, kind):
    text, encoding = decode_text(data)
    if not text.strip():
        raise DataError("empty file")
    if kind == "jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as e:
                    raise DataError("line %d: invalid JSON: %s" % (n, e))
        t = table_from_records(records, "line")
    else:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise DataError("invalid JSON: %s" % e)
        t = table_from_json(doc)
    t.encoding = encoding
    return t


def table_from_json(doc):
    if isinstance(doc, list):
        if not doc:
            raise DataError("JSON list is empty")
        if all(isinstance(r, dict) for r in doc):
            return table_from_records(doc, "record")
        if all(isinstance(r, list) for r in doc):
            if not all(isinstance(h, str) for h in doc[0]):
                raise DataError("JSON list of rows, but the first row is not a header of names")
            return table_from_matrix(doc[0], doc[1:])
        if not any(isinstance(r, (dict, list)) for r in doc):
            return table_from_columns({"value": doc})
        raise DataError("JSON list mixes records, rows and values")
    if isinstance(doc, dict):
        cols = doc.get("columns")
        if isinstance(cols, list) and ("data" in doc or "rows" in doc):
            return table_from_matrix(cols, doc.get("data", doc.get("rows")))
        if isinstance(cols, dict):
            return table_from_columns(cols)
        for key in ("data", "records", "rows"):
            v = doc.get(key)
            if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
                return table_from_records(v, "record")
        if doc and all(isinstance(v, list) for v in doc.values()):
            return table_from_columns(doc)
    raise DataError('JSON is not a table: expected a list of records, {"columns": [...], '
                    '"data": [[...]]}, or an object of equal-length lists')


def classify(name, head):
    """-> ("table", kind, strict) or ("skip", reason)."""
    ext = os.path.splitext(name)[1].lower()
    if ext in TABLE_EXT:
        kind = TABLE_EXT[ext]
        return ("table", "json" if kind == "json" else kind, True)
    if ext in NONDATA_EXT:
        return ("skip", NONDATA_EXT[ext])
    for magic, what in MAGIC:
        if head.startswith(magic):
            return ("skip", what)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        return ("table", "json", False)
    return ("table", "csv", False)


def load_table(name, data):
    kind_info = classify(name, data[:64])
    if kind_info[0] == "skip":
        return None, kind_info[1]
    _, kind, strict = kind_info
    try:
        if kind in ("json", "jsonl"):
            return read_json(data, kind), None
        return read_delimited(data, kind, strict), None
    except DataError as e:
        if strict:
            raise
        return None, "not a data table (%s)" % e


# ----------------------------------------------------------------------------- analysis

class Column:
    __slots__ = ("name", "missing", "nums", "numeric", "first_text", "raw", "counter",
                 "overflow", "present")

    def __init__(self, name, keep_raw):
        self.name = name
        self.missing = 0
        self.present = 0
        self.nums = array("d")
        self.numeric = True
        self.first_text = None
        self.raw = [] if keep_raw else None
        self.counter = None
        self.overflow = 0


def cell_value(v, decimal_comma):
    """-> (is_missing, number or None, text)."""
    if v is None:
        return True, None, None
    if isinstance(v, bool):
        return False, None, "true" if v else "false"
    if isinstance(v, (int, float)):
        try:
            x = float(v)
        except OverflowError:
            return False, None, str(v)
        if math.isnan(x):
            return True, None, None
        if math.isinf(x):
            return False, None, str(v)
        return False, x, str(v)
    s = str(v).strip()
    if len(s) <= 4 and s.lower() in MISSING:
        return True, None, None
    if NUM_RE.match(s):
        x = float(s)
        return (False, x, s) if math.isfinite(x) else (False, None, s)
    if decimal_comma and NUM_COMMA_RE.match(s):
        return False, float(s.replace(",", ".")), s
    return False, None, s


def normalized_rows(table):
    ncol = len(table.header)
    short = 0
    for where, row in table.rows():
        if not row or (isinstance(row[0], str) and len(row) == 1 and ncol > 1 and not row[0].strip()):
            continue
        if len(row) != ncol:
            if len(row) > ncol:
                extra = row[ncol:]
                if any(c is not None and str(c).strip() for c in extra):
                    raise DataError("%s has %d fields, but the header has %d (ragged rows)"
                                    % (where, len(row), ncol))
                row = row[:ncol]
            else:
                short += 1
                row = list(row) + [None] * (ncol - len(row))
        yield row
    if short:
        table.warnings.append("%d row(s) had fewer fields than the header; the missing "
                              "fields count as missing values" % short)


def group_candidates(names, wanted):
    """Names that may hold groups: params' group_column first, then names like GROUP_WORDS."""
    out = []
    if wanted is not None:
        out += [n for n in names if n == wanted] or [n for n in names if n.lower() == wanted.lower()]
    for word in GROUP_WORDS:
        for n in names:
            tokens = [tk for tk in re.split(r"[^0-9a-z]+", n.lower()) if tk]
            if any(tk == word or tk == word + "s" or (len(word) >= 5 and tk.endswith(word))
                   or tk.startswith(word + "_") for tk in tokens) and n not in out:
                out.append(n)
    return out


def is_id_name(name):
    """Identifier columns (id, subject_id, Sample ID, ...) are not compared between groups."""
    return "id" in [tk for tk in re.split(r"[^0-9a-z]+", name.lower()) if tk]


def analyse(table, params):
    names = table.header
    wanted = params.get("group_column")
    candidates = group_candidates(names, wanted)
    cols = [Column(n, n in candidates) for n in names]
    dc = table.decimal_comma
    nrows = 0

    # pass 1: types, missing values, numbers aligned with rows (NaN = missing), raw group labels
    nan = float("nan")
    for row in normalized_rows(table):
        nrows += 1
        for c, v in zip(cols, row):
            missing, x, text = cell_value(v, dc)
            if missing:
                c.missing += 1
                if c.numeric:
                    c.nums.append(nan)
            else:
                c.present += 1
                if c.numeric:
                    if x is None:
                        c.numeric = False
                        c.nums = None
                        c.first_text = text
                    else:
                        c.nums.append(x)
            if c.raw is not None:
                c.raw.append(None if missing else text)
    if nrows == 0:
        raise DataError("no data rows (only a header)" if names else "no data rows")

    # pass 2 (only with text columns): value counts
    textcols = [(i, c) for i, c in enumerate(cols) if not c.numeric]
    if textcols:
        for c in cols:
            if not c.numeric:
                c.counter = Counter()
        for row in normalized_rows(table):
            for i, c in textcols:
                missing, _, text = cell_value(row[i], dc)
                if missing:
                    continue
                cnt = c.counter
                if text in cnt:
                    cnt[text] += 1
                elif len(cnt) < CAT_CAP:
                    cnt[text] = 1
                else:
                    c.overflow += 1

    result = OrderedDict()
    result["rows"] = nrows
    result["columns"] = []
    for c in cols:
        info = OrderedDict([("name", c.name)])
        if c.present == 0:
            info["type"] = "empty"
            info["count"] = 0
            info["missing"] = c.missing
        elif c.numeric:
            xs = [x for x in c.nums if x == x]
            info["type"] = "numeric"
            info.update(describe(xs))
            info["missing"] = c.missing
            info.move_to_end("missing", last=False)
            info.move_to_end("count", last=False)
            info.move_to_end("type", last=False)
            info.move_to_end("name", last=False)
        else:
            info["type"] = "categorical"
            info["count"] = c.present
            info["missing"] = c.missing
            info["distinct"] = len(c.counter)
            if c.overflow:
                info["distinct_capped"] = True
                info["values_not_tracked"] = c.overflow
            info["top"] = [OrderedDict([("value", v), ("count", k)])
                           for v, k in c.counter.most_common(TOP_N)]
        result["columns"].append(info)

    # group column: params first, then the first name-matching column with 2..MAX_GROUPS labels
    group = None
    notes = []
    if wanted is not None and not any(n == wanted or n.lower() == wanted.lower() for n in names):
        notes.append("group_column %r is not a column of this file; looked for one by name" % wanted)
    for cand in candidates:
        c = cols[names.index(cand)]
        labels = OrderedDict()
        for g in c.raw:
            if g is not None:
                labels[g] = labels.get(g, 0) + 1
        ok = 2 <= len(labels) <= MAX_GROUPS and len(labels) < c.present
        if ok:
            group = (c, labels)
            break
        if wanted is not None and cand.lower() == str(wanted).lower():
            notes.append("group_column %r has %d distinct values (need 2..%d, fewer than the rows)"
                         % (cand, len(labels), MAX_GROUPS))
    table.warnings.extend(notes)

    result["group_column"] = None
    result["groups"] = []
    result["comparisons"] = []
    if group is not None:
        gcol, labels = group
        result["group_column"] = gcol.name
        result["groups"] = [OrderedDict([("label", g), ("rows", n)]) for g, n in labels.items()]
        result["rows_without_group"] = gcol.missing
        order = list(labels)
        for c in cols:
            if not c.numeric or c is gcol or c.present == 0 or is_id_name(c.name):
                continue
            per = OrderedDict((g, []) for g in order)
            for g, x in zip(gcol.raw, c.nums):
                if g is not None and x == x:
                    per[g].append(x)
            gstats = []
            for g, xs in per.items():
                m, sd = mean_sd(xs)
                gstats.append(OrderedDict([
                    ("label", g), ("n", len(xs)), ("mean", m), ("sd", sd),
                    ("se", sd / math.sqrt(len(xs)) if sd is not None else None),
                    ("median", quantile(sorted(xs), 0.5) if xs else None)]))
            tests = []
            for i in range(len(order)):
                for j in range(i + 1, len(order)):
                    a, b = per[order[i]], per[order[j]]
                    if len(a) < 2 or len(b) < 2:
                        continue
                    res = welch(a, b)
                    res["a"], res["b"] = order[i], order[j]
                    res.move_to_end("b", last=False)
                    res.move_to_end("a", last=False)
                    tests.append(res)
            if len(order) > 2 and tests:
                for res, adj in zip(tests, holm([r["p"] for r in tests])):
                    res["p_holm"] = adj
            result["comparisons"].append(OrderedDict([
                ("column", c.name), ("groups", gstats), ("tests", tests)]))
    return result, cols


# ----------------------------------------------------------------------------- SVG charts

def nice_ticks(lo, hi, n=5):
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / n
    if not (math.isfinite(raw) and raw > 0):
        return [lo, hi]
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if step >= raw:
            break
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    if not 0 < last - first <= 50:
        return [lo, hi]
    return [k * step for k in range(first, last + 1)]


def svg_open(w, h, title):
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'role="img" font-family="sans-serif" font-size="11"><title>%s</title>'
            '<rect width="100%%" height="100%%" fill="#fff"/>' % (w, h, w, h, esc(title)))


def short(s, n):
    s = str(s)
    return s if len(s) <= n else s[:n - 1] + "…"


def svg_histogram(col_name, edges, counts, n, missing):
    w, h, ml, mr, mt, mb = 480, 300, 56, 16, 40, 44
    pw, ph = w - ml - mr, h - mt - mb
    lo, hi = edges[0], edges[-1]
    yt = nice_ticks(0, max(counts) or 1, 5)
    ymax = yt[-1]
    X = lambda v: ml + (v - lo) / (hi - lo) * pw
    Y = lambda v: mt + ph - v / ymax * ph
    out = [svg_open(w, h, "Histogram of %s" % col_name)]
    out.append('<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>'
               % (ml, esc(short(col_name, 60))))
    out.append('<text x="%d" y="32" fill="#555">n = %d, missing = %d</text>' % (ml, n, missing))
    for v in yt:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (ml, ml + pw, Y(v), Y(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (ml - 4, Y(v) + 4, esc(fmt(v))))
    for i, k in enumerate(counts):
        x0, x1 = X(edges[i]), X(edges[i + 1])
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7fb5" stroke="#fff">'
                   '<title>%s to %s: %d</title></rect>'
                   % (x0, Y(k), max(x1 - x0, 0.5), mt + ph - Y(k), esc(fmt(edges[i])),
                      esc(fmt(edges[i + 1])), k))
    for v in nice_ticks(lo, hi, 5):
        if lo - 1e-9 * abs(hi - lo) <= v <= hi + 1e-9 * abs(hi - lo):
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333"/>'
                       % (X(v), X(v), mt + ph, mt + ph + 4))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                       % (X(v), mt + ph + 16, esc(fmt(v))))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>' % (ml, ml + pw, mt + ph, mt + ph))
    out.append('<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>'
               % (ml + pw // 2, h - 6, esc(short(col_name, 60))))
    out.append('<text transform="translate(14 %d) rotate(-90)" text-anchor="middle" fill="#555">count</text>'
               % (mt + ph // 2))
    out.append("</svg>")
    return "".join(out)


def svg_group_bars(col_name, group_name, gstats, bars, tests):
    k = len(gstats)
    w, h, ml, mr, mt, mb = max(360, 90 + 56 * k), 320, 64, 16, 48, 60
    pw, ph = w - ml - mr, h - mt - mb
    pts = []
    for g in gstats:
        if g["mean"] is None:
            continue
        e = g[bars] or 0.0
        pts += [g["mean"] - e, g["mean"] + e]
    lo, hi = min(pts + [0.0]), max(pts + [0.0])
    yt = nice_ticks(lo, hi, 5)
    ylo, yhi = yt[0], yt[-1]
    Y = lambda v: mt + ph - (v - ylo) / (yhi - ylo) * ph
    out = [svg_open(w, h, "%s by %s" % (col_name, group_name))]
    out.append('<text x="%d" y="18" font-size="13" font-weight="bold">%s by %s</text>'
               % (ml, esc(short(col_name, 40)), esc(short(group_name, 30))))
    sub = "bars: mean ± %s" % bars.upper()
    if len(tests) == 1 and tests[0]["p"] is not None:
        sub += "; Welch t = %s, df = %s, p = %s" % (fmt(tests[0]["t"]), fmt(tests[0]["df"]),
                                                      fmt_p(tests[0]["p"]))
    out.append('<text x="%d" y="34" fill="#555">%s</text>' % (ml, esc(sub)))
    for v in yt:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (ml, ml + pw, Y(v), Y(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (ml - 4, Y(v) + 4, esc(fmt(v))))
    slot = pw / k
    for i, g in enumerate(gstats):
        cx = ml + slot * (i + 0.5)
        bw = min(48.0, slot * 0.6)
        if g["mean"] is not None:
            y0, y1 = Y(0.0), Y(g["mean"])
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7fb5">'
                       '<title>%s: mean %s, SD %s, n %d</title></rect>'
                       % (cx - bw / 2, min(y0, y1), bw, max(abs(y1 - y0), 0.5), esc(g["label"]),
                          esc(fmt(g["mean"])), esc(fmt(g["sd"])), g["n"]))
            e = g[bars]
            if e:
                ya, yb = Y(g["mean"] - e), Y(g["mean"] + e)
                out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>' % (cx, cx, ya, yb))
                for yy in (ya, yb):
                    out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>'
                               % (cx - 6, cx + 6, yy, yy))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (cx, mt + ph + 16, esc(short(g["label"], 14))))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">n=%d</text>'
                   % (cx, mt + ph + 30, g["n"]))
    out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>' % (ml, ml + pw, Y(0.0), Y(0.0)))
    out.append('<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>'
               % (ml + pw // 2, h - 8, esc(short(group_name, 50))))
    out.append('<text transform="translate(14 %d) rotate(-90)" text-anchor="middle" fill="#555">%s</text>'
               % (mt + ph // 2, esc(short(col_name, 40))))
    out.append("</svg>")
    return "".join(out)


def slug(s, limit=60):
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")
    return (s or "x")[:limit]


class ChartWriter:
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


def make_charts(fname, result, cols, params, charts):
    stem = slug(os.path.splitext(fname)[0], 40)
    made = []       # (relpath, svg, caption)
    numeric = [c for c in cols if c.numeric and c.present > 0]
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
    bars = params.get("error_bars", "sd")
    for comp in result["comparisons"][:MAX_CHART_COLUMNS]:
        if not any(g["n"] for g in comp["groups"]):
            continue
        svg = svg_group_bars(comp["column"], result["group_column"], comp["groups"], bars, comp["tests"])
        rel = charts.write("%s-%s-by-%s" % (stem, slug(comp["column"]), slug(result["group_column"], 30)), svg)
        made.append((rel, svg, "%s by %s" % (comp["column"], result["group_column"])))
    if len(numeric) > MAX_CHART_COLUMNS:
        result.setdefault("warnings", []).append(
            "charts drawn for the first %d numeric columns only" % MAX_CHART_COLUMNS)
    result["charts"] = [m[0] for m in made]
    return made


# ----------------------------------------------------------------------------- report

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child,td.l,th.l{text-align:left}th{background:#f3f3f3}
.err{color:#a00}.warn{color:#8a5a00}.muted{color:#666}.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #eee;padding:4px}figcaption{font-size:12px;color:#555}
code{background:#f5f5f5;padding:0 3px}
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


def render_report(summary, inline_charts):
    title = summary["params"].get("title") or "labbox report"
    o = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
         '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
         'style-src \'unsafe-inline\'; img-src data:">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         "<title>%s</title><style>%s</style></head><body>" % (esc(title), CSS),
         "<h1>%s</h1>" % esc(title),
         '<p class="muted">job <code>%s</code> on backend <code>%s</code>, %s UTC, %s %s. '
         'Machine-readable results: <a href="summary.json">summary.json</a>.</p>'
         % (esc(summary["job_id"]), esc(summary["backend"]), esc(summary["generated_at"]),
            esc(AGENT_NAME), esc(AGENT_VERSION))]
    for w in summary["warnings"]:
        o.append('<p class="warn">%s</p>' % esc(w))
    o.append("<h2>Inputs</h2>")
    rows = []
    for f in summary["files"]:
        if f["status"] == "analysed":
            what = "analysed: %s, %d rows, %d columns" % (f["format"].upper(), f["rows"], len(f["columns"]))
        elif f["status"] == "error":
            what = "could not be read: %s" % f["error"]
        elif f["status"] == "parameters":
            what = "parameters"
        else:
            what = "not analysed: %s" % f["reason"]
        rows.append((f["name"], f["bytes"], what))
    o.append(html_table(["file", "bytes", "result"], rows, left=(0, 2)))

    for f in summary["files"]:
        if f["status"] == "error":
            o.append('<h2>%s</h2><p class="err">Could not be read: %s</p>' % (esc(f["name"]), esc(f["error"])))
            continue
        if f["status"] != "analysed":
            continue
        o.append("<h2>%s</h2>" % esc(f["name"]))
        delim = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(f.get("delimiter"), None)
        o.append('<p class="muted">%s%s, encoding %s: %d rows, %d columns.</p>'
                 % (esc(f["format"].upper()), ", %s-delimited" % delim if delim else "",
                    esc(f.get("encoding") or "?"), f["rows"], len(f["columns"])))
        for w in f.get("warnings", []):
            o.append('<p class="warn">%s</p>' % esc(w))
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
        if f.get("group_column") is not None:
            o.append("<h3>Groups by %s</h3>" % esc(f["group_column"]))
            o.append("<p>%s</p>" % esc(", ".join("%s (%d rows)" % (g["label"], g["rows"]) for g in f["groups"])))
            for comp in f["comparisons"]:
                o.append("<h4>%s</h4>" % esc(comp["column"]))
                o.append(html_table(["group", "n", "mean", "SD", "SE", "median"],
                                    [(g["label"], g["n"], fmt(g["mean"]), fmt(g["sd"]), fmt(g["se"]),
                                      fmt(g["median"])) for g in comp["groups"]]))
                if comp["tests"]:
                    holm_col = any("p_holm" in t for t in comp["tests"])
                    head = ["comparison", "mean diff", "Welch t", "df", "p"] + (["p (Holm)"] if holm_col else []) + ["Cohen's d"]
                    trs = []
                    for t in comp["tests"]:
                        r = ["%s − %s" % (t["a"], t["b"]), fmt(t["mean_diff"]), fmt(t["t"]), fmt(t["df"]), fmt_p(t["p"])]
                        if holm_col:
                            r.append(fmt_p(t.get("p_holm")))
                        r.append(fmt(t["cohen_d"]))
                        trs.append(r)
                    o.append(html_table(head, trs))
        charts = inline_charts.get(f["name"], [])
        if charts:
            o.append('<h3>Charts</h3><div class="charts">')
            for rel, svg, caption in charts:
                o.append('<figure>%s<figcaption>%s (<a href="%s">SVG</a>)</figcaption></figure>'
                         % (svg, esc(caption), esc(rel)))
            o.append("</div>")
    o.append("</body></html>\n")
    return "".join(o)


# ----------------------------------------------------------------------------- main

def load_params(path, summary):
    params = {}
    if not os.path.isfile(path):
        return params
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(1024 * 1024).decode("utf-8-sig"))
    except (OSError, ValueError) as e:
        summary["warnings"].append("params.json ignored: %s" % e)
        return params
    if not isinstance(doc, dict):
        summary["warnings"].append("params.json ignored: not a JSON object")
        return params
    known = {"group_column", "title", "error_bars", "bins"}
    unknown = sorted(k for k in doc if k not in known)
    if unknown:
        say("ignoring unknown param(s): %s" % ", ".join(logsafe(k, 40) for k in unknown))
    v = doc.get("group_column")
    if isinstance(v, str) and v.strip():
        params["group_column"] = v.strip()
    elif v is not None:
        summary["warnings"].append("params.json: group_column must be a non-empty string; ignored")
    v = doc.get("title")
    if isinstance(v, str) and v.strip():
        params["title"] = v.strip()[:200]
    elif v is not None:
        summary["warnings"].append("params.json: title must be a string; ignored")
    v = doc.get("error_bars")
    if isinstance(v, str) and v.lower() in ("sd", "se"):
        params["error_bars"] = v.lower()
    elif v is not None:
        summary["warnings"].append('params.json: error_bars must be "sd" or "se"; using "sd"')
    v = doc.get("bins")
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 200:
        params["bins"] = v
    elif v is not None:
        summary["warnings"].append("params.json: bins must be an integer 1..200; using the default")
    for w in summary["warnings"]:
        say(w)
    return params


def process_file(name, path, params, charts):
    entry = OrderedDict([("name", name)])
    size = os.path.getsize(path)
    entry["bytes"] = size
    say("reading %s (%d bytes)" % (logsafe(name), size))
    if size > MAX_INPUT_BYTES:
        raise DataError("too large for the default agent (%d bytes)" % size)
    with open(path, "rb") as f:
        data = f.read()
    table, skip_reason = load_table(name, data)
    if table is None:
        entry["status"] = "not_analysed"
        entry["reason"] = skip_reason
        say("%s: not analysed (%s)" % (logsafe(name), skip_reason))
        return entry, []
    result, cols = analyse(table, params)
    entry["status"] = "analysed"
    entry["format"] = table.format
    if table.delimiter is not None:
        entry["delimiter"] = table.delimiter
    entry["encoding"] = table.encoding
    entry.update(result)
    say("%s: %d rows, %d columns" % (logsafe(name), result["rows"], len(result["columns"])))
    made = make_charts(name, entry, cols, params, charts)
    entry["warnings"] = table.warnings + entry.get("warnings", [])
    for w in entry["warnings"]:
        say("%s: note: %s" % (logsafe(name), logsafe(w, 200)))
    if result["group_column"] is not None:
        say("%s: groups by %s: %s" % (logsafe(name), logsafe(result["group_column"]),
                                      ", ".join(logsafe(g["label"], 30) for g in result["groups"])))
    printed = 0
    total = sum(len(c["tests"]) for c in result["comparisons"])
    for comp in result["comparisons"]:
        for t in comp["tests"]:
            if printed >= MAX_LOG_TESTS:
                break
            printed += 1
            if t["t"] is None:
                say("%s: Welch t-test %s by %s (%s vs %s): %s" % (
                    logsafe(name), logsafe(comp["column"]), logsafe(result["group_column"]),
                    logsafe(t["a"], 30), logsafe(t["b"], 30), t.get("note", "undefined")))
                continue
            say("%s: Welch t-test %s by %s (%s vs %s): t=%.4f, df=%.2f, p=%s, d=%s" % (
                logsafe(name), logsafe(comp["column"]), logsafe(result["group_column"]),
                logsafe(t["a"], 30), logsafe(t["b"], 30), t["t"], t["df"], fmt_p(t["p"]),
                fmt(t["cohen_d"])))
    if total > printed:
        say("%s: ... %d more tests in summary.json" % (logsafe(name), total - printed))
    return entry, made


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

    summary = OrderedDict([
        ("agent", AGENT_NAME), ("version", AGENT_VERSION), ("job_id", job), ("backend", backend),
        ("generated_at", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("params", {}), ("warnings", []), ("files", [])])
    os.makedirs(out_dir, exist_ok=True)

    fatal = None
    try:
        entries = sorted(os.scandir(in_dir), key=lambda e: e.name)
    except OSError as e:
        entries = []
        fatal = "cannot read the input directory %s: %s" % (in_dir, e.strerror or e)
    params = {}
    if any(e.name == "params.json" for e in entries):
        params = load_params(os.path.join(in_dir, "params.json"), summary)
    summary["params"] = params

    charts = ChartWriter(out_dir)
    inline = {}
    analysed, failed, skipped = 0, [], 0
    for e in entries:
        if e.name == "params.json":
            summary["files"].append(OrderedDict([("name", e.name), ("bytes", e.stat(follow_symlinks=False).st_size),
                                                 ("status", "parameters")]))
            continue
        if not e.is_file(follow_symlinks=False):
            summary["files"].append(OrderedDict([("name", e.name), ("bytes", 0), ("status", "not_analysed"),
                                                 ("reason", "not a regular file")]))
            skipped += 1
            continue
        try:
            entry, made = process_file(e.name, e.path, params, charts)
        except DataError as err:
            entry = OrderedDict([("name", e.name), ("bytes", e.stat(follow_symlinks=False).st_size),
                                 ("status", "error"), ("error", str(err))])
            made = []
        except Exception as err:   # one odd file must not stop the others
            if not isinstance(err, (OSError, MemoryError, RecursionError, ArithmeticError, ValueError)):
                traceback.print_exc()
            entry = OrderedDict([("name", e.name), ("bytes", e.stat(follow_symlinks=False).st_size),
                                 ("status", "error"), ("error", "%s: %s" % (type(err).__name__, err))])
            made = []
        if entry["status"] == "error":
            failed.append(entry)
            warn("error: %s: %s" % (logsafe(e.name), logsafe(entry["error"], 300)))
        elif entry["status"] == "analysed":
            analysed += 1
            inline[e.name] = made
        else:
            skipped += 1
        summary["files"].append(entry)

    if fatal is None and analysed == 0:
        if failed:
            fatal = "no input could be read: %s" % "; ".join(
                "%s: %s" % (logsafe(f["name"]), logsafe(f["error"], 200)) for f in failed)
        elif skipped:
            fatal = "none of the %d input file(s) is a data table (CSV, TSV or JSON)" % skipped
        else:
            fatal = "no input files in %s" % in_dir
    if fatal is not None:
        summary["warnings"].append(fatal)

    summary_path = os.path.join(out_dir, "summary.json")
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(clean_json(summary), f, indent=2, allow_nan=False)
        f.write("\n")
    say("wrote %s" % shown(summary_path))
    report_path = os.path.join(out_dir, "report.html")
    with open(report_path, "w", encoding="utf-8", errors="replace") as f:
        f.write(render_report(summary, inline))
    say("wrote %s" % shown(report_path))

    if fatal is not None:
        warn("error: %s" % fatal)
        return 2
    say("done: %d analysed, %d not analysed, %d could not be read" % (analysed, skipped, len(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
