"""Improvement datasets, one daily partition each (single-run backfills; docs/IMPROVEMENT.md):

* ``finetune_dataset``      ``datasets/finetune/<day>/{train,validation}.jsonl`` (+ rejected, manifest)
* ``regression_eval_set``   ``datasets/regression_eval/<day>/{eval,openai_evals}.jsonl`` (+ …)

The rules are in ``core/improvement/datasets.py``.
"""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.improvement.common import (
    day_start,
    one_or_many,
    read_window,
    rejected_lines,
    sample_md,
    window_hours,
    write_json,
    write_jsonl,
)
from conv_pipeline.core.config import FinetuneSettings, MonitoringConfig, RegressionEvalSettings
from conv_pipeline.core.improvement import datasets
from conv_pipeline.core.storage import DataStore
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore


def _finetune_day(store: DataStore, st: FinetuneSettings, day: str) -> tuple[dict, dict, Path]:
    """Build and write one day's fine-tuning set; returns its summary row, manifest and folder."""
    hours = window_hours(day, st.window_days)
    scored, issues, raw = read_window(store, hours, datasets.RAW_COLUMNS)
    candidates, excluded = datasets.finetune_candidates(scored, issues, raw, st)
    built = datasets.build_finetune_dataset(candidates, st)
    folder = store.root / "datasets" / "finetune" / day
    train = built["train"]["line"].to_list()
    validation = built["validation"]["line"].to_list()
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "validation.jsonl", validation)
    write_jsonl(folder / "rejected.jsonl", rejected_lines(built["rejected"]))
    tokens = pl.concat([built["train"]["tokens"], built["validation"]["tokens"]])
    manifest = {
        "day": day,
        "window_days": st.window_days,
        "window_start": hours[0],
        "window_end_exclusive": (day_start(day) + timedelta(days=1)).isoformat(),
        "conversations": scored.height,
        "candidates": candidates.height,
        "excluded": excluded,
        "duplicates_removed": built["duplicates"],
        "over_max_examples": built["over_max_examples"],
        "rejected": built["rejected"].height,
        "rejected_by_reason": datasets.rejection_counts(built["rejected"]),
        "train": len(train),
        "validation": len(validation),
        "meets_openai_minimum": len(train) >= st.min_training_examples,
        "estimated_tokens": int(tokens.sum()) if tokens.len() else 0,
        "max_tokens_per_example": st.max_tokens_per_example,
        "judge_column_used": st.judge_score_column
        if st.judge_score_column in scored.columns
        else None,
        "settings": st.model_dump(),
    }
    write_json(folder / "manifest.json", manifest)
    row = {
        "day": day,
        "conversations": scored.height,
        "train": len(train),
        "validation": len(validation),
        "rejected": built["rejected"].height,
        "duplicates": built["duplicates"],
    }
    return row, {"manifest": manifest, "sample": train or validation}, folder


