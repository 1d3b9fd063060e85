"""Aggregates of scored conversations: window totals (the seed's ``performance_metrics`` and
more), the seed's quality distribution, and the alert metrics of every hourly partition. Reports,
checks and the alert rules all read these, so one number has one definition."""

from __future__ import annotations

from typing import Any

import polars as pl


def rounded(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def totals(scored: pl.DataFrame, issues: pl.DataFrame) -> dict[str, Any]:
    """Window totals, including the seed's ``performance_metrics``."""
    n = scored.height
    if n == 0:
        return {
            "conversations": 0,
            "distinct_conversation_ids": 0,
            "average_quality": None,
            "median_quality": None,
            "quality_issue_rate": None,
            "seed_quality_issue_rate": None,
            "error_rate": None,
            "refusal_rate": None,
            "avg_response_length": None,
            "min_response_length": None,
            "max_response_length": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
        }
    with_issue = issues["completion_id"].n_unique() if issues.height else 0
    seed_issue = (
        issues.filter(pl.col("issue").is_in(["response_too_short", "response_too_long"]))[
            "completion_id"
        ].n_unique()
        if issues.height
        else 0
    )
    row = scored.select(
        pl.col("conversation_id").drop_nulls().n_unique().alias("distinct_conversation_ids"),
        pl.col("quality_score").mean().alias("average_quality"),
        pl.col("quality_score").median().alias("median_quality"),
        pl.col("is_error").mean().alias("error_rate"),
        pl.col("is_refusal").mean().alias("refusal_rate"),
        pl.col("response_length").mean().alias("avg_response_length"),
        pl.col("response_length").min().alias("min_response_length"),
        pl.col("response_length").max().alias("max_response_length"),
        pl.col("prompt_tokens").sum().alias("prompt_tokens"),
        pl.col("completion_tokens").sum().alias("completion_tokens"),
        pl.col("total_tokens").sum().alias("total_tokens"),
    ).row(0, named=True)
    return {
        "conversations": n,
        "distinct_conversation_ids": row["distinct_conversation_ids"],
        "average_quality": rounded(row["average_quality"]),
        "median_quality": rounded(row["median_quality"]),
        "quality_issue_rate": rounded(with_issue / n),
        "seed_quality_issue_rate": rounded(seed_issue / n),
        "error_rate": rounded(row["error_rate"]),
        "refusal_rate": rounded(row["refusal_rate"]),
        "avg_response_length": rounded(row["avg_response_length"], 2),
        "min_response_length": row["min_response_length"],
        "max_response_length": row["max_response_length"],
        "prompt_tokens": int(row["prompt_tokens"] or 0),
        "completion_tokens": int(row["completion_tokens"] or 0),
        "total_tokens": int(row["total_tokens"] or 0),
    }


def quality_distribution(scored: pl.DataFrame) -> dict[str, int]:
    counts = dict(scored.group_by("quality_band").len().rows()) if scored.height else {}
    return {band: int(counts.get(band, 0)) for band in ("excellent", "good", "fair", "poor")}


def partition_metrics(
    scored: pl.DataFrame, issues: pl.DataFrame | None, keys: list[str]
) -> dict[str, dict]:
    """The alert metrics of every partition in one group-by (partitions without rows included)."""
    agg = scored.group_by("partition_key").agg(
        pl.len().alias("conversations"),
        pl.col("quality_score").mean().alias("average_quality"),
        pl.col("response_length").mean().alias("avg_response_length"),
        pl.col("is_error").mean().alias("error_rate"),
    )
    if issues is not None:
        flagged = issues.group_by("partition_key").agg(
            pl.col("completion_id").n_unique().alias("_flagged")
        )
        agg = agg.join(flagged, on="partition_key", how="left").with_columns(
            (pl.col("_flagged").fill_null(0) / pl.col("conversations")).alias("quality_issue_rate")
        )
    rows = {r["partition_key"]: r for r in agg.to_dicts()}
    empty_row = {
        "conversations": 0,
        "average_quality": None,
        "avg_response_length": None,
        "error_rate": None,
        "quality_issue_rate": None,
    }
    return {k: rows.get(k, empty_row) for k in keys}
