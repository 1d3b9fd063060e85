"""Improvement datasets: the fine-tuning / distillation set and the regression eval set.

Fine-tuning set (OpenAI / Azure OpenAI chat fine-tuning JSONL, one example per line)::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 0},   # earlier turns
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "the scored answer"}]}

* candidates: ``quality_score >= min_quality``; the judge score ``>= min_judge_score`` when the
  judge column exists (a conversation the judge did not score passes, unless
  ``require_judge_score``); no row at all in ``conversation_issues``; no redaction marker
  (``[REDACTED:``) anywhere in the input or the answer; a non-empty answer;
* converted from the stored messages (ids dropped, ``developer`` becomes ``system``, content parts
  become text parts; image parts are rejected: Azure OpenAI fine-tunes text only); earlier
  assistant turns get ``"weight": 0`` so only the scored answer is trained;
* de-duplicated on the normalized (case-folded, whitespace-collapsed) prompt + answer, keeping the
  highest score (then the smallest completion id);
* validated by :func:`validate_example` and screened for PII by :data:`PII_PATTERNS`; a failing
  example is not published: it goes to ``rejected.jsonl`` with its reason;
* split by ``md5(completion_id)``: bucket ``< validation_fraction`` goes to validation, so an
  example keeps its side whatever else is in the window.

Regression eval set: the failing conversations (an issue of a configured severity, or a judge
score below ``judge_fail_below`` when the judge column exists), de-duplicated by normalized input
messages (keeping the worst answer), one flat JSON object per line with ``query``, ``response``,
``context`` (the Azure AI evaluation SDK's column names), the input ``messages`` in chat format,
the ``issues``, the scores and the ``completion_id``. ``openai_evals.jsonl`` holds the same rows
as ``{"item": {...}}`` for an OpenAI Evals ``jsonl`` file source.

Token counts are an approximation (``tiktoken`` downloads its BPE files at run time, which an
offline pipeline cannot do): per message 4 tokens of framing plus the content, counted as one token
per 4 ASCII characters (rounded up) plus one token per non-ASCII character, plus 3 tokens priming
the reply. For English that is the usual ~4 characters per token; for CJK and other non-Latin text
it over-counts, which errs on the side of rejecting an example that might fit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import duckdb
import polars as pl

from conv_pipeline.core.config import FinetuneSettings, RegressionEvalSettings

REDACTION_PREFIX = "[REDACTED:"

# A light, last-line PII screen on every published line (the raw layer's redaction runs first).
# Rust-regex syntax (Polars); each is deliberately broad: a false positive costs one example.
PII_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    "card_number": r"\b(?:\d[ \-]?){12,18}\d\b",
    "phone": r"(?:\+\d{1,3}[ .\-]?)?\(?\b\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}\b|\+\d[\d .\-()]{8,}\d",
    "ipv4": r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
    "api_key": (
        r"\bsk-[A-Za-z0-9_\-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}"
        r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\."
        r"|(?i:bearer)\s+[A-Za-z0-9._\-]{20,}"
    ),
}

ROLES = {"system", "user", "assistant", "tool", "function"}
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "function_call", "weight", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},
}
EXAMPLE_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}

# What the assets need from raw_completions.
RAW_COLUMNS = [
    "completion_id",
    "messages",
    "response",
    "tool_calls",
    "system_prompt",
    "last_user_message",
]


# ---- tokens ------------------------------------------------------------------------------------


def estimate_text_tokens(text: str) -> int:
    ascii_chars = len(text.encode("ascii", "ignore"))  # C speed; counts code points < 128
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def estimate_tokens(example: dict) -> int:
    """Approximate prompt + completion tokens of one example (see the module docstring)."""
    total = 3
    for m in example.get("messages", []):
        total += 4
        content = m.get("content")
        if isinstance(content, str):
            total += estimate_text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += estimate_text_tokens(part["text"])
        if m.get("name"):
            total += 1 + estimate_text_tokens(str(m["name"]))
        if m.get("tool_calls"):
            total += estimate_text_tokens(json.dumps(m["tool_calls"], ensure_ascii=False))
    if example.get("tools"):
        total += estimate_text_tokens(json.dumps(example["tools"], ensure_ascii=False))
    return total


# ---- the format checker ------------------------------------------------------------------------


def _text_of(content) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return None


def _content_ok(role: str, content) -> bool:
    if isinstance(content, str):
        return True
    if isinstance(content, list) and content:
        allowed = {"text", "image_url"} if role == "user" else {"text"}
        for p in content:
            if not isinstance(p, dict) or p.get("type") not in allowed:
                return False
            if p["type"] == "text" and not isinstance(p.get("text"), str):
                return False
            if p["type"] == "image_url" and not isinstance(p.get("image_url"), dict):
                return False
        return True
    return False


def _tool_calls_ok(calls) -> bool:
    if not isinstance(calls, list) or not calls:
        return False
    for c in calls:
        fn = c.get("function") if isinstance(c, dict) else None
        if not (
            isinstance(c.get("id"), str)
            and c.get("type") == "function"
            and isinstance(fn, dict)
            and isinstance(fn.get("name"), str)
            and isinstance(fn.get("arguments"), str)
        ):
            return False
    return True


def validate_example(example, max_tokens: int, tokens: int | None = None) -> list[str]:
    """Reasons an example breaks OpenAI's chat fine-tuning format (empty list: valid).

    Checks: the object and its keys; each message's role, keys and content shape (string or
    text parts; image parts in user messages only); ``weight`` 0 or 1 on assistant messages only;
    the role order (system messages only at the start, then a user message first; a ``tool``
    message only after an assistant message with ``tool_calls`` and answering one of its ids; an
    assistant's tool calls all answered before the next turn; no two assistant turns in a row
    without a tool result between them); tool calls and tool results only with a top-level
    ``tools`` list (``raw_completions`` does not keep the request's tool definitions, so such
    conversations are refused rather than published half-specified); the last message an
    assistant turn with non-empty content or tool calls and a non-zero weight; the estimated
    tokens under ``max_tokens``.
    """
    if not isinstance(example, dict):
        return ["not_an_object"]
    reasons: list[str] = []
    extra = set(example) - EXAMPLE_KEYS
    if extra:
        reasons.append(f"unknown_key: {sorted(extra)}")
    msgs = example.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [*reasons, "missing_messages"]
    seen_non_system = False
    pending: set[str] = set()
    prev_role = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            reasons.append(f"message_not_object at {i}")
            continue
        role = m.get("role")
        if role not in ROLES:
            reasons.append(f"unsupported_role {role!r} at {i}")
            continue
        bad = set(m) - MESSAGE_KEYS[role]
        if bad:
            reasons.append(f"unknown_message_key {sorted(bad)} at {i}")
        content = m.get("content")
        if role == "assistant":
            has_calls = "tool_calls" in m and m["tool_calls"] is not None
            if has_calls and not _tool_calls_ok(m["tool_calls"]):
                reasons.append(f"bad_tool_calls at {i}")
            if content is None and not has_calls and not m.get("function_call"):
                reasons.append(f"missing_content at {i}")
            elif content is not None and not _content_ok(role, content):
                reasons.append(f"bad_content at {i}")
            if "weight" in m and m["weight"] not in (0, 1):
                reasons.append(f"bad_weight at {i}")
            if isinstance(m.get("weight"), bool):
                reasons.append(f"bad_weight at {i}")
        elif not _content_ok(role, content):
            reasons.append(f"missing_content at {i}" if content is None else f"bad_content at {i}")
        # role order
        if role == "system":
            if seen_non_system:
                reasons.append(
                    f"bad_role_order: system message at {i} after the conversation began"
                )
        elif not seen_non_system and role != "user":
            reasons.append(f"bad_role_order: first non-system message at {i} is {role}")
            seen_non_system = True
        else:
            seen_non_system = True
        if role == "tool":
            if prev_role not in ("assistant", "tool") or not pending:
                reasons.append(f"bad_role_order: tool message at {i} answers no tool call")
            elif m.get("tool_call_id") not in pending:
                reasons.append(f"tool_call_id_mismatch at {i}")
            else:
                pending.discard(m["tool_call_id"])
        else:
            if pending and role in ("user", "assistant", "system"):
                reasons.append(f"bad_role_order: unanswered tool call before {i}")
                pending = set()
            if role == "assistant" and prev_role == "assistant":
                reasons.append(f"bad_role_order: two assistant messages in a row at {i}")
            if role == "assistant" and m.get("tool_calls") and _tool_calls_ok(m["tool_calls"]):
                pending = {c["id"] for c in m["tool_calls"]}
        prev_role = role
    last = msgs[-1] if isinstance(msgs[-1], dict) else {}
    if last.get("role") != "assistant":
        reasons.append("empty_assistant_final_turn: the last message is not an assistant turn")
    else:
        text = _text_of(last.get("content"))
        if not (text and text.strip()) and not last.get("tool_calls"):
            reasons.append("empty_assistant_final_turn")
        if last.get("weight") == 0:
            reasons.append("empty_assistant_final_turn: weight 0 on the final turn")
    uses_tools = any(
        isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool") for m in msgs
    )
    if uses_tools and not (isinstance(example.get("tools"), list) and example["tools"]):
        reasons.append("tool_calls_without_tools: the tool definitions are not known")
    tokens = estimate_tokens(example) if tokens is None else tokens
    if tokens > max_tokens:
        reasons.append(f"too_many_tokens: {tokens} > {max_tokens}")
    return reasons


# ---- conversion --------------------------------------------------------------------------------


class ConversionError(ValueError):
    pass


def _convert_content(content, parts):
    if isinstance(content, str):
        return content
    source = content if isinstance(content, list) else parts
    if isinstance(source, list) and source:
        out = []
        for p in source:
            kind = p.get("type") if isinstance(p, dict) else None
            if kind == "text" and isinstance(p.get("text"), str):
                out.append({"type": "text", "text": p["text"]})
            elif kind == "text":
                raise ConversionError("bad_content: a text part without a string")
            else:
                raise ConversionError(f"unsupported_content_part: {kind!r} (text fine-tuning only)")
        return out
    return None


def _convert_call(c) -> dict:
    fn = c.get("function") if isinstance(c, dict) else None
    if not isinstance(fn, dict):
        raise ConversionError("bad_tool_calls: a call without a function object")
    return {
        "id": c.get("id"),
        "type": c.get("type", "function"),
        "function": {"name": fn.get("name"), "arguments": fn.get("arguments")},
    }


def convert_message(m: dict) -> dict:
    """A stored input message (``GET /chat/completions/{id}/messages``) in fine-tuning shape."""
    if not isinstance(m, dict):
        raise ConversionError("message_not_object")
    role = "system" if m.get("role") == "developer" else m.get("role")
    if role not in ROLES:
        raise ConversionError(f"unsupported_role {m.get('role')!r}")
    out: dict = {"role": role}
    content = _convert_content(m.get("content"), m.get("content_parts"))
    if role == "assistant":
        out["content"] = content
        calls = m.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise ConversionError("bad_tool_calls: not a list")
            out["tool_calls"] = [_convert_call(c) for c in calls]
        out["weight"] = 0  # history: only the scored final answer is trained
    else:
        out["content"] = content if content is not None else ""
    if role == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
    if isinstance(m.get("name"), str) and m["name"] and role in ("system", "user", "assistant"):
        out["name"] = m["name"]
    return out


def input_messages(messages_json: str | None) -> list[dict]:
    if not messages_json:
        raise ConversionError("no_input_messages")
    try:
        raw = json.loads(messages_json)
    except ValueError as exc:
        raise ConversionError("input_messages_not_json") from exc
    if not isinstance(raw, list) or not raw:
        raise ConversionError("no_input_messages")
    return [convert_message(m) for m in raw]


def build_example(messages_json: str | None, response: str | None, tool_calls: str | None) -> dict:
    msgs = input_messages(messages_json)
    final: dict = {"role": "assistant", "content": response or ""}
    if not response and tool_calls:
        final = convert_message(
            {"role": "assistant", "content": None, "tool_calls": json.loads(tool_calls)}
        )
        final.pop("weight", None)
    msgs.append(final)
    return {"messages": msgs}


def normalize(text: str) -> str:
    return " ".join(text.casefold().split())


def _example_key(example: dict) -> str:
    parts = []
    for m in example["messages"]:
        parts.append(m["role"] + ":" + normalize(_text_of(m.get("content")) or ""))
        if m.get("tool_calls"):
            parts.append(json.dumps(m["tool_calls"], sort_keys=True))
    return "\x1e".join(parts)


# ---- vectorized screens ------------------------------------------------------------------------


def pii_kind(expr: pl.Expr) -> pl.Expr:
    """The first PII kind found in each string (null when clean)."""
    out = pl.lit(None, pl.String)
    for kind, pattern in reversed(PII_PATTERNS.items()):
        out = pl.when(expr.str.contains(pattern)).then(pl.lit(kind)).otherwise(out)
    return out


def screen_lines(frame: pl.DataFrame, column: str = "line") -> pl.DataFrame:
    """Adds ``pii`` (the kind found in the serialized line, or null)."""
    return frame.with_columns(pii_kind(pl.col(column)).alias("pii"))


def split_buckets(ids: pl.Series) -> pl.Series:
    """Stable 0..9999 bucket of each id: ``md5_number(id) % 10000`` (DuckDB)."""
    con = duckdb.connect()
    try:
        frame = pl.DataFrame({"completion_id": ids})
        con.register("ids", frame.to_arrow())
        out = con.sql("SELECT (md5_number(completion_id) % 10000)::INTEGER AS bucket FROM ids").pl()
    finally:
        con.close()
    return out["bucket"]


# ---- candidate selection -----------------------------------------------------------------------


def _judge_column(scored: pl.DataFrame, name: str) -> str | None:
    return name if name in scored.columns else None


def finetune_candidates(
    scored: pl.DataFrame, issues: pl.DataFrame, raw: pl.DataFrame, settings: FinetuneSettings
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The best conversations of the window, with their texts, and why the others were left out.

    Exclusion counts are by the first rule a conversation fails, in this order: ``has_issue``,
    ``below_min_quality``, ``below_min_judge_score`` (judge column present only),
    ``redaction_marker``, ``no_response_text``.
    """
    flagged = issues.select("completion_id").unique().with_columns(pl.lit(True).alias("_issue"))
    frame = (
        scored.join(flagged, on="completion_id", how="left")
        .join(raw.select(RAW_COLUMNS), on="completion_id", how="left")
        .with_columns(pl.col("_issue").fill_null(False))
    )
    judge = _judge_column(scored, settings.judge_score_column)
    rules: list[tuple[str, pl.Expr]] = [
        ("has_issue", pl.col("_issue")),
        ("below_min_quality", pl.col("quality_score").fill_null(-1e9) < settings.min_quality),
    ]
    if judge and settings.min_judge_score is not None:
        # a conversation the judge did not sample passes unless require_judge_score is set
        unjudged = pl.lit(settings.require_judge_score)
        rules.append(
            (
                "below_min_judge_score",
                (pl.col(judge) < settings.min_judge_score).fill_null(unjudged),
            )
        )
    rules += [
        (
            "redaction_marker",
            pl.col("messages").fill_null("").str.contains(REDACTION_PREFIX, literal=True)
            | pl.col("response").fill_null("").str.contains(REDACTION_PREFIX, literal=True),
        ),
        ("no_response_text", pl.col("response").fill_null("").str.strip_chars() == ""),
    ]
    reason = pl.lit(None, pl.String)
    for name, cond in reversed(rules):
        reason = pl.when(cond).then(pl.lit(name)).otherwise(reason)
    frame = frame.with_columns(reason.alias("_excluded"))
    counts = dict(
        frame.filter(pl.col("_excluded").is_not_null()).group_by("_excluded").len().rows()
    )
    excluded = {name: int(counts.get(name, 0)) for name, _ in rules}
    return frame.filter(pl.col("_excluded").is_null()).drop("_excluded", "_issue"), excluded


