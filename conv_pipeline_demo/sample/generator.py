"""The generator: traffic over the hours, conversations, and one stored completion per slot."""

from __future__ import annotations

import heapq
import itertools
import json
import random
from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime

from conv_pipeline_demo.sample.constants import (
    _SCENARIO_ORDER,
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    DEGRADED_SEGMENT,
    MAX_TOKENS,
    MODELS,
    SAMPLE_START,
    _check_args,
    degraded_window,
)
from conv_pipeline_demo.sample.pools import _Pools, _pools, _Unit
from conv_pipeline_demo.sample.texts import common_texts


def iter_sample_records(
    *,
    n: int = DEFAULT_N,
    start: datetime = SAMPLE_START,
    hours: int = DEFAULT_HOURS,
    seed: int = DEFAULT_SEED,
) -> Iterator[dict]:
    """Yield ``n`` stored completions (export-format dicts) in ``created`` order.

    The records span ``hours`` hours from ``start`` with a day/night traffic pattern; the content is
    described in the package docstring. Streaming: memory stays flat whatever ``n`` is (only open
    multi-turn conversations are kept). Deterministic for the same arguments.
    """
    _check_args(n, start, hours)
    return _Generator(start=start, hours=hours, seed=seed).records(n)


# Relative traffic by UTC hour of day (quiet at night, busy in the European/US afternoon).
_HOUR_WEIGHTS = (
    0.45, 0.40, 0.35, 0.32, 0.30, 0.32, 0.40, 0.55, 0.70, 0.85, 0.95, 1.00,
    0.98, 1.00, 1.00, 1.00, 0.98, 0.95, 0.90, 0.85, 0.75, 0.65, 0.58, 0.50,
)  # fmt: skip
_WEEKEND_FACTOR = 0.65
_WINDOW_TRAFFIC = 1.25  # invoice day: extra billing traffic during the degraded window

# Shares of the scenarios, in the order of _SCENARIO_ORDER.
_SCENARIO_CUM = tuple(itertools.accumulate((0.32, 0.20, 0.20, 0.28)))
_SCENARIO_CUM_WINDOW = tuple(itertools.accumulate((0.17, 0.12, 0.11, 0.60)))
_V2_SHARE = 0.5
_V2_SHARE_WINDOW = 0.9  # billing's bad v2 prompt is rolled out to most billing users in the window

_TURNS = (1, 2, 3, 4)
_TURNS_CUM = tuple(itertools.accumulate((0.80, 0.11, 0.06, 0.03)))

# What a healthy completion turns out to be (probabilities add up to 1).
_KINDS = (
    "good", "detailed", "too_long", "short", "unsure", "plain",
    "unicode", "tool_call", "length", "content_filter", "refusal",
)  # fmt: skip
_KINDS_CUM = tuple(
    itertools.accumulate((0.752, 0.08, 0.015, 0.015, 0.025, 0.035, 0.03, 0.02, 0.01, 0.008, 0.01))
)
# What the degraded segment answers inside the window.
_DEG_KINDS = ("curt", "refusal", "evasive", "good")
_DEG_KINDS_CUM = tuple(itertools.accumulate((0.64, 0.12, 0.14, 0.10)))

_FINGERPRINTS = {
    MODELS[0]: ("fp_ded0d14823", "fp_b705f0c291"),
    MODELS[1]: ("fp_06737a9306", "fp_b8bc95a0ac"),
}
_CHANNELS = ("web", "web", "web", "mobile", "mobile", "api")
_REGIONS = ("eastus", "eastus", "eastus2", "westeurope", "westeurope", "swedencentral", "japaneast")


_SEG_USER_TYPE = DEGRADED_SEGMENT["user_type"]
_SEG_VARIANT = DEGRADED_SEGMENT["prompt_variant"]


def _pick(rng: random.Random, cum: tuple[float, ...]) -> int:
    """An index drawn with the probabilities whose running totals are ``cum`` (ending at 1)."""
    return min(bisect_right(cum, rng.random()), len(cum) - 1)


def _one(rng: random.Random, seq):
    """``rng.choice`` without its overhead (the hot path draws a dozen of these per record)."""
    return seq[int(rng.random() * len(seq))]


def _item(role: str, content: str | None, **extra) -> tuple[dict, int]:
    """An input message as the messages endpoint lists it (without its id) and its token count."""
    tokens = 4 + len(content or "") // 4
    for call in extra.get("tool_calls") or ():
        tokens += 8 + len(call["function"]["arguments"]) // 4
    return {"role": role, "content": content, "name": None, "content_parts": None, **extra}, tokens


