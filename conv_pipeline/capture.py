"""Capture helpers for the chat application: store every completion with the pipeline's metadata.

```python
from openai import AzureOpenAI
from conv_pipeline.capture import create_stored_completion

client = AzureOpenAI(azure_endpoint=..., api_version="2025-02-01-preview", ...)
completion = create_stored_completion(
    client,
    model="gpt-4o-deployment",
    messages=[{"role": "user", "content": "..."}],
    user_type="customer_support",
    category="technical_issue",
    conversation_id="conv-123",
    prompt_variant="v2",
)
```

The metadata is checked against the service's limits before the call (at most 16 keys, keys of
1–64 characters, string values of at most 512 characters), so a bad value fails in the
application with a clear message instead of a 400 from the service. ``generate_seed_conversations``
replays the recipe's step 5 (its four scenarios) through the same helper; ``conv-pipeline generate``
does so with the client the API source uses (``core/clients.py``: a key, or Entra ID).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

MAX_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512
# The keys the pipeline promotes to columns and segments by (docs/ARCHITECTURE.md, "Warehouse").
STANDARD_KEYS = ("user_type", "category", "conversation_id", "pipeline_source", "prompt_variant")


class MetadataError(ValueError):
    """Metadata the Stored Completions API would refuse."""


def validate_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Return ``metadata`` as the service accepts it, or raise ``MetadataError`` naming every
    problem. Values must already be strings: numbers or booleans are refused rather than guessed
    (``str(True)`` is ``"True"``, which a filter for ``"true"`` would miss)."""
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata must be a mapping of strings, not {type(metadata).__name__}")
    problems = []
    if len(metadata) > MAX_KEYS:
        problems.append(f"{len(metadata)} keys (at most {MAX_KEYS})")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            problems.append(f"key {key!r} is not a non-empty string")
            continue
        if len(key) > MAX_KEY_CHARS:
            problems.append(
                f"key {key[:20]!r}… has {len(key)} characters (at most {MAX_KEY_CHARS})"
            )
        if not isinstance(value, str):
            problems.append(f"{key}: value is {type(value).__name__}, not a string")
        elif len(value) > MAX_VALUE_CHARS:
            problems.append(f"{key}: value has {len(value)} characters (at most {MAX_VALUE_CHARS})")
    if problems:
        raise MetadataError("metadata refused: " + "; ".join(problems))
    return dict(metadata)


def build_metadata(
    *,
    user_type: str | None = None,
    category: str | None = None,
    conversation_id: str | None = None,
    prompt_variant: str | None = None,
    pipeline_source: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The pipeline's standard keys (those given) plus ``extra``, validated."""
    standard = {
        "user_type": user_type,
        "category": category,
        "conversation_id": conversation_id,
        "prompt_variant": prompt_variant,
        "pipeline_source": pipeline_source,
    }
    metadata: dict[str, Any] = {k: v for k, v in standard.items() if v is not None}
    for key, value in (extra or {}).items():
        if key in metadata and metadata[key] != value:
            raise MetadataError(f"{key} is given twice with different values")
        metadata[key] = value
    return validate_metadata(metadata)


def create_stored_completion(
    client: Any,
    *,
    model: str,
    messages: Iterable[Mapping[str, Any]],
    user_type: str | None = None,
    category: str | None = None,
    conversation_id: str | None = None,
    prompt_variant: str | None = None,
    pipeline_source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``client.chat.completions.create(..., store=True, metadata=...)`` with validated metadata.

    Works with ``OpenAI``/``AzureOpenAI`` (returns the completion) and their async clients
    (returns the awaitable). Other keyword arguments go to ``create`` unchanged."""
    if "store" in kwargs and kwargs["store"] is not True:
        raise ValueError("create_stored_completion always stores; call create() to not store")
    kwargs.pop("store", None)
    md = build_metadata(
        user_type=user_type,
        category=category,
        conversation_id=conversation_id,
        prompt_variant=prompt_variant,
        pipeline_source=pipeline_source,
        extra=metadata,
    )
    return client.chat.completions.create(
        model=model, messages=list(messages), store=True, metadata=md, **kwargs
    )


# The recipe's step 5, as written there.
SEED_SCENARIOS: list[dict[str, Any]] = [
    {
        "user_type": "customer_support",
        "category": "technical_issue",
        "messages": [
            {"role": "system", "content": "You are a helpful technical support assistant."},
            {
                "role": "user",
                "content": "My application keeps crashing when I try to upload files larger "
                "than 100MB.",
            },
        ],
    },
    {
        "user_type": "sales_inquiry",
        "category": "product_info",
        "messages": [
            {"role": "system", "content": "You are a knowledgeable sales assistant."},
            {
                "role": "user",
                "content": "What are the key differences between your premium and enterprise "
                "plans?",
            },
        ],
    },
    {
        "user_type": "onboarding",
        "category": "getting_started",
        "messages": [
            {"role": "system", "content": "You are a friendly onboarding specialist."},
            {
                "role": "user",
                "content": "I just signed up for your service. How do I get started with my "
                "first project?",
            },
        ],
    },
    {
        "user_type": "billing_support",
        "category": "account_management",
        "messages": [
            {"role": "system", "content": "You are a billing support specialist."},
            {"role": "user", "content": "I need to understand the charges on my last invoice."},
        ],
    },
]


def generate_seed_conversations(
    client: Any,
    *,
    model: str,
    rounds: int = 1,
    pipeline_source: str = "demo",
    prompt_variant: str | None = None,
) -> list[Any]:
    """Send the recipe's four scenarios ``rounds`` times with ``store=True`` and the recipe's
    metadata (``conversation_id`` ``conv_<n>``, ``pipeline_source``, ``timestamp``)."""
    out = []
    n = 0
    for _ in range(rounds):
        for scenario in SEED_SCENARIOS:
            n += 1
            out.append(
                create_stored_completion(
                    client,
                    model=model,
                    messages=scenario["messages"],
                    user_type=scenario["user_type"],
                    category=scenario["category"],
                    conversation_id=f"conv_{n}",
                    pipeline_source=pipeline_source,
                    prompt_variant=prompt_variant,
                    metadata={"timestamp": datetime.now(UTC).isoformat(timespec="seconds")},
                )
            )
    return out
