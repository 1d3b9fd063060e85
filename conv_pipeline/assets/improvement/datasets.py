"""Improvement assets (group ``improvement``), daily partitions, single-run backfills:

* ``finetune_dataset``      ``datasets/finetune/<day>/{train,validation}.jsonl`` (+ rejected, manifest)
* ``regression_eval_set``   ``datasets/regression_eval/<day>/{eval,openai_evals}.jsonl`` (+ …)
* ``prompt_experiments``    ``reports/experiments/<day>.{md,json}``, table ``experiment_results``
* ``segment_drift``         ``reports/drift/<day>.{md,json}``, table ``segment_drift``, WARN check
* ``failure_clusters``      ``reports/clusters/<day>.{md,json}``, table ``failure_clusters``

The logic is in ``core/improvement/datasets.py``, ``core/improvement/experiments.py``, ``core/improvement/drift.py`` and
``core/improvement/clusters.py``; docs/IMPROVEMENT.md explains every rule and config key.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline.assets._meta import md_table
from conv_pipeline.assets._ui import OWNERS, code_version
from conv_pipeline.assets.ingestion import RAW_KEY
from conv_pipeline.assets.scoring import ISSUES_KEY, SCORED_KEY
from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.improvement import clusters as clusters_core
from conv_pipeline.core.improvement import datasets, drift, experiments
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.pipeline import join_judgments
from conv_pipeline.core.schema import (
    EXPERIMENT_RESULTS,
    FAILURE_CLUSTERS,
    HOUR_KEY_FORMAT,
    SEGMENT_DRIFT,
    conform,
)
from conv_pipeline.core.storage import DataStore, atomic_write_bytes, atomic_write_parquet
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore

FINETUNE_KEY = dg.AssetKey("finetune_dataset")
EVAL_KEY = dg.AssetKey("regression_eval_set")
EXPERIMENTS_KEY = dg.AssetKey("prompt_experiments")
DRIFT_KEY = dg.AssetKey("segment_drift")
CLUSTERS_KEY = dg.AssetKey("failure_clusters")
IMPROVEMENT_ASSETS = (
    "finetune_dataset",
    "regression_eval_set",
    "prompt_experiments",
    "segment_drift",
    "failure_clusters",
)
DRIFT_CHECK = "no_segment_drift"

_COMMON = {
    "group_name": "improvement",
    "owners": OWNERS,
    "code_version": code_version("improvement"),
    "backfill_policy": dg.BackfillPolicy.single_run(),
}


# ---- helpers -----------------------------------------------------------------------------------


def day_start(day: str) -> datetime:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)


def hours_of(first_day: datetime, days: int) -> list[str]:
    return [(first_day + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(24 * days)]


def window_hours(day: str, window_days: int) -> list[str]:
    """Hourly keys of the ``window_days`` days ending with ``day`` (included)."""
    return hours_of(day_start(day) - timedelta(days=window_days - 1), window_days)


def _read(store: DataStore, hours: list[str], raw_columns: list[str] | None = None):
    # the judge's columns (judge_score …) join the scored rows, as in the warehouse view
    scored = join_judgments(
        store.read_hours("scored_conversations", hours), judge_store.read_hours(store, hours)
    )
    issues = store.read_hours("conversation_issues", hours)
    raw = store.read_hours("raw_completions", hours, columns=raw_columns) if raw_columns else None
    return scored, issues, raw


def _write_jsonl(path: Path, lines: list[str]) -> None:
    atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def _write_json(path: Path, obj: dict) -> None:
    body = json.dumps(obj, indent=2, ensure_ascii=False, default=str, sort_keys=True)
    atomic_write_bytes(path, body.encode("utf-8"))


def _rejected_lines(rejected: pl.DataFrame) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in rejected.to_dicts()]


def _report(store: DataStore, kind: str, name: str, markdown: str, obj: dict) -> Path:
    base = store.reports_dir / kind / name
    atomic_write_bytes(base.with_suffix(".md"), markdown.encode("utf-8"))
    _write_json(base.with_suffix(".json"), obj)
    return base.with_suffix(".md")


def _table_path(store: DataStore, table: str, day: str) -> Path:
    return store.tables_dir / table / f"{day}.parquet"


def _days_summary(rows: list[dict]) -> dg.MetadataValue:
    return dg.MetadataValue.md(md_table(pl.DataFrame(rows), limit=62))


def _sample_md(lines: list[str], n: int) -> str:
    if not lines:
        return "_no examples_"
    body = "\n".join(lines[:n])
    return f"```json\n{body}\n```"


def _one_or_many(meta: dict, per_day: list[dict], extra_single: dict) -> dict:
    """Dagster copies a ranged run's metadata onto each partition: totals are named as such."""
    if len(per_day) == 1:
        meta.update(extra_single)
    else:
        meta["days"] = _days_summary(per_day)
        meta["partition_range"] = f"{per_day[0]['day']} … {per_day[-1]['day']}"
    return meta


