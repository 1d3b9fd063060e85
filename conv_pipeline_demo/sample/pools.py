"""The answer pools of each scenario, built from its texts (:mod:`.texts`) on first use.

Answers are assembled from parts (opener + body + closer, or numbered steps) when the pools are
first used, and each pool is filtered by what it promises (length, indicator words), so a tweak to
a phrase can never silently move an answer into the wrong quality bucket.
"""

from __future__ import annotations

import itertools
import json
import random
import string
from dataclasses import dataclass
from functools import cache

from conv_pipeline_demo.sample.constants import _SCENARIO_ORDER
from conv_pipeline_demo.sample.texts import common_texts, scenario_texts

# The recipe rubric's indicator words (conv_pipeline.core.scoring.seed_reference), used to file answers.
_HELPFUL = ("step", "solution", "help", "recommend", "suggest", "guide")
_COURTESY = ("please", "thank you", "happy to", "glad to help")
_NEGATIVE = ("sorry, i cannot", "i don't know", "unable to help")


_FORMATTER = string.Formatter()


def _has(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    return any(w in low for w in words)


@dataclass(frozen=True)
class _Unit:
    """One topic with its slots filled: prompts that ask it and answers that fit, by quality."""

    prompts: tuple[str, ...]
    good: tuple[str, ...]
    plain: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()
    short: tuple[str, ...] = ()
    unicode: tuple[str, ...] = ()
    broad: bool = False  # a broad question that a long step-by-step answer fits


@dataclass(frozen=True)
class _Pools:
    user_type: str
    category: str
    system: dict[str, str]
    units: tuple[_Unit, ...]
    broad_units: tuple[_Unit, ...]
    unicode_units: tuple[_Unit, ...]
    follow_units: tuple[_Unit, ...]
    detailed: tuple[str, ...]
    too_long: tuple[str, ...]
    cut: tuple[str, ...]
    good_any: tuple[str, ...]
    short_any: tuple[str, ...]
    unsure_any: tuple[str, ...]
    plain_any: tuple[str, ...]
    unicode_pairs: tuple[tuple[str, str], ...]
    refusal_prompts: tuple[str, ...]
    filtered_prompts: tuple[str, ...]
    tools: list[dict] | None
    tool_tokens: int
    flows: tuple[dict, ...]


def _slots(text: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(text) if name}


def _good(bodies, closers, openers=None) -> tuple[str, ...]:
    """Opener + body + closer combinations that score as good: 50–500 chars, helpful, courteous."""
    openers = common_texts().openers if openers is None else openers
    out = [f"{o} {b} {c}".strip() for b in bodies for o in openers for c in closers]
    return tuple(
        a for a in dict.fromkeys(out)
        if 50 <= len(a) <= 500 and _has(a, _HELPFUL) and _has(a, _COURTESY) and not _has(a, _NEGATIVE)
    )  # fmt: skip


def _plain(texts) -> tuple[str, ...]:
    bad = _HELPFUL + _COURTESY + _NEGATIVE
    return tuple(a for a in texts if 50 <= len(a) <= 500 and not _has(a, bad))


def _units(topics, fill: dict, closers, rng: random.Random, per_topic: int = 3) -> list[_Unit]:
    """Each topic with up to ``per_topic`` consistent fillings of its ``{slots}``."""
    units = []
    for topic in topics:
        texts = [
            t
            for key in ("ask", "good", "plain", "unsure", "short", "uni")
            for t in topic.get(key, ())
        ]
        slots = sorted(set().union(*map(_slots, texts)))
        combos = list(itertools.product(*(fill[s] for s in slots)))
        for combo in rng.sample(combos, min(per_topic, len(combos))):
            values = dict(zip(slots, combo, strict=True))

            def fmt(key, values=values, topic=topic):
                return tuple(t.format(**values) for t in topic.get(key, ()))

            units.append(
                _Unit(
                    prompts=fmt("ask"),
                    good=_good(fmt("good"), closers),
                    plain=_plain(fmt("plain")),
                    unsure=tuple(a for a in fmt("unsure") if _has(a, _NEGATIVE)),
                    short=tuple(a for a in fmt("short") if 0 < len(a) < 50),
                    unicode=tuple(a for a in fmt("uni") if not a.isascii()),
                    broad=topic.get("broad", False),
                )
            )
    return units


def _cut_mid_sentence(text: str, rng: random.Random) -> str:
    """``text`` stopped where ``max_tokens`` would stop it: about 1000 characters, mid-sentence."""
    end = min(len(text) - 20, rng.randint(880, 1010))
    idx = text.rfind(" ", 0, end)
    while idx > 0 and text[idx - 1] in ".!?:\n":
        idx = text.rfind(" ", 0, idx - 1)
    return text[:idx]


def _numbered(steps) -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start=1))


