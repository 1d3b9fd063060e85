"""The judge through real Dagster runs over temporary folders, pointed with the real ``openai``
SDK at the stand-in on loopback: every sampled row carries a score or a recorded failure, the
scores join ``scored_conversations`` and the issues, the checks and reports show them, a second
run makes no judge call, and the key never leaves the environment. And the off switch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from conftest import hour_keys, make_records, make_settings, run_hourly, write_export
from judge_helpers import KEY, KEY_VAR, RubricJudge, judge_settings, rubric_score, write_config

from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB, JUDGE_CALIBRATION_JOB
from conv_pipeline.settings import Settings
from conv_pipeline_demo.standin import StoredCompletionsServer

JUDGE_CHECKS = {"judge_average_score", "judge_pass_rate", "judge_failure_rate"}
EVALUATORS = ["coherence", "fluency", "relevance", "groundedness"]


def _chat_calls(server) -> int:
    return len(server.requests(method="POST", path_contains="/chat/completions"))


def _sql(settings: Settings, query: str) -> pl.DataFrame:
    return build_definitions(settings).resources["pipeline"].store.query(query)


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}) as s:
        yield s


@dataclasses.dataclass
class Ran:
    settings: Settings
    instance: dg.DagsterInstance
    first: dg.ExecuteInProcessResult
    second: dg.ExecuteInProcessResult
    judge: RubricJudge
    calls_after_first: int
    calls_after_second: int
    keys: list[str]
    root: Path


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Two runs of the hourly job over two hours, the judge on (module-wide: run once)."""
    tmp_path = tmp_path_factory.mktemp("judged")
    with pytest.MonkeyPatch.context() as mp, StoredCompletionsServer(api_keys={KEY}) as server:
        mp.setenv(KEY_VAR, KEY)
        write_export(tmp_path / "export", make_records(hours=2))
        config = write_config(
            tmp_path / "cfg", {"sampling_rate": 0.25, "insights": {"kinds": ["hourly", "daily"]}}
        )
        settings = judge_settings(make_settings(tmp_path, monitoring_config=config), server)
        judge = RubricJudge(garbage_for=("The answer is in the manual",))
        server.responder = judge
        server.faults.add("429", times=3, retry_after_ms=20, path_contains="/chat/completions")
        keys = hour_keys(hours=2)
        (tmp_path / "home").mkdir()
        instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
        first = run_hourly(build_definitions(settings), instance, keys[0], keys[-1])
        after_first = _chat_calls(server)
        second = run_hourly(build_definitions(settings), instance, keys[0], keys[-1])
        yield Ran(
            settings,
            instance,
            first,
            second,
            judge,
            after_first,
            _chat_calls(server),
            keys,
            tmp_path,
        )


def test_every_sampled_row_has_a_score_or_a_recorded_failure(ran):
    assert ran.first.success and ran.second.success
    judged = _sql(ran.settings, "SELECT * FROM judge_evaluations ORDER BY completion_id")
    assert judged.height > 0
    assert set(judged["judge_sample_reason"]) == {"low_quality", "flagged", "sampled"}
    for name in EVALUATORS:
        for score, status, reason in judged.select(
            name, f"{name}_status", f"{name}_reason"
        ).iter_rows():
            assert (score is not None) == (status == "ok")
            assert status in ("ok", "unparseable") and reason
        assert set(judged[f"{name}_threshold"]) == {3}
    # the stand-in's rubric, through the SDK and back
    raw = _sql(ran.settings, "SELECT completion_id, response FROM raw_completions")
    answers = dict(raw.rows())
    ok = judged.filter(pl.col("coherence_status") == "ok")
    assert all(
        rubric_score(answers[c] or "") == s
        for c, s in ok.select("completion_id", "coherence").rows()
    )
    assert set(ok["coherence_result"]) <= {"pass", "fail"}
    assert ok.filter(pl.col("coherence") < 3)["coherence_result"].unique().to_list() == ["fail"]
    # the answers the stand-in would not score are recorded as unparseable, not given a default
    bad = judged.filter(pl.col("coherence_status") == "unparseable")
    assert bad.height >= 1 and bad["coherence"].null_count() == bad.height
    assert all("no score" in r for r in bad["coherence_reason"])
    # judge token counts, like Azure AI Evaluation's
    assert (ok["coherence_prompt_tokens"] > 0).all() and (ok["coherence_total_tokens"] > 0).all()
    assert judged["judge_model"].unique().to_list() == ["judge-model"]


