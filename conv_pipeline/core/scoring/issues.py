"""Issue categorization: one row per (completion, issue), vectorized.

The seed's two length rules are reproduced exactly (``response_too_short`` when the response has
fewer than 50 characters, otherwise ``response_too_long`` when it has more than 1000), beside the
categories the stored-completion data shows:

=====================  ========  ====================================================================
issue                  severity  rule
=====================  ========  ====================================================================
response_too_short     warning   seed: len(response) < 50
response_too_long      warning   seed: len(response) > 1000
empty_response         error     no text, no tool call and no refusal message (the user got nothing)
low_quality            warning   quality_score < ``low_quality_below`` (6.0: the seed's fair/poor bands)
refusal                warning   ``message.refusal`` set, or a refusal phrase in the text
truncated              warning   finish_reason == "length"
content_filtered       error     finish_reason == "content_filter"
missing_finish_reason  info      finish_reason null on a stored answer with text
=====================  ========  ====================================================================

A conversation "has an issue" when it has at least one row here; the quality issue rate is the
share of conversations with at least one issue.
"""

from __future__ import annotations

import polars as pl

from conv_pipeline.core.schema import CONVERSATION_ISSUES, conform

ISSUE_RULES: dict[str, tuple[str, str]] = {
    "response_too_short": ("warning", "seed rule: response shorter than 50 characters"),
    "response_too_long": ("warning", "seed rule: response longer than 1000 characters"),
    "empty_response": ("error", "no response text, no tool call and no refusal message"),
    "low_quality": ("warning", "heuristic quality score below the low-quality bound"),
    "refusal": ("warning", "the model refused or said it cannot help"),
    "truncated": ("warning", "finish_reason 'length': the answer was cut off"),
    "content_filtered": ("error", "finish_reason 'content_filter'"),
    "missing_finish_reason": ("info", "the service recorded no finish_reason"),
}


def seed_length_issue_expr(length: pl.Expr) -> pl.Expr:
    """The seed's if/elif on the response length."""
    return (
        pl.when(length < 50)
        .then(pl.lit("response_too_short"))
        .when(length > 1000)
        .then(pl.lit("response_too_long"))
        .otherwise(pl.lit(None, pl.String))
    )


def issue_flags(scored: pl.LazyFrame, *, low_quality_below: float) -> pl.LazyFrame:
    """Boolean column per issue, one row per conversation."""
    seed_issue = seed_length_issue_expr(pl.col("response_length"))
    return scored.select(
        pl.all(),
        (seed_issue == "response_too_short").fill_null(False).alias("response_too_short"),
        (seed_issue == "response_too_long").fill_null(False).alias("response_too_long"),
        pl.col("is_empty_answer").alias("empty_response"),
        (pl.col("quality_score") < low_quality_below).alias("low_quality"),
        pl.col("is_refusal").alias("refusal"),
        pl.col("finish_reason").eq_missing("length").alias("truncated"),
        pl.col("finish_reason").eq_missing("content_filter").alias("content_filtered"),
        (pl.col("finish_reason").is_null() & (pl.col("response_length") > 0)).alias(
            "missing_finish_reason"
        ),
    )


def categorize_issues(scored: pl.DataFrame, *, low_quality_below: float) -> pl.DataFrame:
    """Long table of issues for the scored conversations (one boolean filter per issue)."""
    # The issue table's columns besides the issue's own, taken from its contract.
    index = [c for c in CONVERSATION_ISSUES if c not in ("issue", "severity", "detail")]
    flags = issue_flags(scored.lazy(), low_quality_below=low_quality_below).collect(
        engine="streaming"
    )
    parts = [
        flags.filter(pl.col(name)).select(
            *index,
            pl.lit(name).alias("issue"),
            pl.lit(severity).alias("severity"),
            pl.lit(detail).alias("detail"),
            pl.lit(order, pl.Int32).alias("_o"),
        )
        for order, (name, (severity, detail)) in enumerate(ISSUE_RULES.items())
    ]
    long = pl.concat(parts).sort("created_at", "completion_id", "_o")
    return conform(long, CONVERSATION_ISSUES)