def build_finetune_dataset(candidates: pl.DataFrame, settings: FinetuneSettings) -> dict:
    """Convert, de-duplicate, validate, PII-screen and split the candidates.

    Returns ``train`` / ``validation`` frames (``completion_id``, ``line``, ``tokens``), the
    ``rejected`` frame (``completion_id``, ``stage``, ``reason``), ``duplicates`` (count) and
    ``over_max_examples``: the candidates left unconverted once ``max_examples`` distinct
    examples were kept (the best first: highest score, then smallest id).
    """
    rows, rejected = [], []
    seen: set[str] = set()
    duplicates = considered = 0
    cap = settings.max_examples
    ordered = candidates.sort(["quality_score", "completion_id"], descending=[True, False])
    for cid, q, msgs, resp, calls in ordered.select(
        "completion_id", "quality_score", "messages", "response", "tool_calls"
    ).iter_rows():
        if cap is not None and len(rows) >= cap:
            break
        considered += 1
        try:
            ex = build_example(msgs, resp, calls)
        except ConversionError as exc:
            rejected.append({"completion_id": cid, "stage": "convert", "reason": str(exc)})
            continue
        except (ValueError, TypeError) as exc:  # e.g. tool_calls that are not JSON
            reason = f"conversion_error: {type(exc).__name__}"
            rejected.append({"completion_id": cid, "stage": "convert", "reason": reason})
            continue
        tokens = estimate_tokens(ex)
        problems = validate_example(ex, settings.max_tokens_per_example, tokens)
        if problems:
            rejected.append(
                {"completion_id": cid, "stage": "validate", "reason": "; ".join(problems)}
            )
            continue
        # keep the first (best score, then smallest id) of each normalized prompt + answer
        key = _example_key(ex)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        rows.append(
            {
                "completion_id": cid,
                "quality_score": q,
                "key": key,
                "line": json.dumps(ex, ensure_ascii=False, separators=(",", ":")),
                "tokens": tokens,
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "completion_id": pl.String(),
            "quality_score": pl.Float64(),
            "key": pl.String(),
            "line": pl.String(),
            "tokens": pl.Int64(),
        },
    )
    screened = screen_lines(frame)
    for cid, kind in (
        screened.filter(pl.col("pii").is_not_null()).select("completion_id", "pii").iter_rows()
    ):
        rejected.append({"completion_id": cid, "stage": "pii_screen", "reason": f"pii:{kind}"})
    clean = screened.filter(pl.col("pii").is_null()).sort("completion_id")
    clean = clean.with_columns(split_buckets(clean["completion_id"]).alias("bucket"))
    cut = int(round(settings.validation_fraction * 10_000))
    cols = ["completion_id", "line", "tokens"]
    return {
        "train": clean.filter(pl.col("bucket") >= cut).select(cols),
        "validation": clean.filter(pl.col("bucket") < cut).select(cols),
        "rejected": pl.DataFrame(
            rejected,
            schema={"completion_id": pl.String(), "stage": pl.String(), "reason": pl.String()},
        ).sort("completion_id"),
        "duplicates": duplicates,
        "over_max_examples": ordered.height - considered,
    }


