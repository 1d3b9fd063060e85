"""Automation across the stages: the hourly and daily jobs, their schedules and sensors.

* ``hourly_pipeline`` runs every asset tagged ``cadence: hourly`` (ingestion → scoring → judge →
  reporting, and Blob publishing when it is on), ``daily_summary`` every ``cadence: daily`` one
  (the daily report, the improvement datasets and analyses, feedback). The tag is set once for
  every asset from its partitions (``assets/specs.py``), so a new asset joins its job by itself.
* Schedules: every hour at minute 0 for the hour that just ended; every day at 00:30 UTC for the
  day that just ended.
* ``new_completions_sensor`` syncs the source and asks for the hourly partitions whose data changed
  since its cursor: contiguous hours become one run over the range (single-run backfill policy),
  and each run has a ``run_key`` derived from the data it covers, so a repeated tick requests
  nothing twice. The current hour is requested as soon as it has data and again whenever more
  arrives; hours in the future (clock skew) wait until they begin.
* ``daily_summary_after_hourly`` refreshes the daily summary of the days a successful hourly run
  touched; ``automation_sensor`` evaluates the assets' automation conditions (``assets/specs.py``).

Every schedule and sensor starts stopped; turn them on in the UI (Automation) or with
``dagster schedule start`` / ``dagster sensor start``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import dagster as dg

from conv_pipeline import keys
from conv_pipeline.core.privacy.retention import retained_cutoff, retained_keys
from conv_pipeline.core.schema import DAY_KEY_FORMAT, HOUR_KEY_FORMAT, parse_hour_key
from conv_pipeline.keys import RANGE_END, RANGE_START
from conv_pipeline.partitions import Partitions
from conv_pipeline.project import Project
from conv_pipeline.resources import CompletionSource, PipelineStore


def build_jobs(
    parts: Partitions,
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.UnresolvedAssetJobDefinition]:
    hourly = dg.define_asset_job(
        keys.HOURLY_JOB,
        selection=dg.AssetSelection.tag(keys.CADENCE, keys.HOURLY),
        partitions_def=parts.hourly,
        description=(
            "Ingest, score, judge (when configured), categorize and report the selected hours "
            "(checks included)."
        ),
    )
    daily = dg.define_asset_job(
        keys.DAILY_JOB,
        selection=dg.AssetSelection.tag(keys.CADENCE, keys.DAILY),
        partitions_def=parts.daily,
        description=(
            "Summarize a day over its hourly reports; build its improvement datasets, experiments, "
            "drift, failure clusters and feedback agreement."
        ),
    )
    return hourly, daily


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


def contiguous_ranges(keys: list[str]) -> list[tuple[str, str]]:
    """Group sorted hourly keys into runs of consecutive hours."""
    out: list[tuple[str, str]] = []
    for key in sorted(keys):
        if out and parse_hour_key(key) - parse_hour_key(out[-1][1]) == timedelta(hours=1):
            out[-1] = (out[-1][0], key)
        else:
            out.append((key, key))
    return out


def changed_hours(cursor: dict[str, str], digests: dict[str, str]) -> list[str]:
    return sorted(
        {k for k, d in digests.items() if cursor.get(k) != d} | (set(cursor) - set(digests))
    )


def _cursor(seen: dict[str, str], sync) -> str:
    """Per-hour digests; for the API source also its watermark (the authoritative copy lives
    beside the data it describes, see core/ingestion/api.py: this one is for people to read)."""
    cursor: dict = {"hours": seen}
    if "api_watermark" in sync.extra:
        cursor["api_watermark"] = sync.extra["api_watermark"]
    return json.dumps(cursor)


def build_sensors(
    parts: Partitions, hourly_job, daily_job, sync_budget_seconds: float | None = None
) -> list[dg.SensorDefinition]:
    """``new_completions_sensor`` and ``daily_summary_after_hourly`` (module docstring)."""

    @dg.sensor(
        name="new_completions_sensor",
        job=hourly_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests the hourly partitions whose stored completions changed.",
    )
    def new_completions_sensor(
        context: dg.SensorEvaluationContext, source: CompletionSource, pipeline: PipelineStore
    ) -> dg.SensorResult:
        sync = source.sync(
            pipeline.store, pipeline.config.partition_start, budget_seconds=sync_budget_seconds
        )
        cursor = json.loads(context.cursor) if context.cursor else {}
        seen: dict[str, str] = cursor.get("hours", {})
        if sync.extra.get("api_complete") is False:
            # A long first read of the API goes on over several ticks; runs wait for its end.
            return dg.SkipReason(
                f"still reading {source.describe()}: {sync.extra.get('api_new_records', 0)} new "
                f"completions this tick, {sync.records} staged; continuing on the next tick"
            )
        last = parts.hourly.get_last_partition_key()
        ready = [k for k in changed_hours(seen, sync.hour_digests) if last and k <= last]
        # Hours past the retention window changed because retention trimmed their copies: they
        # are noted in the cursor, never run again (docs/PRIVACY.md).
        retained = retained_keys(pipeline.store, ready)
        requests = []
        for start, end in contiguous_ranges([k for k in ready if k not in retained]):
            window = [k for k in ready if start <= k <= end and k not in retained]
            digest = hashlib.sha1(
                json.dumps([(k, sync.hour_digests.get(k, "gone")) for k in window]).encode()
            ).hexdigest()[:12]
            requests.append(
                dg.RunRequest(
                    run_key=f"{start}..{end}@{digest}",
                    tags={RANGE_START: start, RANGE_END: end},
                )
            )
        for k in ready:
            if k in sync.hour_digests:
                seen[k] = sync.hour_digests[k]
            else:
                seen.pop(k, None)
        if not requests:
            return dg.SensorResult(
                skip_reason=f"no new completions ({sync.records} staged in {len(sync.hours)} hours)",
                cursor=_cursor(seen, sync),
            )
        context.log.info(f"requesting {len(requests)} run(s) for {len(ready)} changed hour(s)")
        return dg.SensorResult(run_requests=requests, cursor=_cursor(seen, sync))

    @dg.run_status_sensor(
        name="daily_summary_after_hourly",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[hourly_job],
        request_job=daily_job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Refreshes the daily summaries of the days a successful hourly run touched.",
    )
    def daily_summary_after_hourly(context: dg.RunStatusSensorContext, pipeline: PipelineStore):
        tags = context.dagster_run.tags
        start = tags.get(RANGE_START) or tags.get("dagster/partition")
        end = tags.get(RANGE_END) or start
        if not start:
            return dg.SkipReason("the run had no partition")
        last_day = parts.daily.get_last_partition_key()
        first = parse_hour_key(start).date()
        final = parse_hour_key(end).date()
        days = []
        d = first
        # A day wholly before the retention cutoff keeps its summaries (its raw text is gone).
        cutoff_day = (retained_cutoff(pipeline.store) or "")[:10]
        while d <= final:
            key = d.strftime("%Y-%m-%d")
            if last_day and key <= last_day and key >= cutoff_day:
                days.append(key)
            d += timedelta(days=1)
        if not days:
            return dg.SkipReason("the run's days lie in the future or past the retention window")
        return dg.RunRequest(
            run_key=f"daily:{days[0]}..{days[-1]}:{context.dagster_run.run_id}",
            tags={RANGE_START: days[0], RANGE_END: days[-1]},
        )

    return [new_completions_sensor, daily_summary_after_hourly]


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; stopped until turned on in the UI."""
    return dg.AutomationConditionSensorDefinition(
        "automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=60,
        description=(
            "Refreshes scored_conversations, conversation_issues and insight_report when the "
            "newest hour of their upstream lands and its blocking checks passed."
        ),
    )


def build_defs(project: Project) -> dg.Definitions:
    hourly, daily = build_jobs(project.parts)
    budget = project.settings.api.sensor_budget_seconds
    return dg.Definitions(
        jobs=[hourly, daily],
        schedules=build_schedules(hourly, daily),
        sensors=[
            *build_sensors(project.parts, hourly, daily, sync_budget_seconds=budget),
            automation_sensor(),
        ],
        resources=project.uses("source", "pipeline"),
    )
