"""The demo's commands: ``conv-pipeline sample`` (the bundled sample in the export format) and
``conv-pipeline standin`` (the Stored Completions API stand-in). They load neither Dagster's
definitions nor the pipeline, so they start fast and stop at once."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from conv_pipeline.core.config import load_config
from conv_pipeline.settings import Settings
from conv_pipeline_demo.sample import resolve_end, write_sample
from conv_pipeline_demo.sample.feedback import write_sample_feedback
from conv_pipeline_demo.standin import DEFAULT_API_KEY, StoredCompletionsServer


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:

    try:
        end = resolve_end(args.end)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve() if args.out else settings.local_dir
    summary = write_sample(out, n=args.n, hours=args.hours, end=end)
    print(
        f"wrote {summary.records:,} stored completions ({summary.first_created:%Y-%m-%d %H:%M} → "
        f"{summary.last_created:%Y-%m-%d %H:%M} UTC) in {len(summary.files)} files to {out}"
    )
    if summary.removed:
        print(f"removed {len(summary.removed)} export files of an earlier sample")

    configured = Path(load_config(settings.monitoring_config or None).improvement.feedback.path)
    fb_out = (
        Path(args.feedback_out).resolve()
        if args.feedback_out
        else (configured if configured.is_absolute() else settings.data_dir / configured)
    )
    fb = write_sample_feedback(fb_out, n=args.n, hours=args.hours, end=end)
    print(
        f"wrote feedback for {fb.rows:,} of them ({fb.thumbs:,} thumbs, {fb.ratings:,} ratings, "
        f"{fb.bad_rows} bad rows and {fb.duplicates} changed minds on purpose) to {fb_out}"
    )
    print(f"planted incidents (ground truth in {summary.incidents_file}):")
    for inc in summary.incidents:
        seg = ", ".join(f"{k}={v}" for k, v in inc.segment.items()) or "all traffic"
        print(
            f"  {inc.kind:<26} {seg:<24} {inc.start:%Y-%m-%d %H:%M} → {inc.end:%Y-%m-%d %H:%M} UTC"
        )
    if not summary.incidents:
        print("  none (the span is too short)")
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
        # Ctrl-C or SIGTERM ends the wait; the server then stops (its connections closed).
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
        print("stopped")
    return 0
