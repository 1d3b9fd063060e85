"""The judge's part of an insight report: figures per evaluator and by segment, and the insights."""

from __future__ import annotations

from typing import Any

import polars as pl

from conv_pipeline.core.judge.insights import render_insights
from conv_pipeline.core.judge.pipeline import segment_summary, summarize


def judge_section(judged: pl.DataFrame, scored_judged: pl.DataFrame, segments) -> dict[str, Any]:
    out = summarize(judged)
    out["sampled_conversations"] = judged.height
    out["by_segment"] = segment_summary(scored_judged, tuple(segments))
    return out


def _f(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def render_judge_sections(report: dict) -> list[str]:
    lines: list[str] = []
    judge = report.get("judge")
    if judge:
        lines += ["", "## LLM judge", ""]
        if judge.get("status") == "off":
            lines.append(f"_{judge.get('note', 'The judge is not configured.')}_")
        else:
            lines += [
                f"Sampled {judge['sampled_conversations']} conversations, "
                f"{judge['judged_conversations']} scored; mean judge score "
                f"{_f(judge['judge_average_score'])} (1–5), pass rate "
                f"{_pct(judge['judge_pass_rate'])}, failed or unparseable judgments "
                f"{_pct(judge['judge_failure_rate'])}.",
                "",
                "| evaluator | scored | average | pass rate | failed/unparseable | nothing to ground | over budget |",
                "|---|---|---|---|---|---|---|",
            ]
            for name, e in judge["evaluators"].items():
                lines.append(
                    f"| {name} | {e['scored']} | {_f(e['average'])} | {_pct(e['pass_rate'])} | "
                    f"{e['failed_or_unparseable']} | {e['nothing_to_ground']} | {e['skipped_budget']} |"
                )
            for seg, rows in (judge.get("by_segment") or {}).items():
                lines += [
                    "",
                    f"Judge by {seg}:",
                    "",
                    "| value | judged | mean judge score | pass rate |",
                    "|---|---|---|---|",
                ]
                for r in rows:
                    lines.append(
                        f"| {r['value']} | {r['judged']} | {_f(r['average_judge_score'])} | "
                        f"{_pct(r['judge_pass_rate'])} |"
                    )
    if report.get("insights"):
        lines += render_insights(report["insights"])
    return lines
