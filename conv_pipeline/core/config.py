"""The monitoring config: one JSON file that mirrors the seed's ``monitoring_config.json``.

The seed's keys keep their meaning; the keys we add sit beside them in ``pipeline_settings``:

* ``alert_conditions``: ``"<metric> <op> <threshold>"`` strings, exactly as the seed writes them.
  The metrics are ``average_quality``, ``response_length`` (the average response length, in
  characters), ``error_rate`` and ``quality_issue_rate``. Each becomes an asset check with ERROR
  severity.
* ``quality_threshold``: the quality target; an average below it is a WARN check.
* ``partition_start``: first hourly partition (UTC); older completions are rejected.
* ``low_quality_below``: a conversation scoring below this gets the ``low_quality`` issue.
* ``min_conversations_for_alerts``: an hour with fewer conversations passes the alert checks with
  a note (too little data to judge).
* ``worst_examples``: how many worst conversations a report lists.
* ``segment_min_conversations``: a segment needs this many conversations to drive a recommendation.
* ``batch_size`` and ``analysis_frequency`` are kept for compatibility with the seed; partitions are
  processed whole and hourly.
"""

from __future__ import annotations

import json
import operator
import re
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "monitoring_config.json"

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_METRICS = {
    "average_quality": "average_quality",
    "response_length": "avg_response_length",
    "avg_response_length": "avg_response_length",
    "error_rate": "error_rate",
    "quality_issue_rate": "quality_issue_rate",
}
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|<|>)\s*(-?[0-9.]+)\s*$")


class AlertCondition(BaseModel):
    text: str
    metric: str  # key in the report's totals
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> AlertCondition:
        m = _CONDITION.match(text)
        if not m or m.group(1) not in _METRICS:
            raise ValueError(
                f"alert condition {text!r} is not '<metric> <op> <number>' with a metric among "
                f"{sorted(set(_METRICS))}"
            )
        return cls(
            text=text.strip(),
            metric=_METRICS[m.group(1)],
            op=m.group(2),
            threshold=float(m.group(3)),
        )

    @property
    def name(self) -> str:
        """Asset check name, e.g. ``alert_average_quality``."""
        return f"alert_{self.metric}"

    def triggered(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.threshold)


class PipelineSettings(BaseModel):
    analysis_frequency: str = "hourly"
    batch_size: int = 50
    quality_threshold: float = 7.0
    alert_conditions: list[str] = Field(
        default_factory=lambda: [
            "average_quality < 6.0",
            "response_length < 30",
            "error_rate > 0.05",
            "quality_issue_rate > 0.15",
        ]
    )
    partition_start: date = date(2024, 10, 1)
    low_quality_below: float = 6.0
    min_conversations_for_alerts: int = 20
    worst_examples: int = 5
    segment_min_conversations: int = 5

    @field_validator("alert_conditions")
    @classmethod
    def _valid_conditions(cls, value: list[str]) -> list[str]:
        for text in value:
            AlertCondition.parse(text)
        return value


class MonitoringConfig(BaseModel):
    pipeline_settings: PipelineSettings = Field(default_factory=PipelineSettings)
    evaluation_metrics: list[str] = Field(default_factory=list)
    improvement_actions: list[str] = Field(
        default_factory=lambda: [
            "prompt_optimization",
            "fine_tuning_data_preparation",
            "issue_categorization_updates",
            "user_experience_enhancements",
            "quality_threshold_adjustments",
        ]
    )

    @property
    def alerts(self) -> list[AlertCondition]:
        return [AlertCondition.parse(t) for t in self.pipeline_settings.alert_conditions]

    @property
    def partition_start(self) -> datetime:
        d = self.pipeline_settings.partition_start
        return datetime(d.year, d.month, d.day, tzinfo=UTC)


def load_config(path: str | Path | None = None) -> MonitoringConfig:
    """Load the monitoring config (the bundled one when ``path`` is empty)."""
    target = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = json.loads(target.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ValueError(f"monitoring config {target} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"monitoring config {target} is not valid JSON: {exc}") from exc
    try:
        return MonitoringConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"monitoring config {target} is invalid: {exc}") from exc
