"""Sensors.

``new_completions_sensor`` syncs the source and asks for the hourly partitions whose data changed
since its cursor: contiguous hours become one run over the range (single-run backfill policy),
and each run has a ``run_key`` derived from the data it covers, so a repeated tick requests
nothing twice. The current hour is requested as soon as it has data and again whenever more
arrives; hours in the future (clock skew) wait until they begin.

``daily_summary_after_hourly`` refreshes the daily summary of the days an hourly run touched once
that run succeeds.
"""

import hashlib
import json
from datetime import timedelta

import dagster as dg

from conv_pipeline.core.privacy.retention import retained_cutoff, retained_keys
from conv_pipeline.core.schema import parse_hour_key
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import CompletionSource, PipelineStore

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


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
