"""The scoring stage: ``scored_conversations`` (the seed's rubric, exactly, plus flags and
readability) and ``conversation_issues`` (the seed's issue rules and more), vectorized."""

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.metadata import md_table, standard
from conv_pipeline.checks import integrity, quality
from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.evaluators import issue_of_evaluators
from conv_pipeline.core.judge.pipeline import with_judge_issues
from conv_pipeline.core.privacy.retention import retained_keys
from conv_pipeline.core.schema import CONVERSATION_ISSUES, SCORED_CONVERSATIONS, conform
from conv_pipeline.core.scoring.issues import categorize_issues
from conv_pipeline.core.scoring.metrics import partition_metrics, quality_distribution
from conv_pipeline.core.scoring.rubric import INPUT_COLUMNS, score_conversations
from conv_pipeline.partitions import Partitions
from conv_pipeline.project import Project
from conv_pipeline.resources import PipelineStore


def build_scored_conversations(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.SCORED,
        deps=[keys.RAW],
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.SCORING,
        kinds={"polars", "parquet"},
        description=(
            "One row per completion: `quality_score` is the seed's `calculate_quality_score` on the "
            "final assistant text (exactly), `quality_band` its distribution bands, plus response "
            "length, words, tokens, finish reason, refusal, error, helpful/courtesy/negative "
            "indicator flags and a readability grade (Automated Readability Index)."
        ),
        check_specs=[
            *integrity.specs(keys.SCORED, [integrity.MATCHES_UPSTREAM, integrity.SCHEMA]),
            *quality.specs(keys.SCORED, config, quality.SCORED_METRICS, target=True),
        ],
    )
    def scored_conversations(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store
        # Hours whose raw text retention deleted keep their scores (docs/PRIVACY.md).
        kept = retained_keys(store, context.partition_keys)
        hours = [k for k in context.partition_keys if k not in kept]
        raw = store.read_hours("raw_completions", hours, columns=INPUT_COLUMNS)
        scored = conform(score_conversations(raw), SCORED_CONVERSATIONS)
        by_key = scored.partition_by("partition_key", as_dict=True, maintain_order=True)
        for key in hours:
            store.write_hour("scored_conversations", key, by_key.get((key,), scored.clear()))
        metrics = partition_metrics(scored, None, hours)
        meta = standard(
            scored,
            SCORED_CONVERSATIONS,
            [
                "completion_id",
                "quality_score",
                "quality_band",
                "response_length",
                "is_refusal",
                "user_type",
            ],
            hours,
        )
        dist = quality_distribution(scored)
        meta.update(
            {
                "average_quality": float(scored["quality_score"].mean()) if scored.height else None,
                "quality_distribution": dg.MetadataValue.md(md_table(pl.DataFrame([dist]))),
            }
        )
        return dg.MaterializeResult(
            metadata={k: v for k, v in meta.items() if v is not None},
            check_results=[
                integrity.matches_upstream(keys.SCORED, scored, raw["completion_id"]),
                integrity.schema_matches(keys.SCORED, scored, SCORED_CONVERSATIONS),
                *quality.evaluate(
                    keys.SCORED, config, quality.SCORED_METRICS, metrics, target=True
                ),
            ],
        )

    return scored_conversations


def build_conversation_issues(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    judge_issue_of = issue_of_evaluators(config.judge, config.source_dir)

    @dg.asset(
        key=keys.ISSUES,
        deps=[keys.SCORED, keys.JUDGE_EVALUATIONS],
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.SCORING,
        kinds={"polars", "parquet"},
        description=(
            "One row per (completion, issue): the seed's `response_too_short` (< 50 characters) and "
            "`response_too_long` (> 1000), plus `empty_response`, `low_quality`, `refusal`, "
            "`truncated`, `content_filtered` and `missing_finish_reason`; with the LLM judge on, "
            "`incoherent`, `disfluent`, `irrelevant`, `ungrounded` (and custom evaluators' issues) "
            "for judgments below their threshold."
        ),
        check_specs=[
            *integrity.specs(keys.ISSUES, [integrity.KNOWN_ISSUES]),
            *quality.specs(keys.ISSUES, config, quality.ISSUE_METRICS, target=False),
        ],
    )
    def conversation_issues(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store
        hours = context.partition_keys
        scored = store.read_hours("scored_conversations", hours)
        issues = categorize_issues(
            scored, low_quality_below=config.pipeline_settings.low_quality_below
        )
        judged = judge_store.read_hours(store, hours)
        issues = with_judge_issues(issues, scored, judged, judge_issue_of)
        by_key = issues.partition_by("partition_key", as_dict=True, maintain_order=True)
        for key in hours:
            store.write_hour("conversation_issues", key, by_key.get((key,), issues.clear()))
        metrics = partition_metrics(scored, issues, hours)
        counts = issues.group_by("issue").len().sort("len", descending=True)
        meta = standard(
            issues,
            CONVERSATION_ISSUES,
            ["completion_id", "issue", "severity", "user_type", "category", "quality_score"],
            hours,
        )
        flagged = issues["completion_id"].n_unique() if issues.height else 0
        meta.update(
            {
                "conversations": scored.height,
                "conversations_with_issues": flagged,
                "quality_issue_rate": flagged / scored.height if scored.height else 0.0,
                "issue_counts": dg.MetadataValue.md(md_table(counts.rename({"len": "count"}))),
            }
        )
        return dg.MaterializeResult(
            metadata=meta,
            check_results=[
                integrity.issues_reference_scored(keys.ISSUES, issues, scored["completion_id"]),
                *quality.evaluate(
                    keys.ISSUES, config, quality.ISSUE_METRICS, metrics, target=False
                ),
            ],
        )

    return conversation_issues


def build_defs(project: Project) -> dg.Definitions:
    """The scoring stage: its two hourly assets with their integrity and quality checks."""
    return dg.Definitions(
        assets=[
            build_scored_conversations(project.parts, project.config),
            build_conversation_issues(project.parts, project.config),
        ],
        resources=project.uses("pipeline"),
    )
