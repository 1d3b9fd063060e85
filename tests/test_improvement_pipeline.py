"""The improvement assets through real Dagster runs over a temporary data folder: the hourly
pipeline over three days of planted traffic, then the daily job (one run over the three days)
that builds the datasets, experiments, drift and failure clusters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from conftest import make_settings, run_hourly, write_export
from ft_format_checker import check_file

from conv_pipeline.core.improvement.datasets import PII_PATTERNS
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB
from conv_pipeline.settings import Settings

DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]
START = datetime(2025, 3, 1, tzinfo=UTC)
ASSETS = [
    "finetune_dataset",
    "regression_eval_set",
    "prompt_experiments",
    "segment_drift",
    "failure_clusters",
]

GOOD_ANSWERS = [
    "Here is a step by step guide: open Settings, choose {topic} and save. Please tell me if it works.",
    "Thanks for asking! To sort out {topic}, open the Billing page, select the item and confirm. I recommend checking the summary afterwards.",
    "Happy to help with {topic}: go to your account, pick the option you need and save the change. Please let me know if anything is unclear.",
]
BILLING_TOPICS = ["refund for a double charge", "invoice download", "refund of the annual plan"]
SALES_TOPICS = ["plan comparison", "team pricing", "the free trial"]
BAD_ANSWERS = ["No.", "I don't know.", "Sorry, I cannot help."]
# failing prompts of the last day, in two clear themes
BAD_PROMPTS = [
    "I need a refund, the refund for my order never came",
    "refund please, I was charged twice and want my refund",
    "my invoice is wrong, please correct the invoice total",
    "the invoice shows the wrong invoice address",
]


def _completion(cid: str, created: int, user_type: str, variant: str, prompt: str, answer: str):
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70},
        "metadata": {
            "user_type": user_type,
            "category": "billing" if user_type == "billing_support" else "sales",
            "conversation_id": cid,
            "prompt_variant": variant,
        },
        "messages": [
            {"id": f"{cid}-0", "role": "system", "content": f"You help with {user_type}."},
            {"id": f"{cid}-1", "role": "user", "content": prompt},
        ],
    }


def planted_records() -> list[dict]:
    """Three days, 8 busy hours a day, 12 completions an hour. Everything healthy, except on the
    last day billing_support on prompt v2 answers curtly (the planted drift and A/B difference)."""
    out = []
    for d, _day in enumerate(DAYS):
        for h in range(9, 17):
            hour = int((START + timedelta(days=d, hours=h)).timestamp())
            for j in range(12):
                i = h * 12 + j
                cid = f"chatcmpl-p{d}-{h:02d}-{j:02d}"
                user_type = "billing_support" if j % 2 == 0 else "sales_inquiry"
                variant = "v2" if (j // 2) % 2 == 0 else "v1"
                topics = BILLING_TOPICS if user_type == "billing_support" else SALES_TOPICS
                topic = topics[i % 3]
                prompt = f"Question {i} about {topic} on day {d}?"
                answer = GOOD_ANSWERS[i % 3].format(topic=topic) + f" Reference {cid}."
                if d == 2 and user_type == "billing_support" and variant == "v2":
                    prompt = BAD_PROMPTS[(h + j) % 4] + f" (ticket {i})"
                    answer = BAD_ANSWERS[i % 3]
                out.append(_completion(cid, hour + j * 60, user_type, variant, prompt, answer))
    # PII and redaction markers in otherwise excellent conversations of the last day
    last = int((START + timedelta(days=2, hours=20)).timestamp())
    good = GOOD_ANSWERS[0].format(topic="your invoice")
    out.append(
        _completion(
            "chatcmpl-pii-mail",
            last,
            "sales_inquiry",
            "v1",
            "Send it to ann@corp.example.com",
            good,
        )
    )
    out.append(
        _completion(
            "chatcmpl-pii-card", last + 60, "sales_inquiry", "v1", "Card 4111 1111 1111 1111?", good
        )
    )
    out.append(
        _completion(
            "chatcmpl-redacted", last + 120, "sales_inquiry", "v1", "I am [REDACTED:EMAIL]", good
        )
    )
    # an exact duplicate of a good conversation under another id
    dup = dict(out[1], id="chatcmpl-dup", created=out[1]["created"] + 5)
    out.append(dup)
    return out


@dataclass
class Ran:
    settings: Settings
    instance: dg.DagsterInstance
    daily: dg.ExecuteInProcessResult
    records: list[dict]

    @property
    def data(self) -> Path:
        return self.settings.data_dir

    def sql(self, q: str) -> pl.DataFrame:
        con = duckdb.connect(str(self.data / "warehouse.duckdb"), read_only=True)
        try:
            return con.sql(q).pl()
        finally:
            con.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("improve")
    config = json.loads(
        (Path(__file__).parents[1] / "conv_pipeline" / "monitoring_config.json").read_text()
    )
    config["improvement"] = {
        "drift": {"baseline_days": 2, "min_samples": 20},
        "experiments": {"min_samples": 20},
        "clusters": {"min_failures": 10},
    }
    cfg = root / "monitoring.json"
    cfg.write_text(json.dumps(config))
    settings = make_settings(root, monitoring_config=str(cfg))
    records = planted_records()
    write_export(settings.local_dir, records, files=2)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    run_hourly(defs, instance, "2025-03-01-00:00", "2025-03-03-23:00")
    daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[-1],
        },
        raise_on_error=False,
    )
    yield Ran(settings, instance, daily, records)
    instance.dispose()


def test_every_improvement_asset_materializes_every_day_in_one_run(ran):
    assert ran.daily.success
    done: dict[str, set[str]] = {}
    for event in ran.daily.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        done.setdefault(m.asset_key.to_user_string(), set()).add(m.partition)
    for name in ASSETS:
        assert done.get(name) == set(DAYS), name


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


def test_finetune_files_pass_the_format_checker_and_hold_no_pii(ran):
    for day in DAYS:
        folder = ran.data / "datasets" / "finetune" / day
        train, val = folder / "train.jsonl", folder / "validation.jsonl"
        assert check_file(train) == [] and check_file(val) == []
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["train"] == len(_lines(train)) and manifest["validation"] == len(
            _lines(val)
        )
        assert manifest["train"] + manifest["validation"] > 40
        text = train.read_text() + val.read_text()
        assert "[REDACTED:" not in text
        for kind, pattern in PII_PATTERNS.items():
            assert pl.Series([text]).str.contains(pattern).item() is False, kind
    last = ran.data / "datasets" / "finetune" / DAYS[-1]
    manifest = json.loads((last / "manifest.json").read_text())
    # The raw layer redacted the e-mail address and the card number (docs/PRIVACY.md): with the
    # marker that was there already, three conversations are left out before the screen.
    assert manifest["excluded"]["redaction_marker"] == 3
    assert manifest["duplicates_removed"] == 0  # the duplicate is on day 1
    rejected = {r["completion_id"]: r["reason"] for r in _lines(last / "rejected.jsonl")}
    assert rejected == {}
    first = json.loads((ran.data / "datasets/finetune" / DAYS[0] / "manifest.json").read_text())
    assert first["duplicates_removed"] == 1
    # the degraded conversations are not in the training data
    published = (last / "train.jsonl").read_text() + (last / "validation.jsonl").read_text()
    assert "I don't know." not in published


def test_finetune_metadata_shows_counts_and_a_sample(ran):
    mats = [
        e.step_materialization_data.materialization
        for e in ran.daily.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.to_user_string()
        == "finetune_dataset"
    ]
    meta = mats[0].metadata
    assert meta["train_examples"].value > 100
    assert meta["rejected_examples"].value == 0  # the PII was redacted before the screen
    assert "days" in meta  # a ranged run: one row per day
    sample = meta["sample"].value
    assert sample.startswith("```json") and '"messages"' in sample


def test_regression_eval_set_holds_the_failures_deduplicated(ran):
    rows = _lines(ran.data / "datasets" / "regression_eval" / DAYS[-1] / "eval.jsonl")
    assert rows, "the degraded segment must produce eval rows"
    for r in rows:
        assert {"query", "response", "context", "messages", "issues", "completion_id"} <= set(r)
        assert r["issues"] and r["quality_score"] is not None
    prompts = [" ".join(r["query"].casefold().split()) for r in rows]
    assert len(prompts) == len(set(prompts))
    assert {r["response"] for r in rows} <= set(BAD_ANSWERS)
    items = _lines(ran.data / "datasets" / "regression_eval" / DAYS[-1] / "openai_evals.jsonl")
    assert [x["item"] for x in items] == rows


def test_ab_experiment_flags_the_bad_variant_on_the_bad_day_only(ran):
    day3 = json.loads((ran.data / "reports" / "experiments" / f"{DAYS[-1]}.json").read_text())
    verdicts = [v for v in day3["verdicts"] if v["dimension"] == "prompt_variant"]
    assert any(
        v["metric"] == "quality_score" and "v1 scores higher than v2" in v["verdict"]
        for v in verdicts
    )
    day1 = json.loads((ran.data / "reports" / "experiments" / f"{DAYS[0]}.json").read_text())
    assert day1["verdicts"] == []
    rng = ran.data / "reports" / "experiments" / "range" / f"{DAYS[0]}_{DAYS[-1]}.md"
    assert "## Prompt and model experiments" in rng.read_text()
    table = ran.sql("SELECT DISTINCT period FROM experiment_results ORDER BY 1")
    assert table["period"].to_list() == DAYS


def test_drift_warns_for_the_degraded_segment(ran):
    evals = [
        e for e in ran.daily.get_asset_check_evaluations() if e.check_name == "no_segment_drift"
    ]
    assert len(evals) == 1
    e = evals[0]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    drifted = e.metadata["drifted"].value
    assert "billing_support" in drifted and "quality_score" in drifted
    rows = ran.sql(
        "SELECT day, dimension, segment, metric FROM segment_drift WHERE drifted ORDER BY ALL"
    )
    assert set(rows["day"]) == {DAYS[-1]}
    segs = set(zip(rows["dimension"], rows["segment"], strict=True))
    assert ("user_type", "billing_support") in segs
    assert ("user_type", "sales_inquiry") not in segs
    # the first day has no baseline: nothing tested, nothing drifted
    first = ran.sql(f"SELECT status FROM segment_drift WHERE day = '{DAYS[0]}'")
    assert set(first["status"]) == {"insufficient_data"}


def test_failure_clusters_find_the_two_planted_themes(ran):
    clusters = ran.sql(
        f"SELECT cluster, size, top_terms, example_ids FROM failure_clusters "
        f"WHERE day = '{DAYS[-1]}' ORDER BY cluster"
    )
    assert clusters.height >= 2
    top = {t for terms in clusters["top_terms"].to_list() for t in terms[:2]}
    assert {"refund", "invoice"} <= top
    total = json.loads((ran.data / "reports" / "clusters" / f"{DAYS[-1]}.json").read_text())
    assert sum(clusters["size"]) == total["failures"]


def test_rerunning_a_day_gives_the_same_files(ran):
    folder = ran.data / "datasets" / "finetune" / DAYS[-1]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    clusters_before = (ran.data / "reports" / "clusters" / f"{DAYS[-1]}.json").read_bytes()
    defs = build_definitions(ran.settings)
    again = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=ran.instance, partition_key=DAYS[-1]
    )
    assert again.success
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert (ran.data / "reports" / "clusters" / f"{DAYS[-1]}.json").read_bytes() == clusters_before


def test_a_day_without_data_materializes_empty_artifacts(ran):
    defs = build_definitions(ran.settings)
    empty_day = "2025-02-20"
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=ran.instance, partition_key=empty_day
    )
    assert result.success
    folder = ran.data / "datasets" / "finetune" / empty_day
    assert (folder / "train.jsonl").read_text() == ""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["conversations"] == 0 and manifest["meets_openai_minimum"] is False
    clusters = json.loads((ran.data / "reports" / "clusters" / f"{empty_day}.json").read_text())
    assert clusters["clusters"] == [] and clusters["failures"] == 0
    drift_check = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_segment_drift"
    ]
    assert drift_check[0].passed
