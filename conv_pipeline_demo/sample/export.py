"""Writing the sample: one export file per UTC day and the incidents beside them
(:func:`write_sample`), or bulk files for benchmarks (:func:`write_bulk`)."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conv_pipeline_demo.sample.generator import iter_recs
from conv_pipeline_demo.sample.record import Rec
from conv_pipeline_demo.sample.timeline import (
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    Incident,
    check_args,
    resolve_end,
)
from conv_pipeline_demo.sample.timeline import (
    incidents as planted_incidents,
)

#: The ground truth written beside the export (not a ``*.jsonl`` file: the sources skip it).
INCIDENTS_FILE = "incidents.json"
_CHUNK = 2000  # records joined per write


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`write_sample` wrote.

    ``counts`` tallies the shapes: ``tool_calls`` (completions that call a tool), ``tool_results``
    (completions whose input holds a tool result), ``length``, ``content_filter``, ``refusal``,
    ``empty_response`` (null or empty content), ``too_short`` (non-empty answers under 50
    characters), ``too_long`` (over 1000), ``code`` (answers with a fenced code block),
    ``non_english`` (conversations in another language), ``multi_turn`` (completions whose input
    holds earlier turns), ``conversations``, and per incident kind the completions of its segment
    inside its window (``incident:<kind>``).
    """

    files: list[Path]
    records: int
    first_created: datetime
    last_created: datetime
    end: datetime
    incidents: list[Incident]
    incidents_file: Path
    removed: list[Path]
    counts: dict[str, int]


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


def _previous_files(out_dir: Path) -> list[Path]:
    """The export files an earlier :func:`write_sample` listed in its ``incidents.json``."""
    path = out_dir / INCIDENTS_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["sample"]["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        out_dir / name
        for name in names
        if isinstance(name, str) and name.startswith("completions-") and "/" not in name
    ]


