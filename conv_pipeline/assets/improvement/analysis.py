"""Daily analyses of the improvement stage (docs/IMPROVEMENT.md), each a report in
``reports/<kind>/<day>.{md,json}`` and a table in the warehouse:

* ``prompt_experiments``  prompt-variant and model A/B comparisons (``experiment_results``)
* ``segment_drift``       each segment against its trailing baseline (``segment_drift``), WARN check
* ``failure_clusters``    themes of the day's failing prompts (``failure_clusters``)

The statistics are in ``core/improvement/{experiments,drift,clusters}.py``.
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.improvement.common import (
    analyze_days,
    day_start,
    hours_of,
    one_or_many,
    read_window,
    write_day_table,
    write_report,
)
from conv_pipeline.assets.metadata import md_table
from conv_pipeline.core.config import DriftSettings, MonitoringConfig
from conv_pipeline.core.improvement import clusters, datasets, drift, experiments
from conv_pipeline.core.schema import EXPERIMENT_RESULTS, FAILURE_CLUSTERS, SEGMENT_DRIFT
from conv_pipeline.core.storage import DataStore
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore

DRIFT_CHECK = "no_segment_drift"


def build_prompt_experiments(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st = config.improvement.experiments

    @dg.asset(
        key=keys.EXPERIMENTS,
        deps=[keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "scipy"},
        description=(
            "Prompt-variant and model A/B comparisons per day: n, mean quality with 95% CI, issue "
            "rates with Wilson CIs, Welch's t and Mann-Whitney on scores, two-proportion z-tests "
            "on rates, Holm-corrected, a minimum sample size, a verdict only when significant. A "
            "backfill over several days also writes the comparison over the whole range."
        ),
    )
    def prompt_experiments(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store
        days = context.partition_keys

        def analyze(day: str) -> tuple[str, dict, dict]:
            scored, issues, _ = read_window(store, hours_of(day_start(day), 1))
            result = experiments.compare(scored, issues, st, day)
            md = experiments.render_markdown(result)
            write_day_table(
                store, "experiment_results", day, result.pop("table"), EXPERIMENT_RESULTS
            )
            row = {
                "conversations": result["conversations"],
                "tests": result["tests"],
                "significant": len(result["verdicts"]),
            }
            return md, result, row

        per_day, last = analyze_days(store, days, "experiments", analyze)
        meta: dict = {"path": last["path"]}
        if len(days) > 1:
            first, final = day_start(days[0]), day_start(days[-1])
            scored, issues, _ = read_window(store, hours_of(first, (final - first).days + 1))
            result = experiments.compare(scored, issues, st, f"{days[0]}..{days[-1]}")
            md = experiments.render_markdown(result)
            result.pop("table")
            path = write_report(store, "experiments", f"range/{days[0]}_{days[-1]}", md, result)
            meta["range_report"] = dg.MetadataValue.md(md)
            meta["range_path"] = dg.MetadataValue.path(str(path))
            meta["range_verdicts"] = len(result["verdicts"])
        single = {"report": dg.MetadataValue.md(last["md"]), "verdicts": per_day[-1]["significant"]}
        return dg.MaterializeResult(metadata=one_or_many(meta, per_day, single))

    return prompt_experiments


def _drift_day(store: DataStore, st: DriftSettings, day: str) -> tuple[str, dict, dict, list]:
    start = day_start(day)
    cur_s, cur_i, _ = read_window(store, hours_of(start, 1))
    base_start = start - timedelta(days=st.baseline_days)
    base_s, base_i, _ = read_window(store, hours_of(base_start, st.baseline_days))
    result = drift.detect(
        drift.conversation_frame(cur_s, cur_i), drift.conversation_frame(base_s, base_i), st, day
    )
    label = f"{base_start:%Y-%m-%d} … {start - timedelta(days=1):%Y-%m-%d}"
    md = drift.render_markdown(result, day, label)
    write_day_table(store, "segment_drift", day, result, SEGMENT_DRIFT)
    body = {"day": day, "baseline": label, "settings": st.model_dump(), "rows": result.to_dicts()}
    drifted = result.filter(pl.col("drifted"))
    row = {
        "conversations": cur_s.height,
        "baseline_conversations": base_s.height,
        "segments_tested": result.filter(pl.col("status") == "tested")
        .select("dimension", "segment")
        .unique()
        .height,
        "drifted": drifted.height,
    }
    return md, body, row, drifted.to_dicts()


def _drift_check(st: DriftSettings, days: int, drifted: list[dict]) -> dg.AssetCheckResult:
    meta = {
        "days_evaluated": days,
        "drifted_metrics": len(drifted),
        "alpha": st.alpha,
        "min_cohens_d": st.min_cohens_d,
        "min_rate_change": st.min_rate_change,
        "min_psi": st.min_psi,
        "baseline_days": st.baseline_days,
    }
    if drifted:
        columns = (
            "day", "dimension", "segment", "metric", "baseline", "current", "effect_measure",
            "effect_size", "p_holm",
        )  # fmt: skip
        table = pl.DataFrame(drifted, schema=SEGMENT_DRIFT).select(columns)
        meta["drifted"] = dg.MetadataValue.md(md_table(table, limit=50))
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        asset_key=keys.DRIFT,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=meta,
    )


def build_segment_drift(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st = config.improvement.drift

    @dg.asset(
        key=keys.DRIFT,
        deps=[keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "scipy"},
        description=(
            "Each segment's (user_type, category, prompt_variant, model, and all) quality, issue "
            "rate and response length against its trailing baseline (the previous "
            f"{st.baseline_days} days): Welch + Cohen's d, two-proportion z + difference, "
            "Kolmogorov-Smirnov + PSI, Holm-corrected; the WARN check fails when a segment drifts."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                DRIFT_CHECK,
                asset=keys.DRIFT,
                description=(
                    "Warns (never blocks) when a segment's quality, issue rate or response length "
                    "drifts from its trailing baseline: significant after Holm correction and a "
                    "material effect size."
                ),
                metadata={"severity": "WARN"},
            )
        ],
    )
    def segment_drift(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        drifted: list[dict] = []

        def analyze(day: str) -> tuple[str, dict, dict]:
            md, body, row, found = _drift_day(pipeline.store, st, day)
            drifted.extend(found)
            return md, body, row

        per_day, last = analyze_days(pipeline.store, context.partition_keys, "drift", analyze)
        single = {
            "report": dg.MetadataValue.md(last["md"]),
            "drifted_metrics": per_day[-1]["drifted"],
        }
        return dg.MaterializeResult(
            metadata=one_or_many({"path": last["path"]}, per_day, single),
            check_results=[_drift_check(st, len(per_day), drifted)],
        )

    return segment_drift


def build_failure_clusters(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st, ev = config.improvement.clusters, config.improvement.regression_eval

    @dg.asset(
        key=keys.CLUSTERS,
        deps=[keys.RAW, keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "scikit-learn"},
        description=(
            "Where the model fails: the user prompts of the day's failing conversations (issues "
            "of the regression-eval severities, or a low judge score) grouped into themes by "
            "TF-IDF and k-means (k by cosine silhouette, fixed seed), each with top terms, size, "
            "share of failures, mean quality, top issues and example completion ids."
        ),
    )
    def failure_clusters(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store

        def analyze(day: str) -> tuple[str, dict, dict]:
            hours = hours_of(day_start(day), 1)
            scored, issues, raw = read_window(store, hours, ["completion_id", "last_user_message"])
            failing = datasets.failing_conversations(
                scored, issues, ev.issue_severities, ev.judge_score_column, ev.judge_fail_below
            ).join(raw, on="completion_id", how="left")
            result = clusters.cluster_failures(failing, st, day)
            write_day_table(
                store, "failure_clusters", day, clusters.to_table(result), FAILURE_CLUSTERS
            )
            row = {
                "failures": result["failures"],
                "clusters": len(result["clusters"]),
                "silhouette": result["silhouette"],
            }
            return clusters.render_markdown(result), result, row

        per_day, last = analyze_days(store, context.partition_keys, "clusters", analyze)
        single = {
            "report": dg.MetadataValue.md(last["md"]),
            "failures": per_day[-1]["failures"],
            "clusters": per_day[-1]["clusters"],
        }
        return dg.MaterializeResult(metadata=one_or_many({"path": last["path"]}, per_day, single))

    return failure_clusters
