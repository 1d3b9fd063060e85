"""``insight_report`` (hourly) and ``daily_insight_report``: Markdown + JSON under
``$CONV_PIPELINE_DATA_DIR/reports/``, a row per report in the ``insight_reports`` table, and the
report itself in the asset's metadata."""

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.metadata import md_table, plot_metadata
from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.insights import generate_insights
from conv_pipeline.core.judge.pipeline import join_judgments
from conv_pipeline.core.judge.report import judge_section
from conv_pipeline.core.reporting.plots import TITLES, plot_trend, report_plots, write_plots
from conv_pipeline.core.reporting.report import SEGMENTS, build_report, render_markdown
from conv_pipeline.core.schema import HOUR_KEY_FORMAT, INSIGHT_REPORTS, conform, parse_hour_key
from conv_pipeline.core.scoring.metrics import totals
from conv_pipeline.core.storage import DataStore
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import JudgeResource, PipelineStore

# What a report needs from raw_completions: the texts of its worst examples.
TEXT_COLUMNS = ["completion_id", "partition_key", "response", "last_user_message"]


def _split(df: pl.DataFrame, column: str) -> dict[str, pl.DataFrame]:
    return {k[0]: v for k, v in df.partition_by(column, as_dict=True).items()}


def _publish(store: DataStore, report: dict, kind: str, key: str) -> tuple[str, str]:
    md = render_markdown(report)
    body = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    md_path, json_path = store.report_paths(kind, key)
    atomic_write_bytes(md_path, md.encode("utf-8"))
    atomic_write_bytes(json_path, body.encode("utf-8"))
    t = report["totals"]
    row = conform(
        pl.DataFrame(
            [
                {
                    "report_id": report["report_id"],
                    "kind": kind,
                    "partition_key": key,
                    "window_start": datetime.fromisoformat(report["window_start"]),
                    "window_end": datetime.fromisoformat(report["window_end"]),
                    "conversations": t["conversations"],
                    "average_quality": t["average_quality"],
                    "quality_issue_rate": t["quality_issue_rate"],
                    "error_rate": t["error_rate"],
                    "report_json": body,
                    "report_markdown": md,
                }
            ]
        ),
        INSIGHT_REPORTS,
    )
    path = (
        store.hourly_report_table_path(key)
        if kind == "hourly"
        else store.daily_report_table_path(key)
    )
    atomic_write_parquet(path, row)
    return md, str(md_path)


def _previous_totals(
    store: DataStore, kind: str, key: str, computed: dict[str, dict]
) -> dict | None:
    if key in computed:
        return computed[key]
    _, json_path = store.report_paths(kind, key)
    if json_path.exists():
        try:
            return json.loads(json_path.read_text("utf-8"))["totals"]
        except (ValueError, KeyError):
            return None
    return None


def _add_judge(
    report: dict,
    kind: str,
    scored: pl.DataFrame,
    judged: pl.DataFrame,
    judge: JudgeResource,
    store: DataStore,
    config: MonitoringConfig,
) -> None:
    """The judge's figures by evaluator and segment, and the LLM-written insights, when the
    judge is configured (docs/JUDGE.md); without it the report stays the rule-based one."""
    if judge.enabled or judged.height:
        report["judge"] = judge_section(judged, join_judgments(scored, judged), SEGMENTS)
    ins = config.judge.insights
    wanted = kind in ins.kinds or (
        kind == "hourly"
        and ins.hourly_when_alerting
        and any(a["triggered"] for a in report.get("alerts", []))
    )
    if judge.insights_enabled and ins.enabled and wanted and report["totals"]["conversations"]:
        with JudgmentCache(judge_store.cache_path(store)) as cache:
            report["insights"] = generate_insights(
                report,
                judge.connection(judge.insights_model),
                cache,
                allowed_actions=config.improvement_actions,
                max_output_tokens=ins.max_output_tokens,
                examples=ins.examples,
                max_retries=config.judge.max_retries,
                timeout=max(config.judge.timeout_seconds, 120.0),
            )


def _summary_table(rows: list[dict]) -> str:
    return md_table(pl.DataFrame(rows), limit=48)


PLOTS_ELSEWHERE = (
    "The plots of this report are the `plot_*` entries of this materialization (and PNG files "
    "beside the report's Markdown)."
)


def _plot_report(
    store: DataStore,
    config: MonitoringConfig,
    report: dict,
    scored: pl.DataFrame,
    issues: pl.DataFrame,
    draw: bool,
) -> dict[str, bytes]:
    """Draw the report's plots (when ``draw``), write them beside its Markdown, and list them in
    the report; a report drawn without plots says why (docs/UI.md)."""
    md_path, _ = store.report_paths(report["kind"], report["partition_key"])
    pngs = (
        report_plots(
            report,
            scored,
            issues,
            target=config.pipeline_settings.quality_threshold,
            alert_below=_alert_below(config),
        )
        if draw
        else {}
    )
    report["plots"] = write_plots(md_path, pngs)
    if not pngs and scored.height:
        report["plots_note"] = (
            f"No plots: a run draws them for its last {config.pipeline_settings.plot_reports_per_run} "
            "reports of each kind (`plot_reports_per_run`); run this partition alone to draw them."
        )
    return pngs


