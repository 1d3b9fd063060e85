"""The Stored Completions API source, end to end through the official ``openai`` SDK against the
stand-in server on loopback (``conv_pipeline_demo.standin``): pagination, filters, the overlap and
de-duplication, late arrivals, every injected fault, retries running out, a process killed
mid-sync, time budgets, Entra ID and key authentication."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import BASE_HOUR, hour_key, make_records

from conv_pipeline.core.ingestion.api import ApiConfig, ApiExporter, ApiSourceError
from conv_pipeline.core.storage import DataStore
from conv_pipeline.resources import StoredCompletionsApiSource
from conv_pipeline_demo.standin import StoredCompletionsServer

KEY = "test-key-0123456789"
PARTITION_START = datetime(2024, 10, 1, tzinfo=UTC)


def load(server: StoredCompletionsServer, records: list[dict]) -> None:
    for record in records:
        server.add({k: v for k, v in record.items() if k != "messages"}, record["messages"])


def exported(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("api-*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text("utf-8").splitlines() if line)
    return out


def azure(server: StoredCompletionsServer, **kw) -> ApiConfig:
    base = {
        "kind": "azure_openai",
        "endpoint": server.azure_endpoint,
        "api_key": KEY,
        "max_retries": 3,
        "timeout_seconds": 5.0,
    }
    return ApiConfig(**{**base, **kw})


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}) as s:
        yield s


@pytest.fixture
def records() -> list[dict]:
    return make_records()  # 240 completions over 6 hours of 2025-03-10


def assert_exactly_once(folder: Path, records: list[dict]) -> list[dict]:
    got = exported(folder)
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)), "a completion was written twice"
    assert set(ids) == {r["id"] for r in records}
    return got


# ---- reading ---------------------------------------------------------------------------------


def test_every_page_is_read_and_every_completion_lands_once_with_its_messages(
    server, records, tmp_path
):
    load(server, records)
    stats = ApiExporter(tmp_path, azure(server, page_size=7, chunk_records=50)).sync()
    got = assert_exactly_once(tmp_path, records)
    assert stats.complete and stats.new_records == 240
    assert stats.list_requests == math.ceil(240 / 7)
    assert stats.message_requests == 240
    assert stats.chunks_written == math.ceil(240 / 50)
    # The completion is kept exactly as the service returned it, plus its messages.
    by_id = {r["id"]: r for r in got}
    some = records[17]
    assert by_id[some["id"]]["choices"] == server.get(some["id"])["choices"]
    assert by_id[some["id"]]["messages"] == server.messages(some["id"])
    assert stats.watermark == max(r["created"] for r in records)
    # The list walked newest first, 7 at a time, following `after`, on Azure's list path.
    lists = server.requests(method="GET", path_contains="/chat/completions")
    lists = [r for r in lists if not r["path"].endswith("/messages")]
    assert all(r["path"] == "/openai/chat/completions" for r in lists)
    assert all(r["query"]["order"] == "desc" and r["query"]["limit"] == "7" for r in lists)
    assert "after" not in lists[0]["query"] and all("after" in r["query"] for r in lists[1:])


def test_a_long_conversation_has_all_its_messages_read_across_pages(server, tmp_path):
    (record,) = make_records(hours=1, per_hour=1)
    record["messages"] = [
        {"id": f"{record['id']}-{i}", "role": "user" if i % 2 else "assistant", "content": f"m{i}"}
        for i in range(250)
    ]
    load(server, [record])
    stats = ApiExporter(tmp_path, azure(server)).sync()
    (got,) = exported(tmp_path)
    assert [m["content"] for m in got["messages"]] == [f"m{i}" for i in range(250)]
    assert stats.message_requests == 3  # 100 + 100 + 50


def test_a_second_sync_reads_only_the_head_and_writes_nothing_twice(server, records, tmp_path):
    load(server, records)
    exporter = ApiExporter(tmp_path, azure(server, page_size=10))
    exporter.sync()
    before = len(server.requests())
    again = exporter.sync()
    assert again.new_records == 0 and again.message_requests == 0
    # The walk stops below the watermark minus the overlap: the newest hour and a page more.
    assert again.list_requests <= math.ceil(41 / 10) + 1
    assert again.skipped_known >= 40
    assert len(server.requests()) - before == again.list_requests
    assert_exactly_once(tmp_path, records)


def test_metadata_and_model_filters_are_sent_to_the_service(server, records, tmp_path):
    load(server, records)
    model = records[0]["model"]
    cfg = azure(server, metadata={"user_type": "pro", "prompt_variant": "v2"}, model=model)
    ApiExporter(tmp_path, cfg).sync()
    expected = {
        r["id"]
        for r in records
        if r["metadata"]["user_type"] == "pro"
        and r["metadata"]["prompt_variant"] == "v2"
        and r["model"] == model
    }
    assert expected and {r["id"] for r in exported(tmp_path)} == expected
    query = server.requests(method="GET")[0]["query"]
    assert query["metadata[user_type]"] == "pro" and query["model"] == model


def test_a_late_arrival_inside_the_overlap_lands_in_its_own_hour(server, records, tmp_path):
    load(server, records)
    source = StoredCompletionsApiSource(
        kind="azure_openai", endpoint=server.azure_endpoint, api_key=KEY, timeout_seconds=5
    )
    store = DataStore(tmp_path / "data")
    first = source.sync(store, PARTITION_START)
    watermark = first.extra["api_watermark"]
    late, too_late = make_records(hours=1, per_hour=2, id_prefix="chatcmpl-late", seed=3)
    late["created"] = watermark - 40 * 60  # 40 minutes older than the newest: inside the overlap
    too_late["created"] = watermark - 3 * 3600  # older than the overlap: documented as not read
    load(server, [late, too_late])
    second = source.sync(store, PARTITION_START)
    assert second.extra["api_new_records"] == 1
    key = hour_key(datetime.fromtimestamp(late["created"], UTC))
    assert key in second.changed_hours
    assert second.hours[key] == first.hours[key] + 1
    rows = source.read_hours(store, PARTITION_START, [key])
    assert late["id"] in rows["completion_id"].to_list()
    assert rows["completion_id"].is_unique().all()
    assert (
        too_late["id"]
        not in source.read_hours(store, PARTITION_START, sorted(second.hours))[
            "completion_id"
        ].to_list()
    )


@pytest.mark.parametrize(
    "kind, where, times",
    [
        ("429", "/openai/chat/completions", 2),
        ("429", "/messages", 5),
        ("500", "/openai/chat/completions", 1),
        ("503", "/messages", 2),
        ("drop", "/openai/chat/completions", 1),
        ("drop", "/messages", 2),
        ("slow", "/messages", 1),
    ],
)
def test_every_injected_fault_is_retried_and_nothing_is_lost(
    server, records, tmp_path, kind, where, times
):
    load(server, records)
    rule = server.faults.add(kind, times=times, path_contains=where, delay_s=2.0)
    cfg = azure(server, page_size=50, timeout_seconds=1.0 if kind == "slow" else 5.0)
    stats = ApiExporter(tmp_path, cfg).sync()
    assert rule.fired == times
    assert stats.complete
    assert_exactly_once(tmp_path, records)


def test_retry_after_ms_is_honoured(server, records, tmp_path):
    load(server, records[:5])
    server.faults.add("429", times=1, path_contains="/openai/chat/completions", retry_after_ms=600)
    started = time.monotonic()
    ApiExporter(tmp_path, azure(server)).sync()
    assert time.monotonic() - started >= 0.6
    first, second = server.requests(path_contains="/openai/chat/completions")[:2]
    assert first["fault"] == "429" and second["time"] - first["time"] >= 0.6


def test_when_retries_run_out_the_error_says_what_to_do_and_a_rerun_loses_nothing(
    server, records, tmp_path
):
    load(server, records)
    victim = sorted(records, key=lambda r: (r["created"], r["id"]))[-95]  # on the 4th page
    server.faults.add("500", times=None, path_contains=f"{victim['id']}/messages")
    exporter = ApiExporter(tmp_path, azure(server, page_size=30, chunk_records=30, max_retries=1))
    with pytest.raises(ApiSourceError) as err:
        exporter.sync()
    message = str(err.value)
    assert "answered 500" in message and victim["id"] in message and "1 retries" in message
    assert KEY not in message
    kept = exported(tmp_path)
    assert 0 < len(kept) < 240 and victim["id"] not in {r["id"] for r in kept}
    state = exporter.load_state()
    assert state["pass_"]["after"]  # the cursor stops after what was written
    server.faults.clear()
    stats = exporter.sync()
    assert stats.complete and stats.new_records == 240 - len(kept)
    assert_exactly_once(tmp_path, records)


def test_rate_limited_to_the_end_gives_a_message_a_person_can_act_on(server, records, tmp_path):
    load(server, records[:10])
    server.faults.add("429", times=None, retry_after_ms=10)
    with pytest.raises(ApiSourceError, match="still rate-limiting .*CONV_PIPELINE_API_CONCURRENCY"):
        ApiExporter(tmp_path, azure(server, max_retries=2)).sync()


def test_an_unreachable_service_is_reported_as_such(tmp_path):
    cfg = ApiConfig(kind="azure_openai", endpoint="http://127.0.0.1:9", api_key=KEY, max_retries=0)
    with pytest.raises(ApiSourceError, match="could not reach Azure OpenAI http://127.0.0.1:9"):
        ApiExporter(tmp_path, cfg).sync()


def test_a_time_budget_stops_cleanly_and_the_pass_resumes(records, tmp_path):
    with StoredCompletionsServer(api_keys={KEY}, latency_ms=20) as server:
        load(server, records)
        exporter = ApiExporter(tmp_path, azure(server, page_size=10, chunk_records=10))
        partial = exporter.sync(budget_seconds=0.25)
        assert not partial.complete and 0 < len(exported(tmp_path)) < 240
        newer = make_records(
            start=BASE_HOUR + timedelta(hours=7),
            hours=1,
            per_hour=3,
            seed=5,
            id_prefix="chatcmpl-new",
        )
        load(server, newer)  # arrives while the first pass is unfinished
        rest = exporter.sync()
        assert rest.complete and rest.passes == 2  # the old walk, then the head again
        assert_exactly_once(tmp_path, records + newer)


CRASH_SCRIPT = """
import sys
from conv_pipeline.core.ingestion.api import ApiConfig, ApiExporter
cfg = ApiConfig(kind="azure_openai", endpoint=sys.argv[2], api_key=sys.argv[3], page_size=10,
                chunk_records=10, concurrency=4)
