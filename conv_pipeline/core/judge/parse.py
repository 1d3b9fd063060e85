"""Parsing a judge's answer, robustly: JSON first, then tags, then the first digit 1-5.

``parse_judgment`` returns a validated :class:`Judgment` or ``None`` (unparseable); it never
invents a score.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field, ValidationError, field_validator

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
_OBJECT = re.compile(r"\{.*\}", re.S)
_TAGS = (
    # Azure AI Evaluation's prompty form: <S0>thoughts</S0><S1>explanation</S1><S2>score</S2>
    (
        re.compile(r"<S2>\s*(.*?)\s*</S2>", re.S | re.I),
        re.compile(r"<S1>\s*(.*?)\s*</S1>", re.S | re.I),
    ),
    (
        re.compile(r"<score>\s*(.*?)\s*</score>", re.S | re.I),
        re.compile(r"<(?:reason|explanation)>\s*(.*?)\s*</(?:reason|explanation)>", re.S | re.I),
    ),
)
_DIGIT = re.compile(r"(?<![\d.])([1-5])(?![\d.])")
SCORE_KEYS = ("score", "rating", "value")
REASON_KEYS = ("reason", "explanation", "rationale", "justification")
MAX_REASON = 1_000


class Judgment(BaseModel):
    score: int = Field(ge=1, le=5)
    reason: str = ""
    method: str = "json"  # json | tags | digit

    @field_validator("reason")
    @classmethod
    def _short(cls, value: str) -> str:
        value = " ".join(value.split())
        return value if len(value) <= MAX_REASON else value[: MAX_REASON - 1] + "…"


def _score(value) -> int | None:
    """An integer 1-5 from a JSON value ("4", 4, 4.0; 4.4 rounds to 4); otherwise None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*", value)
        if not m:
            return None
        value = float(m.group(1))
    if isinstance(value, int | float):
        rounded = int(round(float(value)))
        return rounded if 1 <= rounded <= 5 and abs(value - rounded) <= 0.5 else None
    return None


_INVALID = object()  # a JSON answer whose score is out of range: unparseable, no fallback


def _from_json(text: str, evaluator: str):
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    m = _OBJECT.search(text)
    if m:
        candidates.append(m.group(0))
    for raw in candidates:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = [k for k in (*SCORE_KEYS, evaluator, f"{evaluator}_score") if k in obj]
        if not keys:
            continue
        score = _score(obj[keys[0]])
        if score is None:
            return _INVALID
        reason = next((obj[k] for k in (*REASON_KEYS, f"{evaluator}_reason") if k in obj), "")
        try:
            return Judgment(score=score, reason=str(reason), method="json")
        except ValidationError:
            continue
    return None


def _from_tags(text: str):
    for score_re, reason_re in _TAGS:
        m = score_re.search(text)
        if not m:
            continue
        score = _score(m.group(1))
        if score is None:
            return _INVALID
        r = reason_re.search(text)
        return Judgment(score=score, reason=r.group(1) if r else "", method="tags")
    return None


def _from_digit(text: str) -> Judgment | None:
    m = _DIGIT.search(text)
    if not m:
        return None
    return Judgment(score=int(m.group(1)), reason=text.strip(), method="digit")


def parse_judgment(text: str | None, evaluator: str = "") -> Judgment | None:
    if not text or not text.strip():
        return None
    for step in (lambda: _from_json(text, evaluator), lambda: _from_tags(text)):
        found = step()
        if found is _INVALID:  # a score was given, out of the scale: no guessing from digits
            return None
        if found is not None:
            return found
    return _from_digit(text)
