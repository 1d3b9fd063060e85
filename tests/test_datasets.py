"""Fine-tuning and regression-eval datasets: selection, conversion, validation, PII, dedup, split."""

from __future__ import annotations

import json

import polars as pl
import pytest
from ft_format_checker import check_line

from conv_pipeline.core.config import FinetuneSettings, RegressionEvalSettings
from conv_pipeline.core.improvement import datasets

GOOD = "Here is a step by step fix: open Settings, choose Billing and save. Please tell me if it works."


def _msgs(*pairs: tuple[str, str | None], cid: str = "c") -> str:
    """Stored input messages as the Stored Completions API returns them (ids, content_parts)."""
    return json.dumps(
        [
            {"id": f"{cid}-{i}", "role": r, "content": c, "name": None, "content_parts": None}
            for i, (r, c) in enumerate(pairs)
        ]
    )


def _conv(cid: str, user: str, answer: str, quality: float = 7.5, **raw_extra) -> dict:
    return {
        "completion_id": cid,
        "quality_score": quality,
        "messages": raw_extra.pop(
            "messages", _msgs(("system", "You are a support agent."), ("user", user), cid=cid)
        ),
        "response": answer,
        "tool_calls": raw_extra.pop("tool_calls", None),
        "system_prompt": "You are a support agent.",
        "last_user_message": user,
    }


def _tables(convs: list[dict], issues: list[tuple[str, str, str]] = ()):
    scored = pl.DataFrame(
        [{"completion_id": c["completion_id"], "quality_score": c["quality_score"]} for c in convs]
    )
    raw = pl.DataFrame([{k: c[k] for k in datasets.RAW_COLUMNS} for c in convs])
    iss = pl.DataFrame(
        [{"completion_id": a, "issue": b, "severity": s, "detail": b} for a, b, s in issues],
        schema={
            "completion_id": pl.String,
            "issue": pl.String,
            "severity": pl.String,
            "detail": pl.String,
        },
    )
    return scored, iss, raw


def _example(*messages: dict, **top) -> dict:
    return {"messages": list(messages), **top}


S = {"role": "system", "content": "sys"}
U = {"role": "user", "content": "question"}
A = {"role": "assistant", "content": "a good answer"}


# ---- the validator: every bad shape rejected with its reason ---------------------------------


@pytest.mark.parametrize(
    ("example", "reason"),
    [
        (_example(S, A, U, A), "bad_role_order"),  # assistant before any user
        (_example(U, S, A), "bad_role_order"),  # system after the conversation began
        (_example(S, U, A, A), "bad_role_order"),  # two assistant turns in a row
        (
            _example(S, U, {"role": "tool", "content": "x", "tool_call_id": "t1"}, A),
            "bad_role_order",
        ),  # tool result without a call
        (_example(S, U, {"role": "assistant", "content": ""}), "empty_assistant_final_turn"),
        (_example(S, U, {"role": "assistant", "content": "   "}), "empty_assistant_final_turn"),
        (_example(S, U), "empty_assistant_final_turn"),  # no assistant turn at the end
        (_example(S, U, {**A, "weight": 0}), "empty_assistant_final_turn"),
        (_example(S, U, {**A, "weight": 2}), "bad_weight"),
        (_example(S, {"role": "developer", "content": "x"}, U, A), "unsupported_role"),
        (_example(S, {"role": "user", "content": None}, A), "missing_content"),
        (_example(S, U, A, extra=1), "unknown_key"),
        (
            _example(
                S,
                U,
                {
                    "role": "assistant",
                    "content": "ok",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "content": "r", "tool_call_id": "c1"},
                A,
            ),
            "tool_calls_without_tools",
        ),  # fmt: skip
        (_example(S, {**U, "id": "msg-1"}, A), "unknown_message_key"),
        (_example(S, {"role": "user", "content": "x " * 40_000}, A), "too_many_tokens"),
        ({"messages": []}, "missing_messages"),
    ],
)
def test_validator_rejects_each_bad_shape_with_its_reason(example, reason):
    problems = datasets.validate_example(example, max_tokens=16_384)
    assert any(p.startswith(reason) for p in problems), problems


