"""What every stage's definitions are built from: the settings (environment), the monitoring
config (``monitoring_config.json``), the partitions it implies, and the resources, each built once
from the settings (``resources.build_resources``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from conv_pipeline.core.config import MonitoringConfig, load_config
from conv_pipeline.partitions import Partitions, build_partitions
from conv_pipeline.resources import build_resources
from conv_pipeline.settings import Settings


@dataclass(frozen=True)
class Project:
    settings: Settings
    config: MonitoringConfig
    parts: Partitions
    resources: Mapping[str, dg.ConfigurableResource]

    @classmethod
    def from_settings(cls, settings: Settings) -> Project:
        config = load_config(settings.monitoring_config or None)
        return cls(
            settings=settings,
            config=config,
            parts=build_partitions(config.partition_start),
            resources=build_resources(settings),
        )

    def uses(self, *keys: str) -> dict[str, dg.ConfigurableResource]:
        """The resources a stage needs, by key (the same objects in every stage, so
        ``Definitions.merge`` takes them once)."""
        return {k: self.resources[k] for k in keys if k in self.resources}
