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
* ``improvement``: a section of its own (fine-tuning and regression-eval datasets, A/B
  experiments, drift, failure clusters); every key is documented in docs/IMPROVEMENT.md.
* ``judge``: the LLM judge (evaluators, sampling, budgets, rate limits, checks, insights,
  calibration); every key is documented in docs/JUDGE.md. The judge only runs when a model is
  configured in the environment (``CONV_PIPELINE_JUDGE_MODEL``).
* ``privacy``: PII redaction (kinds, marker, on/off) and the retention of raw detail
  (docs/PRIVACY.md); ``improvement.feedback``: explicit user feedback (docs/FEEDBACK.md).
* ``batch_size`` and ``analysis_frequency`` are kept for compatibility with the seed; partitions are
  processed whole and hourly.
"""

from __future__ import annotations

import json
import operator
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

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
    # Plots (PNG) are drawn for the last N reports of each kind in a run (docs/UI.md); 0: none.
    plot_reports_per_run: int = Field(default=6, ge=0)

    @field_validator("alert_conditions")
    @classmethod
    def _valid_conditions(cls, value: list[str]) -> list[str]:
        for text in value:
            AlertCondition.parse(text)
        return value


class FinetuneSettings(BaseModel):
    """The fine-tuning / distillation dataset (docs/IMPROVEMENT.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    window_days: int = Field(1, ge=1)  # a daily partition covers this many days, ending that day
    min_quality: float = 7.0  # quality_score >= this (the seed's 7.0 target; its maximum is 7.5)
    min_judge_score: float | None = 4.0  # judge score >= this, only when the judge column exists
    judge_score_column: str = "judge_score"
    require_judge_score: bool = False  # True: conversations the judge did not score are left out
    max_tokens_per_example: int = Field(16_384, ge=16)
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    min_training_examples: int = 10  # OpenAI's minimum for a fine-tuning job
    # At most this many examples per partition, best first (None: no limit). A day of a busy
    # application holds far more good conversations than a fine-tuning job needs or pays for.
    max_examples: int | None = Field(20_000, ge=1)
    sample_rows: int = 3


class RegressionEvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    window_days: int = Field(1, ge=1)
    issue_severities: list[str] = Field(default_factory=lambda: ["warning", "error"])
    judge_fail_below: float | None = 3.0  # a judge score below this fails, when the column exists
    judge_score_column: str = "judge_score"
    max_rows: int = Field(5_000, ge=1)


class ExperimentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    dimensions: list[str] = Field(default_factory=lambda: ["prompt_variant", "model"])
    min_samples: int = Field(30, ge=2)  # per arm; fewer means "insufficient data", no test
    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # family-wise, Holm-corrected per window


class DriftSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    baseline_days: int = Field(7, ge=1)
    dimensions: list[str] = Field(
        default_factory=lambda: ["user_type", "category", "prompt_variant", "model"]
    )
    min_samples: int = Field(30, ge=2)  # in the day and in the baseline, per segment
    alpha: float = Field(0.01, gt=0.0, lt=1.0)  # Holm-corrected over every test of the day
    min_cohens_d: float = 0.5  # |d| of quality_score
    min_rate_change: float = 0.05  # absolute change of the issue rate
    min_psi: float = 0.2  # population stability index of response_length


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    min_failures: int = Field(10, ge=2)
    k_min: int = Field(2, ge=2)
    k_max: int = Field(8, ge=2)
    examples_per_cluster: int = Field(5, ge=1)
    top_terms: int = Field(8, ge=1)
    seed: int = 0
    silhouette_sample: int = Field(2_000, ge=10)

    @model_validator(mode="after")
    def _k_range(self) -> ClusterSettings:
        if self.k_max < self.k_min:
            raise ValueError(f"clusters.k_max ({self.k_max}) is below k_min ({self.k_min})")
        return self


class FeedbackSettings(BaseModel):
    """Explicit user feedback (docs/FEEDBACK.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    # Metadata keys of the stored completions that carry feedback (null: not read).
    thumbs_key: str | None = "feedback"
    rating_key: str | None = "rating"
    comment_key: str | None = "feedback_comment"
    # A folder (or one file) of *.jsonl / *.csv keyed by completion_id; relative to the data dir.
    path: str = "feedback"
    rating_min: float = 1.0
    rating_max: float = 5.0
    negative_rating_at_most: float = 2.0  # a rating <= this counts as negative feedback
    max_comment_chars: int = Field(2_000, ge=1)
    dimensions: list[str] = Field(
        default_factory=lambda: ["user_type", "category", "prompt_variant", "model"]
    )
    min_samples: int = Field(20, ge=2)  # feedback rows per segment for its statistics
    judge_score_column: str = "judge_score"
    examples: int = Field(5, ge=0)  # disagreements listed in the report

    @model_validator(mode="after")
    def _scale(self) -> FeedbackSettings:
        if not self.rating_min < self.rating_max:
            raise ValueError("feedback.rating_min must be below rating_max")
        if not self.rating_min <= self.negative_rating_at_most < self.rating_max:
            raise ValueError(
                "feedback.negative_rating_at_most must lie in [rating_min, rating_max)"
            )
        return self


class ImprovementSettings(BaseModel):
    """Keys of the ``improvement`` section (all optional)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    regression_eval: RegressionEvalSettings = Field(default_factory=RegressionEvalSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    clusters: ClusterSettings = Field(default_factory=ClusterSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)


PII_KINDS = (
    "azure_key",
    "aws_key",
    "jwt",
    "bearer_token",
    "api_key",
    "email",
    "ipv6",
    "ipv4",
    "card_number",
    "phone",
)


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    raw_detail_days: int = Field(90, ge=1)  # raw texts older than this are deleted
    cron_schedule: str = "15 3 * * *"  # the retention schedule (UTC)


class PrivacySettings(BaseModel):
    """PII redaction and retention (docs/PRIVACY.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    redact: bool = True
    kinds: list[str] = Field(default_factory=lambda: list(PII_KINDS))
    marker: str = "[REDACTED:{kind}]"
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PII_KINDS))
        if unknown:
            raise ValueError(f"unknown PII kinds {unknown}; known: {list(PII_KINDS)}")
        return value

    @field_validator("marker")
    @classmethod
    def _marker(cls, value: str) -> str:
        if "{kind}" not in value:
            raise ValueError("privacy.marker must contain {kind}, e.g. [REDACTED:{kind}]")
        return value


class AlertingSettings(BaseModel):
    """Keys of the ``alerting`` section (docs/ALERTS.md): which check severities reach the
    Teams/Slack/webhook channels (the rest only the log), and how many worst examples' ids an
    alert lists."""

    model_config = ConfigDict(extra="forbid")

    notify_severities: list[Literal["ERROR", "WARN"]] = Field(default_factory=lambda: ["ERROR"])
    worst_examples: int = Field(default=3, ge=0, le=50)


class JudgeEvaluatorSettings(BaseModel):
    """One evaluator: a bundled one by name (``{}``), or a custom one with its prompt file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None  # a prompt file, relative to the monitoring config's folder
    threshold: int | None = Field(None, ge=1, le=5)  # default: judge.threshold
    issue: str | None = None  # the issue a failing judgment raises (default: low_<name>)
    enabled: bool = True


class JudgeChecksSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_average_score: float = 3.0  # mean judge_score of an hour below this: WARN
    min_pass_rate: float = Field(0.8, ge=0.0, le=1.0)  # share of passing judgments below: WARN
    max_failure_rate: float = Field(0.05, ge=0.0, le=1.0)  # failed/unparseable share above: WARN
    min_judged: int = Field(10, ge=1)  # an hour with fewer judged conversations passes, noted


class JudgeInsightsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True  # only when a model is configured
    kinds: list[str] = Field(default_factory=lambda: ["daily"])  # reports that always get them
    hourly_when_alerting: bool = True  # an hourly report with a triggered alert gets them too
    max_output_tokens: int = Field(900, ge=50)
    examples: int = Field(5, ge=0)


class JudgeCalibrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    golden_set: str | None = None  # JSONL of human-labelled pairs; default: the bundled one
    min_kappa: float = Field(0.6, ge=-1.0, le=1.0)  # quadratic-weighted Cohen's kappa
    min_items: int = Field(5, ge=2)  # per evaluator, for its agreement to count


class JudgeSettings(BaseModel):
    """The ``judge`` section (docs/JUDGE.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    evaluators: dict[str, JudgeEvaluatorSettings] = Field(
        default_factory=lambda: {
            name: JudgeEvaluatorSettings()
            for name in ("coherence", "fluency", "relevance", "groundedness")
        }
    )
    threshold: int = Field(3, ge=1, le=5)  # a score >= threshold passes (as Azure AI Evaluation)
    sampling_rate: float = Field(0.1, ge=0.0, le=1.0)  # of the other conversations, per hour
    always_judge_below_quality: float | None = 6.0  # heuristic score below this: always judged
    always_judge_flagged: bool = True  # a conversation with a heuristic issue: always judged
    sampling_seed: int = 0
    max_judgments_per_run: int = Field(5_000, ge=0)  # judge calls (cache hits are free)
    max_tokens_per_run: int = Field(5_000_000, ge=0)  # prompt + completion tokens of judge calls
    concurrency: int = Field(16, ge=1)
    requests_per_minute: int = Field(600, ge=1)
    tokens_per_minute: int = Field(600_000, ge=1)
    max_retries: int = Field(6, ge=0)
    timeout_seconds: float = Field(60.0, gt=0)
    max_output_tokens: int = Field(400, ge=16)
    temperature: float | None = 0.0  # null: not sent (models that only take the default)
    usd_per_million_prompt_tokens: float | None = 2.5  # for the estimate; null: tokens only
    usd_per_million_completion_tokens: float | None = 10.0
    checks: JudgeChecksSettings = Field(default_factory=JudgeChecksSettings)
    insights: JudgeInsightsSettings = Field(default_factory=JudgeInsightsSettings)
    calibration: JudgeCalibrationSettings = Field(default_factory=JudgeCalibrationSettings)

    @field_validator("evaluators")
    @classmethod
    def _names(cls, value: dict[str, JudgeEvaluatorSettings]) -> dict:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
                raise ValueError(
                    f"judge evaluator name {name!r} must be lower-case letters, digits and _ "
                    "(it names columns)"
                )
        return value


class MonitoringConfig(BaseModel):
    pipeline_settings: PipelineSettings = Field(default_factory=PipelineSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    improvement: ImprovementSettings = Field(default_factory=ImprovementSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
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

    # Where the config file lives: custom judge prompts are relative to it.
    _source_dir: Path = PrivateAttr(default=DEFAULT_CONFIG_PATH.parent)

    @property
    def source_dir(self) -> Path:
        return self._source_dir

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
        config = MonitoringConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"monitoring config {target} is invalid: {exc}") from exc
    config._source_dir = target.resolve().parent
    return config
