"""What the asset graph shows about each asset, in one place: owners, code versions, automation
conditions, column schemas and column lineage (docs/UI.md).

Decorators take these with ``**asset_ui("name")`` so that the settings every asset shares live
here and the asset modules stay short.

* **Code versions** are a hash of the source files an asset's logic lives in (its asset module
  and the core modules it calls) plus ``CODE_VERSION_EPOCH``. Changing the logic changes the
  version, and the UI marks the partitions materialized by older code as stale ("code version
  changed"). Bump ``CODE_VERSION_EPOCH`` for a change that the source does not show (a library
  upgrade that changes results).
* **Automation**: the hourly layers below ``raw_completions`` carry
  ``eager() & all_deps_blocking_checks_passed()``: when an upstream partition lands (the newest
  hour, by a sensor's run or by hand) and its blocking integrity checks passed, the next layer is
  requested. The conditions only act when the ``automation_sensor`` runs; it starts stopped like
  every other sensor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline.assets._meta import column_schema
from conv_pipeline.core.reporting.plots import TITLES, data_uri, image_markdown
from conv_pipeline.core.schema import CONVERSATION_ISSUES, RAW_COMPLETIONS, SCORED_CONVERSATIONS

OWNERS = ["team:llmops"]
# Bump to mark every asset stale without a source change (e.g. a scoring library upgrade).
CODE_VERSION_EPOCH = "1"
AUTOMATION_SENSOR = "automation_sensor"

_PACKAGE = Path(__file__).resolve().parent.parent
RAW = dg.AssetKey("raw_completions")
SCORED = dg.AssetKey("scored_conversations")

# The source files whose logic each asset runs (paths inside the conv_pipeline package).
LOGIC_FILES: dict[str, tuple[str, ...]] = {
    "raw_completions": (
        "assets/ingestion.py",
        "core/ingestion/parse.py",
        "core/ingestion/staging.py",
        "core/ingestion/api.py",
        "core/privacy/redaction.py",
        "core/schema.py",
        "resources/source.py",
    ),
    "scored_conversations": ("assets/scoring.py", "core/scoring/rubric.py", "core/schema.py"),
    "judge_evaluations": (
        "assets/judge.py",
        "checks/judge.py",
        "core/judge/evaluators.py",
        "core/judge/parse.py",
        "core/judge/pipeline.py",
        "core/judge/runner.py",
        "core/judge/cache.py",
        "resources/judge.py",
    ),
    "judge_calibration": ("assets/judge.py", "core/judge/calibration.py", "core/judge/runner.py"),
    "conversation_issues": (
        "assets/scoring.py",
        "core/scoring/issues.py",
        "core/judge/pipeline.py",
        "core/schema.py",
    ),
    "insight_report": (
        "assets/reporting/reports.py",
        "core/reporting/report.py",
        "core/reporting/plots.py",
        "core/judge/report.py",
        "core/judge/insights.py",
    ),
    "daily_insight_report": (
        "assets/reporting/reports.py",
        "core/reporting/report.py",
        "core/reporting/plots.py",
        "core/judge/report.py",
        "core/judge/insights.py",
    ),
    "conversation_feedback": (
        "assets/improvement/feedback.py",
        "core/improvement/feedback.py",
        "core/improvement/stats.py",
    ),
    "improvement": (
        "assets/improvement/datasets.py",
        "core/improvement/datasets.py",
        "core/improvement/experiments.py",
        "core/improvement/drift.py",
        "core/improvement/clusters.py",
        "core/improvement/stats.py",
    ),
}

# Assets that follow their upstream layer automatically (when the automation sensor runs).
AUTOMATED = {"scored_conversations", "conversation_issues", "insight_report"}


def code_version(name: str) -> str:
    """A short hash of the source of ``name``'s logic (``LOGIC_FILES``) and the epoch."""
    digest = hashlib.sha256(CODE_VERSION_EPOCH.encode())
    for rel in LOGIC_FILES[name]:
        path = _PACKAGE / rel
        digest.update(rel.encode())
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

# Which raw columns each derived scored column is computed from.
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


def _lineage(
    schema: dict[str, pl.DataType], upstream: dg.AssetKey, derived: dict[str, tuple[str, ...]]
) -> dg.TableColumnLineage:
    deps = {}
    for column in schema:
        sources = derived.get(column, (column,))
        deps[column] = [dg.TableColumnDep(asset_key=upstream, column_name=s) for s in sources]
    return dg.TableColumnLineage(deps_by_column=deps)


def column_lineage(name: str) -> dg.TableColumnLineage | None:
    if name == "scored_conversations":
        return _lineage(SCORED_CONVERSATIONS, RAW, _SCORED_FROM_RAW)
    if name == "conversation_issues":
        return _lineage(CONVERSATION_ISSUES, SCORED, _ISSUE_FROM_SCORED)
    return None


_SCHEMAS = {
    "raw_completions": RAW_COMPLETIONS,
    "scored_conversations": SCORED_CONVERSATIONS,
    "conversation_issues": CONVERSATION_ISSUES,
}


def definition_metadata(name: str) -> dict:
    meta: dict = {}
    if name in _SCHEMAS:
        meta["dagster/column_schema"] = column_schema(_SCHEMAS[name], COLUMN_DESCRIPTIONS)
    lineage = column_lineage(name)
    if lineage is not None:
        meta["dagster/column_lineage"] = lineage
    return meta


def asset_ui(name: str) -> dict:
    """Decorator keyword arguments shared by every asset: ``@dg.asset(..., **asset_ui(name))``."""
    kwargs: dict = {"owners": OWNERS, "code_version": code_version(name)}
    meta = definition_metadata(name)
    if meta:
        kwargs["metadata"] = meta
    if name in AUTOMATED:
        kwargs["automation_condition"] = downstream_automation()
    return kwargs


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; stopped until turned on in the UI."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=60,
        description=(
            "Refreshes scored_conversations, conversation_issues and insight_report when the "
            "newest hour of their upstream lands and its blocking checks passed."
        ),
    )


def plot_metadata(pngs: dict[str, bytes]) -> dict:
    """One ``plot_<name>`` Markdown entry per PNG, the image inline as a data URI: the Dagster UI
    shows it under [Show Markdown] (docs/UI.md)."""
    return {
        f"plot_{name}": dg.MetadataValue.md(
            f"### {TITLES[name]}\n\n" + image_markdown(TITLES[name], data_uri(png)) + "\n"
        )
        for name, png in pngs.items()
    }
