"""Analysis of one table for the default agent: column types and statistics, the group column,
and Welch's t-tests between the groups of every value column. Nothing here prints or writes.

analyse(table, params) -> (result, columns): result is the table's part of summary.json.
"""

import math
import re
import unicodedata
from array import array
from collections import Counter, OrderedDict

from stats import describe, holm, mean_sd, quantile, welch
from tables import NUM_RE, DataError

MISSING = frozenset({"", "na", "n/a", "nan", "null", "#n/a"})
NUM_COMMA_RE = re.compile(r"[+-]?\d+,\d+\Z")
# Column names that say "group", in English, German, French, Spanish, Italian, Portuguese and
# Dutch (accents folded: "condición" is "condicion"); a name matches when one of its words is
# one of these, its plural (+s, +e, +en), or ends with one (of 5+ letters: "treatmentgroup").
GROUP_WORDS = (
    "group", "condition", "treatment", "arm", "class", "label", "cohort",
    "gruppe", "bedingung", "behandlung", "kohorte", "klasse",
    "groupe", "traitement", "cohorte", "classe",
    "grupo", "condicion", "tratamiento", "clase",
    "gruppo", "condizione", "trattamento", "coorte",
    "condicao", "tratamento",
    "groep", "conditie", "behandeling",
)
MAX_GROUPS = 20            # more distinct values than this: not a grouping column
MAX_SUGGESTIONS = 5        # columns named in the hint when no group column is found
TOP_N = 10                 # top values listed for a categorical column
CAT_CAP = 10000            # distinct values tracked per categorical column


class Column:
    __slots__ = ("name", "missing", "nums", "numeric", "raw", "counter", "overflow", "present",
                 "charted", "compared")

    def __init__(self, name, keep_raw):
        self.name = name
        self.missing = 0
        self.present = 0
        self.nums = array("d")
        self.numeric = True
        self.raw = [] if keep_raw else None
        self.counter = None
        self.overflow = 0
        self.charted = False       # gets a histogram
        self.compared = False      # a value column: compared between the groups


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
    note = ("%d row(s) had fewer fields than the header; the missing fields count as missing "
            "values" % short)
    if short and note not in table.warnings:
        table.warnings.append(note)


def words(name):
    """The lower-case words of a column name, accents folded."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", name.casefold())
                     if not unicodedata.combining(ch))
    return [tk for tk in re.split(r"[\W_]+", folded) if tk]


def group_like(name):
    for tk in words(name):
        for word in GROUP_WORDS:
            if tk == word or tk in (word + "s", word + "e", word + "en") or \
                    (len(word) >= 5 and tk.endswith(word)):
                return True
    return False


def same_name(a, b):
    return a == b or a.casefold() == b.casefold()


def group_candidates(names, wanted):
    """Names that may hold groups: params' group_column first, then names like GROUP_WORDS."""
    out = []
    if wanted is not None:
        out += [n for n in names if n == wanted] or [n for n in names if same_name(n, wanted)][:1]
    out += [n for n in names if group_like(n) and n not in out]
    return out


def is_id_name(name):
    """Identifier columns (id, subject_id, Sample ID, ...) are not compared between groups."""
    return "id" in words(name)


def read_columns(table, cols):
    """Two passes over the rows: types, missing values, numbers (NaN = missing), raw labels of
    the group candidates, then value counts of the text columns. -> number of rows."""
    dc = table.decimal_comma
    nrows = 0
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
                    else:
                        c.nums.append(x)
            if c.raw is not None:
                c.raw.append(None if missing else text)
    if nrows == 0:
        raise DataError("no data rows (only a header)" if table.header else "no data rows")
    textcols = [(i, c) for i, c in enumerate(cols) if not c.numeric]
    for _, c in textcols:
        c.counter = Counter()
    if textcols:
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
    return nrows


def column_info(c):
    info = OrderedDict([("name", c.name)])
    if c.present == 0:
        info["type"] = "empty"
        info["count"] = 0
        info["missing"] = c.missing
    elif c.numeric:
        info["type"] = "numeric"
        d = describe([x for x in c.nums if x == x])
        info["count"] = d.pop("count")
        info["missing"] = c.missing
        info.update(d)
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
    return info