def test_validator_accepts_documented_shapes():
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
        "weight": 0,
    }
    tool = {"role": "tool", "content": '{"ok": true}', "tool_call_id": "call_1"}
    parts = {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    for ex in (
        _example(S, U, A),
        _example(U, A),
        _example(S, U, {**A, "weight": 0}, U, A),
        _example(S, U, call, tool, A, tools=[{"type": "function", "function": {"name": "f"}}]),
        _example(S, parts, A),
    ):
        assert datasets.validate_example(ex, max_tokens=16_384) == []
        assert check_line(json.dumps(ex)) == []


def test_token_estimate_is_the_documented_approximation():
    ex = _example({"role": "user", "content": "a" * 40}, {"role": "assistant", "content": "日本語"})
    # 3 priming + 2 messages x 4 + 40/4 ASCII + 3 non-ASCII
    assert datasets.estimate_tokens(ex) == 3 + 8 + 10 + 3
    assert datasets.validate_example(ex, max_tokens=24) == []
    assert datasets.validate_example(ex, max_tokens=23) == ["too_many_tokens: 24 > 23"]


# ---- selection and building -------------------------------------------------------------------


def _build(convs, issues=(), settings=None):
    settings = settings or FinetuneSettings()
    scored, iss, raw = _tables(convs, issues)
    cand, excluded = datasets.finetune_candidates(scored, iss, raw, settings)
    return datasets.build_finetune_dataset(cand, settings), excluded


def test_only_the_best_clean_conversations_are_candidates():
    convs = [
        _conv("ok-1", "How do I change plan?", GOOD),
        _conv("low", "How do I change plan, please?", GOOD, quality=6.5),
        _conv("issue", "Why was I charged twice?", GOOD),
        _conv("redacted-q", "Mail me at [REDACTED:EMAIL] about it", GOOD),
        _conv("redacted-a", "What is my address?", "It is [REDACTED:ADDRESS]. Please check."),
        _conv("empty", "Anything?", "   "),
    ]
    built, excluded = _build(convs, [("issue", "truncated", "warning")])
    assert excluded == {
        "has_issue": 1,
        "below_min_quality": 1,
        "redaction_marker": 2,
        "no_response_text": 1,
    }
    ids = built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    assert ids == ["ok-1"]
    lines = built["train"]["line"].to_list() + built["validation"]["line"].to_list()
    assert all(datasets.REDACTION_PREFIX not in line for line in lines)


def test_judge_threshold_applies_only_when_the_judge_column_exists():
    convs = [_conv("a", "Question one?", GOOD), _conv("b", "Question two?", GOOD + " Thanks.")]
    scored, iss, raw = _tables(convs)
    settings = FinetuneSettings(min_judge_score=4.0)
    _, excluded = datasets.finetune_candidates(scored, iss, raw, settings)
    assert "below_min_judge_score" not in excluded
    judged = scored.with_columns(pl.Series("judge_score", [5.0, 2.0]))
    cand, excluded = datasets.finetune_candidates(judged, iss, raw, settings)
    assert excluded["below_min_judge_score"] == 1
    assert cand["completion_id"].to_list() == ["a"]
    # the judge scores a sample: an unscored conversation passes unless a score is required
    sampled = scored.with_columns(pl.Series("judge_score", [None, 2.0], dtype=pl.Float64))
    cand, _ = datasets.finetune_candidates(sampled, iss, raw, settings)
    assert cand["completion_id"].to_list() == ["a"]
    strict = FinetuneSettings(min_judge_score=4.0, require_judge_score=True)
    cand, excluded = datasets.finetune_candidates(sampled, iss, raw, strict)
    assert cand.height == 0 and excluded["below_min_judge_score"] == 2


def test_stored_messages_become_fine_tuning_messages():
    history = json.dumps(
        [
            {"id": "m0", "role": "developer", "content": "Be brief.", "content_parts": None},
            {
                "id": "m1",
                "role": "user",
                "content": None,
                "content_parts": [{"type": "text", "text": "Order 42?"}],
            },  # fmt: skip
            {
                "id": "m2",
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"order": 42}'},
                    }
                ],
            },
            {"id": "m3", "role": "tool", "content": "shipped", "tool_call_id": "call_9"},
        ]
    )
    built, _ = _build([_conv("t", "Order 42?", "It shipped yesterday. Thank you for waiting!",
                             messages=history)])  # fmt: skip
    # the request's tool definitions are not stored: such a conversation is refused, with reason
    assert built["rejected"]["reason"].to_list() == [
        "tool_calls_without_tools: the tool definitions are not known"
    ]
    ex = datasets.build_example(history, "It shipped yesterday. Thank you for waiting!", None)
    roles = [m["role"] for m in ex["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert ex["messages"][1]["content"] == [{"type": "text", "text": "Order 42?"}]
    assert ex["messages"][2]["weight"] == 0  # history is not trained
    assert "weight" not in ex["messages"][-1]
    assert all("id" not in m for m in ex["messages"])
    ex["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    assert datasets.validate_example(ex, 16_384) == []
    assert check_line(json.dumps(ex)) == []


def test_bad_rows_are_rejected_with_reasons_and_counted():
    image = json.dumps(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    )
    convs = [
        _conv("good", "How do I export?", GOOD),
        _conv("order", "x", GOOD, messages=_msgs(("assistant", "hi"), ("user", "x"))),
        _conv("long", "y", GOOD, messages=_msgs(("user", "word " * 80_000))),
        _conv("img", "z", GOOD, messages=image),
        _conv("nomsg", "w", GOOD, messages=None),
        _conv("pii", "My card is 4111 1111 1111 1111, fix billing?", GOOD),
        _conv("mail", "Write to bob.smith@corp.example.org please", GOOD),
    ]
    built, _ = _build(convs)
    reasons = dict(built["rejected"].select("completion_id", "reason").rows())
    assert reasons["order"].startswith("bad_role_order")
    assert reasons["long"].startswith("too_many_tokens")
    assert reasons["img"].startswith("unsupported_content_part")
    assert reasons["nomsg"] == "no_input_messages"
    assert reasons["pii"] == "pii:card_number"
    assert reasons["mail"] == "pii:email"
    published = (
        built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    )
    assert published == ["good"]
    counts = datasets.rejection_counts(built["rejected"])
    assert counts == {
        "bad_role_order": 1,
        "no_input_messages": 1,
        "pii:card_number": 1,
        "pii:email": 1,
        "too_many_tokens": 1,
        "unsupported_content_part": 1,
    }


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail me: Jane.Doe+x@mail.example.co.uk", "email"),
        ("card 5500-0000-0000-0004 ok", "card_number"),
        ("call +44 20 7946 0958 now", "phone"),
        ("call (555) 123-4567", "phone"),
        ("server 192.168.10.254 is down", "ipv4"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "api_key"),
        ("AKIAIOSFODNN7EXAMPLE leaked", "api_key"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123", "api_key"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "api_key"),
    ],
)
def test_pii_screen_finds_each_kind(text, kind):
    out = datasets.screen_lines(
        pl.DataFrame({"line": [text, "a clean line, version 1.2, 3 items"]})
    )
    assert out["pii"].to_list() == [kind, None]


def test_duplicates_are_removed_on_the_normalized_prompt_and_answer():
    convs = [
        _conv("d-1", "How do I export?", GOOD, quality=7.0),
        _conv("d-2", "  how do I   EXPORT? ", GOOD.upper(), quality=7.5),
        _conv("d-3", "How do I export?", GOOD + " More.", quality=7.0),  # different answer
    ]
    built, _ = _build(convs)
    kept = sorted(
        built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    )
    assert built["duplicates"] == 1
    assert kept == ["d-2", "d-3"]  # the better-scoring copy stays


def test_max_examples_keeps_the_best_distinct_examples_and_counts_the_rest():
    convs = [
        _conv(f"m-{i:02d}", f"Question {i}?", f"{GOOD} Ref {i}.", quality=7.0 + (i % 2) * 0.5)
        for i in range(10)
    ]
    convs.append(_conv("m-01a", "Question 1?", f"{GOOD} Ref 1.", quality=7.5))  # a copy of m-01
    built, _ = _build(convs, settings=FinetuneSettings(max_examples=4))
    kept = sorted(
        built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    )
    # best score first, then smallest id: the 7.5s m-01, m-03, m-05, m-07; m-01a is m-01's copy
    assert kept == ["m-01", "m-03", "m-05", "m-07"]
    assert built["duplicates"] == 1
    assert built["over_max_examples"] == 11 - 5
    unlimited, _ = _build(convs, settings=FinetuneSettings(max_examples=None))
    assert unlimited["over_max_examples"] == 0
    assert unlimited["train"].height + unlimited["validation"].height == 10


def test_a_conversion_error_rejects_that_conversation_only():
    image = json.dumps(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    )
    convs = [
        _conv("a-img", "look", GOOD, messages=image),  # first in order: converted first
        _conv("b-ok", "How do I export?", GOOD),
    ]
    built, _ = _build(convs)
    kept = (
        built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    )
    assert kept == ["b-ok"]
    assert built["rejected"]["completion_id"].to_list() == ["a-img"]
    assert built["rejected"]["reason"].str.starts_with("unsupported_content_part").all()


def test_split_is_deterministic_by_completion_id_and_near_the_fraction():
    convs = [_conv(f"id-{i:04d}", f"Question number {i}?", f"{GOOD} Ref {i}.") for i in range(1000)]
    built, _ = _build(convs)
    val = set(built["validation"]["completion_id"])
    assert 60 <= len(val) <= 140  # 10% of 1000, binomial spread
    # the same id lands on the same side whatever else is in the window
    sub, _ = _build(convs[::3])
    assert set(sub["validation"]["completion_id"]) == val & {c["completion_id"] for c in convs[::3]}
    assert set(built["train"]["completion_id"]).isdisjoint(val)


# ---- regression eval set ----------------------------------------------------------------------


def test_eval_set_has_failing_conversations_deduplicated_by_prompt():
    convs = [
        _conv("bad-1", "Why was I charged twice?", "No.", quality=3.5),
        _conv("bad-2", "why was I charged   twice?", "I don't know.", quality=4.0),
        _conv("bad-3", "Cancel my plan", "Sorry, I cannot help.", quality=4.5),
        _conv("info-only", "Hello", GOOD),
        _conv("fine", "Export?", GOOD),
        _conv("leak", "My IP is 10.0.0.12, why blocked?", "Unable to help.", quality=3.5),
    ]
    issues = [
        ("bad-1", "response_too_short", "warning"),
        ("bad-1", "low_quality", "warning"),
        ("bad-2", "response_too_short", "warning"),
        ("bad-3", "refusal", "warning"),
        ("info-only", "missing_finish_reason", "info"),
        ("leak", "refusal", "warning"),
    ]
    scored, iss, raw = _tables(convs, issues)
    st = RegressionEvalSettings()
    failing = datasets.failing_conversations(scored, iss, st.issue_severities)
    assert sorted(failing["completion_id"]) == ["bad-1", "bad-2", "bad-3", "leak"]
    built = datasets.build_eval_dataset(failing, raw, st)
    rows = [json.loads(x) for x in built["rows"]["line"]]
    assert [r["completion_id"] for r in rows] == ["bad-1", "bad-3"]  # worst of the duplicates
    assert built["duplicates"] == 1
    assert dict(built["rejected"].select("completion_id", "reason").rows()) == {"leak": "pii:ipv4"}
    first = rows[0]
    assert first["query"] == "Why was I charged twice?"
    assert first["response"] == "No."
    assert first["context"] == "You are a support agent."
    assert first["issues"] == ["low_quality", "response_too_short"]
    assert first["quality_score"] == 3.5
    assert [m["role"] for m in first["messages"]] == ["system", "user"]


def test_eval_set_keeps_at_most_max_rows_distinct_prompts_worst_first():
    convs = [_conv(f"f-{i}", f"Question {i}?", "No.", quality=3.5 + i * 0.5) for i in range(5)]
    convs.insert(1, _conv("f-0b", "question 0?", "Nope.", quality=3.5))  # f-0's prompt again
    issues = [(c["completion_id"], "low_quality", "warning") for c in convs]
    scored, iss, raw = _tables(convs, issues)
    st = RegressionEvalSettings(max_rows=3)
    failing = datasets.failing_conversations(scored, iss, st.issue_severities)
    built = datasets.build_eval_dataset(failing, raw, st)
    assert built["rows"]["completion_id"].to_list() == ["f-0", "f-1", "f-2"]
    assert built["duplicates"] == 1
    assert built["truncated"] == 6 - 4  # f-3 and f-4 were never converted


def test_judge_scores_add_failures_when_the_column_exists():
    convs = [_conv("j-1", "Q1", GOOD), _conv("j-2", "Q2", GOOD)]
    scored, iss, raw = _tables(convs)
    scored = scored.with_columns(pl.Series("judge_score", [2.0, 5.0]))
    failing = datasets.failing_conversations(scored, iss, ["warning"], "judge_score", 3.0)
    assert failing["completion_id"].to_list() == ["j-1"]
    assert failing["issues"].to_list() == [["judge_below_threshold"]]
    rows = datasets.build_eval_dataset(failing, raw, RegressionEvalSettings())["rows"]
    assert json.loads(rows["line"][0])["judge_score"] == 2.0


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ("{not json", "input_messages_not_json"),
        (json.dumps({"role": "user"}), "no_input_messages"),
        (json.dumps([]), "no_input_messages"),
        (json.dumps(["just a string"]), "message_not_object"),
        (json.dumps([{"role": "narrator", "content": "x"}]), "unsupported_role"),
        (
            json.dumps([{"role": "user", "content": [{"type": "text", "text": 5}]}]),
            "bad_content",
        ),
        (
            json.dumps(
                [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": None, "tool_calls": "x"},
                ]
            ),
            "bad_tool_calls",
        ),
        (
            json.dumps(
                [
                    {"role": "user", "content": "q"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c", "function": "f"}],
                    },
                ]
            ),
            "bad_tool_calls",
        ),
    ],
)
def test_ugly_stored_messages_are_rejected_not_crashing(messages, reason):
    built, _ = _build([_conv("ugly", "q", GOOD, messages=messages), _conv("fine", "Export?", GOOD)])
    reasons = dict(built["rejected"].select("completion_id", "reason").rows())
    assert reasons["ugly"].startswith(reason), reasons
    published = (
        built["train"]["completion_id"].to_list() + built["validation"]["completion_id"].to_list()
    )
    assert published == ["fine"]
    # the eval set takes the same input without crashing either
    scored, iss, raw = _tables([_conv("ugly", "q", "No.", quality=3.5, messages=messages)],
                               [("ugly", "low_quality", "warning")])  # fmt: skip
    failing = datasets.failing_conversations(scored, iss, ["warning"])
    ev = datasets.build_eval_dataset(failing, raw, RegressionEvalSettings())
    assert ev["rows"].height == 0 and ev["rejected"]["completion_id"].to_list() == ["ugly"]


def test_a_tool_call_answer_with_unparseable_arguments_json_is_rejected():
    conv = _conv("tc", "q", "", tool_calls="[not json")
    cand = pl.DataFrame([{**conv}]).with_columns(pl.lit(7.5).alias("quality_score"))
    built = datasets.build_finetune_dataset(cand, FinetuneSettings())
    assert built["rejected"]["reason"].to_list() == ["conversion_error: JSONDecodeError"]
