"""``conv-pipeline``: the command line.

* ``conv-pipeline sample`` writes the bundled, deterministic sample to the export folder.
* ``conv-pipeline run`` materializes every hourly partition the source has data for (one run over
  the range, checks included), then the daily summaries, on the same Dagster instance the UI uses.
  It prints a summary, the failing quality checks and where the reports are, and exits non-zero
  when a run or an integrity check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from conv_pipeline.core.schema import parse_hour_key
from conv_pipeline.sensors import RANGE_END, RANGE_START
from conv_pipeline.settings import Settings

# Dagster's console logger at INFO: the run's own messages, not every engine event.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance the UI reads; a new one is created offline (telemetry off)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home))


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    from conv_pipeline.core.sample import write_sample

    out = Path(args.out).resolve() if args.out else settings.local_dir
    summary = write_sample(out, n=args.n, hours=args.hours)
    print(
        f"wrote {summary.records:,} stored completions ({summary.first_created:%Y-%m-%d %H:%M} → "
        f"{summary.last_created:%Y-%m-%d %H:%M} UTC) in {len(summary.files)} files to {out}"
    )
    seg = ", ".join(f"{k}={v}" for k, v in summary.degraded_segment.items())
    lo, hi = summary.degraded_window
    print(f"degraded on purpose: {seg} between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC")
    return 0


def _fmt_value(v) -> str:
    return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from conv_pipeline.definitions import build_definitions
    from conv_pipeline.jobs import DAILY_JOB, HOURLY_JOB

    started = time.perf_counter()
    defs = build_definitions(settings)
    source = defs.resources["source"]
    pipeline = defs.resources["pipeline"]
    store, config = pipeline.store, pipeline.config
    try:
        sync = source.sync(store, config.partition_start)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hourly_job = defs.resolve_job_def(HOURLY_JOB)
    parts = hourly_job.partitions_def
    last = parts.get_last_partition_key()
    hours = sorted(k for k in sync.hours if last and k <= last)
    if args.start:
        hours = [k for k in hours if k >= args.start]
    if args.end:
        hours = [k for k in hours if k <= args.end]
    print(
        f"source: {source.describe()}: {sync.files} files, {sync.records:,} usable records, "
        f"{sync.rejected:,} rejected"
    )
    later = sorted(k for k in sync.hours if not last or k > last)
    if later:
        print(
            f"note: {len(later)} hour(s) from {later[0]} on are not complete yet; run again later"
        )
    if not hours:
        print("nothing to run: the source has no completed hour with data")
        return 0
    # One run over the whole span: hours without data become empty partitions, so gaps show.
    start, end = hours[0], hours[-1]
    instance = _instance(settings)
    print(f"running {HOURLY_JOB} over {start} … {end} ({_span(start, end)} hourly partitions)")
    hourly = hourly_job.execute_in_process(
        instance=instance,
        tags={RANGE_START: start, RANGE_END: end},
        run_config=_QUIET,
        raise_on_error=False,
    )
    evaluations = list(hourly.get_asset_check_evaluations())
    ok = hourly.success
    days = sorted({k[:10] for k in hours})
    last_day = defs.resolve_job_def(DAILY_JOB).partitions_def.get_last_partition_key()
    days = [d for d in days if last_day and d <= last_day]
    if ok and days:
        print(f"running {DAILY_JOB} over {days[0]} … {days[-1]}")
        daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance,
            tags={RANGE_START: days[0], RANGE_END: days[-1]},
            run_config=_QUIET,
            raise_on_error=False,
        )
        ok = ok and daily.success
        daily_checks = list(daily.get_asset_check_evaluations())
    else:
        daily_checks = []
    store.refresh_warehouse()

    summary = store.query(
        "SELECT count(*) AS n, avg(quality_score) AS q FROM scored_conversations "
        "WHERE partition_key BETWEEN ? AND ?",
        [start, end],
    ).row(0)
    with_issue = store.query(
        "SELECT count(DISTINCT completion_id) FROM conversation_issues "
        "WHERE partition_key BETWEEN ? AND ?",
        [start, end],
    ).item()
    n, avg_q = summary
    print()
    print(
        f"conversations scored: {n:,}   average quality: {_fmt_value(avg_q)}   "
        f"quality issue rate: {_fmt_value(with_issue / n if n else None)}"
    )
    print(f"rejected input records: {sync.rejected:,} (table rejected_records)")

    failing_integrity = [e for e in evaluations if not e.passed and e.blocking]
    failing_quality = [e for e in evaluations if not e.passed and not e.blocking]
    if failing_quality:
        print("\nfailing quality checks (alerts):")
        for e in failing_quality:
            md = {k: getattr(v, "value", v) for k, v in e.metadata.items()}
            sev = e.severity.value if e.severity else "ERROR"
            print(
                f"  [{sev}] {e.asset_key.to_user_string()}:{e.check_name}  {md.get('condition', '')}"
                f"  worst {md.get('partition', '')} = {_fmt_value(md.get('value'))}"
                f" (threshold {_fmt_value(md.get('threshold'))}), "
                f"{md.get('partitions_failing', '?')} of {md.get('partitions_evaluated', '?')} hours"
            )
    else:
        print("\nquality checks: all passed")
    if failing_integrity:
        print("\nFAILED integrity checks (downstream assets were not computed):")
        for e in failing_integrity:
            print(f"  {e.asset_key.to_user_string()}:{e.check_name} {dict(e.metadata)}")
    print(f"\nreports:   {store.reports_dir}/hourly/ and {store.reports_dir}/daily/")
    for e in daily_checks:  # the improvement assets' WARN checks (docs/IMPROVEMENT.md)
        if not e.passed:
            n = getattr(e.metadata.get("drifted_metrics"), "value", "?")
            print(f"  [WARN] {e.asset_key.to_user_string()}:{e.check_name}: {n} drifted metric(s)")
    print(
        f"improvement: {store.root}/datasets/ (finetune, regression_eval) and "
        f"{store.reports_dir}/experiments|drift|clusters/"
    )
    print(
        f"warehouse: {store.warehouse_path}  (tables: raw_completions, scored_conversations, "
        "conversation_issues, insight_reports, rejected_records)"
    )
    print(f"dagster:   runs recorded in {settings.dagster_home}; `make dev` shows them")
    print(f"done in {time.perf_counter() - started:.1f}s")
    if not ok:
        print("error: a run failed; see the Dagster logs above", file=sys.stderr)
        return 1
    return 1 if failing_integrity else 0


def _span(start: str, end: str) -> int:
    return int((parse_hour_key(end) - parse_hour_key(start)) / timedelta(hours=1)) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv-pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample", help="write the bundled sample in the export format")
    p.add_argument("--out", help="export folder (default: CONV_PIPELINE_LOCAL_DIR)")
    p.add_argument("--n", type=int, default=3000, help="number of completions (default 3000)")
    p.add_argument("--hours", type=int, default=72, help="hours covered (default 72)")
    p = sub.add_parser("run", help="materialize every partition the source has data for")
    p.add_argument("--start", help="first hourly partition key (YYYY-MM-DD-HH:00)")
    p.add_argument("--end", help="last hourly partition key (YYYY-MM-DD-HH:00)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "sample":
            return cmd_sample(args, settings)
        return cmd_run(args, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
