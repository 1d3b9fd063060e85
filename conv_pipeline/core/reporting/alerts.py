"""Alerts on asset checks (Dagster-free): per-partition state, transitions and the messages.

Rules (docs/ALERTS.md):

* The unit is **(check, partition)**. A check evaluated over a ranged run covers many
  partitions: its metadata's ``failing_partitions`` (value per failing hour) and
  ``not_judged_partitions`` say which hours failed and which had too few conversations to judge;
  every other hour of the run's range passed.
* An alert goes out when a (check, partition) **starts failing** (it was not failing before) and
  a recovery message when a failing one **passes** again. Failing again while already failing,
  or passing while passing, sends nothing: a schedule that re-runs a bad hour every tick raises
  one alert. A partition that was not judged keeps its state.
* The state is the set of failing (check, partition) pairs, kept in a small JSON file in the
  data folder (``alerts/state.json``) with the position read up to and the undelivered messages;
  it is saved once the messages are out, so an evaluation that crashes is repeated whole and a
  message is never lost (it may, rarely, be sent twice, never zero times).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from conv_pipeline.core.files import atomic_write_text, file_lock

WHOLE_ASSET = ""  # the partition of an unpartitioned asset's check


@dataclass(frozen=True)
class Evaluation:
    """One asset check evaluation, as the sensor read it from the event log."""

    asset: str
    check_name: str
    passed: bool
    severity: str  # "ERROR" | "WARN"
    metadata: dict[str, Any]
    run_id: str
    partitions: list[str]  # the partitions of the run that evaluated it ([] if unpartitioned)
    timestamp: float

    @property
    def check(self) -> str:
        return f"{self.asset}:{self.check_name}"


def outcomes(ev: Evaluation) -> dict[str, tuple[bool, float | None]]:
    """partition -> (failing, measured value) for the partitions this evaluation judged."""
    md = ev.metadata
    parts = ev.partitions or [WHOLE_ASSET]
    not_judged = set(md.get("not_judged_partitions") or [])
    failing = md.get("failing_partitions")
    value = md.get("value")
    if isinstance(failing, dict):  # a ranged run of a per-partition quality check
        return {
            p: (p in failing, failing.get(p)) for p in parts if p not in not_judged or p in failing
        }
    if len(parts) == 1:
        if md.get("partitions_evaluated") == 0:  # too few conversations: nothing judged
            return {}
        return {parts[0]: (not ev.passed, value)}
    # a check without per-partition metadata over a range: its result stands for every partition
    return {p: (not ev.passed, value if not ev.passed else None) for p in parts}


@dataclass
class Alert:
    kind: str  # "failing" | "recovered" | "run_failed"
    check: str  # "asset:check_name" ("" for a run failure)
    asset: str
    check_name: str
    partition: str
    severity: str
    value: float | None
    threshold: float | None
    condition: str
    run_id: str
    job: str = ""
    message: str = ""
    worst_examples: list[str] = field(default_factory=list)
    url: str = ""
    at: str = ""

    @property
    def title(self) -> str:
        where = f" [{self.partition}]" if self.partition else ""
        if self.kind == "run_failed":
            return f"Run failed: {self.job} ({self.run_id[:8]}){where}"
        verb = "is failing" if self.kind == "failing" else "recovered"
        return f"{self.severity} {self.check_name} on {self.asset}{where} {verb}"

    def text(self) -> str:
        lines = [self.title]
        if self.kind == "run_failed":
            if self.message:
                lines.append(self.message)
        else:
            measured = "n/a" if self.value is None else f"{self.value:.4g}"
            lines.append(
                f"{self.condition or 'check'}: measured {measured}, threshold "
                f"{'n/a' if self.threshold is None else f'{self.threshold:g}'}"
            )
            if self.worst_examples:
                lines.append("worst examples: " + ", ".join(self.worst_examples))
        if self.url:
            lines.append(self.url)
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The generic webhook's JSON body."""
        body = asdict(self)
        body["title"] = self.title
        return body


