"""Reads .xlsx workbooks (Office Open XML spreadsheets, ECMA-376) with the standard library only.

An .xlsx file is a zip of XML parts: xl/workbook.xml lists the sheets (and the date system),
xl/_rels/workbook.xml.rels maps them to their parts, xl/sharedStrings.xml holds the text of
cells of type "s", xl/styles.xml the number formats that make a number a date. Parsing works on
bytes already in memory (no file I/O) and streams each sheet, so a large sheet is never held
whole. Cell values come out as None (empty), bool, int, float, str, or CellError (an Excel error
such as #DIV/0!). Numbers formatted as dates or times become ISO 8601 text ("2024-03-01",
"2024-03-01 13:45:00", "13:45:00"), in the 1900 (with Excel's phantom 1900-02-29) or 1904 date
system the workbook declares. Formula cells give their cached value. Transitional and Strict
(ISO/IEC 29500) namespaces are both understood: elements are matched by their local names.

Hostile input: a part that declares a DOCTYPE (never needed in .xlsx; entity expansion lives
there) is refused, and every part's inflated size is capped at max_part_bytes.
"""

import datetime
import io
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile

MAX_PART_BYTES = 256 * 1024 * 1024
MAX_SHARED_CHARS = 64 * 1024 * 1024
MAX_COLUMNS = 16384                         # Excel's own limit (XFD)
CHUNK = 64 * 1024
DOCTYPE_MARKS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))
CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d+)\Z")
XSTRING_ESC = re.compile(r"_x([0-9A-Fa-f]{4})_")
# built-in number formats that show dates or times (ECMA-376 Part 1, 18.8.30; 27-36 and 50-58
# are the East Asian date formats)
DATE_FORMAT_IDS = frozenset(list(range(14, 23)) + list(range(27, 37)) + [45, 46, 47] + list(range(50, 59)))
TIME_IDS = frozenset([18, 19, 20, 21, 45, 47])
ELAPSED_IDS = frozenset([46])
EPOCH_1900 = datetime.datetime(1899, 12, 30)   # serial 61 = 1900-03-01 (after the phantom 02-29)
EPOCH_1904 = datetime.datetime(1904, 1, 1)
MAX_SERIAL = 2958465.99999                    # 9999-12-31


class XlsxError(Exception):
    """The workbook (or one sheet) cannot be read; the message is shown to the user."""


class CellError(str):
    """An Excel error value (#DIV/0!, #N/A, #VALUE!, ...)."""


class Sheet:
    def __init__(self, name, state, kind, part):
        self.name = name
        self.state = state        # "visible", "hidden" or "veryHidden"
        self.kind = kind          # "worksheet", "chartsheet" or another relationship type
        self.part = part          # path of its XML inside the zip, or None


def local(tag):
    return tag.rsplit("}", 1)[-1]


def attr(el, name):
    """An attribute by local name, whatever its namespace."""
    for k, v in el.attrib.items():
        if k == name or k.endswith("}" + name):
            return v
    return None


class _Capped(io.RawIOBase):
    """A zip member read through a size cap and a DOCTYPE check."""

    def __init__(self, raw, name, cap):
        self.raw, self.name, self.cap, self.total, self.tail = raw, name, cap, 0, b""

    def readable(self):
        return True

    def readinto(self, buf):
        data = self.raw.read(min(len(buf), CHUNK))
        self.total += len(data)
        if self.total > self.cap:
            raise XlsxError("%s inflates to more than %d MiB" % (self.name, self.cap >> 20))
        window = self.tail + data
        if any(m in window for m in DOCTYPE_MARKS):
            raise XlsxError("%s declares a DOCTYPE, which .xlsx files never do" % self.name)
        self.tail = window[-24:]
        buf[:len(data)] = data
        return len(data)


