"""``conv_pipeline.core.ingestion.staging.LocalStaging``: the export folder staged once per file and read
by hour, with global duplicate resolution, incremental re-sync and crash safety."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from conv_pipeline.core.ingestion import staging as local_source
from conv_pipeline.core.ingestion.staging import LocalStaging, SyncResult
from conv_pipeline.core.schema import RAW_COMPLETIONS

PARTITION_START = datetime(2024, 10, 1, tzinfo=UTC)
T0 = int(PARTITION_START.timestamp())


def key(hour: int) -> str:
    return f"2024-10-01-{hour:02d}:00"


ALL_HOURS = [key(h) for h in range(24)]


def rec(cid: str, hour: int, second: int = 0, content: str | None = None) -> dict:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": T0 + hour * 3600 + second,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content or f"Answer for {cid}."},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "metadata": {"user_type": "free", "category": "billing"},
        "messages": [{"role": "user", "content": f"Question {cid}"}],
    }


def write_file(path: Path, lines: list[dict | str], *, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines),
        encoding="utf-8",
    )
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def bump_mtime(path: Path, seconds: int = 10) -> None:
    st = path.stat()
    new = st.st_mtime_ns + seconds * 1_000_000_000
    os.utime(path, ns=(new, new))


class Env:
    def __init__(self, root: Path):
        self.export = root / "export"
        self.staging_dir = root / "staging"
        self.rejected_dir = root / "rejected"
        self.export.mkdir(parents=True, exist_ok=True)

    def staging(self, partition_start: datetime = PARTITION_START) -> LocalStaging:
        return LocalStaging(self.export, self.staging_dir, self.rejected_dir, partition_start)

    def rejected(self) -> pl.DataFrame:
        files = sorted(self.rejected_dir.glob("*.parquet"))
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def standard_folder(env: Env) -> dict[str, list[str]]:
    """Three files (one in a sub-folder, one gzipped) over hours 0–3, with one bad line."""
    write_file(env.export / "a.jsonl", [rec("a1", 0, 10), rec("a2", 0, 20), rec("a3", 1, 5)])
    write_file(
        env.export / "b.jsonl",
        [rec("b1", 1, 30), "{not json", rec("b2", 2, 0), rec("b3", 2, 1)],
    )
    sub = env.export / "2024" / "c.jsonl.gz"
    sub.parent.mkdir(parents=True, exist_ok=True)
    sub.write_bytes(gzip.compress((json.dumps(rec("c1", 3, 0)) + "\n").encode()))
    # not export files: ignored
    (env.export / "notes.txt").write_text("hello")
    (env.export / ".hidden").mkdir()
    write_file(env.export / ".hidden" / "h.jsonl", [rec("h1", 0)])
    return {
        key(0): ["a1", "a2"],
        key(1): ["a3", "b1"],
        key(2): ["b2", "b3"],
        key(3): ["c1"],
    }


def ids_by_hour(frame: pl.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, cid in frame.select("partition_key", "completion_id").iter_rows():
        out.setdefault(k, []).append(cid)
    return {k: sorted(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# first sync and reads
# ---------------------------------------------------------------------------------------------


def test_sync_reports_hours_and_counts(env: Env) -> None:
    expected = standard_folder(env)
    result = env.staging().sync()
    assert isinstance(result, SyncResult)
    assert result.hours == {k: len(v) for k, v in expected.items()}
    assert result.changed_hours == set(expected)
    assert sorted(result.files_parsed) == ["2024/c.jsonl.gz", "a.jsonl", "b.jsonl"]
    assert result.files_removed == []
    assert result.files == 3
    assert result.records == 7
    assert result.rejected == 1
    assert result.duplicates == 0
    assert set(result.hour_digests) == set(expected)
    assert result.fingerprint


def test_read_hours_returns_exactly_those_hours(env: Env) -> None:
    expected = standard_folder(env)
    staging = env.staging()
    staging.sync()
    for hours in ([key(0)], [key(1), key(3)], [key(2)], list(expected), [key(7)], []):
        frame = staging.read_hours(hours)
        assert frame.schema == pl.Schema(RAW_COMPLETIONS)
        assert ids_by_hour(frame) == {k: expected[k] for k in hours if k in expected}
        assert frame["completion_id"].is_unique().all()
    # rows are sorted by created
    frame = staging.read_hours(list(expected))
    assert frame["created"].to_list() == sorted(frame["created"].to_list())
    b1 = frame.filter(pl.col("completion_id") == "b1").row(0, named=True)
    assert (b1["source_file"], b1["source_line"]) == ("b.jsonl", 1)
    b2 = frame.filter(pl.col("completion_id") == "b2").row(0, named=True)
    assert (b2["source_file"], b2["source_line"]) == ("b.jsonl", 3)
    c1 = frame.filter(pl.col("completion_id") == "c1").row(0, named=True)
    assert c1["source_file"] == "2024/c.jsonl.gz"


def test_rejected_rows_are_written_with_their_source(env: Env) -> None:
    standard_folder(env)
    env.staging().sync()
    rejected = env.rejected()
    assert rejected.height == 1
    row = rejected.row(0, named=True)
    assert row["source"] == "local"
    assert row["source_file"] == "b.jsonl"
    assert row["source_line"] == 2
    assert "malformed JSON" in row["reason"]


def test_missing_export_folder_raises_a_helpful_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    staging = LocalStaging(missing, tmp_path / "s", tmp_path / "r", PARTITION_START)
    with pytest.raises(FileNotFoundError) as info:
        staging.sync()
    message = str(info.value)
    assert str(missing) in message
    assert "conv-pipeline sample" in message
    assert "CONV_PIPELINE_LOCAL_DIR" in message


def test_empty_export_folder(env: Env) -> None:
    staging = env.staging()
    result = staging.sync()
    assert result.files == 0
    assert result.records == 0
    assert result.hours == {}
    assert staging.read_hours(ALL_HOURS).height == 0


# ---------------------------------------------------------------------------------------------
# incremental re-sync
# ---------------------------------------------------------------------------------------------


def test_second_sync_without_change_parses_nothing(env: Env) -> None:
    standard_folder(env)
    staging = env.staging()
    first = staging.sync()
    before = staging.read_hours(ALL_HOURS)
    second = staging.sync()
    assert second.files_parsed == []
    assert second.files_removed == []
    assert second.changed_hours == set()
    assert second.hour_digests == first.hour_digests
    assert second.hours == first.hours
    assert second.fingerprint == first.fingerprint
    assert (second.records, second.rejected) == (first.records, first.rejected)
    # a fresh LocalStaging over the same folders sees the same state
    third = env.staging().sync()
    assert third.files_parsed == []
    assert third.hour_digests == first.hour_digests
    assert staging.read_hours(ALL_HOURS).equals(before)


def test_resync_never_duplicates_rows(env: Env) -> None:
    expected = standard_folder(env)
    staging = env.staging()
    staging.sync()
    once = staging.read_hours(ALL_HOURS)
    staging.sync()
    bump_mtime(env.export / "a.jsonl")
    staging.sync()
    staging.sync()
    twice = staging.read_hours(ALL_HOURS)
    assert twice.height == sum(len(v) for v in expected.values())
    assert twice["completion_id"].is_unique().all()
    assert twice.sort("completion_id").equals(once.sort("completion_id"))
    assert env.rejected().height == 1


def test_touching_one_file_reparses_only_it(env: Env) -> None:
    standard_folder(env)
    staging = env.staging()
    first = staging.sync()
    before = staging.read_hours(ALL_HOURS)
    bump_mtime(env.export / "a.jsonl")
    second = staging.sync()
    assert second.files_parsed == ["a.jsonl"]
    # a.jsonl touches hours 0 and 1; hours 2 and 3 keep their digests
    changed = {k for k in first.hour_digests if first.hour_digests[k] != second.hour_digests[k]}
    assert changed == {key(0), key(1)}
    assert second.changed_hours == {key(0), key(1)}
    assert staging.read_hours(ALL_HOURS).equals(before)


def test_rewriting_one_file_changes_only_the_hours_it_touches(env: Env) -> None:
    standard_folder(env)
    staging = env.staging()
    first = staging.sync()
    # b.jsonl had hours 1 and 2; now it has hours 2 and 5 and no bad line
    path = env.export / "b.jsonl"
    write_file(path, [rec("b2", 2, 0), rec("b4", 5, 0), rec("b5", 5, 9)])
    bump_mtime(path)
    second = staging.sync()
    assert second.files_parsed == ["b.jsonl"]
    assert second.changed_hours == {key(1), key(2), key(5)}
    assert set(second.hour_digests) == {key(0), key(1), key(2), key(3), key(5)}
    for k in (key(0), key(3)):
        assert second.hour_digests[k] == first.hour_digests[k]
    for k in (key(1), key(2)):
        assert second.hour_digests[k] != first.hour_digests[k]
    assert second.hours == {key(0): 2, key(1): 1, key(2): 1, key(3): 1, key(5): 2}
    assert ids_by_hour(staging.read_hours(ALL_HOURS)) == {
        key(0): ["a1", "a2"],
        key(1): ["a3"],
        key(2): ["b2"],
        key(3): ["c1"],
        key(5): ["b4", "b5"],
    }
    # the bad line of the old b.jsonl is no longer rejected
    assert env.rejected().height == 0


def test_removing_a_file_removes_its_records_and_rejected_rows(env: Env) -> None:
    standard_folder(env)
    staging = env.staging()
    first = staging.sync()
    assert env.rejected()["source_file"].to_list() == ["b.jsonl"]
    (env.export / "b.jsonl").unlink()
    second = staging.sync()
    assert second.files_removed == ["b.jsonl"]
    assert second.files_parsed == []
    assert second.files == 2
    assert second.records == 4
    assert second.rejected == 0
    assert key(2) not in second.hours
    assert key(2) not in second.hour_digests
    assert second.changed_hours >= {key(1), key(2)}
    assert second.hour_digests[key(0)] == first.hour_digests[key(0)]
    assert second.hour_digests[key(3)] == first.hour_digests[key(3)]
    frame = staging.read_hours(ALL_HOURS)
    assert "b.jsonl" not in frame["source_file"].to_list()
    assert ids_by_hour(frame) == {key(0): ["a1", "a2"], key(1): ["a3"], key(3): ["c1"]}
    assert staging.read_hours([key(2)]).height == 0
    assert env.rejected().filter(pl.col("source_file") == "b.jsonl").height == 0


def test_changing_partition_start_restages_everything(env: Env) -> None:
    standard_folder(env)
    env.staging().sync()
    later = env.staging(datetime(2024, 10, 1, 2, tzinfo=UTC))
    result = later.sync()
    assert sorted(result.files_parsed) == ["2024/c.jsonl.gz", "a.jsonl", "b.jsonl"]
    assert set(result.hours) == {key(2), key(3)}
    assert ids_by_hour(later.read_hours(ALL_HOURS)) == {key(2): ["b2", "b3"], key(3): ["c1"]}
    reasons = env.rejected()["reason"].to_list()
    assert sum("before the first partition" in r for r in reasons) == 4


# ---------------------------------------------------------------------------------------------
# duplicates
# ---------------------------------------------------------------------------------------------


def test_duplicate_ids_across_files_first_occurrence_wins(env: Env) -> None:
    write_file(env.export / "a.jsonl", [rec("x1", 0, 0), rec("dup", 0, 5, "winner"), rec("x2", 1)])
    write_file(env.export / "b.jsonl", [rec("dup", 3, 0, "loser"), rec("y1", 3, 1)])
    # within one file too: the earlier line wins
    write_file(env.export / "c.jsonl", [rec("z1", 4), rec("z1", 4, 30, "second z1")])
    staging = env.staging()
    result = staging.sync()
    assert result.duplicates == 2

    frame = staging.read_hours(ALL_HOURS)
    assert frame["completion_id"].is_unique().all()
    dup = frame.filter(pl.col("completion_id") == "dup").row(0, named=True)
    assert (dup["source_file"], dup["source_line"], dup["response"]) == ("a.jsonl", 2, "winner")
    z1 = frame.filter(pl.col("completion_id") == "z1").row(0, named=True)
    assert (z1["source_file"], z1["source_line"]) == ("c.jsonl", 1)
    # the hour that only held the loser does not return it
    assert staging.read_hours([key(3)])["completion_id"].to_list() == ["y1"]

    dups = pl.read_parquet(env.rejected_dir / "duplicates.parquet").sort("source_file")
    assert dups.height == 2
    loser = dups.row(0, named=True)
    assert loser["source"] == "local"
    assert (loser["source_file"], loser["source_line"], loser["completion_id"]) == (
        "b.jsonl",
        1,
        "dup",
    )
    assert "duplicate" in loser["reason"]
    assert "a.jsonl" in loser["reason"] and "line 2" in loser["reason"]
    inner = dups.row(1, named=True)
    assert (inner["source_file"], inner["source_line"]) == ("c.jsonl", 2)
    assert "c.jsonl" in inner["reason"] and "line 1" in inner["reason"]


def test_duplicate_resolution_follows_file_path_order_not_time(env: Env) -> None:
    # b.jsonl is written first and holds the earlier `created`, but a.jsonl sorts first.
    write_file(env.export / "b.jsonl", [rec("dup", 0, 0, "from b")])
    write_file(env.export / "a.jsonl", [rec("pad", 5), rec("dup", 5, 1, "from a")])
    staging = env.staging()
    staging.sync()
    frame = staging.read_hours(ALL_HOURS)
    assert frame.filter(pl.col("completion_id") == "dup")["response"].to_list() == ["from a"]
    assert staging.read_hours([key(0)]).height == 0


def test_removing_the_winner_promotes_the_duplicate(env: Env) -> None:
    write_file(env.export / "a.jsonl", [rec("dup", 0, 0, "winner")])
    write_file(env.export / "b.jsonl", [rec("dup", 3, 0, "runner-up")])
    staging = env.staging()
    staging.sync()
    (env.export / "a.jsonl").unlink()
    result = staging.sync()
    assert result.duplicates == 0
    frame = staging.read_hours(ALL_HOURS)
    assert frame["response"].to_list() == ["runner-up"]
    assert pl.read_parquet(env.rejected_dir / "duplicates.parquet").height == 0


def test_resync_with_duplicates_is_stable(env: Env) -> None:
    write_file(env.export / "a.jsonl", [rec("dup", 0, 0), rec("a2", 0, 1)])
    write_file(env.export / "b.jsonl", [rec("dup", 0, 2), rec("b2", 0, 3)])
    staging = env.staging()
    staging.sync()
    first = staging.read_hours(ALL_HOURS)
    bump_mtime(env.export / "b.jsonl")
    staging.sync()
    staging.sync()
    second = staging.read_hours(ALL_HOURS)
    assert first.equals(second)
    assert sorted(second["completion_id"].to_list()) == ["a2", "b2", "dup"]
    assert pl.read_parquet(env.rejected_dir / "duplicates.parquet").height == 1


def test_hour_digest_changes_when_a_duplicate_moves_its_record_out(env: Env) -> None:
    """A new file that sorts first and repeats an id takes the record away from another hour:
    that hour's data changed, so its digest must change (the sensor re-runs hours by digest)."""
    write_file(env.export / "b.jsonl", [rec("moving", 1, 0), rec("stays", 1, 1)])
    staging = env.staging()
    first = staging.sync()
    assert ids_by_hour(staging.read_hours([key(1)])) == {key(1): ["moving", "stays"]}
    write_file(env.export / "a.jsonl", [rec("moving", 7, 0)])
    second = staging.sync()
    assert ids_by_hour(staging.read_hours([key(1)])) == {key(1): ["stays"]}
    assert key(1) in second.changed_hours
    assert second.hour_digests[key(1)] != first.hour_digests[key(1)]


