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
import importlib
import sys

from conv_pipeline.settings import Settings

# command -> (module in conv_pipeline/cli/, function)
COMMANDS = {
    "sample": ("demo", "cmd_sample"),
    "standin": ("demo", "cmd_standin"),
    "run": ("run", "cmd_run"),
    "export": ("commands", "cmd_export"),
    "generate": ("commands", "cmd_generate"),
    "retention": ("commands", "cmd_retention"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv-pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample", help="write the bundled sample in the export format")
    p.add_argument("--out", help="export folder (default: CONV_PIPELINE_LOCAL_DIR)")
    p.add_argument("--n", type=int, default=20000, help="number of completions (default 20000)")
    p.add_argument("--hours", type=int, default=168, help="hours covered (default 168)")
    p.add_argument("--end", help="last hour, e.g. 2026-12-07T10 (UTC; default: the current hour)")
    p.add_argument(
        "--feedback-out",
        help="feedback folder (default: improvement.feedback.path in the data dir)",
    )
    p = sub.add_parser("run", help="materialize every partition the source has data for")
    p.add_argument("--start", help="first hourly partition key (YYYY-MM-DD-HH:00)")
    p.add_argument("--end", help="last hourly partition key (YYYY-MM-DD-HH:00)")
    p = sub.add_parser("export", help="copy the Stored Completions API into an export folder")
    p.add_argument("--out", help="export folder (default: CONV_PIPELINE_LOCAL_DIR)")
    p.add_argument(
        "--kind", choices=["azure_openai", "openai"], help="which API (docs/API_SOURCE.md)"
    )
    p = sub.add_parser("generate", help="store the recipe's four sample conversations via the API")
    p.add_argument("--model", required=True, help="model, or the Azure deployment name")
    p.add_argument("--rounds", type=int, default=1, help="times to send the four (default 1)")
    p.add_argument("--pipeline-source", default="demo", help="metadata pipeline_source")
    p.add_argument("--prompt-variant", help="metadata prompt_variant")
    p.add_argument(
        "--kind", choices=["azure_openai", "openai"], help="which API (docs/API_SOURCE.md)"
    )
    p = sub.add_parser("retention", help="delete raw detail older than the retention window")
    p.add_argument("--days", type=int, help="days of raw detail kept (default: the config's, 90)")
    p = sub.add_parser("standin", help="serve the Stored Completions API stand-in (local trials)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--load", help="an export folder to preload")
    p.add_argument("--api-key", action="append", help="accepted key (repeatable)")
    p.add_argument("--latency-ms", type=float, default=0, help="added to every request")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    module, name = COMMANDS[args.command]
    # The CLI's one lazy import: a command loads what it needs (`conv-pipeline standin` and
    # `--help` do not load Dagster's definitions).
    handler = getattr(importlib.import_module(f"conv_pipeline.cli.{module}"), name)
    try:
        return handler(args, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
