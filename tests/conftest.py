"""Shared fixtures: a small, deterministic export folder and the real Definitions over tmp folders.

The generator below is deliberately independent of ``conv_pipeline_demo.sample``: it writes the
export format of docs/ARCHITECTURE.md by hand (one stored completion per line, as the Stored Completions API
returns it, plus ``messages``) so the tests check the product against the contract, not against
itself.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from conv_pipeline.definitions import build_definitions
from conv_pipeline.settings import Settings

# Six complete hours of 2025 (UTC).
BASE_HOUR = datetime(2025, 3, 10, 8, tzinfo=UTC)
HOURS = 6
PER_HOUR = 40
HOUR_KEY = "%Y-%m-%d-%H:%M"

USER_TYPES = ("free", "pro", "enterprise")
CATEGORIES = ("billing", "technical", "account")
VARIANTS = ("v1", "v2")
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06")
TOPICS = ("your invoice", "the password reset", "the API quota", "a failed deployment", "exports")


def hour_key(ts: datetime) -> str:
    """The hourly partition key of the hour holding ``ts``."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0).strftime(HOUR_KEY)


def hour_keys(start: datetime = BASE_HOUR, hours: int = HOURS) -> list[str]:
    return [hour_key(start + timedelta(hours=h)) for h in range(hours)]


# ---- response texts --------------------------------------------------------------------------


def good_text(rng: random.Random) -> str:
    """50–500 characters with a helpful ('step') and a courtesy ('please') indicator: score 7.5."""
    topic = rng.choice(TOPICS)
    text = (
        f"Here is a step by step fix for {topic}: open the settings page, select the item and "
        "save your change. Please tell me if it works."
    )
    text += " Then reload the page." * rng.randint(0, 8)
    assert 50 <= len(text) <= 500
    return text


