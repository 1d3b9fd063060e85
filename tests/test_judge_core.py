"""The judge's core: parsing, prompt files, sampling, and judging through the real ``openai``
SDK against the stand-in on loopback (scripted judgments, 429s, 5xx, slow answers), the cache,
the budgets, the concurrency bound, and the calibration metrics."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from judge_helpers import KEY, RubricJudge
from test_api_source import _IdentityEndpoint

from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.calibration import (
    DEFAULT_GOLDEN_SET,
    agreement,
    calibration_table,
    load_golden_set,
)
from conv_pipeline.core.judge.evaluators import (
    PromptFileError,
    conversation_inputs,
    load_evaluators,
)
from conv_pipeline.core.judge.parse import parse_judgment
from conv_pipeline.core.judge.pipeline import judge_items, select_for_judging
from conv_pipeline.core.judge.types import JudgeConnection
from conv_pipeline_demo.standin import (
    StandinAPIError,
    StoredCompletionsServer,
    judge_responder,
    scripted,
)

# ---- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score", "method"),
    [
        ('{"score": 4, "reason": "clear"}', 4, "json"),
        ('Sure!\n```json\n{"score": "5", "reason": "x"}\n```', 5, "json"),
        ('{"coherence": 2.0, "coherence_reason": "weak"}', 2, "json"),
        ("<S0>thinking</S0><S1>mostly fine</S1><S2>3</S2>", 3, "tags"),
        ("<score>2</score><reason>off topic</reason>", 2, "tags"),
        ("I would give it a 4, it is decent.", 4, "digit"),
    ],
)
def test_parse_json_then_tags_then_first_digit(text, score, method):
    j = parse_judgment(text, "coherence")
    assert j is not None and (j.score, j.method) == (score, method)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "no number at all",
        '{"score": 9, "reason": "step 2 was fine"}',  # out of range: no fallback to the "2"
        '{"score": "high"}',
        "10/10 would read again",
        "<S2>seven</S2>",
    ],
)
def test_unparseable_answers_give_no_score(text):
    assert parse_judgment(text, "coherence") is None


# ---- prompt files and inputs ---------------------------------------------------------------------


def test_bundled_evaluators_load_with_versioned_prompts():
    evs = load_evaluators(JudgeSettings(), Path("."))
    assert [e.name for e in evs] == ["coherence", "fluency", "relevance", "groundedness"]
    assert {e.issue for e in evs} == {"incoherent", "disfluent", "irrelevant", "ungrounded"}
    assert all(e.threshold == 3 for e in evs)
    g = next(e for e in evs if e.name == "groundedness")
    assert g.needs_context and g.prompt_version.startswith("1+") and len(g.prompt_version) == 12
    msgs = g.render("the question", "the answer", "the context")
    assert msgs[0]["role"] == "system" and "GROUNDEDNESS" in msgs[0]["content"]
    assert "the context" in msgs[1]["content"] and "{{" not in msgs[1]["content"]


PROMPT = """---
name: politeness
version: 2
issue: impolite
---
[system]
Rate POLITENESS 1-5. Answer {"score": n, "reason": "..."}.
[user]
ANSWER:
{{response}}
"""


def test_custom_evaluator_is_a_prompt_file_and_one_line_of_config(tmp_path):
    (tmp_path / "politeness.md").write_text(PROMPT, encoding="utf-8")
    settings = JudgeSettings.model_validate(
        {"evaluators": {"politeness": {"prompt": "politeness.md", "threshold": 4}}}
    )
    (ev,) = load_evaluators(settings, tmp_path)
    assert (ev.name, ev.issue, ev.threshold, ev.needs_context) == (
        "politeness",
        "impolite",
        4,
        False,
    )
    assert ev.prompt_version.startswith("2+")
    before = ev.prompt_version
    (tmp_path / "politeness.md").write_text(PROMPT.replace("1-5", "from 1 to 5"), encoding="utf-8")
    (again,) = load_evaluators(settings, tmp_path)
    assert again.prompt_version != before  # an edited rubric is another version


def test_prompt_file_errors_are_clear(tmp_path):
    missing = JudgeSettings.model_validate({"evaluators": {"tone": {"prompt": "nope.md"}}})
    with pytest.raises(PromptFileError, match="does not exist"):
        load_evaluators(missing, tmp_path)
    unknown = JudgeSettings.model_validate({"evaluators": {"tone": {}}})
    with pytest.raises(PromptFileError, match="not bundled"):
        load_evaluators(unknown, tmp_path)
    (tmp_path / "bad.md").write_text("---\nname: x\n---\n[user]\nno placeholder\n", "utf-8")
    bad = JudgeSettings.model_validate({"evaluators": {"tone": {"prompt": "bad.md"}}})
    with pytest.raises(PromptFileError, match="response"):
        load_evaluators(bad, tmp_path)
    with pytest.raises(ValueError, match="lower-case"):
        JudgeSettings.model_validate({"evaluators": {"Bad Name": {}}})


def test_conversation_inputs_collect_the_context_the_conversation_carried():
    messages = [
        {"role": "system", "content": "Refunds take 5 days."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "tool", "content": "order 42: shipped"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Where is my refund?"}],
            "context": "Policy: refunds within 5 business days.",
        },
    ]
    got = conversation_inputs(json.dumps(messages), "In 5 days.")
    assert got["query"].endswith("Where is my refund?") and "(earlier turn) Hi" in got["query"]
    assert "[system] Refunds take 5 days." in got["context"]
    assert "[tool result] order 42: shipped" in got["context"]
    assert "[retrieved] Policy" in got["context"]
    bare = conversation_inputs(json.dumps([{"role": "user", "content": "Q"}]), None)
    assert bare == {"query": "Q", "response": "", "context": ""}


# ---- sampling ------------------------------------------------------------------------------------


def _scored(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "completion_id": [f"c{i:04d}" for i in range(n)],
            "quality_score": [4.0 if i % 10 == 0 else 7.5 for i in range(n)],
            "response_length": [20 if i % 10 == 5 else 200 for i in range(n)],
            "is_empty_answer": [False] * n,
            "is_refusal": [False] * n,
            "finish_reason": ["stop"] * n,
        }
    )


def test_sampling_is_stratified_and_deterministic():
    scored = _scored(1000)
    s = JudgeSettings(sampling_rate=0.1)
    sample = select_for_judging(scored, s, low_quality_below=6.0)
    reasons = dict(sample.group_by("judge_sample_reason").len().rows())
    assert reasons["low_quality"] == 100  # every low score
    assert reasons["flagged"] == 100  # every too-short answer (a heuristic issue)
    assert 50 <= reasons["sampled"] <= 110  # ~10% of the other 800
    # priority order: low quality, flagged, sampled
    order = sample["judge_sample_reason"].to_list()
    assert order == sorted(order, key=["low_quality", "flagged", "sampled"].index)
    again = select_for_judging(scored.reverse(), s, low_quality_below=6.0)
    assert again["completion_id"].to_list() == sample["completion_id"].to_list()
    # rate 0: only the strata that are always judged; nothing when those are off too
    none = JudgeSettings(sampling_rate=0.0)
    assert select_for_judging(scored, none, low_quality_below=6.0).height == 200
    off = JudgeSettings(
        sampling_rate=0.0, always_judge_below_quality=None, always_judge_flagged=False
    )
    assert select_for_judging(scored, off, low_quality_below=6.0).height == 0
    assert (
        select_for_judging(scored, JudgeSettings(sampling_rate=1.0), low_quality_below=6.0).height
        == 1000
    )
    # a conversation stays sampled when its hour gains rows
    bigger = select_for_judging(_scored(1500), s, low_quality_below=6.0)
    assert set(sample["completion_id"]) <= set(bigger["completion_id"])


# ---- judging through the SDK ---------------------------------------------------------------------


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}) as s:
        yield s


def _conn(server, model: str = "judge-model") -> JudgeConnection:
    return JudgeConnection(kind="openai", model=model, base_url=server.openai_v1_base, api_key=KEY)


def _items(n: int, context: str = "[system] be helpful") -> list[dict]:
    return [
        {
            "id": f"c{i}",
            "query": f"question {i}",
            "response": f"answer number {i} " * 3,
            "context": context,
        }
        for i in range(n)
    ]


def _coherence():
    return [e for e in load_evaluators(JudgeSettings(), Path(".")) if e.name == "coherence"]


def _chat_calls(server) -> int:
    return len(server.requests(method="POST", path_contains="/chat/completions"))


def test_good_and_malformed_judgments_are_recorded_as_such(server, tmp_path):
    server.responder = scripted(
        [
            '{"score": 5, "reason": "clear and ordered"}',
            "<S0>hmm</S0><S1>loose ends</S1><S2>2</S2>",
            "I cannot judge this one.",
            '{"score": 11, "reason": "way off the scale"}',
        ]
    )
    s = JudgeSettings(concurrency=1)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, stats = judge_items(_items(4), _coherence(), s, _conn(server), cache)
    got = [out[(f"c{i}", "coherence")] for i in range(4)]
    assert [(o.status, o.score) for o in got] == [
        ("ok", 5),
        ("ok", 2),
        ("unparseable", None),
        ("unparseable", None),
    ]
    assert got[1].reason == "loose ends"
    assert "cannot judge" in got[2].reason and got[2].raw_output == "I cannot judge this one."
    assert stats.calls == 4 and stats.statuses == {"ok": 2, "unparseable": 2}
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    assert stats.per_evaluator["coherence"] | {} == {
        "scored": 2,
        "average": 3.5,
        "pass_rate": 0.5,
        "not_scored": 2,
        "prompt_version": _coherence()[0].prompt_version,
    }


def test_429_with_retry_after_5xx_and_timeouts_are_retried(server, tmp_path):
    server.responder = judge_responder()
    server.faults.add("429", times=2, retry_after_ms=30, path_contains="/chat/completions")
    server.faults.add("500", times=1, path_contains="/chat/completions")
    server.faults.add("503", times=1, path_contains="/chat/completions")
    server.faults.add("slow", times=1, delay_s=1.5, path_contains="/chat/completions")
    s = JudgeSettings(concurrency=2, timeout_seconds=0.5, max_retries=6)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, stats = judge_items(_items(6), _coherence(), s, _conn(server), cache)
    assert all(o.status == "ok" and 1 <= o.score <= 5 for o in out.values())
    assert server.faults.fired_by_kind() == {"429": 2, "500": 1, "503": 1, "slow": 1}
    statuses = [r["status"] for r in server.requests(method="POST", path_contains="/chat/")]
    assert statuses.count(429) == 2 and statuses.count(500) == 1 and statuses.count(503) == 1
    assert stats.calls == 6  # retries are attempts of one call, not new calls


def test_a_failed_judgment_is_recorded_not_cached_and_retried_next_run(server, tmp_path):
    server.responder = judge_responder()
    server.faults.add("500", times=1, path_contains="/chat/completions")
    s = JudgeSettings(concurrency=1, max_retries=0)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, stats = judge_items(_items(3), _coherence(), s, _conn(server), cache)
        first = out[("c0", "coherence")]
        assert first.status == "failed" and first.score is None
        assert "InternalServerError" in first.reason and "500" in first.reason
        assert stats.statuses == {"failed": 1, "ok": 2}
        before = _chat_calls(server)
        again, stats2 = judge_items(_items(3), _coherence(), s, _conn(server), cache)
    assert _chat_calls(server) - before == 1  # only the failed one is asked again
    assert again[("c0", "coherence")].status == "ok" and stats2.cache_hits == 2


def test_the_cache_makes_a_second_run_free_and_is_keyed_by_prompt_and_model(server, tmp_path):
    server.responder = judge_responder()
    evs = load_evaluators(JudgeSettings(), Path("."))
    s = JudgeSettings()
    path = tmp_path / "c.sqlite"
    with JudgmentCache(path) as cache:
        first, st1 = judge_items(_items(5), evs, s, _conn(server), cache)
    calls = _chat_calls(server)
    assert calls == 20 and st1.cache_hits == 0
    with JudgmentCache(path) as cache:  # a new process: the file persists
        second, st2 = judge_items(_items(5), evs, s, _conn(server), cache)
        assert _chat_calls(server) == calls  # no judge call at all
        assert st2.cache_hits == 20 and st2.calls == 0 and st2.estimated_tokens == 0
        assert all(o.cached for o in second.values())
        assert {k: o.score for k, o in second.items()} == {k: o.score for k, o in first.items()}
        judge_items(_items(5), evs, s, _conn(server, "another-model"), cache)
        assert _chat_calls(server) == calls + 20  # another model is another judgment


def test_groundedness_without_context_is_its_own_outcome_and_costs_nothing(server, tmp_path):
    server.responder = judge_responder()
    g = [e for e in load_evaluators(JudgeSettings(), Path(".")) if e.name == "groundedness"]
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, stats = judge_items(_items(2, context=""), g, JudgeSettings(), _conn(server), cache)
    assert {o.status for o in out.values()} == {"nothing_to_ground"}
    assert all(o.score is None and "nothing to ground" in o.reason for o in out.values())
    assert _chat_calls(server) == 0 and stats.planned_calls == 0


def test_budgets_cut_the_lowest_priority_calls(server, tmp_path):
    server.responder = judge_responder()
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        s = JudgeSettings(max_judgments_per_run=3, concurrency=2)
        out, stats = judge_items(_items(5), _coherence(), s, _conn(server), cache)
        assert [out[(f"c{i}", "coherence")].status for i in range(5)] == [
            "ok",
            "ok",
            "ok",
            "skipped_budget",
            "skipped_budget",
        ]
        assert stats.calls == 3 and stats.skipped_budget == 2 and _chat_calls(server) == 3
        # the token budget: room for one call's estimate. With all five in flight at once only
        # the estimates count: one call goes out.
        one = stats.estimated_tokens // 3
        s2 = JudgeSettings(max_tokens_per_run=int(one * 1.5), concurrency=5)
        out2, stats2 = judge_items(_items(5), _coherence(), s2, _conn(server, "m2"), cache)
        assert stats2.calls == 1 and stats2.skipped_budget == 4
        assert sum(o.status == "skipped_budget" for o in out2.values()) == 4
        # one at a time, finished calls count with their actual tokens (far below the estimate,
        # which reserves max_output_tokens), so more fit, and the total stays within the budget
        s3 = JudgeSettings(max_tokens_per_run=int(one * 1.5), concurrency=1)
        _, stats3 = judge_items(_items(5), _coherence(), s3, _conn(server, "m3"), cache)
    assert 2 <= stats3.calls < 5 and stats3.skipped_budget == 5 - stats3.calls
    assert stats3.prompt_tokens + stats3.completion_tokens <= s3.max_tokens_per_run


def test_estimated_cost_before_and_actual_tokens_after(server, tmp_path):
    server.responder = judge_responder()
    s = JudgeSettings(usd_per_million_prompt_tokens=1.0, usd_per_million_completion_tokens=2.0)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        _, stats = judge_items(_items(4), _coherence(), s, _conn(server), cache)
    assert stats.estimated_tokens > 0 and stats.estimated_cost_usd > 0
    assert stats.actual_cost_usd == round(
        (stats.prompt_tokens * 1.0 + stats.completion_tokens * 2.0) / 1e6, 6
    )
    # the estimate reserves max_output_tokens per call: an upper bound of the completion side
    assert stats.estimated_tokens >= stats.prompt_tokens + stats.completion_tokens
    assert JudgeSettings(usd_per_million_prompt_tokens=None).usd_per_million_prompt_tokens is None


def test_calls_stay_within_the_concurrency_bound(server, tmp_path):
    judge = RubricJudge(delay_s=0.05)
    server.responder = judge
    s = JudgeSettings(concurrency=3)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, _ = judge_items(_items(15), _coherence(), s, _conn(server), cache)
    assert judge.calls["judge"] == 15 and judge.max_inflight == 3
    assert all(o.status == "ok" for o in out.values())


def test_an_azure_deployment_with_a_key(server, tmp_path):
    server.responder = judge_responder(form="tags")
    conn = JudgeConnection(
        kind="azure_openai", model="judge-dep", endpoint=server.azure_endpoint, api_key=KEY
    )
    assert KEY not in repr(conn)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, _ = judge_items(_items(2), _coherence(), JudgeSettings(), conn, cache)
    assert all(o.status == "ok" for o in out.values())
    (req, *_rest) = server.requests(method="POST")
    assert req["path"].startswith("/openai/deployments/judge-dep/chat/completions")
    assert req["auth"] == "api_key"


def test_misconfiguration_is_a_clear_error():
    with pytest.raises(ValueError, match="ENDPOINT"):
        JudgeConnection(kind="azure_openai", model="m").client(
            asynchronous=True, max_retries=0, timeout=1
        )
    with pytest.raises(ValueError, match="API_KEY"):
        JudgeConnection(kind="openai", model="m", base_url="http://127.0.0.1:9").client(
            asynchronous=True, max_retries=0, timeout=1
        )


def test_authentication_errors_become_failed_judgments(server, tmp_path):
    server.responder = judge_responder()
    bad = JudgeConnection(
        kind="openai", model="m", base_url=server.openai_v1_base, api_key="sk-bad-0000"
    )
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, stats = judge_items(_items(2), _coherence(), JudgeSettings(), bad, cache)
    assert {o.status for o in out.values()} == {"failed"}
    assert all(
        "AuthenticationError" in o.reason and "sk-bad-0000" not in o.reason for o in out.values()
    )


def test_a_scripted_error_is_recorded(server, tmp_path):
    server.responder = scripted(
        [
            StandinAPIError(
                400, "content filtered", type="invalid_request_error", code="content_filter"
            )
        ]
    )
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        out, _ = judge_items(
            _items(1), _coherence(), JudgeSettings(max_retries=0), _conn(server), cache
        )
    o = out[("c0", "coherence")]
    assert o.status == "failed" and "BadRequestError 400" in o.reason


# ---- calibration ---------------------------------------------------------------------------------


def _quadratic_kappa(a: list[int], b: list[int], k: int = 5) -> float:
    """Written out from the definition, independently of scikit-learn."""
    n = len(a)
    obs = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        obs[x - 1][y - 1] += 1
    ra = [sum(row) for row in obs]
    rb = [sum(obs[i][j] for i in range(k)) for j in range(k)]
    w = [[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)]
    num = sum(w[i][j] * obs[i][j] for i in range(k) for j in range(k))
    den = sum(w[i][j] * ra[i] * rb[j] / n for i in range(k) for j in range(k))
    return 1 - num / den


def test_agreement_metrics_on_a_small_labelled_set():
    human = [1, 2, 3, 4, 5, 3, 2, 4]
    judge = [2, 1, 3, 4, 5, 4, 2, 3]
    a = agreement(human, judge)
    assert a["kappa_quadratic"] == pytest.approx(_quadratic_kappa(human, judge), abs=1e-4)
    assert a["exact_agreement"] == 0.5 and a["within_one"] == 1.0
    assert agreement([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])["spearman"] == pytest.approx(0.8)
    perfect = agreement([1, 3, 5], [1, 3, 5])
    assert perfect["kappa_quadratic"] == 1.0 and perfect["spearman"] == 1.0
    assert agreement([4, 4], [4, 4])["kappa_quadratic"] == 1.0
    assert agreement([], [])["kappa_quadratic"] is None
    opposite = agreement([1, 2, 4, 5], [5, 4, 2, 1])
    assert opposite["kappa_quadratic"] < 0 and opposite["spearman"] == pytest.approx(-1.0)


def test_golden_set_lines_that_are_not_pairs_are_rejected_with_reasons(tmp_path):
    path = tmp_path / "golden.jsonl"
    good = {"id": "a", "evaluator": "coherence", "query": "q", "response": "r", "human_score": 4}
    lines = [
        json.dumps(good),
        "not json",
        json.dumps({**good, "id": "b", "human_score": 7}),
        json.dumps({**good, "id": "c", "evaluator": "tone"}),
        json.dumps(good),
        json.dumps({"id": "d", "evaluator": "coherence"}),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    g = load_golden_set(path, {"coherence"})
    assert [it.id for it in g.items] == ["a"]
    reasons = {r["line"]: r["reason"] for r in g.rejected}
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert "not JSON" in reasons[2] and "human_score" in reasons[3]
    assert "not configured" in reasons[4] and "duplicate" in reasons[5] and "response" in reasons[6]
    with pytest.raises(ValueError, match="does not exist"):
        load_golden_set(tmp_path / "missing.jsonl", {"coherence"})


def test_the_bundled_golden_set_judged_through_the_sdk(server, tmp_path):
    names = {"coherence", "fluency", "relevance", "groundedness"}
    golden = load_golden_set(DEFAULT_GOLDEN_SET, names)
    assert len(golden.items) >= 20 and not golden.rejected
    labels = {f"golden:{it.id}": it.human_score for it in golden.items}

    def echo_human(request: dict) -> str:  # a judge that agrees with the people, except once
        text = request["messages"][-1]["content"]
        it = next(i for i in golden.items if i.response in text)
        score = it.human_score if it.id != "c01" else 3
        return json.dumps({"score": score, "reason": "stand-in"})

    server.responder = echo_human
    evs = load_evaluators(JudgeSettings(), Path("."))
    outcomes = {}
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        for ev in evs:
            items = [
                {
                    "id": f"golden:{it.id}",
                    "query": it.query,
                    "response": it.response,
                    "context": it.context,
                }
                for it in golden.items
                if it.evaluator == ev.name
            ]
            got, _ = judge_items(items, [ev], JudgeSettings(), _conn(server), cache)
            outcomes.update(got)
    assert {k[0]: o.score for k, o in outcomes.items()} == labels | {"golden:c01": 3}
    table = calibration_table(
        golden,
        outcomes,
        min_kappa=0.6,
        min_items=5,
        model="judge-model",
        prompt_versions={e.name: e.prompt_version for e in evs},
    )
    rows = {r["evaluator"]: r for r in table.to_dicts()}
    assert set(rows) == names | {"all"}
    assert rows["fluency"]["kappa_quadratic"] == 1.0 and rows["fluency"]["passed"] is True
    assert rows["coherence"]["exact_agreement"] == pytest.approx(5 / 6, abs=1e-4)
    assert rows["coherence"]["kappa_quadratic"] < 1.0 and rows["all"]["scored"] == len(golden.items)


# ---- insights ------------------------------------------------------------------------------------

REPORT = {
    "kind": "hourly",
    "window_start": "2025-03-10T08:00:00+00:00",
    "window_end": "2025-03-10T09:00:00+00:00",
    "totals": {"conversations": 40, "average_quality": 7.125, "error_rate": 0.025},
    "alerts": [],
    "issues": [{"issue": "response_too_short", "count": 3, "rate": 0.075}],
    "segments": {"user_type": [{"value": "free", "conversations": 14, "issues": {}}]},
    "worst_examples": [{"completion_id": "chatcmpl-a", "quality_score": 4.0}],
    "recommended_actions": [],
}


def test_unverified_numbers_are_listed():
    from conv_pipeline.core.judge.insights import report_facts, unverified_numbers

    facts = report_facts(REPORT, 5)
    text = "On 2025-03-10 the 40 conversations averaged 7.13; 7.5% were too short, but 99 failed."
    assert unverified_numbers(text, facts) == ["99"]


def test_insights_fall_back_to_the_rules_and_are_cached(server, tmp_path):
    from conv_pipeline.core.judge.insights import generate_insights

    kwargs = {"allowed_actions": ["prompt_optimization"], "max_output_tokens": 200, "examples": 5}
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        server.responder = scripted(["Here are my thoughts, in prose."])
        prose = generate_insights(REPORT, _conn(server), cache, **kwargs)
        assert prose["source"] == "rules" and "not the JSON" in prose["note"]
        calls = _chat_calls(server)
        again = generate_insights(REPORT, _conn(server), cache, **kwargs)
        assert again["source"] == "rules" and again["cached"] and _chat_calls(server) == calls
        server.responder = scripted([StandinAPIError(500, "boom", type="server_error")])
        down = generate_insights(REPORT, _conn(server, "m2"), cache, max_retries=0, **kwargs)
        assert down["source"] == "rules" and "InternalServerError" in down["note"]
        good = {
            "summary": "40 conversations; 7.5% too short.",
            "suggestions": [
                {
                    "action": "prompt_optimization",
                    "reason": "short",
                    "evidence": ["chatcmpl-a", "chatcmpl-zzz"],
                }
            ],
        }
        server.responder = scripted([json.dumps(good)])
        ok = generate_insights(REPORT, _conn(server, "m3"), cache, **kwargs)
    assert ok["source"] == "llm" and ok["unverified_numbers"] == []
    assert ok["suggestions"][0]["evidence"] == ["chatcmpl-a"]


@pytest.fixture
def entra(monkeypatch):
    """The managed-identity endpoint DefaultAzureCredential asks (as in test_api_source)."""
    endpoint = _IdentityEndpoint("entra-token-abc")
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header")
    yield endpoint
    endpoint.close()


def test_an_azure_deployment_with_entra_id(entra, tmp_path):
    """No key: a real DefaultAzureCredential flow against a managed-identity endpoint on loopback."""
    with StoredCompletionsServer(api_keys=(), bearer_tokens={"entra-token-abc"}) as server:
        server.responder = judge_responder()
        conn = JudgeConnection(
            kind="azure_openai", model="judge-dep", endpoint=server.azure_endpoint
        )
        with JudgmentCache(tmp_path / "c.sqlite") as cache:
            out, _ = judge_items(_items(2), _coherence(), JudgeSettings(), conn, cache)
        assert {o.status for o in out.values()} == {"ok"}
        assert {r["auth"] for r in server.requests(method="POST")} == {"bearer_token"}
    assert entra.calls and "cognitiveservices.azure.com" in entra.calls[0]


def test_the_requests_per_minute_budget_spaces_the_calls(server):
    """A leaky bucket of 5 requests per (shortened) minute of 1 s: 5 at once, then 1 per 0.2 s, so
    15 calls span about 10 x 0.2 s at the server (at least 1.5 s), however fast the machine."""
    from conv_pipeline.core.judge.runner import run_tasks
    from conv_pipeline.core.judge.types import JudgeTask, RunLimits

    server.responder = judge_responder()
    limits = RunLimits(concurrency=15, requests_per_minute=5, rate_period_seconds=1.0)
    tasks = [
        JudgeTask(f"c{i}", "coherence", [{"role": "user", "content": "ANSWER:\nfine"}], 10)
        for i in range(15)
    ]
    outcomes, budget = run_tasks(tasks, _conn(server), limits)
    assert budget.calls == 15 and {o.status for o in outcomes} == {"ok"}
    times = sorted(r["time"] for r in server.requests(method="POST"))
    assert times[-1] - times[0] >= 1.5  # without the budget: a few milliseconds


CHILD = """
import sys
from pathlib import Path
from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.evaluators import load_evaluators
from conv_pipeline.core.judge.pipeline import judge_items
from conv_pipeline.core.judge.types import JudgeConnection
base, key, cache_path = sys.argv[1:4]
items = [{"id": f"c{i}", "query": "q", "response": f"answer {i} " * 5, "context": ""} for i in range(40)]
s = JudgeSettings(evaluators={"coherence": {}}, concurrency=2)
with JudgmentCache(cache_path) as cache:
    judge_items(items, load_evaluators(s, Path(".")), s, JudgeConnection(
        kind="openai", model="judge-model", base_url=base, api_key=key), cache)
