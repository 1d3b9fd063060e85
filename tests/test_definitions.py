"""The real Definitions, loaded once per test over temporary folders: the asset graph, checks,
partitions, schedules and jobs are what the UI and the operators rely on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import dagster as dg
import pytest
from conftest import make_settings

from conv_pipeline.definitions import build_definitions

RAW = dg.AssetKey("raw_completions")
SCORED = dg.AssetKey("scored_conversations")
ISSUES = dg.AssetKey("conversation_issues")
REPORT = dg.AssetKey("insight_report")
DAILY = dg.AssetKey("daily_insight_report")
IMPROVEMENT = {
    dg.AssetKey(n)
    for n in (
        "finetune_dataset",
        "regression_eval_set",
        "prompt_experiments",
        "segment_drift",
        "failure_clusters",
        "conversation_feedback",
    )
}
JUDGE = dg.AssetKey("judge_evaluations")
CALIBRATION = dg.AssetKey("judge_calibration")
ALL_ASSETS = {RAW, SCORED, ISSUES, REPORT, DAILY, JUDGE, CALIBRATION} | IMPROVEMENT


def _deps(defs: dg.Definitions) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    return {s.key: {d.asset_key for d in s.deps} for s in defs.resolve_all_asset_specs()}


def _checks(defs: dg.Definitions, key: dg.AssetKey) -> dict[str, dg.AssetCheckSpec]:
    return {c.name: c for c in defs.resolve_assets_def(key).check_specs}


def test_asset_keys_are_the_documented_ones(defs):
    assert set(defs.resolve_all_asset_keys()) == ALL_ASSETS


def test_lineage_runs_raw_to_daily_report(defs):
    deps = _deps(defs)
    assert deps[RAW] == set()
    assert deps[SCORED] == {RAW}
    assert deps[JUDGE] == {RAW, SCORED}
    assert deps[ISSUES] == {SCORED, JUDGE}
    assert deps[REPORT] == {SCORED, ISSUES}
    assert deps[DAILY] == {REPORT}


def test_every_asset_is_described_grouped_kinded_and_versioned(defs):
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.description and len(spec.description) > 40, name
        assert spec.group_name and spec.group_name != "default", name
        assert spec.kinds, name
        assert spec.code_version, name


def test_groups_are_the_pipeline_stages(defs):
    groups = {s.key: s.group_name for s in defs.resolve_all_asset_specs()}
    assert groups[RAW] == "ingestion"
    assert groups[SCORED] == groups[ISSUES] == "scoring"
    assert groups[JUDGE] == groups[CALIBRATION] == "judge"
    assert groups[REPORT] == groups[DAILY] == "reporting"
    assert {groups[k] for k in IMPROVEMENT} == {"improvement"}


def test_integrity_checks_on_raw_are_blocking(defs):
    checks = _checks(defs, RAW)
    for name in ("unique_completion_id", "rows_inside_partition_window", "schema_matches_contract"):
        assert name in checks, name
        assert checks[name].blocking, name
        assert checks[name].asset_key == RAW


def test_integrity_checks_on_scored_are_blocking(defs):
    checks = _checks(defs, SCORED)
    for name in ("one_row_per_raw_completion", "schema_matches_contract"):
        assert name in checks, name
        assert checks[name].blocking, name


@pytest.mark.parametrize(
    ("asset", "name"),
    [
        (SCORED, "alert_average_quality"),
        (SCORED, "alert_avg_response_length"),
        (SCORED, "alert_error_rate"),
        (SCORED, "quality_threshold"),
        (ISSUES, "alert_quality_issue_rate"),
        (JUDGE, "judge_average_score"),
        (JUDGE, "judge_pass_rate"),
        (JUDGE, "judge_failure_rate"),
        (CALIBRATION, "judge_agreement"),
    ],
)
def test_quality_checks_exist_and_never_block(defs, asset, name):
    checks = _checks(defs, asset)
    assert name in checks
    assert not checks[name].blocking
    assert checks[name].description


def test_quality_checks_carry_the_seed_condition(defs):
    checks = _checks(defs, SCORED) | _checks(defs, ISSUES)
    assert checks["alert_average_quality"].metadata["condition"] == "average_quality < 6.0"
    assert checks["alert_avg_response_length"].metadata["condition"] == "response_length < 30"
    assert checks["alert_error_rate"].metadata["condition"] == "error_rate > 0.05"
    assert checks["alert_quality_issue_rate"].metadata["condition"] == "quality_issue_rate > 0.15"
    assert checks["quality_threshold"].metadata["condition"] == "average_quality < 7.0"


def test_hourly_schedule_runs_at_minute_zero(defs):
    schedule = defs.resolve_schedule_def("hourly_pipeline_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "hourly_pipeline"
    assert schedule.execution_timezone == "UTC"


def test_schedules_target_the_period_that_just_ended(defs):
    at = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
    hourly = defs.resolve_schedule_def("hourly_pipeline_schedule")
    with dg.build_schedule_context(scheduled_execution_time=at) as context:
        request = hourly(context)
    assert request.partition_key == "2025-03-09-23:00"
    daily = defs.resolve_schedule_def("daily_summary_schedule")
    with dg.build_schedule_context(scheduled_execution_time=at) as context:
        request = daily(context)
    assert request.partition_key == "2025-03-09"


def test_daily_schedule_targets_the_daily_job(defs):
    schedule = defs.resolve_schedule_def("daily_summary_schedule")
    assert schedule.job_name == "daily_summary"
    assert schedule.cron_schedule == "30 0 * * *"


def test_sensors_exist(defs):
    assert defs.resolve_sensor_def("new_completions_sensor").job_name == "hourly_pipeline"
    assert defs.resolve_sensor_def("daily_summary_after_hourly")


def test_hourly_partitions_start_at_the_default(defs):
    for key in (RAW, SCORED, ISSUES, REPORT):
        parts = defs.resolve_assets_def(key).partitions_def
        assert isinstance(parts, dg.HourlyPartitionsDefinition)
        assert parts.get_first_partition_key() == "2024-10-01-00:00"
        assert parts.timezone == "UTC"
        assert parts.start == datetime(2024, 10, 1, tzinfo=UTC)
    daily = defs.resolve_assets_def(DAILY).partitions_def
    assert isinstance(daily, dg.DailyPartitionsDefinition)
    assert daily.get_first_partition_key() == "2024-10-01"


def test_monitoring_config_partition_start_moves_the_partitions(tmp_path):
    config = tmp_path / "monitoring.json"
    config.write_text(
        json.dumps({"pipeline_settings": {"partition_start": "2025-02-15"}}), encoding="utf-8"
    )
    defs = build_definitions(make_settings(tmp_path, monitoring_config=str(config)))
    hourly = defs.resolve_assets_def(RAW).partitions_def
    assert hourly.get_first_partition_key() == "2025-02-15-00:00"
    assert defs.resolve_job_def("hourly_pipeline").partitions_def.get_first_partition_key() == (
        "2025-02-15-00:00"
    )
    assert defs.resolve_assets_def(DAILY).partitions_def.get_first_partition_key() == "2025-02-15"


def test_invalid_monitoring_config_is_a_clear_error(tmp_path):
    config = tmp_path / "monitoring.json"
    config.write_text(
        json.dumps({"pipeline_settings": {"alert_conditions": ["quality is bad"]}}),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="alert condition"):
        build_definitions(make_settings(tmp_path, monitoring_config=str(config)))


def test_jobs_select_the_right_assets(defs):
    hourly = defs.resolve_job_def("hourly_pipeline")
    daily = defs.resolve_job_def("daily_summary")
    assert {n.name for n in hourly.nodes} == {
        "raw_completions",
        "scored_conversations",
        "judge_evaluations",
        "conversation_issues",
        "insight_report",
    }
    calibration = defs.resolve_job_def("judge_calibration_job")
    assert {n.name for n in calibration.nodes} == {"judge_calibration"}
    assert {n.name for n in daily.nodes} == {"daily_insight_report"} | {
        k.to_user_string() for k in IMPROVEMENT
    }
    assert isinstance(hourly.partitions_def, dg.HourlyPartitionsDefinition)
    assert isinstance(daily.partitions_def, dg.DailyPartitionsDefinition)


def test_every_asset_backfills_in_a_single_run(defs):
    for key in ALL_ASSETS - {CALIBRATION}:  # the golden set is not partitioned
        policy = defs.resolve_assets_def(key).backfill_policy
        assert policy == dg.BackfillPolicy.single_run(), key.to_user_string()


def test_resources_point_at_the_settings(defs, settings):
    assert defs.resources["source"].export_dir == str(settings.local_dir)
    assert defs.resources["pipeline"].data_dir == str(settings.data_dir)


def test_unsupported_source_is_rejected(tmp_path):
    from dataclasses import replace

    with pytest.raises(ValueError, match="CONV_PIPELINE_SOURCE"):
        build_definitions(replace(make_settings(tmp_path), source="carrier-pigeon"))


def test_improvement_assets_are_daily_and_read_the_hourly_layers(defs):
    deps = _deps(defs)
    for key in IMPROVEMENT:
        assert isinstance(
            defs.resolve_assets_def(key).partitions_def, dg.DailyPartitionsDefinition
        ), key
        assert {SCORED, ISSUES} <= deps[key], key
    drift_checks = _checks(defs, dg.AssetKey("segment_drift"))
    assert not drift_checks["no_segment_drift"].blocking


def test_retention_job_and_schedule(defs):
    job = defs.resolve_job_def("raw_detail_retention")
    assert {n.name for n in job.nodes} == {"delete_expired_raw_detail"}
    schedule = defs.resolve_schedule_def("retention_schedule")
    assert schedule.job_name == "raw_detail_retention"
    assert schedule.cron_schedule == "15 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_privacy_config_is_validated(tmp_path):
    config = tmp_path / "m.json"
    for bad, match in (
        ({"privacy": {"kinds": ["ssn"]}}, "unknown PII kinds"),
        ({"privacy": {"marker": "[X]"}}, "kind"),
        ({"privacy": {"retention": {"raw_detail_days": 0}}}, "raw_detail_days"),
        ({"improvement": {"feedback": {"rating_min": 5, "rating_max": 1}}}, "rating_min"),
        ({"improvement": {"feedback": {"thumb_key": "x"}}}, "thumb_key"),
    ):
        config.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ValueError, match=match):
            build_definitions(make_settings(tmp_path, monitoring_config=str(config)))


# ---- what the UI shows about each asset (docs/UI.md) ------------------------------------------


def test_owners_code_versions_and_kinds_for_the_ui(defs):
    from conv_pipeline.assets import specs as asset_specs

    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for key, spec in specs.items():
        assert spec.owners == ["team:llmops"], key
        assert re.fullmatch(r"[0-9a-f]{12}", spec.code_version), key
    assert specs[SCORED].code_version == asset_specs.code_version(SCORED)
    assert {"openai", "azure", "duckdb", "polars"} <= set(specs[RAW].kinds)
    assert "matplotlib" in specs[REPORT].kinds


def test_a_code_version_follows_the_source_of_its_logic(tmp_path, monkeypatch):
    import shutil

    from conv_pipeline import keys
    from conv_pipeline.assets import specs

    before = {k: specs.code_version(k) for k in specs.LOGIC}
    copy = tmp_path / "conv_pipeline"
    shutil.copytree(specs.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(specs, "PACKAGE", copy)
    assert {k: specs.code_version(k) for k in specs.LOGIC} == before
    with (copy / "core" / "scoring" / "issues.py").open("a", encoding="utf-8") as f:
        f.write("\n# a changed rule\n")
    after = {k: specs.code_version(k) for k in specs.LOGIC}
    assert after[keys.ISSUES] != before[keys.ISSUES]
    assert {k for k in after if after[k] != before[k]} == {keys.ISSUES}
    monkeypatch.setattr(specs, "CODE_VERSION_EPOCH", "2")
    assert all(specs.code_version(k) != after[k] for k in specs.LOGIC)


def test_materializations_record_the_code_version(defs, export, hourly_runner):
    from conftest import hour_keys

    instance = dg.DagsterInstance.ephemeral()
    key = hour_keys()[0]
    hourly_runner(defs, instance, key, key)
    for asset in (RAW, SCORED, ISSUES, REPORT):
        event = instance.get_latest_materialization_event(asset)
        recorded = event.asset_materialization.tags["dagster/code_version"]
        assert recorded == defs.resolve_assets_def(asset).code_versions_by_key[asset], asset


def _meta_value(spec, key: str):
    value = spec.metadata[key]
    return getattr(value, "value", value)


def test_column_schemas_and_lineage_are_definition_metadata(defs):
    from conv_pipeline.core.schema import CONVERSATION_ISSUES, RAW_COMPLETIONS, SCORED_CONVERSATIONS

    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for key, contract in ((RAW, RAW_COMPLETIONS), (SCORED, SCORED_CONVERSATIONS)):
        schema = _meta_value(specs[key], "dagster/column_schema")
        assert [c.name for c in schema.columns] == list(contract), key
        assert all(c.description for c in schema.columns), key
    issues_schema = _meta_value(specs[ISSUES], "dagster/column_schema")
    assert [c.name for c in issues_schema.columns] == list(CONVERSATION_ISSUES)
    lineage = _meta_value(specs[SCORED], "dagster/column_lineage").deps_by_column
    assert set(lineage) == set(SCORED_CONVERSATIONS)
    assert [(d.asset_key, d.column_name) for d in lineage["quality_score"]] == [(RAW, "response")]
    assert [(d.asset_key, d.column_name) for d in lineage["user_type"]] == [(RAW, "user_type")]
    assert {d.column_name for d in lineage["is_error"]} >= {"finish_reason", "response"}
    for deps in lineage.values():  # every source column exists upstream
        assert all(d.column_name in RAW_COMPLETIONS for d in deps)
    issue_lineage = _meta_value(specs[ISSUES], "dagster/column_lineage")
    for deps in issue_lineage.deps_by_column.values():
        assert all(d.asset_key == SCORED and d.column_name in SCORED_CONVERSATIONS for d in deps)


def test_downstream_layers_follow_upstream_when_the_automation_sensor_runs(defs):
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for key in (SCORED, ISSUES, REPORT):
        condition = specs[key].automation_condition
        assert condition is not None and condition.get_label() == "eager_after_blocking_checks"
        labels = {c.get_label() for c in condition.children}
        assert {"eager", "all_deps_blocking_checks_passed"} <= labels, key
    assert specs[RAW].automation_condition is None
    assert specs[DAILY].automation_condition is None
    sensor = defs.resolve_sensor_def("automation_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
