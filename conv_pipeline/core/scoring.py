"""Vectorized conversation scoring.

``quality_score`` is the recipe's ``calculate_quality_score`` (seed ``000``, step 6) expressed as one
Polars expression, so it runs over millions of rows without a Python loop and gives the same number
as the seed's function for every input:

* ``len(response)`` in Python counts code points; ``str.len_chars`` counts the same.
* ``response.lower()`` is Python's full Unicode lower-casing; Polars' ``str.to_lowercase`` is Rust's,
  which applies the same full mappings (``İ`` → ``i̇``, Kelvin sign → ``k``, final sigma). Every
  indicator phrase is ASCII, so the Unicode-version differences between the two libraries cannot
  change whether a phrase is found.
* the score only ever moves by multiples of 0.5 from 5.0, so the floating-point sums are exact.

Beside the seed score the module adds what a user of the report wants to filter on: the quality band
(the seed's ``calculate_quality_distribution`` bands), the indicator flags, refusal detection,
word/sentence counts and a Flesch reading-ease estimate.
"""

from __future__ import annotations

import polars as pl

# The seed's indicator lists, verbatim.
HELPFUL_INDICATORS = ["step", "solution", "help", "recommend", "suggest", "guide"]
COURTESY_INDICATORS = ["please", "thank you", "happy to", "glad to help"]
NEGATIVE_INDICATORS = ["sorry, i cannot", "i don't know", "unable to help"]

# Phrases that mark an answer as a refusal beyond the seed's negative indicators (matched on the
# lower-cased text, with both straight and typographic apostrophes).
REFUSAL_PHRASES = [
    "sorry, i cannot",
    "unable to help",
    "i can't help with",
    "i can’t help with",
    "i cannot help with",
    "i can't assist with",
    "i can’t assist with",
    "i cannot assist with",
    "i'm not able to help",
    "i’m not able to help",
    "i am not able to help",
    "i'm unable to",
    "i’m unable to",
    "i am unable to",
    "i won't be able to help",
    "i'm sorry, but i can't",
    "i’m sorry, but i can’t",
    "i'm sorry, but i cannot",
    "i’m sorry, but i cannot",
]

# Quality bands of the seed's calculate_quality_distribution.
BANDS = ("excellent", "good", "fair", "poor")


def quality_score_expr(response: pl.Expr) -> pl.Expr:
    """The seed's ``calculate_quality_score`` on a text column (null treated as "")."""
    text = response.fill_null("")
    n = text.str.len_chars()
    lower = text.str.to_lowercase()
    length_points = (
        pl.when((n >= 50) & (n <= 500))
        .then(pl.lit(1.0))
        .when(n < 30)
        .then(pl.lit(-1.0))
        .otherwise(pl.lit(0.0))
    )
    helpful = pl.when(lower.str.contains_any(HELPFUL_INDICATORS)).then(1.0).otherwise(0.0)
    courtesy = pl.when(lower.str.contains_any(COURTESY_INDICATORS)).then(0.5).otherwise(0.0)
    negative = pl.when(lower.str.contains_any(NEGATIVE_INDICATORS)).then(0.5).otherwise(0.0)
    score = pl.lit(5.0) + length_points + helpful + courtesy - negative
    return score.clip(1.0, 10.0)


def quality_band_expr(score: pl.Expr) -> pl.Expr:
    """The seed's bands: excellent >= 8, good 6–8, fair 4–6, poor < 4."""
    return (
        pl.when(score >= 8.0)
        .then(pl.lit("excellent"))
        .when(score >= 6.0)
        .then(pl.lit("good"))
        .when(score >= 4.0)
        .then(pl.lit("fair"))
        .otherwise(pl.lit("poor"))
    )


# The raw_completions columns scoring reads.
INPUT_COLUMNS = [
    "completion_id",
    "created_at",
    "partition_key",
    "model",
    "user_type",
    "category",
    "conversation_id",
    "prompt_variant",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "n_tool_calls",
    "response",
    "refusal",
]


def score_frame(raw: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Score raw completions: one output row per input row, keyed by ``completion_id``.

    Expects the ``raw_completions`` columns (see ``conv_pipeline.core.schema``).
    """
    lf = raw.lazy()
    text = pl.col("response").fill_null("")
    lower = text.str.to_lowercase()
    words = text.str.count_matches(r"\w+")
    sentences = text.str.count_matches(r"[.!?]+(\s|$)").clip(lower_bound=1)
    syllables = lower.str.count_matches(r"[aeiouy]+")
    # The user got nothing: no text, no tool call and no refusal message.
    no_answer = (
        (text.str.len_chars() == 0)
        & (pl.col("n_tool_calls").fill_null(0) == 0)
        & pl.col("refusal").fill_null("").eq("")
    )
    return lf.select(
        "completion_id",
        "created_at",
        "partition_key",
        "model",
        "user_type",
        "category",
        "conversation_id",
        "prompt_variant",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "n_tool_calls",
        quality_score_expr(pl.col("response")).alias("quality_score"),
        text.str.len_chars().cast(pl.Int64).alias("response_length"),
        words.cast(pl.Int64).alias("response_words"),
        lower.str.contains_any(HELPFUL_INDICATORS).alias("has_helpful_indicator"),
        lower.str.contains_any(COURTESY_INDICATORS).alias("has_courtesy_indicator"),
        lower.str.contains_any(NEGATIVE_INDICATORS).alias("has_negative_indicator"),
        (pl.col("refusal").fill_null("").ne("") | lower.str.contains_any(REFUSAL_PHRASES)).alias(
            "is_refusal"
        ),
        no_answer.alias("is_empty_answer"),
        (pl.col("finish_reason").eq_missing("content_filter") | no_answer).alias("is_error"),
        pl.when(words > 0)
        .then(206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words))
        .otherwise(None)
        .round(1)
        .alias("readability_flesch"),
    ).with_columns(quality_band_expr(pl.col("quality_score")).alias("quality_band"))
