"""Alert sensors: ``quality_alerts_sensor`` (asset checks) and ``run_failure_alerts`` (runs).

``evaluate_alerts`` reads the runs that finished since the saved position (oldest first) and the
asset check evaluations each recorded, turns each evaluation into per-partition outcomes, and
sends one alert when a (check, partition) starts failing and one when it recovers (rules in
core/reporting/alerts.py and docs/ALERTS.md). Its state (the position, the failing pairs and the messages
a channel could not take yet) is ``alerts/state.json`` in the data folder, shared by the sensor
and by ``conv-pipeline run``, which evaluates the same rules after its runs. Reading by finished
run works on every Dagster storage (SQLite's run-sharded event log included) and sees a run's
evaluations in their order, once the run is over.

``run_failure_alerts`` sends one message per failed run (Dagster's run-status sensor keeps its
own cursor).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.reporting.alerts import (
    Alert,
    Evaluation,
    locked_state,
    make_alert,
    metric_of,
    run_url,
    transitions,
    worst_example_ids,
)
from conv_pipeline.core.schema import HOUR_KEY_FORMAT, parse_hour_key
from conv_pipeline.keys import RANGE_END, RANGE_START
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore
from conv_pipeline.resources.alerts import AlertChannels

RUN_BATCH = 100  # finished runs read per tick (oldest first); the next tick goes on from there
# Runs are read by the time they last changed; re-reading two seconds before the cursor (and
# remembering which runs were read) covers runs whose update lands with the same timestamp.
OVERLAP_SECONDS = 2.0
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
MAX_DELIVERY_TICKS = 20  # a message a channel refuses this many ticks in a row is dropped (logged)
HOUR_KEY_LEN = len("2025-01-01-00:00")


def _run_partitions(instance: dg.DagsterInstance, parts: Partitions, run_id: str) -> list[str]:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    tags = run.tags
    if tags.get("dagster/partition"):
        return [tags["dagster/partition"]]
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    if not start or not end:
        return []
    pdef = parts.hourly if len(start) == HOUR_KEY_LEN else parts.daily
    return list(pdef.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))


def _evaluation(record, instance, parts: Partitions, cache: dict) -> Evaluation:
    entry = record.event_log_entry
    data = entry.dagster_event.event_specific_data
    run_id = entry.run_id
    if getattr(data, "partition", None):
        partitions = [data.partition]
    else:
        if run_id not in cache:
            cache[run_id] = _run_partitions(instance, parts, run_id)
        partitions = cache[run_id]
    return Evaluation(
        asset=data.asset_key.to_user_string(),
        check_name=data.check_name,
        passed=bool(data.passed),
        severity=data.severity.value,
        metadata={k: getattr(v, "value", v) for k, v in (data.metadata or {}).items()},
        run_id=run_id,
        partitions=partitions,
        timestamp=entry.timestamp,
    )


def _examples(pipeline: PipelineStore, ev: Evaluation, partition: str, limit: int) -> list[str]:
    metric = metric_of(str(ev.metadata.get("condition", "")))
    if not partition or limit <= 0 or not metric:
        return []
    store = pipeline.store
    if len(partition) == HOUR_KEY_LEN:
        hours = [partition]
    else:  # a daily partition: its 24 hours
        start = parse_hour_key(f"{partition}-00:00")
        hours = [(start + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(24)]
    if not any(store.hour_path("scored_conversations", h).exists() for h in hours):
        return []
    scored = store.read_hours("scored_conversations", hours)
    issues = (
        store.read_hours("conversation_issues", hours) if metric == "quality_issue_rate" else None
    )
    return worst_example_ids(scored, issues, metric, limit)


def _deliver(alerts: AlertChannels, outbox: list[dict], log) -> tuple[list[dict], int]:
    """Send every (channel, alert); returns (still pending, delivered)."""
    pending, delivered = [], 0
    for item in outbox:
        alert = Alert(**item["alert"])
        try:
            alerts.send(item["channel"], alert, log)
            delivered += 1
        except RuntimeError as exc:
            tries = item.get("tries", 0) + 1
            if tries >= MAX_DELIVERY_TICKS:
                log.error(f"{exc}; giving up after {tries} ticks: {alert.title}")
            else:
                log.warning(f"{exc}; retrying on the next tick: {alert.title}")
                pending.append({**item, "tries": tries})
    return pending, delivered


def evaluate_alerts(
    instance: dg.DagsterInstance,
    parts: Partitions,
    config: MonitoringConfig,
    alerts: AlertChannels,
    pipeline: PipelineStore,
    log,
) -> dict:
    """Read the runs finished since the saved position, send the changes, save the state.

    Used by ``quality_alerts_sensor`` and by ``conv-pipeline run``; returns a summary."""
    notify = set(config.alerting.notify_severities)
    limit = config.alerting.worst_examples
    with locked_state(alert_state_path(pipeline)) as saved:
        since = saved.get("since")
        seen: dict[str, float] = saved.get("seen", {})
        state: dict = saved.get("failing", {})
        finished = instance.get_run_records(
            filters=dg.RunsFilter(
                statuses=FINISHED,
                updated_after=datetime.fromtimestamp(since - OVERLAP_SECONDS, UTC)
                if since is not None
                else None,
            ),
            limit=RUN_BATCH,
            order_by="update_timestamp",
            ascending=True,
        )
        outbox: list[dict] = list(saved.get("pending", []))
        runs: dict[str, list[str]] = {}
        sent = notified = evaluations = 0
        for run_record in finished:
            run_id = run_record.dagster_run.run_id
            updated = run_record.update_timestamp.timestamp()
            since = updated if since is None else max(since, updated)
            if run_id in seen:
                continue
            seen[run_id] = updated
            records = instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
            for record in sorted(records, key=lambda r: r.storage_id):
                evaluations += 1
                ev = _evaluation(record, instance, parts, runs)
                before = state.get(ev.check, {})
                changes, state = transitions(state, ev)
                for kind, partition, value in changes:
                    severity = ev.severity if kind == "failing" else before[partition]["severity"]
                    examples = (
                        _examples(pipeline, ev, partition, limit) if kind == "failing" else []
                    )
                    alert = make_alert(kind, ev, partition, value, alerts.ui_url, examples)
                    alert.severity = severity
                    if kind == "failing":
                        state[ev.check][partition]["severity"] = severity
                    channels = alerts.channels() if severity in notify else ["log"]
                    notified += severity in notify
                    outbox += [{"channel": c, "alert": dataclasses.asdict(alert)} for c in channels]
                    sent += 1
        if since is not None:  # runs read long before the overlap window cannot come back
            seen = {r: t for r, t in seen.items() if t >= since - 2 * OVERLAP_SECONDS}
        pending, delivered = _deliver(alerts, outbox, log)
        saved.clear()
        saved.update({"since": since, "seen": seen, "failing": state, "pending": pending})
    return {
        "runs": len(finished),
        "evaluations": evaluations,
        "alerts": sent,
        "notified": notified,
        "deliveries": delivered,
        "pending": len(pending),
        "failing": sum(len(v) for v in state.values()),
        "since": since,
    }


def alert_state_path(pipeline: PipelineStore) -> Path:
    return pipeline.store.root / "alerts" / "state.json"


def build_alert_sensors(parts: Partitions, config: MonitoringConfig) -> list:
    @dg.sensor(
        name="quality_alerts_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "One alert when an asset check starts failing for a partition and one when it "
            "recovers, to the log and the configured Teams / Slack / webhook channels."
        ),
    )
    def quality_alerts_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertChannels, pipeline: PipelineStore
    ) -> dg.SensorResult:
        s = evaluate_alerts(context.instance, parts, config, alerts, pipeline, context.log)
        summary = (
            f"{s['runs']} finished run(s), {s['evaluations']} check evaluation(s) read, "
            f"{s['alerts']} alert(s), {s['deliveries']} deliveries, {s['pending']} pending; "
            f"{s['failing']} (check, partition) failing"
        )
        context.log.info(summary)
        # the state itself is in the data folder (shared with `conv-pipeline run`); the cursor
        # shows where the sensor is
        return dg.SensorResult(skip_reason=summary, cursor=json.dumps(s))

    @dg.run_failure_sensor(
        name="run_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="One message per failed run, to the log and the configured channels.",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertChannels):
        run = context.dagster_run
        tags = run.tags
        partition = tags.get("dagster/partition") or (
            f"{tags[RANGE_START]}..{tags[RANGE_END]}" if tags.get(RANGE_START) else ""
        )
        message = context.failure_event.message or ""
        alert = Alert(
            kind="run_failed",
            check="",
            asset="",
            check_name="",
            partition=partition,
            severity="ERROR",
            value=None,
            threshold=None,
            condition="",
            run_id=run.run_id,
            job=run.job_name,
            message=message[:1000],
            url=run_url(alerts.ui_url, run.run_id),
        )
        for channel in alerts.channels():
            try:
                alerts.send(channel, alert, context.log)
            except RuntimeError as exc:
                context.log.error(f"{exc}: {alert.title}")

    return [quality_alerts_sensor, run_failure_alerts]
