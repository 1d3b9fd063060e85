"""The one place that reads the environment (DESIGN.md, "Environment").

Values are read once, when the Dagster definitions or the CLI load. Non-secret settings are
resolved to plain values here; secrets are never read here: resources take them as ``dg.EnvVar``
so they stay out of run config, logs and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg


def _env(name: str, default: str = "") -> str:
    return dg.EnvVar(name).get_value(default) or default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    local_dir: Path
    source: str
    monitoring_config: str
    dagster_home: Path

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("CONV_PIPELINE_DATA_DIR", "./data")).expanduser().resolve()
        local = _env("CONV_PIPELINE_LOCAL_DIR")
        return cls(
            data_dir=data_dir,
            local_dir=Path(local).expanduser().resolve() if local else data_dir / "completions",
            source=_env("CONV_PIPELINE_SOURCE", "local").strip().lower(),
            monitoring_config=_env("CONV_PIPELINE_MONITORING_CONFIG"),
            dagster_home=Path(_env("DAGSTER_HOME") or data_dir / "dagster_home")
            .expanduser()
            .resolve(),
        )
