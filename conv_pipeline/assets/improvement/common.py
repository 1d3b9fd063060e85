"""What the improvement assets share: the windows of a day, reading a window's rows, writing
files atomically, and the metadata of a run over one day or many."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline.assets.metadata import md_table
from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.pipeline import join_judgments
from conv_pipeline.core.schema import HOUR_KEY_FORMAT, conform
from conv_pipeline.core.storage import DataStore


def day_start(day: str) -> datetime:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)


def hours_of(first_day: datetime, days: int) -> list[str]:
    return [(first_day + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(24 * days)]


def window_hours(day: str, window_days: int) -> list[str]:
    """Hourly keys of the ``window_days`` days ending with ``day`` (included)."""
    return hours_of(day_start(day) - timedelta(days=window_days - 1), window_days)


def read_window(store: DataStore, hours: list[str], raw_columns: list[str] | None = None):
    """Scored rows (with the judge's columns, as in the warehouse view), issues, and the raw
    columns asked for (None when none are)."""
    scored = join_judgments(
        store.read_hours("scored_conversations", hours), judge_store.read_hours(store, hours)
    )
    issues = store.read_hours("conversation_issues", hours)
    raw = store.read_hours("raw_completions", hours, columns=raw_columns) if raw_columns else None
    return scored, issues, raw


def write_jsonl(path: Path, lines: list[str]) -> None:
    atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def write_json(path: Path, obj: dict) -> None:
    body = json.dumps(obj, indent=2, ensure_ascii=False, default=str, sort_keys=True)
    atomic_write_bytes(path, body.encode("utf-8"))


def rejected_lines(rejected: pl.DataFrame) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in rejected.to_dicts()]


def write_report(store: DataStore, kind: str, name: str, markdown: str, obj: dict) -> Path:
    """``reports/<kind>/<name>.md`` and ``.json``; returns the Markdown's path."""
    base = store.reports_dir / kind / name
    atomic_write_bytes(base.with_suffix(".md"), markdown.encode("utf-8"))
    write_json(base.with_suffix(".json"), obj)
    return base.with_suffix(".md")


def write_day_table(store: DataStore, table: str, day: str, df: pl.DataFrame, schema) -> None:
    """One day of a daily table: ``tables/<table>/<day>.parquet``."""
    atomic_write_parquet(store.tables_dir / table / f"{day}.parquet", conform(df, schema))


def sample_md(lines: list[str], n: int) -> str:
    if not lines:
        return "_no examples_"
    body = "\n".join(lines[:n])
    return f"```json\n{body}\n```"


def one_or_many(meta: dict, per_day: list[dict], extra_single: dict) -> dict:
    """Dagster copies a ranged run's metadata onto each partition: totals are named as such."""
    if len(per_day) == 1:
        meta.update(extra_single)
    else:
        meta["days"] = dg.MetadataValue.md(md_table(pl.DataFrame(per_day), limit=62))
        meta["partition_range"] = f"{per_day[0]['day']} … {per_day[-1]['day']}"
    return meta


def analyze_days(
    store: DataStore, days: list[str], kind: str, analyze: Callable[[str], tuple[str, dict, dict]]
) -> tuple[list[dict], dict]:
    """The loop every daily analysis shares: ``analyze(day)`` computes a day and writes its
    table, returning (Markdown, JSON body, summary row); the report is written to
    ``reports/<kind>/<day>.*``. Returns the summary rows and the metadata of the run's last day."""
    per_day, last_md, last_path = [], "", None
    for day in days:
        md, body, row = analyze(day)
        last_path = write_report(store, kind, day, md, body)
        last_md = md
        per_day.append({"day": day, **row})
    store.refresh_warehouse()
    return per_day, {"md": last_md, "path": dg.MetadataValue.path(str(last_path))}
