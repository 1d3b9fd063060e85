"""Small statistics toolbox for the improvement assets (A/B experiments and drift).

SciPy supplies the distributions and the standard tests (Welch's t-test, Mann-Whitney U,
Kolmogorov-Smirnov); the few formulas SciPy has no one-call function for (Wilson interval,
two-proportion z-test, Holm's step-down correction, Cohen's d, Cliff's delta, PSI) are written
out here, each with its textbook definition, and unit-tested against hand-computed values.

Every function returns plain Python floats (``None`` when a quantity is undefined, e.g. a
variance of one observation), so results go straight into JSON and Dagster metadata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Student-t confidence interval of the mean (None when n < 2)."""
    n = len(values)
    if n < 2:
        return None, None
    m = float(np.mean(values))
    se = float(np.std(values, ddof=1)) / math.sqrt(n)
    h = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return m - h, m + h


def wilson_ci(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion (good at rates near 0 or 1 and small n)."""
    if n <= 0:
        return None, None
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> dict:
    """Two-sided two-proportion z-test with the pooled standard error.

    ``diff`` is p2 - p1; the 95% CI of the difference uses the unpooled standard error.
    """
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    if se == 0:
        # both groups all-0 or all-1: identical rates, nothing to test
        z, p = 0.0, 1.0
    else:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    se_u = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    h = 1.959963984540054 * se_u
    return {"diff": diff, "z": z, "p_value": p, "ci_low": diff - h, "ci_high": diff + h}


def welch(a: np.ndarray, b: np.ndarray) -> dict:
    """Welch's t-test (two-sided) of mean(b) - mean(a), with the Welch-Satterthwaite 95% CI."""
    diff = float(np.mean(b) - np.mean(a))
    va, vb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    se2 = va / len(a) + vb / len(b)
    if se2 == 0:
        same = diff == 0
        return {
            "diff": diff,
            "t": 0.0 if same else None,
            "p_value": 1.0 if same else 0.0,
            "ci_low": diff,
            "ci_high": diff,
        }
    res = stats.ttest_ind(b, a, equal_var=False)
    df = se2**2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    h = float(stats.t.ppf(0.975, df)) * math.sqrt(se2)
    return {
        "diff": diff,
        "t": _f(res.statistic),
        "p_value": _f(res.pvalue),
        "ci_low": diff - h,
        "ci_high": diff + h,
    }


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sided Mann-Whitney U (tie-corrected normal approximation for large samples) and
    Cliff's delta = P(b > a) - P(b < a), derived from U."""
    if np.all(a == a[0]) and np.all(b == b[0]) and a[0] == b[0]:
        return {"u": len(a) * len(b) / 2, "p_value": 1.0, "cliffs_delta": 0.0}
    res = stats.mannwhitneyu(b, a, alternative="two-sided")
    u = float(res.statistic)  # U of b: pairs where b > a, ties count half
    return {
        "u": u,
        "p_value": _f(res.pvalue),
        "cliffs_delta": 2 * u / (len(a) * len(b)) - 1,
    }


def cohens_d(a: np.ndarray, b: np.ndarray) -> float | None:
    """(mean(b) - mean(a)) / pooled standard deviation."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    pooled = ((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2)
    if pooled == 0:
        return 0.0 if np.mean(a) == np.mean(b) else None
    return float((np.mean(b) - np.mean(a)) / math.sqrt(pooled))


def ks(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sample Kolmogorov-Smirnov test (two-sided)."""
    res = stats.ks_2samp(a, b)
    return {"ks_statistic": _f(res.statistic), "p_value": _f(res.pvalue)}


def psi(baseline: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``baseline``.

    Bins are the baseline's deciles (duplicate edges merged, open-ended outer bins); empty bins get
    a share of 0.5 / n so the logarithm stays finite. Rule of thumb: < 0.1 stable, 0.1–0.2
    moderate, > 0.2 a significant shift.
    """
    qs = np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(qs)
    b_counts = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=len(edges) + 1)
    c_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    b_share = np.maximum(b_counts / len(baseline), 0.5 / len(baseline))
    c_share = np.maximum(c_counts / len(current), 0.5 / len(current))
    return float(np.sum((c_share - b_share) * np.log(c_share / b_share)))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); None stays None."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: p_values[i])
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out