def rejection_counts(rejected: pl.DataFrame) -> dict[str, int]:
    """Rejections by reason code (the text before the first ':' of each reason)."""
    if rejected.height == 0:
        return {}
    codes = rejected.select(
        pl.col("reason")
        .str.split("; ")
        .explode()
        .str.extract(r"^([a-z_]+(?::[a-z_]+)?)", 1)
        .alias("code")
    )
    return dict(sorted(codes.group_by("code").len().rows()))


# ---- regression eval set -----------------------------------------------------------------------


def failing_conversations(
    scored: pl.DataFrame,
    issues: pl.DataFrame,
    severities: Iterable[str],
    judge_column: str | None = None,
    judge_fail_below: float | None = None,
) -> pl.DataFrame:
    """One row per failing conversation with its ``issues`` list (sorted) and ``issue_details``."""
    per = (
        issues.filter(pl.col("severity").is_in(list(severities)))
        .group_by("completion_id")
        .agg(
            pl.col("issue").unique().sort().alias("issues"),
            pl.col("detail").unique().sort().alias("issue_details"),
        )
    )
    frame = scored.join(per, on="completion_id", how="left")
    failing = pl.col("issues").is_not_null()
    if judge_column and judge_column in scored.columns and judge_fail_below is not None:
        low = pl.col(judge_column) < judge_fail_below
        failing = failing | low.fill_null(False)
        frame = frame.with_columns(
            pl.when(low.fill_null(False))
            .then(pl.concat_list(pl.col("issues").fill_null([]), pl.lit(["judge_below_threshold"])))
            .otherwise(pl.col("issues"))
            .alias("issues")
        )
    return frame.filter(failing).with_columns(
        pl.col("issues").fill_null([]), pl.col("issue_details").fill_null([])
    )


