"""Vectorized conversation scoring.

``quality_score`` is the recipe's ``calculate_quality_score`` (seed ``000``, step 6) expressed as one
Polars expression, so it runs over millions of rows without a Python loop and gives the same number
as the seed's function for every input:

* ``len(response)`` in Python counts code points; ``str.len_chars`` counts the same.
* ``phrase in response.lower()`` is matched on a lower-cased copy made once per text (Polars'
  ``str.to_lowercase``, the full Unicode mapping, like Python's ``str.lower``), with one
  case-sensitive regex per phrase list, whose literal prefilter is far cheaper than a
  case-insensitive one. The only non-ASCII characters whose lower case contains an ASCII letter
  are U+212A (Kelvin sign → "k", kept) and U+0130 (İ → "i" + combining dot, which can never
  complete a phrase), so the answer is the seed's for every string even where two Unicode
  versions lower-case some other character differently.
* the score only ever moves by multiples of 0.5 from 5.0, so the floating-point sums are exact.

Beside the seed score the module adds what a user of the report wants to filter on: the quality band
(the seed's ``calculate_quality_distribution`` bands), the indicator flags, refusal detection,
word counts and a readability grade (the Automated Readability Index).
"""

from __future__ import annotations

import re

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


def _pattern(phrases: list[str]) -> str:
    """One case-sensitive alternation of the (lower-case) phrases, matched on lower-cased text."""
    return "(?:" + "|".join(re.escape(p) for p in phrases) + ")"


def _has_any(lowered: pl.Expr, phrases: list[str]) -> pl.Expr:
    return lowered.str.contains(_pattern(phrases))


def lowered_expr(response: pl.Expr) -> pl.Expr:
    """``response.lower()`` of the seed, made once and scanned by every phrase list."""
    return response.str.to_lowercase()


def _score_from(n: pl.Expr, helpful: pl.Expr, courtesy: pl.Expr, negative: pl.Expr) -> pl.Expr:
    length_points = (
        pl.when((n >= 50) & (n <= 500))
        .then(pl.lit(1.0))
        .when(n < 30)
        .then(pl.lit(-1.0))
        .otherwise(pl.lit(0.0))
    )
    score = (
        pl.lit(5.0)
        + length_points
        + pl.when(helpful).then(1.0).otherwise(0.0)
        + pl.when(courtesy).then(0.5).otherwise(0.0)
        - pl.when(negative).then(0.5).otherwise(0.0)
    )
    return score.clip(1.0, 10.0)


def quality_score_expr(response: pl.Expr) -> pl.Expr:
    """The seed's ``calculate_quality_score`` on a text column (null treated as "").

    Nulls are handled on the derived values (length 0, no phrase), never by copying the text.
    """
    lowered = lowered_expr(response)
    return _score_from(
        response.str.len_chars().fill_null(0),
        _has_any(lowered, HELPFUL_INDICATORS),
        _has_any(lowered, COURTESY_INDICATORS),
        _has_any(lowered, NEGATIVE_INDICATORS),
    )


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


# The raw_completions columns scored_conversations carries over as they are.
PASS_THROUGH = [
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
]
# The raw_completions columns scoring reads.
INPUT_COLUMNS = [*PASS_THROUGH, "response", "refusal", "response_original"]


def score_frame(raw: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Score raw completions: one output row per input row, keyed by ``completion_id``.

    Expects the ``raw_completions`` columns (see ``conv_pipeline.core.schema``).
    """
    # The seed's rubric scores the answer as the model gave it: where PII redaction changed the
    # answer, raw_completions keeps the original in response_original (docs/PRIVACY.md).
    text = (
        pl.coalesce("response_original", "response")
        if "response_original" in raw.collect_schema().names()
        else pl.col("response")
    )  # never copied: nulls are handled on the derived values
    # Every text scan happens once, in the first select; the rest is arithmetic on its results.
    # Readability is the Automated Readability Index (a US grade level) from characters, words
    # (spaces + 1) and sentences (runs of . ! ?): cheap to count, no syllables.
    # The lower-cased copy is one column, made once per batch and read by the four phrase lists.
    low = pl.col("_lowered")
    scanned = (
        raw.lazy()
        .with_columns(lowered_expr(text).alias("_lowered"))
        .select(
            *PASS_THROUGH,
            text.str.len_chars().fill_null(0).cast(pl.Int64).alias("response_length"),
            _has_any(low, HELPFUL_INDICATORS).fill_null(False).alias("has_helpful_indicator"),
            _has_any(low, COURTESY_INDICATORS).fill_null(False).alias("has_courtesy_indicator"),
            _has_any(low, NEGATIVE_INDICATORS).fill_null(False).alias("has_negative_indicator"),
            (
                pl.col("refusal").fill_null("").ne("")
                | _has_any(low, REFUSAL_PHRASES).fill_null(False)
            ).alias("is_refusal"),
            pl.col("refusal").fill_null("").eq("").alias("_no_refusal_text"),
            # A one-byte regex counts faster than the literal search (fewer per-match costs).
            text.str.count_matches(" ").fill_null(0).alias("_spaces"),
            text.str.count_matches(r"(?-u)[.!?]+")
            .fill_null(0)
            .clip(lower_bound=1)
            .alias("_sentences"),
        )
    )
    chars = pl.col("response_length")
    words = pl.when(chars > 0).then(pl.col("_spaces") + 1).otherwise(0)
    no_answer = (
        (chars == 0) & (pl.col("n_tool_calls").fill_null(0) == 0) & pl.col("_no_refusal_text")
    )
    return (
        scanned.with_columns(
            _score_from(
                chars,
                pl.col("has_helpful_indicator"),
                pl.col("has_courtesy_indicator"),
                pl.col("has_negative_indicator"),
            ).alias("quality_score"),
            words.cast(pl.Int64).alias("response_words"),
            no_answer.alias("is_empty_answer"),
            (pl.col("finish_reason").eq_missing("content_filter") | no_answer).alias("is_error"),
            pl.when(words > 0)
            .then(4.71 * (chars / words) + 0.5 * (words / pl.col("_sentences")) - 21.43)
            .otherwise(None)
            .round(1)
            .alias("readability_ari"),
        )
        .with_columns(quality_band_expr(pl.col("quality_score")).alias("quality_band"))
        .drop("_spaces", "_sentences", "_no_refusal_text")
    )


def score_conversations(raw: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """``score_frame`` collected on Polars' streaming engine, which spreads the string work over
    every core (the in-memory engine runs each expression over a column on one thread)."""
    return score_frame(raw).collect(engine="streaming")