def exact_text(n: int) -> str:
    """A neutral text of exactly ``n`` characters (no indicator phrase)."""
    unit = "The answer is in the manual. "
    return (unit * (n // len(unit) + 1))[:n]


def long_text(rng: random.Random) -> str:
    """More than 1000 characters."""
    text = "Here is the full background on this topic, step by step. " * rng.randint(20, 28)
    assert len(text) > 1000
    return text


SHORT_TEXTS = ("OK.", "Sure.", "No.", "Try again later.", "Done.")


@dataclass
class Export:
    """What ``write_export`` wrote."""

    folder: Path
    records: list[dict]
    files: list[Path] = field(default_factory=list)

    @property
    def hours(self) -> list[str]:
        return sorted({hour_key(datetime.fromtimestamp(r["created"], UTC)) for r in self.records})

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def _completion(
    *,
    cid: str,
    created: int,
    i: int,
    content: str | None,
    finish_reason: str = "stop",
    refusal: str | None = None,
    tool_calls: list | None = None,
) -> dict:
    prompt_tokens = 40 + i % 17
    completion_tokens = max(1, len(content or "") // 4)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": MODELS[i % len(MODELS)],
        "request_id": f"req-{cid}",
        "tool_choice": None,
        "seed": None,
        "service_tier": "default",
        "system_fingerprint": "fp_tests",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "tool_calls": tool_calls,
                },
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "metadata": {
            "user_type": USER_TYPES[i % len(USER_TYPES)],
            "category": CATEGORIES[(i // 3) % len(CATEGORIES)],
            "conversation_id": f"conv-{i // 2:05d}",
            "prompt_variant": VARIANTS[(i // 7) % len(VARIANTS)],
        },
        "messages": [
            {"id": f"{cid}-0", "role": "system", "content": "You are a helpful support agent."},
            {"id": f"{cid}-1", "role": "user", "content": f"How do I fix {TOPICS[i % 5]}?"},
        ],
    }


def make_records(
    *,
    start: datetime = BASE_HOUR,
    hours: int = HOURS,
    per_hour: int = PER_HOUR,
    quality: str = "good",
    degraded_hours: Iterable[int] = (),
    id_prefix: str = "chatcmpl-t",
    seed: int = 7,
) -> list[dict]:
    """Deterministic stored completions, ``per_hour`` in each of ``hours`` hours from ``start``.

    ``quality="good"``: in every hour, one answer < 30 characters, one boundary/short answer
    (exactly 49, 50, 1000 or 1001 characters depending on the hour), one answer > 1000
    characters, and the rest good answers (50–500 characters with 'step' and 'please'); hour 1
    holds the content_filter record, hour 2 the tool call with null content, hour 3 the refusal.
    Each hour stays inside every alert threshold of the bundled monitoring config.

    ``quality="bad"`` (or an hour listed in ``degraded_hours``): every answer is very short.
    """
    rng = random.Random(seed)
    degraded = set(degraded_hours)
    boundary = {0: 49, 1: 50, 2: 1000, 3: 1001}
    step = 3600 // per_hour
    out: list[dict] = []
    i = 0
    for h in range(hours):
        hour_start = int((start + timedelta(hours=h)).timestamp())
        for j in range(per_hour):
            created = hour_start + j * step + rng.randint(0, step - 1)
            cid = f"{id_prefix}-{h:02d}-{j:03d}"
            kw: dict = {}
            if quality == "bad" or h in degraded or j == 0:
                content = rng.choice(SHORT_TEXTS)
            elif j == 1:
                content = exact_text(boundary.get(h, 42))
            elif j == 2:
                content = long_text(rng)
            elif j == 3 and h == 1:
                content, kw = None, {"finish_reason": "content_filter"}
            elif j == 3 and h == 2:
                content = None
                kw = {
                    "finish_reason": "tool_calls",
                    "tool_calls": [
                        {
                            "id": "call_lookup_1",
                            "type": "function",
                            "function": {"name": "lookup_order", "arguments": '{"order": "42"}'},
                        }
                    ],
                }
            elif j == 3 and h == 3:
                content, kw = None, {"refusal": "I'm sorry, but I can't help with that request."}
            else:
                content = good_text(rng)
            out.append(_completion(cid=cid, created=created, i=i, content=content, **kw))
            i += 1
    return out


def write_export(
    folder: Path, records: list[dict], *, files: int = 3, prefix: str = "part"
) -> Export:
    """Write ``records`` round-robin over ``files`` jsonl files (each file sorted by created)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        chunk = sorted(records[f::files], key=lambda r: (r["created"], r["id"]))
        path = folder / f"{prefix}-{f:03d}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in chunk), encoding="utf-8")
        paths.append(path)
    return Export(folder=folder, records=list(records), files=paths)


def make_settings(root: Path, *, monitoring_config: str = "") -> Settings:
    return Settings(
        data_dir=root / "data",
        local_dir=root / "export",
        source="local",
        monitoring_config=monitoring_config,
        dagster_home=root / "home",
    )


def run_hourly(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: str,
    last: str,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("hourly_pipeline").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=raise_on_error,
    )


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def defs(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


@pytest.fixture
def export(settings: Settings) -> Export:
    """The standard good export (240 completions, 3 files, 6 hours) in ``settings.local_dir``."""
    return write_export(settings.local_dir, make_records())


@pytest.fixture
def export_factory() -> Callable[..., Export]:
    """``export_factory(folder, files=3, **make_records_kwargs)`` writes an export folder."""

    def factory(folder: Path, *, files: int = 3, prefix: str = "part", **kwargs) -> Export:
        return write_export(folder, make_records(**kwargs), files=files, prefix=prefix)

    return factory


@pytest.fixture
def hourly_runner() -> Callable[..., dg.ExecuteInProcessResult]:
    return run_hourly


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """Azurite's blob service on 127.0.0.1 (a free port), for the whole session; stopped after."""
    from azurite_server import start_azurite

    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_judge_from_the_developer_environment(monkeypatch):
    """Tests never reach a real LLM judge: a judge a test wants is configured by the test."""
    for name in (
        "CONV_PIPELINE_JUDGE_MODEL",
        "CONV_PIPELINE_JUDGE_KIND",
        "CONV_PIPELINE_JUDGE_ENDPOINT",
        "CONV_PIPELINE_JUDGE_BASE_URL",
        "CONV_PIPELINE_JUDGE_API_KEY",
        "CONV_PIPELINE_JUDGE_INSIGHTS_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
