"""A faithful stand-in of the Stored Completions API (OpenAI and Azure OpenAI) on loopback.

For tests (the official ``openai`` SDK talks HTTP to it) and local trials
(``conv-pipeline standin``). See docs/STANDIN.md.
"""

from conv_pipeline_demo.standin.faults import KINDS as FAULT_KINDS
from conv_pipeline_demo.standin.faults import FaultRule, Faults
from conv_pipeline_demo.standin.responder import (
    Responder,
    default_judge_score,
    default_responder,
    judge_responder,
    scripted,
)
from conv_pipeline_demo.standin.server import (
    DEFAULT_API_KEY,
    MIN_API_VERSION,
    StoredCompletionsServer,
)
from conv_pipeline_demo.standin.store import (
    CompletionStore,
    LoadSummary,
    StandinAPIError,
    validate_metadata,
)

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "MIN_API_VERSION",
    "CompletionStore",
    "FaultRule",
    "Faults",
    "LoadSummary",
    "Responder",
    "StandinAPIError",
    "StoredCompletionsServer",
    "default_judge_score",
    "default_responder",
    "judge_responder",
    "scripted",
    "validate_metadata",
]
