"""The Dagster definitions: everything is gathered here, once.

``build_definitions`` takes resolved settings so tests can build the same graph over temporary
folders; ``defs`` is what ``dagster dev -w workspace.yaml`` loads.
"""

from __future__ import annotations

import warnings

import dagster as dg

from conv_pipeline.assets._ui import automation_sensor
from conv_pipeline.assets.improvement.datasets import build_improvement_assets
from conv_pipeline.assets.improvement.feedback import build_feedback_assets
from conv_pipeline.assets.ingestion import build_raw_completions
from conv_pipeline.assets.judge import build_judge_assets
from conv_pipeline.assets.privacy import build_retention_schedule, retention_job
from conv_pipeline.assets.publishing import (
    PUBLISH_ASSETS,
    blob_retention_sync,
    build_blob_retention_sensor,
    build_publish_assets,
)
from conv_pipeline.assets.reporting.alerts import build_alert_sensors
from conv_pipeline.assets.reporting.reports import build_report_assets
from conv_pipeline.assets.scoring import build_scoring_assets
from conv_pipeline.core.config import load_config
from conv_pipeline.jobs import build_jobs, build_judge_calibration_job
from conv_pipeline.partitions import build_partitions
from conv_pipeline.resources import (
    CompletionSource,
    JudgeResource,
    LocalExportSource,
    PipelineStore,
    StoredCompletionsApiSource,
)
from conv_pipeline.resources.alerts import build_alert_channels
from conv_pipeline.resources.blob import build_blob_publisher
from conv_pipeline.schedules import build_schedules
from conv_pipeline.sensors import build_sensors
from conv_pipeline.settings import Settings

# backfill_policy and partitioned check specs are marked beta/preview; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_source(settings: Settings) -> CompletionSource:
    if settings.source == "local":
        return LocalExportSource(export_dir=str(settings.local_dir))
    if settings.source in ("azure_openai", "openai"):
        api = settings.api
        return StoredCompletionsApiSource(
            kind=settings.source,
            endpoint=api.endpoint,
            api_version=api.api_version,
            base_url=api.base_url,
            # The key stays an EnvVar: Dagster resolves it at run time and never shows it.
            api_key=dg.EnvVar(api.api_key_var) if api.api_key_var else None,
            metadata_filter=api.metadata_filter,
            model_filter=api.model_filter,
            page_size=api.page_size,
            concurrency=api.concurrency,
            overlap_minutes=api.overlap_minutes,
            max_retries=api.max_retries,
            timeout_seconds=api.timeout_seconds,
        )
    raise ValueError(
        f"CONV_PIPELINE_SOURCE={settings.source!r} is not supported; "
        "use local, azure_openai or openai"
    )


def build_judge(settings: Settings) -> JudgeResource:
    j = settings.judge
    return JudgeResource(
        model=j.model,
        kind=j.kind or "openai",
        endpoint=j.endpoint,
        base_url=j.base_url,
        api_version=j.api_version,
        # The key stays an EnvVar: Dagster resolves it at run time and never shows it.
        api_key=dg.EnvVar(j.api_key_var) if j.api_key_var and j.enabled else None,
        insights_model=j.insights_model if j.enabled else "",
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    config = load_config(settings.monitoring_config or None)
    parts = build_partitions(config.partition_start)
    assets = [
        build_raw_completions(parts),
        *build_scoring_assets(parts, config),
        *build_judge_assets(parts, config),
        *build_report_assets(parts, config),
        *build_improvement_assets(parts, config),
        *build_feedback_assets(parts, config),
    ]
    resources: dict = {}
    extra: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    if settings.blob.enabled:  # local publishing stays the default (docs/PUBLISHING.md)
        assets += build_publish_assets(parts)
        resources["blob"] = build_blob_publisher(settings.blob)
        extra = ((PUBLISH_ASSETS["hourly"],), (PUBLISH_ASSETS["daily"],))
    hourly_job, daily_job = build_jobs(parts, *extra)
    blob_jobs = [blob_retention_sync] if settings.blob.enabled else []
    blob_sensors = [build_blob_retention_sensor(retention_job)] if settings.blob.enabled else []
    return dg.Definitions(
        assets=assets,
        jobs=[hourly_job, daily_job, retention_job, build_judge_calibration_job(), *blob_jobs],
        schedules=[
            *build_schedules(hourly_job, daily_job),
            build_retention_schedule(config.privacy.retention.cron_schedule),
        ],
        sensors=[
            *build_sensors(
                parts, hourly_job, daily_job, sync_budget_seconds=settings.api.sensor_budget_seconds
            ),
            automation_sensor(),
            *build_alert_sensors(parts, config),
            *blob_sensors,
        ],
        resources={
            "source": build_source(settings),
            "judge": build_judge(settings),
            "pipeline": PipelineStore(
                data_dir=str(settings.data_dir),
                monitoring_config_path=settings.monitoring_config,
            ),
            "alerts": build_alert_channels(settings.alerts),
            **resources,
        },
    )


defs = build_definitions(Settings.from_env())
