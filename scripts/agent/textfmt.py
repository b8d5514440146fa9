"""Text for the default agent's log, report and charts: escaping and number formatting."""

import html
import re

XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
LOG_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


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
    """A number in at most `digits` significant digits; integers as they are; None as a dash."""
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


def short(s, n):
    """s cut to n characters, the last one an ellipsis when cut."""
    s = str(s)
    return s if len(s) <= n else s[:n - 1] + "…"