def test_a_second_run_makes_no_judge_call(ran):
    assert ran.calls_after_first > 0
    assert ran.calls_after_second == ran.calls_after_first
    events = ran.second.get_asset_materialization_events()
    meta = next(e for e in events if e.asset_key.to_user_string() == "judge_evaluations")
    md = meta.materialization.metadata
    assert md["judge_calls"].value == 0 and md["judge_cache_hits"].value > 0
    first_md = next(
        e
        for e in ran.first.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "judge_evaluations"
    ).materialization.metadata
    assert first_md["judge_calls"].value > 0
    assert first_md["judge_estimated_tokens"].value > 0
    assert first_md["judge_estimated_cost_usd"].value > 0
    assert first_md["judge_total_tokens"].value > 0 and first_md["judge_actual_cost_usd"].value > 0
    # identical tables from the cache
    assert ran.judge.calls["judge"] + 3 >= ran.calls_after_first - ran.judge.calls["insights"]


def test_judge_scores_join_scored_conversations_and_the_issues(ran):
    scored = _sql(
        ran.settings,
        "SELECT completion_id, quality_score, judge_score, coherence, coherence_result, "
        "judge_sample_reason FROM scored_conversations",
    )
    assert scored.height == 80  # still one row per conversation
    judged = scored.filter(pl.col("judge_sample_reason").is_not_null())
    assert 0 < judged.height < 80
    assert scored.filter(pl.col("judge_sample_reason").is_null())["judge_score"].null_count() == (
        80 - judged.height
    )
    issues = _sql(
        ran.settings, "SELECT completion_id, issue, severity, detail FROM conversation_issues"
    )
    judge_issues = issues.filter(
        pl.col("issue").is_in(["incoherent", "disfluent", "irrelevant", "ungrounded"])
    )
    failing = set(judged.filter(pl.col("coherence_result") == "fail")["completion_id"])
    assert (
        failing
        and set(judge_issues.filter(pl.col("issue") == "incoherent")["completion_id"]) == failing
    )
    assert judge_issues["detail"].str.starts_with("LLM judge").all()
    assert set(judge_issues["severity"]) == {"warning"}


def test_checks_and_reports_show_the_judge(ran):
    checks = {e.check_name: e for e in ran.first.get_asset_check_evaluations()}
    assert set(checks) >= JUDGE_CHECKS
    for name in JUDGE_CHECKS:
        md = checks[name].metadata
        assert "threshold" in md and "condition" in md
    report = json.loads(
        build_definitions(ran.settings)
        .resources["pipeline"]
        .store.report_paths("hourly", ran.keys[0])[1]
        .read_text()
    )
    judge = report["judge"]
    assert set(judge["evaluators"]) == set(EVALUATORS)
    assert judge["sampled_conversations"] > 0 and judge["judge_average_score"] is not None
    assert set(judge["by_segment"]) == {"user_type", "category", "prompt_variant", "model"}
    assert (
        sum(r["judged"] for r in judge["by_segment"]["user_type"]) == judge["judged_conversations"]
    )
    names = [i["issue"] for i in report["issues"]]
    assert "incoherent" in names
    md = (
        build_definitions(ran.settings)
        .resources["pipeline"]
        .store.report_paths("hourly", ran.keys[0])[0]
        .read_text()
    )
    assert "## LLM judge" in md and "Judge by user_type" in md


