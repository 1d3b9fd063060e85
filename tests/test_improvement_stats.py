"""The statistics behind experiments and drift, against hand-computed values and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from conv_pipeline.core.improvement import stats


def test_wilson_interval_matches_the_formula():
    # 10 of 100 at 95%: the textbook Wilson interval is (0.0552, 0.1744)
    lo, hi = stats.wilson_ci(10, 100)
    assert lo == pytest.approx(0.05523, abs=1e-4)
    assert hi == pytest.approx(0.17437, abs=1e-4)
    # stays inside [0, 1] at the edges, where the Wald interval collapses
    lo0, hi0 = stats.wilson_ci(0, 20)
    assert lo0 == 0.0 and 0.1 < hi0 < 0.2
    assert stats.wilson_ci(0, 0) == (None, None)


def test_two_proportion_z_by_hand():
    # 30/200 vs 60/200: pooled p = 0.225, se = sqrt(.225*.775*(2/200)) = 0.041758
    r = stats.two_proportion_z(30, 200, 60, 200)
    assert r["diff"] == pytest.approx(0.15)
    assert r["z"] == pytest.approx(0.15 / math.sqrt(0.225 * 0.775 * 0.01), rel=1e-9)
    assert r["p_value"] == pytest.approx(2 * sps.norm.sf(r["z"]), rel=1e-9)
    assert r["p_value"] < 0.001
    same = stats.two_proportion_z(0, 50, 0, 60)
    assert same["p_value"] == 1.0 and same["diff"] == 0.0


def test_welch_and_mann_whitney_agree_with_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(7, 0.5, 80), rng.normal(6.8, 0.9, 50)
    w = stats.welch(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert w["p_value"] == pytest.approx(ref.pvalue)
    assert w["diff"] == pytest.approx(b.mean() - a.mean())
    assert w["ci_low"] < w["diff"] < w["ci_high"]
    mw = stats.mann_whitney(a, b)
    assert mw["p_value"] == pytest.approx(sps.mannwhitneyu(b, a).pvalue)
    # Cliff's delta by its definition: P(b > a) - P(b < a)
    gt = (b[:, None] > a[None, :]).mean()
    lt = (b[:, None] < a[None, :]).mean()
    assert mw["cliffs_delta"] == pytest.approx(gt - lt)


def test_cohens_d_by_hand():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([3.0, 4.0, 5.0])
    assert stats.cohens_d(a, b) == pytest.approx(2.0)  # pooled sd 1, difference 2
    assert stats.cohens_d(np.array([1.0]), b) is None


def test_holm_step_down():
    # p sorted 0.01, 0.02, 0.03, 0.5 with m=4 -> 0.04, 0.06, 0.06 (monotone), 0.5
    adj = stats.holm([0.03, 0.01, None, 0.5, 0.02])
    assert adj[1] == pytest.approx(0.04)
    assert adj[4] == pytest.approx(0.06)
    assert adj[0] == pytest.approx(0.06)
    assert adj[3] == pytest.approx(0.5)
    assert adj[2] is None
    assert stats.holm([0.9, 0.8]) == [pytest.approx(1.0), pytest.approx(1.0)]


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(5)
    base = rng.normal(300, 50, 5000)
    assert stats.psi(base, rng.normal(300, 50, 5000)) < 0.02
    assert stats.psi(base, rng.normal(150, 50, 5000)) > 1.0


def test_mean_ci_contains_the_mean():
    lo, hi = stats.mean_ci(np.array([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5, sd 1.29099, se 0.645497, t(0.975, 3) = 3.18245
    assert lo == pytest.approx(2.5 - 3.18245 * 0.645497, abs=1e-4)
    assert hi == pytest.approx(2.5 + 3.18245 * 0.645497, abs=1e-4)
    assert stats.mean_ci(np.array([1.0])) == (None, None)