def _alert_below(config: MonitoringConfig) -> float | None:
    return next(
        (a.threshold for a in config.alerts if a.metric == "average_quality" and a.op in "<="),
        None,
    )


def _ui_markdown(report: dict) -> str:
    """The report as the UI shows it: its plots are separate metadata entries."""
    if not report.get("plots"):
        return render_markdown(report)
    return render_markdown({**report, "plots": [], "plots_note": PLOTS_ELSEWHERE})


def _range_trend(rows: list[dict], label: str, config: MonitoringConfig) -> bytes:
    points = [
        {
            "label": r[label][5:],  # month-day(-hour): short enough for the axis
            "conversations": r["conversations"],
            "average_quality": r["average_quality"],
            "quality_issue_rate": r["quality_issue_rate"],
        }
        for r in rows
    ]
    return plot_trend(
        points,
        f"{TITLES['range_trend']} ({rows[0][label]} … {rows[-1][label]})",
        config.pipeline_settings.quality_threshold,
        _alert_below(config),
    )


class _HourFrames:
    """The run's rows split by hour, with empty frames for hours without rows."""

    def __init__(self, store: DataStore, hours: list[str]):
        self.raw = _split(
            store.read_hours("raw_completions", hours, columns=TEXT_COLUMNS), "partition_key"
        )
        self.scored = _split(store.read_hours("scored_conversations", hours), "partition_key")
        self.issues = _split(store.read_hours("conversation_issues", hours), "partition_key")
        judged_all = judge_store.read_hours(store, hours)
        self.judged = _split(judged_all, "partition_key") if judged_all.height else {}
        self.empty_judged = judged_all.clear()
        self.empty_raw = store.read_hours("raw_completions", [], columns=TEXT_COLUMNS)
        self.empty_scored = store.read_hours("scored_conversations", []).clear()
        self.empty_issues = store.read_hours("conversation_issues", []).clear()

    def of(self, key: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return (
            self.raw.get(key, self.empty_raw),
            self.scored.get(key, self.empty_scored),
            self.issues.get(key, self.empty_issues),
            self.judged.get(key, self.empty_judged),
        )


def _previous_hour(store: DataStore, key: str, computed: dict[str, dict]) -> dict | None:
    prev_key = (parse_hour_key(key) - timedelta(hours=1)).strftime(HOUR_KEY_FORMAT)
    previous = _previous_totals(store, "hourly", prev_key, computed)
    if previous is None and store.hour_path("scored_conversations", prev_key).exists():
        previous = totals(
            store.read_hours("scored_conversations", [prev_key]),
            store.read_hours("conversation_issues", [prev_key]),
        )
    return previous


def _hourly_report(
    store: DataStore,
    config: MonitoringConfig,
    judge: JudgeResource,
    frames: _HourFrames,
    key: str,
    computed: dict[str, dict],
    rejected: int,
) -> dict:
    start = parse_hour_key(key)
    raw, scored, issues, judged = frames.of(key)
    report = build_report(
        kind="hourly",
        partition_key=key,
        window_start=start,
        window_end=start + timedelta(hours=1),
        raw=raw,
        scored=scored,
        issues=issues,
        previous_totals=_previous_hour(store, key, computed),
        rejected=rejected,
        config=config,
    )
    _add_judge(report, "hourly", scored, judged, judge, store, config)
    computed[key] = report["totals"]
    return report


def _summary_row(label: str, key: str, report: dict) -> dict:
    t = report["totals"]
    row = {
        label: key,
        "conversations": t["conversations"],
        "average_quality": t["average_quality"],
        "quality_issue_rate": t["quality_issue_rate"],
    }
    if label == "hour":
        row["alerts"] = ", ".join(a["check"] for a in report["alerts"] if a["triggered"])
    return row


def _run_metadata(
    summary: list[dict], label: str, last_md: str, pngs: dict, config: MonitoringConfig
) -> dict:
    """One report: the report itself and its plots. A range: the table of its partitions, the
    last report, and one trend image (Dagster copies this metadata onto every partition)."""
    if len(summary) == 1:
        return {"report": dg.MetadataValue.md(last_md), **plot_metadata(pngs)}
    return {
        f"{label}s": dg.MetadataValue.md(_summary_table(summary)),
        "last_report": dg.MetadataValue.md(last_md),
        **plot_metadata({"range_trend": _range_trend(summary, label, config)}),
    }


def build_insight_report(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.INSIGHT_REPORT,
        deps=[keys.SCORED, keys.ISSUES],
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.REPORTING,
        kinds={"polars", "duckdb", "matplotlib"},
        description=(
            "The hour's insight report (Markdown and JSON in `reports/hourly/`, a row in the "
            "`insight_reports` table): totals, quality distribution, breakdown by user_type, "
            "category, prompt_variant and model, issue counts and rates, the seed's response-length "
            "metrics, worst examples, change against the previous hour, the alert conditions and "
            "the recommended improvement actions."
        ),
    )
    def insight_report(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, judge: JudgeResource
    ) -> dg.MaterializeResult:
        store = pipeline.store
        hours = context.partition_keys
        frames = _HourFrames(store, hours)
        rejected = store.rejected_counts()
        computed: dict[str, dict] = {}
        summary, last_md, last_path = [], "", ""
        plot_from = len(hours) - config.pipeline_settings.plot_reports_per_run
        pngs: dict[str, bytes] = {}
        plotted, plot_seconds = 0, 0.0
        for i, key in enumerate(hours):
            report = _hourly_report(
                store, config, judge, frames, key, computed, rejected.get(key, 0)
            )
            began = time.perf_counter()
            _, scored, issues, _ = frames.of(key)
            pngs = _plot_report(store, config, report, scored, issues, draw=i >= plot_from)
            plot_seconds += time.perf_counter() - began
            plotted += bool(pngs)
            _publish(store, report, "hourly", key)
            last_md, last_path = _ui_markdown(report), str(store.report_paths("hourly", key)[0])
            if (i + 1) % 24 == 0 or i + 1 == len(hours):
                context.log.info(
                    f"insight_report: {i + 1}/{len(hours)} hourly reports written (through "
                    f"{key}); {plotted} with plots in {plot_seconds:.1f}s"
                )
            summary.append(_summary_row("hour", key, report))
        store.refresh_warehouse()
        meta: dict = {
            "reports_written": len(hours),
            "report_path": dg.MetadataValue.path(last_path),
            "reports_with_plots": plotted,
            "plotting_seconds": round(plot_seconds, 2),
            **_run_metadata(summary, "hour", last_md, pngs, config),
        }
        if len(hours) == 1:
            t = computed[hours[0]]
            for name in ("conversations", "average_quality", "quality_issue_rate"):
                meta[name] = t[name]
        return dg.MaterializeResult(metadata={k: v for k, v in meta.items() if v is not None})

    return insight_report


def _daily_report(
    store: DataStore,
    config: MonitoringConfig,
    judge: JudgeResource,
    day: str,
    computed: dict[str, dict],
    rejected: dict[str, int],
) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    hours = [(start + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(24)]
    scored = store.read_hours("scored_conversations", hours)
    issues = store.read_hours("conversation_issues", hours)
    prev_day = (start - timedelta(days=1)).strftime("%Y-%m-%d")
    report = build_report(
        kind="daily",
        partition_key=day,
        window_start=start,
        window_end=start + timedelta(days=1),
        raw=store.read_hours("raw_completions", hours, columns=TEXT_COLUMNS),
        scored=scored,
        issues=issues,
        previous_totals=_previous_totals(store, "daily", prev_day, computed),
        rejected=sum(rejected.get(h, 0) for h in hours),
        config=config,
    )
    _add_judge(report, "daily", scored, judge_store.read_hours(store, hours), judge, store, config)
    report["hourly_trend"] = (
        scored.group_by("partition_key")
        .agg(
            pl.len().alias("conversations"),
            pl.col("quality_score").mean().round(3).alias("average_quality"),
            pl.col("response_length").mean().round(1).alias("avg_response_length"),
        )
        .sort("partition_key")
        .rename({"partition_key": "hour"})
        .to_dicts()
    )
    computed[day] = report["totals"]
    return report, scored, issues


def build_daily_insight_report(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.DAILY_REPORT,
        deps=[keys.INSIGHT_REPORT],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.REPORTING,
        kinds={"polars", "duckdb", "matplotlib"},
        description=(
            "The day's summary over its 24 hourly reports (Markdown and JSON in `reports/daily/`): "
            "the same sections computed over the whole day, plus the hour-by-hour trend."
        ),
    )
    def daily_insight_report(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, judge: JudgeResource
    ) -> dg.MaterializeResult:
        store = pipeline.store
        rejected = store.rejected_counts()
        computed: dict[str, dict] = {}
        summary, last_md, last_path = [], "", ""
        days = context.partition_keys
        plot_from = len(days) - config.pipeline_settings.plot_reports_per_run
        pngs: dict[str, bytes] = {}
        for i, day in enumerate(days):
            report, scored, issues = _daily_report(store, config, judge, day, computed, rejected)
            pngs = _plot_report(store, config, report, scored, issues, draw=i >= plot_from)
            _publish(store, report, "daily", day)
            last_md, last_path = _ui_markdown(report), str(store.report_paths("daily", day)[0])
            context.log.info(
                f"daily_insight_report: {i + 1}/{len(days)} days written ({day}: "
                f"{report['totals']['conversations']} conversations, {len(pngs)} plots)"
            )
            summary.append(_summary_row("day", day, report))
        store.refresh_warehouse()
        return dg.MaterializeResult(
            metadata={
                "reports_written": len(summary),
                "report_path": dg.MetadataValue.path(last_path),
                **_run_metadata(summary, "day", last_md, pngs, config),
            }
        )

    return daily_insight_report
