"""The bundled sample (conv_pipeline_demo.sample): format, determinism, the end hour, the shape of
real traffic (lengths, distinct prompts, scripts, code, segments, rhythm), the planted incidents
in their windows and nowhere else, and the bulk writer for benchmarks."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conv_pipeline.cli import main as cli
from conv_pipeline.core.ingestion.parse import is_export_file, parse_export_file
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline_demo.sample import (
    DEFAULT_HOURS,
    DEFAULT_N,
    MAX_TOKENS,
    MODELS,
    SampleSummary,
    incidents,
    iter_sample_records,
    resolve_end,
    write_bulk,
    write_sample,
)
from conv_pipeline_demo.sample.compose import composer
from conv_pipeline_demo.sample.feedback import write_sample_feedback

END = "2026-12-02T14"  # a Wednesday 14:00 UTC: the sample clock then matches UTC
END_HOUR = datetime(2026, 12, 2, 14, tzinfo=UTC)
TOP_KEYS = {
    "id", "object", "created", "model", "choices", "usage", "metadata", "system_fingerprint",
    "service_tier", "request_id", "seed", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "tool_choice", "tools", "input_user", "messages",
}  # fmt: skip
META_KEYS = {
    "user_type", "category", "conversation_id", "pipeline_source", "prompt_variant", "timestamp",
    "turn", "locale", "app_version", "region", "ab_bucket",
}  # fmt: skip
SCRIPTS = {
    "cyrillic": r"[\u0400-\u04ff]",
    "han": r"[\u4e00-\u9fff]",
    "kana": r"[\u3040-\u30ff]",
    "arabic": r"[\u0600-\u06ff]",
    "devanagari": r"[\u0900-\u097f]",
    "latin accents": r"[áéíóúñäöüßàèçâêô]",
}
HELPFUL = ("step", "solution", "help", "recommend", "suggest", "guide")
COURTESY = ("please", "thank you", "happy to", "glad to help")
NEGATIVE = ("sorry, i cannot", "i don't know", "unable to help")


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def response(rec: dict) -> str:
    return rec["choices"][0]["message"]["content"] or ""


def finish(rec: dict) -> str:
    return rec["choices"][0]["finish_reason"]


def score(rec: dict) -> float:
    return calculate_quality_score({"response": response(rec)})


def hour_of(rec: dict) -> int:
    return rec["created"] // 3600 * 3600


def windows() -> dict[str, tuple[int, int]]:
    return {
        i.kind: (int(i.start.timestamp()), int(i.end.timestamp()))
        for i in incidents(hours=DEFAULT_HOURS, end=END)
    }


def in_any_window(rec: dict) -> bool:
    return any(lo <= rec["created"] < hi for lo, hi in windows().values())


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[SampleSummary, list[dict]]:
    out = tmp_path_factory.mktemp("sample")
    summary = write_sample(out, end=END)
    records = [json.loads(line) for f in summary.files for line in read_lines(f)]
    return summary, records


@pytest.fixture(scope="module")
def records(sample) -> list[dict]:
    return sample[1]


@pytest.fixture(scope="module")
def quiet(records) -> list[dict]:
    """The records outside every incident window."""
    return [r for r in records if not in_any_window(r)]


# ---- files, determinism, volume, the end hour ----------------------------------------------


def test_two_writes_are_byte_identical(tmp_path):
    a = write_sample(tmp_path / "a", n=3000, end=END)
    b = write_sample(tmp_path / "b", n=3000, end=END)
    assert [p.name for p in a.files] == [p.name for p in b.files]
    for pa, pb in zip([*a.files, a.incidents_file], [*b.files, b.incidents_file], strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert a.counts == b.counts
    c = write_sample(tmp_path / "c", n=3000, end=END, seed=8)
    assert c.files[0].read_bytes() != a.files[0].read_bytes()


# sha256 over each file's name and (decompressed) content: a change here changes the bundled
# sample (for a fixed end hour). Decompressed, so the zlib build does not matter.
PINNED = {
    "default": "f34015dba59df24234d6dbbb28433bed583767929fedb1437c773e131dad3730",
    "small": "e8626bd9b16e31241b5f5f98262a11ba9c59cff6ee7fea27b3e487d237e23b62",
    "feedback": "954bf1a2a3cbe1a33cda344dd6f7bf5f575590b02c3b44fc81a52d79de274dfc",
    "bulk": "cae1cf99a5a2ec12eb8b7efc8e87d660ba97a85a4de65195a431da3e04e5cc01",
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
    assert digest([*summary.files, summary.incidents_file]) == PINNED["default"]
    small = write_sample(tmp_path / "small", n=400, hours=12, seed=3, end=END)
    assert digest(small.files) == PINNED["small"]
    feedback = write_sample_feedback(tmp_path / "feedback", n=400, hours=12, seed=3, end=END)
    assert digest(feedback.files) == PINNED["feedback"]
    bulk = write_bulk(tmp_path / "bulk", 1200, files=2, seed=5, hours=30, end=END, workers=1)
    assert digest(bulk) == PINNED["bulk"]


def test_files_hold_exactly_the_generated_records_as_json_dumps_writes_them(sample):
    summary, _ = sample
    lines = [line for f in summary.files for line in read_lines(f)]
    expected = [json.dumps(r, ensure_ascii=False) for r in iter_sample_records(end=END)]
    assert lines == expected


def test_volume_span_and_one_file_per_day(sample, records):
    summary, _ = sample
    assert summary.records == len(records) == DEFAULT_N == 20_000
    assert summary.end == END_HOUR
    first_hour = END_HOUR - timedelta(hours=DEFAULT_HOURS - 1)
    days = [(first_hour + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(8)]
    assert [p.name for p in summary.files] == [
        *(f"completions-{d}.jsonl" for d in days[:-1]),
        f"completions-{days[-1]}.jsonl.gz",
    ]
    assert first_hour <= summary.first_created < first_hour + timedelta(hours=1)
    assert END_HOUR <= summary.last_created < END_HOUR + timedelta(hours=1)
    for path in summary.files:
        created = [json.loads(line)["created"] for line in read_lines(path)]
        assert created == sorted(created)
        days_in_file = {datetime.fromtimestamp(c, UTC).strftime("%Y-%m-%d") for c in created}
        assert days_in_file == {path.name.split("-", 1)[1][:10]}
    assert len({r["id"] for r in records}) == len(records)
    # every hour of the span has traffic
    assert len({hour_of(r) for r in records}) == DEFAULT_HOURS


def test_the_default_end_is_the_current_hour(tmp_path):
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    summary = write_sample(tmp_path, n=300, hours=6)
    after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert summary.end in (before, after)
    assert summary.end <= summary.last_created < summary.end + timedelta(hours=1)
    assert summary.first_created >= summary.end - timedelta(hours=5)
    assert resolve_end(None) in (before, after, after + timedelta(hours=1))


def strip_dates(rec: dict) -> dict:
    out = dict(rec, created=0, metadata={**rec["metadata"], "timestamp": ""})
    return out


def test_end_moves_only_the_dates(tmp_path):
    later = END_HOUR + timedelta(days=3, hours=5)  # not a whole number of days
    a = list(iter_sample_records(n=1500, hours=48, end=END))
    b = list(iter_sample_records(n=1500, hours=48, end=later))
    shift = int((later - END_HOUR).total_seconds())
    assert [r["created"] + shift for r in a] == [r["created"] for r in b]
    assert [strip_dates(r) for r in a] == [strip_dates(r) for r in b]
    assert all(
        datetime.fromisoformat(r["metadata"]["timestamp"]).timestamp() == r["created"] for r in b
    )
    ia, ib = incidents(hours=48, end=END), incidents(hours=48, end=later)
    assert [(i.kind, i.segment) for i in ia] == [(i.kind, i.segment) for i in ib]
    assert [i.start + (later - END_HOUR) for i in ia] == [i.start for i in ib]
    # the files move too: same records, other day files
    sa = write_sample(tmp_path / "a", n=1500, hours=48, end=END)
    sb = write_sample(tmp_path / "b", n=1500, hours=48, end=later)
    lines_a = [strip_dates(json.loads(x)) for f in sa.files for x in read_lines(f)]
    lines_b = [strip_dates(json.loads(x)) for f in sb.files for x in read_lines(f)]
    assert lines_a == lines_b
    assert sa.counts == sb.counts


def test_end_argument_forms_and_errors(tmp_path):
    assert resolve_end("2026-12-02T14") == END_HOUR
    assert resolve_end("2026-12-02T14:45") == END_HOUR
    assert resolve_end("2026-12-02 15:10+01:00") == END_HOUR
    assert resolve_end(datetime(2026, 12, 2, 14, 59, tzinfo=UTC)) == END_HOUR
    with pytest.raises(ValueError, match="timezone"):
        resolve_end(datetime(2026, 12, 2, 14))
    with pytest.raises(ValueError, match="2026-12-07T10"):
        resolve_end("yesterday")
    with pytest.raises(ValueError, match="hours"):
        list(iter_sample_records(n=10, hours=0))
    with pytest.raises(ValueError, match="n must be"):
        write_sample(tmp_path, n=-1)


def test_cli_sample_pins_the_end_and_prints_the_incidents(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "export"
    args = ["sample", "--out", str(out), "--n", "2000", "--hours", "48", "--end", END]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 2,000 stored completions (2026-11-30 15:" in printed
    assert f"ground truth in {out / 'incidents.json'}" in printed
    for inc in incidents(hours=48, end=END):
        assert f"{inc.start:%Y-%m-%d %H:%M} → {inc.end:%Y-%m-%d %H:%M} UTC" in printed
        assert inc.kind in printed
    truth = json.loads((out / "incidents.json").read_text())
    assert truth["incidents"] == [i.as_json() for i in incidents(hours=48, end=END)]
    assert (tmp_path / "data" / "feedback" / "sample-feedback.jsonl").is_file()
    assert cli.main(["sample", "--out", str(out), "--end", "soon"]) == 2
    assert "2026-12-07T10" in capsys.readouterr().err


def test_gz_file_is_readable_and_deterministic(sample):
    summary, _ = sample
    gz = summary.files[-1]
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    assert len(lines) > 500
    assert all(json.loads(line)["object"] == "chat.completion" for line in lines)


def test_only_own_files_are_touched_and_an_earlier_samples_files_go(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    foreign = tmp_path / "completions-2020-01-01.jsonl"  # not written by the sample
    foreign.write_text("{}\n")
    earlier = write_sample(tmp_path, n=500, hours=48, end=END_HOUR - timedelta(days=2))
    stale_twin = tmp_path / f"completions-{END[:10]}.jsonl"  # this sample's last day, other ext.
    stale_twin.write_text("{}\n")
    summary = write_sample(tmp_path, n=500, hours=48, end=END)
    assert other.read_text() == "keep me"
    assert foreign.read_text() == "{}\n"
    assert not stale_twin.exists() and summary.files[-1].name == stale_twin.name + ".gz"
    # the earlier sample's files that this one does not write again are gone (they hold its ids
    # at other dates)
    gone = {p.name for p in earlier.files} - {p.name for p in summary.files}
    assert len(gone) == 3 and not any((tmp_path / name).exists() for name in gone)
    assert summary.removed and {p.name for p in summary.removed} <= gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.txt", foreign.name, "incidents.json", *(p.name for p in summary.files)]
    )
    assert not is_export_file(summary.incidents_file)


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
        reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        assert reasoning == 0 or rec["model"].startswith("o4-mini")
        assert reasoning <= usage["completion_tokens"]
        # About four UTF-8 bytes per token, a few more per message, plus the tool definitions.
        size = sum(len((m["content"] or "").encode()) for m in rec["messages"])
        tools = len(json.dumps(rec["tools"])) // 4 if rec["tools"] else 0
        assert (
            size / 4 <= usage["prompt_tokens"] <= size / 4 + tools + 10 * len(rec["messages"]) + 400
        )
        if choice["finish_reason"] == "stop" and msg["content"]:
            assert (
                abs(usage["completion_tokens"] - reasoning - len(msg["content"].encode()) / 4) <= 2
            )
        if choice["finish_reason"] == "length":
            assert usage["completion_tokens"] in {*MAX_TOKENS.values(), 1024}
        assert (rec["tool_choice"] == "auto") == bool(rec["tools"])
        msgs = rec["messages"]
        assert msgs[0]["role"] == "system"
        assert msgs[-1]["role"] in {"user", "tool"}
        for i, m in enumerate(msgs):
            assert m["id"] == f"{rec['id']}-{i}"
            assert m["role"] in {"system", "user", "assistant", "tool"}
            assert m["name"] is None and m["content_parts"] is None
    assert set(models) == set(MODELS)


def test_metadata_holds_a_real_apps_segments_within_the_api_limits(records):
    seen = defaultdict(Counter)
    for rec in records:
        md = rec["metadata"]
        assert set(md) >= META_KEYS
        assert len(md) <= 16
        for k, v in md.items():
            assert isinstance(k, str) and isinstance(v, str)
            assert len(k) <= 64 and len(v) <= 512
            seen[k][v] += 1
        assert md["timestamp"] == datetime.fromtimestamp(rec["created"], UTC).isoformat()
        assert ("tenant_id" in md) == (md["user_type"] in ("team", "enterprise"))
    n = len(records)
    assert set(seen["user_type"]) == {"free", "plus", "team", "enterprise", "edu"}
    assert len(seen["category"]) == 8
    # the segment of the first incident is an eighth of the traffic
    assert 0.10 < seen["category"]["data_analysis"] / n < 0.15
    assert set(seen["prompt_variant"]) == {"v7", "v7-concise", "v8"}
    assert len(seen["pipeline_source"]) == 4 and len(seen["locale"]) >= 15
    assert seen["note"]  # odd values now and then: empty, JSON, padded, 512 characters
    assert "" in seen["note"] and "a" * 512 in seen["note"]


# ---- the traffic looks real ------------------------------------------------------------------


def test_answer_lengths_have_a_real_assistants_distribution(quiet):
    lengths = sorted(len(response(r)) for r in quiet if finish(r) != "tool_calls")
    n = len(lengths)
    mean, median = statistics.mean(lengths), statistics.median(lengths)
    assert 1100 <= mean <= 1350, mean
    assert 850 <= median <= 1050, median
    assert mean > median  # a long right tail
    assert lengths[int(0.99 * n)] > 4000
    assert lengths[-1] > 15_000  # up to tens of thousands of characters
    assert sum(x > 10_000 for x in lengths) >= 10
    assert 0.01 < sum(0 < x < 50 for x in lengths) / n < 0.06  # a few very short ones
    # per category, stable: code answers run longest, chit-chat shortest
    by_cat = defaultdict(list)
    for r in quiet:
        by_cat[r["metadata"]["category"]].append(len(response(r)))
    medians = {c: statistics.median(v) for c, v in by_cat.items()}
    assert max(medians, key=medians.get) == "coding"
    assert min(medians, key=medians.get) == "chitchat"


def test_every_prompt_is_distinct(records):
    first = [
        r["messages"][-1]["content"]
        for r in records
        if r["metadata"]["turn"] == "1" and r["messages"][-1]["role"] == "user"
    ]
    assert len(first) > 9000
    assert len(set(first)) == len(first)
    later = [
        r["messages"][-1]["content"]
        for r in records
        if r["metadata"]["turn"] != "1" and r["messages"][-1]["role"] == "user"
    ]
    assert len(set(later)) / len(later) > 0.8  # "continue" and the like do come back
    inputs = {tuple(m["content"] for m in r["messages"]) for r in records}
    assert len(inputs) == len(records)  # no two requests are the same
    # prompts have a long tail too: pasted code, text and tables
    sizes = sorted(len(p) for p in first)
    assert statistics.median(sizes) < 150 and sizes[int(0.99 * len(sizes))] > 500


def test_scripts_code_and_markdown(quiet):
    texts = [response(r) for r in quiet]
    n = len(texts)
    for script, pattern in SCRIPTS.items():
        hits = sum(bool(re.search(pattern, t)) for t in texts)
        assert hits >= 0.003 * n, script
    other = sum(not r["metadata"]["locale"].startswith("en") for r in quiet)
    assert 0.15 < other / n < 0.25
    fences = Counter(m for t in texts for m in re.findall(r"^```(\w+)$", t, re.M))
    assert len(fences) >= 8, fences
    assert 0.12 < sum("```" in t for t in texts) / n < 0.35
    assert sum(bool(re.search(r"^#{2,3} ", t, re.M)) for t in texts) > 0.2 * n
    assert sum(bool(re.search(r"^(- |\d+\. )", t, re.M)) for t in texts) > 0.3 * n
    assert sum(bool(re.search(r"^\|---", t, re.M)) for t in texts) > 0.01 * n


def test_the_rubrics_indicator_words_come_at_realistic_rates(quiet):
    lowered = [response(r).lower() for r in quiet if response(r)]
    n = len(lowered)
    assert 0.45 < sum(any(w in t for w in HELPFUL) for t in lowered) / n < 0.80
    assert 0.20 < sum(any(w in t for w in COURTESY) for t in lowered) / n < 0.50
    negative = sum(any(w in t for w in NEGATIVE) for t in lowered) / n
    assert 0.003 < negative < 0.03
    for phrase in NEGATIVE:
        assert any(phrase in t for t in lowered), phrase


def test_finish_reasons_tool_calls_refusals_and_empty_answers_at_normal_rates(quiet):
    n = len(quiet)
    reasons = Counter(finish(r) for r in quiet)
    assert reasons["stop"] > 0.95 * n
    assert 0.005 * n < reasons["length"] < 0.03 * n
    assert 0.001 * n < reasons["content_filter"] < 0.01 * n
    assert 0.005 * n < reasons["tool_calls"] < 0.03 * n
    refusals = [r for r in quiet if r["choices"][0]["message"]["refusal"]]
    assert 0.002 * n < len(refusals) < 0.015 * n
    for rec in refusals:
        assert rec["choices"][0]["message"]["content"] is None and finish(rec) == "stop"
    empty = [
        r
        for r in quiet
        if response(r) == "" and finish(r) == "stop" and not r["choices"][0]["message"]["refusal"]
    ]
    assert 0.001 * n < len(empty) < 0.01 * n
    for rec in quiet:
        if finish(rec) == "length":
            text = response(rec)
            cap = rec["usage"]["completion_tokens"]
            assert 0.75 * 4 * cap < len(text.encode()) <= 4 * cap  # cut near max_tokens
            assert text[-1] not in ".!?。"  # mid-sentence


def test_segments_differ_the_same_way_every_day(quiet):
    """Per-segment differences are stable: a baseline per segment makes sense."""
    days = defaultdict(lambda: defaultdict(list))
    for r in quiet:
        md = r["metadata"]
        days[r["created"] // 86400][md["category"]].append(len(response(r)))
    full_days = [d for d in days.values() if sum(map(len, d.values())) > 1500]
    assert len(full_days) >= 5
    for day in full_days:
        med = {c: statistics.median(v) for c, v in day.items()}
        assert med["coding"] > med["writing"] > med["translation"] > med["chitchat"]
    models = defaultdict(Counter)
    for r in quiet:
        models[r["metadata"]["user_type"]][r["model"]] += 1
    assert models["free"].most_common(1)[0][0] == "gpt-4o-mini-2024-07-18"
    assert models["enterprise"].most_common(1)[0][0] == "gpt-4.1-2025-04-14"


def test_daily_and_weekly_rhythm_with_noise(records):
    """With the end on a Wednesday 14:00 UTC the sample clock is UTC: quiet nights, quieter
    weekends, and no two weekdays' same hour alike."""
    by_hour = Counter(hour_of(r) for r in records)
    per_hour_of_day = defaultdict(list)
    weekday, weekend = [], []
    for h, k in by_hour.items():
        when = datetime.fromtimestamp(h, UTC)
        per_hour_of_day[when.hour].append(k)
        if 10 <= when.hour < 16:
            (weekend if when.weekday() >= 5 else weekday).append(k)
    night = statistics.mean(per_hour_of_day[3] + per_hour_of_day[4])
    afternoon = statistics.mean(per_hour_of_day[14] + per_hour_of_day[15])
    assert afternoon > 4 * night > 0
    assert statistics.mean(weekday) > 1.5 * statistics.mean(weekend)
    assert len(set(per_hour_of_day[14])) > 1  # noise


