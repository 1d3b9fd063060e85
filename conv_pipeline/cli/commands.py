"""``conv-pipeline export``, ``generate`` and ``retention`` (``run`` is in ``run.py``; the demo's
``sample`` and ``standin`` in ``demo.py``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from conv_pipeline.capture import generate_seed_conversations
from conv_pipeline.cli.run import QUIET, local_instance
from conv_pipeline.core.ingestion.api import ApiExporter, ApiSourceError, make_client
from conv_pipeline.core.privacy import retention
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import RETENTION_JOB
from conv_pipeline.resources import build_source
from conv_pipeline.settings import Settings


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
