"""What the judge's modules share, below all of them: where the judge is (``JudgeConnection``),
one call (``JudgeTask``) and its ``Outcome``, the bounds of a run (``RunLimits``), and the tables'
columns (``judge_evaluations``, ``judge_calibration``; declared in ``core/schema.py`` with the other
warehouse tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from conv_pipeline.core.clients import ClientRules, Service, build_client
from conv_pipeline.core.schema import (
    JUDGE_CALIBRATION,
    JUDGE_CALIBRATION_TABLE,
    JUDGE_TABLE,
    judge_evaluations_schema,
)

# ---- where the judge is --------------------------------------------------------------------------

JUDGE_RULES = ClientRules(
    what="judge",
    missing_endpoint="the judge on Azure OpenAI needs CONV_PIPELINE_JUDGE_ENDPOINT or "
    "AZURE_OPENAI_ENDPOINT",
    missing_key="the judge on an OpenAI-compatible service needs CONV_PIPELINE_JUDGE_API_KEY "
    "or OPENAI_API_KEY",
)


@dataclass(frozen=True)
class JudgeConnection(Service):
    """Where the judge is (``Service``: kind, endpoint, base_url, api_version, api_key; no key
    means Entra ID for Azure) and which ``model``: the deployment (Azure) or model name."""

    model: str = field(kw_only=True)

    def where(self) -> str:
        place = (
            self.endpoint if self.kind == "azure_openai" else (self.base_url or "api.openai.com")
        )
        return f"{self.kind} {place} model {self.model}"

    def client(self, *, asynchronous: bool, max_retries: int, timeout: float) -> Any:
        """The SDK's client (``core/clients.py``); a ``ValueError`` names what is missing."""
        return build_client(
            self, JUDGE_RULES, asynchronous=asynchronous, max_retries=max_retries, timeout=timeout
        )


# ---- one call and a run's bounds -----------------------------------------------------------------

STATUSES = ("ok", "unparseable", "failed", "skipped_budget", "nothing_to_ground")
CACHED_STATUSES = ("ok", "unparseable")  # paid for and repeatable; failed calls are tried again


@dataclass
class JudgeTask:
    completion_id: str
    evaluator: str
    messages: list[dict[str, str]]
    estimated_tokens: int


@dataclass
class Outcome:
    status: str  # ok | unparseable | failed | skipped_budget | nothing_to_ground
    score: int | None = None
    reason: str | None = None
    raw_output: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    response_model: str | None = None
    cached: bool = False
    seconds: float = 0.0


@dataclass
class RunLimits:
    concurrency: int = 16
    requests_per_minute: int = 600
    tokens_per_minute: int = 600_000
    max_retries: int = 6
    timeout_seconds: float = 60.0
    max_output_tokens: int = 400
    temperature: float | None = 0.0
    max_calls: int = 5_000
    max_tokens: int = 5_000_000
    rate_period_seconds: float = 60.0  # the "minute" of the rate budgets (shorter in tests)


# ---- the tables ----------------------------------------------------------------------------------

TABLE = JUDGE_TABLE
CALIBRATION_TABLE = JUDGE_CALIBRATION_TABLE
CALIBRATION_SCHEMA = JUDGE_CALIBRATION


def table_schema(names: list[str]) -> dict[str, pl.DataType]:
    """The columns of ``judge_evaluations`` with these evaluators."""
    return judge_evaluations_schema(names)


def empty_table(names: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema=table_schema(names))


def evaluator_names(judged: pl.DataFrame) -> list[str]:
    """The evaluators present in a ``judge_evaluations`` frame (from its ``_status`` columns)."""
    return [c[: -len("_status")] for c in judged.columns if c.endswith("_status")]


def empty_calibration() -> pl.DataFrame:
    return pl.DataFrame(schema=CALIBRATION_SCHEMA)