def test_hour_digest_changes_when_a_duplicate_is_promoted(env: Env) -> None:
    """Rewriting the winner's file without the id hands the record to another file's hour: that
    hour's data changed, so its digest must change."""
    write_file(env.export / "a.jsonl", [rec("dup", 0, 0), rec("a2", 0, 1)])
    write_file(env.export / "b.jsonl", [rec("dup", 5, 0), rec("b2", 5, 1)])
    staging = env.staging()
    first = staging.sync()
    assert ids_by_hour(staging.read_hours([key(5)])) == {key(5): ["b2"]}
    write_file(env.export / "a.jsonl", [rec("a2", 0, 1)])
    bump_mtime(env.export / "a.jsonl")
    second = staging.sync()
    assert ids_by_hour(staging.read_hours([key(5)])) == {key(5): ["b2", "dup"]}
    assert key(5) in second.changed_hours
    assert second.hour_digests[key(5)] != first.hour_digests[key(5)]


# ---------------------------------------------------------------------------------------------
# crash safety
# ---------------------------------------------------------------------------------------------


def _failing_writer(
    monkeypatch: pytest.MonkeyPatch, fail_on: int, name: str = "atomic_write_parquet"
) -> dict[str, int]:
    """Make the ``fail_on``-th call of ``local_source.<name>`` raise, as a crash would."""
    real = getattr(local_source, name)
    calls = {"n": 0}

    def writer(path: Path, data) -> None:
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise OSError("simulated crash: disk full")
        real(path, data)

    monkeypatch.setattr(local_source, name, writer)
    return calls


