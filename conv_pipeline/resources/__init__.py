"""Resources, each built once from the settings (``build_resources``): where completions come from
(``source``), where the data lives (``pipeline``), the LLM judge (``judge``), where alerts go
(``alerts``) and, when Blob publishing is on, the Blob account (``blob``). Secrets stay
``dg.EnvVar``: Dagster resolves them at run time and never shows them."""

import dagster as dg

from conv_pipeline.resources.alerts import AlertChannels
from conv_pipeline.resources.blob import BlobPublisher
from conv_pipeline.resources.judge import JudgeResource
from conv_pipeline.resources.source import (
    CompletionSource,
    LocalExportSource,
    StoredCompletionsApiSource,
)
from conv_pipeline.resources.store import PipelineStore
from conv_pipeline.settings import (
    ALERT_SECRET_VARS,
    BLOB_SECRET_VARS,
    AlertSettings,
    BlobSettings,
    Settings,
)

__all__ = [
    "AlertChannels",
    "BlobPublisher",
    "CompletionSource",
    "JudgeResource",
    "LocalExportSource",
    "PipelineStore",
    "StoredCompletionsApiSource",
    "build_resources",
]


def build_source(settings: Settings) -> CompletionSource:
    if settings.source == "local":
        return LocalExportSource(export_dir=str(settings.local_dir))
    if settings.source in ("azure_openai", "openai"):
        api = settings.api
        # The key stays an EnvVar: Dagster resolves it at run time and never shows it.
        return StoredCompletionsApiSource(
            kind=settings.source, api_key=_secret(api.api_key_var), **api.values
        )
    raise ValueError(
        f"CONV_PIPELINE_SOURCE={settings.source!r} is not supported; "
        "use local, azure_openai or openai"
    )


def build_judge(settings: Settings) -> JudgeResource:
    judge = settings.judge
    # The key stays an EnvVar: Dagster resolves it at run time and never shows it.
    return JudgeResource(api_key=_secret(judge.api_key_var), **judge.values)


def _secret(var: str) -> dg.EnvVar | None:
    return dg.EnvVar(var) if var else None


def build_alert_channels(alerts: AlertSettings) -> AlertChannels:
    """The channels of ``settings.alerts`` (an ``AlertSettings``); secrets stay ``dg.EnvVar``."""
    return AlertChannels(
        webhook_url=dg.EnvVar(ALERT_SECRET_VARS["webhook"]) if alerts.webhook else None,
        teams_hook_url=dg.EnvVar(ALERT_SECRET_VARS["teams"]) if alerts.teams else None,
        slack_token=dg.EnvVar(ALERT_SECRET_VARS["slack"]) if alerts.slack else None,
        slack_channel=alerts.slack_channel,
        slack_base_url=alerts.slack_base_url,
        ui_url=alerts.ui_url,
    )


def build_blob_publisher(blob: BlobSettings) -> BlobPublisher:
    """The publisher for ``settings.blob`` (a ``BlobSettings``); secrets stay ``dg.EnvVar``."""
    common = dict(
        insights_container=blob.insights_container,
        conversations_container=blob.conversations_container,
        publish_parquet=blob.publish_parquet,
        max_attempts=blob.max_attempts,
        backoff_seconds=blob.backoff_seconds,
    )
    if blob.credential != "connection_string" and not blob.account_url:
        raise ValueError(
            "CONV_PIPELINE_BLOB_ENABLED is on: set CONV_PIPELINE_BLOB_ACCOUNT_URL "
            "(or CONV_PIPELINE_BLOB_CONNECTION_STRING)"
        )
    var = BLOB_SECRET_VARS.get(blob.credential)
    return BlobPublisher(
        account_url=blob.account_url,
        credential=blob.credential,
        secret=dg.EnvVar(var) if var else None,
        **common,
    )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    resources: dict[str, dg.ConfigurableResource] = {
        "source": build_source(settings),
        "judge": build_judge(settings),
        "pipeline": PipelineStore(
            data_dir=str(settings.data_dir), monitoring_config_path=settings.monitoring_config
        ),
        "alerts": build_alert_channels(settings.alerts),
    }
    if settings.blob.enabled:  # local publishing stays the default (docs/PUBLISHING.md)
        resources["blob"] = build_blob_publisher(settings.blob)
    return resources
