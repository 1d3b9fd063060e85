"""Plots of an insight report, rendered offline to PNG (docs/UI.md).

matplotlib draws on its Agg canvas (``Figure`` + ``FigureCanvasAgg``: no display, no pyplot
global state) with the fonts it ships, and the PNG is written without a timestamp or version
chunk, so the same report gives the same bytes. The aggregations are Polars; the plots only draw
what ``build_report`` and these helpers computed.

Plots of one report:

* ``quality_trend``: average quality and issue rate over the window (5-minute bins of an hour,
  hours of a day), with the conversations per bin, the target and the alert threshold;
* ``score_distribution``: histogram of ``quality_score`` over the seed's bands;
* ``quality_by_segment``: average quality per value of each segment (the busiest values);
* ``issue_rates``: the rate of every issue type, coloured by severity;
* ``judge_scores``: the distribution of each LLM-judge score column, only when such a column is
  present and has values (``JUDGE_COLUMNS``, or any numeric column named ``judge_*``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from conv_pipeline.core.files import atomic_write_bytes

DPI = 90
JUDGE_COLUMNS = (
    "judge_score",
    "coherence",
    "relevance",
    "helpfulness",
    "faithfulness",
    "groundedness",
    "fluency",
    "correctness",
    "safety",
)
TITLES = {
    "quality_trend": "Quality over time",
    "score_distribution": "Score distribution",
    "quality_by_segment": "Quality by segment",
    "issue_rates": "Issue rates",
    "judge_scores": "LLM-judge scores",
    "range_trend": "Quality over the run's range",
}
_SEVERITY_COLORS = {"error": "#c0392b", "warning": "#e67e22", "info": "#7f8c8d"}
_BANDS = ((1.0, 4.0, "#f5b7b1", "poor"), (4.0, 6.0, "#fad7a0", "fair"))
_BANDS += ((6.0, 8.0, "#abebc6", "good"), (8.0, 10.0, "#a9cce3", "excellent"))
MAX_SEGMENT_VALUES = 8


# ---- data --------------------------------------------------------------------------------------


def trend_points(scored: pl.DataFrame, issues: pl.DataFrame, every: str) -> list[dict]:
    """Conversations, average quality and issue rate per ``every`` bin of ``created_at``."""
    if scored.height == 0:
        return []
    flagged = issues.select("completion_id").unique().with_columns(pl.lit(True).alias("_has"))
    rows = (
        scored.select("completion_id", "created_at", "quality_score")
        .join(flagged, on="completion_id", how="left")
        .with_columns(pl.col("_has").fill_null(False), pl.col("created_at").dt.truncate(every))
        .group_by("created_at")
        .agg(
            pl.len().alias("conversations"),
            pl.col("quality_score").mean().alias("average_quality"),
            pl.col("_has").mean().alias("quality_issue_rate"),
        )
        .sort("created_at")
    )
    fmt = "%H:%M"
    return [
        {
            "label": r["created_at"].strftime(fmt),
            "conversations": r["conversations"],
            "average_quality": r["average_quality"],
            "quality_issue_rate": r["quality_issue_rate"],
        }
        for r in rows.to_dicts()
    ]


def judge_columns(scored: pl.DataFrame) -> list[str]:
    """The judge score columns that are present, numeric and hold at least one value."""
    names = [c for c in JUDGE_COLUMNS if c in scored.columns]
    names += [c for c in scored.columns if c.startswith("judge_") and c not in names]
    return [
        c
        for c in names
        if scored.schema[c].is_numeric()
        and scored.height
        and scored[c].null_count() < scored.height
    ]


# ---- drawing -----------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 3.2):
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # No "Software" chunk (matplotlib's version) and Agg has no timestamp: stable bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def plot_trend(
    points: list[dict], title: str, target: float | None = None, alert_below: float | None = None
) -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    x = list(range(len(points)))
    labels = [p["label"] for p in points]
    volume = ax.twinx()
    volume.bar(x, [p["conversations"] for p in points], color="#d6dbdf", width=0.8)
    volume.set_ylabel("conversations", color="#7f8c8d")
    ax.set_zorder(volume.get_zorder() + 1)
    ax.patch.set_visible(False)
    quality = [p["average_quality"] for p in points]
    ax.plot(x, quality, marker="o", markersize=3, color="#1f77b4", label="average quality")
    if target is not None:
        ax.axhline(target, color="#27ae60", linestyle="--", linewidth=1, label=f"target {target:g}")
    if alert_below is not None:
        ax.axhline(
            alert_below,
            color="#c0392b",
            linestyle=":",
            linewidth=1,
            label=f"alert < {alert_below:g}",
        )
    ax.set_ylim(1, 10)
    ax.set_ylabel("average quality")
    rate = ax.twinx()
    rate.spines["right"].set_position(("axes", 1.12))
    rate.plot(
        x,
        [100 * (p.get("quality_issue_rate") or 0) for p in points],
        color="#e67e22",
        linewidth=1,
        label="issue rate %",
    )
    rate.set_ylim(0, 100)
    rate.set_ylabel("issue rate %", color="#e67e22")
    step = max(1, len(points) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, ha="right", fontsize=7)
    handles = ax.get_legend_handles_labels()
    extra = rate.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.80, bottom=0.24, top=0.9)
    return _png(fig)


def plot_score_distribution(scores: pl.Series, threshold: float | None, title: str) -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    for lo, hi, color, name in _BANDS:
        ax.axvspan(lo, hi, color=color, alpha=0.35, linewidth=0)
        ax.text(
            (lo + hi) / 2,
            1.0,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    values = scores.drop_nulls().to_numpy()
    ax.hist(values, bins=np.arange(1.0, 10.25, 0.25), color="#1f77b4", edgecolor="white")
    if threshold is not None:
        ax.axvline(
            threshold, color="#27ae60", linestyle="--", linewidth=1, label=f"target {threshold:g}"
        )
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlim(1, 10)
    ax.set_xlabel("quality_score (seed rubric)")
    ax.set_ylabel("conversations")
    ax.set_title(title, fontsize=10, pad=14)
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.15, top=0.84)
    return _png(fig)


def plot_segments(segments: dict[str, list[dict]], title: str) -> bytes:
    names = [s for s, rows in segments.items() if rows]
    cols = 2
    rows_n = max(1, (len(names) + 1) // 2)
    fig = _figure(7.0, 1.9 * rows_n + 0.4)
    fig.suptitle(title, fontsize=10)
    for i, seg in enumerate(names):
        ax = fig.add_subplot(rows_n, cols, i + 1)
        rows = segments[seg][:MAX_SEGMENT_VALUES][::-1]
        labels = [f"{r['value']} ({r['conversations']})" for r in rows]
        values = [r["average_quality"] or 0 for r in rows]
        ax.barh(range(len(rows)), values, color="#1f77b4")
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.set_xlim(1, 10)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(seg, fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.97, bottom=0.08, top=0.88, wspace=0.9, hspace=0.45)
    return _png(fig)


def plot_issue_rates(issue_rows: list[dict], title: str) -> bytes:
    fig = _figure(7.0, 3.0)
    ax = fig.add_subplot()
    rows = issue_rows[::-1]
    ax.barh(
        range(len(rows)),
        [100 * (r["rate"] or 0) for r in rows],
        color=[_SEVERITY_COLORS.get(r["severity"], "#7f8c8d") for r in rows],
    )
    ax.set_yticks(range(len(rows)), [f"{r['issue']} ({r['count']})" for r in rows], fontsize=7)
    ax.set_xlabel("% of conversations")
    ax.set_xlim(0, max([100 * (r["rate"] or 0) for r in rows] + [1]) * 1.15)
    ax.set_title(title + " (red: error, orange: warning, grey: info)", fontsize=9)
    fig.subplots_adjust(left=0.28, right=0.97, bottom=0.15, top=0.9)
    return _png(fig)


def plot_judge_scores(scored: pl.DataFrame, columns: list[str], title: str) -> bytes:
    fig = _figure(7.0, 3.0)
    ax = fig.add_subplot()
    data = [scored[c].drop_nulls().cast(pl.Float64).to_numpy() for c in columns]
    ax.boxplot(
        data,
        vert=False,
        tick_labels=[f"{c} (n={len(d)})" for c, d in zip(columns, data, strict=True)],
    )
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.25, right=0.97, bottom=0.12, top=0.9)
    return _png(fig)


# ---- a report's plots --------------------------------------------------------------------------


def report_plots(
    report: dict,
    scored: pl.DataFrame,
    issues: pl.DataFrame,
    *,
    target: float | None,
    alert_below: float | None,
) -> dict[str, bytes]:
    """PNG bytes by plot name for one report (none for a window without conversations)."""
    if scored.height == 0:
        return {}
    window = f"{report['kind']} {report['partition_key']}"
    every = "5m" if report["kind"] == "hourly" else "1h"
    out = {
        "quality_trend": plot_trend(
            trend_points(scored, issues, every),
            f"{TITLES['quality_trend']} — {window} ({every} bins)",
            target,
            alert_below,
        ),
        "score_distribution": plot_score_distribution(
            scored["quality_score"], target, f"{TITLES['score_distribution']} — {window}"
        ),
        "quality_by_segment": plot_segments(
            report["segments"], f"{TITLES['quality_by_segment']} — {window}"
        ),
        "issue_rates": plot_issue_rates(report["issues"], f"{TITLES['issue_rates']} — {window}"),
    }
    judges = judge_columns(scored)
    if judges:
        out["judge_scores"] = plot_judge_scores(
            scored, judges, f"{TITLES['judge_scores']} — {window}"
        )
    return out


def _plot_path(md_path: Path, name: str) -> Path:
    return md_path.with_name(f"{md_path.stem}.{name}.png")


def write_plots(md_path: Path, pngs: dict[str, bytes]) -> list[dict]:
    """Write ``<report>.<name>.png`` beside the report, drop the report's stale plots, and
    return the entries the report lists (file names relative to the Markdown file)."""
    for old in md_path.parent.glob(f"{md_path.stem}.*.png"):
        if old.name.split(".")[-2] not in pngs:
            old.unlink(missing_ok=True)
    entries = []
    for name, png in pngs.items():
        path = _plot_path(md_path, name)
        atomic_write_bytes(path, png)
        entries.append({"name": name, "title": TITLES[name], "file": path.name})
    return entries


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_markdown(title: str, src: str) -> str:
    return f"![{title}]({src})"


def plots_markdown(
    plots: list[dict] | None,
    src: Callable[[dict], str] | None = None,
    note: str | None = None,
) -> list[str]:
    """The report's "Plots" section: its images, or the note why it has none."""
    if not plots:
        return ["## Plots", "", note, ""] if note else []
    lines = ["## Plots", ""]
    for p in plots:
        lines += [image_markdown(p["title"], src(p) if src else p["file"]), ""]
    return lines