def by_conversation(records) -> dict[str, list[dict]]:
    convs = defaultdict(list)
    for rec in records:
        convs[rec["metadata"]["conversation_id"]].append(rec)
    return convs


def strip_ids(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "id"} for m in messages]


def test_tool_calls_and_their_follow_ups(records):
    calls = [r for r in records if finish(r) == "tool_calls"]
    assert 0.005 * len(records) <= len(calls) <= 0.05 * len(records)
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
    assert answered >= 0.8 * len(calls)


def test_multi_turn_conversations_carry_their_history(records):
    convs = by_conversation(records)
    sizes = Counter(len(v) for v in convs.values())
    assert sizes[1] > sizes[2] > sizes[3] > sizes[4] > 0 and max(sizes) >= 8
    checked = 0
    for turns in convs.values():
        for earlier, later in zip(turns, turns[1:], strict=False):
            assert earlier["created"] < later["created"]
            assert int(later["metadata"]["turn"]) == int(earlier["metadata"]["turn"]) + 1
            before = strip_ids(earlier["messages"])[1:]  # the system prompt may change
            after = strip_ids(later["messages"])[1:]
            assert after[: len(before)] == before
            nxt = after[len(before)]
            assert nxt["role"] == "assistant"
            assert nxt["content"] == earlier["choices"][0]["message"]["content"]
            checked += 1
    assert checked >= 2000
    with_history = sum(any(m["role"] == "assistant" for m in r["messages"]) for r in records)
    assert 0.25 < with_history / len(records) < 0.55


