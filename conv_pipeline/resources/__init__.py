"""Resources: where the data lives (``PipelineStore``) and where completions come from
(``CompletionSource``, with the local export folder as the offline default)."""

from conv_pipeline.resources.judge import JudgeResource
from conv_pipeline.resources.source import (
    CompletionSource,
    LocalExportSource,
    StoredCompletionsApiSource,
)
from conv_pipeline.resources.store import PipelineStore

__all__ = [
    "CompletionSource",
    "JudgeResource",
    "LocalExportSource",
    "PipelineStore",
    "StoredCompletionsApiSource",
]