def test_llm_insights_are_grounded_and_cached(ran):
    store = build_definitions(ran.settings).resources["pipeline"].store
    report = json.loads(store.report_paths("hourly", ran.keys[0])[1].read_text())
    ins = report["insights"]
    assert ins["source"] == "llm" and ins["model"] == "judge-model"
    assert ins["summary"] == "The window holds 40 conversations."
    assert ins["unverified_numbers"] == []  # 40 is the report's own number
    assert [s["action"] for s in ins["suggestions"]] == ["prompt_optimization"]
    assert ins["suggestions"][0]["evidence"] == ["totals.average_quality"]  # unknown id dropped
    assert ins["dropped_suggestions"][0]["action"] == "buy_more_gpus"
    # the rule-based actions stay beside them
    assert report["recommended_actions"] is not None
    assert ran.judge.calls["insights"] == 2  # two hourly reports, once each: the re-run is cached
    md = store.report_paths("hourly", ran.keys[0])[0].read_text()
    assert "## Insights (written by judge-model)" in md


def test_the_key_never_reaches_logs_metadata_or_files(ran):
    for path in ran.root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    records = ran.instance.all_logs(ran.first.run_id) + ran.instance.all_logs(ran.second.run_id)
    text = "\n".join(str(r) for r in records)
    assert "judge_evaluations" in text and KEY not in text


def test_the_judge_is_off_until_configured(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=1))
    settings = make_settings(tmp_path)  # no judge model
    server.responder = RubricJudge()
    keys = hour_keys(hours=1)
    result = run_hourly(
        build_definitions(settings), dg.DagsterInstance.ephemeral(), keys[0], keys[0]
    )
    assert result.success and _chat_calls(server) == 0
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(checks[c].passed and "off" in checks[c].metadata["note"].value for c in JUDGE_CHECKS)
    assert _sql(settings, "SELECT count(*) AS n FROM judge_evaluations")["n"][0] == 0
    scored = _sql(settings, "SELECT judge_score FROM scored_conversations")
    assert scored.height == 40 and scored["judge_score"].null_count() == 40
    report = json.loads(
        build_definitions(settings)
        .resources["pipeline"]
        .store.report_paths("hourly", keys[0])[1]
        .read_text()
    )
    assert "judge" not in report and "insights" not in report
    issues = _sql(settings, "SELECT DISTINCT issue FROM conversation_issues")["issue"].to_list()
    assert not {"incoherent", "irrelevant"} & set(issues)


def test_settings_read_the_judge_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONV_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    assert not Settings.from_env().judge.enabled
    monkeypatch.setenv("CONV_PIPELINE_JUDGE_MODEL", "gpt-4o-judge")
    monkeypatch.setenv("CONV_PIPELINE_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv(KEY_VAR, KEY)
    j = Settings.from_env().judge
    assert (j.enabled, j.values["kind"], j.values["base_url"], j.api_key_var) == (
        True,
        "openai",
        "http://127.0.0.1:9/v1",
        KEY_VAR,
    )
    assert j.values["insights_model"] == "gpt-4o-judge" and KEY not in repr(Settings.from_env())
    monkeypatch.delenv("CONV_PIPELINE_JUDGE_BASE_URL")
    monkeypatch.delenv(KEY_VAR)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setenv("CONV_PIPELINE_JUDGE_INSIGHTS_MODEL", "off")
    j = Settings.from_env().judge
    assert (j.values["kind"], j.values["endpoint"], j.api_key_var, j.values["insights_model"]) == (
        "azure_openai",
        "https://res.openai.azure.com",
        "",
        "",
    )  # no key: Entra ID
    defs = build_definitions(Settings.from_env())
    assert defs.resources["judge"].api_key is None and defs.resources["judge"].enabled


def test_budgets_and_sampling_through_the_pipeline(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=1))
    config = write_config(
        tmp_path / "cfg",
        {"sampling_rate": 0.0, "max_judgments_per_run": 2, "evaluators": {"coherence": {}}},
    )
    settings = judge_settings(
        make_settings(tmp_path, monitoring_config=config), server, insights=False
    )
    server.responder = RubricJudge()
    keys = hour_keys(hours=1)
    result = run_hourly(
        build_definitions(settings), dg.DagsterInstance.ephemeral(), keys[0], keys[0]
    )
    assert result.success and _chat_calls(server) == 2
    judged = _sql(settings, "SELECT * FROM judge_evaluations")
    assert set(judged["judge_sample_reason"]) <= {"low_quality", "flagged"}  # rate 0
    assert (
        judged.filter(pl.col("coherence_status") == "skipped_budget").height
        == judged.height - 2
        == 1
    )
    assert judged["fluency_status"].null_count() == judged.height  # not configured: no judgment
    md = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "judge_evaluations"
    ).materialization.metadata
    assert md["judge_skipped_budget"].value == 1


