"""The data folder: Parquet tables written one partition per file, atomically, and the DuckDB
warehouse that exposes them.

Layout under ``$CONV_PIPELINE_DATA_DIR``::

    tables/<table>/<YYYY-MM-DD>/<HH>.parquet     hourly partitions (raw, scored, issues, reports)
    tables/insight_reports/daily/<YYYY-MM-DD>.parquet
    tables/rejected_records/<source>/<file>.parquet
    reports/hourly/<YYYY-MM-DD>/<HH>.{md,json}   the insight reports themselves
    reports/daily/<YYYY-MM-DD>.{md,json}
    warehouse.duckdb                              views over tables/ (one per table)

A partition file is written to a temporary name in its folder and renamed over the final name, so a
reader sees the old file or the new one, never half of one, and a re-run replaces the partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from conv_pipeline.core.files import atomic_write_parquet, file_lock
from conv_pipeline.core.schema import (
    HOUR_KEY_FORMAT,
    JOINED_VIEWS,
    OPEN_TABLES,
    PRIVATE_COLUMNS,
    TABLES,
    conform,
    empty,
)


class DataStore:
    """Reads and writes the tables of one data folder."""

    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir).resolve()

    # ---- paths -----------------------------------------------------------------------------
    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def hour_path(self, table: str, partition_key: str) -> Path:
        ts = datetime.strptime(partition_key, HOUR_KEY_FORMAT)
        return self.tables_dir / table / ts.strftime("%Y-%m-%d") / f"{ts:%H}.parquet"

    def daily_report_table_path(self, day: str) -> Path:
        return self.tables_dir / "insight_reports" / "daily" / f"{day}.parquet"

    def hourly_report_table_path(self, partition_key: str) -> Path:
        ts = datetime.strptime(partition_key, HOUR_KEY_FORMAT)
        return (
            self.tables_dir / "insight_reports" / "hourly" / f"{ts:%Y-%m-%d}" / f"{ts:%H}.parquet"
        )

    def report_paths(self, kind: str, key: str) -> tuple[Path, Path]:
        if kind == "hourly":
            ts = datetime.strptime(key, HOUR_KEY_FORMAT)
            base = self.reports_dir / "hourly" / f"{ts:%Y-%m-%d}" / f"{ts:%H}"
        else:
            base = self.reports_dir / "daily" / key
        return base.with_suffix(".md"), base.with_suffix(".json")

    def rejected_dir(self, source: str) -> Path:
        return self.tables_dir / "rejected_records" / source

    # ---- partitions ------------------------------------------------------------------------
    def write_hour(self, table: str, partition_key: str, df: pl.DataFrame) -> Path:
        path = self.hour_path(table, partition_key)
        atomic_write_parquet(path, conform(df, TABLES[table]))
        return path

    def read_hours(
        self, table: str, partition_keys: Iterable[str], columns: list[str] | None = None
    ) -> pl.DataFrame:
        """Concatenate the existing partitions of ``table`` (missing ones are skipped)."""
        paths = [p for p in (self.hour_path(table, k) for k in partition_keys) if p.exists()]
        if not paths:
            frame = empty(TABLES[table])
            return frame.select(columns) if columns else frame
        return pl.read_parquet(paths, columns=columns)

    def rejected_counts(self) -> dict[str, int]:
        """Rejected input records per hourly partition (records whose hour is known)."""
        files = list((self.tables_dir / "rejected_records").rglob("*.parquet"))
        if not files:
            return {}
        counts = (
            pl.scan_parquet(files)
            .filter(pl.col("partition_key").is_not_null())
            .group_by("partition_key")
            .len()
            .collect()
        )
        return dict(counts.rows())

    # ---- warehouse -------------------------------------------------------------------------
    def refresh_warehouse(self, *, attempts: int = 20) -> bool:
        """Create (or re-create) one view per table in ``warehouse.duckdb``.

        Views glob the table folders, so they see new partitions without being refreshed; this only
        needs to run when a table appears. Each table folder holds an empty ``_schema.parquet`` so a
        view exists, with the right columns, before any partition does. The views beyond one per
        table (the LLM judge's tables, ``scored_conversations`` with the judge's columns) are
        declared in ``core/schema.py`` (``OPEN_TABLES``, ``JOINED_VIEWS``), so the storage needs no
        stage's code. Returns False when another process keeps the database locked (for example a
        notebook holding it open for writing).
        """
        for table, schema in TABLES.items():
            marker = self.tables_dir / table / "_schema.parquet"
            if not marker.exists() or pl.read_parquet_schema(marker) != schema:
                atomic_write_parquet(marker, empty(schema))
        for table, schema in OPEN_TABLES.items():  # their files' columns vary: seeded once
            marker = self.tables_dir / table / "_schema.parquet"
            if not marker.exists():
                atomic_write_parquet(marker, empty(schema))
        statements = [
            f"CREATE OR REPLACE VIEW {table} AS SELECT {_star(table)} FROM {self._scan(table)}"
            for table in (*TABLES, *OPEN_TABLES)
        ]
        for table, (other, left_out) in JOINED_VIEWS.items():
            statements.append(
                f"CREATE OR REPLACE VIEW {table} AS SELECT {_star(table, 's.')}, "
                f"j.* EXCLUDE ({', '.join(left_out)}) FROM {self._scan(table)} AS s "
                f"LEFT JOIN {other} AS j ON s.completion_id = j.completion_id"
            )
        with file_lock(self.root / ".warehouse.lock"):
            for attempt in range(attempts):
                try:
                    con = duckdb.connect(str(self.warehouse_path))
                except duckdb.IOException:
                    time.sleep(min(0.05 * 2**attempt, 1.0))
                    continue
                try:
                    for stmt in statements:
                        con.execute(stmt)
                finally:
                    con.close()
                return True
        return False

    def _scan(self, table: str) -> str:
        """Every Parquet file of ``table``, columns matched by name."""
        glob = (self.tables_dir / table / "**" / "*.parquet").as_posix()
        return f"read_parquet('{_sql_str(glob)}', union_by_name = true, hive_partitioning = false)"

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run a read-only query against the warehouse (used by the CLI and tests)."""
        con = duckdb.connect(str(self.warehouse_path), read_only=True)
        try:
            return con.sql(sql, params=params or None).pl()
        finally:
            con.close()


def _star(table: str, alias: str = "") -> str:
    """All columns of ``table`` but its private ones (``PRIVATE_COLUMNS``)."""
    private = PRIVATE_COLUMNS.get(table)
    return f"{alias}* EXCLUDE ({', '.join(private)})" if private else f"{alias}*"


def _sql_str(value: str) -> str:
    """Escape a path for a SQL string literal (paths are ours, never user data)."""
    return value.replace("'", "''")
