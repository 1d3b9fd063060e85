"""``judge_evaluations`` (hourly) and ``judge_calibration``: the LLM judge (docs/JUDGE.md).

Thin, like every asset: read, call ``core.judge``, write, attach metadata. The judge is off until
a model is configured (``CONV_PIPELINE_JUDGE_MODEL``): then the asset writes empty partitions and
says so, and everything downstream runs as without it.
"""

import json

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.metadata import column_schema, md_table
from conv_pipeline.checks import judge as judge_checks
from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.calibration import (
    DEFAULT_GOLDEN_SET,
    calibration_table,
    judge_golden_set,
    load_golden_set,
    rejected_frame,
)
from conv_pipeline.core.judge.evaluators import load_evaluators
from conv_pipeline.core.judge.pipeline import judge_partitions, partition_summaries
from conv_pipeline.core.judge.types import empty_table, table_schema
from conv_pipeline.core.privacy.retention import retained_keys
from conv_pipeline.partitions import Partitions
from conv_pipeline.project import Project
from conv_pipeline.resources import JudgeResource, PipelineStore

JUDGE_RAW_COLUMNS = ["completion_id", "messages", "response"]


def _evaluations_metadata(
    judged, stats, per: dict, names: list[str], where: str, hours, kept
) -> dict:
    """What a judge run shows in the UI: counts, statuses, per-evaluator figures, a preview."""
    evaluator_rows = pl.DataFrame([{"evaluator": n, **v} for n, v in stats.per_evaluator.items()])
    meta = {
        "judge": where,
        "partitions_written": len(hours),
        "retained_partitions_left_as_they_are": len(kept),
        "dagster/column_schema": column_schema(table_schema(names)),
        **{k: v for k, v in stats.as_metadata().items() if not isinstance(v, dict)},
        "judge_sample_reasons": dg.MetadataValue.json(stats.by_reason),
        "judge_statuses": dg.MetadataValue.json(stats.statuses),
        "evaluators": dg.MetadataValue.md(md_table(evaluator_rows)),
        "preview": dg.MetadataValue.md(
            md_table(
                judged.select(
                    "completion_id",
                    "judge_sample_reason",
                    "judge_score",
                    *[c for n in names for c in (n, f"{n}_result")],
                )
            )
        ),
    }
    if len(hours) > 1:
        meta["rows_in_run"] = judged.height
        per_hour = pl.DataFrame(
            [
                {
                    "hour": k,
                    "judged": v["judged_conversations"],
                    "judge_average_score": v["judge_average_score"],
                    "judge_pass_rate": v["judge_pass_rate"],
                    "judge_failure_rate": v["judge_failure_rate"],
                }
                for k, v in per.items()
            ]
        )
        meta["hours"] = dg.MetadataValue.md(md_table(per_hour, limit=48))
    else:
        meta["dagster/row_count"] = judged.height
    return {k: v for k, v in meta.items() if v is not None}


