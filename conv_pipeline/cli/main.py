"""``conv-pipeline``: the command line.

* ``conv-pipeline sample`` writes the bundled, deterministic sample to the export folder.
* ``conv-pipeline standin`` serves a stand-in of the Stored Completions API for local trials.
* ``conv-pipeline run`` materializes every hourly partition the source has data for (one run over
  the range, checks included), then the daily summaries, on the same Dagster instance the UI uses.
  It prints a summary, the failing quality checks and where the reports are, and exits non-zero
  when a run or an integrity check fails.
* ``conv-pipeline export`` copies what the Stored Completions API holds (with the configured
  filters) into an export folder, incrementally, so it can be re-run offline with the local source.
* ``conv-pipeline retention`` deletes raw detail older than the retention window (90 days by
  default) and keeps the aggregates (docs/PRIVACY.md), as the ``raw_detail_retention`` job does.
* ``conv-pipeline generate`` sends the recipe's four scenarios to the configured endpoint with
  ``store=True`` and the pipeline's metadata (the recipe's step 5).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import dagster as dg

from conv_pipeline.cli.sqlite_hold import held_open
from conv_pipeline.core.ingestion.api import ApiSourceError
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
        # Offline, and no welcome dialog over the first page of the UI.
        config.write_text(
            "telemetry:\n  enabled: false\nnux:\n  enabled: false\n", encoding="utf-8"
        )
    return dg.DagsterInstance.from_config(str(home))


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    from conv_pipeline_demo.sample import write_sample

    out = Path(args.out).resolve() if args.out else settings.local_dir
    summary = write_sample(out, n=args.n, hours=args.hours)
    print(
        f"wrote {summary.records:,} stored completions ({summary.first_created:%Y-%m-%d %H:%M} → "
        f"{summary.last_created:%Y-%m-%d %H:%M} UTC) in {len(summary.files)} files to {out}"
    )
    from conv_pipeline.core.config import load_config
    from conv_pipeline_demo.sample.feedback import write_sample_feedback

    configured = Path(load_config(settings.monitoring_config or None).improvement.feedback.path)
    fb_out = (
        Path(args.feedback_out).resolve()
        if args.feedback_out
        else (configured if configured.is_absolute() else settings.data_dir / configured)
    )
    fb = write_sample_feedback(fb_out, n=args.n, hours=args.hours)
    print(
        f"wrote feedback for {fb.rows:,} of them ({fb.thumbs:,} thumbs, {fb.ratings:,} ratings, "
        f"{fb.bad_rows} bad rows and {fb.duplicates} changed minds on purpose) to {fb_out}"
    )
    seg = ", ".join(f"{k}={v}" for k, v in summary.degraded_segment.items())
    lo, hi = summary.degraded_window
    print(f"degraded on purpose: {seg} between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC")
    return 0


def _fmt_value(v) -> str:
    return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def _send_alerts(defs, settings: Settings, instance, pipeline) -> None:
    """The alert sensor's rules after the runs (docs/ALERTS.md): the same state file as the
    daemon's sensor, so a change is announced once whichever of them sees it first."""
    import logging

    from conv_pipeline.assets.reporting.alerts import evaluate_alerts
    from conv_pipeline.partitions import build_partitions

    channels = defs.resources["alerts"].process_config_and_initialize()
    config = pipeline.config
    s = evaluate_alerts(
        instance,
        build_partitions(config.partition_start),
        config,
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
    from conv_pipeline.definitions import build_definitions
    from conv_pipeline.jobs import DAILY_JOB, HOURLY_JOB

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
    # The instance's SQLite files stay open during the run: a ranged run of hundreds of hours
    # stores two events per asset and hour, each much cheaper so (sqlite_hold.py).
    run_id = str(uuid.uuid4())
    with held_open(instance, [run_id]):
        hourly = hourly_job.execute_in_process(
            instance=instance,
            run_id=run_id,
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
        run_id = str(uuid.uuid4())
        with held_open(instance, [run_id]):
            daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
                instance=instance,
                run_id=run_id,
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
    print(_judge_line(hourly))

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
        f"{store.reports_dir}/experiments|drift|clusters|feedback/"
    )
    print(
        f"warehouse: {store.warehouse_path}  (tables: raw_completions, scored_conversations, "
        "judge_evaluations, conversation_issues, insight_reports, rejected_records, "
        "conversation_feedback, …)"
    )
    _send_alerts(defs, settings, instance, pipeline)
    if settings.blob.enabled:  # docs/PUBLISHING.md
        b = settings.blob
        extra = f" and {b.conversations_container} (Parquet)" if b.publish_parquet else ""
        print(f"published: Blob containers {b.insights_container}{extra}")
    print(f"dagster:   runs recorded in {settings.dagster_home}; `make dev` shows them")
    print(f"done in {time.perf_counter() - started:.1f}s")
    if not ok:
        print("error: a run failed; see the Dagster logs above", file=sys.stderr)
        return 1
    return 1 if failing_integrity else 0


def _judge_line(result: dg.ExecuteInProcessResult) -> str:
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


def _api_source(settings: Settings, kind: str | None):
    """The API source of the settings (``--kind`` or ``CONV_PIPELINE_SOURCE``; with the local
    source configured, the kind follows from which endpoint variable is set)."""
    from dataclasses import replace

    from conv_pipeline.definitions import build_source

    if not kind:
        kind = settings.source
    if kind == "local":
        if settings.api.endpoint:
            kind = "azure_openai"
        elif settings.api.base_url:
            kind = "openai"
        else:
            raise ValueError(
                "no API configured: set AZURE_OPENAI_ENDPOINT (Azure OpenAI) or OPENAI_BASE_URL "
                "(OpenAI-compatible), or pass --kind"
            )
    if kind != settings.source:
        settings = replace(settings, source=kind, api=Settings.from_env_api(kind))
    return build_source(settings).process_config_and_initialize()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from conv_pipeline.core.ingestion.api import ApiExporter

    source = _api_source(settings, args.kind)
    out = Path(args.out).resolve() if args.out else settings.local_dir
    out.mkdir(parents=True, exist_ok=True)
    print(f"exporting {source.describe()} to {out}")
    try:
        stats = ApiExporter(out, source.api_config()).sync()
    except ApiSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{stats.new_records:,} new completions written ({stats.skipped_known:,} already there, "
        f"{stats.vanished:,} deleted while reading) with {stats.list_requests:,} list and "
        f"{stats.message_requests:,} messages requests in {stats.seconds:.1f}s"
    )
    print(
        f"run it offline: CONV_PIPELINE_SOURCE=local CONV_PIPELINE_LOCAL_DIR={out} "
        "conv-pipeline run"
    )
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from conv_pipeline.capture import generate_seed_conversations
    from conv_pipeline.core.ingestion.api import make_client

    source = _api_source(settings, args.kind)
    client = make_client(source.api_config(), asynchronous=False)
    try:
        made = generate_seed_conversations(
            client,
            model=args.model,
            rounds=args.rounds,
            pipeline_source=args.pipeline_source,
            prompt_variant=args.prompt_variant,
        )
    except Exception as exc:  # the SDK's errors carry the service's message
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    for i, completion in enumerate(made, start=1):
        print(f"Generated conversation {i}: {completion.id}")
    print(f"{len(made)} conversations stored with metadata on {source.describe()}")
    return 0


def cmd_standin(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the Stored Completions stand-in (docs/STANDIN.md) until Ctrl-C."""
    from conv_pipeline_demo.standin import DEFAULT_API_KEY, StoredCompletionsServer

    keys = args.api_key or [DEFAULT_API_KEY]
    server = StoredCompletionsServer(api_keys=keys, latency_ms=args.latency_ms, port=args.port)
    if args.load:
        try:
            loaded = server.load_export(args.load)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"loaded {loaded.loaded:,} stored completions from {loaded.files} files"
            f" ({loaded.duplicates:,} duplicate ids and {len(loaded.skipped):,} unusable lines skipped)"
        )
    with server:
        print(f"stand-in serving on {server.url}  (Ctrl-C stops it)")
        print(f"  OpenAI(base_url={server.openai_v1_base!r})  or  {server.v1_base!r}")
        print(
            f"  AzureOpenAI(azure_endpoint={server.azure_endpoint!r}, api_version='2025-02-01-preview')"
        )
        if not args.api_key:
            print(f"  api key: {DEFAULT_API_KEY}")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from conv_pipeline.assets.privacy import RETENTION_JOB
    from conv_pipeline.core.privacy import retention
    from conv_pipeline.definitions import build_definitions

    defs = build_definitions(settings)
    pipeline = defs.resources["pipeline"]
    days = args.days if args.days is not None else pipeline.config.privacy.retention.raw_detail_days
    if days < 1:
        raise ValueError("--days must be at least 1")
    cutoff = retention.cutoff_for(datetime.now(UTC), days)
    print(f"deleting raw detail before {cutoff} ({days} days) in {pipeline.store.root}")
    result = defs.resolve_job_def(RETENTION_JOB).execute_in_process(
        instance=_instance(settings),
        run_config={
            **_QUIET,
            "ops": {"delete_expired_raw_detail": {"config": {"raw_detail_days": days}}},
        },
        raise_on_error=False,
    )
    if not result.success:
        print("error: the retention run failed; see the Dagster logs above", file=sys.stderr)
        return 1
    meta = result.output_for_node("delete_expired_raw_detail")
    print(
        f"raw_completions: {meta['raw_rows']:,} rows in {meta['raw_partitions']} partitions; "
        f"staged copies: {meta['staged_rows']:,} rows; API export copies: "
        f"{meta['export_lines_removed']:,} lines ({meta['export_files_deleted']} files deleted); "
        f"rejected excerpts: {meta['rejected_excerpts']:,}; feedback comments: "
        f"{meta['feedback_comments']:,}; reports: {meta['reports']}; dataset files: "
        f"{meta['dataset_files_deleted']}"
    )
    kept = retention.local_export_files(settings.local_dir, settings.data_dir)
    if settings.source == "local" and kept:
        print(
            f"note: the local export folder {settings.local_dir} ({kept} files) is your input and "
            "was left as it is; delete old export files there yourself"
        )
    return 0


def _span(start: str, end: str) -> int:
    return int((parse_hour_key(end) - parse_hour_key(start)) / timedelta(hours=1)) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv-pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample", help="write the bundled sample in the export format")
    p.add_argument("--out", help="export folder (default: CONV_PIPELINE_LOCAL_DIR)")
    p.add_argument("--n", type=int, default=3000, help="number of completions (default 3000)")
    p.add_argument("--hours", type=int, default=72, help="hours covered (default 72)")
    p.add_argument(
        "--feedback-out",
        help="feedback folder (default: improvement.feedback.path in the data dir)",
    )
    p = sub.add_parser("run", help="materialize every partition the source has data for")
    p.add_argument("--start", help="first hourly partition key (YYYY-MM-DD-HH:00)")
    p.add_argument("--end", help="last hourly partition key (YYYY-MM-DD-HH:00)")
    p = sub.add_parser("export", help="copy the Stored Completions API into an export folder")
    p.add_argument("--out", help="export folder (default: CONV_PIPELINE_LOCAL_DIR)")
    p.add_argument("--kind", choices=["azure_openai", "openai"], help="which API (see README)")
    p = sub.add_parser("generate", help="store the recipe's four sample conversations via the API")
    p.add_argument("--model", required=True, help="model, or the Azure deployment name")
    p.add_argument("--rounds", type=int, default=1, help="times to send the four (default 1)")
    p.add_argument("--pipeline-source", default="demo", help="metadata pipeline_source")
    p.add_argument("--prompt-variant", help="metadata prompt_variant")
    p.add_argument("--kind", choices=["azure_openai", "openai"], help="which API (see README)")
    p = sub.add_parser("retention", help="delete raw detail older than the retention window")
    p.add_argument("--days", type=int, help="days of raw detail kept (default: the config's, 90)")
    p = sub.add_parser("standin", help="serve the Stored Completions API stand-in (local trials)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--load", help="an export folder to preload")
    p.add_argument("--api-key", action="append", help="accepted key (repeatable)")
    p.add_argument("--latency-ms", type=float, default=0, help="added to every request")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    commands = {
        "sample": cmd_sample,
        "run": cmd_run,
        "export": cmd_export,
        "generate": cmd_generate,
        "standin": cmd_standin,
        "retention": cmd_retention,
    }
    try:
        return commands[args.command](args, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
