"""``conv-pipeline run``: in process through ``cli.main`` and once through the real console script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from conftest import make_records, write_export

from conv_pipeline.cli import main as cli
from conv_pipeline.core.ingestion.staging import LocalStaging

CONSOLE_SCRIPT = Path(sys.executable).parent / "conv-pipeline"
ENV_VARS = (
    "CONV_PIPELINE_DATA_DIR",
    "CONV_PIPELINE_LOCAL_DIR",
    "CONV_PIPELINE_SOURCE",
    "CONV_PIPELINE_MONITORING_CONFIG",
    "DAGSTER_HOME",
)


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, Path]:
    """Point the CLI's environment at temporary folders only."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    paths = {
        "data": tmp_path / "data",
        "export": tmp_path / "export",
        "home": tmp_path / "home",
    }
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(paths["data"]))
    monkeypatch.setenv("CONV_PIPELINE_LOCAL_DIR", str(paths["export"]))
    monkeypatch.setenv("DAGSTER_HOME", str(paths["home"]))
    return paths


def test_run_scores_everything_and_prints_the_summary(env, capsys):
    # hour 2 of 4 is degraded on purpose: its alerts must be listed
    records = make_records(hours=4, per_hour=20, degraded_hours=(2,))
    write_export(env["export"], records, files=2)
    code = cli.main(["run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert re.search(r"conversations scored: 80\b", out)
    assert "failing quality checks" in out
    for name in ("alert_average_quality", "alert_avg_response_length", "alert_quality_issue_rate"):
        assert re.search(rf"\[ERROR\] \S+:{name} .*worst 2025-03-10-10:00", out), name
    assert "alert_error_rate" not in out
    assert f"{env['data'] / 'reports'}/hourly/" in out
    assert "FAILED integrity" not in out
    assert (env["data"] / "reports" / "hourly" / "2025-03-10" / "10.json").is_file()
    assert (env["data"] / "reports" / "daily" / "2025-03-10.json").is_file()
    assert (env["data"] / "warehouse.duckdb").is_file()


def test_runs_are_recorded_in_the_instance_at_dagster_home(env, capsys):
    write_export(env["export"], make_records(hours=2, per_hour=20), files=2)
    assert cli.main(["run"]) == 0
    out = capsys.readouterr().out
    assert "conversations scored: 40" in out
    assert "quality checks: all passed" in out
    with dg.DagsterInstance.from_config(str(env["home"])) as instance:
        runs = instance.get_runs()
        jobs = sorted(r.job_name for r in runs)
        assert jobs == ["daily_summary", "hourly_pipeline"]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        hourly = next(r for r in runs if r.job_name == "hourly_pipeline")
        assert hourly.tags["dagster/asset_partition_range_start"] == "2025-03-10-08:00"
        assert hourly.tags["dagster/asset_partition_range_end"] == "2025-03-10-09:00"
        assert instance.get_latest_materialization_event(dg.AssetKey("insight_report"))


def test_missing_export_folder_exits_2_with_a_clear_message(env, capsys):
    code = cli.main(["run"])
    out, err = capsys.readouterr()
    assert code == 2
    assert str(env["export"]) in err
    assert "does not exist" in err
    assert "CONV_PIPELINE_LOCAL_DIR" in err
    assert not (env["home"]).exists() or not any(env["home"].iterdir())


def test_integrity_failure_exits_non_zero(env, capsys, monkeypatch):
    write_export(env["export"], make_records(hours=2, per_hour=10), files=1)
    original = LocalStaging.read_hours

    def duplicated(self, partition_keys):
        df = original(self, partition_keys)
        return pl.concat([df, df.head(1)])

    monkeypatch.setattr(LocalStaging, "read_hours", duplicated)
    code = cli.main(["run"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "unique_completion_id" in out
    assert "FAILED integrity checks" in out
    assert "conversations scored: 0" in out


def test_console_script_runs_end_to_end(tmp_path):
    export = tmp_path / "export"
    write_export(export, make_records(hours=2, per_hour=20), files=2)
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(
        CONV_PIPELINE_DATA_DIR=str(tmp_path / "data"),
        CONV_PIPELINE_LOCAL_DIR=str(export),
        DAGSTER_HOME=str(tmp_path / "home"),
    )
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "conversations scored: 40" in proc.stdout
    assert "quality checks: all passed" in proc.stdout
    assert f"{tmp_path / 'data' / 'reports'}/hourly/" in proc.stdout
    assert (tmp_path / "data" / "warehouse.duckdb").is_file()
    assert not (tmp_path / "data" / "completions").exists()


def test_console_script_missing_folder_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(
        CONV_PIPELINE_DATA_DIR=str(tmp_path / "data"),
        CONV_PIPELINE_LOCAL_DIR=str(tmp_path / "nowhere"),
        DAGSTER_HOME=str(tmp_path / "home"),
    )
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "run"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
