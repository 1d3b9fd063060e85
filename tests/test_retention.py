"""Retention: raw detail older than the window is deleted from every Parquet file, every export
copy the API source wrote and the warehouse, while scores, issue counts and report totals stay;
re-running a retained hour changes nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from conftest import BASE_HOUR, hour_keys, make_records, make_settings, run_hourly, write_export

from conv_pipeline.cli.main import main
from conv_pipeline.core.privacy import retention
from conv_pipeline.core.storage import DataStore
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB, RETENTION_JOB
from conv_pipeline.settings import ApiSettings
from conv_pipeline_demo.standin import StoredCompletionsServer

KEY = "retention-key-7"
PROMPT_MARK = "ZEBRAPROMPT"
ANSWER_MARK = "QUOKKAANSWER"
COMMENT_MARK = "WOMBATCOMMENT"
MARKS = (PROMPT_MARK, ANSWER_MARK, COMMENT_MARK)


def planted(hours: int = 3) -> list[dict]:
    records = make_records(hours=hours, per_hour=30)
    for n, rec in enumerate(records):
        rec["messages"][1]["content"] += f" {PROMPT_MARK}{n:04d}"
        msg = rec["choices"][0]["message"]
        if msg["content"]:
            msg["content"] += f" {ANSWER_MARK}{n:04d}"
    return records


def _all_text(data: Path) -> dict[str, str]:
    """Every string of every Parquet file (decoded), every text file and the warehouse's bytes
    under the data dir — except the user's own feedback folder (input, not a copy)."""
    out = {}
    for path in sorted(data.rglob("*")):
        if not path.is_file() or "dagster_home" in path.parts:
            continue
        if path.parent == data / "feedback":
            continue
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
            parts = []
            for name, dtype in df.schema.items():
                if dtype == pl.String:
                    parts += df[name].drop_nulls().to_list()
                elif dtype == pl.List(pl.String):
                    parts += [s for row in df[name].drop_nulls().to_list() for s in row if s]
            out[str(path)] = "\n".join(parts)
        else:
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


def _found(data: Path) -> dict[str, list[str]]:
    """Where a planted mark is, in any case (TF-IDF terms are lower-cased)."""
    return {
        p: [m for m in MARKS if m.lower() in text.lower()]
        for p, text in _all_text(data).items()
        if any(m.lower() in text.lower() for m in MARKS)
    }


def _views(store: DataStore) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(store.warehouse_path), read_only=True)
    try:
        names = [
            r[0] for r in con.sql("select table_name from information_schema.tables").fetchall()
        ]
        return {n: con.sql(f'select * from "{n}"').pl() for n in names}
    finally:
        con.close()


def _aggregates(store: DataStore) -> dict:
    q = store.query
    return {
        "scored": q(
            "select count(*), avg(quality_score), sum(response_length) from scored_conversations"
        ).row(0),
        "issues": q("select issue, count(*) from conversation_issues group by 1 order by 1").rows(),
        "reports": q(
            "select report_id, conversations, average_quality, quality_issue_rate, error_rate "
            "from insight_reports order by 1"
        ).rows(),
        "raw": q(
            "select count(*), sum(total_tokens), count(distinct user_type) from raw_completions"
        ).row(0),
        "feedback": q("select count(*), sum(is_negative::int) from conversation_feedback").row(0),
    }


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}) as s:
        yield s