def write_sample(
    out_dir: Path,
    *,
    n: int = DEFAULT_N,
    hours: int = DEFAULT_HOURS,
    end: datetime | str | None = None,
    seed: int = DEFAULT_SEED,
) -> SampleSummary:
    """Write the sample export to ``out_dir`` and summarize it.

    One file per UTC day, ``completions-YYYY-MM-DD.jsonl``, lines sorted by ``created``; the last
    day is gzipped (``.jsonl.gz``, deterministic bytes) so the compressed path is exercised too.
    ``incidents.json`` beside them holds the planted incidents (the ground truth) and what was
    written. ``out_dir`` is created if needed. Only the sample's own files are (over)written:
    a day's file with the other extension is replaced, and the export files an earlier sample
    listed in its ``incidents.json`` that this one does not write again are removed (they would
    repeat this sample's completion ids at other dates); anything else is left alone.
    """
    check_args(n, hours)
    last_hour = resolve_end(end)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planted = planted_incidents(hours=hours, end=last_hour)
    tally = _Tally(planted)
    files: list[Path] = []
    day: str | None = None
    lines: list[str] = []
    first = last = None
    for rec in iter_recs(n=n, hours=hours, end=last_hour, seed=seed):
        rec_day = rec.iso[:10]
        if rec_day != day:
            if lines:
                files.append(_write_day(out_dir, day, lines, gz=False))
            day, lines = rec_day, []
        lines.append(rec.as_json() + "\n")
        first = rec.created if first is None else first
        last = rec.created
        tally.add(rec)
    if lines:
        files.append(_write_day(out_dir, day, lines, gz=True))
    written = {p.name for p in files}
    removed = [p for p in _previous_files(out_dir) if p.name not in written and p.is_file()]
    for path in removed:
        path.unlink()
    start = last_hour - timedelta(hours=hours - 1)
    truth = {
        "sample": {
            "n": n,
            "hours": hours,
            "seed": seed,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (last_hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": sorted(written),
        },
        "incidents": [i.as_json() for i in planted],
    }
    incidents_file = out_dir / INCIDENTS_FILE
    _write_atomic(incidents_file, (json.dumps(truth, indent=2) + "\n").encode("utf-8"))
    return SampleSummary(
        files=files,
        records=tally.records,
        first_created=datetime.fromtimestamp(first, UTC) if first is not None else start,
        last_created=datetime.fromtimestamp(last, UTC) if last is not None else start,
        end=last_hour,
        incidents=planted,
        incidents_file=incidents_file,
        removed=removed,
        counts=tally.counts(),
    )


class _Tally:
    def __init__(self, planted: list[Incident]) -> None:
        self.planted = planted
        self.records = 0
        self.conversations: set[str] = set()
        self.c = dict.fromkeys(
            (
                "tool_calls", "tool_results", "length", "content_filter", "refusal",
                "empty_response", "too_short", "too_long", "code", "non_english", "multi_turn",
            ),
            0,
        )  # fmt: skip
        for inc in planted:
            self.c[f"incident:{inc.kind}"] = 0

    def add(self, rec: Rec) -> None:
        c = self.c
        self.records += 1
        self.conversations.add(rec.meta["conversation_id"])
        if rec.finish in ("tool_calls", "length", "content_filter"):
            c[rec.finish] += 1
        if rec.refusal:
            c["refusal"] += 1
        text = rec.content or ""
        size = len(text)
        if size == 0:
            c["empty_response"] += 1
        elif size < 50:
            c["too_short"] += 1
        elif size > 1000:
            c["too_long"] += 1
        if "```" in text:
            c["code"] += 1
        if not rec.meta["locale"].startswith("en"):
            c["non_english"] += 1
        roles = [m.role for m in rec.messages]
        if "tool" in roles:
            c["tool_results"] += 1
        if "assistant" in roles:
            c["multi_turn"] += 1
        for inc in self.planted:
            if inc.contains(rec.created) and all(
                (rec.variant if k == "prompt_variant" else rec.meta.get(k)) == v
                for k, v in inc.segment.items()
            ):
                c[f"incident:{inc.kind}"] += 1

    def counts(self) -> dict[str, int]:
        return {**self.c, "conversations": len(self.conversations)}


def write_bulk(
    out_dir: Path,
    n: int,
    *,
    files: int = 8,
    hours: int = 720,
    end: datetime | str | None = None,
    seed: int = 11,
    compress: bool = False,
    incidents: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """Write ``n`` completions of the sample's traffic over ``hours`` hours (ending with the hour
    ``end``, default the current one) in ``files`` files ``bulk-NNNNN.jsonl`` (``.jsonl.gz`` with
    ``compress``), for benchmarks.

    File ``i`` holds the ``i``-th of ``files`` consecutive stretches of hours (see
    :func:`.generator.iter_recs`), sorted by ``created``; the files are written by ``workers``
    processes at once (default: up to two, one per file at most), each streaming in chunks, so
    memory stays flat. The output does not depend on ``workers``. Quiet traffic by default
    (``incidents=True`` plants the sample's incidents too).
    """
    check_args(n, hours)
    if files < 1:
        raise ValueError(f"files must be >= 1, got {files}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_hour = resolve_end(end)
    suffix = ".jsonl.gz" if compress else ".jsonl"
    jobs = [
        (str(out_dir / f"bulk-{i:05d}{suffix}"), n, hours, last_hour, seed, incidents, i, files)
        for i in range(files)
    ]
    workers = workers or min(2, files, os.cpu_count() or 1)
    if workers > 1:
        # fork where there is one: the children only generate and write (no threads, no locks
        # of the parent's libraries), and a caller's script needs no ``__main__`` guard.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            return [Path(p) for p in pool.map(_write_part, *zip(*jobs, strict=True))]
    return [Path(_write_part(*job)) for job in jobs]


def _write_part(
    path: str, n: int, hours: int, end: datetime, seed: int, planted: bool, i: int, k: int
) -> str:
    """Write part ``i`` of ``k`` of a bulk export to ``path`` (atomically); returns ``path``."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    stream = iter_recs(n=n, hours=hours, end=end, seed=seed, incidents=planted, part=(i, k))
    raw = tmp.open("wb")
    fh = (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
        if path.endswith(".gz")
        else raw
    )
    try:
        chunk: list[str] = []
        for rec in stream:
            chunk.append(rec.as_json())
            if len(chunk) >= _CHUNK:
                fh.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk = []
        if chunk:
            fh.write(("\n".join(chunk) + "\n").encode("utf-8"))
    finally:
        if fh is not raw:
            fh.close()
        raw.close()
    tmp.replace(target)
    return path
