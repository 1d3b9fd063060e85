"""LLM-written insights for a report: the recipe's ``generate_insights`` node.

The model gets the report's own numbers and examples (totals, alerts, issues, segments, judge
figures, worst examples, the rule-based recommended actions) and answers one JSON object:
``{"summary": "...", "suggestions": [{"action", "priority", "reason", "evidence": [...]}]}``,
validated with pydantic. Grounding is checked, not hoped for: a suggestion whose ``action`` is not
one of the config's ``improvement_actions`` is dropped; ``evidence`` that names a completion id
not among the report's examples is dropped from it; numbers in the summary that appear nowhere in
the report's figures are listed in ``unverified_numbers``. The answer is cached by a hash of its
prompt and model (a re-run pays nothing). Without a model, or when the call fails, the report
keeps its rule-based text (and says why).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import openai
from pydantic import BaseModel, Field, ValidationError

from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.types import JudgeConnection

SYSTEM = (
    "You are an LLMOps analyst. You write the insight section of a monitoring report about a "
    "chat application's conversations. Use ONLY the figures and examples in the REPORT DATA; "
    "never invent numbers, segments or ids. Quote numbers exactly as they appear (rates may be "
    "given as percentages). Each suggestion must use one action from ALLOWED ACTIONS and cite its "
    "evidence: metric names (e.g. totals.error_rate, segments.user_type.free) or completion ids "
    "from worst_examples. Answer with ONE JSON object and nothing else:\n"
    '{"summary": "<3-6 sentences>", "suggestions": [{"action": "<allowed action>", '
    '"priority": "high|medium|low", "reason": "<one or two sentences>", "evidence": ["..."]}]}'
)


class Suggestion(BaseModel):
    action: str
    priority: str = "medium"
    reason: str
    evidence: list[str] = Field(default_factory=list)


class Insights(BaseModel):
    summary: str = Field(min_length=1, max_length=4000)
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=10)


def report_facts(report: dict, examples: int) -> dict[str, Any]:
    keep = ("totals", "alerts", "judge", "recommended_actions", "change_vs_previous")
    facts: dict[str, Any] = {k: report.get(k) for k in keep if report.get(k) is not None}
    facts["window"] = f"{report['window_start']} to {report['window_end']} ({report['kind']})"
    facts["issues"] = [i for i in report.get("issues", []) if i.get("count")]
    facts["segments"] = {
        seg: [
            {k: v for k, v in r.items() if k != "issues"} | {"issues": r.get("issues")}
            for r in rows[:8]
        ]
        for seg, rows in (report.get("segments") or {}).items()
    }
    facts["worst_examples"] = (report.get("worst_examples") or [])[:examples]
    return facts


def _numbers(obj: Any, out: set[float]) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        obj = abs(obj)
        out.add(round(float(obj), 2))
        out.add(round(float(obj) * 100, 1))  # a rate as a percentage
        out.add(round(float(obj), 1))
        out.add(float(round(obj)))
    elif isinstance(obj, dict):
        for v in obj.values():
            _numbers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers(v, out)
    elif isinstance(obj, str):  # ids, dates and texts: their digit runs count as known
        for m in re.finditer(r"\d+(?:\.\d+)?", obj):
            _numbers(float(m.group(0)), out)


_NUM = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


def unverified_numbers(text: str, facts: dict) -> list[str]:
    known: set[float] = set()
    _numbers(facts, known)
    out = []
    for m in _NUM.finditer(text):
        raw = m.group(0)
        try:
            v = abs(float(raw.replace(",", "")))
        except ValueError:
            continue
        if v not in known and round(v, 1) not in known and round(v, 2) not in known:
            out.append(raw)
    return out


def _parse(text: str) -> Insights | None:
    m = re.search(r"\{.*\}", text or "", re.S)
    if not m:
        return None
    try:
        return Insights.model_validate(json.loads(m.group(0)))
    except (ValueError, ValidationError):
        return None


def generate_insights(
    report: dict,
    connection: JudgeConnection,
    cache: JudgmentCache,
    *,
    allowed_actions: list[str],
    max_output_tokens: int,
    examples: int,
    max_retries: int = 6,
    timeout: float = 120.0,
) -> dict[str, Any]:
    facts = report_facts(report, examples)
    user = f"ALLOWED ACTIONS: {', '.join(allowed_actions)}\n\nREPORT DATA (JSON):\n" + json.dumps(
        facts, ensure_ascii=False, default=str, sort_keys=True
    )
    key = hashlib.sha256(f"{connection.model}\n{SYSTEM}\n{user}".encode()).hexdigest()
    cached = cache.get_text(key)
    base = {"source": "llm", "model": connection.model}
    if cached is not None:
        body, prompt_tokens, completion_tokens = cached
        cached_flag = True
    else:
        try:
            client = connection.client(asynchronous=False, max_retries=max_retries, timeout=timeout)
            resp = client.chat.completions.create(
                model=connection.model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                max_completion_tokens=max_output_tokens,
                temperature=0.0,
            )
        except (openai.APIError, ValueError) as exc:
            return {
                "source": "rules",
                "note": f"LLM insights unavailable ({type(exc).__name__}): the rule-based "
                "recommended actions stand",
            }
        body = (resp.choices[0].message.content if resp.choices else "") or ""
        prompt_tokens = int(resp.usage.prompt_tokens or 0) if resp.usage else 0
        completion_tokens = int(resp.usage.completion_tokens or 0) if resp.usage else 0
        cached_flag = False
        # paid for: kept even when it is not the JSON asked for (a re-run would answer the same)
        cache.put_text(key, connection.model, body, prompt_tokens, completion_tokens)
    parsed = _parse(body)
    if parsed is None:
        return {
            "source": "rules",
            "note": "the model's insights were not the JSON asked for: the rule-based "
            "recommended actions stand",
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached": cached_flag,
        }
    ids = {w["completion_id"] for w in facts.get("worst_examples", [])}
    kept, dropped = [], []
    for s in parsed.suggestions:
        if s.action not in allowed_actions:
            dropped.append({"action": s.action, "why": "not an allowed improvement action"})
            continue
        evidence = [e for e in s.evidence if not e.startswith("chatcmpl") or e in ids]
        kept.append(s.model_dump() | {"evidence": evidence})
    return base | {
        "summary": parsed.summary,
        "suggestions": kept,
        "dropped_suggestions": dropped,
        "unverified_numbers": unverified_numbers(parsed.summary, facts),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached": cached_flag,
    }


def render_insights(insights: dict) -> list[str]:
    if insights.get("source") != "llm":
        return ["", "## Insights", "", f"_{insights.get('note', 'rule-based')}_"]
    lines = ["", f"## Insights (written by {insights['model']})", "", insights["summary"], ""]
    for s in insights["suggestions"]:
        ev = f" — evidence: {', '.join(s['evidence'])}" if s["evidence"] else ""
        lines.append(f"- **{s['action']}** ({s['priority']}): {s['reason']}{ev}")
    if insights.get("unverified_numbers"):
        lines += [
            "",
            "_Numbers in this summary not found in the report's figures: "
            + ", ".join(insights["unverified_numbers"])
            + "_",
        ]
    return lines