def build_judge_evaluations(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    evaluators = load_evaluators(config.judge, config.source_dir)
    names = [ev.name for ev in evaluators]
    described = ", ".join(f"`{ev.name}` (v{ev.prompt_version})" for ev in evaluators)

    @dg.asset(
        key=keys.JUDGE_EVALUATIONS,
        deps=[keys.RAW, keys.SCORED],
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.JUDGE,
        kinds={"openai", "parquet"},
        description=(
            "LLM-as-judge scores 1-5 with reason and pass/fail for a stratified sample of each "
            f"hour (every low-quality or flagged conversation, a share of the others): {described}. "
            "Columns named like Azure AI Evaluation's; judgments cached by completion, evaluator, "
            "prompt version and model. Off until CONV_PIPELINE_JUDGE_MODEL is set."
        ),
        check_specs=judge_checks.specs(keys.JUDGE_EVALUATIONS, config),
    )
    def judge_evaluations(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, judge: JudgeResource
    ) -> dg.MaterializeResult:
        store = pipeline.store
        # Hours whose raw text retention deleted keep their judgments (docs/PRIVACY.md): judging
        # them again would judge empty texts.
        kept = retained_keys(store, context.partition_keys)
        hours = [k for k in context.partition_keys if k not in kept]
        settings = config.judge
        if not judge.enabled:
            for key in hours:
                judge_store.write_hour(store, key, empty_table(names))
            per = partition_summaries(empty_table(names), hours)
            return dg.MaterializeResult(
                metadata={
                    "judge": judge.describe(),
                    "partitions_written": len(hours),
                    "retained_partitions_left_as_they_are": len(kept),
                    "dagster/row_count": 0,
                },
                check_results=judge_checks.evaluate(
                    keys.JUDGE_EVALUATIONS, config, per, enabled=False
                ),
            )
        scored = store.read_hours("scored_conversations", hours)
        raw = store.read_hours("raw_completions", hours, columns=JUDGE_RAW_COLUMNS)
        connection = judge.connection()

        def plan(stats) -> None:
            context.log.info(
                f"judge {connection.where()}: {stats.sampled} conversations sampled, "
                f"{stats.cache_hits} judgments cached, {stats.planned_calls} calls planned; "
                f"estimated {stats.estimated_tokens:,} tokens"
                + (
                    f" (≈ ${stats.estimated_cost_usd:.4f})"
                    if stats.estimated_cost_usd is not None
                    else ""
                )
            )

        try:
            with JudgmentCache(judge_store.cache_path(store)) as cache:
                judged, stats = judge_partitions(
                    scored,
                    raw,
                    evaluators,
                    settings,
                    connection,
                    cache,
                    low_quality_below=config.pipeline_settings.low_quality_below,
                    on_plan=plan,
                )
        except ValueError as exc:  # configuration (no endpoint, no key for a plain base URL)
            raise dg.Failure(description=f"the LLM judge is misconfigured: {exc}") from exc
        by_key = judged.partition_by("partition_key", as_dict=True, maintain_order=True)
        for key in hours:
            judge_store.write_hour(store, key, by_key.get((key,), judged.clear()))
        per = partition_summaries(judged, hours)
        meta = _evaluations_metadata(judged, stats, per, names, connection.where(), hours, kept)
        context.log.info(
            f"judge: {stats.calls} calls, {stats.cache_hits} cache hits, "
            f"{stats.skipped_budget} over budget, {stats.prompt_tokens + stats.completion_tokens:,} tokens"
        )
        return dg.MaterializeResult(
            metadata=meta,
            check_results=judge_checks.evaluate(keys.JUDGE_EVALUATIONS, config, per, enabled=True),
        )

    return judge_evaluations


def build_judge_calibration(config: MonitoringConfig) -> dg.AssetsDefinition:
    evaluators = load_evaluators(config.judge, config.source_dir)
    names = [ev.name for ev in evaluators]

    @dg.asset(
        key=keys.JUDGE_CALIBRATION,
        group_name=keys.JUDGE,
        kinds={"openai", "parquet"},
        description=(
            "The judge against a golden set of human-labelled pairs (judge.calibration.golden_set, "
            "by default the small bundled one; 100-150 of your own are recommended): "
            "quadratic-weighted Cohen's kappa, Spearman, exact and within-one agreement per "
            "evaluator, in the `judge_calibration` table."
        ),
        check_specs=[judge_checks.agreement_spec(keys.JUDGE_CALIBRATION, config)],
    )
    def judge_calibration(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, judge: JudgeResource
    ) -> dg.MaterializeResult:
        store = pipeline.store
        cal = config.judge.calibration
        target = config.source_dir / cal.golden_set if cal.golden_set else DEFAULT_GOLDEN_SET
        golden = load_golden_set(target, set(names))
        atomic_write_parquet(
            store.rejected_dir("judge_golden_set") / "golden_set.parquet", rejected_frame(golden)
        )
        note = None
        outcomes: dict = {}
        model = ""
        if not judge.enabled:
            note = "the judge is off (CONV_PIPELINE_JUDGE_MODEL is not set): nothing to compare"
        else:
            connection = judge.connection()
            model = connection.model
            try:
                with JudgmentCache(judge_store.cache_path(store)) as cache:
                    outcomes = judge_golden_set(golden, evaluators, config.judge, connection, cache)
            except ValueError as exc:
                raise dg.Failure(description=f"the LLM judge is misconfigured: {exc}") from exc
        table = calibration_table(
            golden,
            outcomes,
            min_kappa=cal.min_kappa,
            min_items=cal.min_items,
            model=model,
            prompt_versions={ev.name: ev.prompt_version for ev in evaluators},
        )
        atomic_write_parquet(judge_store.calibration_path(store), table)
        atomic_write_bytes(
            store.reports_dir / "judge" / "calibration.json",
            json.dumps(
                {"golden_set": golden.path, "rows": table.to_dicts(), "rejected": golden.rejected},
                indent=2,
                default=str,
            ).encode("utf-8"),
        )
        store.refresh_warehouse()
        if len(golden.items) < 100:
            context.log.warning(
                f"the golden set has {len(golden.items)} labelled pairs; 100-150 are recommended "
                "for agreement figures you can rely on"
            )
        rows = table.to_dicts()
        return dg.MaterializeResult(
            metadata={
                "golden_set": golden.path,
                "golden_pairs": len(golden.items),
                "golden_rejected_lines": len(golden.rejected),
                "judge_model": model,
                "agreement": dg.MetadataValue.md(
                    md_table(
                        table.select(
                            "evaluator",
                            "items",
                            "scored",
                            "kappa_quadratic",
                            "spearman",
                            "exact_agreement",
                            "within_one",
                            "passed",
                        )
                    )
                ),
                **({"note": note} if note else {}),
            },
            check_results=[judge_checks.agreement(keys.JUDGE_CALIBRATION, config, rows, note=note)],
        )

    return judge_calibration


def build_defs(project: Project) -> dg.Definitions:
    """The judge stage: ``judge_evaluations`` (hourly), ``judge_calibration`` and its job."""
    calibration = build_judge_calibration(project.config)
    return dg.Definitions(
        assets=[build_judge_evaluations(project.parts, project.config), calibration],
        jobs=[
            dg.define_asset_job(
                keys.JUDGE_CALIBRATION_JOB,
                selection=[keys.JUDGE_CALIBRATION],
                description="Score the golden set with the judge and measure its agreement with people.",
            )
        ],
        resources=project.uses("pipeline", "judge"),
    )
