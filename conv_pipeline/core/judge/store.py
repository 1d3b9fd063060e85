"""Where the judge's data lives in the data folder, and how the warehouse shows it.

``tables/judge_evaluations/<YYYY-MM-DD>/<HH>.parquet``: one file per hourly partition, written
atomically and replaced on re-run (its columns depend on the configured evaluators).
``judge/cache.sqlite``: the judgment cache. ``tables/judge_calibration/``: the golden-set
agreement. In ``warehouse.duckdb`` the ``judge_evaluations`` view reads the table, and the
``scored_conversations`` view is the scored table LEFT JOINed with it on ``completion_id``: the
judge columns are null for conversations the judge did not sample (or when it is off). Those
views are declared with the other warehouse tables (``core/schema.py``: ``OPEN_TABLES``,
``JOINED_VIEWS``) and created by ``DataStore.refresh_warehouse``, which imports no judge code.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import polars as pl

from conv_pipeline.core.files import atomic_write_parquet
from conv_pipeline.core.judge.types import CALIBRATION_TABLE, TABLE, empty_table, evaluator_names
from conv_pipeline.core.schema import HOUR_KEY_FORMAT
from conv_pipeline.core.storage import DataStore


def cache_path(store: DataStore) -> Path:
    return store.root / "judge" / "cache.sqlite"


def calibration_path(store: DataStore) -> Path:
    return store.tables_dir / CALIBRATION_TABLE / "calibration.parquet"


def write_hour(store: DataStore, key: str, frame: pl.DataFrame) -> Path:
    path = store.hour_path(TABLE, key)
    atomic_write_parquet(path, frame)
    return path


def read_hours(store: DataStore, keys: list[str]) -> pl.DataFrame:
    """The judge rows of these hours (columns of every file, nulls where a file lacks one)."""
    paths = [p for p in (store.hour_path(TABLE, k) for k in keys) if p.exists()]
    if not paths:
        return empty_table([])
    frames = [pl.read_parquet(p) for p in paths]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def apply_retention(store: DataStore, cutoff: str) -> int:
    """Retention of the judge's detail (docs/PRIVACY.md, docs/JUDGE.md): for every hour before
    ``cutoff``, the judge's reasons (which may quote the conversation) become null in
    ``judge_evaluations``, and the reasons and raw answers of those conversations in the cache;
    scores, results, statuses and token counts stay. Returns the reasons removed."""
    removed = 0
    ids: list[str] = []
    for path in sorted((store.tables_dir / TABLE).glob("*/*.parquet")):
        try:
            hour = datetime.strptime(f"{path.parent.name}-{path.stem}:00", HOUR_KEY_FORMAT)
        except ValueError:
            continue
        if hour.strftime(HOUR_KEY_FORMAT) >= cutoff:
            continue
        df = pl.read_parquet(path)
        reasons = [
            f"{name}_reason" for name in evaluator_names(df) if f"{name}_reason" in df.columns
        ]
        n = sum(df[c].drop_nulls().len() for c in reasons)
        ids += df["completion_id"].to_list()
        if n:
            atomic_write_parquet(
                path, df.with_columns([pl.lit(None, pl.String).alias(c) for c in reasons])
            )
            removed += n
    if ids and cache_path(store).exists():
        con = sqlite3.connect(str(cache_path(store)), timeout=60)
        try:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                con.execute(
                    "UPDATE judgments SET reason = NULL, raw_output = NULL "
                    f"WHERE completion_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            con.commit()
        finally:
            con.close()
    return removed
