"""The one place that reads the environment (docs/ARCHITECTURE.md, "Environment").

Values are read once, when the Dagster definitions or the CLI load. Non-secret settings are
resolved to plain values here; secrets are never read here: resources take them as ``dg.EnvVar``
so they stay out of run config, logs and metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg


def _env(name: str, default: str = "") -> str:
    return dg.EnvVar(name).get_value(default) or default


def _has(name: str) -> bool:
    """Whether a (secret) variable is set, without reading its value into settings."""
    return bool(dg.EnvVar(name).get_value(""))


def _int(name: str, default: int) -> int:
    raw = _env(name)
    return _whole(name, raw) if raw else default


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a whole number") from exc


def _whole_seconds(name: str, raw: str) -> float:
    return float(_whole(name, raw))


def _stripped(name: str, raw: str) -> str:
    return raw.strip()


def _lowered(name: str, raw: str) -> str:
    return raw.strip().lower()


# ---- resources' fields from the environment: a declarative mapping --------------------------------


class Var(NamedTuple):
    """The variables that set one resource field (the first one set wins) and how its text is
    read: ``read(variable, text)``, or the text as it is."""

    names: tuple[str, ...]
    read: Callable[[str, str], Any] | None = None


def _var(*names: str, read: Callable[[str, str], Any] | None = None) -> Var:
    return Var(names, read)


def _read_fields(mapping: Mapping[str, Var]) -> dict[str, Any]:
    """``field -> value`` for the fields of ``mapping`` one of whose variables is set (to a
    non-empty text); every other field keeps the resource's own default."""
    out: dict[str, Any] = {}
    for name, var in mapping.items():
        variable = next((v for v in var.names if _env(v)), None)
        if variable is None:
            continue
        value = var.read(variable, _env(variable)) if var.read else _env(variable)
        if value != "":
            out[name] = value
    return out


@dataclass(frozen=True)
class ResourceEnv:
    """What the environment says about one resource: ``values`` holds the fields whose variable is
    set, by field name (the resource is built with them, every other field keeps its default).
    The key is not held here: ``api_key_var`` names the variable the resource resolves at run time
    (``dg.EnvVar``), or is empty when no key is set (Entra ID through ``DefaultAzureCredential``).
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    api_key_var: str = ""


# The Stored Completions API source (``CONV_PIPELINE_SOURCE=azure_openai|openai``): field of
# ``StoredCompletionsApiSource`` (resources/source.py) -> its variable.
API_ENV: dict[str, Var] = {
    "endpoint": _var("AZURE_OPENAI_ENDPOINT"),
    "api_version": _var("OPENAI_API_VERSION"),
    "base_url": _var("OPENAI_BASE_URL"),
    "metadata_filter": _var("CONV_PIPELINE_API_METADATA"),
    "model_filter": _var("CONV_PIPELINE_API_MODEL"),
    "page_size": _var("CONV_PIPELINE_API_PAGE_SIZE", read=_whole),
    "concurrency": _var("CONV_PIPELINE_API_CONCURRENCY", read=_whole),
    "overlap_minutes": _var("CONV_PIPELINE_API_OVERLAP_MINUTES", read=_whole),
    "max_retries": _var("CONV_PIPELINE_API_MAX_RETRIES", read=_whole),
    "timeout_seconds": _var("CONV_PIPELINE_API_TIMEOUT_SECONDS", read=_whole_seconds),
}
API_KEY_VARS = {"azure_openai": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class ApiSettings(ResourceEnv):
    """The Stored Completions API source: its fields (``API_ENV``), its key's variable, and how
    long one sensor tick may read (``CONV_PIPELINE_API_SENSOR_BUDGET_SECONDS``)."""

    sensor_budget_seconds: float = 40.0

    @property
    def endpoint(self) -> str:
        return self.values.get("endpoint", "")

    @property
    def base_url(self) -> str:
        return self.values.get("base_url", "")


def _api_settings(source: str) -> ApiSettings:
    key_var = API_KEY_VARS.get(source, "")
    return ApiSettings(
        values=_read_fields(API_ENV),
        api_key_var=key_var if key_var and _has(key_var) else "",
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


# The LLM judge (docs/JUDGE.md): field of ``JudgeResource`` (resources/judge.py) -> its variables,
# the judge's own first. ``kind`` when it is not set, ``insights_model`` and the key follow from the
# others (``_judge_env``).
JUDGE_ENV: dict[str, Var] = {
    "model": _var("CONV_PIPELINE_JUDGE_MODEL", read=_stripped),
    "kind": _var("CONV_PIPELINE_JUDGE_KIND", read=_lowered),
    "endpoint": _var("CONV_PIPELINE_JUDGE_ENDPOINT", "AZURE_OPENAI_ENDPOINT"),
    "base_url": _var("CONV_PIPELINE_JUDGE_BASE_URL", "OPENAI_BASE_URL"),
    "api_version": _var("CONV_PIPELINE_JUDGE_API_VERSION", "OPENAI_API_VERSION"),
    "insights_model": _var("CONV_PIPELINE_JUDGE_INSIGHTS_MODEL", read=_stripped),
}
JUDGE_KEY_VAR = "CONV_PIPELINE_JUDGE_API_KEY"  # else the kind's (API_KEY_VARS)


@dataclass(frozen=True)
class JudgeEnv(ResourceEnv):
    """Where the LLM judge is (``JUDGE_ENV``). Off (no ``model``) until
    ``CONV_PIPELINE_JUDGE_MODEL`` is set; off, it has no key and no insights model."""

    @property
    def enabled(self) -> bool:
        return bool(self.values.get("model"))


def _judge_env() -> JudgeEnv:
    values = _read_fields(JUDGE_ENV)
    if "kind" not in values:
        # an explicit judge base URL wins; then the Azure endpoint; then an OpenAI base URL
        azure = values.get("endpoint") and not _env("CONV_PIPELINE_JUDGE_BASE_URL")
        values["kind"] = "azure_openai" if azure else "openai"
    insights = values.pop("insights_model", "")
    if not values.get("model"):  # off
        return JudgeEnv(values=values)
    values["insights_model"] = "" if insights.lower() == "off" else (insights or values["model"])
    fallback = API_KEY_VARS.get(values["kind"], "")
    key_var = next((v for v in (JUDGE_KEY_VAR, fallback) if v and _has(v)), "")
    return JudgeEnv(values=values, api_key_var=key_var)


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
