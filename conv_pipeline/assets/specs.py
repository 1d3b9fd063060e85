"""What every asset spec gets, applied once over the whole graph (``definitions.py`` maps each
spec through ``apply``): owners, a code version, the cadence tag jobs select by, automation for
the hourly layers, and the column schema and column lineage of the three row tables (docs/UI.md).

* **Code versions** are a hash of the source files an asset's logic lives in (``LOGIC``: its
  asset module and the core modules it calls) plus ``CODE_VERSION_EPOCH``. Changing the logic
  changes the version, and the UI marks the partitions materialized by older code as stale.
  Bump ``CODE_VERSION_EPOCH`` for a change that the source does not show (a library upgrade that
  changes results).
* **Automation**: the hourly layers below ``raw_completions`` carry
  ``eager() & all_deps_blocking_checks_passed()``: when an upstream partition lands and its
  blocking integrity checks passed, the next layer is requested. The conditions act only while
  the ``automation_sensor`` runs; it starts stopped like every other sensor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.metadata import column_schema
from conv_pipeline.core.schema import CONVERSATION_ISSUES, RAW_COMPLETIONS, SCORED_CONVERSATIONS

OWNERS = ["team:llmops"]
# Bump to mark every asset stale without a source change (e.g. a scoring library upgrade).
CODE_VERSION_EPOCH = "1"
PACKAGE = Path(__file__).resolve().parent.parent

_JUDGE_CORE = ("core/judge/evaluators.py", "core/judge/parse.py", "core/judge/pipeline.py")
_REPORT_LOGIC = (
    "assets/reporting/reports.py",
    "core/reporting/report.py",
    "core/reporting/plots.py",
    "core/judge/report.py",
    "core/judge/insights.py",
)
_IMPROVEMENT_LOGIC = (
    "assets/improvement",
    "core/improvement/datasets.py",
    "core/improvement/experiments.py",
    "core/improvement/drift.py",
    "core/improvement/clusters.py",
    "core/improvement/stats.py",
)
# The source files (or folders) whose logic each asset runs, inside the conv_pipeline package.
LOGIC: dict[dg.AssetKey, tuple[str, ...]] = {
    keys.RAW: (
        "assets/ingestion.py",
        "core/ingestion",
        "core/privacy/redaction.py",
        "core/schema.py",
        "resources/source.py",
    ),
    keys.SCORED: ("assets/scoring.py", "core/scoring/rubric.py", "core/schema.py"),
    keys.ISSUES: (
        "assets/scoring.py",
        "core/scoring/issues.py",
        "core/judge/pipeline.py",
        "core/schema.py",
    ),
    keys.JUDGE_EVALUATIONS: (
        "assets/judge.py",
        "checks/judge.py",
        *_JUDGE_CORE,
        "core/judge/runner.py",
        "core/judge/cache.py",
        "resources/judge.py",
    ),
    keys.JUDGE_CALIBRATION: ("assets/judge.py", "core/judge/calibration.py", *_JUDGE_CORE),
    keys.INSIGHT_REPORT: _REPORT_LOGIC,
    keys.DAILY_REPORT: _REPORT_LOGIC,
    keys.FEEDBACK: (
        "assets/improvement/feedback.py",
        "core/improvement/feedback.py",
        "core/improvement/stats.py",
    ),
    **{
        k: _IMPROVEMENT_LOGIC
        for k in (keys.FINETUNE, keys.EVAL_SET, keys.EXPERIMENTS, keys.DRIFT, keys.CLUSTERS)
    },
    keys.PUBLISHED_REPORTS: ("assets/publishing.py", "core/publishing/blob.py"),
    keys.PUBLISHED_DAILY: ("assets/publishing.py", "core/publishing/blob.py"),
}

# Assets that follow their upstream layer automatically (when the automation sensor runs).
AUTOMATED = (keys.SCORED, keys.ISSUES, keys.INSIGHT_REPORT)


def _files(rel: str) -> list[Path]:
    path = PACKAGE / rel
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def code_version(key: dg.AssetKey) -> str:
    """A short hash of the source of ``key``'s logic (``LOGIC``) and the epoch."""
    digest = hashlib.sha256(CODE_VERSION_EPOCH.encode())
    for rel in LOGIC[key]:
        for path in _files(rel):
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()[:12]


