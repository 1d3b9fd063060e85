"""The generator: traffic over the hours, conversations, and one stored completion per slot.

:func:`iter_sample_records` yields export-format dicts; the writers (:mod:`.export`) take the same
records from :func:`iter_recs` as :class:`.record.Rec` and write their JSON lines. The volume of
each hour is drawn from ``random.Random(seed)``, the content from one random stream per part (see
:func:`iter_recs`), in one fixed order; every time is counted from the sample's end hour, so the
same seed, size and span give the same content for any end hour — only the dates move.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from conv_pipeline_demo.sample import profile as P
from conv_pipeline_demo.sample.compose import Composer, composer, cut
from conv_pipeline_demo.sample.record import Message, Rec, Tools, js, meta_parts, tokens
from conv_pipeline_demo.sample.texts import texts, tool_definition
from conv_pipeline_demo.sample.timeline import (
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    check_args,
    hour_counts,
    incident_hours,
    resolve_end,
)


def iter_sample_records(
    *,
    n: int = DEFAULT_N,
    hours: int = DEFAULT_HOURS,
    end: datetime | str | None = None,
    seed: int = DEFAULT_SEED,
    incidents: bool = True,
) -> Iterator[dict]:
    """Yield ``n`` stored completions (export-format dicts) in ``created`` order, spanning
    ``hours`` hours up to the end of the hour ``end`` (default: the current UTC hour).

    Streaming: memory stays flat whatever ``n`` is (only open conversations are kept). Records
    may share read-only nested objects (``tools``, ``tool_calls``): copy one before mutating it.
    Deterministic: the same ``n``, ``hours``, ``seed`` (and ``incidents``) give the same records
    for any ``end``, with ``created`` and the ``timestamp`` metadata moved.
    """
    return (
        rec.as_dict()
        for rec in iter_recs(n=n, hours=hours, end=end, seed=seed, incidents=incidents)
    )


def iter_recs(
    *,
    n: int = DEFAULT_N,
    hours: int = DEFAULT_HOURS,
    end: datetime | str | None = None,
    seed: int = DEFAULT_SEED,
    incidents: bool = True,
    part: tuple[int, int] = (0, 1),
) -> Iterator[Rec]:
    """The records as :class:`.record.Rec` (what the writers serialize).

    ``part=(i, k)`` yields only the ``i``-th of ``k`` consecutive stretches of hours (hours
    ``[hours*i//k, hours*(i+1)//k)``), generated on their own, so a bulk writer can write its
    files in parallel with the same result. How many completions each hour gets is decided for
    the whole span first (from ``seed`` alone), so the parts add up to exactly ``n``; the content
    of part ``i`` comes from its own random stream, and a conversation still open at the end of a
    part ends there (as one still open at the sample's end does).
    """
    check_args(n, hours)
    i, k = part
    if not 0 <= i < k:
        raise ValueError(f"part must be (i, k) with 0 <= i < k, got {part}")
    last = resolve_end(end)
    counts = hour_counts(random.Random(seed), n, hours)
    gen = _Generator(hours=hours, last_hour=last, seed=seed, part=i, incidents=incidents)
    return gen.records(counts, hours * i // k, hours * (i + 1) // k)


def _cum(shares: dict) -> tuple[tuple, tuple[float, ...]]:
    total = sum(shares.values())
    return tuple(shares), tuple(itertools.accumulate(v / total for v in shares.values()))


def _pick(rng: random.Random, table: tuple[tuple, tuple[float, ...]]):
    keys, cum = table
    return keys[min(bisect_right(cum, rng.random()), len(keys) - 1)]


def _one(rng: random.Random, seq):
    return seq[int(rng.random() * len(seq))]


def _category_tables() -> dict[str, tuple]:
    """Category mix per user type: the base shares tilted, ``data_analysis`` kept at its share."""
    out = {}
    fixed = P.CATEGORIES[P.FIXED_CATEGORY]
    for user_type, tilt in P.CATEGORY_TILT.items():
        raw = {c: s * tilt.get(c, 1.0) for c, s in P.CATEGORIES.items() if c != P.FIXED_CATEGORY}
        scale = (1.0 - fixed) / sum(raw.values())
        shares = {c: s * scale for c, s in raw.items()}
        shares[P.FIXED_CATEGORY] = fixed
        out[user_type] = _cum(shares)
    return out


class _Conv:
    """An open conversation: who, what, and the messages so far (without the system prompt)."""

    __slots__ = (
        "meta", "meta_json", "user_type", "category", "lang", "model", "variant", "v8", "fill",
        "tools", "max_tokens", "history", "turn", "turns_left", "due", "tool_pending", "last_cut",
        "prev_prompt_tokens",
    )  # fmt: skip


class _Generator:
    def __init__(
        self, *, hours: int, last_hour: datetime, seed: int, part: int, incidents: bool
    ) -> None:
        self.rng = random.Random(f"sample-{seed}-{part}")  # a str seed is stable across runs
        self.hours = hours
        self.start_s = int((last_hour - timedelta(hours=hours - 1)).timestamp())
        self.comp: Composer = composer()
        windows = incident_hours(hours) if incidents else [(-1, -1)] * 3
        self.windows = [
            (self.start_s + lo * 3600, self.start_s + hi * 3600) if lo >= 0 else (0, 0)
            for lo, hi in windows
        ]
        self.user_types = _cum(P.USER_TYPES)
        self.categories = _category_tables()
        self.models = {u: _cum(m) for u, m in P.MODEL_MIX.items()}
        self.languages = _cum(P.LANGUAGES)
        self.variants = _cum(P.VARIANTS)
        self.turns = _cum(P.TURNS)
        self.sources = _cum(P.PIPELINE_SOURCES)
        common = texts().common
        defs = [tool_definition(**t) for t in common["tools"]]
        self.tools = {
            "plus": Tools(defs[:2]),
            "team": Tools(defs),
            "enterprise": Tools(defs),
        }
        self.systems: dict[tuple[str, str], Message] = {}
        self.seen = _Seen()
        self._iso_hour = -1
        self._iso_prefix = ""
        tenant_rng = random.Random(f"sample-tenants-{seed}")
        self.tenants = {
            u: [f"t-{tenant_rng.getrandbits(24):06x}" for _ in range(30)]
            for u in ("team", "enterprise")
        }

    # ---- traffic ---------------------------------------------------------------------------

    def records(self, counts: list[int], lo: int, hi: int) -> Iterator[Rec]:
        """The completions of hours ``[lo, hi)``, ``counts[h]`` in hour ``h``, in time order: each
        slot goes to the open conversation whose next turn is due, or starts a new one."""
        rnd = self.rng.random
        heap: list[tuple[int, int, _Conv]] = []
        seq = itertools.count()
        for h in range(lo, hi):
            t0 = self.start_s + h * 3600
            for s in sorted([int(rnd() * 3600) for _ in range(counts[h])]):
                t = t0 + s
                due = heap and heap[0][0] <= t
                conv = heapq.heappop(heap)[2] if due else self._new_conversation(t)
                rec = self._completion(conv, t)
                if conv.turns_left > 0:
                    heapq.heappush(heap, (conv.due, next(seq), conv))
                yield rec

    def _iso(self, t: int) -> str:
        """``datetime.fromtimestamp(t, UTC).isoformat()``, cheaply (slots come in time order)."""
        if t // 3600 != self._iso_hour:
            self._iso_hour = t // 3600
            self._iso_prefix = datetime.fromtimestamp(self._iso_hour * 3600, UTC).strftime(
                "%Y-%m-%dT%H:"
            )
        r = t % 3600
        return f"{self._iso_prefix}{r // 60:02d}:{r % 60:02d}+00:00"

    def _in(self, which: int, t: int) -> bool:
        lo, hi = self.windows[which]
        return lo <= t < hi

    # ---- conversations -----------------------------------------------------------------------

    def _new_conversation(self, t: int) -> _Conv:
        rng = self.rng
        c = _Conv()
        c.user_type = _pick(rng, self.user_types)
        c.category = _pick(rng, self.categories[c.user_type])
        c.lang = "en" if c.category == "translation" else _pick(rng, self.languages)
        c.model = _pick(rng, self.models[c.user_type])
        c.variant = _pick(rng, self.variants)
        c.v8 = c.variant == "v7" and self._in(2, t) and rng.random() < P.V8_SHARE / P.VARIANTS["v7"]
        c.fill = self.comp.fill(rng, c.category)
        if c.lang != "en":
            c.fill["topic"] = _one(rng, self.comp.langs[c.lang].topics)
        c.tools = self.tools.get(c.user_type)
        c.max_tokens = P.MAX_TOKENS[c.user_type]
        c.history = []
        c.turn = 0
        c.turns_left = _pick(rng, self.turns)
        c.due = 0
        c.tool_pending = False
        c.last_cut = False
        c.prev_prompt_tokens = 0
        source = _pick(rng, self.sources)
        locale = _one(rng, P.EN_LOCALES if c.lang == "en" else self.comp.langs[c.lang].locales)
        u = f"{rng.getrandbits(128):032x}"
        meta = {
            "user_type": c.user_type,
            "category": c.category,
            "conversation_id": f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}",
            "pipeline_source": source,
            "prompt_variant": c.variant,
            "locale": locale,
            "app_version": _one(rng, P.APP_VERSIONS[source]),
            "region": _one(rng, P.REGIONS),
            "ab_bucket": str(int(rng.random() * 100)),
        }
        if c.user_type in self.tenants:
            meta["tenant_id"] = _one(rng, self.tenants[c.user_type])
        if c.category == "data_analysis":
            meta["attachments"] = str(int(rng.random() * 4))
        if rng.random() < 0.05:
            meta["referrer"] = f"https://intranet.example.com/wiki/page-{int(rng.random() * 9000)}"
        if rng.random() < 0.01:
            meta["note"] = _one(rng, P.ODD_NOTES)
        c.meta = meta
        c.meta_json = meta_parts(meta)
        return c

    def _system(self, c: _Conv, variant: str) -> Message:
        key = (c.user_type, variant)
        msg = self.systems.get(key)
        if msg is None:
            s = texts().common["systems"]
            text = s["base"] + s[variant] + s.get(c.user_type, "")
            msg = self.systems[key] = Message("system", text)
        return msg

    # ---- one completion ------------------------------------------------------------------------

    def _completion(self, c: _Conv, t: int) -> Rec:
        rng = self.rng
        comp = self.comp
        c.turn += 1
        variant = "v8" if c.v8 and self._in(2, t) else ("v7" if c.v8 else c.variant)
        kind = "answer"
        user: Message | None = None
        tool_calls = None
        if c.tool_pending:
            c.tool_pending = False  # the tool's result is already the last input message
        elif c.turn == 1:
            r = rng.random()
            if r < P.REFUSAL_RATE:
                kind = "refusal"
            elif r < P.REFUSAL_RATE + P.FILTER_RATE:
                kind = "content_filter"
            user = Message("user", self._first_prompt(c, kind))
            if kind == "answer":
                tool = P.TOOL_CATEGORIES.get(c.category)
                if (
                    c.tools is not None
                    and tool is not None
                    and (tool != "search_documents" or c.user_type != "plus")
                    and rng.random() < P.TOOL_RATE
                ):
                    kind = "tool_call"
                    tool_calls = self._tool_call(c, tool)
        else:
            user = Message("user", comp.followup(rng, c.fill, c.lang, c.last_cut))
        history = c.history + [user] if user is not None else c.history

        if kind == "answer":
            kind = self._incident_kind(c, t, kind)
        content, refusal, finish, completion = self._answer(c, kind, variant, tool_calls)
        reasoning = 0
        if c.model in P.REASONING_MODELS and kind not in ("refusal", "content_filter", "empty"):
            # Reasoning tokens count in completion_tokens, within the cap.
            reasoning = 64 * (1 + int(rng.random() * 24))
            if finish == "length":
                reasoning = min(reasoning, completion // 2)
            else:
                cap = P.V8_MAX_TOKENS if variant == "v8" else c.max_tokens
                reasoning = min(reasoning, max(0, cap - completion))
                completion += reasoning

        inputs = [self._system(c, variant), *history]
        cid = f"chatcmpl-{rng.getrandbits(116):029x}"
        prompt_tokens = 3 + (c.tools.tokens if c.tools else 0) + sum(m.tokens for m in inputs)
        cached = 0
        if c.turn > 1 and prompt_tokens >= 1024:
            cached = min(prompt_tokens, c.prev_prompt_tokens) // 128 * 128
        c.prev_prompt_tokens = prompt_tokens
        self._advance(c, t, kind, history, content, tool_calls, finish)
        rid = f"{rng.getrandbits(128):032x}"
        last = c.history[-1] if c.history else None
        reuse = last is not None and last.role == "assistant" and last.content is content
        return Rec(
            cid,
            t,
            c.model,
            content,
            last.value if reuse else js(content),
            refusal,
            tool_calls,
            finish,
            prompt_tokens,
            completion,
            cached,
            reasoning,
            c.meta,
            c.meta_json,
            variant,
            self._iso(t),
            str(c.turn),
            _FINGERPRINTS[c.model][(t - self.start_s) // 86400 % 2],
            f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}",
            c.tools,
            inputs,
        )

    def _first_prompt(self, c: _Conv, kind: str) -> str:
        """A conversation's first prompt, never one this generator has written before: a prompt
        already seen (as far as :class:`_Seen` can tell) is drawn again."""
        comp = self.comp
        for _ in range(8):
            if kind == "refusal":
                text = comp.special_prompt(self.rng, c.fill, "refusal_prompts")
            elif kind == "content_filter":
                text = comp.special_prompt(self.rng, c.fill, "filtered_prompts")
            else:
                text = comp.prompt(self.rng, c.fill, c.lang)
            if self.seen.add(text):
                break
        return text

    def _incident_kind(self, c: _Conv, t: int, kind: str) -> str:
        """What the planted incidents make of an answer at ``t`` (``kind`` when none applies)."""
        rng = self.rng
        if self._in(1, t):
            r = rng.random()
            if r < P.OUTAGE_EMPTY:
                return "empty"
            if r < P.OUTAGE_EMPTY + P.OUTAGE_FILTER:
                return "content_filter"
        if c.category == "data_analysis" and self._in(0, t):
            r = rng.random()
            if r < P.SEGMENT_CURT:
                return "curt"
            if r < P.SEGMENT_CURT + P.SEGMENT_REFUSING:
                return "refusing"
        if rng.random() < P.EMPTY_RATE:
            return "empty"
        return kind

    def _answer(
        self, c: _Conv, kind: str, variant: str, tool_calls: list[dict] | None
    ) -> tuple[str | None, str | None, str, int]:
        """Content, refusal, finish reason and completion tokens of an answer of ``kind``."""
        rng = self.rng
        comp = self.comp
        if kind == "tool_call":
            return None, None, "tool_calls", 12 + tokens(tool_calls[0]["function"]["arguments"])
        if kind == "refusal":
            text = _one(rng, texts().common["refusals"])
            return None, text, "stop", tokens(text)
        if kind == "content_filter":
            return (
                (None if rng.random() < 0.8 else ""),
                None,
                "content_filter",
                3 + int(rng.random() * 58),
            )
        if kind == "empty":
            return "", None, "stop", 1
        if kind in ("curt", "refusing"):
            text = _one(rng, texts().common["incident_analysis"][kind])
            return text, None, "stop", tokens(text)
        short_rate = P.SHORT_RATE[0 if c.turn == 1 else 1]
        if variant != "v8" and rng.random() < short_rate:
            text = comp.short_answer(rng, c.lang)
            return text, None, "stop", tokens(text)
        target = self._target(c, variant)
        if variant == "v8":
            max_tokens = P.V8_MAX_TOKENS
            cap = max_tokens * 4
            text = comp.variant_answer(rng, c.fill, target, cap)
            truncated = target > cap
        else:
            # The cap is max_tokens * 4 bytes of UTF-8 (the token estimate); a text in a denser
            # script is built to as many characters and then cut to the byte budget.
            max_tokens = c.max_tokens
            cap = max_tokens * 4
            truncated = target * P.BYTES_PER_CHAR.get(c.lang, 1.0) > cap
            text = comp.answer(rng, c.fill, c.lang, target, cap if truncated else None)
            if truncated and not text.isascii():
                head = text.encode("utf-8")[:cap].decode("utf-8", "ignore")
                text = cut(head, len(head))
        while tokens(text) > max_tokens:  # the estimate missed: cut (further)
            truncated = True
            cap = int(min(cap, len(text)) * 0.9)
            text = cut(text, cap)
        if truncated:
            return text, None, "length", max_tokens
        return text, None, "stop", tokens(text)

    def _target(self, c: _Conv, variant: str) -> int:
        """The length (characters) drawn for an answer: lognormal around the category's median,
        scaled by model, language, turn and prompt variant, with a rare much longer tail."""
        rng = self.rng
        median = P.MEDIAN_CHARS[c.category] * P.MODEL_LENGTH[c.model]
        median *= P.LANGUAGE_LENGTH.get(c.lang, 1.0)
        if c.turn > 1:
            median *= P.FOLLOWUP_LENGTH
        if variant == "v7-concise":
            median *= P.CONCISE_LENGTH
        elif variant == "v8":
            median *= P.V8_LENGTH
        x = rng.gauss(0.0, P.LENGTH_SIGMA)
        if rng.random() < P.TAIL_SHARE:
            x = abs(rng.gauss(0.0, P.TAIL_SIGMA)) + 1.0
        return max(20, int(median * math.exp(x)))

    def _tool_call(self, c: _Conv, tool: str) -> list[dict]:
        rng = self.rng
        if tool == "run_python":
            args = {"code": _one(rng, self.comp.snippets["python"])}
        elif tool == "web_search":
            args = {
                "query": c.fill["subject"] if c.category == "knowledge" else c.fill["situation"],
                "recency_days": "",
            }
        else:
            args = {
                "query": c.fill["topic_w"] if c.category == "writing" else c.fill["task"],
                "top_k": "5",
            }
        return [
            {
                "id": f"call_{rng.getrandbits(96):024x}",
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(args, ensure_ascii=False)},
            }
        ]

    def _tool_result(self, c: _Conv, call: dict) -> str:
        rng = self.rng
        if call["function"]["name"] == "run_python":
            rows = [
                f"{_one(rng, ('north', 'south', 'east', 'west'))}: {rng.random() * 1000:.2f}"
                for _ in range(3)
            ]
            return json.dumps({"stdout": "\n".join(rows), "exit_code": 0})
        titles = texts().common["tool_titles"]
        results = [
            {
                "title": _one(rng, titles).format_map(c.fill),
                "url": f"https://docs.example.com/{int(rng.random() * 90000)}",
                "snippet": _one(rng, self.comp.generic),
            }
            for _ in range(1 + int(rng.random() * 4))
        ]
        return json.dumps({"results": results}, ensure_ascii=False)

    def _advance(
        self, c: _Conv, t: int, kind: str, history: list[Message], content, tool_calls, finish
    ) -> None:
        """The conversation's state for its next completion."""
        rng = self.rng
        if tool_calls:
            history = [
                *history,
                Message("assistant", None, "tool_calls", tool_calls),
                Message(
                    "tool", self._tool_result(c, tool_calls[0]), "tool_call_id", tool_calls[0]["id"]
                ),
            ]
            c.tool_pending = True
            c.turns_left = max(c.turns_left - 1, 1)
            c.due = t + 1 + int(rng.random() * 6)
        elif kind in ("refusal", "content_filter", "empty"):
            c.turns_left = 0
        else:
            history = [*history, Message("assistant", content or "")]
            c.turns_left -= 1
            c.due = t + 30 + int(rng.random() * 1200)
        c.last_cut = finish == "length"
        c.history = history


class _Seen:
    """The prompts written so far, in a fixed 4 MiB bit set (two CRC-32 positions per prompt):
    a prompt written before is always recognized; a new one is taken for seen now and then (a
    false positive costs a redraw, nothing else). Memory stays flat at any volume."""

    BITS = 1 << 25

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS // 8)

    def add(self, text: str) -> bool:
        """Record ``text``; whether it was new."""
        data = text.encode("utf-8")
        new = False
        for pos in (zlib.crc32(data) % self.BITS, zlib.crc32(data, 0x9E3779B9) % self.BITS):
            byte, bit = divmod(pos, 8)
            if not self.bits[byte] >> bit & 1:
                self.bits[byte] |= 1 << bit
                new = True
        return new


_FINGERPRINTS = {
    P.MODELS[0]: ("fp_ded0d14823", "fp_b705f0c291"),
    P.MODELS[1]: ("fp_06737a9306", "fp_b8bc95a0ac"),
    P.MODELS[2]: ("fp_a1102cf978", "fp_51e1070cf2"),
    P.MODELS[3]: ("fp_3c9e1f5a4d", "fp_e7d2b0a861"),
}
