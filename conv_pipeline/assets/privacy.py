"""The privacy stage's Dagster side (redaction itself runs inside ``raw_completions``): the
retention job, which deletes raw detail older than ``privacy.retention.raw_detail_days`` (90)
and keeps the aggregates (``core/privacy/retention.py``, docs/PRIVACY.md). Run daily by
``retention_schedule`` (stopped by default, like every schedule) or ``conv-pipeline retention``."""

from datetime import UTC, datetime

import dagster as dg

from conv_pipeline import keys
from conv_pipeline.core.privacy import retention
from conv_pipeline.project import Project
from conv_pipeline.resources import PipelineStore


class RetentionConfig(dg.Config):
    """Override the configured number of days for one run (0: use the monitoring config)."""

    raw_detail_days: int = 0


@dg.op(
    description=(
        "Deletes message texts, responses, staged and exported copies, rejected-line excerpts, "
        "feedback comments, report examples and dataset files older than the retention window; "
        "scores, issues and report totals stay."
    )
)
def delete_expired_raw_detail(
    context: dg.OpExecutionContext, config: RetentionConfig, pipeline: PipelineStore
) -> dg.Output[dict]:
    days = config.raw_detail_days or pipeline.config.privacy.retention.raw_detail_days
    now = datetime.now(UTC)
    cutoff = retention.cutoff_for(now, days)
    result = retention.apply_retention(pipeline.store, cutoff, now=now)
    context.log.info(
        f"retention ({days} days, detail before {result.cutoff} deleted): "
        f"{result.raw_rows} raw rows, {result.staged_rows} staged rows, "
        f"{result.export_lines_removed} exported lines, {result.reports} reports"
    )
    summary = {"raw_detail_days": days, **result.as_metadata()}
    return dg.Output(summary, metadata=summary)


@dg.job(
    name=keys.RETENTION_JOB,
    description="Delete raw detail older than the retention window, keep the aggregates.",
)
def retention_job():
    delete_expired_raw_detail()


def build_retention_schedule(cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="retention_schedule",
        job=retention_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Daily: deletes raw detail older than privacy.retention.raw_detail_days.",
    )


def build_defs(project: Project) -> dg.Definitions:
    return dg.Definitions(
        jobs=[retention_job],
        schedules=[build_retention_schedule(project.config.privacy.retention.cron_schedule)],
        resources=project.uses("pipeline"),
    )