def test_retention_job_deletes_raw_detail_and_keeps_aggregates(tmp_path, server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    settings = replace(
        make_settings(tmp_path),
        source="azure_openai",
        api=ApiSettings(
            values={"endpoint": server.azure_endpoint}, api_key_var="AZURE_OPENAI_API_KEY"
        ),
    )
    records = planted()
    for r in records:
        server.add({k: v for k, v in r.items() if k != "messages"}, r["messages"])
    fb = settings.data_dir / "feedback"
    fb.mkdir(parents=True)
    (fb / "f.jsonl").write_text(
        "".join(
            json.dumps(
                {"completion_id": r["id"], "rating": 1 + i % 5, "comment": f"{COMMENT_MARK} {i}"}
            )
            + "\n"
            for i, r in enumerate(records[::3])
        )
    )
    defs = build_definitions(settings)
    store = defs.resources["pipeline"].store
    keys = hour_keys(hours=3)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_hourly(defs, instance, keys[0], keys[-1]).success
        day = BASE_HOUR.strftime("%Y-%m-%d")
        assert (
            defs.resolve_job_def(DAILY_JOB)
            .execute_in_process(instance=instance, partition_key=day)
            .success
        )
        before = _aggregates(store)
        sensor = defs.resolve_sensor_def("new_completions_sensor")
        tick = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert len(tick.run_requests) == 1  # the three hours, before retention
        found = _found(settings.data_dir)
        # The marks are everywhere before: staged and exported copies, raw, reports, datasets.
        where = " ".join(found)
        for part in (
            "staging/api",
            "/export/api-",
            "tables/raw_completions",
            "reports/hourly",
            "tables/insight_reports",
            "datasets/finetune",
            "tables/conversation_feedback",
        ):
            assert part in where, part
        # Everything is older than 90 days (the data is from 2025, the clock is now).
        result = defs.resolve_job_def(RETENTION_JOB).execute_in_process(instance=instance)
        assert result.success
        summary = result.output_for_node("delete_expired_raw_detail")
        assert summary["raw_rows"] == len(records) and summary["raw_detail_days"] == 90
        assert summary["export_lines_removed"] == len(records)
        assert summary["feedback_comments"] == len(records[::3])

        assert _found(settings.data_dir) == {}
        for table, df in _views(store).items():
            for name, dtype in df.schema.items():
                if dtype == pl.String:
                    text = "\n".join(df[name].drop_nulls().to_list())
                    assert not any(m in text for m in MARKS), (table, name)
        assert not any(m.encode() in store.warehouse_path.read_bytes() for m in MARKS)
        assert _aggregates(store) == before
        raw = store.query("select response, messages, last_user_message from raw_completions")
        assert raw.height == len(records) and raw.null_count().row(0) == (len(records),) * 3
        report = json.loads((store.reports_dir / "daily" / f"{day}.json").read_text())
        assert report["worst_examples"] and report["worst_examples"][0]["response"] is None
        assert report["worst_examples"][0]["completion_id"]
        assert (settings.data_dir / "datasets" / "finetune" / day / "manifest.json").is_file()

        # A later sync un-stages the deleted export files: the sensor notes the change and asks
        # for no run; a backfill that asks anyway leaves the retained hours as they are.
        after = sensor(
            dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources=defs.resources)
        )
        assert not after.run_requests
        assert json.loads(after.cursor)["hours"] == {}
        rerun = run_hourly(defs, instance, keys[0], keys[-1])
        assert rerun.success
        mats = rerun.asset_materializations_for_node("raw_completions")
        assert mats[0].metadata["retained_partitions_left_as_they_are"].value == 3
        assert _aggregates(store) == before
        assert _found(settings.data_dir) == {}
        # The daily summaries of a day past the window are not refreshed after such a run.
        daily_sensor = defs.resolve_sensor_def("daily_summary_after_hourly")
        ctx = dg.build_run_status_sensor_context(
            sensor_name="daily_summary_after_hourly",
            dagster_event=rerun.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(rerun.run_id),
            resources=defs.resources,
        )
        skipped = daily_sensor(ctx)
        assert isinstance(skipped, dg.SkipReason) and "retention" in skipped.skip_message
        # And a second pass has nothing left to do.
        again = defs.resolve_job_def(RETENTION_JOB).execute_in_process(instance=instance)
        assert again.output_for_node("delete_expired_raw_detail")["files_rewritten_or_deleted"] == 0


def test_cutoff_keeps_newer_hours_and_the_cli(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    records = planted(hours=2)
    write_export(settings.local_dir, records, files=1)
    defs = build_definitions(settings)
    store = defs.resources["pipeline"].store
    keys = hour_keys(hours=2)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_hourly(defs, instance, keys[0], keys[-1]).success
    # Only the first hour is before the cutoff.
    result = retention.apply_retention(store, keys[1])
    assert result.raw_partitions == 1 and result.raw_rows == 30 and result.staged_rows == 30
    raw = store.query(
        "select partition_key, count(response) as kept from raw_completions group by 1 order by 1"
    )
    assert raw.rows() == [(keys[0], 0), (keys[1], 30)]
    assert retention.retained_keys(store, keys) == {keys[0]}
    # The cutoff never moves back.
    retention.apply_retention(store, keys[0])
    assert retention.retained_cutoff(store) == keys[1]

    # The command line: the configured 90 days, and a word about the user's own export folder
    # when it lies inside the data dir.
    local = settings.data_dir / "completions"
    write_export(local, records[:5], files=1)
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("CONV_PIPELINE_LOCAL_DIR", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["retention"]) == 0
    out = capsys.readouterr().out
    now = datetime.now(UTC) - timedelta(days=90)
    assert f"deleting raw detail before {now:%Y-%m-%d}" in out and "(90 days)" in out
    assert "raw_completions: 30 rows in 1 partitions" in out
    assert "left as it is" in out
    assert store.query("select count(response) from raw_completions").item() == 0
    assert main(["retention", "--days", "0"]) == 2
