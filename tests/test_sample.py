"""The bundled sample (conv_pipeline_demo.sample): format, determinism, variety, planted incident."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conv_pipeline.core.ingestion.parse import parse_export_file
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score, seed_length_issue
from conv_pipeline_demo.sample import (
    DEGRADED_SEGMENT,
    DEGRADED_WINDOW,
    MAX_TOKENS,
    SAMPLE_START,
    SampleSummary,
    degraded_window,
    iter_sample_records,
    write_bulk,
    write_sample,
)
from conv_pipeline_demo.sample.feedback import write_sample_feedback

TOP_KEYS = {
    "id", "object", "created", "model", "choices", "usage", "metadata", "system_fingerprint",
    "service_tier", "request_id", "seed", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "tool_choice", "tools", "input_user", "messages",
}  # fmt: skip
META_KEYS = {
    "user_type", "category", "conversation_id", "pipeline_source", "prompt_variant", "timestamp",
}  # fmt: skip
SCENARIOS = {
    "customer_support": "technical_issue",
    "sales_inquiry": "product_info",
    "onboarding": "getting_started",
    "billing_support": "account_management",
}


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def response(rec: dict) -> str:
    return rec["choices"][0]["message"]["content"] or ""


def score(rec: dict) -> float:
    return calculate_quality_score({"response": response(rec)})


def in_window(rec: dict) -> bool:
    lo, hi = DEGRADED_WINDOW
    return lo.timestamp() <= rec["created"] < hi.timestamp()


def in_segment(rec: dict) -> bool:
    return all(rec["metadata"][k] == v for k, v in DEGRADED_SEGMENT.items())


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[SampleSummary, list[dict]]:
    out = tmp_path_factory.mktemp("sample")
    summary = write_sample(out)
    records = [json.loads(line) for f in summary.files for line in read_lines(f)]
    return summary, records


@pytest.fixture(scope="module")
def records(sample) -> list[dict]:
    return sample[1]


# ---- files, determinism, volume ------------------------------------------------------------


def test_two_writes_are_byte_identical(tmp_path):
    a = write_sample(tmp_path / "a")
    b = write_sample(tmp_path / "b")
    assert [p.name for p in a.files] == [p.name for p in b.files]
    for pa, pb in zip(a.files, b.files, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert a.counts == b.counts
    c = write_sample(tmp_path / "c", seed=8)
    assert c.files[0].read_bytes() != a.files[0].read_bytes()


# sha256 over each file's name and (decompressed) content, recorded from the generator before its
# texts moved out of the code: a change here changes the bundled sample. Decompressed, so the zlib
# build does not matter.
PINNED = {
    "default": "d18e9a2919de72db724af0b63d50cf46b21ccc943675a17405c0fe1ce4f0a318",
    "small": "ab037ce250c5984e9fc11823e5b1be62b964871651e5a5a786d5c08710bb14bc",
    "feedback": "1e59de03545009356f5a1bb9db89ac0f7c6490310f0770929b14ea30d018eebd",
    "bulk": "aaea4923cf688669ef80310f9cc907ab580cf3d26da2ee12a0113141dfada300",
}


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        h.update(path.name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def test_output_is_pinned(sample, tmp_path):
    summary, _ = sample
    assert digest(summary.files) == PINNED["default"]
    small = write_sample(tmp_path / "small", n=400, hours=12, seed=3)
    assert digest(small.files) == PINNED["small"]
    feedback = write_sample_feedback(tmp_path / "feedback", n=400, hours=12, seed=3)
    assert digest(feedback.files) == PINNED["feedback"]
    bulk = write_bulk(tmp_path / "bulk", 1200, files=2, seed=5, hours=30)
    assert digest(bulk) == PINNED["bulk"]


def test_files_hold_exactly_the_generated_records_as_json_dumps_writes_them(sample):
    summary, _ = sample
    lines = [line for f in summary.files for line in read_lines(f)]
    expected = [json.dumps(r, ensure_ascii=False) for r in iter_sample_records()]
    assert lines == expected


def test_volume_span_and_one_file_per_day(sample, records):
    summary, _ = sample
    assert summary.records == len(records) == 3000
    assert [p.name for p in summary.files] == [
        "completions-2025-03-03.jsonl",
        "completions-2025-03-04.jsonl",
        "completions-2025-03-05.jsonl.gz",
    ]
    assert summary.last_created - summary.first_created >= timedelta(hours=48)
    assert summary.first_created >= SAMPLE_START
    assert summary.last_created < SAMPLE_START + timedelta(hours=72)
    for path in summary.files:
        created = [json.loads(line)["created"] for line in read_lines(path)]
        assert created == sorted(created)
        days = {datetime.fromtimestamp(c, UTC).strftime("%Y-%m-%d") for c in created}
        assert days == {path.name.split("-", 1)[1][:10]}
    assert len({r["id"] for r in records}) == len(records)


def test_day_night_traffic(records):
    by_hour = Counter(datetime.fromtimestamp(r["created"], UTC).hour for r in records)
    night = sum(by_hour[h] for h in (2, 3, 4, 5))
    afternoon = sum(by_hour[h] for h in (13, 14, 15, 16))
    assert afternoon > 2 * night > 0


def test_gz_file_is_readable_and_deterministic(sample):
    summary, _ = sample
    gz = summary.files[-1]
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    assert len(lines) > 500
    assert all(json.loads(line)["object"] == "chat.completion" for line in lines)


def test_smaller_sample_and_argument_checks(tmp_path):
    summary = write_sample(tmp_path, n=2000, hours=48, seed=3)
    assert summary.records == 2000
    assert summary.last_created - summary.first_created >= timedelta(hours=47)
    assert summary.degraded_window == DEGRADED_WINDOW
    assert summary.files[-1].name.endswith(".jsonl.gz")
    assert degraded_window(SAMPLE_START, 24) == (
        SAMPLE_START + timedelta(hours=10),
        SAMPLE_START + timedelta(hours=14),
    )
    with pytest.raises(ValueError, match="timezone"):
        write_sample(tmp_path, start=datetime(2025, 3, 3))
    with pytest.raises(ValueError, match="hours"):
        list(iter_sample_records(n=10, hours=0))


def test_only_own_files_are_touched(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    foreign = tmp_path / "other-export.jsonl"
    foreign.write_text("{}\n")
    stale_twin = tmp_path / "completions-2025-03-05.jsonl"  # same day, other extension
    stale_twin.write_text("{}\n")
    own = tmp_path / "completions-2025-03-03.jsonl"
    own.write_text("old\n")
    summary = write_sample(tmp_path)
    assert other.read_text() == "keep me"
    assert foreign.read_text() == "{}\n"
    assert not stale_twin.exists()
    assert own.read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.txt", "other-export.jsonl", *(p.name for p in summary.files)]
    )


# ---- the shape of every record ---------------------------------------------------------------


def test_every_record_has_the_stored_completion_shape(records):
    models = Counter()
    for rec in records:
        assert set(rec) == TOP_KEYS
        assert rec["object"] == "chat.completion"
        assert rec["id"].startswith("chatcmpl-")
        assert isinstance(rec["created"], int)
        models[rec["model"]] += 1
        assert rec["system_fingerprint"].startswith("fp_")
        (choice,) = rec["choices"]
        assert choice["index"] == 0 and choice["logprobs"] is None
        assert choice["finish_reason"] in {"stop", "length", "content_filter", "tool_calls"}
        msg = choice["message"]
        assert msg["role"] == "assistant" and msg["annotations"] == []
        assert msg["content"] is None or isinstance(msg["content"], str)
        assert ("tool_calls" in msg) == (choice["finish_reason"] == "tool_calls")
        usage = rec["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert usage["prompt_tokens_details"]["cached_tokens"] <= usage["prompt_tokens"]
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
        # About four characters per token, a few more per message.
        chars = sum(len(m["content"] or "") for m in rec["messages"])
        assert chars / 4 <= usage["prompt_tokens"] <= chars / 4 + 10 * len(rec["messages"]) + 400
        if choice["finish_reason"] == "stop" and msg["content"]:
            assert abs(usage["completion_tokens"] - len(msg["content"]) / 4) <= 2
        msgs = rec["messages"]
        assert msgs[0]["role"] == "system"
        assert msgs[-1]["role"] in {"user", "tool"}
        for i, m in enumerate(msgs):
            assert m["id"] == f"{rec['id']}-{i}"
            assert m["role"] in {"system", "user", "assistant", "tool"}
            assert m["name"] is None and m["content_parts"] is None
    assert set(models) == {"gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"}


def test_metadata_is_complete_and_within_the_api_limits(records):
    variants = Counter()
    for rec in records:
        md = rec["metadata"]
        assert set(md) >= META_KEYS
        assert len(md) <= 16
        for k, v in md.items():
            assert isinstance(k, str) and isinstance(v, str)
            assert len(k) <= 64 and len(v) <= 512
        assert SCENARIOS[md["user_type"]] == md["category"]
        assert md["pipeline_source"] == "sample"
        variants[md["prompt_variant"]] += 1
        assert md["timestamp"] == datetime.fromtimestamp(rec["created"], UTC).isoformat()
    assert set(variants) == {"v1", "v2"}
    assert {r["metadata"]["user_type"] for r in records} == set(SCENARIOS)


def test_prompts_and_answers_are_varied(records):
    firsts = defaultdict(set)
    answers = defaultdict(set)
    for rec in records:
        md = rec["metadata"]
        if md["turn"] == "1":
            firsts[md["user_type"]].add(rec["messages"][-1]["content"])
        answers[md["user_type"]].add(response(rec))
    for user_type in SCENARIOS:
        assert len(firsts[user_type]) >= 8, user_type
        assert len(answers[user_type]) >= 100, user_type
    # No answer dominates.
    top = Counter(response(r) for r in records if response(r)).most_common(1)[0][1]
    assert top < 0.03 * len(records)


# ---- the special shapes ----------------------------------------------------------------------


def by_conversation(records) -> dict[str, list[dict]]:
    convs = defaultdict(list)
    for rec in records:
        convs[rec["metadata"]["conversation_id"]].append(rec)
    return convs


def strip_ids(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "id"} for m in messages]


def test_tool_calls_and_their_follow_ups(records):
    calls = [r for r in records if r["choices"][0]["finish_reason"] == "tool_calls"]
    assert 0.01 * len(records) <= len(calls) <= 0.08 * len(records)
    by_id = {}
    for rec in calls:
        msg = rec["choices"][0]["message"]
        assert msg["content"] is None
        assert rec["tools"], "a completion that calls a tool was sent tools"
        names = {t["function"]["name"] for t in rec["tools"]}
        for call in msg["tool_calls"]:
            assert call["id"].startswith("call_") and call["type"] == "function"
            assert call["function"]["name"] in names
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
            by_id[call["id"]] = rec
    answered = 0
    for rec in records:
        msgs = rec["messages"]
        for i, m in enumerate(msgs):
            if m["role"] != "tool":
                continue
            prev = msgs[i - 1]
            assert prev["role"] == "assistant" and prev["content"] is None
            assert m["tool_call_id"] == prev["tool_calls"][0]["id"]
            json.loads(m["content"])
            caller = by_id[m["tool_call_id"]]
            assert caller["metadata"]["conversation_id"] == rec["metadata"]["conversation_id"]
            assert caller["created"] < rec["created"]
            if i == len(msgs) - 1:
                answered += 1
                assert rec["choices"][0]["finish_reason"] == "stop"
    assert answered >= 0.8 * len(calls)


def test_length_content_filter_and_refusals(records):
    n = len(records)
    length = [r for r in records if r["choices"][0]["finish_reason"] == "length"]
    assert 0.005 * n <= len(length) <= 0.03 * n
    for rec in length:
        text = response(rec)
        assert len(text) > 500 and text[-1] not in ".!?"  # cut mid-sentence
        assert rec["usage"]["completion_tokens"] == MAX_TOKENS
    filtered = [r for r in records if r["choices"][0]["finish_reason"] == "content_filter"]
    assert 0.005 * n <= len(filtered) <= 0.03 * n
    assert all(r["choices"][0]["message"]["content"] in (None, "") for r in filtered)
    refusals = [r for r in records if r["choices"][0]["message"]["refusal"]]
    healthy = [r for r in refusals if not (in_segment(r) and in_window(r))]
    assert 0.005 * n <= len(healthy) <= 0.03 * n
    for rec in refusals:
        assert rec["choices"][0]["message"]["content"] is None
        assert rec["choices"][0]["finish_reason"] == "stop"


def test_answer_lengths_and_unicode(records):
    texts = [response(r) for r in records]
    assert sum(0 < len(t) < 50 for t in texts) >= 30
    assert sum(len(t) > 1000 for t in texts) >= 15
    assert sum(500 < len(t) <= 1000 for t in texts) >= 50
    unicode = [t for t in texts if not t.isascii()]
    assert len(unicode) >= 20
    assert any(any("\u3040" <= ch <= "\u9fff" for ch in t) for t in unicode)  # CJK
    assert any(any(ord(ch) >= 0x1F300 for ch in t) for t in unicode)  # emoji
    lowered = [t.lower() for t in texts]
    for phrase in ("i don't know", "sorry, i cannot", "unable to help"):
        assert any(phrase in t for t in lowered), phrase
    # Plain answers: right length, none of the rubric's indicator words.
    words = ("step", "solution", "help", "recommend", "suggest", "guide", "please", "thank you")
    assert sum(50 <= len(t) <= 500 and not any(w in t for w in words) for t in lowered) >= 30


def test_multi_turn_conversations_carry_their_history(records):
    convs = by_conversation(records)
    sizes = Counter(len(v) for v in convs.values())
    assert sizes[1] > sizes[2] > sizes[3] > 0 and sizes[4] > 0
    assert max(sizes) <= 4
    checked = 0
    for turns in convs.values():
        if len(turns) < 2:
            continue
        for earlier, later in zip(turns, turns[1:], strict=False):
            assert earlier["created"] < later["created"]
            assert int(later["metadata"]["turn"]) == int(earlier["metadata"]["turn"]) + 1
            before = strip_ids(earlier["messages"])[1:]  # the system prompt may change
            after = strip_ids(later["messages"])[1:]
            assert after[: len(before)] == before
            nxt = after[len(before)]
            assert nxt["role"] == "assistant"
            assert nxt["content"] == earlier["choices"][0]["message"]["content"]
            assert len(after) > len(before)
            checked += 1
        roles = [m["role"] for m in turns[-1]["messages"] if m["role"] in ("user", "assistant")]
        assert roles[0] == "user" and roles[-1] in ("user", "assistant")
    assert checked >= 100


def test_summary_counts_match_the_files(sample, records):
    summary, _ = sample
    counts = summary.counts
    assert counts["tool_calls"] == sum(
        r["choices"][0]["finish_reason"] == "tool_calls" for r in records
    )
    assert counts["length"] == sum(r["choices"][0]["finish_reason"] == "length" for r in records)
    assert counts["refusal"] == sum(bool(r["choices"][0]["message"]["refusal"]) for r in records)
    assert counts["too_long"] == sum(len(response(r)) > 1000 for r in records)
    assert counts["too_short"] == sum(0 < len(response(r)) < 50 for r in records)
    assert counts["unicode"] == sum(not response(r).isascii() for r in records)
    assert counts["conversations"] == len(by_conversation(records))
    assert counts["degraded"] == sum(in_segment(r) and in_window(r) for r in records)
    assert counts["multi_turn"] > 0 and counts["content_filter"] > 0
    assert summary.degraded_segment == DEGRADED_SEGMENT
    assert summary.degraded_window == DEGRADED_WINDOW


# ---- the pipeline reads it, and the planted incident is there ---------------------------------


def test_ingest_parses_every_line_without_rejections(sample):
    summary, records = sample
    total = 0
    for path in summary.files:
        parsed = parse_export_file(
            path, source_file=path.name, partition_start=datetime(2024, 10, 1, tzinfo=UTC)
        )
        assert parsed.rejected.height == 0, parsed.rejected.to_dicts()[:3]
        assert parsed.records.height == len(read_lines(path))
        total += parsed.records.height
    assert total == len(records)


def test_degraded_segment_degrades_only_inside_its_window(records):
    assert (
        SAMPLE_START + timedelta(hours=30),
        SAMPLE_START + timedelta(hours=42),
    ) == DEGRADED_WINDOW
    inside = [r for r in records if in_segment(r) and in_window(r)]
    outside = [r for r in records if in_segment(r) and not in_window(r)]
    assert len(inside) >= 150 and len(outside) >= 150
    mean_in = sum(map(score, inside)) / len(inside)
    mean_out = sum(map(score, outside)) / len(outside)
    assert mean_in < 5.5 < 6.0 < mean_out
    issues_in = sum(seed_length_issue(response(r)) is not None for r in inside) / len(inside)
    assert issues_in > 0.5  # the recipe alerts above 0.15
    # The segment takes a large share of the window's traffic, so whole hours drop too.
    window_share = len(inside) / sum(in_window(r) for r in records)
    assert window_share > 0.3


def test_every_hour_outside_the_window_is_healthy(records):
    hours = defaultdict(list)
    for rec in records:
        hours[rec["created"] // 3600 * 3600].append(score(rec))
    lo, hi = (int(t.timestamp()) for t in DEGRADED_WINDOW)
    outside = {h: sum(v) / len(v) for h, v in hours.items() if not lo <= h < hi}
    inside = {h: sum(v) / len(v) for h, v in hours.items() if lo <= h < hi}
    assert len(outside) == 60 and len(inside) == 12
    assert min(outside.values()) > 6.0
    mean_outside = sum(outside.values()) / len(outside)
    mean_inside = sum(inside.values()) / len(inside)
    assert mean_inside < mean_outside - 0.7
    assert sum(v < 6.0 for v in inside.values()) >= 6
    # Healthy traffic: most answers are 50–500 characters.
    healthy = [r for r in records if not in_window(r)]
    assert sum(50 <= len(response(r)) <= 500 for r in healthy) > 0.7 * len(healthy)


# ---- bulk data for benchmarks ----------------------------------------------------------------


def test_write_bulk_streams_sorted_plain_files(tmp_path):
    paths = write_bulk(tmp_path, 5003, files=3, seed=5, hours=100)
    assert [p.name for p in paths] == ["bulk-00000.jsonl", "bulk-00001.jsonl", "bulk-00002.jsonl"]
    ids = set()
    last = 0
    for path in paths:
        created = []
        for line in read_lines(path):
            rec = json.loads(line)
            created.append(rec["created"])
            ids.add(rec["id"])
        assert created == sorted(created) and created[0] >= last
        last = created[-1]
    assert len(ids) == 5003
    parsed = parse_export_file(
        paths[1], source_file=paths[1].name, partition_start=datetime(2024, 10, 1, tzinfo=UTC)
    )
    assert parsed.rejected.height == 0
    assert write_bulk(tmp_path / "again", 5003, files=3, seed=5, hours=100)[2].read_bytes() == (
        paths[2].read_bytes()
    )


def test_iter_sample_records_is_lazy():
    stream = iter_sample_records(n=10_000_000, hours=24 * 365)
    first = [next(stream) for _ in range(5)]
    assert [r["created"] for r in first] == sorted(r["created"] for r in first)
