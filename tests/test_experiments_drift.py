"""A/B experiments and drift on data built so that the right answer is known."""

from __future__ import annotations

import random
from statistics import NormalDist

import polars as pl
import pytest

from conv_pipeline.core.config import DriftSettings, ExperimentSettings
from conv_pipeline.core.improvement.drift import conversation_frame, detect
from conv_pipeline.core.improvement.experiments import compare, render_markdown


def _normal(rng: random.Random, n: int, mean: float, sd: float) -> list[float]:
    """``n`` values with exactly the planted mean and spread (normal quantiles), shuffled."""
    values = [mean + sd * NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    rng.shuffle(values)
    return values


def _frames(arms: dict[tuple[str, str], tuple[int, float, float, float]], seed: int = 11):
    """``arms``: (prompt_variant, model) -> (n, mean quality, sd, low_quality issue rate)."""
    rng = random.Random(seed)
    scored, issues = [], []
    for (variant, model), (n, mean, sd, rate) in arms.items():
        quality = _normal(rng, n, mean, sd)
        for i in range(n):
            cid = f"{variant}-{model}-{i:04d}"
            scored.append(
                {
                    "completion_id": cid,
                    "prompt_variant": variant,
                    "model": model,
                    "quality_score": round(quality[i], 2),
                }
            )
            if i < round(rate * n):  # exactly the planted rate
                issues.append({"completion_id": cid, "issue": "response_too_short"})
    return pl.DataFrame(scored), pl.DataFrame(issues)


def _rows(result: dict, dimension: str, metric: str, test: str | None = None) -> list[dict]:
    return [
        r
        for r in result["comparisons"]
        if r["dimension"] == dimension
        and r["metric"] == metric
        and (test is None or r["test"] == test)
    ]


def test_planted_significant_and_insignificant_differences():
    # prompt v2 is clearly worse (quality -0.6, issues 10% -> 30%); the two models are the same
    scored, issues = _frames(
        {
            ("v1", "m-a"): (150, 7.0, 0.6, 0.10),
            ("v1", "m-b"): (150, 7.0, 0.6, 0.10),
            ("v2", "m-a"): (150, 6.4, 0.6, 0.30),
            ("v2", "m-b"): (150, 6.4, 0.6, 0.30),
        }
    )
    result = compare(scored, issues, ExperimentSettings(), "2025-03-04")
    welch = _rows(result, "prompt_variant", "quality_score", "welch_t")[0]
    assert welch["significant"] and welch["p_holm"] < 1e-6
    assert welch["diff"] == pytest.approx(-0.6, abs=0.15)
    assert welch["verdict"].startswith("v1 scores higher than v2")
    rate = _rows(result, "prompt_variant", "issue_rate")[0]
    assert rate["significant"] and rate["diff"] == pytest.approx(0.2, abs=0.07)
    assert "v2 has a higher issue rate" in rate["verdict"]
    # the models split every variant in half: no real difference, and no verdict
    for r in _rows(result, "model", "quality_score") + _rows(result, "model", "issue_rate"):
        assert not r["significant"], r
        assert r["verdict"] == "no significant difference"
    assert {v["dimension"] for v in result["verdicts"]} == {"prompt_variant"}
    # arms carry n, a CI around the mean and Wilson intervals around the rates
    v1 = result["arms"]["prompt_variant"][0]
    assert v1["arm"] == "v1" and v1["n"] == 300
    assert v1["quality_ci_low"] < v1["mean_quality"] < v1["quality_ci_high"]
    assert v1["issue_rate_ci_low"] < v1["issue_rate"] < v1["issue_rate_ci_high"]
    md = render_markdown(result)
    assert "### prompt_variant" in md and "v1 scores higher than v2" in md
    assert "Holm" in md


def test_a_small_real_difference_is_not_declared_without_enough_evidence():
    # 0.05 points on sd 0.6 with 60 per arm: far below detectable
    scored, issues = _frames(
        {("v1", "m"): (60, 7.0, 0.6, 0.10), ("v2", "m"): (60, 6.95, 0.6, 0.11)}, seed=2
    )
    result = compare(scored, issues, ExperimentSettings(), "d")
    assert result["verdicts"] == []
    assert all(not r["significant"] for r in result["comparisons"])


def test_arms_below_the_minimum_sample_get_no_test_and_no_verdict():
    scored, issues = _frames(
        {("v1", "m"): (200, 7.0, 0.3, 0.05), ("v2", "m"): (12, 4.0, 0.3, 0.9)}, seed=4
    )
    result = compare(scored, issues, ExperimentSettings(min_samples=30), "d")
    pair = _rows(result, "prompt_variant", "all")
    assert len(pair) == 1 and pair[0]["status"] == "insufficient_data"
    assert pair[0]["p_value"] is None and not pair[0]["significant"]
    assert result["verdicts"] == []


def test_holm_correction_is_applied_across_the_window():
    scored, issues = _frames(
        {("v1", "m-a"): (100, 7.0, 0.6, 0.1), ("v2", "m-b"): (100, 6.8, 0.6, 0.1)}, seed=9
    )
    result = compare(scored, issues, ExperimentSettings(), "d")
    tested = [r for r in result["comparisons"] if r["p_value"] is not None]
    assert len(tested) == result["tests"] >= 6
    for r in tested:
        assert r["p_holm"] >= r["p_value"]


# ---- drift -------------------------------------------------------------------------------------


def _day(seed: int, segments: dict[str, tuple[int, float, float, int]], prefix: str):
    """segment -> (n, quality mean, issue rate, typical response length)."""
    rng = random.Random(seed)
    scored, issues = [], []
    for seg, (n, mean, rate, length) in segments.items():
        quality = _normal(rng, n, mean, 0.4)
        lengths = _normal(rng, n, length, length * 0.2)
        for i in range(n):
            cid = f"{prefix}-{seg}-{i:05d}"
            scored.append(
                {
                    "completion_id": cid,
                    "user_type": seg,
                    "category": "general",
                    "prompt_variant": "v1",
                    "model": "m",
                    "quality_score": round(quality[i], 2),
                    "response_length": max(1, round(lengths[i])),
                }
            )
            if i < round(rate * n):  # exactly the planted rate
                issues.append({"completion_id": cid, "issue": "low_quality"})
    return pl.DataFrame(scored), pl.DataFrame(
        issues, schema={"completion_id": pl.String, "issue": pl.String}
    )


def test_planted_drift_is_found_and_a_stable_segment_is_not():
    healthy = {"billing": (100, 7.0, 0.08, 300), "sales": (100, 7.0, 0.08, 300)}
    base_s, base_i = [], []
    for d in range(7):
        s, i = _day(100 + d, healthy, f"b{d}")
        base_s.append(s)
        base_i.append(i)
    baseline = conversation_frame(pl.concat(base_s), pl.concat(base_i))
    cur_s, cur_i = _day(
        7, {"billing": (100, 5.8, 0.45, 120), "sales": (100, 7.0, 0.08, 300)}, "cur"
    )
    current = conversation_frame(cur_s, cur_i)
    result = detect(current, baseline, DriftSettings(), "2025-03-10")
    billing = result.filter(pl.col("segment") == "billing")
    sales = result.filter(pl.col("segment") == "sales")
    assert set(billing.filter(pl.col("drifted"))["metric"]) == {
        "quality_score",
        "issue_rate",
        "response_length",
    }
    q = billing.filter(pl.col("metric") == "quality_score").row(0, named=True)
    assert q["effect_measure"] == "cohens_d" and q["effect_size"] < -2
    assert q["diff"] == pytest.approx(-1.2, abs=0.2)
    r = billing.filter(pl.col("metric") == "issue_rate").row(0, named=True)
    assert r["diff"] == pytest.approx(0.37, abs=0.1)
    length = billing.filter(pl.col("metric") == "response_length").row(0, named=True)
    assert length["effect_measure"] == "psi" and length["effect_size"] > 0.2
    assert not sales["drifted"].any()
    assert sales.filter(pl.col("status") == "tested").height == 3


def test_no_drift_when_nothing_changed_and_too_little_data_is_not_tested():
    seg = {"billing": (80, 7.0, 0.1, 300), "tiny": (5, 7.0, 0.1, 300)}
    base = [_day(200 + d, seg, f"b{d}") for d in range(7)]
    baseline = conversation_frame(pl.concat([b[0] for b in base]), pl.concat([b[1] for b in base]))
    cur = _day(300, seg, "cur")
    result = detect(conversation_frame(*cur), baseline, DriftSettings(), "d")
    assert not result["drifted"].any()
    tiny = result.filter(pl.col("segment") == "tiny")
    assert tiny["status"].to_list() == ["insufficient_data"]


def test_a_significant_but_immaterial_shift_is_not_drift():
    # 2,000 a day: a 0.05-point shift is significant but its Cohen's d (~0.12) is immaterial
    base = [_day(400 + d, {"all_users": (2000, 7.0, 0.1, 300)}, f"b{d}") for d in range(7)]
    baseline = conversation_frame(pl.concat([b[0] for b in base]), pl.concat([b[1] for b in base]))
    cur = _day(500, {"all_users": (2000, 6.95, 0.1, 300)}, "cur")
    result = detect(conversation_frame(*cur), baseline, DriftSettings(), "d")
    q = result.filter((pl.col("segment") == "all") & (pl.col("metric") == "quality_score"))
    row = q.row(0, named=True)
    assert row["p_holm"] < DriftSettings().alpha  # significant …
    assert abs(row["effect_size"]) < 0.5  # … but immaterial
    assert not row["drifted"]
