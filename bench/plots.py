"""The cost of a report's plots (docs/UI.md): draws the plots of the bundled sample's hourly and
daily reports and prints seconds per report (median and max over the reports), PNG sizes, and
what ``plot_reports_per_run`` bounds a run's plotting time to.

    python bench/plots.py [--hours 24]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from conv_pipeline.core.config import load_config
from conv_pipeline.core.reporting import plots
from conv_pipeline.core.reporting.report import build_report
from conv_pipeline.core.schema import HOUR_KEY_FORMAT
from conv_pipeline.core.scoring.issues import categorize_issues
from conv_pipeline.core.scoring.rubric import INPUT_COLUMNS, score_conversations
from conv_pipeline.core.storage import DataStore
from conv_pipeline.resources import LocalExportSource
from conv_pipeline_demo.sample import resolve_end, write_sample

# The sample's end hour, pinned so the figures do not depend on the day (only its dates would).
END = resolve_end("2026-12-02T14")
START = END - timedelta(hours=71)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    config = load_config()
    keys = [(START + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(72)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "completions"
        write_sample(out, n=3000, hours=72, end=END)
        store = DataStore(Path(tmp) / "data")
        source = LocalExportSource(export_dir=str(out))
        source.sync(store, config.partition_start)
        raw = source.read_hours(store, config.partition_start, keys)
    scored = score_conversations(raw.select(INPUT_COLUMNS))
    issues = categorize_issues(scored, low_quality_below=config.pipeline_settings.low_quality_below)
    t0 = time.perf_counter()
    plots.plot_trend([{"label": "x", "conversations": 1, "average_quality": 5}], "warm-up")
    warmup = time.perf_counter() - t0
    seconds, sizes = [], []
    for h in range(args.hours):
        key = (START + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT)
        s = scored.filter(pl.col("partition_key") == key)
        i = issues.filter(pl.col("partition_key") == key)
        report = build_report(
            kind="hourly",
            partition_key=key,
            window_start=START,
            window_end=START,
            raw=raw.filter(pl.col("partition_key") == key),
            scored=s,
            issues=i,
            previous_totals=None,
            rejected=0,
            config=config,
        )
        t0 = time.perf_counter()
        pngs = plots.report_plots(report, s, i, target=7.0, alert_below=6.0)
        seconds.append(time.perf_counter() - t0)
        sizes.append(sum(len(p) for p in pngs.values()))
    per_run = config.pipeline_settings.plot_reports_per_run
    result = {
        "first_plot_seconds_including_matplotlib_import": round(warmup, 3),
        "reports": len(seconds),
        "seconds_per_report_median": round(statistics.median(seconds), 3),
        "seconds_per_report_max": round(max(seconds), 3),
        "png_bytes_per_report_median": int(statistics.median(sizes)),
        "plot_reports_per_run": per_run,
        "bound_per_asset_per_run_seconds": round(per_run * statistics.median(seconds), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
