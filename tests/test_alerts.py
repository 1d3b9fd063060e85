"""Alerts: a real pipeline run with a degraded hour, the alert sensor evaluated on the same Dagster
instance, and the Teams (dagster-msteams), Slack (dagster-slack, its WebClient pointed at
loopback) and generic webhook channels all received by one HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from conftest import hour_keys, make_records, make_settings, run_hourly, write_export

from conv_pipeline.core.reporting.alerts import Evaluation, outcomes, transitions
from conv_pipeline.definitions import build_definitions
from conv_pipeline.resources import PipelineStore
from conv_pipeline.resources.alerts import AlertChannels

TOKEN = "xoxb-secret-slack-token-123"
HOOK_SECRET = "sig=very-secret-webhook-signature"
UI = "http://127.0.0.1:3999"


class Receiver:
    """Records every POST; answers like Teams (200), Slack (``{"ok": true}``) and a webhook."""

    def __init__(self):
        self.posts: list[tuple[str, dict, dict]] = []
        self.fail_webhook = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    data = json.loads(body or b"{}")
                else:  # slack_sdk posts form-encoded by default
                    from urllib.parse import parse_qs

                    data = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                status, answer = 200, b"1"
                if self.path.startswith("/slack/"):
                    answer = json.dumps({"ok": True, "channel": "C1", "ts": "1.0"}).encode()
                if self.path.startswith("/webhook") and receiver.fail_webhook:
                    receiver.fail_webhook -= 1
                    status, answer = 503, b"busy"
                else:
                    receiver.posts.append((self.path, data, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def by_channel(self, prefix: str) -> list[dict]:
        return [d for p, d, _ in self.posts if p.startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Captured:
    def __init__(self, capfd):
        self.capfd = capfd
        self.seen = ""

    @property
    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.seen += out + err
        return self.seen


@pytest.fixture
def dagster_log(capfd):
    """What the sensor's ``context.log`` printed (Dagster's console handler writes to stderr)."""
    return _Captured(capfd)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _channels(receiver: Receiver) -> AlertChannels:
    return AlertChannels(
        webhook_url=f"{receiver.url}/webhook?{HOOK_SECRET}",
        teams_hook_url=f"{receiver.url}/teams?{HOOK_SECRET}",
        slack_token=TOKEN,
        slack_channel="#llm-quality",
        slack_base_url=f"{receiver.url}/slack/api/",
        ui_url=UI,
    )


def _tick(defs, instance, resources, cursor):
    sensor = defs.resolve_sensor_def("quality_alerts_sensor")
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=defs
    ) as ctx:
        result = sensor(ctx)
    return result.cursor


def test_one_alert_per_failing_check_and_partition_then_one_recovery(
    tmp_path, receiver, dagster_log, request
):
    settings = make_settings(tmp_path)
    export = write_export(settings.local_dir, make_records(degraded_hours=[2]))
    defs = build_definitions(settings)
    # an instance on disk, as `make dev` uses: SQLite storage with run-sharded event logs
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    request.addfinalizer(instance.dispose)
    keys = hour_keys()
    bad = keys[2]
    resources = {
        "alerts": _channels(receiver),
        "pipeline": PipelineStore(data_dir=str(settings.data_dir)),
    }

    # one ranged run over the six hours: the checks are evaluated once for all of them
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    cursor = _tick(defs, instance, resources, None)

    hooks = receiver.by_channel("/webhook")
    failing = {(a["check_name"], a["partition"]) for a in hooks}
    assert {p for _, p in failing} == {bad}  # only the degraded hour
    assert {c for c, _ in failing} >= {"alert_average_quality", "alert_quality_issue_rate"}
    assert len(hooks) == len(failing)  # exactly one per (check, partition)
    assert all(a["kind"] == "failing" and a["severity"] == "ERROR" for a in hooks)
    # the WARN quality target is logged, not sent to the channels
    assert "quality_threshold" not in {c for c, _ in failing}
    assert "WARN quality_threshold on scored_conversations" in dagster_log.text
    # the same alerts reached Teams and Slack
    assert len(receiver.by_channel("/teams")) == len(hooks)
    slack = receiver.by_channel("/slack/api/chat.postMessage")
    assert len(slack) == len(hooks) and all(m["channel"] == "#llm-quality" for m in slack)

    a = next(h for h in hooks if h["check_name"] == "alert_average_quality")
    assert a["value"] < a["threshold"] == 6.0
    assert a["condition"] == "average_quality < 6.0"
    assert a["worst_examples"] and all(i.startswith("chatcmpl-t-02-") for i in a["worst_examples"])
    assert set(a["worst_examples"]) <= set(export.ids)
    assert a["url"].startswith(f"{UI}/assets/scored_conversations?view=checks")
    assert "partition=" in a["url"] and a["run_id"]
    card = receiver.by_channel("/teams")[0]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and bad in json.dumps(card)

    # ticks with nothing new, and a re-run of the still-bad range, send nothing more
    n = len(receiver.posts)
    cursor = _tick(defs, instance, resources, cursor)
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    cursor = _tick(defs, instance, resources, cursor)
    assert len(receiver.posts) == n

    # the hour is fixed and re-run alone: one recovery per (check, partition), nothing else
    write_export(settings.local_dir, make_records())
    assert run_hourly(defs, instance, bad, bad).success
    cursor = _tick(defs, instance, resources, cursor)
    recovered = receiver.by_channel("/webhook")[len(hooks) :]
    assert {(r["check_name"], r["partition"]) for r in recovered} == failing
    assert len(recovered) == len(failing) and all(r["kind"] == "recovered" for r in recovered)
    state = json.loads((settings.data_dir / "alerts" / "state.json").read_text())
    assert state["failing"].get("scored_conversations:alert_average_quality") is None
    assert json.loads(cursor)["failing"] == sum(len(v) for v in state["failing"].values())

    # and it stays quiet
    n = len(receiver.posts)
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    _tick(defs, instance, resources, cursor)
    assert len(receiver.posts) == n

    # secrets never reach the messages or the log
    everything = json.dumps([d for _, d, _ in receiver.posts]) + dagster_log.text
    assert TOKEN not in everything and HOOK_SECRET not in everything
    assert TOKEN in receiver.posts[-1][2].get("Authorization", "") or any(
        TOKEN in h.get("Authorization", "") for _, _, h in receiver.posts
    )


def test_a_channel_that_refuses_is_retried_on_the_next_tick(tmp_path, receiver, dagster_log):
    settings = make_settings(tmp_path)
    write_export(settings.local_dir, make_records(degraded_hours=[1]))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    keys = hour_keys()
    channels = AlertChannels(webhook_url=f"{receiver.url}/webhook?{HOOK_SECRET}", ui_url=UI)
    resources = {"alerts": channels, "pipeline": PipelineStore(data_dir=str(settings.data_dir))}
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    receiver.fail_webhook = 100
    cursor = _tick(defs, instance, resources, None)
    assert receiver.by_channel("/webhook") == []
    state_file = settings.data_dir / "alerts" / "state.json"
    pending = json.loads(state_file.read_text())["pending"]
    assert pending and all(p["channel"] == "webhook" for p in pending)
    assert "alert delivery to webhook failed (HTTP 503)" in dagster_log.text
    assert HOOK_SECRET not in dagster_log.text
    receiver.fail_webhook = 0
    cursor = _tick(defs, instance, resources, cursor)
    delivered = receiver.by_channel("/webhook")
    assert len(delivered) == len(pending)
    assert Counter((d["check_name"], d["partition"]) for d in delivered).most_common(1)[0][1] == 1
    assert json.loads(state_file.read_text())["pending"] == []
    assert json.loads(cursor)["pending"] == 0


def test_a_failed_run_sends_one_message(tmp_path, receiver):
    settings = make_settings(tmp_path)  # no export folder: the run fails
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    key = hour_keys()[0]
    result = run_hourly(defs, instance, key, key, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor = defs.resolve_sensor_def("run_failure_alerts")
    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerts": AlertChannels(webhook_url=f"{receiver.url}/webhook", ui_url=UI)},
    ) as ctx:
        sensor(ctx.for_run_failure())
    hooks = receiver.by_channel("/webhook")
    assert len(hooks) == 1
    assert hooks[0]["kind"] == "run_failed" and hooks[0]["job"] == "hourly_pipeline"
    assert hooks[0]["url"] == f"{UI}/runs/{result.run_id}"
    assert hooks[0]["partition"] == f"{key}..{key}"


def _ev(passed, md, partitions, ts=1.0):
    return Evaluation("a", "c", passed, "ERROR", md, "r", partitions, ts)


def test_ranged_outcomes_keep_unjudged_hours_and_single_runs_use_the_value():
    md = {"failing_partitions": {"h2": 3.1}, "not_judged_partitions": ["h3"], "value": 3.1}
    assert outcomes(_ev(False, md, ["h1", "h2", "h3"])) == {
        "h1": (False, None),
        "h2": (True, 3.1),
    }
    assert outcomes(_ev(True, {"partitions_evaluated": 0}, ["h1"])) == {}
    assert outcomes(_ev(False, {"value": 2.0}, ["h1"])) == {"h1": (True, 2.0)}
    # an unjudged hour that was failing stays failing
    state = {"a:c": {"h3": {"since": 0, "run_id": "x", "value": 1.0, "severity": "ERROR"}}}
    changes, state = transitions(state, _ev(False, md, ["h1", "h2", "h3"]))
    assert changes == [("failing", "h2", 3.1)]
    assert set(state["a:c"]) == {"h2", "h3"}


def test_conv_pipeline_run_sends_each_change_once(tmp_path, receiver, monkeypatch, capsys):
    """The issue's acceptance scenario through the CLI: a degraded hour gives one alert per
    failing check and partition on the webhook; running again sends nothing; the fixed hour
    gives one recovery each."""
    from conv_pipeline.cli import main as cli

    export = tmp_path / "export"
    for k, v in {
        "CONV_PIPELINE_DATA_DIR": str(tmp_path / "data"),
        "CONV_PIPELINE_LOCAL_DIR": str(export),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CONV_PIPELINE_ALERT_WEBHOOK_URL": f"{receiver.url}/webhook?{HOOK_SECRET}",
        "CONV_PIPELINE_DAGSTER_UI_URL": UI,
    }.items():
        monkeypatch.setenv(k, v)
    write_export(export, make_records(degraded_hours=[3]))
    assert cli.main(["run"]) == 0
    first = receiver.by_channel("/webhook")
    pairs = {(a["check_name"], a["partition"]) for a in first}
    assert first and len(first) == len(pairs)
    assert {p for _, p in pairs} == {hour_keys()[3]}
    assert all(a["kind"] == "failing" and a["url"].startswith(UI) for a in first)
    out = capsys.readouterr().out
    assert f"{len(first)} to log, webhook" in out and HOOK_SECRET not in out

    assert cli.main(["run"]) == 0
    assert len(receiver.by_channel("/webhook")) == len(first)

    write_export(export, make_records())
    assert cli.main(["run"]) == 0
    recovered = receiver.by_channel("/webhook")[len(first) :]
    assert {(a["check_name"], a["partition"]) for a in recovered} == pairs
    assert len(recovered) == len(pairs) and all(a["kind"] == "recovered" for a in recovered)
