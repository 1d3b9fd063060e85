"""``conv-pipeline run``: every hourly partition the source has data for, as one run over the
range (checks included), then the daily summaries, on the same Dagster instance the UI uses;
then the alert rules, and a summary of what happened."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg

from conv_pipeline.assets.reporting.alerts import evaluate_alerts
from conv_pipeline.cli.sqlite_hold import held_open
from conv_pipeline.core.ingestion.api import ApiSourceError
from conv_pipeline.core.schema import parse_hour_key
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB, HOURLY_JOB, RANGE_END, RANGE_START
from conv_pipeline.partitions import build_partitions
from conv_pipeline.settings import Settings

# Dagster's console logger at INFO: the run's own messages, not every engine event.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def local_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance the UI reads; a new one is created offline (telemetry off)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # Offline, and no welcome dialog over the first page of the UI.
        config.write_text(
            "telemetry:\n  enabled: false\nnux:\n  enabled: false\n", encoding="utf-8"
        )
    return dg.DagsterInstance.from_config(str(home))


def fmt_value(v) -> str:
    return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


@dataclass
class Outcome:
    """What the runs of one ``conv-pipeline run`` produced."""

    ok: bool = True
    hourly: dg.ExecuteInProcessResult | None = None
    evaluations: list = field(default_factory=list)
    daily_checks: list = field(default_factory=list)


def _execute(job, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    # The instance's SQLite files stay open during the run: a ranged run of hundreds of hours
    # stores two events per asset and hour, each much cheaper so (sqlite_hold.py).
    run_id = str(uuid.uuid4())
    with held_open(instance, [run_id]):
        return job.execute_in_process(
            instance=instance,
            run_id=run_id,
            tags={RANGE_START: first, RANGE_END: last},
            run_config=QUIET,
            raise_on_error=False,
        )


def _hours_to_run(args: argparse.Namespace, sync, last: str | None) -> list[str]:
    hours = sorted(k for k in sync.hours if last and k <= last)
    if args.start:
        hours = [k for k in hours if k >= args.start]
    if args.end:
        hours = [k for k in hours if k <= args.end]
    later = sorted(k for k in sync.hours if not last or k > last)
    if later:
        print(
            f"note: {len(later)} hour(s) from {later[0]} on are not complete yet; run again later"
        )
    return hours


def _run_jobs(defs: dg.Definitions, instance, hours: list[str]) -> Outcome:
    start, end = hours[0], hours[-1]
    # One run over the whole span: hours without data become empty partitions, so gaps show.
    print(f"running {HOURLY_JOB} over {start} … {end} ({span(start, end)} hourly partitions)")
    hourly = _execute(defs.resolve_job_def(HOURLY_JOB), instance, start, end)
    out = Outcome(ok=hourly.success, hourly=hourly)
    out.evaluations = list(hourly.get_asset_check_evaluations())
    daily_job = defs.resolve_job_def(DAILY_JOB)
    last_day = daily_job.partitions_def.get_last_partition_key()
    days = [d for d in sorted({k[:10] for k in hours}) if last_day and d <= last_day]
    if out.ok and days:
        print(f"running {DAILY_JOB} over {days[0]} … {days[-1]}")
        daily = _execute(daily_job, instance, days[0], days[-1])
        out.ok = daily.success
        out.daily_checks = list(daily.get_asset_check_evaluations())
    return out


def _print_totals(store, start: str, end: str, rejected: int, hourly) -> None:
    n, avg_q = store.query(
        "SELECT count(*) AS n, avg(quality_score) AS q FROM scored_conversations "
        "WHERE partition_key BETWEEN ? AND ?",
        [start, end],
    ).row(0)
    with_issue = store.query(
        "SELECT count(DISTINCT completion_id) FROM conversation_issues "
        "WHERE partition_key BETWEEN ? AND ?",
        [start, end],
    ).item()
    print()
    print(
        f"conversations scored: {n:,}   average quality: {fmt_value(avg_q)}   "
        f"quality issue rate: {fmt_value(with_issue / n if n else None)}"
    )
    print(f"rejected input records: {rejected:,} (table rejected_records)")
    print(judge_line(hourly))


def _print_checks(out: Outcome) -> list:
    failing_integrity = [e for e in out.evaluations if not e.passed and e.blocking]
    failing_quality = [e for e in out.evaluations if not e.passed and not e.blocking]
    if failing_quality:
        print("\nfailing quality checks (alerts):")
        for e in failing_quality:
            md = {k: getattr(v, "value", v) for k, v in e.metadata.items()}
            sev = e.severity.value if e.severity else "ERROR"
            print(
                f"  [{sev}] {e.asset_key.to_user_string()}:{e.check_name}  {md.get('condition', '')}"
                f"  worst {md.get('partition', '')} = {fmt_value(md.get('value'))}"
                f" (threshold {fmt_value(md.get('threshold'))}), "
                f"{md.get('partitions_failing', '?')} of {md.get('partitions_evaluated', '?')} hours"
            )
    else:
        print("\nquality checks: all passed")
    if failing_integrity:
        print("\nFAILED integrity checks (downstream assets were not computed):")
        for e in failing_integrity:
            print(f"  {e.asset_key.to_user_string()}:{e.check_name} {dict(e.metadata)}")
    return failing_integrity


def _print_where(store, out: Outcome) -> None:
    print(f"\nreports:   {store.reports_dir}/hourly/ and {store.reports_dir}/daily/")
    for e in out.daily_checks:  # the improvement assets' WARN checks (docs/IMPROVEMENT.md)
        if not e.passed:
            n = getattr(e.metadata.get("drifted_metrics"), "value", "?")
            print(f"  [WARN] {e.asset_key.to_user_string()}:{e.check_name}: {n} drifted metric(s)")
    print(
        f"improvement: {store.root}/datasets/ (finetune, regression_eval) and "
        f"{store.reports_dir}/experiments|drift|clusters|feedback/"
    )
    print(
        f"warehouse: {store.warehouse_path}  (tables: raw_completions, scored_conversations, "
        "judge_evaluations, conversation_issues, insight_reports, rejected_records, "
        "conversation_feedback, …)"
    )


def send_alerts(defs, instance, pipeline) -> None:
    """The alert sensor's rules after the runs (docs/ALERTS.md): the same state file as the
    daemon's sensor, so a change is announced once whichever of them sees it first."""
    channels = defs.resources["alerts"].process_config_and_initialize()
    s = evaluate_alerts(
        instance,
        build_partitions(pipeline.config.partition_start),
        pipeline.config,
        channels,
        pipeline,
        logging.getLogger("conv_pipeline.alerts"),
    )
    print(
        f"alerts:    {s['alerts']} change(s) of a check × partition (failing or recovered): "
        f"{s['notified']} to {', '.join(channels.channels())}, "
        f"{s['alerts'] - s['notified']} below alerting.notify_severities logged only; "
        f"{s['failing']} failing now"
        + (f"; {s['pending']} waiting for a channel" if s["pending"] else "")
    )


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.perf_counter()
    defs = build_definitions(settings)
    # Resolved like Dagster does for a run: EnvVar secrets become values, in memory only.
    source = defs.resources["source"].process_config_and_initialize()
    pipeline = defs.resources["pipeline"]
    store, config = pipeline.store, pipeline.config
    try:
        sync = source.sync(store, config.partition_start)
    except (FileNotFoundError, ApiSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"source: {source.describe()}: {sync.files} files, {sync.records:,} usable records, "
        f"{sync.rejected:,} rejected"
    )
    last = defs.resolve_job_def(HOURLY_JOB).partitions_def.get_last_partition_key()
    hours = _hours_to_run(args, sync, last)
    if not hours:
        print("nothing to run: the source has no completed hour with data")
        return 0
    instance = local_instance(settings)
    out = _run_jobs(defs, instance, hours)
    store.refresh_warehouse()
    _print_totals(store, hours[0], hours[-1], sync.rejected, out.hourly)
    failing_integrity = _print_checks(out)
    _print_where(store, out)
    send_alerts(defs, instance, pipeline)
    if settings.blob.enabled:  # docs/PUBLISHING.md
        b = settings.blob
        extra = f" and {b.conversations_container} (Parquet)" if b.publish_parquet else ""
        print(f"published: Blob containers {b.insights_container}{extra}")
    print(f"dagster:   runs recorded in {settings.dagster_home}; `make dev` shows them")
    print(f"done in {time.perf_counter() - started:.1f}s")
    if not out.ok:
        print("error: a run failed; see the Dagster logs above", file=sys.stderr)
        return 1
    return 1 if failing_integrity else 0


def judge_line(result: dg.ExecuteInProcessResult) -> str:
    """What the LLM judge did in the run (docs/JUDGE.md), from its materialization metadata."""
    event = next(
        (
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "judge_evaluations"
        ),
        None,
    )
    if event is None:
        return "judge: not run"
    md = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    if "judge_calls" not in md:
        return f"judge: {md.get('judge', 'off')}"
    return (
        f"judge: {md['judge']}: {md.get('judge_sampled_conversations', 0):,} conversations "
        f"sampled, {md['judge_calls']:,} calls, {md.get('judge_cache_hits', 0):,} cache hits, "
        f"{md.get('judge_skipped_budget', 0):,} over budget, "
        f"{md.get('judge_total_tokens', 0):,} tokens (table judge_evaluations)"
    )


def span(start: str, end: str) -> int:
    return int((parse_hour_key(end) - parse_hour_key(start)) / timedelta(hours=1)) + 1
