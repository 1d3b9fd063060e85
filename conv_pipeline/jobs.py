"""Jobs: the hourly pipeline (raw → scored → issues → report) and the daily summary."""

from __future__ import annotations

import dagster as dg

from conv_pipeline.assets.improvement.datasets import IMPROVEMENT_ASSETS
from conv_pipeline.assets.improvement.feedback import FEEDBACK_ASSETS
from conv_pipeline.partitions import Partitions

HOURLY_JOB = "hourly_pipeline"
DAILY_JOB = "daily_summary"


def build_jobs(
    parts: Partitions, extra_hourly: tuple[str, ...] = (), extra_daily: tuple[str, ...] = ()
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.UnresolvedAssetJobDefinition]:
    """``extra_*``: further assets of each job (the Blob publishing assets, when it is on)."""
    hourly = dg.define_asset_job(
        HOURLY_JOB,
        selection=dg.AssetSelection.assets(
            "raw_completions",
            "scored_conversations",
            "judge_evaluations",
            "conversation_issues",
            "insight_report",
            *extra_hourly,
        ),
        partitions_def=parts.hourly,
        description="Ingest, score, judge (when configured), categorize and report the selected hours (checks "
        "included).",
    )
    daily = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.assets(
            "daily_insight_report", *IMPROVEMENT_ASSETS, *FEEDBACK_ASSETS, *extra_daily
        ),
        partitions_def=parts.daily,
        description=(
            "Summarize a day over its hourly reports; build its improvement datasets, experiments, "
            "drift, failure clusters and feedback agreement."
        ),
    )
    return hourly, daily


JUDGE_CALIBRATION_JOB = "judge_calibration_job"


def build_judge_calibration_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        JUDGE_CALIBRATION_JOB,
        selection=dg.AssetSelection.assets("judge_calibration"),
        description="Score the golden set with the judge and measure its agreement with people.",
    )