def transitions(
    state: dict[str, dict[str, dict]], ev: Evaluation
) -> tuple[list[tuple[str, str, float | None]], dict[str, dict[str, dict]]]:
    """Apply one evaluation to ``state`` ({check: {partition: {...}}}, failing pairs only).

    Returns ([(kind, partition, value)], new state); ``kind`` is "failing" or "recovered".
    """
    current = dict(state.get(ev.check, {}))
    changes: list[tuple[str, str, float | None]] = []
    for part, (failing, value) in sorted(outcomes(ev).items()):
        if failing and part not in current:
            current[part] = {"since": ev.timestamp, "run_id": ev.run_id, "value": value}
            changes.append(("failing", part, value))
        elif failing:
            current[part] = {**current[part], "value": value}
        elif part in current:
            del current[part]
            changes.append(("recovered", part, value))
    new = {k: v for k, v in state.items() if k != ev.check}
    if current:
        new[ev.check] = current
    return changes, new


def make_alert(
    kind: str, ev: Evaluation, partition: str, value: float | None, ui_url: str, examples=()
) -> Alert:
    md = ev.metadata
    threshold = md.get("threshold")
    if kind == "recovered" and value is None and len(ev.partitions) <= 1:
        value = md.get("value")
    return Alert(
        kind=kind,
        check=ev.check,
        asset=ev.asset,
        check_name=ev.check_name,
        partition=partition,
        severity=ev.severity,
        value=float(value) if isinstance(value, int | float) else None,
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        condition=str(md.get("condition", "")),
        run_id=ev.run_id,
        worst_examples=list(examples),
        url=check_url(ui_url, ev.asset, ev.check_name, partition),
        at=datetime.fromtimestamp(ev.timestamp, UTC).isoformat(),
    )


def check_url(ui_url: str, asset: str, check_name: str, partition: str) -> str:
    path = "/".join(quote(p, safe="") for p in asset.split("/"))
    url = f"{ui_url}/assets/{path}?view=checks&checkDetail={quote(check_name, safe='')}"
    if partition:
        url += f"&partition={quote(partition, safe='')}"
    return url


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url}/runs/{run_id}"


# Which rows are "worst" for each metric (lowest score, shortest answer, errors first, most issues).
_ORDER = {
    "avg_response_length": (["response_length", "quality_score"], [False, False]),
    "error_rate": (["is_error", "quality_score"], [True, False]),
    "quality_issue_rate": (["_issues", "quality_score"], [True, False]),
}


def worst_example_ids(
    scored: pl.DataFrame, issues: pl.DataFrame | None, metric: str, limit: int
) -> list[str]:
    """The ``limit`` completion ids that pull ``metric`` the wrong way, worst first."""
    if scored.height == 0 or limit <= 0:
        return []
    df = scored
    if metric == "quality_issue_rate":
        counts = (
            issues.group_by("completion_id").agg(pl.len().alias("_issues"))
            if issues is not None and issues.height
            else pl.DataFrame(schema={"completion_id": pl.String, "_issues": pl.UInt32})
        )
        df = df.join(counts, on="completion_id", how="left").with_columns(
            pl.col("_issues").fill_null(0)
        )
    cols, desc = _ORDER.get(metric, (["quality_score"], [False]))
    return (
        df.sort([*cols, "completion_id"], descending=[*desc, False])
        .head(limit)["completion_id"]
        .to_list()
    )


def metric_of(condition: str) -> str:
    """``"average_quality < 6.0"`` -> ``"average_quality"``."""
    return condition.split(" ", 1)[0] if condition else ""


# ---- the state file ------------------------------------------------------------------------


@contextmanager
def locked_state(path: Path) -> Iterator[dict]:
    """The alert state at ``path`` (JSON), under an exclusive lock; saved atomically on exit.

    The daemon's sensor and ``conv-pipeline run`` share it, so two of them never send the same
    change twice. A body that raises leaves the file as it was (the work is redone next time).
    """
    with file_lock(path.with_suffix(".lock")):
        state = json.loads(path.read_text("utf-8")) if path.exists() else {}
        yield state
        atomic_write_text(path, json.dumps(state, sort_keys=True))
