"""PII redaction: every kind planted in answers, prompts, metadata, tool calls and rejected lines,
near-misses that must survive, the seed's score on the original answer, and a search of every
file the pipeline writes outside the raw layer for what was planted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from conftest import BASE_HOUR, hour_keys, make_records, make_settings, run_hourly, write_export
from ft_format_checker import check_file

from conv_pipeline.core.improvement.datasets import PII_PATTERNS
from conv_pipeline.core.privacy.redaction import KINDS, Redactor, luhn_ok, redact_completions
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline.definitions import build_definitions
from conv_pipeline.keys import DAILY_JOB

# kind -> (text as written, the secret part that must vanish)
PII = {
    "email": ("jane.doe@example.org", "jane.doe@example.org"),
    "phone": ("+1 (415) 555-0123", "555-0123"),
    "card_number": ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    "ipv4": ("203.0.113.42", "203.0.113.42"),
    "ipv6": ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
    "api_key": ("sk-proj-Abc123Def456Ghi789Jkl012Mno345", "Abc123Def456Ghi789Jkl012Mno345"),
    "bearer_token": (
        "Authorization: Bearer abcDEF1234567890ghiJKLmno",
        "abcDEF1234567890ghiJKLmno",
    ),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "aws_key": ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "azure_key": (
        "DefaultEndpointsProtocol=https;AccountName=acct;"
        "AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A=;"
        "EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A",
    ),
}
assert set(PII) == set(KINDS)

# Things that look like PII and are not: they must come through untouched.
NEAR_MISSES = [
    "4111 1111 1111 1112",  # fails the Luhn check
    "version 1.2.3.4",  # a version string, not an address
    "v10.0.0.1",
    "1.2.3.4.5",
    "released 2024-10-01",
    "order 1234567890123",  # 13 digits, not a card (fails Luhn, starts with 1)
    "at 10:30:45",
    "std::vector<int>",
    "MAC 00:1A:2B:3C:4D:5E",
    "999.1.1.1",
    "10 000 000 users",
    "sk-short",
    "ticket INV-2025-0214",
]


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_redacted_in_text_and_in_json(kind):
    text, secret = PII[kind]
    r = Redactor()
    out, counts = r.redact_text(f"see {text} now")
    assert secret not in out and f"[REDACTED:{kind}]" in out
    assert counts == {kind: 1}
    # The vectorized path gives the same text and counts as the per-string one.
    series, stats = r.redact_series(pl.Series([f"see {text} now", "nothing here"]))
    assert series.to_list() == [out, "nothing here"] and stats["kinds"] == {kind: 1}
    assert stats["per_row"].to_list() == [1, 0]
    # In JSON text, right after an escape (\n, \t, \\, \u0001): found, and the JSON stays valid.
    for prefix in ("\n", "\t", "\\", "\x01", "é "):
        doc = json.dumps([{"role": "user", "content": prefix + text + "\nbye"}], ensure_ascii=False)
        red, st = r.redact_series(pl.Series([doc]), json_text=True)
        back = json.loads(red[0])[0]["content"]
        assert secret not in back, (kind, prefix)
        assert back == prefix + out.removeprefix("see ").removesuffix(" now") + "\nbye"
        assert st["kinds"] == {kind: 1}


def test_near_misses_are_left_alone():
    r = Redactor()
    for text in NEAR_MISSES:
        assert r.redact_text(text) == (text, {}), text
    series, stats = r.redact_series(pl.Series(NEAR_MISSES))
    assert series.to_list() == NEAR_MISSES and stats["kinds"] == {}


def test_kinds_and_marker_are_configurable():
    r = Redactor(kinds=("email",), marker="<<{kind}>>")
    out, counts = r.redact_text("jane.doe@example.org or 203.0.113.42")
    assert out == "<<email>> or 203.0.113.42" and counts == {"email": 1}
    with pytest.raises(ValueError, match="unknown PII kinds"):
        Redactor(kinds=("ssn",))
    with pytest.raises(ValueError, match="kind"):
        Redactor(marker="[X]")


def test_redact_completions_keeps_the_original_answer_only_where_it_changed():
    frame = pl.DataFrame(
        {
            "completion_id": ["a", "b"],
            "response": ["mail jane.doe@example.org please", "plain answer"],
            "last_user_message": ["call +1 (415) 555-0123", None],
            "messages": ['[{"role":"user","content":"call +1 (415) 555-0123"}]', None],
            "metadata": ['{"note":"AKIAIOSFODNN7EXAMPLE"}', "{}"],
        }
    )
    out, counts = redact_completions(frame, Redactor())
    assert out["response"].to_list() == ["mail [REDACTED:email] please", "plain answer"]
    assert out["response_original"].to_list() == ["mail jane.doe@example.org please", None]
    assert out["pii_redactions"].to_list() == [4, 0]
    assert counts == {"aws_key": 1, "email": 1, "phone": 2}
    off, none = redact_completions(frame, None)
    assert off["response"].to_list() == frame["response"].to_list() and none == {}


# ---- through the pipeline ----------------------------------------------------------------------

FEEDBACK_COMMENT = "call me on +1 (415) 555-0123 or jane.doe@example.org"


def planted() -> list[dict]:
    records = make_records(hours=3, per_hour=30)
    kinds = list(PII)
    for n, kind in enumerate(kinds):
        text, _ = PII[kind]
        # In a good answer (so it is a fine-tuning candidate), in the prompt and in the metadata.
        rec = records[5 + n]
        good = (
            f"Here is a step by step fix: open the settings page, then use {text} to sign in. "
            "Please tell me if it works."
        )
        rec["choices"][0]["message"]["content"] = good
        rec["messages"][1]["content"] = f"My details:\n{text}\nWhat now?"
        rec["metadata"]["note"] = text[:500]
        # In a failing answer too (regression eval set, clusters, the report's worst examples).
        bad = records[40 + n]
        bad["choices"][0]["message"]["content"] = f"No. {text}"
        bad["messages"][1]["content"] = f"refund refund {text}"
    # Tool call arguments.
    records[70]["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"email": PII["email"][0]})},
        }
    ]
    near = records[75]
    near["choices"][0]["message"]["content"] = "Here is a step: " + "; ".join(NEAR_MISSES)
    return records


@dataclass
class Ran:
    data: Path
    records: list[dict]
    hourly: dg.ExecuteInProcessResult
    daily: dg.ExecuteInProcessResult

    def sql(self, q: str) -> pl.DataFrame:
        con = duckdb.connect(str(self.data / "warehouse.duckdb"), read_only=True)
        try:
            return con.sql(q).pl()
        finally:
            con.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("privacy")
    settings = make_settings(root)
    records = planted()
    write_export(settings.local_dir, records, files=2)
    # A malformed line with PII in it: its excerpt lands in rejected_records.
    with (settings.local_dir / "part-000.jsonl").open("a") as fh:
        fh.write('{"id": "chatcmpl-broken", "note": "' + PII["email"][0] + '" \n')
    fb = settings.data_dir / "feedback"
    fb.mkdir(parents=True)
    (fb / "f.jsonl").write_text(
        json.dumps(
            {"completion_id": records[5]["id"], "thumbs": "down", "comment": FEEDBACK_COMMENT}
        )
        + "\n"
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    keys = hour_keys(hours=3)
    hourly = run_hourly(defs, instance, keys[0], keys[-1])
    day = BASE_HOUR.strftime("%Y-%m-%d")
    daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False
    )
    yield Ran(settings.data_dir, records, hourly, daily)
    instance.dispose()


def _strings_of_parquet(path: Path, skip: tuple[str, ...] = ()) -> str:
    df = pl.read_parquet(path)
    parts = []
    for name, dtype in df.schema.items():
        if name in skip:
            continue
        if dtype == pl.String:
            parts += [s for s in df[name].drop_nulls().to_list()]
        elif dtype == pl.List(pl.String):
            parts += [s for row in df[name].drop_nulls().to_list() for s in row if s]
    return "\n".join(parts)


def _outside_raw_layer(data: Path) -> dict[str, str]:
    """Every text the pipeline wrote that leaves the raw layer: tables (decoded), reports,
    datasets, the warehouse file's bytes. The raw layer is staging/ and raw_completions'
    response_original column."""
    out = {}
    for path in sorted(data.rglob("*")):
        if not path.is_file() or "staging" in path.parts or "dagster_home" in path.parts:
            continue
        if "feedback" in path.parts and "tables" not in path.parts and "reports" not in path.parts:
            continue  # the user's own feedback input
        if path.suffix == ".parquet":
            skip = ("response_original",) if "raw_completions" in path.parts else ()
            out[str(path)] = _strings_of_parquet(path, skip)
        elif path.suffix in (".md", ".json", ".jsonl", ".duckdb", ".csv"):
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


def test_runs_succeed(ran):
    assert ran.hourly.success and ran.daily.success


def test_no_planted_secret_leaves_the_raw_layer(ran):
    texts = _outside_raw_layer(ran.data)
    assert any("datasets" in p for p in texts) and any("reports" in p for p in texts)
    for path, text in texts.items():
        for kind, (_, secret) in PII.items():
            assert secret not in text, (kind, path)
    # The warehouse's views too, every string column of every table.
    for (table,) in ran.sql("select table_name from information_schema.tables").rows():
        df = ran.sql(f'select * from "{table}"')
        for name, dtype in df.schema.items():
            if dtype == pl.String:
                joined = "\n".join(df[name].drop_nulls().to_list())
                for kind, (_, secret) in PII.items():
                    assert secret not in joined, (table, name, kind)


def test_markers_counts_and_near_misses(ran):
    raw = ran.sql("select * from raw_completions")
    assert "response_original" not in raw.columns  # not in the warehouse view
    for n, kind in enumerate(PII):
        row = raw.filter(pl.col("completion_id") == ran.records[5 + n]["id"]).row(0, named=True)
        assert f"[REDACTED:{kind}]" in row["response"]
        assert f"[REDACTED:{kind}]" in row["last_user_message"]
        assert f"[REDACTED:{kind}]" in json.loads(row["messages"])[1]["content"]
        assert f"[REDACTED:{kind}]" in json.loads(row["metadata"])["note"]
        assert json.loads(row["metadata"])["user_type"]  # the JSON is intact
    near = raw.filter(pl.col("completion_id") == ran.records[75]["id"])["response"].item()
    assert near == ran.records[75]["choices"][0]["message"]["content"]
    assert (
        "[REDACTED:email]"
        in raw.filter(pl.col("completion_id") == ran.records[70]["id"])["tool_calls"].item()
    )
    excerpt = ran.sql("select raw_excerpt from rejected_records where source = 'local'")
    assert excerpt.height == 1 and "[REDACTED:email]" in excerpt.item()
    mats = [
        e.step_materialization_data.materialization
        for e in ran.hourly.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.to_user_string()
        == "raw_completions"
    ]
    counts = mats[0].metadata["pii_redactions"].value
    # each kind: answer + prompt (last_user_message and messages) + metadata, in two records
    # (the failing one has no metadata note); the e-mail also in the tool call
    expected = {k: 7 for k in KINDS}
    expected["email"] += 1
    assert counts == expected
    assert mats[0].metadata["pii_redactions_total"].value == sum(expected.values())


def test_quality_score_is_the_seed_rubric_on_the_original_answer(ran):
    scored = ran.sql(
        "select completion_id, quality_score, response_length from scored_conversations"
    )
    by_id = {r["id"]: r for r in ran.records}
    assert scored.height == len(ran.records)
    changed = 0
    for cid, score, length in scored.rows():
        original = by_id[cid]["choices"][0]["message"]["content"] or ""
        assert score == calculate_quality_score({"response": original}), cid
        assert length == len(original)
        changed += original != Redactor().redact_text(original)[0]
    assert changed == 2 * len(PII) - 0  # every planted answer was redacted, and still scored
    # The original is in the raw layer's Parquet only.
    files = list((ran.data / "tables" / "raw_completions").rglob("*.parquet"))
    originals = pl.read_parquet(files, columns=["response_original"])["response_original"]
    assert originals.drop_nulls().len() == 2 * len(PII)


def test_datasets_pass_the_checker_and_hold_no_pii(ran):
    day = BASE_HOUR.strftime("%Y-%m-%d")
    ft = ran.data / "datasets" / "finetune" / day
    assert check_file(ft / "train.jsonl") == [] and check_file(ft / "validation.jsonl") == []
    manifest = json.loads((ft / "manifest.json").read_text())
    assert manifest["excluded"]["redaction_marker"] >= len(PII)
    for path in (ran.data / "datasets").rglob("*.jsonl"):
        text = path.read_text()
        for _, secret in PII.values():
            assert secret not in text, path
        if "finetune" in path.parts and path.name != "rejected.jsonl":
            assert "[REDACTED:" not in text
            for kind, pattern in PII_PATTERNS.items():
                assert not pl.Series([text]).str.contains(pattern).item(), (kind, path)
    evalset = (ran.data / "datasets" / "regression_eval" / day / "eval.jsonl").read_text()
    assert "[REDACTED:" in evalset  # the failing answers are there, redacted


def test_feedback_comment_is_redacted(ran):
    fb = ran.sql("select comment from conversation_feedback")
    assert fb.item() == "call me on [REDACTED:phone] or [REDACTED:email]"


def test_redaction_off_keeps_the_texts(tmp_path):
    cfg = json.loads(
        (Path(__file__).parents[1] / "conv_pipeline/monitoring_config.json").read_text()
    )
    cfg["privacy"]["redact"] = False
    path = tmp_path / "m.json"
    path.write_text(json.dumps(cfg))
    settings = make_settings(tmp_path, monitoring_config=str(path))
    records = planted()[:60]
    write_export(settings.local_dir, records, files=1)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        keys = hour_keys(hours=2)
        result = dg.materialize(
            [defs.get_assets_def("raw_completions")],
            resources=defs.resources,
            instance=instance,
            partition_key=keys[0],
        )
    assert result.success
    mat = result.asset_materializations_for_node("raw_completions")[0]
    assert mat.metadata["pii_redactions"].value == "redaction off"
    raw = pl.read_parquet(
        settings.data_dir / "tables/raw_completions" / keys[0][:10] / "08.parquet"
    )
    assert PII["email"][0] in "\n".join(raw["response"].to_list())