"""


def test_a_crash_mid_run_keeps_every_judgment_already_paid_for(tmp_path):
    import sqlite3
    import subprocess
    import sys
    import time

    path = tmp_path / "cache.sqlite"
    with StoredCompletionsServer(api_keys={KEY}, latency_ms=100) as server:
        server.responder = judge_responder()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.openai_v1_base, KEY, str(path)]
        )
        kept = 0
        deadline = time.monotonic() + 60
        while kept < 6 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=5) as con:
                        kept = con.execute("SELECT count(*) FROM judgments").fetchone()[0]
                except sqlite3.OperationalError:
                    pass  # the schema is being created
        child.kill()  # SIGKILL: no cleanup, no flush
        child.wait()
        assert child.returncode != 0 and kept >= 6
        with sqlite3.connect(path) as con:
            kept = con.execute("SELECT count(*) FROM judgments").fetchone()[0]
        assert 6 <= kept < 40
        before = _chat_calls(server)
        items = [
            {"id": f"c{i}", "query": "q", "response": f"answer {i} " * 5, "context": ""}
            for i in range(40)
        ]
        with JudgmentCache(path) as cache:
            out, stats = judge_items(
                items, _coherence(), JudgeSettings(concurrency=8), _conn(server), cache
            )
        assert stats.cache_hits == kept and stats.calls == 40 - kept
        assert _chat_calls(server) - before == 40 - kept
        assert {o.status for o in out.values()} == {"ok"}


def test_the_budget_keeps_low_quality_and_flagged_conversations_first(server, tmp_path):
    from datetime import UTC, datetime

    from conv_pipeline.core.judge.pipeline import judge_partitions

    n = 30
    scored = _scored(n).with_columns(
        pl.lit("2025-03-10-08:00").alias("partition_key"),
        pl.lit(datetime(2025, 3, 10, 8, tzinfo=UTC)).alias("created_at"),
    )
    raw = pl.DataFrame(
        {
            "completion_id": scored["completion_id"].reverse(),  # another order than scored's
            "messages": [json.dumps([{"role": "user", "content": "q"}])] * n,
            "response": [f"answer {i}" for i in range(n)],
        }
    )
    server.responder = judge_responder()
    s = JudgeSettings(sampling_rate=1.0, max_judgments_per_run=6, concurrency=4)
    with JudgmentCache(tmp_path / "c.sqlite") as cache:
        table, stats = judge_partitions(
            scored, raw, _coherence(), s, _conn(server), cache, low_quality_below=6.0
        )
    assert table.height == n and stats.calls == 6
    judged = table.filter(pl.col("coherence_status") == "ok")["judge_sample_reason"]
    assert sorted(judged) == ["flagged"] * 3 + ["low_quality"] * 3
    skipped = table.filter(pl.col("coherence_status") == "skipped_budget")
    assert skipped.height == n - 6 and set(skipped["judge_sample_reason"]) == {"sampled"}