def test_finetune_selection_uses_the_judge_score(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=2))
    config = write_config(
        tmp_path / "cfg",
        {"sampling_rate": 1.0, "evaluators": {"fluency": {}}},
        improvement={"finetune": {"min_judge_score": 5.0}},  # the stand-in gives 4 at best
    )
    settings = judge_settings(
        make_settings(tmp_path, monitoring_config=config), server, insights=False
    )
    server.responder = RubricJudge()
    keys = hour_keys(hours=2)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=keys[0][:10], raise_on_error=True
    )
    md = next(
        e
        for e in daily.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "finetune_dataset"
    ).materialization.metadata
    manifest = json.loads((Path(md["path"].value) / "manifest.json").read_text())
    assert manifest["judge_column_used"] == "judge_score"
    assert manifest["excluded"]["below_min_judge_score"] > 0
    assert manifest["train"] + manifest["validation"] == 0


def _calibrate(settings: Settings) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    return defs.resolve_job_def(JUDGE_CALIBRATION_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=True
    )


def test_calibration_shows_agreement_and_checks_it(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    golden = tmp_path / "cfg" / "golden.jsonl"
    golden.parent.mkdir(parents=True)
    pairs = [
        {"id": f"p{i}", "evaluator": "fluency", "response": text, "human_score": score}
        for i, (text, score) in enumerate(
            [
                ("ok", 1),
                ("no.", 1),
                ("A clear, complete sentence about the refund policy.", 4),
                ("Your invoice lists the base fee and the usage charges.", 4),
                ("Open Settings, choose Billing and download the invoice.", 4),
                ("fine", 1),
            ]
        )
    ]
    golden.write_text("\n".join(json.dumps(p) for p in pairs) + "\n{broken\n", encoding="utf-8")
    config = write_config(
        tmp_path / "cfg",
        {
            "evaluators": {"fluency": {}},
            "calibration": {"golden_set": "golden.jsonl", "min_items": 5},
        },
    )
    settings = judge_settings(
        make_settings(tmp_path, monitoring_config=config), server, insights=False
    )
    server.responder = RubricJudge()  # 1 under 30 characters, else 4: agrees with the labels
    result = _calibrate(settings)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "judge_agreement" and check.passed
    rows = {r["evaluator"]: r for r in _sql(settings, "SELECT * FROM judge_calibration").to_dicts()}
    assert rows["fluency"]["kappa_quadratic"] == 1.0 and rows["fluency"]["spearman"] == 1.0
    assert rows["fluency"]["items"] == 6 and rows["fluency"]["passed"] is True
    rejected = _sql(settings, "SELECT * FROM rejected_records WHERE source = 'judge_golden_set'")
    assert rejected.height == 1 and rejected["source_line"][0] == 7
    md = next(iter(result.get_asset_materialization_events())).materialization.metadata
    assert md["golden_pairs"].value == 6 and "kappa_quadratic" in md["agreement"].value
    # a judge that disagrees: the check warns
    settings2 = dataclasses.replace(settings, data_dir=tmp_path / "data2")
    server.responder = lambda request: json.dumps({"score": 3, "reason": "always 3"})
    (check2,) = _calibrate(settings2).get_asset_check_evaluations()
    assert not check2.passed and check2.severity == dg.AssetCheckSeverity.WARN
    assert "fluency" in check2.metadata["evaluators_failing"].value


def test_calibration_with_the_judge_off_says_so(tmp_path):
    result = _calibrate(make_settings(tmp_path))
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and "off" in check.metadata["note"].value
    md = next(iter(result.get_asset_materialization_events())).materialization.metadata
    assert md["golden_pairs"].value >= 20  # the bundled set is validated even so


def test_conv_pipeline_run_with_the_judge_pointed_at_another_server(
    tmp_path, server, monkeypatch, capsys
):
    """The judge configured only through the environment, on the plain OpenAI URL shape (/v1)."""
    from conv_pipeline.cli import main as cli

    write_export(tmp_path / "export", make_records(hours=2))
    for name, value in {
        "CONV_PIPELINE_DATA_DIR": tmp_path / "data",
        "CONV_PIPELINE_LOCAL_DIR": tmp_path / "export",
        "DAGSTER_HOME": tmp_path / "home",
        "CONV_PIPELINE_JUDGE_MODEL": "other-judge",
        "CONV_PIPELINE_JUDGE_BASE_URL": server.v1_base,
        KEY_VAR: KEY,
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("CONV_PIPELINE_SOURCE", raising=False)
    monkeypatch.delenv("CONV_PIPELINE_MONITORING_CONFIG", raising=False)
    server.responder = RubricJudge()
    assert cli.main(["run"]) == 0
    out = capsys.readouterr().out
    calls = _chat_calls(server)
    assert calls > 0 and f"judge: openai {server.v1_base} model other-judge" in out
    assert all(r["path"].startswith("/v1/chat/completions") for r in server.requests(method="POST"))
    settings = Settings.from_env()
    judged = _sql(settings, "SELECT * FROM judge_evaluations")
    assert judged.height > 0
    for name in EVALUATORS:
        assert (
            judged.filter(pl.col(name).is_null() & (pl.col(f"{name}_status") == "ok")).height == 0
        )
        assert judged[f"{name}_status"].null_count() == 0
    assert cli.main(["run"]) == 0
    again = capsys.readouterr().out
    assert _chat_calls(server) == calls  # judgments and insights all cached
    assert " 0 calls" in again and KEY not in out + again


def test_judge_checks_agree_with_the_table(ran):
    """Each hour's failure rate, recomputed from judge_evaluations, decides the check."""
    judged = _sql(ran.settings, "SELECT * FROM judge_evaluations")
    rates = {}
    for key in ran.keys:
        hour = judged.filter(pl.col("partition_key") == key)
        statuses = pl.concat([hour[f"{n}_status"] for n in EVALUATORS])
        bad = statuses.is_in(["failed", "unparseable"]).sum()
        attempted = statuses.is_in(["ok", "failed", "unparseable"]).sum()
        rates[key] = bad / attempted
    assert max(rates.values()) > 0  # the planted unparseable answers
    check = next(
        e for e in ran.first.get_asset_check_evaluations() if e.check_name == "judge_failure_rate"
    )
    failing = {k: v for k, v in rates.items() if v > 0.05}
    assert check.passed == (not failing)
    if failing:
        assert check.severity == dg.AssetCheckSeverity.WARN
        worst = max(failing, key=failing.get)
        assert check.metadata["partition"].text == worst
        assert check.metadata["value"].value == pytest.approx(round(failing[worst], 4))


def test_a_custom_evaluator_flows_through_the_pipeline(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=1))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "politeness.md").write_text(
        "---\nname: politeness\nversion: 1\nissue: impolite\n---\n[system]\nRate POLITENESS "
        '1-5 as {"score": n, "reason": "..."}.\n[user]\nANSWER:\n{{response}}\n',
        encoding="utf-8",
    )
    config = write_config(
        tmp_path / "cfg",
        {"sampling_rate": 0.0, "evaluators": {"politeness": {"prompt": "politeness.md"}}},
    )
    settings = judge_settings(
        make_settings(tmp_path, monitoring_config=config), server, insights=False
    )
    server.responder = RubricJudge()
    keys = hour_keys(hours=1)
    assert run_hourly(
        build_definitions(settings), dg.DagsterInstance.ephemeral(), keys[0], keys[0]
    ).success
    judged = _sql(
        settings, "SELECT completion_id, politeness, politeness_result FROM scored_conversations"
    )
    failing = set(judged.filter(pl.col("politeness_result") == "fail")["completion_id"])
    assert failing  # the short answers
    issues = _sql(
        settings, "SELECT completion_id FROM conversation_issues WHERE issue = 'impolite'"
    )
    assert set(issues["completion_id"]) == failing
    report = json.loads(
        build_definitions(settings)
        .resources["pipeline"]
        .store.report_paths("hourly", keys[0])[1]
        .read_text()
    )
    assert set(report["judge"]["evaluators"]) == {"politeness"}


