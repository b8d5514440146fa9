"""Inputs of the default agent: which files are data tables, and reading them (CSV, TSV, JSON,
JSON Lines, .xlsx workbooks) into Table objects. Nothing here prints or writes.

load(name, data) -> [Part]: one Part per table found in a file (one per sheet of a workbook), or
one Part that says why the file was not analysed. A file that should be a table but cannot be
read raises DataError.
"""

import csv
import io
import json
import os
import re
from collections import OrderedDict

import xlsx

NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
SNIFF_CHARS = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_SHEETS = 50            # sheets of one workbook analysed
HEADER_SEARCH = 20         # non-empty rows of a sheet searched for its header

TABLE_EXT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}
NONDATA_EXT = {
    ".png": "PNG image", ".jpg": "JPEG image", ".jpeg": "JPEG image", ".gif": "GIF image",
    ".bmp": "BMP image", ".tif": "TIFF image", ".tiff": "TIFF image", ".webp": "WebP image",
    ".svg": "SVG image", ".pdf": "PDF document", ".zip": "ZIP archive", ".gz": "gzip file",
    ".tgz": "tar archive", ".tar": "tar archive", ".xz": "xz file", ".bz2": "bzip2 file",
    ".xls": "Excel 97-2003 workbook (save it as .xlsx or CSV to analyse it)",
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
    (b"\xd0\xcf\x11\xe0", "OLE document (XLS/DOC, or an encrypted workbook)"), (b"\x7fELF", "ELF executable"),
    (b"\x89HDF", "HDF5 file"), (b"PAR1", "Parquet file"),
)
# bytes that may appear in text: printable ASCII, tab, LF, CR and anything >= 0x80 (UTF-8, cp1252)
TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r" + bytes(range(128, 256))


class DataError(Exception):
    """An input that cannot be read as a table; the message is shown to the user."""


class Part:
    """One table of an input file (sheet: its sheet's name, for workbooks), or why there is none."""

    def __init__(self, table=None, sheet=None, skipped=None, error=None):
        self.table, self.sheet, self.skipped, self.error = table, sheet, skipped, error


class Table:
    def __init__(self, fmt_name, header, rows, delimiter=None, encoding=None, decimal_comma=False):
        """rows: a callable that yields (where, list of cells) afresh on every call (analysis
        reads a table twice); cells are None, bool, int, float or str."""
        self.format = fmt_name
        self.header = header
        self.rows = rows
        self.delimiter = delimiter
        self.encoding = encoding
        self.decimal_comma = decimal_comma
        self.sheet = None             # the sheet's name, for a workbook's table
        self.warnings = []
        self.notes = lambda: []       # notes known once the rows were read


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
        if kind == "xlsx" and head.startswith(b"\xd0\xcf\x11\xe0"):
            return ("skip", "a password-protected Excel workbook (or an .xls named %s): remove the "
                            "password or save it as .xlsx or CSV to analyse it" % ext)
        return ("table", kind, True)
    if ext in NONDATA_EXT:
        return ("skip", NONDATA_EXT[ext])
    for magic, what in MAGIC:
        if head.startswith(magic):
            return ("table", "xlsx", False) if magic == b"PK\x03\x04" else ("skip", what)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        return ("table", "json", False)
    return ("table", "csv", False)


def load(name, data):
    """-> [Part]: the tables of one input file, or why it has none. Raises DataError when a file
    named like a table (.csv, .json, .xlsx, ...) cannot be read."""
    kind_info = classify(name, data[:64])
    if kind_info[0] == "skip":
        return [Part(skipped=kind_info[1])]
    _, kind, strict = kind_info
    try:
        if kind == "xlsx":
            return read_xlsx(data)
        if kind in ("json", "jsonl"):
            return [Part(read_json(data, kind))]
        return [Part(read_delimited(data, kind, strict))]
    except DataError as e:
        if strict:
            raise
        return [Part(skipped="ZIP archive (not an Excel workbook)" if kind == "xlsx"
                     else "not a data table (%s)" % e)]


# ----------------------------------------------------------------------------- workbooks

