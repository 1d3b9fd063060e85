"""Explicit feedback: planted in metadata, a JSONL file and a CSV file with a known agreement,
bad rows and duplicates; through real Dagster runs, then checked against values computed here
from the planted data by brute force."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from conftest import BASE_HOUR, hour_keys, make_records, make_settings, run_hourly, write_export
from scipy.stats import rankdata

from conv_pipeline.core.config import FeedbackSettings
from conv_pipeline.core.improvement import feedback as fb
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB
from conv_pipeline_demo.sample.feedback import write_sample_feedback

DAY = BASE_HOUR.strftime("%Y-%m-%d")


def score_of(rec: dict) -> float:
    return calculate_quality_score({"response": rec["choices"][0]["message"]["content"] or ""})


@dataclass
class Planted:
    records: list[dict]
    expected: dict[str, dict]  # completion id -> {"negative": bool, "rating": float|None, ...}
    rejected_reasons: set[str]


def plant(root: Path) -> Planted:
    records = make_records(hours=2, per_hour=40)
    expected: dict[str, dict] = {}
    jsonl: list[str] = []
    rows_csv: list[dict] = []
    flipped = 0
    for i, rec in enumerate(records):
        cid, s = rec["id"], score_of(rec)
        agrees_down = s < 6.0
        if i % 4 == 1:  # metadata thumbs
            rec["metadata"]["feedback"] = "down" if agrees_down else "up"
            expected[cid] = {
                "negative": agrees_down,
                "source": "metadata",
                "thumbs": rec["metadata"]["feedback"],
            }
        elif i % 4 == 2:  # file thumbs, a few disagreeing on purpose
            down = agrees_down
            if i in (6, 10, 14):
                down, flipped = not down, flipped + 1
            jsonl.append(json.dumps({"completion_id": cid, "thumbs": "👎" if down else "👍"}))
            expected[cid] = {"negative": down, "source": "file", "thumbs": "down" if down else "up"}
        else:  # CSV ratings
            rating = 1 + i % 2 if agrees_down else 3 + i % 3
            rows_csv.append(
                {
                    "completion_id": cid,
                    "rating": rating,
                    "comment": "",
                    "created_at": "2025-03-10T12:00:00Z",
                }
            )
            expected[cid] = {"negative": rating <= 2, "source": "file", "rating": float(rating)}
    assert flipped == 3
    # A comment with PII in metadata (the raw layer redacts it), a bad rating in metadata.
    records[5]["metadata"]["feedback_comment"] = "mail me at jane.doe@example.org"
    records[3]["metadata"]["rating"] = "11"
    # Duplicates: metadata "up" vs an undated file row "down" -> the file wins.
    a = records[1]
    a["metadata"]["feedback"] = "up"
    jsonl.append(json.dumps({"completion_id": a["id"], "thumbs": "down"}))
    expected[a["id"]] = {"negative": True, "source": "file", "thumbs": "down"}
    # Two dated file rows: the later time wins although it comes first in the file.
    b = records[2]
    jsonl.append(
        json.dumps({"completion_id": b["id"], "thumbs": "up", "created_at": "2025-03-10T12:00:00Z"})
    )
    jsonl.append(
        json.dumps({"completion_id": b["id"], "thumbs": "down", "created_at": 1741597200})
    )  # 09:00
    expected[b["id"]] = {"negative": False, "source": "file", "thumbs": "up"}
    # Feedback for an id the warehouse does not hold, and bad rows.
    jsonl.append(json.dumps({"completion_id": "chatcmpl-nope", "thumbs": "up"}))
    jsonl += [
        '{"completion_id": "x", "thumbs": ',
        json.dumps({"thumbs": "down"}),
        json.dumps({"completion_id": records[11]["id"], "thumbs": "meh"}),
        json.dumps({"completion_id": records[11]["id"], "rating": "five"}),
        json.dumps({"completion_id": records[11]["id"], "rating": 0}),
        json.dumps({"completion_id": records[11]["id"], "thumbs": "up", "created_at": "yesterday"}),
        json.dumps({"completion_id": records[11]["id"]}),
        "[1, 2]",
    ]
    reasons = {
        "malformed JSON",
        'missing field "completion_id"',
        'unknown thumbs value "meh" (expected up/down, true/false, 1/-1)',
        'rating must be a number (got "five")',
        "rating 0.0 is outside 1.0–5.0",
        'created_at "yesterday" is neither ISO 8601 nor seconds since the epoch',
        "no feedback: none of thumbs, rating or comment",
        "not a JSON object",
        "rating 11.0 is outside 1.0–5.0",
    }
    folder = root / "data" / "feedback"
    folder.mkdir(parents=True)
    (folder / "thumbs.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    with (
        (folder / "sub").joinpath("ratings.csv").open("w", newline="")
        if (folder / "sub").mkdir() is None
        else None as fh
    ):
        w = csv.DictWriter(fh, fieldnames=["completion_id", "rating", "comment", "created_at"])
        w.writeheader()
        w.writerows(rows_csv)
        w.writerow(
            {"completion_id": records[11]["id"], "rating": "x", "comment": "", "created_at": ""}
        )
    return Planted(records, expected, reasons)


@dataclass
class Ran:
    planted: Planted
    daily: dg.ExecuteInProcessResult
    store: object


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("feedback")
    settings = make_settings(root)
    planted = plant(root)
    write_export(settings.local_dir, planted.records, files=2)
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        keys = hour_keys(hours=2)
        assert run_hourly(defs, instance, keys[0], keys[-1]).success
        daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance, partition_key=DAY, raise_on_error=False
        )
        yield Ran(planted, daily, defs.resources["pipeline"].store)


def _brute_auc(scores: list[float], negative: list[bool]) -> float:
    pos = [s for s, n in zip(scores, negative, strict=True) if not n]
    neg = [s for s, n in zip(scores, negative, strict=True) if n]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_the_table_holds_one_row_per_completion_with_the_winning_feedback(ran):
    assert ran.daily.success
    table = ran.store.query("select * from conversation_feedback order by completion_id")
    exp = ran.planted.expected
    assert sorted(table["completion_id"].to_list()) == sorted(exp)
    scores = {r["id"]: score_of(r) for r in ran.planted.records}
    for row in table.iter_rows(named=True):
        e = exp[row["completion_id"]]
        assert row["is_negative"] == e["negative"], row["completion_id"]
        assert row["feedback_source"] == e["source"]
        assert row["thumbs"] == e.get("thumbs") and row["rating"] == e.get("rating")
        assert row["quality_score"] == scores[row["completion_id"]]
        assert row["day"] == DAY
    first = table.filter(pl.col("completion_id") == ran.planted.records[5]["id"])
    assert first["comment"].item() == "mail me at [REDACTED:email]"


def test_bad_rows_and_duplicates_are_rejected_with_their_reasons(ran):
    rej = ran.store.query("select * from rejected_records where source = 'feedback'")
    reasons = set(rej["reason"].to_list())
    assert ran.planted.rejected_reasons <= reasons
    assert 'rating must be a number (got "x")' in reasons
    superseded = rej.filter(pl.col("reason").str.starts_with("superseded"))
    by_id = dict(zip(superseded["completion_id"], superseded["reason"], strict=True))
    a, b = ran.planted.records[1]["id"], ran.planted.records[2]["id"]
    assert set(by_id) == {a, b}
    assert by_id[b].startswith(
        "superseded feedback for this completion_id: kept feedback/thumbs.jsonl line"
    )
    # Every file line is a feedback row, a rejection or unknown: nothing is dropped silently.
    csv_bad = rej.filter(pl.col("source_file") == "feedback/sub/ratings.csv")
    assert csv_bad["source_line"].to_list() == [
        len([1 for e in ran.planted.expected.values() if "rating" in e]) + 2
    ]


def test_agreement_equals_the_brute_force_values(ran):
    exp = ran.planted.expected
    scores = {r["id"]: score_of(r) for r in ran.planted.records}
    ids = sorted(exp)
    s = [scores[i] for i in ids]
    neg = [exp[i]["negative"] for i in ids]
    auc = _brute_auc(s, neg)
    r_pb = float(np.corrcoef([0.0 if n else 1.0 for n in neg], s)[0, 1])
    rated = [i for i in ids if "rating" in exp[i]]
    rho = float(
        np.corrcoef(
            rankdata([scores[i] for i in rated]), rankdata([exp[i]["rating"] for i in rated])
        )[0, 1]
    )
    row = ran.store.query(
        "select * from feedback_agreement where score = 'quality_score' and dimension = 'all'"
    ).row(0, named=True)
    assert row["n"] == len(ids) and row["n_negative"] == sum(neg)
    assert row["auc_negative"] == pytest.approx(auc, abs=1e-12)
    assert 0.5 < auc < 1.0  # agreement, with the planted disagreements
    assert row["auc_ci_low"] < auc < row["auc_ci_high"]
    assert row["point_biserial_r"] == pytest.approx(r_pb, abs=1e-9)
    assert row["spearman_rho"] == pytest.approx(rho, abs=1e-9) and row["n_rated"] == len(rated)
    assert row["status"] == "tested"
    report = json.loads((ran.store.reports_dir / "feedback" / f"{DAY}.json").read_text())
    bands = {b["quality_band"]: b for b in report["negative_rate_by_band"]}
    good = [i for i in ids if 6 <= scores[i] < 8]
    assert bands["good"]["n"] == len(good)
    assert bands["good"]["negative_rate"] == pytest.approx(
        sum(exp[i]["negative"] for i in good) / len(good)
    )
    # The flipped ones show up as disagreements.
    listed = [d["completion_id"] for d in report["disagreements"]["negative_but_high_score"]]
    negatives = sorted((i for i in ids if exp[i]["negative"]), key=lambda i: (-scores[i], i))
    assert listed == negatives[:5]
    assert {"chatcmpl-t-00-006", "chatcmpl-t-00-010", "chatcmpl-t-00-014"} & set(listed)


def test_metadata_shows_the_agreement(ran):
    mats = [
        e.step_materialization_data.materialization
        for e in ran.daily.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.to_user_string()
        == "conversation_feedback"
    ]
    meta = mats[0].metadata
    assert meta["dagster/row_count"].value == len(ran.planted.expected)
    assert meta["feedback_for_unknown_completions"].value == 1
    assert meta["verdict"].value.startswith("low scores predict negative feedback")
    assert "Negative feedback by quality band" in meta["report"].value
    assert "jane.doe" not in meta["report"].value


def test_judge_scores_are_reported_when_the_column_exists():
    rng = np.random.default_rng(0)
    n = 60
    q = rng.choice([4.0, 5.5, 6.5, 7.5], size=n)
    judge = np.clip(q - 3 + rng.normal(0, 0.3, n), 1, 5)
    neg = judge < 2.5
    table = pl.DataFrame(
        {
            "completion_id": [f"c{i}" for i in range(n)],
            "quality_score": q,
            "quality_band": ["good" if x >= 6 else "fair" for x in q],
            "judge_score": judge,
            "thumbs": ["down" if x else "up" for x in neg],
            "rating": [None] * n,
            "comment": [None] * n,
            "is_negative": neg,
            "issues": [[] for _ in range(n)],
            "feedback_source": ["file"] * n,
            "user_type": ["pro"] * n,
        },
        schema_overrides={"rating": pl.Float64, "comment": pl.String},
    )
    result = fb.agreement(table, FeedbackSettings(dimensions=["user_type"]), "2025-03-10")
    assert result["scores"] == ["quality_score", "judge_score"]
    judge_all = next(
        r for r in result["segments"] if r["score"] == "judge_score" and r["dimension"] == "all"
    )
    assert judge_all["auc_negative"] == pytest.approx(_brute_auc(list(judge), list(neg))) == 1.0
    assert {r["segment"] for r in result["segments"]} == {"all", "pro"}


def test_sample_feedback_is_deterministic_and_separate(tmp_path):
    # a pinned end hour: the default (the current hour) could move between the two calls
    a = write_sample_feedback(tmp_path / "a", n=400, hours=12, end="2026-12-02T14")
    b = write_sample_feedback(tmp_path / "b", n=400, hours=12, end="2026-12-02T14")
    assert [p.name for p in a.files] == ["sample-feedback.jsonl", "sample-ratings.csv"]
    for pa, pb in zip(a.files, b.files, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "sample-feedback.jsonl",
        "sample-ratings.csv",
    ]
    good, bad = fb.read_feedback_files(tmp_path / "a", FeedbackSettings(), tmp_path)
    assert bad.height == a.bad_rows and good.height == a.rows
    winners, superseded = fb.resolve(good)
    assert superseded.height == a.duplicates == 2
