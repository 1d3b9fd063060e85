"""An independent checker of OpenAI's chat fine-tuning JSONL format (written from the documentation,
not from the product's validator), used by the tests on the files the pipeline writes.

Per line: a JSON object whose keys are among ``messages``, ``tools``, ``parallel_tool_calls``,
``functions``; ``messages`` a non-empty list; every message has a ``role`` among system, user,
assistant, tool, function and only that role's keys; ``content`` a string or a list of content
parts; ``weight`` (assistant only) 0 or 1; tool messages carry ``tool_call_id``; at least one
assistant message, and the last message is an assistant turn with something in it; tool calls
come with the ``tools`` they call (as in every function-calling example of the guide).
"""

from __future__ import annotations

import json
from pathlib import Path

ALLOWED = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "function_call", "weight", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},
}


def check_line(line: str) -> list[str]:
    errors = []
    try:
        ex = json.loads(line)
    except ValueError as exc:
        return [f"not json: {exc}"]
    if not isinstance(ex, dict):
        return ["not an object"]
    if set(ex) - {"messages", "tools", "parallel_tool_calls", "functions"}:
        errors.append("unexpected top-level key")
    msgs = ex.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [*errors, "no messages"]
    for m in msgs:
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ALLOWED:
            errors.append(f"role {role!r}")
            continue
        if set(m) - ALLOWED[role]:
            errors.append(f"unexpected keys {set(m) - ALLOWED[role]}")
        c = m.get("content")
        content_ok = isinstance(c, str) or (isinstance(c, list) and c)
        tool_call_only = role == "assistant" and c is None and m.get("tool_calls")
        if not content_ok and not tool_call_only:
            errors.append(f"{role} content {c!r}")
        if "weight" in m and (isinstance(m["weight"], bool) or m["weight"] not in (0, 1)):
            errors.append("weight")
        if role == "tool" and not isinstance(m.get("tool_call_id"), str):
            errors.append("tool_call_id")
    tool_use = any(
        isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool") for m in msgs
    )
    if tool_use and not ex.get("tools"):
        errors.append("tool calls without tool definitions")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
        errors.append("no assistant message")
    last = msgs[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        errors.append("last message not assistant")
    elif not (isinstance(last.get("content"), str) and last["content"].strip()) and not last.get(
        "tool_calls"
    ):
        errors.append("empty final assistant")
    return errors


def check_file(path: Path) -> list[tuple[int, list[str]]]:
    bad = []
    for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        errs = check_line(line)
        if errs:
            bad.append((i, errs))
    return bad
