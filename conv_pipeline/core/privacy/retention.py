"""Retention of raw detail (docs/PRIVACY.md): texts older than N days are deleted, aggregates stay.

``apply_retention`` takes a cutoff hour (``now - raw_detail_days``, floored to the hour) and, for
everything dated before it:

* ``tables/raw_completions``: every text column (messages, system prompt, last user message,
  response, original response, refusal, tool calls, metadata) becomes null; ids, timestamps,
  segments, finish reasons and token counts stay, so the rows still count;
* the source's staged copies (``staging/**.parquet``): the same columns of the same rows;
* the API source's export copies (``staging/api/<fp>/export/api-*.jsonl``): lines of completions
  created before the cutoff are removed, a file left empty is deleted;
* ``rejected_records``: the excerpt of a rejected line whose hour is before the cutoff;
* ``conversation_feedback``: the comment (and the comments the feedback report quotes);
* insight reports (Markdown, JSON and the ``insight_reports`` rows): the worst examples keep their
  id, score and issues, their question and answer are removed;
* ``judge_evaluations`` and the judgment cache: the judge's reasons and raw answers (scores stay);
* the improvement datasets of days before the cutoff (``datasets/*/<day>/*.jsonl``): deleted, their
  ``manifest.json`` (counts only) stays.

Scores, issues, the reports' totals, experiments, drift, clusters and the datasets' manifests are
kept. The cutoff is recorded in ``retention.json``: the raw and scoring assets leave partitions
before it as they are (their text is gone, re-computing them would lose the scores).

Every file is rewritten atomically and only when something in it changes, so a second pass
changes nothing, and a crash leaves each file either as it was or as it should be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet, file_lock
from conv_pipeline.core.improvement.feedback import render_markdown as render_feedback
from conv_pipeline.core.judge.store import apply_retention as judge_retention
from conv_pipeline.core.reporting.report import render_markdown
from conv_pipeline.core.schema import HOUR_KEY_FORMAT, INSIGHT_REPORTS, parse_hour_key
from conv_pipeline.core.storage import DataStore

STATE_FILE = "retention.json"
RAW_TEXT_COLUMNS = (
    "metadata",
    "messages",
    "system_prompt",
    "last_user_message",
    "response",
    "response_original",
    "refusal",
    "tool_calls",
)
DATASET_KINDS = ("finetune", "regression_eval")


@dataclass
class RetentionResult:
    cutoff: str  # first hourly partition that keeps its detail
    raw_partitions: int = 0
    raw_rows: int = 0
    staged_files: int = 0
    staged_rows: int = 0
    export_files_rewritten: int = 0
    export_files_deleted: int = 0
    export_lines_removed: int = 0
    rejected_excerpts: int = 0
    feedback_comments: int = 0
    reports: int = 0
    dataset_files_deleted: int = 0
    judge_reasons: int = 0
    local_export_note: str = ""
    touched: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("touched",)}
        out["files_rewritten_or_deleted"] = len(self.touched)
        return out


def cutoff_for(now: datetime, days: int) -> str:
    """The first hour whose detail is kept: ``now - days``, floored to the hour."""
    ts = (now.astimezone(UTC) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return ts.strftime(HOUR_KEY_FORMAT)


def read_state(store: DataStore) -> dict:
    try:
        return json.loads((store.root / STATE_FILE).read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def retained_cutoff(store: DataStore) -> str | None:
    """Hourly partitions before this key had their raw detail deleted (None: never ran)."""
    return read_state(store).get("cutoff")


def retained_keys(store: DataStore, keys: list[str]) -> set[str]:
    cutoff = retained_cutoff(store)
    return {k for k in keys if cutoff and k < cutoff}


def _null_columns(df: pl.DataFrame, columns, when: pl.Expr) -> tuple[pl.DataFrame, int]:
    present = [c for c in columns if c in df.columns]
    if not present or df.height == 0:
        return df, 0
    has_text = pl.any_horizontal([pl.col(c).is_not_null() for c in present])
    n = df.select((when & has_text).sum()).item()
    if not n:
        return df, 0
    return (
        df.with_columns(
            [
                pl.when(when).then(pl.lit(None, df.schema[c])).otherwise(pl.col(c)).alias(c)
                for c in present
            ]
        ),
        int(n),
    )


def _hour_of_path(path: Path) -> str | None:
    try:
        return datetime.strptime(f"{path.parent.name} {path.stem}", "%Y-%m-%d %H").strftime(
            HOUR_KEY_FORMAT
        )
    except ValueError:
        return None


def apply_retention(
    store: DataStore, cutoff: str, *, now: datetime | None = None
) -> RetentionResult:
    """Delete the raw detail of every hour before ``cutoff`` (an hourly partition key)."""
    parse_hour_key(cutoff)  # validates the key
    now = now or datetime.now(UTC)
    result = RetentionResult(cutoff=cutoff)
    old_cutoff = retained_cutoff(store)
    # Record first: from here on the assets leave these partitions alone, even if we crash.
    state = {"cutoff": max(cutoff, old_cutoff or cutoff), "ran_at": now.isoformat()}
    atomic_write_bytes(store.root / STATE_FILE, json.dumps(state, indent=1).encode("utf-8"))
    cutoff = state["cutoff"]
    cutoff_day = cutoff[:10]
    _raw_tables(store, cutoff, result)
    _staging(store, cutoff, result)
    _rejected(store, cutoff, result)
    _feedback(store, cutoff_day, result)
    _feedback_reports(store, cutoff_day, result)
    _reports(store, cutoff, result)
    _datasets(store, cutoff_day, result)
    # the LLM judge's reasons, which may quote the conversation (docs/JUDGE.md)
    result.judge_reasons = judge_retention(store, cutoff)
    return result


def _rewrite(path: Path, df: pl.DataFrame, result: RetentionResult) -> None:
    atomic_write_parquet(path, df)
    result.touched.append(str(path))


def _raw_tables(store: DataStore, cutoff: str, result: RetentionResult) -> None:
    folder = store.tables_dir / "raw_completions"
    for path in sorted(folder.glob("*/*.parquet")):
        hour = _hour_of_path(path)
        if hour is None or hour >= cutoff:
            continue
        df = pl.read_parquet(path)
        df, n = _null_columns(df, RAW_TEXT_COLUMNS, pl.lit(True))
        if n:
            _rewrite(path, df, result)
            result.raw_partitions += 1
            result.raw_rows += n


def _staging(store: DataStore, cutoff: str, result: RetentionResult) -> None:
    root = store.staging_dir
    if not root.is_dir():
        return
    # The API source's export copies: completions created before the cutoff leave the file.
    cutoff_s = int(parse_hour_key(cutoff).timestamp())
    for export in sorted(root.glob("api/*/export")):
        with file_lock(export / ".conv_pipeline" / ".lock"):
            for path in sorted(export.glob("*.jsonl")):
                _trim_export(path, cutoff_s, result)
    for lock_dir in {p.parent for p in root.rglob("manifest.json")} | {root / "local"}:
        if not lock_dir.is_dir():
            continue
        with file_lock(lock_dir / ".lock"):
            for path in sorted(lock_dir.glob("*.parquet")):
                schema = pl.read_parquet_schema(path)
                if "partition_key" not in schema or "response" not in schema:
                    continue
                df = pl.read_parquet(path)
                df, n = _null_columns(df, RAW_TEXT_COLUMNS, pl.col("partition_key") < cutoff)
                if n:
                    _rewrite(path, df, result)
                    result.staged_files += 1
                    result.staged_rows += n


def _trim_export(path: Path, cutoff_s: int, result: RetentionResult) -> None:
    kept, removed = [], 0
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            created = json.loads(line).get("created")
        except (ValueError, AttributeError):
            created = None
        if isinstance(created, int | float) and created < cutoff_s:
            removed += 1
        else:
            kept.append(line)
    if not removed:
        return
    result.export_lines_removed += removed
    result.touched.append(str(path))
    if kept:
        atomic_write_bytes(path, b"\n".join(kept) + b"\n")
        result.export_files_rewritten += 1
    else:
        path.unlink()
        result.export_files_deleted += 1


def _rejected(store: DataStore, cutoff: str, result: RetentionResult) -> None:
    for path in sorted((store.tables_dir / "rejected_records").rglob("*.parquet")):
        df = pl.read_parquet(path)
        if "raw_excerpt" not in df.columns:
            continue
        when = pl.col("partition_key").is_not_null() & (pl.col("partition_key") < cutoff)
        df, n = _null_columns(df, ["raw_excerpt"], when)
        if n:
            _rewrite(path, df, result)
            result.rejected_excerpts += n


def _feedback(store: DataStore, cutoff_day: str, result: RetentionResult) -> None:
    for path in sorted((store.tables_dir / "conversation_feedback").glob("*.parquet")):
        if path.stem >= cutoff_day or path.stem.startswith("_"):
            continue
        df = pl.read_parquet(path)
        df, n = _null_columns(df, ["comment"], pl.lit(True))
        if n:
            _rewrite(path, df, result)
            result.feedback_comments += n


def _feedback_reports(store: DataStore, cutoff_day: str, result: RetentionResult) -> None:
    for path in sorted((store.reports_dir / "feedback").glob("*.json")):
        if path.stem >= cutoff_day:
            continue
        report = json.loads(path.read_text("utf-8"))
        changed = False
        for rows in (report.get("disagreements") or {}).values():
            for row in rows:
                if row.get("comment") is not None:
                    row["comment"] = None
                    changed = True
        if changed:
            body = json.dumps(report, indent=2, ensure_ascii=False, default=str, sort_keys=True)
            atomic_write_bytes(path, body.encode("utf-8"))
            atomic_write_bytes(path.with_suffix(".md"), render_feedback(report).encode("utf-8"))
            result.touched.append(str(path))
            result.reports += 1


def _strip_report(report: dict) -> bool:
    changed = False
    for ex in report.get("worst_examples") or []:
        for key in ("user_message", "response"):
            if ex.get(key) is not None:
                ex[key] = None
                changed = True
    return changed


def _reports(store: DataStore, cutoff: str, result: RetentionResult) -> None:
    tables = store.tables_dir / "insight_reports"
    for path in sorted(tables.rglob("*.parquet")):
        if path.name.startswith("_"):
            continue
        df = pl.read_parquet(path)
        if df.height == 0:
            continue
        window_end = df["window_end"][0]
        if window_end is None or window_end > parse_hour_key(cutoff):
            continue
        report = json.loads(df["report_json"][0])
        if not _strip_report(report):
            continue
        body = json.dumps(report, indent=2, ensure_ascii=False, default=str)
        md = render_markdown(report)
        kind, key = df["kind"][0], df["partition_key"][0]
        md_path, json_path = store.report_paths(kind, key)
        atomic_write_bytes(md_path, md.encode("utf-8"))
        atomic_write_bytes(json_path, body.encode("utf-8"))
        row = df.with_columns(
            pl.lit(body).alias("report_json"), pl.lit(md).alias("report_markdown")
        )
        _rewrite(path, row.select(list(INSIGHT_REPORTS)), result)
        result.reports += 1


def _datasets(store: DataStore, cutoff_day: str, result: RetentionResult) -> None:
    for kind in DATASET_KINDS:
        for day_dir in sorted((store.root / "datasets" / kind).glob("*")):
            # A day's dataset covers up to the end of its day: it goes when the whole day is old.
            if not day_dir.is_dir() or day_dir.name >= cutoff_day:
                continue
            for path in day_dir.glob("*.jsonl"):
                path.unlink()
                result.dataset_files_deleted += 1
                result.touched.append(str(path))


def local_export_files(export_dir: Path, data_dir: Path) -> int:
    """Export files of the local source inside the data dir (retention leaves them: they are the
    user's input, not a copy the pipeline made)."""
    try:
        export_dir.resolve().relative_to(data_dir.resolve())
    except ValueError:
        return 0
    return sum(1 for p in export_dir.rglob("*.jsonl*") if p.is_file())