# ---- assets ------------------------------------------------------------------------------------


def build_improvement_assets(
    parts: Partitions, config: MonitoringConfig
) -> list[dg.AssetsDefinition]:
    imp = config.improvement

    @dg.asset(
        key=FINETUNE_KEY,
        deps=[RAW_KEY, SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "jsonl"},
        description=(
            "Fine-tuning / distillation dataset in OpenAI's chat fine-tuning JSONL: the day's "
            "best conversations (quality and judge thresholds from config, no issues, no "
            "redaction markers), de-duplicated on the normalized prompt + answer, validated "
            "(roles, order, non-empty final assistant turn, token limit) and PII-screened before "
            "publishing, split deterministically by md5(completion_id) into "
            "`datasets/finetune/<day>/train.jsonl` and `validation.jsonl`."
        ),
        **_COMMON,
    )
    def finetune_dataset(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, st = pipeline.store, imp.finetune
        per_day, last = [], {}
        for day in context.partition_keys:
            hours = window_hours(day, st.window_days)
            scored, issues, raw = _read(store, hours, datasets.RAW_COLUMNS)
            candidates, excluded = datasets.finetune_candidates(scored, issues, raw, st)
            built = datasets.build_finetune_dataset(candidates, st)
            folder = store.root / "datasets" / "finetune" / day
            train = built["train"]["line"].to_list()
            validation = built["validation"]["line"].to_list()
            _write_jsonl(folder / "train.jsonl", train)
            _write_jsonl(folder / "validation.jsonl", validation)
            _write_jsonl(folder / "rejected.jsonl", _rejected_lines(built["rejected"]))
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
            _write_json(folder / "manifest.json", manifest)
            per_day.append(
                {
                    "day": day,
                    "conversations": scored.height,
                    "train": len(train),
                    "validation": len(validation),
                    "rejected": built["rejected"].height,
                    "duplicates": built["duplicates"],
                }
            )
            last = {"manifest": manifest, "sample": train or validation, "folder": folder}
        m = last["manifest"]
        meta = {
            "train_examples": sum(d["train"] for d in per_day),
            "validation_examples": sum(d["validation"] for d in per_day),
            "rejected_examples": sum(d["rejected"] for d in per_day),
            "duplicates_removed": sum(d["duplicates"] for d in per_day),
            "path": dg.MetadataValue.path(str(last["folder"])),
            "sample": dg.MetadataValue.md(_sample_md(last["sample"], st.sample_rows)),
        }
        single = {
            "dagster/row_count": m["train"] + m["validation"],
            "excluded": dg.MetadataValue.json(m["excluded"]),
            "rejected_by_reason": dg.MetadataValue.json(m["rejected_by_reason"]),
            "estimated_tokens": m["estimated_tokens"],
            "meets_openai_minimum": m["meets_openai_minimum"],
        }
        return dg.MaterializeResult(metadata=_one_or_many(meta, per_day, single))

    @dg.asset(
        key=EVAL_KEY,
        deps=[RAW_KEY, SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "jsonl"},
        description=(
            "Regression eval set: the day's failing conversations (issues of the configured "
            "severities, or a judge score below the threshold when the judge ran), de-duplicated "
            "by prompt, worst answer kept: `datasets/regression_eval/<day>/eval.jsonl` (query, "
            "response, context, messages, issues, scores, completion_id) and `openai_evals.jsonl` "
            '(the same rows as {"item": …}).'
        ),
        **_COMMON,
    )
    def regression_eval_set(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, st = pipeline.store, imp.regression_eval
        per_day, last = [], {}
        for day in context.partition_keys:
            hours = window_hours(day, st.window_days)
            scored, issues, raw = _read(store, hours, datasets.RAW_COLUMNS)
            failing = datasets.failing_conversations(
                scored, issues, st.issue_severities, st.judge_score_column, st.judge_fail_below
            )
            built = datasets.build_eval_dataset(failing, raw, st)
            lines = built["rows"]["line"].to_list()
            folder = store.root / "datasets" / "regression_eval" / day
            _write_jsonl(folder / "eval.jsonl", lines)
            _write_jsonl(folder / "openai_evals.jsonl", [f'{{"item":{x}}}' for x in lines])
            _write_jsonl(folder / "rejected.jsonl", _rejected_lines(built["rejected"]))
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
            _write_json(folder / "manifest.json", manifest)
            per_day.append(
                {
                    "day": day,
                    "failing": failing.height,
                    "rows": len(lines),
                    "duplicates": built["duplicates"],
                    "rejected": built["rejected"].height,
                }
            )
            last = {"manifest": manifest, "lines": lines, "folder": folder}
        m = last["manifest"]
        meta = {
            "eval_rows": sum(d["rows"] for d in per_day),
            "duplicates_removed": sum(d["duplicates"] for d in per_day),
            "rejected_rows": sum(d["rejected"] for d in per_day),
            "path": dg.MetadataValue.path(str(last["folder"])),
            "sample": dg.MetadataValue.md(_sample_md(last["lines"], 2)),
        }
        single = {
            "dagster/row_count": m["rows"],
            "issues": dg.MetadataValue.json(m["issues"]),
        }
        return dg.MaterializeResult(metadata=_one_or_many(meta, per_day, single))

    @dg.asset(
        key=EXPERIMENTS_KEY,
        deps=[SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "scipy"},
        description=(
            "Prompt-variant and model A/B comparisons per day: n, mean quality with 95% CI, issue "
            "rates with Wilson CIs, Welch's t and Mann-Whitney on scores, two-proportion z-tests "
            "on rates, Holm-corrected, a minimum sample size, a verdict only when significant. A "
            "backfill over several days also writes the comparison over the whole range."
        ),
        **_COMMON,
    )
    def prompt_experiments(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, st = pipeline.store, imp.experiments
        keys = context.partition_keys
        per_day, last_md, last_path = [], "", None
        for day in keys:
            scored, issues, _ = _read(store, hours_of(day_start(day), 1))
            result = experiments.compare(scored, issues, st, day)
            md = experiments.render_markdown(result)
            table = result.pop("table")
            atomic_write_parquet(
                _table_path(store, "experiment_results", day), conform(table, EXPERIMENT_RESULTS)
            )
            last_path = _report(store, "experiments", day, md, result)
            last_md = md
            per_day.append(
                {
                    "day": day,
                    "conversations": result["conversations"],
                    "tests": result["tests"],
                    "significant": len(result["verdicts"]),
                }
            )
        meta: dict = {"path": dg.MetadataValue.path(str(last_path))}
        if len(keys) > 1:
            first, last = day_start(keys[0]), day_start(keys[-1])
            scored, issues, _ = _read(store, hours_of(first, (last - first).days + 1))
            label = f"{keys[0]}..{keys[-1]}"
            result = experiments.compare(scored, issues, st, label)
            md = experiments.render_markdown(result)
            result.pop("table")
            meta["range_report"] = dg.MetadataValue.md(md)
            meta["range_path"] = dg.MetadataValue.path(
                str(_report(store, "experiments", f"range/{keys[0]}_{keys[-1]}", md, result))
            )
            meta["range_verdicts"] = len(result["verdicts"])
        single = {"report": dg.MetadataValue.md(last_md), "verdicts": per_day[-1]["significant"]}
        store.refresh_warehouse()
        return dg.MaterializeResult(metadata=_one_or_many(meta, per_day, single))

    @dg.asset(
        key=DRIFT_KEY,
        deps=[SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "scipy"},
        description=(
            "Each segment's (user_type, category, prompt_variant, model, and all) quality, issue "
            "rate and response length against its trailing baseline (the previous "
            f"{imp.drift.baseline_days} days): Welch + Cohen's d, two-proportion z + difference, "
            "Kolmogorov-Smirnov + PSI, Holm-corrected; the WARN check fails when a segment drifts."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                DRIFT_CHECK,
                asset=DRIFT_KEY,
                description=(
                    "Warns (never blocks) when a segment's quality, issue rate or response length "
                    "drifts from its trailing baseline: significant after Holm correction and a "
                    "material effect size."
                ),
                metadata={"severity": "WARN"},
            )
        ],
        **_COMMON,
    )
    def segment_drift(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, st = pipeline.store, imp.drift
        per_day, last_md, last_path, drifted_all = [], "", None, []
        for day in context.partition_keys:
            start = day_start(day)
            cur_s, cur_i, _ = _read(store, hours_of(start, 1))
            base_start = start - timedelta(days=st.baseline_days)
            base_s, base_i, _ = _read(store, hours_of(base_start, st.baseline_days))
            result = drift.detect(
                drift.conversation_frame(cur_s, cur_i),
                drift.conversation_frame(base_s, base_i),
                st,
                day,
            )
            label = f"{base_start:%Y-%m-%d} … {start - timedelta(days=1):%Y-%m-%d}"
            md = drift.render_markdown(result, day, label)
            atomic_write_parquet(
                _table_path(store, "segment_drift", day), conform(result, SEGMENT_DRIFT)
            )
            last_path = _report(
                store,
                "drift",
                day,
                md,
                {
                    "day": day,
                    "baseline": label,
                    "settings": st.model_dump(),
                    "rows": result.to_dicts(),
                },
            )
            last_md = md
            d = result.filter(pl.col("drifted"))
            drifted_all.extend(d.to_dicts())
            per_day.append(
                {
                    "day": day,
                    "conversations": cur_s.height,
                    "baseline_conversations": base_s.height,
                    "segments_tested": result.filter(pl.col("status") == "tested")
                    .select("dimension", "segment")
                    .unique()
                    .height,
                    "drifted": d.height,
                }
            )
        drifted = pl.DataFrame(drifted_all, schema=SEGMENT_DRIFT) if drifted_all else None
        check_meta = {
            "days_evaluated": len(per_day),
            "drifted_metrics": len(drifted_all),
            "alpha": st.alpha,
            "min_cohens_d": st.min_cohens_d,
            "min_rate_change": st.min_rate_change,
            "min_psi": st.min_psi,
            "baseline_days": st.baseline_days,
        }
        if drifted is not None:
            check_meta["drifted"] = dg.MetadataValue.md(
                md_table(
                    drifted.select(
                        "day",
                        "dimension",
                        "segment",
                        "metric",
                        "baseline",
                        "current",
                        "effect_measure",
                        "effect_size",
                        "p_holm",
                    ),  # fmt: skip
                    limit=50,
                )
            )
        check = dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            asset_key=DRIFT_KEY,
            passed=not drifted_all,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=check_meta,
        )
        meta: dict = {"path": dg.MetadataValue.path(str(last_path))}
        single = {"report": dg.MetadataValue.md(last_md), "drifted_metrics": per_day[-1]["drifted"]}
        store.refresh_warehouse()
        return dg.MaterializeResult(
            metadata=_one_or_many(meta, per_day, single), check_results=[check]
        )

    @dg.asset(
        key=CLUSTERS_KEY,
        deps=[RAW_KEY, SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "scikit-learn"},
        description=(
            "Where the model fails: the user prompts of the day's failing conversations (issues "
            "of the regression-eval severities, or a low judge score) grouped into themes by "
            "TF-IDF and k-means (k by cosine silhouette, fixed seed), each with top terms, size, "
            "share of failures, mean quality, top issues and example completion ids."
        ),
        **_COMMON,
    )
    def failure_clusters(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, st = pipeline.store, imp.clusters
        ev = imp.regression_eval
        per_day, last_md, last_path = [], "", None
        for day in context.partition_keys:
            scored, issues, raw = _read(
                store, hours_of(day_start(day), 1), ["completion_id", "last_user_message"]
            )
            failing = datasets.failing_conversations(
                scored, issues, ev.issue_severities, ev.judge_score_column, ev.judge_fail_below
            ).join(raw, on="completion_id", how="left")
            result = clusters_core.cluster_failures(failing, st, day)
            md = clusters_core.render_markdown(result)
            atomic_write_parquet(
                _table_path(store, "failure_clusters", day),
                conform(clusters_core.to_table(result), FAILURE_CLUSTERS),
            )
            last_path = _report(store, "clusters", day, md, result)
            last_md = md
            per_day.append(
                {
                    "day": day,
                    "failures": result["failures"],
                    "clusters": len(result["clusters"]),
                    "silhouette": result["silhouette"],
                }
            )
        meta: dict = {"path": dg.MetadataValue.path(str(last_path))}
        single = {
            "report": dg.MetadataValue.md(last_md),
            "failures": per_day[-1]["failures"],
            "clusters": per_day[-1]["clusters"],
        }
        store.refresh_warehouse()
        return dg.MaterializeResult(metadata=_one_or_many(meta, per_day, single))

    return [
        finetune_dataset,
        regression_eval_set,
        prompt_experiments,
        segment_drift,
        failure_clusters,
    ]
