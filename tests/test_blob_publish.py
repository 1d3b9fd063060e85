"""Blob publishing through dagster-azure's AzureBlobStorageResource against a real Azurite.

The pipeline runs over a temporary data folder with publishing on; the containers are then
listed and every blob downloaded and compared with the local file it copies.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)
from azurite_server import ACCOUNT, KEY, FaultProxy
from conftest import BASE_HOUR, make_records, make_settings, run_hourly, write_export
from dagster_azure.blob import (
    AzureBlobStorageDefaultCredential,
    AzureBlobStorageKeyCredential,
    AzureBlobStorageResource,
)
from dagster_azure.blob.resources import AzureBlobStorageSASTokenCredential

from conv_pipeline.core.publishing.blob import (
    BlobPublishError,
    parse_connection_string,
    publish_files,
    upload_atomic,
)
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB
from conv_pipeline.resources import BlobPublisher, build_blob_publisher
from conv_pipeline.settings import BlobSettings

CONN_VAR = "CONV_PIPELINE_BLOB_CONNECTION_STRING"


def _service(azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


def _blobs(azurite, container: str) -> dict[str, bytes]:
    with _service(azurite) as service:
        c = service.get_container_client(container)
        if not c.exists():
            return {}
        return {b.name: c.download_blob(b.name).readall() for b in c.list_blobs()}


def _local(root: Path, sub: str) -> dict[str, bytes]:
    base = root / sub
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


@pytest.fixture
def containers(azurite):
    """Fresh container names per test (Azurite is shared by the session)."""
    import uuid

    suffix = uuid.uuid4().hex[:8]
    names = {"insights": f"insights-{suffix}", "conversations": f"conversations-{suffix}"}
    yield names
    with _service(azurite) as service:
        for name in names.values():
            c = service.get_container_client(name)
            if c.exists():
                c.delete_container()


def _blob_settings(settings, containers, **kw):
    blob = BlobSettings(
        enabled=True,
        credential="connection_string",
        insights_container=containers["insights"],
        conversations_container=containers["conversations"],
        max_attempts=3,
        backoff_seconds=0.05,
        **kw,
    )
    return dataclasses.replace(settings, blob=blob)


def test_pipeline_publishes_every_report_and_dataset_byte_identical(
    tmp_path, azurite, containers, monkeypatch
):
    monkeypatch.setenv(CONN_VAR, azurite.connection_string)
    settings = _blob_settings(make_settings(tmp_path), containers, publish_parquet=True)
    # a whole day of 24 hours so the daily job has a complete day to publish
    write_export(
        settings.local_dir, make_records(start=BASE_HOUR.replace(hour=0), hours=24, per_hour=20)
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    first = BASE_HOUR.replace(hour=0)
    keys = [(first + timedelta(hours=h)).strftime("%Y-%m-%d-%H:%M") for h in range(24)]
    result = run_hourly(defs, instance, keys[0], keys[-1])
    assert result.success
    day = first.strftime("%Y-%m-%d")
    daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(instance=instance, partition_key=day)
    assert daily.success

    root = settings.data_dir
    insights = _blobs(azurite, containers["insights"])
    local_reports = _local(root, "reports")
    local_datasets = _local(root, "datasets")
    assert len(local_reports) >= 24 * 2 + 2  # 24 hourly md+json, the daily md+json, and more
    hourly = [n for n in local_reports if n.startswith("reports/hourly/")]
    assert sum(1 for n in hourly if n.endswith((".md", ".json"))) == 48
    assert local_datasets, "the daily job wrote curated datasets"
    # every local report and dataset file is in the container once, byte for byte
    assert insights == {**local_reports, **local_datasets}
    assert f"reports/daily/{day}.md" in insights
    assert f"reports/hourly/{day}/05.json" in insights

    parquet = _blobs(azurite, containers["conversations"])
    for table in ("raw_completions", "scored_conversations", "conversation_issues"):
        for key in keys:
            name = f"{table}/{day}/{key[11:13]}.parquet"
            assert parquet[name] == (root / "tables" / name).read_bytes()
    assert f"insight_reports/hourly/{day}/00.parquet" in parquet

    # the published assets are in the lineage, after the reports
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("insight_report") in graph.get(dg.AssetKey("published_reports")).parent_keys
    mat = instance.get_latest_materialization_event(dg.AssetKey("published_reports"))
    meta = mat.asset_materialization.metadata
    assert meta[f"{containers['insights']}.blobs_uploaded"].value == len(hourly)

    # the connection string (and its key) never reach the event log
    for record in instance.get_records_for_run(result.run_id).records:
        text = str(record.event_log_entry)
        assert KEY not in text and azurite.connection_string not in text

    # the retention job scrubs the (2025, so expired) raw detail locally; the sensor-requested
    # sync job makes the Blob copies follow: deleted where the file went, replaced where rewritten
    retention = defs.resolve_job_def("raw_detail_retention").execute_in_process(instance=instance)
    assert retention.success
    success_event = next(
        e for e in retention.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS
    )
    with dg.build_run_status_sensor_context(
        sensor_name="blob_retention_after_retention",
        dagster_event=success_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(retention.run_id),
    ) as ctx:
        request = defs.resolve_sensor_def("blob_retention_after_retention")(ctx)
    assert request.run_key == f"blob-retention:{retention.run_id}"
    sync = defs.resolve_job_def("blob_retention_sync").execute_in_process(instance=instance)
    assert sync.success
    changed = sync.output_for_node("sync_blob_after_retention")
    assert (
        changed[f"{containers['insights']}.blobs_uploaded"]
        + changed[f"{containers['insights']}.blobs_deleted"]
        > 0
    )
    assert changed[f"{containers['conversations']}.blobs_uploaded"] > 0  # raw texts removed
    assert _blobs(azurite, containers["insights"]) == {
        **_local(root, "reports"),
        **_local(root, "datasets"),
    }
    after = _blobs(azurite, containers["conversations"])
    assert set(after) == set(parquet)
    assert all(after[n] == (root / "tables" / n).read_bytes() for n in after)


def test_republishing_replaces_a_partition_and_skips_what_is_unchanged(
    tmp_path, azurite, containers, monkeypatch
):
    monkeypatch.setenv(CONN_VAR, azurite.connection_string)
    settings = _blob_settings(make_settings(tmp_path), containers)
    write_export(settings.local_dir, make_records(hours=2))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    keys = [
        BASE_HOUR.strftime("%Y-%m-%d-%H:%M"),
        (BASE_HOUR + timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"),
    ]
    assert run_hourly(defs, instance, keys[0], keys[1]).success
    before = _blobs(azurite, containers["insights"])
    assert before == _local(settings.data_dir, "reports") and len(before) >= 4

    # same data again: nothing uploaded, nothing changed
    assert run_hourly(defs, instance, keys[0], keys[1]).success
    mat = instance.get_latest_materialization_event(dg.AssetKey("published_reports"))
    meta = mat.asset_materialization.metadata
    assert meta[f"{containers['insights']}.blobs_uploaded"].value == 0
    assert meta[f"{containers['insights']}.blobs_unchanged"].value == len(before)
    assert _blobs(azurite, containers["insights"]) == before

    # the first hour degrades: its report changes and the blob is replaced, not duplicated
    write_export(settings.local_dir, make_records(hours=2, degraded_hours=[0]))
    assert run_hourly(defs, instance, keys[0], keys[1]).success
    after = _blobs(azurite, containers["insights"])
    assert set(after) == set(before)
    md = f"reports/hourly/{keys[0][:10]}/{keys[0][11:13]}.md"
    assert after[md] != before[md]
    assert after[md] == (settings.data_dir / md).read_bytes()

    # a file that disappeared from the partition is removed from the blob prefix too
    publisher = BlobPublisher(
        credential="connection_string",
        secret=azurite.connection_string,
        insights_container=containers["insights"],
    )
    json_name = md[:-3] + ".json"
    result = publisher.publish(
        containers["insights"], {md: settings.data_dir / md}, [md[:-3] + "."]
    )
    stem = md[:-3] + "."
    others = sorted(n for n in after if n.startswith(stem) and n != md)
    assert json_name in others
    assert result.deleted == others  # the JSON and the plots beside it
    left = _blobs(azurite, containers["insights"])
    assert [n for n in left if n.startswith(stem)] == [md]


def test_blob_publishing_is_off_by_default(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "published_reports" not in keys and "published_daily" not in keys
    assert "blob" not in defs.resources


def _one_file(tmp_path: Path, text: str = "# report\n") -> dict[str, Path]:
    path = tmp_path / "r.md"
    path.write_text(text, encoding="utf-8")
    return {"reports/hourly/2025-03-10/08.md": path}


def test_account_key_and_sas_credentials_through_dagster_azure(tmp_path, azurite, containers):
    files = _one_file(tmp_path)
    key_pub = BlobPublisher(account_url=azurite.account_url, credential="key", secret=KEY)
    assert isinstance(key_pub._storage(), AzureBlobStorageResource)
    assert isinstance(key_pub._storage().credential, AzureBlobStorageKeyCredential)
    r = key_pub.publish(containers["insights"], files, [])
    assert r.uploaded == list(files)

    sas = generate_account_sas(
        ACCOUNT,
        KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, list=True, create=True, delete=True
        ),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sas_pub = BlobPublisher(account_url=azurite.account_url, credential="sas", secret=sas)
    assert isinstance(sas_pub._storage().credential, AzureBlobStorageSASTokenCredential)
    files2 = _one_file(tmp_path, "# changed\n")
    r = sas_pub.publish(containers["insights"], files2, [])
    assert r.uploaded == list(files2)
    assert _blobs(azurite, containers["insights"]) == {
        "reports/hourly/2025-03-10/08.md": b"# changed\n"
    }
    # the SAS never shows in the URL the publisher reports
    assert (
        BlobPublisher(account_url=f"{azurite.account_url}?{sas}", credential="default").display_url
        == azurite.account_url
    )


def test_settings_build_each_credential_kind():
    base = BlobSettings(enabled=True, account_url="https://acct.blob.core.windows.net")
    key = build_blob_publisher(dataclasses.replace(base, credential="key"))
    assert key.credential == "key" and isinstance(key.secret, dg.EnvVar)
    assert key.secret.env_var_name == "CONV_PIPELINE_BLOB_ACCOUNT_KEY"
    sas = build_blob_publisher(dataclasses.replace(base, credential="sas"))
    assert sas.secret.env_var_name == "CONV_PIPELINE_BLOB_SAS_TOKEN"
    default = build_blob_publisher(dataclasses.replace(base, credential="default"))
    assert default.secret is None
    assert isinstance(default._storage().credential, AzureBlobStorageDefaultCredential)
    conn = build_blob_publisher(BlobSettings(enabled=True, credential="connection_string"))
    assert conn.secret.env_var_name == "CONV_PIPELINE_BLOB_CONNECTION_STRING"
    with pytest.raises(ValueError, match="CONV_PIPELINE_BLOB_ACCOUNT_URL"):
        build_blob_publisher(BlobSettings(enabled=True, credential="key"))


def test_wrong_credentials_give_a_clear_error_without_the_secret(tmp_path, azurite, containers):
    wrong = base64.b64encode(b"not the right key at all, but 64 bytes long........").decode()
    pub = BlobPublisher(
        account_url=azurite.account_url, credential="key", secret=wrong, backoff_seconds=0
    )
    with pytest.raises(BlobPublishError) as err:
        pub.publish(containers["insights"], _one_file(tmp_path), [])
    message = str(err.value)
    assert "refused the credentials" in message and "HTTP 403" in message
    assert azurite.account_url in message
    assert wrong not in message
    assert _blobs(azurite, containers["insights"]) == {}


def test_connection_string_errors_name_the_missing_part():
    parts = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
    )
    assert parts.account_url == "https://acct.blob.core.windows.net"
    with pytest.raises(ValueError, match="neither AccountKey nor SharedAccessSignature"):
        parse_connection_string("AccountName=acct;BlobEndpoint=http://127.0.0.1:1/acct")
    with pytest.raises(ValueError, match="UseDevelopmentStorage"):
        parse_connection_string("UseDevelopmentStorage=true")
    with pytest.raises(dg.Failure, match="CONV_PIPELINE_BLOB_CONNECTION_STRING") as err:
        _ = BlobPublisher(
            credential="connection_string", secret="AccountName=acct;AccountKey"
        ).display_url
    assert "acct" not in str(err.value)


def test_an_interrupted_upload_never_shows_under_the_final_name(tmp_path, azurite, containers):
    with _service(azurite) as service:
        container = service.get_container_client(containers["insights"])
        container.create_container()

        def broken(first: bytes):
            yield first
            raise ConnectionError("the process died in the middle of the upload")

        # a new blob: nothing is visible after the failure
        with pytest.raises(ConnectionError):
            upload_atomic(
                container, "new.md", broken(b"x" * 10), sha256="0", content_type="text/plain"
            )
        assert [b.name for b in container.list_blobs()] == []

        # an existing blob: the old version stays whole until the new one is committed
        container.upload_blob("old.md", b"old version")
        with pytest.raises(ConnectionError):
            upload_atomic(
                container, "old.md", broken(b"new"), sha256="0", content_type="text/plain"
            )
        assert container.download_blob("old.md").readall() == b"old version"
        upload_atomic(
            container, "old.md", [b"new ", b"version"], sha256="1", content_type="text/plain"
        )
        assert container.download_blob("old.md").readall() == b"new version"


def test_a_failed_upload_is_retried_and_a_persistent_failure_leaves_the_old_blob(
    tmp_path, azurite, containers
):
    commits = {"n": 0}

    def fail_first_commit(method: str, path: str):
        if method == "PUT" and "comp=blocklist" in path:
            commits["n"] += 1
            if commits["n"] == 1:
                return 503
        return None

    proxy = FaultProxy(azurite.port, fail_first_commit)
    try:
        res = {"account_url": proxy.account_url, "credential": "key", "secret": KEY}
        files = _one_file(tmp_path, "# first\n")
        result = BlobPublisher(**res, backoff_seconds=0.01).publish(
            containers["insights"], files, []
        )
        assert result.retries == 1 and result.uploaded == list(files)
        assert [s for s in proxy.seen if s[2] == 503], "the proxy did fail a commit"
        assert _blobs(azurite, containers["insights"]) == {
            "reports/hourly/2025-03-10/08.md": b"# first\n"
        }

        proxy.fail = lambda method, path: 503 if "comp=blocklist" in path else None
        with pytest.raises(BlobPublishError, match="HTTP 503"):
            BlobPublisher(**res, max_attempts=3, backoff_seconds=0.01).publish(
                containers["insights"], _one_file(tmp_path, "# second\n"), []
            )
        assert sum(1 for s in proxy.seen if s[2] == 503) == 1 + 3
        # the published version is still the whole first one
        assert _blobs(azurite, containers["insights"]) == {
            "reports/hourly/2025-03-10/08.md": b"# first\n"
        }
    finally:
        proxy.close()


def test_a_missing_container_is_created(tmp_path, azurite, containers):
    with _service(azurite) as service:
        assert not service.get_container_client(containers["conversations"]).exists()
        result = publish_files(service, containers["conversations"], _one_file(tmp_path))
        assert (
            result.uploaded and service.get_container_client(containers["conversations"]).exists()
        )


def test_cli_run_publishes_every_report_once_byte_identical(
    tmp_path, azurite, containers, monkeypatch, capsys
):
    """The issue's acceptance scenario: `conv-pipeline run` with Blob publishing on, then the
    containers listed: every local report and dataset once, byte for byte; Parquet too."""
    from conv_pipeline.cli import main as cli

    data = tmp_path / "data"
    for k, v in {
        "CONV_PIPELINE_DATA_DIR": str(data),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CONV_PIPELINE_BLOB_ENABLED": "true",
        "CONV_PIPELINE_BLOB_CONNECTION_STRING": azurite.connection_string,
        "CONV_PIPELINE_BLOB_INSIGHTS_CONTAINER": containers["insights"],
        "CONV_PIPELINE_BLOB_CONVERSATIONS_CONTAINER": containers["conversations"],
        "CONV_PIPELINE_BLOB_PUBLISH_PARQUET": "true",
    }.items():
        monkeypatch.setenv(k, v)
    assert cli.main(["sample", "--n", "600", "--hours", "48"]) == 0
    assert cli.main(["run"]) == 0
    out = capsys.readouterr().out
    assert f"published: Blob containers {containers['insights']}" in out
    assert azurite.connection_string not in out
    insights = _blobs(azurite, containers["insights"])
    local = {**_local(data, "reports"), **_local(data, "datasets")}
    assert insights == local
    assert any("/range/" in n for n in insights)  # the ranged daily run's whole-range report
    parquet = _blobs(azurite, containers["conversations"])
    hours = {n for n in parquet if n.startswith("scored_conversations/")}
    assert len(hours) == 48
    assert all(parquet[n] == (data / "tables" / n).read_bytes() for n in parquet)


def test_an_account_key_from_the_environment_is_resolved_in_a_run(
    tmp_path, azurite, containers, monkeypatch
):
    monkeypatch.setenv("CONV_PIPELINE_BLOB_ACCOUNT_KEY", KEY)
    settings = dataclasses.replace(
        make_settings(tmp_path),
        blob=BlobSettings(
            enabled=True,
            account_url=azurite.account_url,
            credential="key",
            insights_container=containers["insights"],
        ),
    )
    write_export(settings.local_dir, make_records(hours=1))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    key = BASE_HOUR.strftime("%Y-%m-%d-%H:%M")
    result = run_hourly(defs, instance, key, key)
    assert result.success
    published = _blobs(azurite, containers["insights"])
    assert published == _local(settings.data_dir, "reports")
    assert f"reports/hourly/{key[:10]}/{key[11:13]}.json" in published
    for record in instance.get_records_for_run(result.run_id).records:
        assert KEY not in str(record.event_log_entry)
