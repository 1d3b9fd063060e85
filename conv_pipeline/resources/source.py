"""Where stored completions come from.

``CompletionSource`` is the interface the assets and the sensor use: ``sync`` brings the source's
new data into the staging area and says which hourly partitions changed; ``read_hours`` returns the
``raw_completions`` rows of some hours. ``LocalExportSource`` reads an export folder
(``CONV_PIPELINE_LOCAL_DIR``); the Stored Completions API source implements the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

import dagster as dg
import polars as pl

from conv_pipeline.core.local_source import LocalStaging, SyncResult
from conv_pipeline.core.storage import DataStore


class CompletionSource(dg.ConfigurableResource, ABC):
    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def sync(self, store: DataStore, partition_start: datetime) -> SyncResult: ...

    @abstractmethod
    def read_hours(
        self, store: DataStore, partition_start: datetime, partition_keys: list[str]
    ) -> pl.DataFrame: ...

    def describe(self) -> str:
        return self.name


class LocalExportSource(CompletionSource):
    """A folder of ``*.jsonl`` / ``*.jsonl.gz`` files in the export format (DESIGN.md)."""

    export_dir: str
    parse_workers: int = 2

    @property
    def name(self) -> str:
        return "local"

    def describe(self) -> str:
        return f"local export folder {self.export_dir}"

    def _staging(self, store: DataStore, partition_start: datetime) -> LocalStaging:
        return LocalStaging(
            self.export_dir,
            store.staging_dir / "local",
            store.rejected_dir("local"),
            partition_start,
            workers=self.parse_workers,
        )

    def sync(self, store: DataStore, partition_start: datetime) -> SyncResult:
        return self._staging(store, partition_start).sync()

    def read_hours(
        self, store: DataStore, partition_start: datetime, partition_keys: list[str]
    ) -> pl.DataFrame:
        return self._staging(store, partition_start).read_hours(partition_keys)