def mark_value_columns(cols, wanted, notes):
    """Which numeric columns get a histogram and are compared between groups: params'
    value_columns, else all of them (compared: those not named like an identifier)."""
    if not wanted:
        for c in cols:
            c.charted = c.numeric and c.present > 0
            c.compared = c.charted and not is_id_name(c.name)
        return
    for w in wanted:
        c = next((c for c in cols if c.name == w), None) or next((c for c in cols if same_name(c.name, w)), None)
        if c is None:
            notes.append("value_columns: %r is not a column of this file" % w)
        elif not c.numeric or c.present == 0:
            notes.append("value_columns: %r is not numeric, so it is not compared" % c.name)
        else:
            c.charted = c.compared = True


def group_labels(c):
    labels = OrderedDict()
    for g in c.raw:
        if g is not None:
            labels[g] = labels.get(g, 0) + 1
    return labels


def choose_group(cols, names, candidates, wanted, notes):
    """The first candidate with 2..MAX_GROUPS labels (fewer than its values) -> (column, labels),
    or (None, [(candidate, why not)])."""
    if wanted is not None and not any(same_name(n, wanted) for n in names):
        notes.append("group_column %r is not a column of this file; looked for one by name" % wanted)
    rejected = []
    for cand in candidates:
        c = cols[names.index(cand)]
        labels = group_labels(c)
        if 2 <= len(labels) <= MAX_GROUPS and len(labels) < c.present:
            return (c, labels), rejected
        why = ("has %d distinct value(s); a group column needs 2 to %d, fewer than its %d values"
               % (len(labels), MAX_GROUPS, c.present))
        rejected.append((cand, why))
        if wanted is not None and same_name(cand, wanted):
            notes.append("group_column %r %s" % (cand, why))
    return None, rejected


def compare(gcol, labels, c, alpha):
    """Per-group statistics of column c and Welch's t-test of every pair of groups."""
    order = list(labels)
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
    for res in tests:
        p = res.get("p_holm", res["p"])
        res["significant"] = p is not None and p < alpha
    return OrderedDict([("column", c.name), ("groups", gstats), ("tests", tests)])


def group_hint(cols, rejected):
    """Why no group comparison was made, and which columns could hold groups."""
    suggestions = []
    for c in cols:
        if c.present == 0 or is_id_name(c.name):
            continue
        distinct = len(c.counter) if not c.numeric else len(set(x for x in c.nums if x == x))
        if 2 <= distinct <= MAX_GROUPS and 2 * distinct <= c.present:
            suggestions.append((c.numeric, c.name, distinct))
    suggestions = [(n, k) for _, n, k in sorted(suggestions, key=lambda s: s[0])]   # text first
    if rejected:
        looked = "; ".join("%r %s" % (n, why) for n, why in rejected)
    else:
        looked = "no column is named like a group (group, condition, treatment, arm, cohort, " \
                 "Gruppe, Behandlung, groupe, grupo, ...)"
    hint = "no group comparison: %s." % looked
    if suggestions:
        hint += " Columns that could hold groups: %s. To compare groups, set the parameter " \
                "group_column, e.g. {\"group_column\": \"%s\"}." % (
                    ", ".join("%s (%d values)" % (n, k) for n, k in suggestions[:MAX_SUGGESTIONS]),
                    suggestions[0][0].replace("\\", "\\\\").replace('"', '\\"'))
    else:
        hint += " No column has 2 to %d distinct values that repeat, so there are no groups to " \
                "compare; the parameter group_column names the column that holds the groups." % MAX_GROUPS
    return hint, [n for n, _ in suggestions[:MAX_SUGGESTIONS]]


def analyse(table, params):
    names = table.header
    wanted = params.get("group_column")
    candidates = group_candidates(names, wanted)
    cols = [Column(n, n in candidates) for n in names]
    nrows = read_columns(table, cols)
    notes = []
    mark_value_columns(cols, params.get("value_columns"), notes)

    result = OrderedDict()
    result["rows"] = nrows
    result["columns"] = [column_info(c) for c in cols]
    group, rejected = choose_group(cols, names, candidates, wanted, notes)
    result["group_column"] = None
    result["groups"] = []
    result["comparisons"] = []
    if group is not None:
        gcol, labels = group
        result["group_column"] = gcol.name
        result["groups"] = [OrderedDict([("label", g), ("rows", n)]) for g, n in labels.items()]
        result["rows_without_group"] = gcol.missing
        result["comparisons"] = [compare(gcol, labels, c, params["alpha"]) for c in cols
                                 if c.compared and c is not gcol]
    elif any(c.compared for c in cols):
        result["group_hint"], result["group_suggestions"] = group_hint(cols, rejected)
    table.warnings.extend(notes + table.notes())
    return result, cols