@pytest.mark.parametrize(
    ("name", "fail_on"),
    [
        ("atomic_write_parquet", 1),
        ("atomic_write_parquet", 2),  # the brief's case: the second staging write fails
        ("atomic_write_parquet", 3),
        ("atomic_write_parquet", 6),
        ("atomic_write_parquet", 9),  # 4 files = 8 staging writes, then the duplicate files
        ("atomic_write_parquet", 10),
        ("atomic_write_bytes", 1),  # the manifest
    ],
)
def test_crash_during_first_sync_then_normal_sync_is_complete(
    env: Env, monkeypatch: pytest.MonkeyPatch, name: str, fail_on: int
) -> None:
    expected = standard_folder(env)
    write_file(env.export / "d.jsonl", [rec("a1", 6)])  # a duplicate of a.jsonl's a1
    with monkeypatch.context() as m:
        calls = _failing_writer(m, fail_on, name)
        with pytest.raises(OSError, match="simulated crash"):
            env.staging().sync()
        assert calls["n"] == fail_on
    result = env.staging().sync()
    staging = env.staging()
    frame = staging.read_hours(ALL_HOURS)
    assert ids_by_hour(frame) == expected
    assert frame["completion_id"].is_unique().all()
    assert result.duplicates == 1
    assert key(6) not in result.hours  # only the loser was there: no usable record
    assert staging.read_hours([key(6)]).height == 0
    # stable afterwards
    assert env.staging().sync().files_parsed == []
    assert env.staging().read_hours(ALL_HOURS).equals(frame)