class Workbook:
    def __init__(self, data, max_part_bytes=MAX_PART_BYTES):
        self.max_part_bytes = max_part_bytes
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            self.names = set(self.zip.namelist())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
            raise XlsxError("not a readable zip archive (%s)" % e)
        book = self._find("xl/workbook.xml")
        if book is None:
            raise XlsxError("a zip archive without xl/workbook.xml: not an Excel workbook")
        self.date1904 = False
        sheets = []
        for el in self._elements(book):
            tag = local(el.tag)
            if tag == "workbookPr":
                self.date1904 = (attr(el, "date1904") or "").lower() in ("1", "true")
            elif tag == "sheet":
                sheets.append((attr(el, "name") or "", attr(el, "state") or "visible", attr(el, "id")))
        rels = self._relationships(book)
        self.sheets = []
        for name, state, rid in sheets:
            kind, part = rels.get(rid, ("missing", None))
            self.sheets.append(Sheet(name, state, kind, part))
        self.shared = self._shared_strings(rels)
        self.date_styles = self._styles(rels)

    # -- parts

    def _find(self, path):
        """The zip member for a part name (case-insensitively, as Office itself does)."""
        if path in self.names:
            return path
        low = path.lower()
        return next((n for n in self.names if n.lower() == low), None)

    def _open(self, member):
        try:
            raw = self.zip.open(member)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError) as e:
            raise XlsxError("%s cannot be read (%s)" % (member, e))
        return io.BufferedReader(_Capped(raw, member, self.max_part_bytes))

    def _events(self, member, events=("end",)):
        """iterparse over one part; zip and XML damage become XlsxError."""
        try:
            with self._open(member) as f:
                for ev, el in ET.iterparse(f, events):
                    yield ev, el
        except ET.ParseError as e:
            raise XlsxError("%s is not well-formed XML (%s)" % (member, e))
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as e:
            raise XlsxError("%s cannot be read (%s)" % (member, e))

    def _elements(self, member):
        return (el for _, el in self._events(member))

    def _relationships(self, book):
        """{relationship id: (type's last word, target part)} of the workbook part."""
        base = posixpath.dirname(book)
        rels_part = self._find(posixpath.join(base, "_rels", posixpath.basename(book) + ".rels"))
        out = {}
        if rels_part is None:
            return out
        for el in self._elements(rels_part):
            if local(el.tag) != "Relationship" or (el.get("TargetMode") or "") == "External":
                continue
            target = el.get("Target") or ""
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
            out[el.get("Id")] = ((el.get("Type") or "").rsplit("/", 1)[-1], self._find(path))
        return out

    def _shared_strings(self, rels):
        part = next((p for kind, p in rels.values() if kind == "sharedStrings" and p), None)
        part = part or self._find("xl/sharedStrings.xml")
        out = []
        if part is None:
            return out
        chars = 0
        parent = None
        for ev, el in self._events(part, ("start", "end")):
            tag = local(el.tag)
            if ev == "start":
                if tag == "sst":
                    parent = el
            elif tag == "si":
                s = rich_text(el)
                chars += len(s)
                if chars > MAX_SHARED_CHARS:
                    raise XlsxError("the shared strings hold more than %d characters" % MAX_SHARED_CHARS)
                out.append(s)
                if parent is not None:
                    parent.remove(el)      # keep memory flat
        return out

    def _styles(self, rels):
        """{index of a cell format (cellXfs) that shows a date or time: "date", "time" or "elapsed"}."""
        part = next((p for kind, p in rels.values() if kind == "styles" and p), None)
        part = part or self._find("xl/styles.xml")
        if part is None:
            return {}
        custom, xfs, in_xfs = {}, [], False
        for ev, el in self._events(part, ("start", "end")):
            tag = local(el.tag)
            if tag == "cellXfs":
                in_xfs = ev == "start"
            elif ev == "end" and tag == "numFmt":
                try:
                    custom[int(el.get("numFmtId"))] = el.get("formatCode") or ""
                except (TypeError, ValueError):
                    pass
            elif ev == "end" and tag == "xf" and in_xfs:
                try:
                    xfs.append(int(el.get("numFmtId") or 0))
                except ValueError:
                    xfs.append(0)
        kinds = ((i, format_kind(fid, custom.get(fid))) for i, fid in enumerate(xfs))
        return {i: kind for i, kind in kinds if kind}

    # -- cells

    def rows(self, sheet):
        """(row number, [values]) for every row of a worksheet that has a cell, in order."""
        if sheet.kind != "worksheet" or sheet.part is None:
            raise XlsxError("sheet %r has no cells (%s)" % (sheet.name, "missing part" if sheet.part is None
                                                             else sheet.kind))
        parent = None
        rownum = 0
        for ev, el in self._events(sheet.part, ("start", "end")):
            tag = local(el.tag)
            if ev == "start":
                if tag == "sheetData":
                    parent = el
                continue
            if tag != "row":
                continue
            r = el.get("r")
            rownum = int(r) if r and r.isdigit() else rownum + 1
            values = self._row_values(el)
            if parent is not None:
                parent.remove(el)      # keep memory flat: the parsed row is done
            if values:
                yield rownum, values

    def _row_values(self, row):
        values = []
        for c in row:
            if local(c.tag) != "c":
                continue
            ref = c.get("r")
            m = CELL_REF.match(ref) if ref else None
            col = column_index(m.group(1)) if m else len(values)
            if col >= MAX_COLUMNS:
                raise XlsxError("cell %s is beyond Excel's last column" % ref)
            if col < len(values):      # duplicate or out-of-order reference: later wins
                values[col] = self._value(c)
                continue
            values.extend([None] * (col - len(values)))
            values.append(self._value(c))
        while values and values[-1] is None:
            values.pop()
        return values

    def _value(self, c):
        t = c.get("t") or "n"
        v = None
        inline = None
        for child in c:
            tag = local(child.tag)
            if tag == "v":
                v = child.text or ""
            elif tag == "is":
                inline = rich_text(child)
        if t == "inlineStr":
            return inline if inline else None
        if v is None:
            return None
        if t == "s":
            try:
                return self.shared[int(v)]
            except (ValueError, IndexError):
                raise XlsxError("a cell refers to shared string %r, which does not exist" % v[:20])
        if t == "str":
            return unescape(v)
        if t == "b":
            return v.strip() in ("1", "true")
        if t == "e":
            return CellError(v.strip())
        if t == "d":
            return iso_text(v.strip())
        return self._number(v.strip(), c.get("s"))

    def _number(self, v, style):
        try:
            x = int(v) if re.match(r"-?\d{1,15}\Z", v) else float(v)
        except ValueError:
            return v or None
        try:
            s = int(style) if style else 0
        except ValueError:
            s = 0
        kind = self.date_styles.get(s)
        return (serial_text(x, self.date1904, kind) or x) if kind else x


