"""``conv_pipeline.core.ingestion.parse.parse_export_file`` on hand-written export files.

Every line of a file ends up either as a ``raw_completions`` row or as a ``rejected_records`` row
that names the file, the line and the problem; one bad record never loses the rest of the file.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from conv_pipeline.core.ingestion import parse as ingest
from conv_pipeline.core.ingestion.parse import ParsedFile, parse_export_file
from conv_pipeline.core.schema import RAW_COMPLETIONS, REJECTED_RECORDS

PARTITION_START = datetime(2024, 10, 1, tzinfo=UTC)
START_S = int(PARTITION_START.timestamp())  # 1727740800
# 2024-10-01 13:20:34 UTC
CREATED = START_S + 13 * 3600 + 20 * 60 + 34
HOUR_KEY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}:00$")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def completion(cid: str = "chatcmpl-AbC123", created: int | float = CREATED, **overrides) -> dict:
    """A stored completion as GET /chat/completions/{id} returns it, plus "messages"."""
    record = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-2024-08-06",
        "request_id": f"req-{cid}",
        "seed": 42,
        "service_tier": "default",
        "system_fingerprint": "fp_50cad350e4",
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": None,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": f"Here is the step you need for {cid}. Please try it.",
                    "refusal": None,
                    "tool_calls": None,
                },
            }
        ],
        "usage": {
            "prompt_tokens": 42,
            "completion_tokens": 17,
            "total_tokens": 59,
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "metadata": {
            "user_type": "premium",
            "category": "billing",
            "conversation_id": "conv-00042",
            "prompt_variant": "v2",
        },
        "messages": [
            {"id": f"{cid}-0", "role": "system", "content": "You are a helpful billing agent."},
            {"id": f"{cid}-1", "role": "user", "content": "My invoice is wrong."},
        ],
    }
    record.update(overrides)
    return record


def line(record: dict | list | str | int | None) -> str:
    return json.dumps(record)


def write(
    path: Path, lines: list[str | bytes], *, newline: bytes = b"\n", end: bool = True
) -> Path:
    data = newline.join(x.encode("utf-8") if isinstance(x, str) else x for x in lines)
    if end and lines:
        data += newline
    path.write_bytes(data)
    return path


def parse(path: Path, source_file: str | None = None) -> ParsedFile:
    return parse_export_file(
        path, source_file=source_file or path.name, partition_start=PARTITION_START
    )


def assert_schemas(parsed: ParsedFile) -> None:
    assert parsed.records.schema == pl.Schema(RAW_COMPLETIONS)
    assert parsed.rejected.schema == pl.Schema(REJECTED_RECORDS)


def good_ids(n: int, prefix: str = "chatcmpl-good") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


# ---------------------------------------------------------------------------------------------
# a valid, realistic record
# ---------------------------------------------------------------------------------------------


def test_valid_realistic_record_extracts_every_column(tmp_path: Path) -> None:
    tool_calls = [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "lookup_invoice", "arguments": '{"month": "2024-10"}'},
        }
    ]
    messages = [
        {"id": "m0", "role": "system", "content": "You are a helpful billing agent."},
        {"id": "m1", "role": "user", "content": "My invoice is wrong."},
        {"id": "m2", "role": "assistant", "content": "Which invoice do you mean?"},
        {"id": "m3", "role": "user", "content": "The October one, thank you."},
    ]
    metadata = {
        "user_type": "premium",
        "category": "billing",
        "conversation_id": "conv-00042",
        "prompt_variant": "v2",
        "pipeline_source": "unit-test",
        "region": "eu",
    }
    record = completion(
        metadata=metadata,
        messages=messages,
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "Let me look that up for you – one moment. 📄",
                    "refusal": None,
                    "tool_calls": tool_calls,
                },
            }
        ],
    )
    path = write(tmp_path / "export-01.jsonl", [line(record)])
    parsed = parse(path, source_file="2024/export-01.jsonl")
    assert_schemas(parsed)
    assert parsed.rejected.height == 0
    assert parsed.records.height == 1
    row = parsed.records.row(0, named=True)

    assert row["completion_id"] == "chatcmpl-AbC123"
    assert row["created"] == CREATED
    assert row["created_at"] == datetime(2024, 10, 1, 13, 20, 34, tzinfo=UTC)
    assert row["partition_key"] == "2024-10-01-13:00"
    assert HOUR_KEY_RE.match(row["partition_key"])
    assert row["model"] == "gpt-4o-2024-08-06"
    assert json.loads(row["metadata"]) == metadata
    assert row["user_type"] == "premium"
    assert row["category"] == "billing"
    assert row["conversation_id"] == "conv-00042"
    assert row["prompt_variant"] == "v2"
    assert row["pipeline_source"] == "unit-test"
    assert json.loads(row["messages"]) == messages
    assert row["n_messages"] == 4
    assert row["last_user_message"] == "The October one, thank you."
    assert row["response"] == "Let me look that up for you – one moment. 📄"
    assert row["response_is_null"] is False
    assert row["finish_reason"] == "tool_calls"
    assert row["refusal"] is None
    assert json.loads(row["tool_calls"]) == tool_calls
    assert row["n_tool_calls"] == 1
    assert row["n_choices"] == 1
    assert row["prompt_tokens"] == 42
    assert row["completion_tokens"] == 17
    assert row["total_tokens"] == 59
    assert json.loads(row["usage"])["total_tokens"] == 59
    assert row["ingest_note"] is None
    assert row["source_file"] == "2024/export-01.jsonl"
    assert row["source_line"] == 1
    assert parsed.records["created_at"].dtype == pl.Datetime("us", "UTC")


def test_system_prompt_column_is_filled_from_the_system_message(tmp_path: Path) -> None:
    """``raw_completions.system_prompt`` is part of the schema; the export carries the system
    message in ``messages``, so the column should hold its content, not stay null."""
    path = write(tmp_path / "a.jsonl", [line(completion())])
    row = parse(path).records.row(0, named=True)
    assert row["system_prompt"] == "You are a helpful billing agent."


def test_refusal_and_multiple_choices(tmp_path: Path) -> None:
    record = completion(
        choices=[
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
            },
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "b"}},
        ]
    )
    row = parse(write(tmp_path / "a.jsonl", [line(record)])).records.row(0, named=True)
    assert row["refusal"] == "I can't help."
    assert row["response"] == ""
    assert row["response_is_null"] is True
    assert row["n_choices"] == 2
    assert row["n_tool_calls"] == 0
    assert row["tool_calls"] is None


def test_partition_keys_follow_created_hour(tmp_path: Path) -> None:
    createds = [
        START_S,
        START_S + 3599,
        START_S + 3600,
        START_S + 23 * 3600 + 3599,
        START_S + 86400,
    ]
    lines = [line(completion(f"c{i}", created=c)) for i, c in enumerate(createds)]
    parsed = parse(write(tmp_path / "a.jsonl", lines))
    assert parsed.rejected.height == 0
    assert parsed.records["partition_key"].to_list() == [
        "2024-10-01-00:00",
        "2024-10-01-00:00",
        "2024-10-01-01:00",
        "2024-10-01-23:00",
        "2024-10-02-00:00",
    ]


def test_integral_float_created_is_accepted(tmp_path: Path) -> None:
    parsed = parse(
        write(
            tmp_path / "a.jsonl",
            [
                line(completion("a", created=float(CREATED))),
                line(completion("b", created=1.7277804e9)),
            ],
        )
    )
    assert parsed.rejected.height == 0
    assert parsed.records["created"].to_list() == [CREATED, 1727780400]


def test_created_exactly_at_partition_start_is_kept_one_second_before_is_rejected(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "a.jsonl",
        [line(completion("at", created=START_S)), line(completion("before", created=START_S - 1))],
    )
    parsed = parse(path)
    assert parsed.records["completion_id"].to_list() == ["at"]
    assert parsed.rejected["source_line"].to_list() == [2]
    assert "before the first partition" in parsed.rejected["reason"][0]
    assert parsed.rejected["completion_id"][0] == "before"


# ---------------------------------------------------------------------------------------------
# one bad line among good ones
# ---------------------------------------------------------------------------------------------


def _without(key: str) -> dict:
    record = completion("chatcmpl-bad")
    del record[key]
    return record


BAD_LINES: dict[str, tuple[str | bytes, list[str], str | None]] = {
    # name: (the bad line, substrings the reason must contain, completion id in the rejected row)
    "malformed_json": (
        '{"id": "chatcmpl-bad", "created": 1727780400, oops}',
        ["malformed JSON"],
        None,
    ),
    "unclosed_object": ('{"id": "chatcmpl-bad", "created": 17277', ["malformed JSON"], None),
    "raw_control_character": (
        '{"id": "chatcmpl-bad", "created": 1727780400, "x": "a\tb"}',
        ["malformed JSON"],
        None,
    ),
    "trailing_garbage": (line(completion("chatcmpl-bad")) + " xyz", ["malformed JSON"], None),
    "deeply_nested": ("[" * 100_000, ["malformed JSON"], None),
    "missing_id": (line(_without("id")), ['missing field "id"'], None),
    "null_id": (line(completion(None)), ['"id"'], None),  # type: ignore[arg-type]
    "numeric_id": (line(completion(12345)), ['"id" must be a string', "number"], None),  # type: ignore[arg-type]
    "object_id": (line(completion({"a": 1})), ['"id" must be a string', "object"], None),  # type: ignore[arg-type]
    "empty_id": (line(completion("  ")), ['"id" is empty'], None),
    "missing_created": (line(_without("created")), ['missing field "created"'], "chatcmpl-bad"),
    "string_created": (
        line(completion("chatcmpl-bad", created="2024-10-01T13:00:00Z")),  # type: ignore[arg-type]
        ['"created" must be a number', "string"],
        "chatcmpl-bad",
    ),
    "boolean_created": (
        line(completion("chatcmpl-bad", created=True)),
        ['"created" must be a number', "boolean"],
        "chatcmpl-bad",
    ),
    "milliseconds_created": (
        line(completion("chatcmpl-bad", created=CREATED * 1000)),
        ['"created"', "milliseconds"],
        "chatcmpl-bad",
    ),
    "negative_created": (
        line(completion("chatcmpl-bad", created=-5)),
        ['"created"', "out of range"],
        "chatcmpl-bad",
    ),
    "created_before_partition_start": (
        line(completion("chatcmpl-bad", created=START_S - 86400)),
        ["created before the first partition", "2024-10-01"],
        "chatcmpl-bad",
    ),
    "created_beyond_int64": (
        line(completion("chatcmpl-bad", created=10**19)),
        ['"created"', "out of range"],
        "chatcmpl-bad",
    ),
    "created_huge_float": (
        line(completion("chatcmpl-bad", created=1e300)),
        ['"created"', "out of range"],
        "chatcmpl-bad",
    ),
    "choices_object": (
        line(completion("chatcmpl-bad", choices={"index": 0})),
        ['"choices" must be an array', "object"],
        "chatcmpl-bad",
    ),
    "choices_string": (
        line(completion("chatcmpl-bad", choices="stop")),
        ['"choices" must be an array', "string"],
        "chatcmpl-bad",
    ),
    "choice_not_object": (
        line(completion("chatcmpl-bad", choices=[42])),
        ['"choices[0]" must be an object'],
        "chatcmpl-bad",
    ),
    "content_number": (
        line(completion("chatcmpl-bad", choices=[{"message": {"content": 42}}])),
        ['"choices[0].message.content"', "number"],
        "chatcmpl-bad",
    ),
    "content_object": (
        line(completion("chatcmpl-bad", choices=[{"message": {"content": {"text": "x"}}}])),
        ['"choices[0].message.content"', "object"],
        "chatcmpl-bad",
    ),
    "metadata_list": (
        line(completion("chatcmpl-bad", metadata=[{"user_type": "free"}])),
        ['"metadata" must be an object', "array"],
        "chatcmpl-bad",
    ),
    "metadata_string": (
        line(completion("chatcmpl-bad", metadata="user_type=free")),
        ['"metadata" must be an object', "string"],
        "chatcmpl-bad",
    ),
    "top_level_array": (line([completion("chatcmpl-bad")]), ["not a JSON object", "array"], None),
    "top_level_string": (line("chatcmpl-bad"), ["not a JSON object"], None),
    "top_level_number": ("1727780400", ["not a JSON object"], None),
    "top_level_null": ("null", ["not a JSON object"], None),
    "invalid_utf8": (
        b'{"id": "chatcmpl-bad", "created": 1727780400, "choices": [{"message": {"content": "caf\xe9 \xff"}}]}',
        ["invalid UTF-8"],
        None,
    ),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_bad_line_is_rejected_and_the_rest_is_kept(tmp_path: Path, name: str) -> None:
    bad, reason_parts, bad_id = BAD_LINES[name]
    ids = good_ids(4)
    lines: list[str | bytes] = [
        line(completion(ids[0])),
        line(completion(ids[1])),
        bad,
        line(completion(ids[2])),
        line(completion(ids[3])),
    ]
    path = write(tmp_path / f"{name}.jsonl", lines)
    parsed = parse(path, source_file=f"exports/{name}.jsonl")
    assert_schemas(parsed)

    assert parsed.records["completion_id"].to_list() == ids
    assert parsed.records["source_line"].to_list() == [1, 2, 4, 5]
    assert set(parsed.records["source_file"].to_list()) == {f"exports/{name}.jsonl"}

    assert parsed.rejected.height == 1, parsed.rejected.to_dicts()
    rej = parsed.rejected.row(0, named=True)
    assert rej["source_file"] == f"exports/{name}.jsonl"
    assert rej["source_line"] == 3
    for part in reason_parts:
        assert part in rej["reason"], (part, rej["reason"])
    if bad_id is not None:
        assert rej["completion_id"] == bad_id
    assert rej["raw_excerpt"]  # something to look at
    assert len(rej["raw_excerpt"]) <= ingest.EXCERPT_CHARS


def test_every_kind_of_bad_line_in_one_file(tmp_path: Path) -> None:
    """All the bad lines interleaved with good ones: each bad one reported at its line, no good
    one lost."""
    lines: list[str | bytes] = []
    expected_good: list[tuple[str, int]] = []
    expected_bad: dict[int, list[str]] = {}
    # The two "created" values beyond int64 have their own tests (they currently make the whole
    # file fail); this test covers every other kind together.
    kinds = [
        v for k, v in BAD_LINES.items() if k not in {"created_beyond_int64", "created_huge_float"}
    ]
    for i, (bad, reason_parts, _) in enumerate(kinds):
        cid = f"chatcmpl-good-{i}"
        lines.append(line(completion(cid, created=CREATED + i)))
        expected_good.append((cid, len(lines)))
        lines.append(bad)
        expected_bad[len(lines)] = reason_parts
    lines.append(line(completion("chatcmpl-last", created=CREATED)))
    expected_good.append(("chatcmpl-last", len(lines)))

    parsed = parse(write(tmp_path / "mixed.jsonl", lines))
    assert_schemas(parsed)
    got_good = list(parsed.records.select("completion_id", "source_line").iter_rows())
    assert sorted(got_good, key=lambda r: r[1]) == expected_good
    got_bad = {r["source_line"]: r["reason"] for r in parsed.rejected.iter_rows(named=True)}
    assert sorted(got_bad) == sorted(expected_bad)
    for line_no, parts in expected_bad.items():
        for part in parts:
            assert part in got_bad[line_no], (line_no, part, got_bad[line_no])
    assert set(parsed.rejected["source_file"].to_list()) == {"mixed.jsonl"}


def test_bad_lines_across_chunk_boundaries_keep_exact_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CHUNK_LINES", 3)
    lines: list[str | bytes] = []
    for i in range(20):
        if i % 4 == 1:
            lines.append("{broken")
        elif i % 7 == 3:
            lines.append("")
        else:
            lines.append(line(completion(f"c{i:02d}", created=CREATED + i)))
    parsed = parse(write(tmp_path / "chunks.jsonl", lines))
    want_good = [(f"c{i:02d}", i + 1) for i in range(20) if i % 4 != 1 and i % 7 != 3]
    assert list(parsed.records.select("completion_id", "source_line").iter_rows()) == want_good
    assert parsed.rejected["source_line"].to_list() == [i + 1 for i in range(20) if i % 4 == 1]


def test_truncated_last_line_is_rejected_and_the_rest_kept(tmp_path: Path) -> None:
    ids = good_ids(3)
    full = line(completion("chatcmpl-cut"))
    lines = [line(completion(c)) for c in ids] + [full[: len(full) // 2]]
    path = write(tmp_path / "cut.jsonl", lines, end=False)  # the file stops mid-record
    parsed = parse(path)
    assert parsed.records["completion_id"].to_list() == ids
    assert parsed.rejected.height == 1
    rej = parsed.rejected.row(0, named=True)
    assert rej["source_file"] == "cut.jsonl"
    assert rej["source_line"] == 4
    assert "malformed JSON" in rej["reason"] or "truncated" in rej["reason"]
    assert rej["raw_excerpt"] == full[: len(full) // 2][: ingest.EXCERPT_CHARS]


def test_json_error_reason_reads_well(tmp_path: Path) -> None:
    """Python's JSONDecodeError messages such as "Unterminated string starting at" must not turn
    into "... starting at at column 15"."""
    parsed = parse(write(tmp_path / "a.jsonl", ['{"id":"trunc","crea'], end=False))
    reason = parsed.rejected["reason"][0]
    assert "malformed JSON" in reason
    assert " at at " not in reason


def test_raw_excerpt_is_bounded(tmp_path: Path) -> None:
    bad = line(completion("chatcmpl-big", metadata=["x" * 5000]))
    parsed = parse(write(tmp_path / "a.jsonl", [bad]))
    excerpt = parsed.rejected["raw_excerpt"][0]
    assert excerpt == bad[: ingest.EXCERPT_CHARS]


# ---------------------------------------------------------------------------------------------
# files that are empty, blank, or encoded differently
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n", b"   \n\t\n  \r\n", b"  "])
def test_empty_or_whitespace_file_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    parsed = parse(path)
    assert_schemas(parsed)
    assert parsed.records.height == 0
    assert parsed.rejected.height == 1
    rej = parsed.rejected.row(0, named=True)
    assert rej["source_file"] == "empty.jsonl"
    assert rej["source_line"] is None
    assert "empty" in rej["reason"]


def test_blank_lines_are_not_rejected_and_line_numbers_stay_exact(tmp_path: Path) -> None:
    lines = [
        "",
        line(completion("a")),
        "",
        "   ",
        "\t",
        line(completion("b")),
        "",
        line(completion("c")),
    ]
    parsed = parse(write(tmp_path / "blank.jsonl", lines))
    assert parsed.rejected.height == 0
    assert list(parsed.records.select("completion_id", "source_line").iter_rows()) == [
        ("a", 2),
        ("b", 6),
        ("c", 8),
    ]
    assert parsed.blank_lines == 5


def test_line_count_matches_the_file(tmp_path: Path) -> None:
    """``ParsedFile.lines`` is the number of lines in the file (the newline that ends the last
    record does not start another line)."""
    parsed = parse(write(tmp_path / "a.jsonl", [line(completion("a")), "", line(completion("b"))]))
    assert parsed.lines == 3
    assert parsed.blank_lines == 1
    parsed = parse(write(tmp_path / "b.jsonl", [line(completion("a"))], end=False))
    assert parsed.lines == 1


def test_crlf_line_endings(tmp_path: Path) -> None:
    text = "Line one.\r\nLine two."  # an escaped CRLF inside the content must survive
    lines = [
        line(completion("a")),
        line(completion("b", choices=[{"message": {"content": text}, "finish_reason": "stop"}])),
        "",
        line(completion("c")),
    ]
    parsed = parse(write(tmp_path / "crlf.jsonl", lines, newline=b"\r\n"))
    assert parsed.rejected.height == 0
    assert list(parsed.records.select("completion_id", "source_line").iter_rows()) == [
        ("a", 1),
        ("b", 2),
        ("c", 4),
    ]
    assert parsed.records["response"][1] == text
    assert not any(r.endswith("\r") for r in parsed.records["response"].to_list())


def test_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + (line(completion("first")) + "\r\n" + line(completion("second")) + "\r\n").encode()
    )
    parsed = parse(path)
    assert parsed.rejected.height == 0
    assert parsed.records["completion_id"].to_list() == ["first", "second"]
    assert parsed.records["source_line"].to_list() == [1, 2]


def test_invalid_utf8_with_crlf_and_bom_keeps_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + line(completion("a")).encode()
        + b"\r\n"
        + b'{"id": "bad", "created": 1727780400, "model": "\xc3\x28"}\r\n'
        + b"\r\n"
        + line(completion("b")).encode()
        + b"\r\n"
    )
    parsed = parse(path)
    assert list(parsed.records.select("completion_id", "source_line").iter_rows()) == [
        ("a", 1),
        ("b", 4),
    ]
    assert parsed.rejected["source_line"].to_list() == [2]
    assert "invalid UTF-8" in parsed.rejected["reason"][0]


def test_gzip_file(tmp_path: Path) -> None:
    ids = good_ids(5)
    data = "".join(line(completion(c, created=CREATED + i)) + "\n" for i, c in enumerate(ids))
    gz = tmp_path / "export.jsonl.gz"
    gz.write_bytes(gzip.compress(data.encode()))
    plain = tmp_path / "export.jsonl"
    plain.write_text(data)
    parsed_gz = parse(gz)
    parsed_plain = parse(plain, source_file="export.jsonl.gz")
    assert parsed_gz.rejected.height == 0
    assert parsed_gz.records["completion_id"].to_list() == ids
    assert parsed_gz.records.equals(parsed_plain.records)


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    first = (line(completion("a")) + "\n").encode()
    second = (line(completion("b")) + "\n").encode()
    gz = tmp_path / "multi.jsonl.gz"
    gz.write_bytes(gzip.compress(first) + gzip.compress(second))
    parsed = parse(gz)
    assert parsed.rejected.height == 0
    assert parsed.records["completion_id"].to_list() == ["a", "b"]
    assert parsed.records["source_line"].to_list() == [1, 2]


def test_truncated_gzip_keeps_complete_lines_and_reports_truncation(tmp_path: Path) -> None:
    records = [
        completion(
            f"chatcmpl-{i:04d}",
            created=CREATED + i,
            choices=[{"message": {"content": f"{i} " + "x" * 300}}],
        )
        for i in range(300)
    ]
    data = "".join(line(r) + "\n" for r in records).encode()
    blob = gzip.compress(data)
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(blob[: len(blob) // 2])
    parsed = parse(gz)
    assert_schemas(parsed)

    kept = parsed.records["completion_id"].to_list()
    assert 0 < len(kept) < len(records)
    # complete lines only, in order, each exactly as written
    assert kept == [r["id"] for r in records[: len(kept)]]
    assert parsed.records["source_line"].to_list() == list(range(1, len(kept) + 1))
    assert parsed.records["response"].to_list() == [
        r["choices"][0]["message"]["content"] for r in records[: len(kept)]
    ]
    file_level = parsed.rejected.filter(pl.col("source_line").is_null())
    assert file_level.height == 1
    assert "truncated" in file_level["reason"][0]
    assert file_level["source_file"][0] == "cut.jsonl.gz"
    # at most the one partial line after the kept ones is rejected, at its own line number
    line_level = parsed.rejected.filter(pl.col("source_line").is_not_null())
    assert line_level["source_line"].to_list() in ([], [len(kept) + 1])


def test_not_gzip_data_in_a_gz_file(tmp_path: Path) -> None:
    gz = tmp_path / "fake.jsonl.gz"
    gz.write_text(line(completion("a")) + "\n")
    parsed = parse(gz)
    assert parsed.records.height == 0
    assert parsed.rejected.height >= 1
    assert any("gzip" in r for r in parsed.rejected["reason"].to_list())


def test_unreadable_path_is_a_rejected_row_not_an_exception(tmp_path: Path) -> None:
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    parsed = parse(folder)
    assert parsed.records.height == 0
    assert parsed.rejected.height == 1
    assert "unreadable" in parsed.rejected["reason"][0]


# ---------------------------------------------------------------------------------------------
# shapes of content, messages and choices
# ---------------------------------------------------------------------------------------------


def test_lone_surrogate_is_replaced_and_noted(tmp_path: Path) -> None:
    # json.dumps escapes the lone surrogate as the six characters \ud800 in the file.
    content = "ab\ud800cd and \udfff end"
    bad_user = "why \udc00?"
    record = completion(
        "chatcmpl-sur",
        choices=[{"message": {"content": content}, "finish_reason": "stop"}],
        messages=[{"role": "user", "content": bad_user}],
    )
    text = line(record)
    assert "\\ud800" in text
    path = write(tmp_path / "sur.jsonl", [line(completion("a")), text, line(completion("b"))])
    parsed = parse(path)
    assert parsed.rejected.height == 0
    assert parsed.records["completion_id"].to_list() == ["a", "chatcmpl-sur", "b"]
    row = parsed.records.row(1, named=True)
    assert row["source_line"] == 2
    assert row["response"] == "ab\ufffdcd and \ufffd end"
    assert len(row["response"]) == len(content)
    assert row["last_user_message"] == "why \ufffd?"
    assert row["ingest_note"] is not None and "surrogate" in row["ingest_note"]
    assert parsed.records["ingest_note"].to_list()[0] is None
    assert parsed.records["ingest_note"].to_list()[2] is None


def test_escaped_surrogate_pair_is_a_normal_character(tmp_path: Path) -> None:
    raw = (
        f'{{"id": "e", "created": {CREATED}, '
        '"choices": [{"message": {"content": "ok \\ud83d\\ude00"}}]}'
    )
    parsed = parse(write(tmp_path / "a.jsonl", [raw]))
    row = parsed.records.row(0, named=True)
    assert row["response"] == "ok 😀"
    assert row["ingest_note"] is None


def test_lone_surrogate_in_an_otherwise_bad_line_is_still_rejected(tmp_path: Path) -> None:
    raw = f'{{"created": {CREATED}, "choices": [{{"message": {{"content": "\\ud800"}}}}]}}'
    parsed = parse(write(tmp_path / "a.jsonl", [line(completion("a")), raw]))
    assert parsed.records["completion_id"].to_list() == ["a"]
    assert parsed.rejected["source_line"].to_list() == [2]
    assert 'missing field "id"' in parsed.rejected["reason"][0]


def test_content_as_array_of_parts_is_concatenated(tmp_path: Path) -> None:
    parts = [
        {"type": "text", "text": "Here is "},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}},
        {"type": "text", "text": "the answer."},
    ]
    record = completion(choices=[{"message": {"content": parts}, "finish_reason": "stop"}])
    row = parse(write(tmp_path / "a.jsonl", [line(record)])).records.row(0, named=True)
    assert row["response"] == "Here is the answer."
    assert row["response_is_null"] is False


def test_messages_page_is_unwrapped(tmp_path: Path) -> None:
    data = [
        {"id": "m0", "role": "system", "content": "sys"},
        {"id": "m1", "role": "user", "content": "first question"},
        {"id": "m2", "role": "assistant", "content": "answer"},
        {
            "id": "m3",
            "role": "user",
            "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "question"}],
        },
    ]
    page = {"object": "list", "data": data, "first_id": "m0", "last_id": "m3", "has_more": False}
    row = parse(write(tmp_path / "a.jsonl", [line(completion(messages=page))])).records.row(
        0, named=True
    )
    assert json.loads(row["messages"]) == data
    assert row["n_messages"] == 4
    assert row["last_user_message"] == "second question"


def test_messages_absent(tmp_path: Path) -> None:
    record = completion()
    del record["messages"]
    row = parse(write(tmp_path / "a.jsonl", [line(record)])).records.row(0, named=True)
    assert row["messages"] is None
    assert row["last_user_message"] is None


@pytest.mark.parametrize(
    "choices",
    [None, "absent", [], [{"finish_reason": "stop"}], [{"message": {"content": None}}]],
    ids=["null", "absent", "empty_list", "no_message", "null_content"],
)
def test_null_or_absent_response(tmp_path: Path, choices) -> None:
    record = completion("x")
    if choices == "absent":
        del record["choices"]
    else:
        record["choices"] = choices
    parsed = parse(write(tmp_path / "a.jsonl", [line(record)]))
    assert parsed.rejected.height == 0
    row = parsed.records.row(0, named=True)
    assert row["response"] == ""
    assert row["response_is_null"] is True
    assert row["n_tool_calls"] == 0
    assert row["n_choices"] == (len(choices) if isinstance(choices, list) else 0)


def test_empty_string_content_is_not_null(tmp_path: Path) -> None:
    record = completion(choices=[{"message": {"content": ""}, "finish_reason": "stop"}])
    row = parse(write(tmp_path / "a.jsonl", [line(record)])).records.row(0, named=True)
    assert row["response"] == ""
    assert row["response_is_null"] is False


def test_metadata_null_or_absent(tmp_path: Path) -> None:
    absent = completion("absent")
    del absent["metadata"]
    parsed = parse(
        write(tmp_path / "a.jsonl", [line(completion("null", metadata=None)), line(absent)])
    )
    assert parsed.rejected.height == 0
    assert parsed.records["metadata"].to_list() == ["{}", "{}"]
    assert parsed.records["user_type"].to_list() == [None, None]


def test_extra_unknown_fields_are_ignored(tmp_path: Path) -> None:
    plain = completion("same")
    extra = dict(plain)
    extra.update(
        {
            "brand_new_field": {"nested": [1, 2, {"deep": True}]},
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "input_user": None,
            "x": 1e308,
        }
    )
    extra["choices"] = [
        dict(plain["choices"][0], content_filter_results={"hate": {"filtered": False}})
    ]
    p1 = parse(write(tmp_path / "plain.jsonl", [line(plain)]), source_file="f.jsonl")
    p2 = parse(write(tmp_path / "extra.jsonl", [line(extra)]), source_file="f.jsonl")
    assert p2.rejected.height == 0
    assert p1.records.equals(p2.records)


def test_nul_character_in_content_is_kept(tmp_path: Path) -> None:
    record = completion(choices=[{"message": {"content": "a\u0000b"}, "finish_reason": "stop"}])
    row = parse(write(tmp_path / "a.jsonl", [line(record)])).records.row(0, named=True)
    assert row["response"] == "a\u0000b"