def read_xlsx(data):
    """A Part for every sheet of an .xlsx workbook (see xlsx.py), in the workbook's order."""
    try:
        book = xlsx.Workbook(data)
    except xlsx.XlsxError as e:
        raise DataError(str(e))
    if not book.sheets:
        raise DataError("the workbook lists no sheets")
    parts = []
    for k, sheet in enumerate(book.sheets):
        if k >= MAX_SHEETS:
            parts.append(Part(sheet="(%d more)" % (len(book.sheets) - k),
                              skipped="only the first %d sheets are analysed" % MAX_SHEETS))
            break
        if sheet.kind != "worksheet" or sheet.part is None:
            what = "a chart sheet" if sheet.kind == "chartsheet" else "not a worksheet (%s)" % (
                "its part is missing" if sheet.part is None else sheet.kind)
            parts.append(Part(sheet=sheet.name, skipped=what))
            continue
        try:
            table = sheet_table(book, sheet)
        except DataError as e:
            parts.append(Part(sheet=sheet.name, error=str(e)))
            continue
        if table is None:
            parts.append(Part(sheet=sheet.name, skipped="empty sheet"))
        else:
            parts.append(Part(table, sheet=sheet.name))
    return parts


def cell_text(v):
    if v is None or isinstance(v, xlsx.CellError):
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return "%d" % v
    return str(v)


def sheet_rows(book, sheet):
    """book.rows(sheet), its XlsxError as DataError."""
    try:
        for item in book.rows(sheet):
            yield item
    except xlsx.XlsxError as e:
        raise DataError(str(e))


def find_header(book, sheet):
    """(row number of the header, its cells, first non-empty row number) or None for an empty
    sheet. The header is the first of the first HEADER_SEARCH non-empty rows with two or more
    values (a title above it is skipped), else the first non-empty row."""
    first = None
    seen = 0
    for rownum, values in sheet_rows(book, sheet):
        filled = sum(1 for v in values if v is not None and cell_text(v).strip())
        if not filled:
            continue
        if first is None:
            first = (rownum, values)
        if filled >= 2:
            return rownum, values, first[0]
        seen += 1
        if seen >= HEADER_SEARCH:
            break
    return None if first is None else (first[0], first[1], first[0])


def sheet_table(book, sheet):
    """A Table over one worksheet, or None when it has no values."""
    found = find_header(book, sheet)
    if found is None:
        return None
    header_row, header, first_row = found
    header_is_data = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in header)
    width = len(header)
    names = (["column_%d" % (i + 1) for i in range(width)] if header_is_data
             else unique_names([cell_text(v) for v in header]))
    counts = {"errors": 0, "outside": 0}

    def rows():
        errors = outside = 0
        for rownum, values in sheet_rows(book, sheet):
            if rownum < header_row or (rownum == header_row and not header_is_data):
                continue
            outside += sum(1 for v in values[width:] if v is not None)
            cells = []
            for v in values[:width]:
                if isinstance(v, xlsx.CellError):
                    errors += 1
                    v = None
                cells.append(v)
            yield "row %d" % rownum, cells + [None] * (width - len(cells))
        counts["errors"], counts["outside"] = errors, outside

    t = Table("xlsx", names, rows)
    t.sheet = sheet.name
    t.notes = lambda: sheet_notes(sheet, header_row, first_row, header_is_data, counts)
    return t


def sheet_notes(sheet, header_row, first_row, header_is_data, counts):
    notes = []
    if sheet.state != "visible":
        notes.append("this sheet is hidden in Excel")
    if header_row > first_row:
        notes.append("rows %d to %d, above the header in row %d, were skipped (a title?)"
                     % (first_row, header_row - 1, header_row))
    if header_is_data:
        notes.append("the first row is all numbers, so it was read as data and the columns were "
                     "named column_1, column_2, ...")
    if counts["errors"]:
        notes.append("%d cell(s) hold an Excel error (#DIV/0!, #N/A, ...) and count as missing values"
                     % counts["errors"])
    if counts["outside"]:
        notes.append("%d value(s) right of the last column with a header were ignored" % counts["outside"])
    return notes