class _Conv:
    """An open conversation: the messages so far (without the system prompt) and what comes next."""

    __slots__ = (
        "pools", "variant", "model", "meta", "segment", "history", "turn", "turns_left", "due",
        "tool_answer", "last_kind", "prev_prompt_tokens", "follow",
    )  # fmt: skip

    def __init__(self, pools: _Pools, variant: str, model: str, meta: dict, turns: int) -> None:
        self.pools = pools
        self.variant = variant
        self.model = model
        self.meta = meta  # the metadata that stays the same for every turn
        self.segment = meta["user_type"] == _SEG_USER_TYPE and variant == _SEG_VARIANT
        self.history: list[tuple[dict, int]] = []
        self.turn = 0
        self.turns_left = turns
        self.due = 0
        self.tool_answer: str | None = None  # set while a tool result awaits its answer
        self.last_kind = ""
        self.prev_prompt_tokens = 0
        self.follow = 0  # where this conversation starts in the follow-up rotation


#: What a turn is before its answer: kind, the new user message (None when the turn answers a tool
#: result), the answer when already known, the tool calls and the tool's result, and the topic.
_Turn = tuple[str, str | None, str | None, list[dict] | None, str, _Unit | None]


class _Generator:
    def __init__(self, *, start: datetime, hours: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start_s = int(start.timestamp())
        self.hours = hours
        lo, hi = degraded_window(start, hours)
        self.lo, self.hi = int(lo.timestamp()), int(hi.timestamp())
        pools = _pools()
        self.pools = tuple(pools[name] for name in _SCENARIO_ORDER)
        self.texts = common_texts()
        self._systems: dict[tuple[str, str, bool], tuple[dict, int]] = {}
        self._iso_hour = -1
        self._iso_prefix = ""

    def _slots(self, n: int) -> Iterator[int]:
        """``n`` creation times (unix seconds) in order, following the traffic pattern."""
        rng = self.rng
        weights = []
        for h in range(self.hours):
            t0 = self.start_s + h * 3600
            when = datetime.fromtimestamp(t0, UTC)
            w = _HOUR_WEIGHTS[when.hour] * rng.uniform(0.9, 1.1)
            if when.weekday() >= 5:
                w *= _WEEKEND_FACTOR
            if self.lo <= t0 < self.hi:
                w *= _WINDOW_TRAFFIC
            weights.append(w)
        total = sum(weights)
        done = 0
        acc = 0.0
        rnd = rng.random
        for h, w in enumerate(weights):
            acc += w
            upto = n if h == self.hours - 1 else min(n, round(n * acc / total))
            t0 = self.start_s + h * 3600
            for s in sorted([int(rnd() * 3600) for _ in range(upto - done)]):
                yield t0 + s
            done = upto

    def records(self, n: int) -> Iterator[dict]:
        heap: list[tuple[int, int, _Conv]] = []
        seq = itertools.count()
        for t in self._slots(n):
            # A conversation whose next turn is due takes this slot; otherwise a new one starts.
            due = heap and heap[0][0] <= t
            conv = heapq.heappop(heap)[2] if due else self._new_conversation(t)
            record = self._completion(conv, t)
            if conv.turns_left > 0:
                heapq.heappush(heap, (conv.due, next(seq), conv))
            yield record

    def _new_conversation(self, t: int) -> _Conv:
        rng = self.rng
        in_window = self.lo <= t < self.hi
        pools = self.pools[_pick(rng, _SCENARIO_CUM_WINDOW if in_window else _SCENARIO_CUM)]
        share = (
            _V2_SHARE_WINDOW if in_window and pools.user_type == "billing_support" else _V2_SHARE
        )
        variant = "v2" if rng.random() < share else "v1"
        meta = {
            "user_type": pools.user_type,
            "category": pools.category,
            "conversation_id": f"conv_{rng.getrandbits(48):012x}",
            "pipeline_source": "sample",
            "prompt_variant": variant,
            "channel": _one(rng, _CHANNELS),
            "region": _one(rng, _REGIONS),
        }
        model = MODELS[0] if rng.random() < 0.65 else MODELS[1]
        conv = _Conv(pools, variant, model, meta, _TURNS[_pick(rng, _TURNS_CUM)])
        conv.follow = int(rng.random() * len(pools.follow_units))
        return conv

    def _system(self, pools: _Pools, variant: str, degraded: bool) -> tuple[dict, int]:
        key = (pools.user_type, variant, degraded)
        if key not in self._systems:
            text = self.texts.degraded_system if degraded else pools.system[variant]
            self._systems[key] = _item("system", text)
        return self._systems[key]

    def _iso(self, t: int) -> str:
        """``datetime.fromtimestamp(t, UTC).isoformat()``, cheaply (records come in time order)."""
        if t // 3600 != self._iso_hour:
            self._iso_hour = t // 3600
            hour = datetime.fromtimestamp(self._iso_hour * 3600, UTC)
            self._iso_prefix = hour.strftime("%Y-%m-%dT%H:")
        r = t % 3600
        return f"{self._iso_prefix}{r // 60:02d}:{r % 60:02d}+00:00"

    def _completion(self, conv: _Conv, t: int) -> dict:
        rng = self.rng
        pools = conv.pools
        degraded = conv.segment and self.lo <= t < self.hi
        conv.turn += 1
        kind, user, content, tool_calls, result, unit = self._turn(conv, degraded)
        content, refusal, finish, completion_tokens = self._answer(
            pools, kind, unit, content, tool_calls
        )

        # The input: the system prompt as the app sends it now, earlier turns, the new user message.
        history = conv.history + [_item("user", user)] if user is not None else conv.history
        inputs = (self._system(pools, conv.variant, degraded), *history)
        cid = f"chatcmpl-{rng.getrandbits(116):029x}"
        messages = [{"id": f"{cid}-{i}", **item} for i, (item, _) in enumerate(inputs)]
        prompt_tokens = 3 + pools.tool_tokens + sum(tokens for _, tokens in inputs)
        cached = 0
        if conv.turn > 1 and prompt_tokens >= 1024:
            cached = min(prompt_tokens, conv.prev_prompt_tokens) // 128 * 128
        self._advance(conv, t, kind, history, content, tool_calls, result)
        conv.prev_prompt_tokens = prompt_tokens

        message = {"role": "assistant", "content": content, "refusal": refusal}
        if tool_calls:
            message["tool_calls"] = tool_calls
        message["annotations"] = []
        rid = f"{rng.getrandbits(128):032x}"
        return {
            "id": cid,
            "object": "chat.completion",
            "created": t,
            "model": conv.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "metadata": {**conv.meta, "timestamp": self._iso(t), "turn": str(conv.turn)},
            "system_fingerprint": _FINGERPRINTS[conv.model][(t - self.start_s) // 86400 % 2],
            "service_tier": "default",
            "request_id": f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}",
            "seed": None,
            "temperature": 1.0,
            "top_p": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "tool_choice": None,
            "tools": pools.tools,
            "input_user": None,
            "messages": messages,
        }

    def _turn(self, conv: _Conv, degraded: bool) -> _Turn:
        """What this turn of ``conv`` is (see :data:`_Turn`); sets ``conv.tool_answer`` when the
        turn calls a tool, and clears it when the degraded segment answers badly instead."""
        rng = self.rng
        pools = conv.pools
        content: str | None = None
        tool_calls: list[dict] | None = None
        result = ""
        user: str | None = None
        unit: _Unit | None = None  # the topic of this turn: its prompt and matching answers
        if conv.tool_answer is not None:
            kind = "tool_answer"
            content = conv.tool_answer
        else:
            kind = _KINDS[_pick(rng, _KINDS_CUM)]
            if kind == "tool_call" and (not pools.flows or conv.turn > 1):
                kind = "good"
            if kind == "unicode" and conv.turn > 1:
                kind = "good"
            if kind == "refusal":
                user = _one(rng, pools.refusal_prompts)
            elif kind == "content_filter":
                user = _one(rng, pools.filtered_prompts)
            elif kind == "tool_call":
                user, tool_calls, result, conv.tool_answer = self._tool_call(pools)
            elif kind == "unicode":
                if rng.random() < 0.5:
                    user, content = _one(rng, pools.unicode_pairs)
                else:
                    unit = _one(rng, pools.unicode_units)
                    user, content = _one(rng, unit.prompts), _one(rng, unit.unicode)
            elif conv.turn == 1:
                long_form = kind in ("detailed", "too_long", "length")
                unit = _one(rng, pools.broad_units if long_form else pools.units)
                user = _one(rng, unit.prompts)
            elif conv.last_kind == "length":
                user = _one(rng, self.texts.continue_prompts)
                if kind == "good":
                    kind = "detailed"
            else:
                # Follow-ups in a fixed rotation from a random start: no question asked twice.
                follows = pools.follow_units
                unit = follows[(conv.follow + conv.turn) % len(follows)]
                user = unit.prompts[0]
        if degraded:
            deg_kind = _DEG_KINDS[_pick(rng, _DEG_KINDS_CUM)]
            if deg_kind != "good":
                kind, content, tool_calls, conv.tool_answer = deg_kind, None, None, None
        return kind, user, content, tool_calls, result, unit

    def _answer(
        self,
        pools: _Pools,
        kind: str,
        unit: _Unit | None,
        content: str | None,
        tool_calls: list[dict] | None,
    ) -> tuple[str | None, str | None, str, int]:
        """The answer of a turn of ``kind``: its content (``content`` when already known), refusal,
        finish reason and completion tokens."""
        rng = self.rng
        refusal: str | None = None
        finish = "stop"
        completion_tokens = 0
        if content is not None:
            pass
        elif kind in ("good", "short", "unsure", "plain"):
            own = getattr(unit, kind) if unit is not None else ()
            shared = getattr(pools, f"{kind}_any")
            # Unsure answers draw from the topic's and the scenario's pools, so every one of the
            # seed's negative phrases shows up.
            content = _one(rng, (own + shared) if kind == "unsure" else (own or shared))
        elif kind in ("detailed", "too_long"):
            content = _one(rng, getattr(pools, kind))
        elif kind == "curt":
            content = _one(rng, self.texts.degraded_curt)
        elif kind == "evasive":
            content = _one(rng, self.texts.degraded_evasive)
        elif kind == "length":
            content = _one(rng, pools.cut)
            finish = "length"
            completion_tokens = MAX_TOKENS
        elif kind == "content_filter":
            content = None if rng.random() < 0.8 else ""
            finish = "content_filter"
            completion_tokens = 3 + int(rng.random() * 58)
        elif kind == "refusal":
            refusal = _one(rng, self.texts.refusals)
            completion_tokens = len(refusal) // 4 + 1
        elif kind == "tool_call":
            finish = "tool_calls"
            completion_tokens = 12 + len(tool_calls[0]["function"]["arguments"]) // 4
        if not completion_tokens:
            completion_tokens = max(1, (len(content or "") + 3) // 4)
        return content, refusal, finish, completion_tokens

    def _advance(
        self,
        conv: _Conv,
        t: int,
        kind: str,
        history: list[tuple[dict, int]],
        content: str | None,
        tool_calls: list[dict] | None,
        result: str,
    ) -> None:
        """The conversation's state for its next completion, after a turn at ``t`` whose input
        ended with ``history`` and whose answer was ``content`` or ``tool_calls``."""
        if tool_calls:
            call_id = tool_calls[0]["id"]
            history = [
                *history,
                _item("assistant", None, tool_calls=tool_calls),
                _item("tool", result, tool_call_id=call_id),
            ]
            conv.turns_left = max(conv.turns_left - 1, 1)
            conv.due = t + 1 + int(self.rng.random() * 6)
        else:
            conv.tool_answer = None
            if kind in ("refusal", "content_filter"):
                conv.turns_left = 0
            else:
                history = [*history, _item("assistant", content or "")]
                conv.turns_left -= 1
                conv.due = t + 45 + int(self.rng.random() * 1155)
        conv.history = history
        conv.last_kind = kind

    def _tool_call(self, pools: _Pools) -> tuple[str, list[dict], str, str]:
        """A user question, the tool call it triggers, the tool's result and the answer the model
        gives once it has the result (all from one flow, with the same filled-in values)."""
        rng = self.rng
        flow = _one(rng, pools.flows)
        fill: dict[str, str] = {}
        for slot, values in flow["fill"].items():
            value = _one(rng, values)
            # A dict fills several slots that must agree (a quote's seats, price and total).
            if isinstance(value, dict):
                fill.update(value)
            else:
                fill[slot] = value
        args = {k: v.format(**fill) for k, v in flow["args"].items()}
        result = {
            k: v.format(**fill) if isinstance(v, str) else v for k, v in flow["result"].items()
        }
        call = {
            "id": f"call_{rng.getrandbits(96):024x}",
            "type": "function",
            "function": {"name": flow["name"], "arguments": json.dumps(args)},
        }
        user = _one(rng, flow["ask"]).format(**fill)
        answer = flow["answer"].format(**fill)
        return user, [call], json.dumps(result, ensure_ascii=False), answer