def test_retention_removes_the_judge_reasons_and_keeps_the_scores(tmp_path, server, monkeypatch):
    import sqlite3

    from conv_pipeline.core.judge.store import cache_path
    from conv_pipeline.core.privacy import retention

    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=2))
    settings = judge_settings(make_settings(tmp_path), server, insights=False)
    server.responder = RubricJudge()
    keys = hour_keys(hours=2)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert run_hourly(defs, instance, keys[0], keys[-1]).success
    store = defs.resources["pipeline"].store
    before = _sql(settings, "SELECT * FROM judge_evaluations ORDER BY completion_id")
    result = retention.apply_retention(store, keys[1])  # the first hour loses its detail
    old = before.filter(pl.col("partition_key") == keys[0])
    assert (
        result.judge_reasons == sum(old[f"{n}_reason"].drop_nulls().len() for n in EVALUATORS) > 0
    )
    after = _sql(settings, "SELECT * FROM judge_evaluations ORDER BY completion_id")
    first, second = (after.filter(pl.col("partition_key") == k) for k in keys)
    assert all(first[f"{n}_reason"].null_count() == first.height for n in EVALUATORS)
    assert first["coherence"].to_list() == old["coherence"].to_list()  # scores stay
    assert second["coherence_reason"].null_count() == 0  # newer hours keep their detail
    with sqlite3.connect(cache_path(store)) as con:
        ids = first["completion_id"].to_list()
        rows = con.execute(
            f"SELECT reason, raw_output, score FROM judgments WHERE completion_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
    assert rows and all(r[0] is None and r[1] is None and r[2] is not None for r in rows)
    calls = _chat_calls(server)
    again = run_hourly(build_definitions(settings), instance, keys[0], keys[-1])
    assert again.success and _chat_calls(server) == calls  # the retained hour is left as it is
    kept = store.query(
        "SELECT * FROM judge_evaluations WHERE partition_key = ? ORDER BY completion_id", [keys[0]]
    )
    assert kept["coherence"].to_list() == old["coherence"].to_list()


def test_hourly_insights_by_default_only_for_an_alerting_hour(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    write_export(tmp_path / "export", make_records(hours=2, degraded_hours=[1]))
    config = write_config(tmp_path / "cfg", {"sampling_rate": 0.0, "evaluators": {"fluency": {}}})
    settings = judge_settings(make_settings(tmp_path, monitoring_config=config), server)
    judge = RubricJudge()
    server.responder = judge
    keys = hour_keys(hours=2)
    defs = build_definitions(settings)
    assert run_hourly(defs, dg.DagsterInstance.ephemeral(), keys[0], keys[-1]).success
    store = defs.resources["pipeline"].store
    quiet, alerting = (json.loads(store.report_paths("hourly", k)[1].read_text()) for k in keys)
    assert not any(a["triggered"] for a in quiet["alerts"]) and "insights" not in quiet
    assert any(a["triggered"] for a in alerting["alerts"])
    assert alerting["insights"]["source"] == "llm" and judge.calls["insights"] == 1
