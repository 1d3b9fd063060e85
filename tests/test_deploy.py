"""deploy/: the production instance files are loaded with Dagster's own validation, and each
configured class (Postgres storage, Blob compute logs, the Kubernetes and Container Apps run
launchers, the queued coordinator) is built from its configuration, so the files cannot rot.

Dagster has no public "validate this dagster.yaml" function: ``dagster_instance_config`` is the
loader ``DagsterInstance.from_config`` itself calls, and ``ConfigurableClassData.rehydrate`` is
how the instance builds each configured class. Building the whole instance would connect to
Postgres, which a test machine does not have; everything short of that is exercised here.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

ENV = {
    "DAGSTER_PG_HOST": "pg.example.internal",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_PG_DB": "dagster",
    "CONV_PIPELINE_STORAGE_ACCOUNT": "convpipelinestore",
    "DAGSTER_K8S_NAMESPACE": "conv-pipeline",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "CONV_PIPELINE_RESOURCE_GROUP": "rg-conv-pipeline",
    "CONV_PIPELINE_REGION": "westeurope",
    "CONV_PIPELINE_ACA_ENVIRONMENT_ID": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "CONV_PIPELINE_IDENTITY_ID": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
}


@pytest.fixture
def env(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


def _build(section: dict):
    return ConfigurableClassData(
        section["module"], section["class"], yaml.safe_dump(section.get("config") or {})
    ).rehydrate()


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.aca.yaml"])
def test_instance_files_pass_dagsters_validation(env, name):
    config, custom_class = dagster_instance_config(str(DEPLOY), name)
    assert custom_class is None
    pg = config["storage"]["postgres"]["postgres_db"]
    assert pg["params"] == {"sslmode": "require"}
    compute_logs = _build(config["compute_logs"])
    assert type(compute_logs).__name__ == "AzureBlobComputeLogManager"
    coordinator = _build(config["run_coordinator"])
    assert type(coordinator).__name__ == "QueuedRunCoordinator"
    launcher_cfg = config["run_launcher"]
    if name == "dagster.aca.yaml":
        launcher = _build(launcher_cfg)
        assert type(launcher).__name__ == "AcaRunLauncher"
        assert "CONV_PIPELINE_DATA_DIR" in launcher.env_vars
    else:
        # K8sRunLauncher reads the cluster's service account when built: validate its config
        # against its own schema instead (the same check, short of talking to a cluster).
        from dagster._config import process_config
        from dagster_k8s import K8sRunLauncher

        result = process_config(K8sRunLauncher.config_type(), launcher_cfg["config"])
        assert result.success, result.errors
        assert result.value["volume_mounts"][0]["mountPath"] == "/data"


def test_postgres_storage_class_accepts_the_same_config(env):
    from dagster._config import process_config
    from dagster_postgres import PostgresRunStorage

    config, _ = dagster_instance_config(str(DEPLOY), "dagster.yaml")
    result = process_config(PostgresRunStorage.config_type(), config["storage"]["postgres"])
    assert result.success, result.errors


def test_a_misspelt_key_is_caught(env, tmp_path):
    text = (DEPLOY / "dagster.yaml").read_text().replace("upload_interval:", "upload_intervall:")
    (tmp_path / "dagster.yaml").write_text(text)
    config, _ = dagster_instance_config(str(tmp_path), "dagster.yaml")
    with pytest.raises(dg.DagsterInvalidConfigError, match="upload_intervall"):
        _build(config["compute_logs"])


def test_runs_use_the_multiprocess_executor(tmp_path):
    from conftest import make_settings

    from conv_pipeline.definitions import build_definitions

    defs = build_definitions(make_settings(tmp_path))
    for job in ("hourly_pipeline", "daily_summary"):
        executor = defs.resolve_job_def(job).executor_def
        assert executor.name == "multi_or_in_process_executor"


def test_the_image_installs_the_deploy_extra_and_serves_the_definitions():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "'.[deploy]'" in dockerfile
    assert "conv_pipeline.definitions" in dockerfile
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == 4000
