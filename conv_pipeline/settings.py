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


def _has(name: str) -> bool:
    """Whether a (secret) variable is set, without reading its value into settings."""
    return bool(dg.EnvVar(name).get_value(""))


@dataclass(frozen=True)
class ApiSettings:
    """The Stored Completions API source (``CONV_PIPELINE_SOURCE=azure_openai|openai``).

    Keys are not held here: ``api_key_var`` names the variable the resource resolves at run time
    (``dg.EnvVar``), or is empty when no key is set (Entra ID through ``DefaultAzureCredential``).
    """

    endpoint: str = ""
    api_version: str = "2025-02-01-preview"
    base_url: str = ""
    api_key_var: str = ""
    metadata_filter: str = ""
    model_filter: str = ""
    page_size: int = 100
    concurrency: int = 16
    overlap_minutes: int = 60
    max_retries: int = 6
    timeout_seconds: float = 60.0
    sensor_budget_seconds: float = 40.0


def _int(name: str, default: int) -> int:
    raw = _env(name)
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a whole number") from exc


def _api_settings(source: str) -> ApiSettings:
    key_var = {"azure_openai": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}.get(source, "")
    return ApiSettings(
        endpoint=_env("AZURE_OPENAI_ENDPOINT"),
        api_version=_env("OPENAI_API_VERSION", "2025-02-01-preview"),
        base_url=_env("OPENAI_BASE_URL"),
        api_key_var=key_var if key_var and _has(key_var) else "",
        metadata_filter=_env("CONV_PIPELINE_API_METADATA"),
        model_filter=_env("CONV_PIPELINE_API_MODEL"),
        page_size=_int("CONV_PIPELINE_API_PAGE_SIZE", 100),
        concurrency=_int("CONV_PIPELINE_API_CONCURRENCY", 16),
        overlap_minutes=_int("CONV_PIPELINE_API_OVERLAP_MINUTES", 60),
        max_retries=_int("CONV_PIPELINE_API_MAX_RETRIES", 6),
        timeout_seconds=float(_int("CONV_PIPELINE_API_TIMEOUT_SECONDS", 60)),
        sensor_budget_seconds=float(_int("CONV_PIPELINE_API_SENSOR_BUDGET_SECONDS", 40)),
    )


def _bool(name: str, default: bool = False) -> bool:
    raw = _env(name).strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a yes/no value (use true or false)")


@dataclass(frozen=True)
class BlobSettings:
    """Azure Blob publishing (docs/PUBLISHING.md). Secrets are named, never held: the resource
    takes ``CONV_PIPELINE_BLOB_ACCOUNT_KEY``, ``_SAS_TOKEN`` or ``_CONNECTION_STRING`` as
    ``dg.EnvVar``; ``credential`` says which one (``default``: ``DefaultAzureCredential``)."""

    enabled: bool = False
    account_url: str = ""
    credential: str = ""
    insights_container: str = "insights"
    conversations_container: str = "conversations"
    publish_parquet: bool = False
    max_attempts: int = 4
    backoff_seconds: float = 1.0


BLOB_SECRET_VARS = {
    "connection_string": "CONV_PIPELINE_BLOB_CONNECTION_STRING",
    "key": "CONV_PIPELINE_BLOB_ACCOUNT_KEY",
    "sas": "CONV_PIPELINE_BLOB_SAS_TOKEN",
}


def _blob_settings() -> BlobSettings:
    credential = _env("CONV_PIPELINE_BLOB_CREDENTIAL").strip().lower()
    if not credential:
        credential = next((k for k, var in BLOB_SECRET_VARS.items() if _has(var)), "default")
    if credential not in (*BLOB_SECRET_VARS, "default"):
        raise ValueError(
            f"CONV_PIPELINE_BLOB_CREDENTIAL={credential!r}: use connection_string, key, sas or default"
        )
    return BlobSettings(
        enabled=_bool("CONV_PIPELINE_BLOB_ENABLED"),
        account_url=_env("CONV_PIPELINE_BLOB_ACCOUNT_URL"),
        credential=credential,
        insights_container=_env("CONV_PIPELINE_BLOB_INSIGHTS_CONTAINER", "insights"),
        conversations_container=_env("CONV_PIPELINE_BLOB_CONVERSATIONS_CONTAINER", "conversations"),
        publish_parquet=_bool("CONV_PIPELINE_BLOB_PUBLISH_PARQUET"),
        max_attempts=_int("CONV_PIPELINE_BLOB_MAX_ATTEMPTS", 4),
        backoff_seconds=float(_env("CONV_PIPELINE_BLOB_BACKOFF_SECONDS", "1") or 1),
    )