def build_finetune_dataset(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st = config.improvement.finetune

    @dg.asset(
        key=keys.FINETUNE,
        deps=[keys.RAW, keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "jsonl"},
        description=(
            "Fine-tuning / distillation dataset in OpenAI's chat fine-tuning JSONL: the day's "
            "best conversations (quality and judge thresholds from config, no issues, no "
            "redaction markers), de-duplicated on the normalized prompt + answer, validated "
            "(roles, order, non-empty final assistant turn, token limit) and PII-screened before "
            "publishing, split deterministically by md5(completion_id) into "
            "`datasets/finetune/<day>/train.jsonl` and `validation.jsonl`."
        ),
    )
    def finetune_dataset(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        per_day, last, folder = [], {}, None
        for day in context.partition_keys:
            row, last, folder = _finetune_day(pipeline.store, st, day)
            per_day.append(row)
        m = last["manifest"]
        meta = {
            "train_examples": sum(d["train"] for d in per_day),
            "validation_examples": sum(d["validation"] for d in per_day),
            "rejected_examples": sum(d["rejected"] for d in per_day),
            "duplicates_removed": sum(d["duplicates"] for d in per_day),
            "path": dg.MetadataValue.path(str(folder)),
            "sample": dg.MetadataValue.md(sample_md(last["sample"], st.sample_rows)),
        }
        single = {
            "dagster/row_count": m["train"] + m["validation"],
            "excluded": dg.MetadataValue.json(m["excluded"]),
            "rejected_by_reason": dg.MetadataValue.json(m["rejected_by_reason"]),
            "estimated_tokens": m["estimated_tokens"],
            "meets_openai_minimum": m["meets_openai_minimum"],
        }
        return dg.MaterializeResult(metadata=one_or_many(meta, per_day, single))

    return finetune_dataset


def _eval_day(store: DataStore, st: RegressionEvalSettings, day: str) -> tuple[dict, dict, Path]:
    """Build and write one day's regression eval set; returns its summary row, manifest and
    folder."""
    hours = window_hours(day, st.window_days)
    scored, issues, raw = read_window(store, hours, datasets.RAW_COLUMNS)
    failing = datasets.failing_conversations(
        scored, issues, st.issue_severities, st.judge_score_column, st.judge_fail_below
    )
    built = datasets.build_eval_dataset(failing, raw, st)
    lines = built["rows"]["line"].to_list()
    folder = store.root / "datasets" / "regression_eval" / day
    write_jsonl(folder / "eval.jsonl", lines)
    write_jsonl(folder / "openai_evals.jsonl", [f'{{"item":{x}}}' for x in lines])
    write_jsonl(folder / "rejected.jsonl", rejected_lines(built["rejected"]))
    issue_counts = (
        failing.select(pl.col("issues").explode().alias("issue"))
        .drop_nulls()
        .group_by("issue")
        .len()
        .sort(["len", "issue"], descending=[True, False])
    )
    manifest = {
        "day": day,
        "window_days": st.window_days,
        "conversations": scored.height,
        "failing": failing.height,
        "rows": len(lines),
        "duplicates_removed": built["duplicates"],
        "rejected": built["rejected"].height,
        "rejected_by_reason": datasets.rejection_counts(built["rejected"]),
        "truncated": built["truncated"],
        "issues": dict(issue_counts.rows()),
        "settings": st.model_dump(),
    }
    write_json(folder / "manifest.json", manifest)
    row = {
        "day": day,
        "failing": failing.height,
        "rows": len(lines),
        "duplicates": built["duplicates"],
        "rejected": built["rejected"].height,
    }
    return row, {"manifest": manifest, "lines": lines}, folder


def build_regression_eval_set(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st = config.improvement.regression_eval

    @dg.asset(
        key=keys.EVAL_SET,
        deps=[keys.RAW, keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "jsonl"},
        description=(
            "Regression eval set: the day's failing conversations (issues of the configured "
            "severities, or a judge score below the threshold when the judge ran), de-duplicated "
            "by prompt, worst answer kept: `datasets/regression_eval/<day>/eval.jsonl` (query, "
            "response, context, messages, issues, scores, completion_id) and `openai_evals.jsonl` "
            '(the same rows as {"item": …}).'
        ),
    )
    def regression_eval_set(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        per_day, last, folder = [], {}, None
        for day in context.partition_keys:
            row, last, folder = _eval_day(pipeline.store, st, day)
            per_day.append(row)
        m = last["manifest"]
        meta = {
            "eval_rows": sum(d["rows"] for d in per_day),
            "duplicates_removed": sum(d["duplicates"] for d in per_day),
            "rejected_rows": sum(d["rejected"] for d in per_day),
            "path": dg.MetadataValue.path(str(folder)),
            "sample": dg.MetadataValue.md(sample_md(last["lines"], 2)),
        }
        single = {
            "dagster/row_count": m["rows"],
            "issues": dg.MetadataValue.json(m["issues"]),
        }
        return dg.MaterializeResult(metadata=one_or_many(meta, per_day, single))

    return regression_eval_set
