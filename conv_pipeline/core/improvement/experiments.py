"""Prompt-variant and model A/B comparisons over a window of scored conversations.

For each dimension (``prompt_variant``, ``model`` by default) and each of its values (an *arm*):
the number of conversations, the mean quality with its 95% Student-t interval, the issue rate
(conversations with at least one issue) and every issue type's rate with 95% Wilson intervals.

For every pair of arms with at least ``min_samples`` conversations each: Welch's t-test and the
Mann-Whitney U test on ``quality_score`` (Welch is the verdict's test, Mann-Whitney with Cliff's
delta is reported beside it because the rubric's scores are discrete and bounded), and the
two-proportion z-test on the issue rate and on each issue type's rate. Every p-value of the
window is Holm-corrected together (family-wise error at ``alpha``): a verdict is given only when
the corrected p-value is below ``alpha``; otherwise the pair reads "no significant difference".

Differences are always ``arm_b - arm_a`` with arms in sorted order.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import polars as pl

from conv_pipeline.core.config import ExperimentSettings
from conv_pipeline.core.improvement import stats
from conv_pipeline.core.schema import EXPERIMENT_RESULTS

NONE_LABEL = "(none)"


def _with_flags(scored: pl.DataFrame, issues: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """One row per conversation: quality and a boolean per issue type (plus ``any_issue``)."""
    kinds = sorted(issues["issue"].unique().to_list()) if issues.height else []
    flags = (
        issues.select("completion_id", "issue")
        .unique()
        .with_columns(pl.lit(True).alias("_v"))
        .pivot(on="issue", index="completion_id", values="_v", on_columns=kinds)
        if kinds
        else pl.DataFrame(schema={"completion_id": pl.String()})
    )
    out = scored.join(flags, on="completion_id", how="left").with_columns(
        [pl.col(k).fill_null(False) for k in kinds]
    )
    any_issue = pl.any_horizontal([pl.col(k) for k in kinds]) if kinds else pl.lit(False)
    return out.with_columns(any_issue.alias("any_issue")), kinds


def arm_summary(frame: pl.DataFrame, dimension: str, kinds: list[str]) -> list[dict]:
    """Per-arm n, mean quality with CI, issue rate and per-issue rates with Wilson CIs."""
    label = pl.col(dimension).fill_null(NONE_LABEL).alias("arm")
    agg = (
        frame.group_by(label)
        .agg(
            pl.len().alias("n"),
            pl.col("quality_score").mean().alias("mean_quality"),
            pl.col("quality_score").std().alias("sd_quality"),
            pl.col("any_issue").sum().alias("with_issue"),
            *[pl.col(k).sum().alias(f"n_{k}") for k in kinds],
        )
        .sort("arm")
    )
    out = []
    for row in agg.iter_rows(named=True):
        n = row["n"]
        values = frame.filter(label == row["arm"])["quality_score"].to_numpy()
        lo, hi = stats.mean_ci(values)
        r_lo, r_hi = stats.wilson_ci(row["with_issue"], n)
        issue_rates = {}
        for k in kinds:
            c = row[f"n_{k}"]
            k_lo, k_hi = stats.wilson_ci(c, n)
            issue_rates[k] = {"count": c, "rate": c / n, "ci_low": k_lo, "ci_high": k_hi}
        out.append(
            {
                "arm": row["arm"],
                "n": n,
                "mean_quality": row["mean_quality"],
                "quality_ci_low": lo,
                "quality_ci_high": hi,
                "issue_rate": row["with_issue"] / n,
                "issue_rate_ci_low": r_lo,
                "issue_rate_ci_high": r_hi,
                "issue_rates": issue_rates,
            }
        )
    return out


def _tests_for_pair(
    frame: pl.DataFrame, dimension: str, a: str, b: str, kinds: list[str], min_samples: int
) -> list[dict]:
    label = pl.col(dimension).fill_null(NONE_LABEL)
    fa, fb = frame.filter(label == a), frame.filter(label == b)
    na, nb = fa.height, fb.height
    base = {"dimension": dimension, "arm_a": a, "arm_b": b, "n_a": na, "n_b": nb}
    if min(na, nb) < min_samples:
        return [
            {
                **base,
                "metric": "all",
                "test": None,
                "status": "insufficient_data",
                "verdict": f"insufficient data (needs {min_samples} conversations per arm)",
            }
        ]
    qa = fa["quality_score"].to_numpy().astype(float)
    qb = fb["quality_score"].to_numpy().astype(float)
    w = stats.welch(qa, qb)
    mw = stats.mann_whitney(qa, qb)
    rows = [
        {
            **base,
            "metric": "quality_score",
            "test": "welch_t",
            "value_a": float(qa.mean()),
            "value_b": float(qb.mean()),
            "diff": w["diff"],
            "ci_low": w["ci_low"],
            "ci_high": w["ci_high"],
            "statistic": w["t"],
            "effect_size": stats.cohens_d(qa, qb),
            "p_value": w["p_value"],
            "status": "tested",
        },
        {
            **base,
            "metric": "quality_score",
            "test": "mann_whitney_u",
            "value_a": float(np.median(qa)),
            "value_b": float(np.median(qb)),
            "diff": float(np.median(qb) - np.median(qa)),
            "statistic": mw["u"],
            "effect_size": mw["cliffs_delta"],
            "p_value": mw["p_value"],
            "status": "tested",
        },
    ]
    for metric, col in [("issue_rate", "any_issue"), *[(f"issue:{k}", k) for k in kinds]]:
        xa, xb = int(fa[col].sum()), int(fb[col].sum())
        if xa == 0 and xb == 0:
            continue
        z = stats.two_proportion_z(xa, na, xb, nb)
        rows.append(
            {
                **base,
                "metric": metric,
                "test": "two_proportion_z",
                "value_a": xa / na,
                "value_b": xb / nb,
                "diff": z["diff"],
                "ci_low": z["ci_low"],
                "ci_high": z["ci_high"],
                "statistic": z["z"],
                "effect_size": z["diff"],
                "p_value": z["p_value"],
                "status": "tested",
            }
        )
    return rows


def _verdict(row: dict) -> str:
    a, b, d = row["arm_a"], row["arm_b"], row["diff"]
    if row["metric"] == "quality_score":
        better, worse = (b, a) if d > 0 else (a, b)
        return f"{better} scores higher than {worse} (Δ {d:+.3f}, p_holm {row['p_holm']:.2g})"
    name = (
        "issue rate" if row["metric"] == "issue_rate" else row["metric"].split(":", 1)[1] + " rate"
    )
    higher, lower = (b, a) if d > 0 else (a, b)
    return f"{higher} has a higher {name} than {lower} (Δ {100 * d:+.1f} pp, p_holm {row['p_holm']:.2g})"


def compare(
    scored: pl.DataFrame, issues: pl.DataFrame, settings: ExperimentSettings, window: str
) -> dict:
    """The experiment report of one window: arms, tests (Holm-corrected) and verdicts."""
    frame, kinds = _with_flags(scored, issues)
    dims = [d for d in settings.dimensions if d in frame.columns]
    arms: dict[str, list[dict]] = {}
    rows: list[dict] = []
    for dim in dims:
        arms[dim] = arm_summary(frame, dim, kinds) if frame.height else []
        labels = [a["arm"] for a in arms[dim]]
        for a, b in combinations(labels, 2):
            rows.extend(_tests_for_pair(frame, dim, a, b, kinds, settings.min_samples))
    adjusted = stats.holm([r.get("p_value") for r in rows])
    for r, p in zip(rows, adjusted, strict=True):
        r["period"] = window
        r["p_holm"] = p
        r["significant"] = p is not None and p < settings.alpha
        if r["status"] == "tested":
            r["verdict"] = _verdict(r) if r["significant"] else "no significant difference"
    table = pl.DataFrame(rows, schema_overrides=EXPERIMENT_RESULTS, infer_schema_length=None)
    table = table.select(
        [
            (pl.col(c) if c in table.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in EXPERIMENT_RESULTS.items()
        ]
    )
    verdicts = (
        table.filter(pl.col("significant") & (pl.col("test") != "mann_whitney_u"))
        .select("dimension", "arm_a", "arm_b", "metric", "verdict")
        .to_dicts()
    )
    return {
        "window": window,
        "conversations": scored.height,
        "alpha": settings.alpha,
        "min_samples": settings.min_samples,
        "correction": "holm",
        "tests": int(table["p_value"].is_not_null().sum()),
        "arms": arms,
        "comparisons": table.to_dicts(),
        "verdicts": verdicts,
        "table": table,
    }


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def render_markdown(result: dict) -> str:
    """The report section: arms per dimension, then the tested differences and verdicts."""
    lines = [
        f"## Prompt and model experiments — {result['window']}",
        "",
        f"{result['conversations']:,} conversations; {result['tests']} tests, Holm-corrected "
        f"together (family-wise α = {result['alpha']}); a pair needs {result['min_samples']} "
        "conversations per arm to be tested. A verdict is given only when the corrected p-value "
        "is below α.",
    ]
    table: pl.DataFrame = result["table"]
    for dim, arms in result["arms"].items():
        lines += ["", f"### {dim}", ""]
        if not arms:
            lines.append("_no conversations_")
            continue
        lines += [
            "| arm | n | mean quality (95% CI) | issue rate (95% Wilson CI) |",
            "|---|---|---|---|",
        ]
        for a in arms:
            lines.append(
                f"| {a['arm']} | {a['n']:,} | {_fmt(a['mean_quality'])} "
                f"({_fmt(a['quality_ci_low'])}–{_fmt(a['quality_ci_high'])}) | "
                f"{_fmt(a['issue_rate'], True)} ({_fmt(a['issue_rate_ci_low'], True)}–"
                f"{_fmt(a['issue_rate_ci_high'], True)}) |"
            )
        sub = table.filter(pl.col("dimension") == dim)
        if sub.height:
            lines += [
                "",
                "| A | B | metric | test | A | B | Δ (B−A) | p | p (Holm) | verdict |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in sub.iter_rows(named=True):
                pct = r["metric"] != "quality_score"
                lines.append(
                    f"| {r['arm_a']} | {r['arm_b']} | {r['metric']} | {r['test'] or '–'} | "
                    f"{_fmt(r['value_a'], pct)} | {_fmt(r['value_b'], pct)} | "
                    f"{_fmt(r['diff'], pct)} | {_fmt_p(r['p_value'])} | {_fmt_p(r['p_holm'])} | "
                    f"{r['verdict']} |"
                )
    lines += ["", "### Verdicts", ""]
    if result["verdicts"]:
        lines += [f"- **{v['dimension']}**: {v['verdict']}" for v in result["verdicts"]]
    else:
        lines.append("- no significant difference between any two arms")
    return "\n".join(lines) + "\n"


def _fmt_p(p) -> str:
    return "–" if p is None else f"{p:.3g}"