def test_crash_during_resync_then_normal_sync_is_complete(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    standard_folder(env)
    staging = env.staging()
    staging.sync()
    # a.jsonl moves to hour 9, a new file arrives
    write_file(env.export / "a.jsonl", [rec("a1", 9), rec("a2", 9, 1), rec("a3", 9, 2)])
    bump_mtime(env.export / "a.jsonl")
    write_file(env.export / "e.jsonl", [rec("e1", 10)])
    with monkeypatch.context() as m:
        _failing_writer(m, 2)
        with pytest.raises(OSError, match="simulated crash"):
            staging.sync()
    result = staging.sync()
    assert sorted(result.files_parsed) == ["a.jsonl", "e.jsonl"]
    frame = staging.read_hours(ALL_HOURS)
    assert frame["completion_id"].is_unique().all()
    assert ids_by_hour(frame) == {
        key(2): ["b2", "b3"],
        key(1): ["b1"],
        key(3): ["c1"],
        key(9): ["a1", "a2", "a3"],
        key(10): ["e1"],
    }
    assert result.hours == {key(1): 1, key(2): 2, key(3): 1, key(9): 3, key(10): 1}


def test_crash_mid_sync_leaves_the_previous_state_readable(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module promises that a crash mid-sync leaves the previous, consistent state: until the
    next successful sync, every hour reads as it did before the failed one."""
    standard_folder(env)
    staging = env.staging()
    staging.sync()
    before = {k: staging.read_hours([k]) for k in ALL_HOURS}
    write_file(env.export / "a.jsonl", [rec("a1", 9), rec("a2", 9, 1), rec("a3", 9, 2)])
    bump_mtime(env.export / "a.jsonl")
    with monkeypatch.context() as m:
        _failing_writer(m, 2)  # a.jsonl's staged file is written, its rejected file is not
        with pytest.raises(OSError, match="simulated crash"):
            staging.sync()
    for k in ALL_HOURS:
        assert staging.read_hours([k]).equals(before[k]), k


def test_parallel_staging_gives_the_same_result(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = standard_folder(env)
    monkeypatch.setattr(local_source, "PARALLEL_MIN_BYTES", 0)
    staging = LocalStaging(
        env.export, env.staging_dir, env.rejected_dir, PARTITION_START, workers=2
    )
    result = staging.sync()
    assert result.hours == {k: len(v) for k, v in expected.items()}
    assert ids_by_hour(staging.read_hours(ALL_HOURS)) == expected
    assert env.rejected().height == 1
