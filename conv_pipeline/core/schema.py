"""Column schemas of the warehouse tables (the public contract: docs/ARCHITECTURE.md, "Warehouse").

Every Parquet file of a table is written with exactly this schema, so DuckDB views over the folder
and downstream readers see stable types whatever the input looked like.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

TS = pl.Datetime("us", "UTC")

# Dagster's hourly partition key format.
HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"
DAY_KEY_FORMAT = "%Y-%m-%d"

RAW_COMPLETIONS: dict[str, pl.DataType] = {
    "completion_id": pl.String(),
    "created": pl.Int64(),
    "created_at": TS,
    "partition_key": pl.String(),
    "model": pl.String(),
    "metadata": pl.String(),  # JSON object as the service returned it ("{}" when absent)
    "user_type": pl.String(),
    "category": pl.String(),
    "conversation_id": pl.String(),
    "prompt_variant": pl.String(),
    "pipeline_source": pl.String(),
    "messages": pl.String(),  # JSON: the input messages (null when the export has none)
    "n_messages": pl.Int32(),
    "system_prompt": pl.String(),
    "last_user_message": pl.String(),
    "response": pl.String(),  # choices[0].message.content; null counts as ""
    "response_is_null": pl.Boolean(),
    "finish_reason": pl.String(),
    "refusal": pl.String(),
    "tool_calls": pl.String(),  # JSON array or null
    "n_tool_calls": pl.Int32(),
    "n_choices": pl.Int32(),
    "prompt_tokens": pl.Int64(),
    "completion_tokens": pl.Int64(),
    "total_tokens": pl.Int64(),
    "usage": pl.String(),  # JSON object or null
    "ingest_note": pl.String(),  # what was repaired on the way in (e.g. lone surrogates)
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    # Privacy (docs/PRIVACY.md): the text columns above are redacted; the original final answer
    # is kept here only where redaction changed it, for scoring, and is not in the warehouse view.
    "response_original": pl.String(),
    "pii_redactions": pl.Int32(),  # markers written into this row's texts
}

SCORED_CONVERSATIONS: dict[str, pl.DataType] = {
    "completion_id": pl.String(),
    "created_at": TS,
    "partition_key": pl.String(),
    "model": pl.String(),
    "user_type": pl.String(),
    "category": pl.String(),
    "conversation_id": pl.String(),
    "prompt_variant": pl.String(),
    "finish_reason": pl.String(),
    "prompt_tokens": pl.Int64(),
    "completion_tokens": pl.Int64(),
    "total_tokens": pl.Int64(),
    "n_tool_calls": pl.Int32(),
    "quality_score": pl.Float64(),
    "quality_band": pl.String(),
    "response_length": pl.Int64(),
    "response_words": pl.Int64(),
    "has_helpful_indicator": pl.Boolean(),
    "has_courtesy_indicator": pl.Boolean(),
    "has_negative_indicator": pl.Boolean(),
    "is_refusal": pl.Boolean(),
    "is_empty_answer": pl.Boolean(),
    "is_error": pl.Boolean(),
    "readability_ari": pl.Float64(),
}

CONVERSATION_ISSUES: dict[str, pl.DataType] = {
    "completion_id": pl.String(),
    "issue": pl.String(),
    "severity": pl.String(),
    "detail": pl.String(),
    "created_at": TS,
    "partition_key": pl.String(),
    "model": pl.String(),
    "user_type": pl.String(),
    "category": pl.String(),
    "prompt_variant": pl.String(),
    "quality_score": pl.Float64(),
    "response_length": pl.Int64(),
}

INSIGHT_REPORTS: dict[str, pl.DataType] = {
    "report_id": pl.String(),
    "kind": pl.String(),  # hourly | daily
    "partition_key": pl.String(),
    "window_start": TS,
    "window_end": TS,
    "conversations": pl.Int64(),
    "average_quality": pl.Float64(),
    "quality_issue_rate": pl.Float64(),
    "error_rate": pl.Float64(),
    "report_json": pl.String(),
    "report_markdown": pl.String(),
}

REJECTED_RECORDS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),  # null when the whole file is concerned
    "completion_id": pl.String(),
    "partition_key": pl.String(),
    "reason": pl.String(),
    "raw_excerpt": pl.String(),
}

# Improvement tables (docs/IMPROVEMENT.md): one Parquet file per daily partition.
EXPERIMENT_RESULTS: dict[str, pl.DataType] = {
    "period": pl.String(),  # the day (or "first..last" for a range)
    "dimension": pl.String(),
    "arm_a": pl.String(),
    "arm_b": pl.String(),
    "metric": pl.String(),
    "test": pl.String(),
    "n_a": pl.Int64(),
    "n_b": pl.Int64(),
    "value_a": pl.Float64(),
    "value_b": pl.Float64(),
    "diff": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "statistic": pl.Float64(),
    "effect_size": pl.Float64(),
    "p_value": pl.Float64(),
    "p_holm": pl.Float64(),
    "significant": pl.Boolean(),
    "status": pl.String(),  # tested | insufficient_data
    "verdict": pl.String(),
}

SEGMENT_DRIFT: dict[str, pl.DataType] = {
    "day": pl.String(),
    "dimension": pl.String(),
    "segment": pl.String(),
    "metric": pl.String(),
    "test": pl.String(),
    "n_current": pl.Int64(),
    "n_baseline": pl.Int64(),
    "current": pl.Float64(),
    "baseline": pl.Float64(),
    "diff": pl.Float64(),
    "effect_size": pl.Float64(),
    "effect_measure": pl.String(),
    "statistic": pl.Float64(),
    "p_value": pl.Float64(),
    "p_holm": pl.Float64(),
    "drifted": pl.Boolean(),
    "status": pl.String(),  # tested | insufficient_data
}

FAILURE_CLUSTERS: dict[str, pl.DataType] = {
    "day": pl.String(),
    "cluster": pl.Int32(),
    "label": pl.String(),
    "size": pl.Int64(),
    "share_of_failures": pl.Float64(),
    "mean_quality": pl.Float64(),
    "top_terms": pl.List(pl.String()),
    "top_issues": pl.List(pl.String()),
    "example_ids": pl.List(pl.String()),
    "k": pl.Int32(),
    "silhouette": pl.Float64(),
}

# Explicit user feedback joined to the scores (docs/FEEDBACK.md), one file per day.
CONVERSATION_FEEDBACK: dict[str, pl.DataType] = {
    "completion_id": pl.String(),
    "day": pl.String(),
    "created_at": TS,
    "partition_key": pl.String(),
    "model": pl.String(),
    "user_type": pl.String(),
    "category": pl.String(),
    "prompt_variant": pl.String(),
    "feedback_source": pl.String(),  # metadata | file
    "feedback_file": pl.String(),
    "feedback_line": pl.Int64(),
    "feedback_at": TS,
    "thumbs": pl.String(),  # up | down | null
    "rating": pl.Float64(),
    "comment": pl.String(),  # redacted like every text that leaves the raw layer
    "is_negative": pl.Boolean(),
    "quality_score": pl.Float64(),
    "quality_band": pl.String(),
    "has_issue": pl.Boolean(),
    "issues": pl.List(pl.String()),
    "judge_score": pl.Float64(),
}

FEEDBACK_AGREEMENT: dict[str, pl.DataType] = {
    "day": pl.String(),
    "score": pl.String(),  # quality_score | judge_score
    "dimension": pl.String(),  # all | user_type | …
    "segment": pl.String(),
    "n": pl.Int64(),
    "n_negative": pl.Int64(),
    "negative_rate": pl.Float64(),
    "auc_negative": pl.Float64(),  # AUC of a low score for predicting negative feedback
    "auc_ci_low": pl.Float64(),
    "auc_ci_high": pl.Float64(),
    "point_biserial_r": pl.Float64(),  # score vs positive (1) / negative (0)
    "point_biserial_p": pl.Float64(),
    "n_rated": pl.Int64(),
    "spearman_rho": pl.Float64(),  # score vs rating
    "spearman_p": pl.Float64(),
    "status": pl.String(),  # tested | insufficient_data
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "raw_completions": RAW_COMPLETIONS,
    "scored_conversations": SCORED_CONVERSATIONS,
    "conversation_issues": CONVERSATION_ISSUES,
    "insight_reports": INSIGHT_REPORTS,
    "rejected_records": REJECTED_RECORDS,
    "experiment_results": EXPERIMENT_RESULTS,
    "segment_drift": SEGMENT_DRIFT,
    "failure_clusters": FAILURE_CLUSTERS,
    "conversation_feedback": CONVERSATION_FEEDBACK,
    "feedback_agreement": FEEDBACK_AGREEMENT,
}

# Columns kept in the Parquet files of the raw layer but left out of the warehouse views.
PRIVATE_COLUMNS: dict[str, tuple[str, ...]] = {"raw_completions": ("response_original",)}

# ---- the LLM judge's tables (docs/JUDGE.md) ---------------------------------------------------------
# ``judge_evaluations`` holds these columns plus a group per configured evaluator, so its files'
# columns depend on the configuration; ``judge_calibration`` is the golden-set agreement.
JUDGE_TABLE = "judge_evaluations"
JUDGE_CALIBRATION_TABLE = "judge_calibration"
BUNDLED_EVALUATORS = ("coherence", "fluency", "relevance", "groundedness")  # judge_prompts/*.md

JUDGE_EVALUATIONS_BASE: dict[str, pl.DataType] = {
    "completion_id": pl.String(),
    "partition_key": pl.String(),
    "created_at": TS,
    "judge_model": pl.String(),
    "judge_sample_reason": pl.String(),
    "judge_score": pl.Float64(),
    "judge_result": pl.String(),
    "judge_evaluations_scored": pl.Int32(),
    "judge_prompt_tokens": pl.Int64(),
    "judge_completion_tokens": pl.Int64(),
    "judge_total_tokens": pl.Int64(),
}


def judge_evaluator_columns(name: str) -> dict[str, pl.DataType]:
    """The columns of one evaluator in ``judge_evaluations`` (named like Azure AI Evaluation's)."""
    return {
        name: pl.Int64(),
        f"{name}_result": pl.String(),
        f"{name}_reason": pl.String(),
        f"{name}_threshold": pl.Int64(),
        f"{name}_status": pl.String(),
        f"{name}_prompt_tokens": pl.Int64(),
        f"{name}_completion_tokens": pl.Int64(),
        f"{name}_total_tokens": pl.Int64(),
        f"{name}_finish_reason": pl.String(),
        f"{name}_model": pl.String(),
        f"{name}_prompt_version": pl.String(),
        f"{name}_cached": pl.Boolean(),
    }


def judge_evaluations_schema(evaluators) -> dict[str, pl.DataType]:
    schema = dict(JUDGE_EVALUATIONS_BASE)
    for name in evaluators:
        schema.update(judge_evaluator_columns(name))
    return schema


JUDGE_CALIBRATION: dict[str, pl.DataType] = {
    "evaluator": pl.String(),
    "items": pl.Int64(),
    "scored": pl.Int64(),
    "kappa_quadratic": pl.Float64(),
    "spearman": pl.Float64(),
    "exact_agreement": pl.Float64(),
    "within_one": pl.Float64(),
    "mean_human": pl.Float64(),
    "mean_judge": pl.Float64(),
    "min_kappa": pl.Float64(),
    "passed": pl.Boolean(),
    "judge_model": pl.String(),
    "prompt_version": pl.String(),
    "golden_set": pl.String(),
    "golden_set_sha256": pl.String(),
}

# ---- warehouse views beyond one per table of TABLES ------------------------------------------------
# Declared here, as data, so that the storage (core/storage.py, below every stage) creates them
# without importing the stage that writes the tables, and every refresh of the warehouse has them
# whoever asks for it.
#
# Tables whose files may carry more columns than this schema: the view reads every file by name,
# and the schema only seeds the folder's empty ``_schema.parquet`` (written once, never replaced).
OPEN_TABLES: dict[str, dict[str, pl.DataType]] = {
    JUDGE_TABLE: judge_evaluations_schema(BUNDLED_EVALUATORS),
    JUDGE_CALIBRATION_TABLE: JUDGE_CALIBRATION,
}
# A table's view that carries another view's columns: table -> (the other, joined LEFT on
# ``completion_id``, its columns left out). ``scored_conversations`` has the judge's columns, null
# for the conversations the judge did not sample (or when it is off).
JOINED_VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "scored_conversations": (JUDGE_TABLE, ("completion_id", "partition_key", "created_at")),
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast ``df`` to ``schema`` (missing columns become nulls)."""
    return df.select(
        [
            (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


def hour_key(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(HOUR_KEY_FORMAT)


def parse_hour_key(key: str) -> datetime:
    return datetime.strptime(key, HOUR_KEY_FORMAT).replace(tzinfo=UTC)
