"""Judge evaluators: a rubric prompt file each, versioned in the repository.

A prompt file (``conv_pipeline/judge_prompts/<name>.md`` for the bundled ones) is a small header
between ``---`` lines (``name``, ``version``, ``inputs``, ``issue``, ``needs_context``,
``description``), then a ``[system]`` section and a ``[user]`` section. ``{{query}}``,
``{{response}}`` and ``{{context}}`` in the sections are replaced by the conversation's texts.

An evaluator's ``prompt_version`` is ``<version>+<sha256 of the file, 10 hex digits>``: editing a
prompt changes its version even when the header's ``version`` is not bumped, so the judgment cache
never serves a score given under another rubric.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.schema import BUNDLED_EVALUATORS

PROMPTS_DIR = Path(__file__).resolve().parent.parent.parent / "judge_prompts"
BUILTIN = BUNDLED_EVALUATORS  # a prompt file each in PROMPTS_DIR
BUILTIN_ISSUES = {
    "coherence": "incoherent",
    "fluency": "disfluent",
    "relevance": "irrelevant",
    "groundedness": "ungrounded",
}
INPUTS = ("query", "response", "context")
# Texts longer than this are cut (with a marker) before they reach the judge.
MAX_FIELD_CHARS = 12_000


class PromptFileError(ValueError):
    pass


@dataclass(frozen=True)
class Evaluator:
    name: str
    version: str
    prompt_version: str
    system: str
    user: str
    inputs: tuple[str, ...]
    threshold: int
    issue: str
    needs_context: bool
    description: str
    path: str

    def render(self, query: str, response: str, context: str) -> list[dict[str, str]]:
        values = {"query": query, "response": response, "context": context}

        def fill(text: str) -> str:
            for key in INPUTS:
                text = text.replace("{{" + key + "}}", _cut(values[key]))
            return text

        out = []
        if self.system.strip():
            out.append({"role": "system", "content": fill(self.system).strip()})
        out.append({"role": "user", "content": fill(self.user).strip()})
        return out


def _cut(text: str) -> str:
    if len(text) <= MAX_FIELD_CHARS:
        return text
    return text[:MAX_FIELD_CHARS] + f"\n[… {len(text) - MAX_FIELD_CHARS} characters cut]"


def parse_prompt_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise PromptFileError(f"judge prompt file {path} does not exist") from exc
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise PromptFileError(f"judge prompt file {path}: the first line must be '---'")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration as exc:
        raise PromptFileError(f"judge prompt file {path}: the header has no closing '---'") from exc
    header: dict[str, str] = {}
    for line in lines[1:end]:
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PromptFileError(
                f"judge prompt file {path}: header line {line!r} is not key: value"
            )
        header[key.strip()] = value.strip()
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines[end + 1 :]:
        tag = line.strip().lower()
        if tag in ("[system]", "[user]"):
            current = tag[1:-1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if "user" not in sections:
        raise PromptFileError(f"judge prompt file {path} has no [user] section")
    body = {k: "\n".join(v) for k, v in sections.items()}
    used = {k for k in INPUTS if "{{" + k + "}}" in body.get("system", "") + body["user"]}
    if "response" not in used:
        raise PromptFileError(f"judge prompt file {path} never uses {{{{response}}}}")
    return {
        "header": header,
        "system": body.get("system", ""),
        "user": body["user"],
        "used": used,
        "sha": hashlib.sha256(text.encode("utf-8")).hexdigest()[:10],
    }


def load_evaluators(settings: JudgeSettings, config_dir: Path) -> list[Evaluator]:
    """The enabled evaluators of the ``judge`` section, in config order."""
    out = []
    for name, ev in settings.evaluators.items():
        if not ev.enabled:
            continue
        if ev.prompt:
            path = Path(ev.prompt)
            path = path if path.is_absolute() else (config_dir / path)
        elif name in BUILTIN:
            path = PROMPTS_DIR / f"{name}.md"
        else:
            raise PromptFileError(
                f"judge evaluator {name!r} is not bundled ({', '.join(BUILTIN)}): give it a "
                '"prompt" file'
            )
        parsed = parse_prompt_file(path.resolve())
        header = parsed["header"]
        version = header.get("version", "1")
        needs_context = header.get("needs_context", "").lower() in ("true", "yes", "1") or (
            "context" in parsed["used"]
        )
        out.append(
            Evaluator(
                name=name,
                version=version,
                prompt_version=f"{version}+{parsed['sha']}",
                system=parsed["system"],
                user=parsed["user"],
                inputs=tuple(k for k in INPUTS if k in parsed["used"]),
                threshold=ev.threshold or settings.threshold,
                issue=ev.issue or header.get("issue") or BUILTIN_ISSUES.get(name, f"low_{name}"),
                needs_context=needs_context,
                description=header.get("description", ""),
                path=str(path),
            )
        )
    return out


def issue_of_evaluators(settings: JudgeSettings, config_dir: Path) -> dict[str, str]:
    """Evaluator -> the issue its failing judgment raises (``incoherent`` …)."""
    return {ev.name: ev.issue for ev in load_evaluators(settings, config_dir)}


# ---- the texts a judge sees ----------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def conversation_inputs(messages_json: str | None, response: str | None) -> dict[str, str]:
    """``query`` (the user turns; earlier turns marked), ``context`` (system messages, tool
    results, retrieved passages: a ``context`` field or ``documents`` on a message) and
    ``response`` of one stored completion."""
    try:
        messages = json.loads(messages_json) if messages_json else []
    except ValueError:
        messages = []
    if not isinstance(messages, list):
        messages = []
    users, context = [], []
    for m in messages:
        if not isinstance(m, dict):
            continue
        role, text = m.get("role"), _text(m.get("content")).strip()
        if role == "user" and text:
            users.append(text)
        elif role in ("system", "developer") and text:
            context.append(f"[{role}] {text}")
        elif role == "tool" and text:
            context.append(f"[tool result] {text}")
        for key in ("context", "documents"):
            extra = m.get(key)
            if isinstance(extra, str) and extra.strip():
                context.append(f"[retrieved] {extra.strip()}")
            elif isinstance(extra, list):
                for doc in extra:
                    body = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
                    context.append(f"[retrieved] {body}")
    if len(users) > 1:
        query = "\n".join(f"(earlier turn) {u}" for u in users[:-1]) + "\n" + users[-1]
    else:
        query = users[-1] if users else ""
    return {"query": query, "response": response or "", "context": "\n".join(context)}