def downstream_automation() -> dg.AutomationCondition:
    """Refresh when an upstream partition lands and its blocking checks passed."""
    return (
        dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("eager_after_blocking_checks")


# ---- column descriptions and lineage -------------------------------------------------------------

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "completion_id": "the stored completion's id",
    "created": "created, seconds since the epoch",
    "created_at": "created, as a UTC timestamp",
    "partition_key": "the hourly partition (YYYY-MM-DD-HH:00, UTC)",
    "model": "the model (deployment) that answered",
    "metadata": "the completion's metadata as stored (JSON)",
    "user_type": "metadata.user_type",
    "category": "metadata.category",
    "conversation_id": "metadata.conversation_id",
    "prompt_variant": "metadata.prompt_variant",
    "pipeline_source": "metadata.pipeline_source",
    "messages": "the input messages (JSON)",
    "n_messages": "number of input messages",
    "system_prompt": "text of the first system/developer message",
    "last_user_message": "text of the last user message",
    "response": 'choices[0].message.content; null counts as ""',
    "response_is_null": "the content was null or absent",
    "finish_reason": "choices[0].finish_reason",
    "refusal": "choices[0].message.refusal",
    "tool_calls": "choices[0].message.tool_calls (JSON)",
    "n_tool_calls": "number of tool calls",
    "n_choices": "number of choices",
    "prompt_tokens": "usage.prompt_tokens",
    "completion_tokens": "usage.completion_tokens",
    "total_tokens": "usage.total_tokens",
    "usage": "usage as stored (JSON)",
    "ingest_note": "what was repaired on the way in",
    "response_original": "the answer before PII redaction, only where redaction changed it "
    "(read by scoring alone; not in the warehouse view; docs/PRIVACY.md)",
    "pii_redactions": "how many PII matches were redacted in this row's texts",
    "source_file": "the export file the record came from",
    "source_line": "its line in that file",
    "quality_score": "the seed's calculate_quality_score on the response (1-10)",
    "quality_band": "excellent >= 8, good 6-8, fair 4-6, poor < 4",
    "response_length": "characters of the response",
    "response_words": "whitespace-separated words of the response",
    "has_helpful_indicator": "a helpful phrase of the seed occurs",
    "has_courtesy_indicator": "a courtesy phrase of the seed occurs",
    "has_negative_indicator": "a negative phrase of the seed occurs",
    "is_refusal": "refusal set, or a refusal phrase in the text",
    "is_empty_answer": "no text, no tool call, no refusal",
    "is_error": "content_filter, or an empty answer",
    "readability_ari": "Automated Readability Index (US school grade)",
    "issue": "the issue (docs/DATA.md lists the rules)",
    "severity": "info, warning or error",
    "detail": "what triggered the issue",
}

# Which upstream columns each derived column is computed from.
_SCORED_FROM_RAW: dict[str, tuple[str, ...]] = {
    "quality_score": ("response",),
    "quality_band": ("response",),
    "response_length": ("response",),
    "response_words": ("response",),
    "has_helpful_indicator": ("response",),
    "has_courtesy_indicator": ("response",),
    "has_negative_indicator": ("response",),
    "is_refusal": ("response", "refusal"),
    "is_empty_answer": ("response", "tool_calls", "refusal"),
    "is_error": ("response", "tool_calls", "refusal", "finish_reason"),
    "readability_ari": ("response",),
}
_ISSUE_FROM_SCORED: dict[str, tuple[str, ...]] = {
    "issue": (
        "response_length",
        "quality_score",
        "is_refusal",
        "is_empty_answer",
        "finish_reason",
    ),
    "severity": ("response_length", "quality_score", "is_refusal", "is_empty_answer"),
    "detail": ("response_length", "quality_score", "finish_reason"),
}
# Row tables: their schema, and (upstream, derived columns) for column lineage.
_TABLES: dict[dg.AssetKey, tuple[dict, tuple[dg.AssetKey, dict] | None]] = {
    keys.RAW: (RAW_COMPLETIONS, None),
    keys.SCORED: (SCORED_CONVERSATIONS, (keys.RAW, _SCORED_FROM_RAW)),
    keys.ISSUES: (CONVERSATION_ISSUES, (keys.SCORED, _ISSUE_FROM_SCORED)),
}


def _lineage(
    schema: dict[str, pl.DataType], upstream: dg.AssetKey, derived: dict[str, tuple[str, ...]]
) -> dg.TableColumnLineage:
    deps = {
        column: [
            dg.TableColumnDep(asset_key=upstream, column_name=s)
            for s in derived.get(column, (column,))
        ]
        for column in schema
    }
    return dg.TableColumnLineage(deps_by_column=deps)


def definition_metadata(key: dg.AssetKey) -> dict:
    if key not in _TABLES:
        return {}
    schema, lineage = _TABLES[key]
    meta: dict = {"dagster/column_schema": column_schema(schema, COLUMN_DESCRIPTIONS)}
    if lineage is not None:
        meta["dagster/column_lineage"] = _lineage(schema, *lineage)
    return meta


def _cadence(spec: dg.AssetSpec) -> str:
    pdef = spec.partitions_def
    if isinstance(pdef, dg.HourlyPartitionsDefinition):
        return keys.HOURLY
    if isinstance(pdef, dg.DailyPartitionsDefinition):
        return keys.DAILY
    return keys.ON_DEMAND


def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The attributes every asset shares, set in one place."""
    extra = {
        "owners": OWNERS,
        "code_version": code_version(spec.key),
        "tags": {**spec.tags, keys.CADENCE: _cadence(spec)},
        "metadata": {**spec.metadata, **definition_metadata(spec.key)},
    }
    if spec.key in AUTOMATED:
        extra["automation_condition"] = downstream_automation()
    return spec.replace_attributes(**extra)
