"""Insight reports: the numbers of one window, the change against the previous window, the worst
examples, and the recommended improvement actions of the seed's ``monitoring_config.json``.

``build_report`` returns a JSON-ready dict; ``render_markdown`` turns it into the Markdown a person
reads in the UI or in ``reports/``. Everything is computed with Polars aggregations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.judge.report import render_judge_sections
from conv_pipeline.core.reporting.plots import plots_markdown
from conv_pipeline.core.scoring.issues import ISSUE_RULES
from conv_pipeline.core.scoring.metrics import quality_distribution, rounded, totals

SEGMENTS = ("user_type", "category", "prompt_variant", "model")
EXCERPT = 160


def segment_table(scored: pl.DataFrame, issues: pl.DataFrame, segment: str) -> list[dict]:
    """Per segment value: volume, quality, issue/error rates, length, and issue counts."""
    if scored.height == 0:
        return []
    key = pl.col(segment).fill_null("unknown").alias("value")
    flagged = issues.select("completion_id").unique().with_columns(pl.lit(True).alias("_has"))
    base = (
        scored.join(flagged, on="completion_id", how="left")
        .with_columns(pl.col("_has").fill_null(False))
        .group_by(key)
        .agg(
            pl.len().alias("conversations"),
            pl.col("quality_score").mean().round(4).alias("average_quality"),
            pl.col("_has").mean().round(4).alias("quality_issue_rate"),
            pl.col("is_error").mean().round(4).alias("error_rate"),
            pl.col("response_length").mean().round(2).alias("avg_response_length"),
        )
    )
    if issues.height:
        counts = (
            issues.with_columns(key)
            .group_by("value", "issue")
            .len()
            .pivot(on="issue", index="value", values="len")
            .fill_null(0)
        )
        # the rules' issues in their order, then any other (the LLM judge's) by name
        issue_cols = [c for c in ISSUE_RULES if c in counts.columns] + sorted(
            c for c in counts.columns if c != "value" and c not in ISSUE_RULES
        )
        base = base.join(counts, on="value", how="left").with_columns(
            [pl.col(c).fill_null(0) for c in issue_cols]
        )
    else:
        issue_cols = []
    rows = base.sort(["conversations", "value"], descending=[True, False]).to_dicts()
    for r in rows:
        r["issues"] = {c: int(r.pop(c)) for c in issue_cols if r.get(c)}
        for c in issue_cols:
            r.pop(c, None)
    return rows


def issue_summary(scored: pl.DataFrame, issues: pl.DataFrame) -> list[dict]:
    n = scored.height
    counts = dict(issues.group_by("issue").len().rows()) if issues.height else {}
    return [
        {
            "issue": name,
            "severity": severity,
            "count": int(counts.get(name, 0)),
            "rate": rounded(counts.get(name, 0) / n) if n else None,
            "rule": rule,
        }
        for name, (severity, rule) in {**ISSUE_RULES, **_other_rules(issues)}.items()
    ]


def _other_rules(issues: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Issues in the table beyond the heuristic rules (the LLM judge's), with their severity."""
    if not issues.height:
        return {}
    other = (
        issues.filter(~pl.col("issue").is_in(list(ISSUE_RULES)))
        .group_by("issue")
        .agg(pl.col("severity").first())
        .sort("issue")
    )
    return {
        r["issue"]: (r["severity"], "LLM judge: evaluator below threshold")
        for r in other.to_dicts()
    }


def worst_examples(
    scored: pl.DataFrame, issues: pl.DataFrame, raw: pl.DataFrame, limit: int
) -> list[dict]:
    if scored.height == 0 or limit <= 0:
        return []
    per = (
        issues.group_by("completion_id").agg(pl.col("issue").sort().alias("issues"))
        if issues.height
        else pl.DataFrame(schema={"completion_id": pl.String, "issues": pl.List(pl.String)})
    )
    texts = raw.select("completion_id", "response", "last_user_message")
    worst = (
        scored.join(per, on="completion_id", how="left")
        .with_columns(pl.col("issues").fill_null(pl.lit([], pl.List(pl.String))))
        .with_columns(pl.col("issues").list.len().alias("_n"))
        .sort(["quality_score", "_n", "completion_id"], descending=[False, True, False])
        .head(limit)
        .join(texts, on="completion_id", how="left")
        .sort(["quality_score", "_n", "completion_id"], descending=[False, True, False])
    )
    out = []
    for r in worst.iter_rows(named=True):
        out.append(
            {
                "completion_id": r["completion_id"],
                "created_at": r["created_at"].isoformat() if r["created_at"] else None,
                "quality_score": r["quality_score"],
                "issues": r["issues"],
                "user_type": r["user_type"],
                "category": r["category"],
                "prompt_variant": r["prompt_variant"],
                "model": r["model"],
                "finish_reason": r["finish_reason"],
                "user_message": _excerpt(r["last_user_message"]),
                "response": _excerpt(r["response"]),
            }
        )
    return out