def column_index(letters):
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def unescape(s):
    """OOXML's _xHHHH_ escapes (ST_Xstring) decoded."""
    return XSTRING_ESC.sub(lambda m: chr(int(m.group(1), 16)), s) if "_x" in s else s


def rich_text(el):
    """The text of a shared or inline string: its <t>, or its runs' <t>; phonetic runs skipped."""
    parts = []
    for child in el:
        tag = local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if local(t.tag) == "t")
    return unescape("".join(parts))


def format_kind(fid, code):
    """"date", "time" (of day), "elapsed" (a duration such as [h]:mm) or None (a plain number)
    for a cell's number format id and, for ids >= 164, its custom format code."""
    if code is None:
        if fid in ELAPSED_IDS:
            return "elapsed"
        if fid in TIME_IDS:
            return "time"
        return "date" if fid in DATE_FORMAT_IDS else None
    s = re.sub(r'"[^"]*"|\\.|_.|\*.', "", code)              # literals, escapes, padding
    s = re.sub(r"\[(?![hms]+\])[^\]]*\]", "", s, flags=re.I)  # colours, locales; not [h] [mm] [ss]
    s = s.split(";")[0].lower()
    if re.search(r"[yd]", s):
        return "date"
    if re.search(r"\[[hms]+\]", s):
        return "elapsed"
    if re.search(r"[hs]", s):
        return "time"
    return "date" if "m" in s else None                        # m alone: a month


def serial_text(x, date1904, kind):
    """An Excel serial (days) shown as its format kind shows it, as ISO 8601 text; None when it
    is no date Excel would show."""
    if not (0 <= x <= MAX_SERIAL):
        return None
    day = int(x)
    secs = int(round((x - day) * 86400))
    if secs == 86400:
        day, secs = day + 1, 0
    clock = "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
    if kind == "elapsed":
        return "%d:%s" % (day * 24 + secs // 3600, clock[3:])
    if kind == "time" and day == 0:
        return clock
    if date1904:
        date = (EPOCH_1904 + datetime.timedelta(days=day)).date().isoformat()
    elif day == 60:
        date = "1900-02-29"        # Excel's phantom leap day, kept as Excel shows it
    elif day == 0:
        date = "1900-01-00"
    else:
        date = (EPOCH_1900 + datetime.timedelta(days=day + (1 if day < 60 else 0))).date().isoformat()
    return date if secs == 0 else "%s %s" % (date, clock)


def iso_text(v):
    """A t="d" cell's ISO 8601 value, with a zero time of day dropped."""
    v = v.replace("T", " ")
    return re.sub(r" 00:00(:00(\.0+)?)?Z?\Z", "", v)
