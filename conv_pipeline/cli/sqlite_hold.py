"""Keep Dagster's SQLite files open while ``conv-pipeline run`` runs, so each event costs less.

Dagster's default (SQLite) instance storage opens a new connection for every event it stores and
closes it right after (``NullPool``). In WAL mode the *last* connection to close a database
checkpoints the write-ahead log into the database and deletes it, and the next write creates it
again: that, not the data, is most of what a ranged run of hundreds of hourly partitions spends
(two events per asset and partition, about 14 ms each on this machine). While any other connection
has the database open, closing is cheap and the log is checkpointed by SQLite's own automatic
checkpoints instead.

``held_open`` opens one idle read connection (never a transaction, so it blocks no writer and no
checkpoint) to the instance's run, schedule and event-index databases, and to the event shards of
the runs about to be launched (their file is created empty so the connection can hold it; Dagster
creates the tables in it as usual). It does nothing for any other storage (Postgres in
production). It changes no data and no setting: everything Dagster writes is written the same way.
``docs/BENCHMARKS.md`` has the figures.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

_INDEX_SHARD = "index"


def _paths(instance: dg.DagsterInstance, run_ids: Sequence[str]) -> list[Path]:
    storage = instance.event_log_storage
    # Only the SQLite event log stores a database per run ("shard"), named by path_for_shard.
    if not hasattr(storage, "path_for_shard"):
        return []
    root = Path(instance.root_directory)
    paths = sorted(root.glob("*/*.db"))  # history/runs.db, schedules/schedules.db
    index = Path(storage.path_for_shard(_INDEX_SHARD))
    if index.exists():
        paths.append(index)
    for run_id in run_ids:
        shard = Path(storage.path_for_shard(run_id))
        if shard.parent.is_dir():
            paths.append(shard)
    return paths


@contextmanager
def held_open(instance: dg.DagsterInstance, run_ids: Sequence[str]) -> Iterator[int]:
    """Hold the instance's SQLite databases open for the duration; yields how many are held."""
    # Touch the storages first so that Dagster has created its databases (and their WAL mode).
    instance.get_run_records(limit=1)
    held: list[sqlite3.Connection] = []
    created: list[Path] = []
    try:
        for path in _paths(instance, run_ids):
            if not path.exists():
                created.append(path)
            try:
                conn = sqlite3.connect(path, timeout=30)
                # One read registers the connection with the database (and its WAL index).
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            except sqlite3.Error:
                continue  # an optimization only: a file we cannot hold is simply not held
            held.append(conn)
        yield len(held)
    finally:
        for conn in held:
            conn.close()
        for path in created:
            # A run that was never created leaves no empty shard behind.
            if path.exists() and path.stat().st_size == 0:
                path.unlink()
