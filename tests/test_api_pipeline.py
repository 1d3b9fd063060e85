"""The whole loop with the API source: an application captures completions through the capture
helper (official SDK → stand-in), the sensor notices them, the hourly run ingests, scores and
reports; the scores equal those of an export of the same data; ``export`` and ``generate``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import dagster as dg
import pytest
from conftest import BASE_HOUR, hour_key, make_records, make_settings, run_hourly, write_export
from openai import AzureOpenAI

from conv_pipeline.capture import SEED_SCENARIOS, create_stored_completion
from conv_pipeline.cli.main import main
from conv_pipeline.core.storage import DataStore
from conv_pipeline.definitions import build_definitions
from conv_pipeline.settings import ApiSettings, Settings
from conv_pipeline_demo.standin import StoredCompletionsServer

KEY = "pipeline-key-42"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}) as s:
        yield s


def api_settings(tmp_path, server, monkeypatch) -> Settings:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    base = make_settings(tmp_path)
    return replace(
        base,
        source="azure_openai",
        api=ApiSettings(
            values={"endpoint": server.azure_endpoint}, api_key_var="AZURE_OPENAI_API_KEY"
        ),
    )


def load(server, records):
    for record in records:
        server.add({k: v for k, v in record.items() if k != "messages"}, record["messages"])


def fixed_clock(t: float):
    return lambda: t


def test_capture_then_sensor_then_run_scores_and_reports(tmp_path, server, monkeypatch):
    # The application stores conversations at known times (the stand-in's clock).
    client = AzureOpenAI(
        azure_endpoint=server.azure_endpoint, api_version="2025-02-01-preview", api_key=KEY
    )
    hours = [BASE_HOUR + timedelta(hours=h) for h in range(3)]
    made = []
    for h, start in enumerate(hours):
        for i in range(8):
            server.clock = fixed_clock(start.timestamp() + i * 300)
            scenario = SEED_SCENARIOS[i % 4]
            made.append(
                create_stored_completion(
                    client,
                    model="gpt-4o-deployment",
                    messages=scenario["messages"],
                    user_type=scenario["user_type"],
                    category=scenario["category"],
                    conversation_id=f"conv-{h}-{i}",
                    prompt_variant="v1",
                )
            )
    assert {c.metadata["user_type"] for c in made} == {s["user_type"] for s in SEED_SCENARIOS}
    creates = server.requests(method="POST")
    assert all(
        r["path"] == "/openai/deployments/gpt-4o-deployment/chat/completions" for r in creates
    )

    settings = api_settings(tmp_path, server, monkeypatch)
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        sensor = defs.resolve_sensor_def("new_completions_sensor")
        context = dg.build_sensor_context(instance=instance, resources=defs.resources)
        result = sensor(context)
        (request,) = result.run_requests
        keys = [hour_key(h) for h in hours]
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (keys[0], keys[-1])
        assert json.loads(result.cursor)["api_watermark"] == int(hours[-1].timestamp()) + 7 * 300
        run = run_hourly(defs, instance, keys[0], keys[-1])
        assert run.success
        raw_meta = run.asset_materializations_for_node("raw_completions")[0].metadata
        assert raw_meta["api_complete"].value is True
        assert KEY not in json.dumps({k: str(v) for k, v in raw_meta.items()})
        # A second tick: nothing new.
        again = sensor(
            dg.build_sensor_context(
                instance=instance, resources=defs.resources, cursor=result.cursor
            )
        )
        assert not again.run_requests

    store = defs.resources["pipeline"].store
    scored = store.query("SELECT completion_id, quality_score FROM scored_conversations")
    assert sorted(scored["completion_id"].to_list()) == sorted(c.id for c in made)
    assert scored["quality_score"].null_count() == 0
    for key in keys:
        md, js = store.report_paths("hourly", key)
        assert md.exists() and json.loads(js.read_text())["totals"]["conversations"] == 8


def test_scores_from_the_api_equal_scores_from_an_export_of_the_same_data(
    tmp_path, server, monkeypatch
):
    records = make_records()
    load(server, records)
    keys = sorted({hour_key(BASE_HOUR + timedelta(hours=h)) for h in range(6)})

    via_api = api_settings(tmp_path / "api", server, monkeypatch)
    via_export = make_settings(tmp_path / "local")
    write_export(via_export.local_dir, records)
    tables = []
    for settings in (via_api, via_export):
        defs = build_definitions(settings)
        with dg.DagsterInstance.ephemeral() as instance:
            assert run_hourly(defs, instance, keys[0], keys[-1]).success
        tables.append(
            defs.resources["pipeline"]
            .store.query("SELECT * FROM scored_conversations")
            .sort("completion_id")
        )
    api, local = tables
    assert api.height == 240
    assert api.equals(local)
    issues = [
        build_definitions(s)
        .resources["pipeline"]
        .store.query("SELECT completion_id, issue FROM conversation_issues ORDER BY ALL")
        for s in (via_api, via_export)
    ]
    assert issues[0].equals(issues[1]) and issues[0].height > 0


def test_export_command_snapshots_the_api_for_an_offline_run(tmp_path, server, monkeypatch, capsys):
    records = make_records(hours=2)
    load(server, records)
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "local")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    out = tmp_path / "snapshot"
    assert main(["export", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "80 new completions written" in printed and KEY not in printed
    assert main(["export", "--out", str(out)]) == 0
    assert "0 new completions written" in capsys.readouterr().out
    monkeypatch.setenv("CONV_PIPELINE_LOCAL_DIR", str(out))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["run"]) == 0
    assert "conversations scored: 80" in capsys.readouterr().out


def test_generate_command_stores_the_recipe_s_four_scenarios(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "azure_openai")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    assert main(["generate", "--model", "gpt-4o-deployment", "--rounds", "2"]) == 0
    assert capsys.readouterr().out.count("Generated conversation") == 8
    stored = server.completions
    assert len(stored) == 8
    ids = sorted(c["metadata"]["conversation_id"] for c in stored)
    assert ids == sorted(f"conv_{i}" for i in range(1, 9))
    assert {c["metadata"]["pipeline_source"] for c in stored} == {"demo"}
    assert {c["metadata"]["user_type"] for c in stored} == {s["user_type"] for s in SEED_SCENARIOS}
    for completion in stored:
        assert [m["role"] for m in server.messages(completion["id"])] == ["system", "user"]


def test_a_bad_endpoint_makes_run_exit_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "azure_openai")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("CONV_PIPELINE_API_MAX_RETRIES", "0")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "could not reach Azure OpenAI http://127.0.0.1:9" in err and KEY not in err


def test_settings_pick_the_api_source_and_keep_the_key_an_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/openai/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("CONV_PIPELINE_API_METADATA", "pipeline_source=chat")
    monkeypatch.setenv("CONV_PIPELINE_API_CONCURRENCY", "8")
    settings = Settings.from_env()
    assert settings.api.api_key_var == "OPENAI_API_KEY" and KEY not in repr(settings)
    source = build_definitions(settings).resources["source"]
    assert isinstance(source.api_key, dg.EnvVar) and source.api_key.env_var_name == "OPENAI_API_KEY"
    assert source.concurrency == 8 and source.metadata_filter == "pipeline_source=chat"
    resolved = source.process_config_and_initialize()
    assert resolved.api_key == KEY
    assert KEY not in resolved.describe()
    monkeypatch.setenv("CONV_PIPELINE_API_CONCURRENCY", "many")
    with pytest.raises(ValueError, match="CONV_PIPELINE_API_CONCURRENCY='many' is not a whole"):
        Settings.from_env()
    monkeypatch.setenv("CONV_PIPELINE_API_CONCURRENCY", "8")
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "bigquery")
    with pytest.raises(ValueError, match="use local, azure_openai or openai"):
        build_definitions(Settings.from_env())


def test_run_command_reads_the_api_directly(tmp_path, server, monkeypatch, capsys):
    load(server, make_records(hours=2))
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "azure_openai")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "source: Azure OpenAI http://127.0.0.1" in out and "80 usable records" in out
    assert "conversations scored: 80" in out and KEY not in out
    # The run's own sync found nothing new: the CLI's sync had read everything.
    assert main(["run"]) == 0
    assert "conversations scored: 80" in capsys.readouterr().out
    raw = DataStore(tmp_path / "data").query(
        "SELECT count(*) AS n, count(DISTINCT completion_id) AS ids FROM raw_completions"
    )
    assert raw.row(0) == (80, 80)
