"""The LLM judge as a resource: which OpenAI-compatible service and model, and its key.

``api_key`` is given as ``dg.EnvVar`` (definitions.py) so it never shows in the UI, the logs or
metadata; without it, Azure uses Entra ID (``DefaultAzureCredential``). ``model`` empty means the
judge is off: the judge asset writes empty partitions and says so, the rest of the pipeline runs
as without it.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from conv_pipeline.core.judge.runner import JudgeConnection


class JudgeResource(dg.ConfigurableResource):
    model: str = Field(default="", description="deployment (Azure) or model name; empty: off")
    kind: str = Field(default="openai", description="azure_openai or openai")
    endpoint: str = ""
    base_url: str = ""
    api_version: str = "2025-02-01-preview"
    api_key: str | None = None
    insights_model: str = Field(default="", description="model for insights; empty: none")

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    @property
    def insights_enabled(self) -> bool:
        return bool(self.insights_model)

    def connection(self, model: str | None = None) -> JudgeConnection:
        return JudgeConnection(
            kind=self.kind,
            model=model or self.model,
            endpoint=self.endpoint,
            base_url=self.base_url,
            api_version=self.api_version,
            api_key=self.api_key or None,
        )

    def describe(self) -> str:
        if not self.enabled:
            return "off (set CONV_PIPELINE_JUDGE_MODEL to turn it on)"
        return self.connection().where()
