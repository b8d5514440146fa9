"""Statistics of the default agent: Student's t distribution, descriptive statistics, Welch's t-test,
Holm's adjustment and histograms. Pure functions over lists of floats, standard library only.

Sample SD uses n - 1; quartiles interpolate linearly between order statistics (R type 7, numpy's
default); p-values come from the regularized incomplete beta function.
"""

import math
from collections import OrderedDict

# ----------------------------------------------------------------------------- distributions

def _lentz_step(aa, c, d, tiny=1e-300):
    """One term aa of a continued fraction by the modified Lentz method -> (c, d, factor)."""
    d = 1.0 + aa * d
    if abs(d) < tiny:
        d = tiny
    c = 1.0 + aa / c
    if abs(c) < tiny:
        c = tiny
    d = 1.0 / d
    return c, d, d * c


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) >= 1e-300 else 1e-300)
    c, h = 1.0, d
    for m in range(1, 100001):
        m2 = 2 * m
        c, d, f = _lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), c, d)
        h *= f
        c, d, delta = _lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), c, d)
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
