"""The sample's planted incidents, each in its window and nowhere else, its quiet history, and the
bulk writer (the same generator at bench scale)."""

from __future__ import annotations

import gzip
import json
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conv_pipeline.core.ingestion.parse import parse_export_file
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline_demo.sample import (
    DEFAULT_HOURS,
    incidents,
    iter_sample_records,
    write_bulk,
    write_sample,
)
from conv_pipeline_demo.sample.timeline import TEMPLATE_HOURS, incident_hours

END = "2026-12-02T14"
END_HOUR = datetime(2026, 12, 2, 14, tzinfo=UTC)
KINDS = ["segment_degradation", "service_outage", "prompt_variant_regression"]
BAD_PHRASES = ("i can't help with", "i can't assist with", "i'm unable to help")


def response(rec: dict) -> str:
    return rec["choices"][0]["message"]["content"] or ""


def finish(rec: dict) -> str:
    return rec["choices"][0]["finish_reason"]


def is_error(rec: dict) -> bool:
    """The pipeline's ``is_error``: a content-filter stop, or no answer at all."""
    msg = rec["choices"][0]["message"]
    return finish(rec) == "content_filter" or (
        not response(rec) and not msg.get("tool_calls") and not msg["refusal"]
    )


def is_bad(rec: dict) -> bool:
    """A curt answer (the sample's healthy answers are rarely under 80 characters) or a refusal."""
    text = response(rec).lower()
    msg = rec["choices"][0]["message"]
    return bool(msg["refusal"]) or (
        not msg.get("tool_calls") and (len(text) < 80 or any(p in text for p in BAD_PHRASES))
    )


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(iter_sample_records(end=END))


@pytest.fixture(scope="module")
def truth() -> dict[str, tuple[int, int]]:
    return {
        i.kind: (int(i.start.timestamp()), int(i.end.timestamp()))
        for i in incidents(hours=DEFAULT_HOURS, end=END)
    }


