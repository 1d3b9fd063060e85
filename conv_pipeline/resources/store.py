from __future__ import annotations

from functools import cached_property

import dagster as dg

from conv_pipeline.core.config import MonitoringConfig, load_config
from conv_pipeline.core.storage import DataStore


class PipelineStore(dg.ConfigurableResource):
    """The data folder (Parquet tables, reports, ``warehouse.duckdb``) and the monitoring config."""

    data_dir: str
    monitoring_config_path: str = ""

    @cached_property
    def store(self) -> DataStore:
        return DataStore(self.data_dir)

    @cached_property
    def config(self) -> MonitoringConfig:
        return load_config(self.monitoring_config_path or None)
