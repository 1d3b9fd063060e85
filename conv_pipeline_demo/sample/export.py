"""Writing the sample: one export file per day (:func:`write_sample`) or bulk files for benchmarks
(:func:`write_bulk`), with a fast serializer that writes exactly what ``json.dumps`` would."""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conv_pipeline_demo.sample.constants import (
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    DEGRADED_SEGMENT,
    SAMPLE_START,
    _check_args,
    degraded_window,
)
from conv_pipeline_demo.sample.generator import iter_sample_records


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`write_sample` wrote.

    ``counts`` tallies the special shapes: ``tool_calls`` (completions that call a tool),
    ``tool_results`` (completions whose input holds a tool result), ``length``,
    ``content_filter``, ``refusal``, ``too_short`` (non-empty answers under 50 characters),
    ``empty_response`` (null or empty content), ``too_long`` (over 1000 characters),
    ``multi_turn`` (completions whose input holds earlier turns), ``conversations``, ``unicode``
    (answers with non-ASCII text) and ``degraded`` (segment completions inside the window).
    """

    files: list[Path]
    records: int
    first_created: datetime
    last_created: datetime
    degraded_segment: dict[str, str]
    degraded_window: tuple[datetime, datetime]
    counts: dict[str, int]


def _dumps(record: dict) -> str:
    """``json.dumps(record, ensure_ascii=False)`` for the generator's records, several times faster.

    Every text comes from a finite pool, so its JSON form is cached; the fixed parts are literal.
    The tests check that the result is byte-identical to ``json.dumps`` for a whole sample.
    """
    choice = record["choices"][0]
    msg = choice["message"]
    usage = record["usage"]
    calls = msg.get("tool_calls")
    message = (
        f'{{"role": "assistant", "content": {_js(msg["content"])}, '
        f'"refusal": {_js(msg["refusal"])}, '
        + (f'"tool_calls": {json.dumps(calls, ensure_ascii=False)}, ' if calls else "")
        + '"annotations": []}'
    )
    items = []
    for m in record["messages"]:
        extra = ""
        if "tool_calls" in m:
            extra = f', "tool_calls": {json.dumps(m["tool_calls"], ensure_ascii=False)}'
        elif "tool_call_id" in m:
            extra = f', "tool_call_id": "{m["tool_call_id"]}"'
        items.append(
            f'{{"id": "{m["id"]}", "role": "{m["role"]}", "content": {_js(m["content"])}, '
            f'"name": null, "content_parts": null{extra}}}'
        )
    tools = record["tools"]
    return (
        f'{{"id": "{record["id"]}", "object": "chat.completion", "created": {record["created"]}, '
        f'"model": "{record["model"]}", "choices": [{{"index": 0, "message": {message}, '
        f'"finish_reason": "{choice["finish_reason"]}", "logprobs": null}}], '
        f'"usage": {{"prompt_tokens": {usage["prompt_tokens"]}, '
        f'"completion_tokens": {usage["completion_tokens"]}, '
        f'"total_tokens": {usage["total_tokens"]}, "prompt_tokens_details": '
        f'{{"cached_tokens": {usage["prompt_tokens_details"]["cached_tokens"]}, '
        f'"audio_tokens": 0}}, "completion_tokens_details": {{"reasoning_tokens": 0, '
        f'"audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}}}, '
        f'"metadata": {json.dumps(record["metadata"], ensure_ascii=False)}, '
        f'"system_fingerprint": "{record["system_fingerprint"]}", "service_tier": "default", '
        f'"request_id": "{record["request_id"]}", "seed": null, "temperature": 1.0, '
        f'"top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0, '
        f'"tool_choice": null, "tools": {_tools_json(tools) if tools else "null"}, '
        f'"input_user": null, "messages": [{", ".join(items)}]}}'
    )


_JSON_CACHE: dict[str, str] = {}
_TOOLS_CACHE: dict[int, tuple[list, str]] = {}


def _js(text: str | None) -> str:
    """A JSON string literal (``null`` for None), cached: the texts come from finite pools."""
    if text is None:
        return "null"
    out = _JSON_CACHE.get(text)
    if out is None:
        out = json.dumps(text, ensure_ascii=False)
        if len(_JSON_CACHE) < 100_000:
            _JSON_CACHE[text] = out
    return out


def _tools_json(tools: list) -> str:
    hit = _TOOLS_CACHE.get(id(tools))
    if hit is None or hit[0] is not tools:
        hit = _TOOLS_CACHE[id(tools)] = (tools, json.dumps(tools, ensure_ascii=False))
    return hit[1]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_day(out_dir: Path, day: str, lines: list[str], *, gz: bool) -> Path:
    base = f"completions-{day}.jsonl"
    path = out_dir / (base + ".gz" if gz else base)
    data = "".join(lines).encode("utf-8")
    if gz:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    _write_atomic(path, data)
    # The same day written by an earlier run with the other extension would duplicate records.
    twin = out_dir / (base if gz else base + ".gz")
    if twin.is_file():
        twin.unlink()
    return path


def write_sample(
    out_dir: Path,
    *,
    n: int = DEFAULT_N,
    start: datetime = SAMPLE_START,
    hours: int = DEFAULT_HOURS,
    seed: int = DEFAULT_SEED,
) -> SampleSummary:
    """Write the sample export to ``out_dir`` and summarize it.

    One file per UTC day, ``completions-YYYY-MM-DD.jsonl``, lines sorted by ``created``; the last
    day is gzipped (``.jsonl.gz``, deterministic bytes) so the compressed path is exercised too.
    ``out_dir`` is created if needed. Only the sample's own files are (over)written; anything else
    in the folder is left alone, except that a day's file with the other extension (left by an
    earlier run over a different span) is replaced so no record appears twice.
    """
    _check_args(n, start, hours)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(_COUNT_KEYS, 0)
    conversations: set[str] = set()
    lo, hi = degraded_window(start, hours)
    window_s = (int(lo.timestamp()), int(hi.timestamp()))
    files: list[Path] = []
    day: str | None = None
    lines: list[str] = []
    first = last = None
    records = 0
    for rec in iter_sample_records(n=n, start=start, hours=hours, seed=seed):
        created = rec["created"]
        rec_day = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")
        if rec_day != day:
            if lines:
                files.append(_write_day(out_dir, day, lines, gz=False))
            day, lines = rec_day, []
        lines.append(_dumps(rec) + "\n")
        first = created if first is None else first
        last = created
        records += 1
        conversations.add(rec["metadata"]["conversation_id"])
        _tally(counts, rec, window_s)
    if lines:
        files.append(_write_day(out_dir, day, lines, gz=True))
    counts["conversations"] = len(conversations)
    return SampleSummary(
        files=files,
        records=records,
        first_created=datetime.fromtimestamp(first, UTC) if first is not None else start,
        last_created=datetime.fromtimestamp(last, UTC) if last is not None else start,
        degraded_segment=dict(DEGRADED_SEGMENT),
        degraded_window=(lo, hi),
        counts=counts,
    )


def write_bulk(
    out_dir: Path,
    n: int,
    *,
    files: int = 8,
    seed: int = 11,
    start: datetime = SAMPLE_START,
    hours: int = 720,
) -> list[Path]:
    """Write ``n`` sample records split over ``files`` plain ``bulk-NNNNN.jsonl`` files (benchmarks).

    The same generator as the sample (by default 30 days of traffic), streamed: records go to disk
    in chunks and are never all held in memory. File ``i`` holds the ``i``-th consecutive slice of
    the time-ordered stream, so each file is sorted by ``created``.
    """
    _check_args(n, start, hours)
    if files < 1:
        raise ValueError(f"files must be >= 1, got {files}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bounds = [n * i // files for i in range(files + 1)]
    stream = iter_sample_records(n=n, start=start, hours=hours, seed=seed)
    paths: list[Path] = []
    for i in range(files):
        path = out_dir / f"bulk-{i:05d}.jsonl"
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            remaining = bounds[i + 1] - bounds[i]
            while remaining:
                chunk = min(remaining, 5000)
                fh.write("".join(_dumps(r) + "\n" for r in itertools.islice(stream, chunk)))
                remaining -= chunk
        tmp.replace(path)
        paths.append(path)
    return paths


_COUNT_KEYS = (
    "tool_calls",
    "tool_results",
    "length",
    "content_filter",
    "refusal",
    "too_short",
    "empty_response",
    "too_long",
    "multi_turn",
    "conversations",
    "unicode",
    "degraded",
)


def _tally(counts: dict[str, int], rec: dict, window_s: tuple[int, int]) -> None:
    choice = rec["choices"][0]
    finish = choice["finish_reason"]
    text = choice["message"]["content"] or ""
    if finish == "tool_calls":
        counts["tool_calls"] += 1
    elif finish in ("length", "content_filter"):
        counts[finish] += 1
    if choice["message"]["refusal"]:
        counts["refusal"] += 1
    size = len(text)
    if size == 0:
        counts["empty_response"] += 1
    elif size < 50:
        counts["too_short"] += 1
    elif size > 1000:
        counts["too_long"] += 1
    if not text.isascii():
        counts["unicode"] += 1
    roles = [m["role"] for m in rec["messages"]]
    if "tool" in roles:
        counts["tool_results"] += 1
    if roles.count("user") > 1 or "assistant" in roles:
        counts["multi_turn"] += 1
    md = rec["metadata"]
    if window_s[0] <= rec["created"] < window_s[1] and all(
        md.get(k) == v for k, v in DEGRADED_SEGMENT.items()
    ):
        counts["degraded"] += 1
