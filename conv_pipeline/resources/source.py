"""Where stored completions come from.

``CompletionSource`` is the interface the assets and the sensor use: ``sync`` brings the source's
new data into the staging area and says which hourly partitions changed; ``read_hours`` returns the
``raw_completions`` rows of some hours. ``LocalExportSource`` reads an export folder
(``CONV_PIPELINE_LOCAL_DIR``); the Stored Completions API source implements the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from conv_pipeline.core.ingestion.api import ApiConfig, ApiExporter, parse_metadata_filter
from conv_pipeline.core.ingestion.staging import LocalStaging, SyncResult
from conv_pipeline.core.storage import DataStore


class CompletionSource(dg.ConfigurableResource, ABC):
    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def sync(
        self, store: DataStore, partition_start: datetime, budget_seconds: float | None = None
    ) -> SyncResult:
        """Bring new data in. ``budget_seconds`` bounds the time spent reading a remote source
        (the sensor's ticks are short); what is left is read by the next call."""

    @abstractmethod
    def read_hours(
        self, store: DataStore, partition_start: datetime, partition_keys: list[str]
    ) -> pl.DataFrame: ...

    def describe(self) -> str:
        return self.name


class LocalExportSource(CompletionSource):
    """A folder of ``*.jsonl`` / ``*.jsonl.gz`` files in the export format (docs/ARCHITECTURE.md)."""

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

    def sync(
        self, store: DataStore, partition_start: datetime, budget_seconds: float | None = None
    ) -> SyncResult:
        return self._staging(store, partition_start).sync()

    def read_hours(
        self, store: DataStore, partition_start: datetime, partition_keys: list[str]
    ) -> pl.DataFrame:
        return self._staging(store, partition_start).read_hours(partition_keys)


class StoredCompletionsApiSource(CompletionSource):
    """The Stored Completions API of Azure OpenAI (``kind="azure_openai"``) or of any service with
    the same API (``kind="openai"``, Azure's ``/openai/v1/`` included).

    ``sync`` copies what is new into an export folder under the data dir (``core/api_export``),
    then stages it like a local export; ``read_hours`` reads the staged hours. ``api_key`` is given
    as ``dg.EnvVar`` so it never shows in the UI or the logs; without it, Entra ID
    (``DefaultAzureCredential``) is used.
    """

    # The fields the UI shows; settings.API_ENV maps the environment onto them, and the defaults
    # are the core's (ApiConfig).
    kind: str = Field(description="azure_openai or openai")
    endpoint: str = ""
    api_version: str = ApiConfig.api_version
    base_url: str = ""
    api_key: str | None = None
    metadata_filter: str = Field(default="", description="k1=v1,k2=v2 or a JSON object")
    model_filter: str = ""
    page_size: int = ApiConfig.page_size
    concurrency: int = ApiConfig.concurrency
    overlap_minutes: int = ApiConfig.overlap_seconds // 60
    max_retries: int = ApiConfig.max_retries
    timeout_seconds: float = ApiConfig.timeout_seconds
    chunk_records: int = ApiConfig.chunk_records
    parse_workers: int = 2

    @property
    def name(self) -> str:
        return self.kind

    def api_config(self) -> ApiConfig:
        """The core's config: the fields of the same name, and the three people write otherwise."""
        return ApiConfig.of(
            self,
            metadata=parse_metadata_filter(self.metadata_filter),
            model=self.model_filter,
            overlap_seconds=self.overlap_minutes * 60,
        )

    def describe(self) -> str:
        config = self.api_config()
        filters = config.filters()
        return config.where() + (f" with filters {filters}" if filters else "")

    def _root(self, store: DataStore) -> Path:
        # One copy per service and filters: changing them starts a new copy.
        return store.staging_dir / "api" / self.api_config().fingerprint()

    def _staging(self, store: DataStore, partition_start: datetime) -> LocalStaging:
        root = self._root(store)
        return LocalStaging(
            root / "export",
            root / "staged",
            store.rejected_dir(f"api-{self.api_config().fingerprint()}"),
            partition_start,
            workers=self.parse_workers,
            source_name=self.kind,
        )

    def exporter(self, export_dir: Path) -> ApiExporter:
        return ApiExporter(export_dir, self.api_config())

    def sync(
        self, store: DataStore, partition_start: datetime, budget_seconds: float | None = None
    ) -> SyncResult:
        root = self._root(store)
        (root / "export").mkdir(parents=True, exist_ok=True)
        stats = self.exporter(root / "export").sync(budget_seconds=budget_seconds)
        result = self._staging(store, partition_start).sync()
        result.extra.update(stats.as_metadata())
        return result

    def read_hours(
        self, store: DataStore, partition_start: datetime, partition_keys: list[str]
    ) -> pl.DataFrame:
        return self._staging(store, partition_start).read_hours(partition_keys)