EVAL_EXTRA = ["created_at", "model", "prompt_variant", "user_type", "category", "finish_reason"]


def build_eval_dataset(
    failing: pl.DataFrame, raw: pl.DataFrame, settings: RegressionEvalSettings
) -> dict:
    """Rows (``completion_id``, ``line``) of the regression eval set, its rejections and counts."""
    judge = settings.judge_score_column if settings.judge_score_column in failing.columns else None
    frame = failing.join(raw.select(RAW_COLUMNS), on="completion_id", how="left").sort(
        ["quality_score", "completion_id"], nulls_last=True
    )
    rows, rejected = [], []
    total = frame.height
    cols = ["completion_id", "messages", "response", "system_prompt", "last_user_message"]
    extra = [c for c in EVAL_EXTRA if c in frame.columns]
    cols += ["issues", "issue_details", "quality_score", *extra]
    if judge:
        cols.append(judge)
    seen: set[str] = set()
    duplicates = considered = 0
    # Worst first; conversion stops once max_rows distinct prompts are kept (the rest: truncated).
    for r in frame.select(cols).iter_rows(named=True):
        if len(rows) >= settings.max_rows:
            break
        considered += 1
        try:
            msgs = input_messages(r["messages"])
        except (ConversionError, ValueError, TypeError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, ConversionError)
                else f"conversion_error: {type(exc).__name__}"
            )
            rejected.append(
                {"completion_id": r["completion_id"], "stage": "convert", "reason": reason}
            )
            continue
        for m in msgs:
            m.pop("weight", None)
        key = "\x1e".join(
            m["role"] + ":" + normalize(_text_of(m.get("content")) or "") for m in msgs
        )
        if key in seen:  # the same prompt: keep the first (the worst score)
            duplicates += 1
            continue
        seen.add(key)
        item = {
            "completion_id": r["completion_id"],
            "query": r["last_user_message"] or "",
            "context": r["system_prompt"] or "",
            "response": r["response"] or "",
            "messages": msgs,
            "issues": r["issues"],
            "issue_details": r["issue_details"],
            "quality_score": r["quality_score"],
            **({"judge_score": r[judge]} if judge else {}),
            **{k: (str(r[k]) if k == "created_at" and r[k] is not None else r[k]) for k in extra},
        }
        rows.append(
            {
                "completion_id": r["completion_id"],
                "key": key,
                "line": json.dumps(item, ensure_ascii=False, separators=(",", ":")),
            }
        )
    frame = pl.DataFrame(
        rows, schema={"completion_id": pl.String(), "key": pl.String(), "line": pl.String()}
    )
    screened = screen_lines(frame)
    for cid, kind in (
        screened.filter(pl.col("pii").is_not_null()).select("completion_id", "pii").iter_rows()
    ):
        rejected.append({"completion_id": cid, "stage": "pii_screen", "reason": f"pii:{kind}"})
    clean = screened.filter(pl.col("pii").is_null())
    truncated = total - considered
    return {
        "rows": clean.select("completion_id", "line"),
        "rejected": pl.DataFrame(
            rejected,
            schema={"completion_id": pl.String(), "stage": pl.String(), "reason": pl.String()},
        ).sort("completion_id"),
        "duplicates": duplicates,
        "truncated": truncated,
    }
