"""Schedules: every hour at minute 0 for the hour that just ended; every day at 00:30 UTC for the
day that just ended. Both start stopped; turn them on in the UI (Automation) or with
``dagster schedule start``."""

from datetime import timedelta

import dagster as dg

from conv_pipeline.core.schema import DAY_KEY_FORMAT, HOUR_KEY_FORMAT


def build_schedules(hourly_job, daily_job) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name="hourly_pipeline_schedule",
        cron_schedule="0 * * * *",
        execution_timezone="UTC",
        job=hourly_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="At minute 0 of every hour, runs the hour that just ended.",
    )
    def hourly_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        hour = context.scheduled_execution_time - timedelta(hours=1)
        key = hour.strftime(HOUR_KEY_FORMAT)
        return dg.RunRequest(run_key=f"hourly:{key}", partition_key=key)

    @dg.schedule(
        name="daily_summary_schedule",
        cron_schedule="30 0 * * *",
        execution_timezone="UTC",
        job=daily_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="At 00:30 UTC, summarizes the day that just ended.",
    )
    def daily_summary_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).strftime(DAY_KEY_FORMAT)
        return dg.RunRequest(run_key=f"daily:{day}", partition_key=day)

    return [hourly_pipeline_schedule, daily_summary_schedule]
