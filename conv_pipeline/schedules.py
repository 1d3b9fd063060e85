"""Schedules: every hour at minute 0 for the hour that just ended; every day at 00:30 UTC for the
day that just ended. Both start stopped; turn them on in the UI (Automation) or with
``dagster schedule start``."""

from __future__ import annotations

import dagster as dg


def build_schedules(hourly_job, daily_job) -> list[dg.ScheduleDefinition]:
    return [
        dg.build_schedule_from_partitioned_job(
            hourly_job, minute_of_hour=0, name="hourly_pipeline_schedule"
        ),
        dg.build_schedule_from_partitioned_job(
            daily_job, hour_of_day=0, minute_of_hour=30, name="daily_summary_schedule"
        ),
    ]