def _excerpt(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def compare(current: dict, previous: dict | None) -> dict | None:
    if not previous or not previous.get("conversations"):
        return None
    keys = (
        "conversations",
        "average_quality",
        "quality_issue_rate",
        "error_rate",
        "refusal_rate",
        "avg_response_length",
    )
    out = {}
    for k in keys:
        cur, prev = current.get(k), previous.get(k)
        out[k] = {
            "previous": prev,
            "current": cur,
            "change": None if cur is None or prev is None else rounded(cur - prev),
        }
    return out


def evaluate_alerts(config: MonitoringConfig, tot: dict) -> list[dict]:
    out = []
    enough = tot["conversations"] >= config.pipeline_settings.min_conversations_for_alerts
    for cond in config.alerts:
        value = tot.get(cond.metric)
        out.append(
            {
                "check": cond.name,
                "condition": cond.text,
                "metric": cond.metric,
                "value": value,
                "threshold": cond.threshold,
                "triggered": bool(enough and cond.triggered(value)),
                "severity": "ERROR",
            }
        )
    target = config.pipeline_settings.quality_threshold
    value = tot.get("average_quality")
    out.append(
        {
            "check": "quality_threshold",
            "condition": f"average_quality < {target}",
            "metric": "average_quality",
            "value": value,
            "threshold": target,
            "triggered": bool(enough and value is not None and value < target),
            "severity": "WARN",
        }
    )
    return out


_PRIORITY = {"high": 0, "medium": 1, "low": 2}


class _Actions:
    """The improvement actions a report recommends: each with its highest priority and every
    reason that called for it."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[str, list[str]]] = {}

    def add(self, action: str, priority: str, reason: str) -> None:
        prev = self.found.get(action)
        if prev is None:
            self.found[action] = (priority, [reason])
        else:
            best = priority if _PRIORITY[priority] < _PRIORITY[prev[0]] else prev[0]
            self.found[action] = (best, [*prev[1], reason])

    def ranked(self, allowed) -> list[dict]:
        return [
            {"action": a, "priority": p, "reasons": reasons}
            for a, (p, reasons) in sorted(
                self.found.items(), key=lambda kv: (_PRIORITY[kv[1][0]], kv[0])
            )
            if a in allowed
        ]


def _prompt_rules(out: _Actions, s, tot: dict, rates: dict, segments: dict) -> None:
    avg = tot["average_quality"]
    if avg is not None and avg < s.quality_threshold:
        out.add(
            "prompt_optimization",
            "high" if avg < 6.0 else "medium",
            f"average quality {avg:.2f} is below the {s.quality_threshold} target",
        )
    if rates.get("refusal", 0) > 0.05:
        out.add("prompt_optimization", "high", f"{rates['refusal']:.1%} of answers are refusals")
    variants = [
        r
        for r in segments.get("prompt_variant", [])
        if r["conversations"] >= s.segment_min_conversations
    ]
    if len(variants) >= 2:
        best = max(variants, key=lambda r: r["average_quality"])
        for r in variants:
            gap = best["average_quality"] - r["average_quality"]
            if r is not best and gap >= 0.3:
                out.add(
                    "prompt_optimization",
                    "high" if gap >= 0.75 else "medium",
                    f"prompt_variant {r['value']} scores {gap:.2f} below {best['value']} "
                    f"({r['average_quality']:.2f} vs {best['average_quality']:.2f})",
                )
    for seg in ("user_type", "category"):
        for r in segments.get(seg, []):
            if r["conversations"] >= s.segment_min_conversations and r["average_quality"] < 6.0:
                out.add(
                    "prompt_optimization",
                    "high",
                    f"{seg} {r['value']} averages {r['average_quality']:.2f} "
                    f"over {r['conversations']} conversations",
                )


def _data_rules(
    out: _Actions, s, tot: dict, segments: dict, scored: pl.DataFrame, issues: pl.DataFrame
) -> None:
    n, avg = tot["conversations"], tot["average_quality"]
    flagged = set(issues["completion_id"].to_list()) if issues.height else set()
    good = scored.filter(
        (pl.col("quality_score") >= s.quality_threshold) & ~pl.col("completion_id").is_in(flagged)
    ).height
    if good >= 10:
        out.add(
            "fine_tuning_data_preparation",
            "medium" if avg is not None and avg < s.quality_threshold else "low",
            f"{good} conversations score ≥ {s.quality_threshold} with no issue: candidates for a "
            "fine-tuning / distillation set",
        )
    unknown = sum(
        r["conversations"] for r in segments.get("user_type", []) if r["value"] == "unknown"
    )
    if unknown / n > 0.05:
        out.add(
            "issue_categorization_updates",
            "medium",
            f"{unknown / n:.1%} of conversations carry no user_type metadata",
        )
    only_low = (
        issues.group_by("completion_id")
        .agg(pl.col("issue"))
        .filter(pl.col("issue").list.len() == 1)
        .filter(pl.col("issue").list.first() == "low_quality")
        .height
        if issues.height
        else 0
    )
    if only_low / n > 0.10:
        out.add(
            "issue_categorization_updates",
            "medium",
            f"{only_low / n:.1%} of conversations are low quality without a specific issue: "
            "add categories that explain them",
        )


def _experience_rules(out: _Actions, tot: dict, rates: dict) -> None:
    length_rate = rates.get("response_too_short", 0) + rates.get("response_too_long", 0)
    if length_rate > 0.10:
        out.add(
            "user_experience_enhancements",
            "high" if length_rate > 0.25 else "medium",
            f"{length_rate:.1%} of answers are too short or too long",
        )
    if rates.get("truncated", 0) > 0.02:
        out.add(
            "user_experience_enhancements",
            "medium",
            f"{rates['truncated']:.1%} of answers were cut off (finish_reason length): raise "
            "max_tokens or ask for shorter answers",
        )
    if (tot.get("error_rate") or 0) > 0.05:
        out.add(
            "user_experience_enhancements",
            "high",
            f"error rate {tot['error_rate']:.1%}: users got no usable answer",
        )


def recommend(
    config: MonitoringConfig,
    tot: dict,
    segments: dict[str, list[dict]],
    issue_rows: list[dict],
    scored: pl.DataFrame,
    issues: pl.DataFrame,
) -> list[dict]:
    """Pick the seed's ``improvement_actions`` that the findings call for, with the reason."""
    s = config.pipeline_settings
    n = tot["conversations"]
    if not n:
        return []
    rates = {r["issue"]: (r["rate"] or 0.0) for r in issue_rows}
    out = _Actions()
    _prompt_rules(out, s, tot, rates, segments)
    _data_rules(out, s, tot, segments, scored, issues)
    _experience_rules(out, tot, rates)
    below = scored.filter(pl.col("quality_score") < s.quality_threshold).height / n
    if n >= 20 and (below > 0.9 or below < 0.01):
        out.add(
            "quality_threshold_adjustments",
            "low",
            f"{below:.0%} of conversations score below the {s.quality_threshold} target: "
            "the threshold does not separate good from bad answers on this data",
        )
    return out.ranked(config.improvement_actions)


def build_report(
    *,
    kind: str,
    partition_key: str,
    window_start: datetime,
    window_end: datetime,
    raw: pl.DataFrame,
    scored: pl.DataFrame,
    issues: pl.DataFrame,
    previous_totals: dict | None,
    rejected: int,
    config: MonitoringConfig,
) -> dict[str, Any]:
    tot = totals(scored, issues)
    segments = {seg: segment_table(scored, issues, seg) for seg in SEGMENTS}
    issue_rows = issue_summary(scored, issues)
    return {
        "report_id": f"{kind}:{partition_key}",
        "kind": kind,
        "partition_key": partition_key,
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "totals": tot,
        "rejected_records": rejected,
        "quality_distribution": quality_distribution(scored),
        "segments": segments,
        "issues": issue_rows,
        "worst_examples": worst_examples(
            scored, issues, raw, config.pipeline_settings.worst_examples
        ),
        "change_vs_previous": compare(tot, previous_totals),
        "alerts": evaluate_alerts(config, tot),
        "recommended_actions": recommend(config, tot, segments, issue_rows, scored, issues),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def _totals_md(report: dict) -> list[str]:
    t = report["totals"]
    return [
        "## Totals",
        "",
        "| metric | value |",
        "|---|---|",
        f"| conversations (completions) | {_fmt(t['conversations'])} |",
        f"| distinct conversation ids | {_fmt(t['distinct_conversation_ids'])} |",
        f"| average quality (seed rubric, 1–10) | {_fmt(t['average_quality'])} |",
        f"| median quality | {_fmt(t['median_quality'])} |",
        f"| quality issue rate (≥ 1 issue) | {_pct(t['quality_issue_rate'])} |",
        f"| seed issue rate (too short / too long) | {_pct(t['seed_quality_issue_rate'])} |",
        f"| error rate | {_pct(t['error_rate'])} |",
        f"| refusal rate | {_pct(t['refusal_rate'])} |",
        f"| response length avg / min / max | {_fmt(t['avg_response_length'])} / "
        f"{_fmt(t['min_response_length'])} / {_fmt(t['max_response_length'])} |",
        f"| tokens prompt / completion / total | {_fmt(t['prompt_tokens'])} / "
        f"{_fmt(t['completion_tokens'])} / {_fmt(t['total_tokens'])} |",
        f"| rejected input records | {_fmt(report['rejected_records'])} |",
        "",
    ]


def _alerts_and_actions_md(report: dict) -> list[str]:
    lines = ["## Alerts", "", "| check | condition | value | status |", "|---|---|---|---|"]
    for a in report["alerts"]:
        status = (
            ("🔴 " if a["severity"] == "ERROR" else "🟡 ") + "triggered" if a["triggered"] else "ok"
        )
        lines.append(f"| {a['check']} | `{a['condition']}` | {_fmt(a['value'])} | {status} |")
    lines += ["", "## Recommended actions", ""]
    if report["recommended_actions"]:
        for a in report["recommended_actions"]:
            lines.append(f"- **{a['action']}** ({a['priority']}): " + "; ".join(a["reasons"]))
    else:
        lines.append("Nothing calls for action in this window.")
    change = report.get("change_vs_previous")
    lines += ["", "## Change against the previous window", ""]
    if change:
        lines += ["| metric | previous | current | change |", "|---|---|---|---|"]
        for k, v in change.items():
            lines.append(
                f"| {k} | {_fmt(v['previous'])} | {_fmt(v['current'])} | {_fmt(v['change'])} |"
            )
    else:
        lines.append("No previous window with data to compare with.")
    return lines


def _distribution_and_issues_md(report: dict) -> list[str]:
    d = report["quality_distribution"]
    lines = [
        "",
        "## Quality distribution",
        "",
        "| excellent (≥ 8) | good (6–8) | fair (4–6) | poor (< 4) |",
        "|---|---|---|---|",
        f"| {d['excellent']} | {d['good']} | {d['fair']} | {d['poor']} |",
        "",
        "## Issues",
        "",
        "| issue | severity | count | rate |",
        "|---|---|---|---|",
    ]
    for r in report["issues"]:
        if r["count"]:
            lines.append(f"| {r['issue']} | {r['severity']} | {r['count']} | {_pct(r['rate'])} |")
    return lines


def _segments_md(report: dict) -> list[str]:
    lines: list[str] = []
    for seg, rows in report["segments"].items():
        lines += [
            "",
            f"## By {seg}",
            "",
            "| value | conversations | avg quality | issue rate | error rate | avg length | top issues |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            top = ", ".join(
                f"{k} {v}"
                for k, v in sorted(r["issues"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            )
            lines.append(
                f"| {_fmt(r['value'])} | {r['conversations']} | {_fmt(r['average_quality'])} | "
                f"{_pct(r['quality_issue_rate'])} | {_pct(r['error_rate'])} | "
                f"{_fmt(r['avg_response_length'])} | {top or '–'} |"
            )
    if report.get("hourly_trend"):
        lines += [
            "",
            "## Hour by hour",
            "",
            "| hour | conversations | avg quality | avg length |",
            "|---|---|---|---|",
        ]
        for h in report["hourly_trend"]:
            lines.append(
                f"| {h['hour']} | {h['conversations']} | {_fmt(h['average_quality'])} | "
                f"{_fmt(h['avg_response_length'])} |"
            )
    return lines


def _worst_md(report: dict) -> list[str]:
    lines = [
        "",
        "## Worst examples",
        "",
        "| completion id | score | issues | segment | user asked | answer |",
        "|---|---|---|---|---|---|",
    ]
    for w in report["worst_examples"]:
        lines.append(
            f"| `{w['completion_id']}` | {_fmt(w['quality_score'])} | {', '.join(w['issues']) or '–'} | "
            f"{_fmt(w['user_type'])} / {_fmt(w['category'])} / {_fmt(w['prompt_variant'])} | "
            f"{_fmt(w['user_message'])} | {_fmt(w['response'])} |"
        )
    return lines


def render_markdown(report: dict) -> str:
    lines = [
        f"# Insight report — {report['kind']} {report['partition_key']}",
        "",
        f"Window: {report['window_start']} → {report['window_end']}",
        "",
    ]
    if not report["totals"]["conversations"]:
        lines += ["No conversations in this window.", ""]
        if report["rejected_records"]:
            lines.append(f"Rejected input records in this window: {report['rejected_records']}")
        return "\n".join(lines) + "\n"
    lines += _totals_md(report)
    lines += plots_markdown(report.get("plots"), note=report.get("plots_note"))
    lines += _alerts_and_actions_md(report)
    lines += _distribution_and_issues_md(report)
    lines += _segments_md(report)
    if report.get("judge") or report.get("insights"):
        lines += render_judge_sections(report)
    lines += _worst_md(report)
    return "\n".join(lines) + "\n"