ApiExporter(sys.argv[1], cfg).sync()
"""


def test_a_process_killed_mid_sync_loses_nothing_and_duplicates_nothing(records, tmp_path):
    with StoredCompletionsServer(api_keys={KEY}, latency_ms=15) as server:
        load(server, records)
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASH_SCRIPT, str(tmp_path), server.azure_endpoint, KEY],
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while len(list(tmp_path.glob("api-*.jsonl"))) < 3 and time.monotonic() < deadline:
                assert proc.poll() is None, "the sync finished before it could be killed"
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert 0 < len(exported(tmp_path)) < 240
        stats = ApiExporter(tmp_path, azure(server, page_size=10)).sync()
        assert stats.complete
        assert_exactly_once(tmp_path, records)


def test_the_service_s_messy_shapes_are_kept_and_parsed(records, tmp_path):
    odd = make_records(hours=1, per_hour=3, id_prefix="chatcmpl-odd", seed=9)
    odd[0]["choices"] = []
    odd[1]["choices"][0]["message"]["content"] = None
    odd[1]["choices"][0]["message"]["content_parts"] = [{"type": "text", "text": "part"}]
    odd[2]["choices"][0]["finish_reason"] = None
    odd[2]["unknown_field"] = {"nested": [1, 2]}
    with StoredCompletionsServer(api_keys={KEY}, messy=True) as server:
        load(server, records + odd)
        source = StoredCompletionsApiSource(
            kind="azure_openai", endpoint=server.azure_endpoint, api_key=KEY
        )
        store = DataStore(tmp_path / "data")
        sync = source.sync(store, PARTITION_START)
    assert sync.records == 243 and sync.rejected == 0
    got = {r["id"]: r for r in exported(next((tmp_path / "data").rglob("export")))}
    assert got[odd[2]["id"]]["unknown_field"] == {"nested": [1, 2]}
    assert any(r.get("object") is None for r in got.values())  # kept as the service sent it
    rows = source.read_hours(store, PARTITION_START, sorted(sync.hours))
    assert rows.height == 243 and rows["completion_id"].is_unique().all()
    empty = rows.filter(rows["completion_id"] == odd[0]["id"])
    assert empty["n_choices"].item() == 0 and empty["response"].item() == ""


# ---- authentication --------------------------------------------------------------------------


class _IdentityEndpoint:
    """The App Service managed-identity endpoint that ``DefaultAzureCredential`` asks for a token
    when ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER`` are set: a real credential flow, offline."""

    def __init__(self, token: str):
        self.calls: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.calls.append(self.path)
                body = json.dumps(
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": "https://cognitiveservices.azure.com",
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/msi/token"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def entra(monkeypatch):
    endpoint = _IdentityEndpoint("entra-token-abc")
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header")
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize("kind", ["azure_openai", "openai"])
def test_without_a_key_entra_id_tokens_are_used(entra, records, tmp_path, kind):
    with StoredCompletionsServer(api_keys=(), bearer_tokens={"entra-token-abc"}) as server:
        load(server, records[:12])
        cfg = (
            ApiConfig(kind=kind, endpoint=server.azure_endpoint)
            if kind == "azure_openai"
            else ApiConfig(kind=kind, base_url=server.openai_v1_base)
        )
        ApiExporter(tmp_path, cfg).sync()
        assert {r["auth"] for r in server.requests()} == {"bearer_token"}
    assert entra.calls and "resource=https://cognitiveservices.azure.com" in entra.calls[0]
    assert_exactly_once(tmp_path, records[:12])


def test_keys_go_in_the_api_key_header_for_azure_and_as_bearer_elsewhere(server, records, tmp_path):
    load(server, records[:3])
    ApiExporter(tmp_path / "a", azure(server)).sync()
    assert {r["auth"] for r in server.requests()} == {"api_key"}
    n = len(server.requests())
    ApiExporter(
        tmp_path / "b", ApiConfig(kind="openai", base_url=server.openai_v1_base, api_key=KEY)
    ).sync()
    assert {r["auth"] for r in server.requests()[n:]} == {"bearer_api_key"}
    # Nothing the pipeline wrote holds the key.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_wrong_key_is_refused_with_a_clear_message(server, records, tmp_path):
    load(server, records[:3])
    with pytest.raises(ApiSourceError, match=r"refused the credentials \(401\).*API_KEY") as err:
        ApiExporter(tmp_path, azure(server, api_key="wrong-key")).sync()
    assert "wrong-key" not in str(err.value)


def test_an_old_api_version_is_refused_before_any_call(tmp_path):
    cfg = ApiConfig(kind="azure_openai", endpoint="http://127.0.0.1:9", api_version="2024-10-21")
    with pytest.raises(ApiSourceError, match="too old for stored completions"):
        ApiExporter(tmp_path, cfg).sync()


def test_changing_the_filters_starts_a_new_copy(server, records, tmp_path):
    load(server, records)
    store = DataStore(tmp_path / "data")
    everything = StoredCompletionsApiSource(
        kind="azure_openai", endpoint=server.azure_endpoint, api_key=KEY
    )
    pro = everything.model_copy(update={"metadata_filter": "user_type=pro"})
    assert everything.sync(store, PARTITION_START).records == 240
    expected = sum(r["metadata"]["user_type"] == "pro" for r in records)
    assert pro.sync(store, PARTITION_START).records == expected
    assert replace(everything.api_config()).fingerprint() != pro.api_config().fingerprint()


def test_a_service_that_ignores_order_desc_still_gives_everything_once(
    server, records, tmp_path, monkeypatch
):
    ascending = server.store.list

    def list_ignoring_order(**kwargs):
        return ascending(**{**kwargs, "order": "asc"})

    monkeypatch.setattr(server.store, "list", list_ignoring_order)
    load(server, records)
    exporter = ApiExporter(tmp_path, azure(server, page_size=25))
    exporter.sync()
    newer = make_records(
        start=BASE_HOUR + timedelta(hours=8), hours=2, per_hour=5, seed=4, id_prefix="chatcmpl-new"
    )
    load(server, newer)
    again = exporter.sync()
    assert again.new_records == 10
    assert_exactly_once(tmp_path, records + newer)
    assert again.watermark == max(r["created"] for r in newer)