@dataclass(frozen=True)
class AlertSettings:
    """Alert channels (docs/ALERTS.md). Webhook URLs and the Slack token are secrets: only
    whether they are set is known here; the resource takes them as ``dg.EnvVar``."""

    webhook: bool = False
    teams: bool = False
    slack: bool = False
    slack_channel: str = ""
    slack_base_url: str = ""
    ui_url: str = "http://127.0.0.1:3000"


ALERT_SECRET_VARS = {
    "webhook": "CONV_PIPELINE_ALERT_WEBHOOK_URL",
    "teams": "CONV_PIPELINE_ALERT_TEAMS_WEBHOOK_URL",
    "slack": "CONV_PIPELINE_ALERT_SLACK_TOKEN",
}


def _alert_settings() -> AlertSettings:
    return AlertSettings(
        webhook=_has(ALERT_SECRET_VARS["webhook"]),
        teams=_has(ALERT_SECRET_VARS["teams"]),
        slack=_has(ALERT_SECRET_VARS["slack"]),
        slack_channel=_env("CONV_PIPELINE_ALERT_SLACK_CHANNEL"),
        slack_base_url=_env("CONV_PIPELINE_ALERT_SLACK_BASE_URL"),
        ui_url=_env("CONV_PIPELINE_DAGSTER_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
    )


@dataclass(frozen=True)
class JudgeEnv:
    """Where the LLM judge is (docs/JUDGE.md). Off (``model`` empty) until
    ``CONV_PIPELINE_JUDGE_MODEL`` is set. The key is not held here: ``api_key_var`` names the
    variable the resource resolves at run time (``dg.EnvVar``); empty means Entra ID."""

    model: str = ""
    kind: str = ""
    endpoint: str = ""
    base_url: str = ""
    api_version: str = "2025-02-01-preview"
    api_key_var: str = ""
    insights_model: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.model)


def _judge_env() -> JudgeEnv:
    model = _env("CONV_PIPELINE_JUDGE_MODEL").strip()
    endpoint = _env("CONV_PIPELINE_JUDGE_ENDPOINT") or _env("AZURE_OPENAI_ENDPOINT")
    base_url = _env("CONV_PIPELINE_JUDGE_BASE_URL") or _env("OPENAI_BASE_URL")
    kind = _env("CONV_PIPELINE_JUDGE_KIND").strip().lower()
    if not kind:
        # an explicit judge base URL wins; then the Azure endpoint; then an OpenAI base URL
        if _env("CONV_PIPELINE_JUDGE_BASE_URL"):
            kind = "openai"
        else:
            kind = "azure_openai" if endpoint else "openai"
    fallback = {"azure_openai": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}.get(kind, "")
    key_var = next(
        (v for v in ("CONV_PIPELINE_JUDGE_API_KEY", fallback) if v and _has(v)),
        "",
    )
    insights = _env("CONV_PIPELINE_JUDGE_INSIGHTS_MODEL").strip()
    return JudgeEnv(
        model=model,
        kind=kind,
        endpoint=endpoint,
        base_url=base_url,
        api_version=_env("CONV_PIPELINE_JUDGE_API_VERSION")
        or _env("OPENAI_API_VERSION", "2025-02-01-preview"),
        api_key_var=key_var,
        insights_model="" if insights.lower() == "off" else (insights or model),
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    local_dir: Path
    source: str
    monitoring_config: str
    dagster_home: Path
    api: ApiSettings = ApiSettings()
    blob: BlobSettings = BlobSettings()
    alerts: AlertSettings = AlertSettings()
    judge: JudgeEnv = JudgeEnv()

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("CONV_PIPELINE_DATA_DIR", "./data")).expanduser().resolve()
        local = _env("CONV_PIPELINE_LOCAL_DIR")
        source = _env("CONV_PIPELINE_SOURCE", "local").strip().lower()
        return cls(
            data_dir=data_dir,
            local_dir=Path(local).expanduser().resolve() if local else data_dir / "completions",
            source=source,
            monitoring_config=_env("CONV_PIPELINE_MONITORING_CONFIG"),
            dagster_home=Path(_env("DAGSTER_HOME") or data_dir / "dagster_home")
            .expanduser()
            .resolve(),
            api=_api_settings(source),
            blob=_blob_settings(),
            alerts=_alert_settings(),
            judge=_judge_env(),
        )

    @staticmethod
    def from_env_api(kind: str) -> ApiSettings:
        return _api_settings(kind)