def test_summary_counts_match_the_files(sample, records):
    summary, _ = sample
    counts = summary.counts
    assert counts["tool_calls"] == sum(finish(r) == "tool_calls" for r in records)
    assert counts["length"] == sum(finish(r) == "length" for r in records)
    assert counts["refusal"] == sum(bool(r["choices"][0]["message"]["refusal"]) for r in records)
    assert counts["too_long"] == sum(len(response(r)) > 1000 for r in records)
    assert counts["too_short"] == sum(0 < len(response(r)) < 50 for r in records)
    assert counts["code"] == sum("```" in response(r) for r in records)
    assert counts["conversations"] == len(by_conversation(records))
    win = windows()
    lo, hi = win["prompt_variant_regression"]
    assert counts["incident:prompt_variant_regression"] == sum(
        r["metadata"]["prompt_variant"] == "v8" for r in records
    )
    lo, hi = win["segment_degradation"]
    assert counts["incident:segment_degradation"] == sum(
        lo <= r["created"] < hi and r["metadata"]["category"] == "data_analysis" for r in records
    )
    lo, hi = win["service_outage"]
    assert counts["incident:service_outage"] == sum(lo <= r["created"] < hi for r in records)


# ---- the pipeline reads it ---------------------------------------------------------------------


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


def test_no_placeholder_is_left_unfilled(records):
    names = set(composer().slots) | {"topic", "paste_code", "paste_text", "paste_csv", "phrase"}
    pattern = re.compile(r"\{(" + "|".join(sorted(names)) + r"|n|n2|small|small2|big|pct)\}")
    for rec in records:
        for text in (response(rec), *(m["content"] or "" for m in rec["messages"])):
            assert not pattern.search(text), text[:200]


def test_the_sample_feedback_refers_to_the_samples_completions(tmp_path):
    summary = write_sample(tmp_path / "export", n=3000, hours=48, end=END)
    fb = write_sample_feedback(tmp_path / "feedback", n=3000, hours=48, end=END)
    records = {r["id"]: r for f in summary.files for r in map(json.loads, read_lines(f))}
    rows = [json.loads(x) for x in read_lines(tmp_path / "feedback" / "sample-feedback.jsonl")]
    rated = [r for r in rows if r.get("completion_id") and r.get("thumbs") in ("up", "down")]
    assert len(rated) > 0.1 * len(records)
    assert all(r["completion_id"] in records for r in rated)
    assert fb.bad_rows == 3 and fb.duplicates == 2
    # thumbs follow the seed's score: more thumbs down on low-scoring answers
    low = [r for r in rated if score(records[r["completion_id"]]) < 6]
    high = [r for r in rated if score(records[r["completion_id"]]) >= 7]
    down = lambda rows: sum(r["thumbs"] == "down" for r in rows) / len(rows)  # noqa: E731
    assert down(low) > down(high) + 0.2
