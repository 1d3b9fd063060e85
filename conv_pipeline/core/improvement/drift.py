"""Segment drift: each segment's day against its own trailing baseline.

Segments are ``all`` plus every value of each configured dimension (``user_type``, ``category``,
``prompt_variant``, ``model``). For a day D the baseline is the ``baseline_days`` days before D
(D itself excluded). Three metrics, each with a test and an effect size:

============== ============================== ================================== ================
metric         test                           effect size                        drift when
============== ============================== ================================== ================
quality_score  Welch's t-test                 Cohen's d (and Cliff's delta)      p_holm < α and |d| ≥ min_cohens_d
issue_rate     two-proportion z-test          difference of rates                p_holm < α and |Δ| ≥ min_rate_change
response_length Kolmogorov-Smirnov            PSI over the baseline's deciles    p_holm < α and PSI ≥ min_psi
============== ============================== ================================== ================

Both a significant test *and* a material effect are required: with thousands of conversations a
day, tiny harmless shifts are "significant". All p-values of the day are Holm-corrected together.
A segment needs ``min_samples`` conversations on the day and in the baseline to be tested.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from conv_pipeline.core.config import DriftSettings
from conv_pipeline.core.improvement import stats
from conv_pipeline.core.schema import SEGMENT_DRIFT

ALL = "all"


def conversation_frame(scored: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """Scored rows with ``has_issue`` (at least one row in the issue table)."""
    flagged = issues.select("completion_id").unique().with_columns(pl.lit(True).alias("has_issue"))
    return scored.join(flagged, on="completion_id", how="left").with_columns(
        pl.col("has_issue").fill_null(False)
    )


def _segments(frame: pl.DataFrame, dims: list[str]) -> list[tuple[str, str, pl.Expr]]:
    out: list[tuple[str, str, pl.Expr]] = [(ALL, ALL, pl.lit(True))]
    for d in dims:
        if d not in frame.columns:
            continue
        for v in sorted(frame[d].drop_nulls().unique().to_list()):
            out.append((d, v, pl.col(d) == v))
    return out


def detect(
    current: pl.DataFrame, baseline: pl.DataFrame, settings: DriftSettings, day: str
) -> pl.DataFrame:
    """One row per (segment, metric) with test, effect size and the ``drifted`` flag.

    ``current`` and ``baseline`` come from :func:`conversation_frame`.
    """
    rows: list[dict] = []
    for dim, seg, cond in _segments(current, settings.dimensions):
        cur, base = current.filter(cond), baseline.filter(cond)
        common = {"day": day, "dimension": dim, "segment": seg}
        n_c, n_b = cur.height, base.height
        if min(n_c, n_b) < settings.min_samples:
            rows.append(
                {
                    **common,
                    "metric": "all",
                    "n_current": n_c,
                    "n_baseline": n_b,
                    "status": "insufficient_data",
                }
            )
            continue
        qc = cur["quality_score"].to_numpy().astype(float)
        qb = base["quality_score"].to_numpy().astype(float)
        w = stats.welch(qb, qc)
        rows.append(
            {
                **common,
                "metric": "quality_score",
                "test": "welch_t",
                "current": float(qc.mean()),
                "baseline": float(qb.mean()),
                "diff": w["diff"],
                "effect_size": stats.cohens_d(qb, qc),
                "effect_measure": "cohens_d",
                "statistic": w["t"],
                "p_value": w["p_value"],
            }
        )
        xc, xb = int(cur["has_issue"].sum()), int(base["has_issue"].sum())
        z = stats.two_proportion_z(xb, n_b, xc, n_c)
        rows.append(
            {
                **common,
                "metric": "issue_rate",
                "test": "two_proportion_z",
                "current": xc / n_c,
                "baseline": xb / n_b,
                "diff": z["diff"],
                "effect_size": z["diff"],
                "effect_measure": "rate_difference",
                "statistic": z["z"],
                "p_value": z["p_value"],
            }
        )
        lc = cur["response_length"].to_numpy().astype(float)
        lb = base["response_length"].to_numpy().astype(float)
        k = stats.ks(lb, lc)
        rows.append(
            {
                **common,
                "metric": "response_length",
                "test": "kolmogorov_smirnov",
                "current": float(np.mean(lc)),
                "baseline": float(np.mean(lb)),
                "diff": float(np.mean(lc) - np.mean(lb)),
                "effect_size": stats.psi(lb, lc),
                "effect_measure": "psi",
                "statistic": k["ks_statistic"],
                "p_value": k["p_value"],
            }
        )
        for r in rows[-3:]:
            r.update(n_current=n_c, n_baseline=n_b, status="tested")
    adjusted = stats.holm([r.get("p_value") for r in rows])
    minimum = {
        "quality_score": settings.min_cohens_d,
        "issue_rate": settings.min_rate_change,
        "response_length": settings.min_psi,
    }
    for r, p in zip(rows, adjusted, strict=True):
        r["p_holm"] = p
        eff = r.get("effect_size")
        r["drifted"] = bool(
            p is not None
            and p < settings.alpha
            and eff is not None
            and abs(eff) >= minimum[r["metric"]]
        )
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in SEGMENT_DRIFT.items()
        ]
    )


def render_markdown(result: pl.DataFrame, day: str, baseline_label: str) -> str:
    drifted = result.filter(pl.col("drifted"))
    tested = result.filter(pl.col("status") == "tested")
    lines = [
        f"## Drift — {day} against {baseline_label}",
        "",
        f"{tested.select('dimension', 'segment').unique().height} segments tested, "
        f"{result.filter(pl.col('status') == 'insufficient_data').height} with too little data; "
        f"{drifted.height} drifted metric(s).",
        "",
    ]
    if drifted.height:
        lines += [
            "| dimension | segment | metric | baseline | day | Δ | effect | p (Holm) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in drifted.iter_rows(named=True):
            lines.append(
                f"| {r['dimension']} | {r['segment']} | {r['metric']} | {r['baseline']:.3f} | "
                f"{r['current']:.3f} | {r['diff']:+.3f} | {r['effect_measure']} "
                f"{r['effect_size']:+.3f} | {r['p_holm']:.3g} |"
            )
    else:
        lines.append("No segment drifted.")
    return "\n".join(lines) + "\n"
