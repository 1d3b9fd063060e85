"""The other ``conv-pipeline`` commands: ``sample``, ``export``, ``generate``, ``standin`` and
``retention`` (``run`` is in ``run.py``)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from conv_pipeline.capture import generate_seed_conversations
from conv_pipeline.cli.run import QUIET, local_instance
from conv_pipeline.core.config import load_config
from conv_pipeline.core.ingestion.api import ApiExporter, ApiSourceError, make_client
from conv_pipeline.core.privacy import retention
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import RETENTION_JOB
from conv_pipeline.resources import build_source
from conv_pipeline.settings import Settings
from conv_pipeline_demo.sample import write_sample
from conv_pipeline_demo.sample.feedback import write_sample_feedback
from conv_pipeline_demo.standin import DEFAULT_API_KEY, StoredCompletionsServer


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:

    out = Path(args.out).resolve() if args.out else settings.local_dir
    summary = write_sample(out, n=args.n, hours=args.hours)
    print(
        f"wrote {summary.records:,} stored completions ({summary.first_created:%Y-%m-%d %H:%M} → "
        f"{summary.last_created:%Y-%m-%d %H:%M} UTC) in {len(summary.files)} files to {out}"
    )

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


def _api_source(settings: Settings, kind: str | None):
    """The API source of the settings (``--kind`` or ``CONV_PIPELINE_SOURCE``; with the local
    source configured, the kind follows from which endpoint variable is set)."""

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

    defs = build_definitions(settings)
    pipeline = defs.resources["pipeline"]
    days = args.days if args.days is not None else pipeline.config.privacy.retention.raw_detail_days
    if days < 1:
        raise ValueError("--days must be at least 1")
    cutoff = retention.cutoff_for(datetime.now(UTC), days)
    print(f"deleting raw detail before {cutoff} ({days} days) in {pipeline.store.root}")
    result = defs.resolve_job_def(RETENTION_JOB).execute_in_process(
        instance=local_instance(settings),
        run_config={
            **QUIET,
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
