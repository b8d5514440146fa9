"""Tests of the default agent's .xlsx reading (scripts/agent/xlsx.py, tables.py): workbooks are
written by the tests themselves (zipfile + XML), as Excel and other writers lay them out.

Run: python3 -m unittest discover -s tests/agent -p "test_*.py"   (standard library only)
"""

import datetime
import io
import statistics
import unittest
import zipfile
from xml.sax.saxutils import escape

from helpers import Run, col
import xlsx  # noqa: E402  (helpers put scripts/agent on the path)

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
# cellXfs of the styles part below: 0 general, 1 built-in date (14), 2 custom date-time (164),
# 3 built-in time (21), 4 elapsed [h]:mm (165), 5 a plain custom number format (166)
STYLES = ('<styleSheet xmlns="%s"><numFmts count="3">'
          '<numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd\\ hh:mm"/>'
          '<numFmt numFmtId="165" formatCode="[h]:mm"/>'
          '<numFmt numFmtId="166" formatCode="#,##0.00 &quot;mm&quot;"/></numFmts>'
          '<cellXfs count="6"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/>'
          '<xf numFmtId="21"/><xf numFmtId="165"/><xf numFmtId="166"/></cellXfs></styleSheet>')


def col_letter(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


class Book:
    """An .xlsx written cell by cell. Cell values: str (shared string), ("inline", s), ("f", v) a
    formula with cached value v, ("s", style, number), bool, ("e", "#DIV/0!"), int/float, None."""

    def __init__(self, ns=MAIN, date1904=False, styles=True):
        self.ns, self.date1904, self.styles = ns, date1904, styles
        self.sheets = []            # (name, rows or None for a chart sheet, state)
        self.shared = []

    def sheet(self, name, rows, state=None):
        self.sheets.append((name, rows, state))
        return self

    def _sst(self, s):
        if s not in self.shared:
            self.shared.append(s)
        return self.shared.index(s)

    def _cell(self, ref, v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return '<c r="%s" t="b"><v>%d</v></c>' % (ref, v)
        if isinstance(v, (int, float)):
            return '<c r="%s"><v>%r</v></c>' % (ref, v)
        if isinstance(v, str):
            return '<c r="%s" t="s"><v>%d</v></c>' % (ref, self._sst(v))
        kind = v[0]
        if kind == "inline":
            return '<c r="%s" t="inlineStr"><is><t>%s</t></is></c>' % (ref, escape(v[1]))
        if kind == "f":
            return '<c r="%s"><f>SUM(A1:A2)</f><v>%r</v></c>' % (ref, v[1])
        if kind == "s":
            return '<c r="%s" s="%d"><v>%r</v></c>' % (ref, v[1], v[2])
        if kind == "e":
            return '<c r="%s" t="e"><f>1/0</f><v>%s</v></c>' % (ref, v[1])
        if kind == "raw":
            return v[1]
        raise ValueError(v)

    def worksheet(self, rows):
        out = ['<worksheet xmlns="%s"><dimension ref="A1"/><sheetData>' % self.ns]
        for r, row in enumerate(rows, 1):
            if row is None:
                continue
            cells = "".join(self._cell("%s%d" % (col_letter(c), r), v) for c, v in enumerate(row))
            out.append('<row r="%d">%s</row>' % (r, cells))
        out.append("</sheetData></worksheet>")
        return "".join(out)

    def bytes(self):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            parts, rels, sheets = {}, [], []
            for k, (name, rows, state) in enumerate(self.sheets, 1):
                if rows is None:
                    rels.append('<Relationship Id="rId%d" Type="%s/chartsheet" Target="chartsheets/sheet%d.xml"/>'
                                % (k, REL, k))
                    parts["xl/chartsheets/sheet%d.xml" % k] = '<chartsheet xmlns="%s"/>' % self.ns
                else:
                    target = "worksheets/sheet%d.xml" % k if k % 2 else "/xl/worksheets/sheet%d.xml" % k
                    rels.append('<Relationship Id="rId%d" Type="%s/worksheet" Target="%s"/>' % (k, REL, target))
                    parts["xl/worksheets/sheet%d.xml" % k] = self.worksheet(rows)
                sheets.append('<sheet name="%s" sheetId="%d" r:id="rId%d"%s/>'
                              % (escape(name, {'"': "&quot;"}), k, k, ' state="%s"' % state if state else ""))
            n = len(self.sheets)
            rels.append('<Relationship Id="rId%d" Type="%s/sharedStrings" Target="sharedStrings.xml"/>' % (n + 1, REL))
            if self.styles:
                rels.append('<Relationship Id="rId%d" Type="%s/styles" Target="styles.xml"/>' % (n + 2, REL))
                parts["xl/styles.xml"] = STYLES % self.ns
            z.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
            z.writestr("_rels/.rels", '<Relationships xmlns="%s"><Relationship Id="rId1" Type="%s/officeDocument" '
                                      'Target="xl/workbook.xml"/></Relationships>' % (PKG_REL, REL))
            z.writestr("xl/workbook.xml", '<workbook xmlns="%s" xmlns:r="%s"><workbookPr%s/><sheets>%s</sheets></workbook>'
                       % (self.ns, REL, ' date1904="1"' if self.date1904 else "", "".join(sheets)))
            z.writestr("xl/_rels/workbook.xml.rels", '<Relationships xmlns="%s">%s</Relationships>' % (PKG_REL, "".join(rels)))
            for path, xml in parts.items():
                z.writestr(path, xml)
            z.writestr("xl/sharedStrings.xml", '<sst xmlns="%s" count="%d">%s</sst>' % (
                self.ns, len(self.shared), "".join(self._si(s) for s in self.shared)))
        return buf.getvalue()

    @staticmethod
    def _si(s):
        if s.startswith("rich:"):               # two formatted runs and a phonetic run, as Excel writes them
            a, b = s[5:].split("|")
            return ('<si><r><rPr><b/></rPr><t>%s</t></r><r><t xml:space="preserve">%s</t></r>'
                    '<rPh sb="0" eb="1"><t>ignored</t></rPh></si>' % (escape(a), escape(b)))
        return "<si><t>%s</t></si>" % escape(s)


def replace_part(data, name, text):
    """The workbook data with one part's text replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, text if info.filename == name else src.read(info))
    return out.getvalue()


def experiment_rows():
    """A title row, a blank row, the header, then data: groups, numbers, dates and odd cells."""
    rows = [["Experiment 7 (title row)"], None,
            ["condition", "reaction_ms", "day", "started", "duration", "ok", "note", "rich:Wei|ght"]]
    data = [("control", 412, 45000, 45000.5, 0.5, True, ("inline", "fine"), 61.5),
            ("caffeine", 380, 45001, 45001.25, 1.25, False, ("e", "#DIV/0!"), 70.25),
            ("control", 431, 45002, 45002.75, 2.0, True, None, ("f", 64.0)),
            ("caffeine", 371, 45003, 45003.0, 0.25, True, ("inline", "late"), 69.0),
            ("control", 455.5, 45004, 45004.5, 1.5, False, None, 66.75),
            ("caffeine", 368, 45005, 45005.5, 3.0, True, None, 72.5)]
    for cond, ms, day, started, dur, ok, note, weight in data:
        rows.append([cond, ms, ("s", 1, day), ("s", 2, started), ("s", 4, dur), ok, note, weight])
    return rows


class Reader(unittest.TestCase):
    def test_cells_types_dates_and_title_rows(self):
        book = xlsx.Workbook(Book().sheet("Data", experiment_rows()).bytes())
        (sheet,) = book.sheets
        rows = list(book.rows(sheet))
        self.assertEqual([r for r, _ in rows], [1, 3, 4, 5, 6, 7, 8, 9])
        self.assertEqual(rows[1][1], ["condition", "reaction_ms", "day", "started", "duration", "ok", "note", "Weight"])
        first = rows[2][1]
        self.assertEqual(first, ["control", 412, "2023-03-15", "2023-03-15 12:00:00", "12:00:00", True, "fine", 61.5])
        second = rows[3][1]
        self.assertIsInstance(second[6], xlsx.CellError)
        self.assertEqual(second[6], "#DIV/0!")
        self.assertEqual(second[4], "30:00:00")            # [h]:mm: 1.25 days are 30 hours
        self.assertEqual(rows[4][1][7], 64.0)              # a formula's cached value
        self.assertEqual(rows[4][1][6], None)

    def test_serial_dates_in_both_date_systems(self):
        for serial, want in ((1, "1900-01-01"), (59, "1900-02-28"), (60, "1900-02-29"), (61, "1900-03-01"),
                             (45000, "2023-03-15"), (45000.75, "2023-03-15 18:00:00"), (2958465, "9999-12-31")):
            self.assertEqual(xlsx.serial_text(serial, False, "date"), want, serial)
        for serial in (0, 1, 43560.5):
            want = (datetime.datetime(1904, 1, 1) + datetime.timedelta(days=serial))
            text = want.strftime("%Y-%m-%d") if serial == int(serial) else want.strftime("%Y-%m-%d %H:%M:%S")
            self.assertEqual(xlsx.serial_text(serial, True, "date"), text, serial)
        self.assertEqual(xlsx.serial_text(0.75, False, "time"), "18:00:00")
        self.assertIsNone(xlsx.serial_text(-1, False, "date"))
        self.assertIsNone(xlsx.serial_text(3e6, False, "date"))

    def test_number_formats(self):
        for fid, code, want in ((14, None, "date"), (22, None, "date"), (21, None, "time"), (46, None, "elapsed"),
                                (0, None, None), (4, None, None), (164, "yyyy-mm-dd", "date"),
                                (164, "[$-409]dddd, mmmm dd, yyyy", "date"), (164, "h:mm AM/PM", "time"),
                                (164, "[h]:mm:ss", "elapsed"), (164, "mmm", "date"), (164, "0.00E+00", None),
                                (164, '#,##0.00 "days"', None), (164, "[Red]0.0%", None), (164, "General", None),
                                (164, "0.0\\h", None)):
            self.assertEqual(xlsx.format_kind(fid, code), want, (fid, code))

    def test_date1904_and_strict_namespace(self):
        data = Book(ns=STRICT, date1904=True).sheet("S", [["when", "x"], [("s", 1, 0), 1], [("s", 1, 366), 2]]).bytes()
        book = xlsx.Workbook(data)
        rows = [v for _, v in book.rows(book.sheets[0])]
        self.assertEqual(rows[1:], [["1904-01-01", 1], ["1905-01-01", 2]])

    def test_hostile_parts_are_refused(self):
        doctype = ('<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                   '<sst xmlns="%s"><si><t>&b;</t></si></sst>' % MAIN)
        with self.assertRaisesRegex(xlsx.XlsxError, "DOCTYPE"):
            xlsx.Workbook(replace_part(Book().sheet("S", [["a", "b"], [1, 2]]).bytes(), "xl/sharedStrings.xml", doctype))
        big = io.BytesIO()
        with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("xl/workbook.xml", "<workbook xmlns='%s'><sheets/></workbook>" % MAIN + " " * (4 << 20))
        with self.assertRaisesRegex(xlsx.XlsxError, "inflates to more than 1 MiB"):
            xlsx.Workbook(big.getvalue(), max_part_bytes=1 << 20)
        with self.assertRaisesRegex(xlsx.XlsxError, "without xl/workbook.xml"):
            zipped = io.BytesIO()
            with zipfile.ZipFile(zipped, "w") as z:
                z.writestr("word/document.xml", "<document/>")
            xlsx.Workbook(zipped.getvalue())
        with self.assertRaisesRegex(xlsx.XlsxError, "not a readable zip"):
            xlsx.Workbook(b"PK\x03\x04" + bytes(60))


class AgentOnWorkbooks(unittest.TestCase):
    def test_every_sheet_is_analysed(self):
        b = Book().sheet("Data", experiment_rows())
        b.sheet("Second", [["group", "score"], ["a", 1], ["a", 2], ["b", 5], ["b", 7]], state="hidden")
        b.sheet("Empty", [])
        b.sheet("Chart", None)
        run = Run(self, {"experiment.xlsx": b.bytes()})
        self.assertEqual(run.rc, 0, run.stdout + run.stderr)
        f = run.file("experiment.xlsx", "Data")
        self.assertEqual((f["status"], f["format"], f["rows"]), ("analysed", "xlsx", 6))
        self.assertEqual(f["group_column"], "condition")
        rt = col(f, "reaction_ms")
        ms = [412, 431, 455.5, 380, 371, 368]
        self.assertAlmostEqual(rt["mean"], statistics.mean(ms), delta=1e-12)
        self.assertAlmostEqual(rt["std"], statistics.stdev(ms), delta=1e-12)
        self.assertEqual(col(f, "day")["type"], "categorical")
        self.assertEqual(col(f, "day")["top"][0], {"value": "2023-03-15", "count": 1})
        self.assertEqual(col(f, "ok")["top"], [{"value": "true", "count": 4}, {"value": "false", "count": 2}])
        self.assertEqual((col(f, "note")["count"], col(f, "note")["missing"]), (2, 4))
        self.assertEqual(col(f, "Weight")["count"], 6)
        (t,) = next(c for c in f["comparisons"] if c["column"] == "reaction_ms")["tests"]
        self.assertEqual((t["a"], t["b"]), ("control", "caffeine"))
        notes = " | ".join(f["warnings"])
        self.assertIn("rows 1 to 2, above the header in row 3, were skipped", notes)
        self.assertIn("1 cell(s) hold an Excel error", notes)
        s2 = run.file("experiment.xlsx", "Second")
        self.assertEqual((s2["status"], s2["rows"], s2["group_column"]), ("analysed", 4, "group"))
        self.assertIn("this sheet is hidden in Excel", s2["warnings"])
        self.assertEqual(run.file("experiment.xlsx", "Empty")["reason"], "empty sheet")
        self.assertEqual(run.file("experiment.xlsx", "Chart")["reason"], "a chart sheet")
        self.assertIn("experiment.xlsx: 6 rows, 8 columns", run.stdout.replace(" [Data]", ""))
        self.assertIn("warning: experiment.xlsx [Empty] was not analysed: empty sheet", run.stderr)
        self.assertIn("<h2>experiment.xlsx [Second]</h2>", run.report())
        self.assertIn("XLSX, sheet Data: 6 rows, 8 columns", run.report())
        charts = set(run.summary["files"][0]["charts"] + s2["charts"])
        self.assertIn("charts/experiment-Data-reaction_ms-by-condition.svg", charts)
        self.assertIn("charts/experiment-Second-score-by-group.svg", charts)

    def test_a_workbook_without_a_name_is_sniffed(self):
        data = Book().sheet("S", [["group", "v"], ["a", 1], ["a", 2], ["b", 3], ["b", 5]]).bytes()
        run = Run(self, {"upload": data})
        self.assertEqual(run.rc, 0, run.stderr)
        self.assertEqual(run.file("upload", "S")["status"], "analysed")

    def test_unreadable_workbooks_fail_the_job(self):
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as z:
            z.writestr("hello.txt", "not a workbook")
        encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512)
        bad_sheet = Book().sheet("S", [["a", "b"], [("raw", '<c r="A2" t="s"><v>99</v></c>'), 1]]).bytes()
        run = Run(self, {"a.xlsx": zipped.getvalue(), "b.xlsx": encrypted, "c.xlsx": b"PK\x03\x04 damaged",
                         "d.xlsx": bad_sheet})
        self.assertEqual(run.rc, 2, run.stdout + run.stderr)
        self.assertIn("error: a.xlsx: a zip archive without xl/workbook.xml: not an Excel workbook", run.stderr)
        self.assertIn("warning: b.xlsx was not analysed: a password-protected Excel workbook", run.stderr)
        self.assertIn("error: c.xlsx: not a readable zip archive", run.stderr)
        self.assertIn("error: d.xlsx [S]: a cell refers to shared string '99', which does not exist", run.stderr)
        self.assertEqual(run.file("d.xlsx", "S")["status"], "error")
        self.assertIn("no input could be read", run.stderr)
        self.assertIn("could not be read", run.report())


if __name__ == "__main__":
    unittest.main()