def _guides(d: dict, closers, rng: random.Random) -> tuple[list[str], list[str]]:
    """Long step-by-step answers: ``detailed`` ones (500–1000 characters) and ``too_long`` ones
    (all the steps plus notes, over 1000), each without duplicates."""
    openers = common_texts().openers
    endings = [c for c in closers if c]
    detailed, too_long = [], []
    steps, notes = d["steps"], d["notes"]
    for _ in range(120):
        intro = f"{rng.choice(openers)} {rng.choice(d['intros'])}".strip()
        k = rng.randint(3, min(6, len(steps)))
        picked = [steps[i] for i in sorted(rng.sample(range(len(steps)), k))]
        text = f"{intro}\n\n{_numbered(picked)}\n\n{rng.choice(endings)}"
        if 500 < len(text) <= 1000:
            detailed.append(text)
        extra = " ".join(rng.sample(notes, k=min(len(notes), rng.randint(2, 4))))
        text = f"{intro}\n\n{_numbered(steps)}\n\n{extra}\n\n{rng.choice(endings)}"
        if len(text) > 1000:
            too_long.append(text)
    return list(dict.fromkeys(detailed)), list(dict.fromkeys(too_long))


def _check(pools: _Pools, follow: list[_Unit]) -> None:
    """Fail loudly when a text change leaves a pool the generator draws from (nearly) empty."""
    user_type = pools.user_type
    for name in ("units", "broad_units", "unicode_units", "follow_units", "detailed", "too_long"):
        if len(getattr(pools, name)) < 2:
            raise AssertionError(f"sample pool {user_type}.{name} is too small")
    for name in ("short_any", "unsure_any", "plain_any", "refusal_prompts", "filtered_prompts"):
        if not getattr(pools, name):
            raise AssertionError(f"sample pool {user_type}.{name} is empty")
    for unit in (*pools.units, *follow):
        if not unit.prompts or not unit.good:
            raise AssertionError(
                f"sample topic without a good answer in {user_type}: {unit.prompts}"
            )


def _build(user_type: str, d: dict) -> _Pools:
    rng = random.Random(f"sample-pools-{user_type}")  # a str seed is stable across processes
    closers = (*common_texts().closers, *d.get("closers", ()))
    units = _units(d["topics"], d["fill"], closers, rng)
    # Follow-up answers open with their own reply ("Exactly.", "Of course!"): no extra opener.
    follow = [
        _Unit(prompts=(q,), good=_good((g,), closers, openers=("",)), plain=_plain((p,)))
        for q, g, p in d["followups"]
    ]
    detailed, too_long = _guides(d, closers, rng)
    pools = _Pools(
        user_type=user_type,
        category=d["category"],
        system=d["system"],
        units=tuple(units),
        broad_units=tuple(u for u in units if u.broad),
        unicode_units=tuple(u for u in units if u.unicode),
        follow_units=tuple(follow),
        detailed=tuple(detailed),
        too_long=tuple(too_long),
        cut=tuple(_cut_mid_sentence(t, rng) for t in too_long),
        good_any=tuple(a for u in follow for a in u.good),
        short_any=tuple(a for a in (*d["short_any"], *common_texts().short) if 0 < len(a) < 50),
        unsure_any=tuple(a for a in d["unsure_any"] if _has(a, _NEGATIVE)),
        plain_any=_plain(d["plain_any"]),
        unicode_pairs=tuple((p, a) for p, a in d["unicode_pairs"]),
        refusal_prompts=tuple(d["refusal_prompts"]),
        filtered_prompts=tuple(d["filtered_prompts"]),
        tools=d.get("tools"),
        tool_tokens=len(json.dumps(d["tools"])) // 4 if d.get("tools") else 0,
        flows=tuple(d.get("flows", ())),
    )
    _check(pools, follow)
    return pools


@cache
def _pools() -> dict[str, _Pools]:
    return {name: _build(name, scenario_texts(name)) for name in _SCENARIO_ORDER}
