"""Report plots: deterministic PNGs beside the reports, linked from the Markdown, shown in the
asset metadata, judge scores only when present, and bounded by ``plot_reports_per_run``."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from conftest import hour_keys, make_settings

from conv_pipeline.core.config import DEFAULT_CONFIG_PATH, load_config
from conv_pipeline.core.reporting import plots
from conv_pipeline.core.reporting.report import build_report, render_markdown
from conv_pipeline.core.storage import DataStore
from conv_pipeline.definitions import build_definitions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CORE_PLOTS = ["quality_trend", "score_distribution", "quality_by_segment", "issue_rates"]


def _hour(store: DataStore, key: str):
    scored = store.read_hours("scored_conversations", [key])
    issues = store.read_hours("conversation_issues", [key])
    raw = store.read_hours(
        "raw_completions",
        [key],
        columns=["completion_id", "partition_key", "response", "last_user_message"],
    )
    return raw, scored, issues


@pytest.fixture
def scored_hour(defs, settings, export, hourly_runner):
    keys = hour_keys()
    hourly_runner(defs, dg.DagsterInstance.ephemeral(), keys[0], keys[-1])
    store = DataStore(settings.data_dir)
    raw, scored, issues = _hour(store, keys[2])
    report = build_report(
        kind="hourly",
        partition_key=keys[2],
        window_start=scored["created_at"].min().replace(minute=0, second=0, microsecond=0),
        window_end=scored["created_at"].max(),
        raw=raw,
        scored=scored,
        issues=issues,
        previous_totals=None,
        rejected=0,
        config=load_config(),
    )
    return store, keys, report, scored, issues


def _images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def test_plots_are_pngs_and_the_same_input_gives_the_same_bytes(scored_hour):
    _, _, report, scored, issues = scored_hour
    first = plots.report_plots(report, scored, issues, target=7.0, alert_below=6.0)
    again = plots.report_plots(report, scored, issues, target=7.0, alert_below=6.0)
    assert list(first) == CORE_PLOTS
    assert first == again
    for name, png in first.items():
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000, name
        assert b"Software" not in png[:4096]  # no version chunk: bytes do not change with it
    fewer = scored.head(scored.height // 2)
    other = plots.report_plots(report, fewer, issues, target=7.0, alert_below=6.0)
    assert other["score_distribution"] != first["score_distribution"]
    assert other["quality_trend"] != first["quality_trend"]


def test_a_window_without_conversations_has_no_plots(scored_hour):
    _, _, report, scored, issues = scored_hour
    assert (
        plots.report_plots(report, scored.clear(), issues.clear(), target=7.0, alert_below=6.0)
        == {}
    )


def test_trend_points_bin_the_window_and_count_issue_rates(scored_hour):
    _, _, _, scored, issues = scored_hour
    points = plots.trend_points(scored, issues, "5m")
    assert sum(p["conversations"] for p in points) == scored.height
    assert all(re.fullmatch(r"\d\d:\d\d", p["label"]) for p in points)
    flagged = issues["completion_id"].n_unique()
    weighted = sum(p["quality_issue_rate"] * p["conversations"] for p in points)
    assert weighted == pytest.approx(flagged)
    mean = sum(p["average_quality"] * p["conversations"] for p in points) / scored.height
    assert mean == pytest.approx(scored["quality_score"].mean())


def test_judge_scores_are_plotted_only_when_a_judge_column_has_values(scored_hour):
    _, _, report, scored, issues = scored_hour
    assert plots.judge_columns(scored) == []
    judged = scored.with_columns(
        judge_score=(pl.col("quality_score") / 2).round(0),
        coherence=pl.lit(None, dtype=pl.Float64),
        judge_reason=pl.lit("fine"),
        judge_relevance=pl.lit(4, dtype=pl.Int64),
    )
    assert plots.judge_columns(judged) == ["judge_score", "judge_relevance"]
    out = plots.report_plots(report, judged, issues, target=7.0, alert_below=6.0)
    assert list(out) == [*CORE_PLOTS, "judge_scores"]
    assert out["judge_scores"].startswith(PNG_MAGIC)


def test_plots_are_written_beside_the_report_and_stale_ones_removed(tmp_path, scored_hour):
    _, _, report, scored, issues = scored_hour
    md_path = tmp_path / "reports" / "hourly" / "2025-03-10" / "10.md"
    md_path.parent.mkdir(parents=True)
    (md_path.parent / "10.judge_scores.png").write_bytes(b"old")
    (md_path.parent / "11.quality_trend.png").write_bytes(b"another report")
    pngs = plots.report_plots(report, scored, issues, target=7.0, alert_below=6.0)
    report["plots"] = plots.write_plots(md_path, pngs)
    assert sorted(p.name for p in md_path.parent.glob("10.*.png")) == sorted(
        f"10.{n}.png" for n in CORE_PLOTS
    )
    assert (md_path.parent / "11.quality_trend.png").read_bytes() == b"another report"
    md = render_markdown(report)
    assert "## Plots" in md
    assert _images(md) == [f"10.{n}.png" for n in CORE_PLOTS]
    assert md.index("## Plots") < md.index("## Alerts")
    for link in _images(md):
        assert (md_path.parent / link).read_bytes() == pngs[link.split(".")[1]]
    assert plots.write_plots(md_path, {}) == []
    assert not list(md_path.parent.glob("10.*.png"))


def _config(tmp_path: Path, per_run: int) -> str:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text("utf-8"))
    raw["pipeline_settings"]["plot_reports_per_run"] = per_run
    path = tmp_path / "monitoring_config.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return str(path)


def test_a_ranged_run_plots_its_last_reports_and_a_range_trend(tmp_path, export_factory):
    settings = make_settings(tmp_path, monitoring_config=_config(tmp_path, 2))
    export_factory(settings.local_dir)
    defs = build_definitions(settings)
    keys = hour_keys()
    result = defs.resolve_job_def("hourly_pipeline").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
    )
    store = DataStore(settings.data_dir)
    for i, key in enumerate(keys):
        md_path, json_path = store.report_paths("hourly", key)
        md = md_path.read_text("utf-8")
        pngs = sorted(md_path.parent.glob(f"{md_path.stem}.*.png"))
        if i >= len(keys) - 2:
            assert [p.name for p in pngs] == sorted(f"{md_path.stem}.{n}.png" for n in CORE_PLOTS)
            assert sorted(_images(md)) == [p.name for p in pngs]
            assert [p["file"] for p in json.loads(json_path.read_text())["plots"]] == _images(md)
        else:
            assert pngs == [] and _images(md) == []
            assert "plot_reports_per_run" in md
    mats = result.asset_materializations_for_node("insight_report")
    meta = mats[-1].metadata
    assert meta["reports_with_plots"].value == 2
    trend = meta["plot_range_trend"].value
    assert trend.count("](data:image/png;base64,") == 1
    assert not any(k.startswith("plot_quality_trend") for k in meta)
    assert "plot_" in meta["last_report"].value  # the UI's copy points at the plot entries
    assert "](data:" not in meta["last_report"].value


def test_a_single_partition_shows_its_plots_in_the_metadata(defs, settings, export, hourly_runner):
    key = hour_keys()[3]
    result = hourly_runner(defs, dg.DagsterInstance.ephemeral(), key, key)
    meta = result.asset_materializations_for_node("insight_report")[0].metadata
    store = DataStore(settings.data_dir)
    md_path, _ = store.report_paths("hourly", key)
    for name in CORE_PLOTS:
        md = meta[f"plot_{name}"].value
        uri = re.search(r"\]\(data:image/png;base64,([^)]+)\)", md).group(1)
        on_disk = (md_path.parent / f"{md_path.stem}.{name}.png").read_bytes()
        assert base64.b64decode(uri) == on_disk, name
    assert isinstance(meta["report_path"], dg.PathMetadataValue)
    assert meta["report_path"].value == str(md_path)
    assert "](data:" not in meta["report"].value
    # The daily report of the day gets its plots too.
    day = defs.resolve_job_def("daily_summary").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=key[:10]
    )
    daily = day.asset_materializations_for_node("daily_insight_report")[0].metadata
    assert all(f"plot_{n}" in daily for n in CORE_PLOTS)
    daily_md, _ = store.report_paths("daily", key[:10])
    assert sorted(_images(daily_md.read_text("utf-8"))) == sorted(
        f"{key[:10]}.{n}.png" for n in CORE_PLOTS
    )


def test_zero_turns_plots_off(tmp_path, export_factory):
    settings = make_settings(tmp_path, monitoring_config=_config(tmp_path, 0))
    export_factory(settings.local_dir)
    defs = build_definitions(settings)
    key = hour_keys()[0]
    result = defs.resolve_job_def("hourly_pipeline").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=key
    )
    meta = result.asset_materializations_for_node("insight_report")[0].metadata
    assert not [k for k in meta if k.startswith("plot_")]
    assert not list((settings.data_dir / "reports").rglob("*.png"))