def hours_of(records, keep=lambda r: True) -> dict[int, list[dict]]:
    out = defaultdict(list)
    for rec in records:
        if keep(rec):
            out[rec["created"] // 3600 * 3600].append(rec)
    return out


def inside(window: tuple[int, int], t: int) -> bool:
    return window[0] <= t < window[1]


def test_the_ground_truth():
    planted = incidents(end=END)
    assert [i.kind for i in planted] == KINDS
    assert [i.segment for i in planted] == [
        {"category": "data_analysis"},
        {},
        {"prompt_variant": "v8"},
    ]
    first_hour = END_HOUR - timedelta(hours=DEFAULT_HOURS - 1)
    assert planted[0].start - first_hour >= timedelta(days=4)  # a quiet history first
    assert [(i.end - i.start) // timedelta(hours=1) for i in planted] == [6, 2, 8]
    for a, b in zip(planted, planted[1:], strict=False):
        assert b.start - a.end >= timedelta(hours=3)  # quiet hours between
    assert END_HOUR + timedelta(hours=1) - planted[-1].end >= timedelta(hours=12)  # recovered
    doc = planted[0].as_json()
    assert set(doc) == {"kind", "segment", "start", "end", "hours", "description", "expected"}
    assert doc["start"].endswith("Z") and doc["hours"] == 6
    # a longer sample keeps the incidents at the same distance from its end
    assert incident_hours(720) == [
        (lo + 720 - TEMPLATE_HOURS, hi + 720 - TEMPLATE_HOURS)
        for lo, hi in incident_hours(TEMPLATE_HOURS)
    ]
    # a shorter one scales them, one hour at least, never overlapping
    for hours in (6, 12, 24, 48, 72):
        spans = [w for w in incident_hours(hours) if w[0] >= 0]
        assert spans and all(0 < lo < hi <= hours for lo, hi in spans)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert incident_hours(2) == [(1, 2), (-1, -1), (-1, -1)]
    assert incidents(hours=2, end=END)[0].kind == "segment_degradation"


def test_a_segment_degrades_inside_its_window_and_only_there(records, truth):
    window = truth["segment_degradation"]
    segment = hours_of(records, lambda r: r["metadata"]["category"] == "data_analysis")
    inside_hours = [h for h in segment if inside(window, h)]
    assert len(inside_hours) == 6
    for h, recs in segment.items():
        share = sum(map(is_bad, recs)) / len(recs)
        if inside(window, h):
            assert len(recs) >= 10 and share > 0.55, (h, share)
        elif len(recs) >= 15 and not any(inside(w, h) for w in truth.values()):
            assert share < 0.3, (h, share)
    quiet = [
        r
        for h, recs in segment.items()
        if not any(inside(w, h) for w in truth.values())
        for r in recs
    ]
    assert sum(map(is_bad, quiet)) / len(quiet) < 0.08
    # other segments inside the window answer as usual ...
    others = [r for r in records if inside(window, r["created"])]
    rest = [r for r in others if r["metadata"]["category"] != "data_analysis"]
    assert sum(map(is_bad, rest)) / len(rest) < 0.05
    # ... so the hour's overall numbers barely move, while the segment's do
    everything = hours_of(records)
    quiet_scores = [
        statistics.mean(map(score, recs))
        for h, recs in everything.items()
        if not any(inside(w, h) for w in truth.values())
    ]
    for h in inside_hours:
        hour_score = statistics.mean(map(score, everything[h]))
        assert abs(hour_score - statistics.mean(quiet_scores)) < 0.3
    seg_in = [r for h in inside_hours for r in segment[h]]
    seg_out = [r for h, recs in segment.items() if h not in inside_hours for r in recs]
    assert statistics.mean(len(response(r)) for r in seg_in) < 0.5 * statistics.mean(
        len(response(r)) for r in seg_out
    )
    assert statistics.mean(map(score, seg_in)) < statistics.mean(map(score, seg_out)) - 0.3


def score(rec: dict) -> float:
    return calculate_quality_score({"response": response(rec)})


def test_a_service_wide_failure_inside_its_window_and_only_there(records, truth):
    window = truth["service_outage"]
    everything = hours_of(records)
    assert sum(inside(window, h) for h in everything) == 2
    for h, recs in everything.items():
        rate = sum(map(is_error, recs)) / len(recs)
        if inside(window, h):
            assert rate > 0.35, (h, rate)
        elif len(recs) >= 40:
            assert rate < 0.05, (h, rate)
    failed = [r for r in records if inside(window, r["created"]) and is_error(r)]
    # every segment is hit
    for key in ("user_type", "category", "model"):
        hit = {r["metadata"].get(key, r["model"]) for r in failed}
        seen = {r["metadata"].get(key, r["model"]) for r in records}
        assert hit == seen, key
    quiet = [r for r in records if not any(inside(w, r["created"]) for w in truth.values())]
    assert sum(map(is_error, quiet)) / len(quiet) < 0.015


def test_a_prompt_variant_goes_wrong_inside_its_window_and_only_there(records, truth):
    window = truth["prompt_variant_regression"]
    v8 = [r for r in records if r["metadata"]["prompt_variant"] == "v8"]
    assert v8 and all(inside(window, r["created"]) for r in v8)
    in_window = [r for r in records if inside(window, r["created"])]
    assert 0.15 < len(v8) / len(in_window) < 0.45
    rest = [r for r in in_window if r["metadata"]["prompt_variant"] != "v8"]
    truncated = sum(finish(r) == "length" for r in v8) / len(v8)
    assert truncated > 0.2
    assert sum(finish(r) == "length" for r in rest) / len(rest) < 0.05
    assert statistics.mean(len(response(r)) for r in v8) > 2 * statistics.mean(
        len(response(r)) for r in rest
    )
    assert all(r["usage"]["completion_tokens"] == 1024 for r in v8 if finish(r) == "length")
    # the seed rubric does not see the problem: it scores the long guides higher
    assert statistics.mean(map(score, v8)) > statistics.mean(map(score, rest))
    # rolled back: conversations that were on v8 continue on v7 after the window
    ids = {r["metadata"]["conversation_id"] for r in v8}
    after = [
        r for r in records if r["metadata"]["conversation_id"] in ids and r["created"] >= window[1]
    ]
    assert all(r["metadata"]["prompt_variant"] == "v7" for r in after)
    # every hour of the window shows the shifted finish-reason mix, no other busy hour does
    shares = {
        h: sum(finish(r) == "length" for r in recs) / len(recs)
        for h, recs in hours_of(records).items()
        if len(recs) >= 100 or inside(window, h)
    }
    quiet = [v for h, v in shares.items() if not inside(window, h)]
    assert max(quiet) < 0.05
    assert all(v > 2 * statistics.mean(quiet) for h, v in shares.items() if inside(window, h))


def test_quiet_hours_hold_nothing_but_noise(records, truth):
    """Outside the windows every hour's numbers stay in a narrow band."""
    for h, recs in hours_of(records).items():
        if any(inside(w, h) for w in truth.values()) or len(recs) < 40:
            continue
        lengths = [len(response(r)) for r in recs if finish(r) != "tool_calls"]
        assert 700 < statistics.mean(lengths) < 1900, h
        assert 5.5 < statistics.mean(map(score, recs)) < 6.3, h
        assert sum(len(x) < 50 for x in map(response, recs)) / len(recs) < 0.15, h


def test_a_small_sample_has_the_incidents_too(tmp_path):
    summary = write_sample(tmp_path, n=600, hours=12, end=END)
    assert [i.kind for i in summary.incidents] == KINDS
    records = [json.loads(x) for f in summary.files for x in _lines(f)]
    v8 = summary.incidents[2]
    assert any(
        r["metadata"]["prompt_variant"] == "v8" for r in records if v8.contains(r["created"])
    )
    outage = summary.incidents[1]
    errors = [is_error(r) for r in records if outage.contains(r["created"])]
    assert sum(errors) / len(errors) > 0.3
    assert summary.counts["incident:service_outage"] == len(errors)


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode().splitlines()


# ---- bulk data for benchmarks ----------------------------------------------------------------


def test_write_bulk_streams_sorted_files_whatever_the_workers(tmp_path):
    paths = write_bulk(tmp_path / "a", 5003, files=3, seed=5, hours=100, end=END)
    assert [p.name for p in paths] == ["bulk-00000.jsonl", "bulk-00001.jsonl", "bulk-00002.jsonl"]
    ids = set()
    last = 0
    variants = set()
    for path in paths:
        created = []
        for line in _lines(path):
            rec = json.loads(line)
            created.append(rec["created"])
            ids.add(rec["id"])
            variants.add(rec["metadata"]["prompt_variant"])
        assert created == sorted(created) and created[0] >= last
        last = created[-1]
    assert len(ids) == 5003
    assert variants == {"v7", "v7-concise"}  # quiet traffic: no incident by default
    assert datetime.fromtimestamp(last, UTC).replace(minute=0, second=0) == END_HOUR
    parsed = parse_export_file(
        paths[1], source_file=paths[1].name, partition_start=datetime(2024, 10, 1, tzinfo=UTC)
    )
    assert parsed.rejected.height == 0
    single = write_bulk(tmp_path / "b", 5003, files=3, seed=5, hours=100, end=END, workers=1)
    assert [p.read_bytes() for p in single] == [p.read_bytes() for p in paths]
    packed = write_bulk(
        tmp_path / "c", 5003, files=3, seed=5, hours=100, end=END, compress=True, workers=1
    )
    assert [p.name for p in packed] == [f"bulk-0000{i}.jsonl.gz" for i in range(3)]
    assert [_lines(p) for p in packed] == [_lines(p) for p in paths]
    planted = write_bulk(tmp_path / "d", 5003, files=1, seed=5, hours=100, end=END, incidents=True)
    assert any(json.loads(x)["metadata"]["prompt_variant"] == "v8" for x in _lines(planted[0]))


def test_iter_sample_records_is_lazy():
    stream = iter_sample_records(n=10_000_000, hours=24 * 365, end=END)
    first = [next(stream) for _ in range(5)]
    assert [r["created"] for r in first] == sorted(r["created"] for r in first)
