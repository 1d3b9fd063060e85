"""The LLM judge as a resource: which OpenAI-compatible service and model, and its key.

``api_key`` is given as ``dg.EnvVar`` (definitions.py) so it never shows in the UI, the logs or
metadata; without it, Azure uses Entra ID (``DefaultAzureCredential``). ``model`` empty means the
judge is off: the judge asset writes empty partitions and says so, the rest of the pipeline runs
as without it.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from conv_pipeline.core.clients import DEFAULT_API_VERSION
from conv_pipeline.core.judge.types import JudgeConnection


class JudgeResource(dg.ConfigurableResource):
    # The fields the UI shows; settings.JUDGE_ENV maps the environment onto them.
    model: str = Field(default="", description="deployment (Azure) or model name; empty: off")
    kind: str = Field(default="openai", description="azure_openai or openai")
    endpoint: str = ""
    base_url: str = ""
    api_version: str = DEFAULT_API_VERSION
    api_key: str | None = None
    insights_model: str = Field(default="", description="model for insights; empty: none")

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    @property
    def insights_enabled(self) -> bool:
        return bool(self.insights_model)

    def connection(self, model: str | None = None) -> JudgeConnection:
        """The core's connection: the fields of the same name (``model`` to use another one)."""
        return JudgeConnection.of(self, model=model or self.model)

    def describe(self) -> str:
        if not self.enabled:
            return "off (set CONV_PIPELINE_JUDGE_MODEL to turn it on)"
        return self.connection().where()
