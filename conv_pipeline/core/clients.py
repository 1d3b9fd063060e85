"""One way to build the official SDK's client for OpenAI or Azure OpenAI.

Both the Stored Completions API source (``core/ingestion/api.py``, and the capture helpers'
``generate`` command through it) and the LLM judge (``core/judge``) describe where their service is
with a :class:`Service` and what they require of it with :class:`ClientRules`; :func:`build_client`
turns that into an ``openai`` client, synchronous or asynchronous:

* ``kind="azure_openai"``: ``AzureOpenAI`` on ``endpoint`` with ``api_version``, authenticated by
  ``api_key``, or without one by Entra ID (``DefaultAzureCredential`` through
  ``get_bearer_token_provider``, scope ``https://cognitiveservices.azure.com/.default``). No
  ``azure_deployment``: it would route every call to ``/deployments/{name}/...``, which the list
  calls of stored completions are not.
* ``kind="openai"``: ``OpenAI`` on ``base_url`` (or api.openai.com) with ``api_key``; without one,
  an Entra ID bearer token in its place (Azure's ``/openai/v1/`` accepts it) when the caller's
  rules allow it, else a clear error.

Retries and backoff are the SDK's (429 with ``retry-after-ms`` / ``retry-after``, 408/409, 5xx,
timeouts and dropped connections, up to ``max_retries`` times); ``timeout`` bounds each attempt.
Errors name the caller's variables, never a secret's value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Self

import openai
from azure.identity import DefaultAzureCredential, get_bearer_token_provider

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_API_VERSION = "2025-02-01-preview"


@dataclass(frozen=True)
class Service:
    """Where an OpenAI-compatible service is. ``api_key`` is the resolved secret (never printed:
    ``repr=False``); ``None`` means Entra ID (``DefaultAzureCredential``)."""

    kind: str  # azure_openai | openai
    endpoint: str = ""  # Azure resource endpoint (AzureOpenAI client)
    base_url: str = ""  # OpenAI or any compatible service, Azure's /openai/v1/ included
    api_version: str = DEFAULT_API_VERSION
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_key:  # an empty key is no key
            object.__setattr__(self, "api_key", None)

    @classmethod
    def of(cls, source: Any, **values: Any) -> Self:
        """``cls`` from the attributes of ``source`` (a resource) named like its fields; ``values``
        give the others (those ``source`` holds in another form)."""
        names = [f.name for f in fields(cls) if f.name not in values]
        return cls(**{name: getattr(source, name) for name in names}, **values)


@dataclass(frozen=True)
class ClientRules:
    """What a caller requires of its service, and the words of its errors (its own variables)."""

    what: str  # the caller in "unknown <what> kind": "API", "judge"
    missing_endpoint: str  # the error when Azure OpenAI has no endpoint
    # OpenAI-compatible without a key: None uses an Entra ID bearer token; a text is the error.
    missing_key: str | None = None
    # The oldest Azure api version the caller works with, and the error naming it (``{version}``,
    # ``{minimum}``); None: any.
    min_api_version: str | None = None
    old_api_version: str = "api version {version} is too old; use {minimum} or later"
    error: type[Exception] = ValueError


def entra_token_provider() -> Callable[[], str]:
    """A bearer token provider for Azure OpenAI from ``DefaultAzureCredential``."""
    return get_bearer_token_provider(DefaultAzureCredential(), COGNITIVE_SCOPE)


def api_version_at_least(version: str, minimum: str) -> bool:
    """Dated versions compare by date ("2025-04-01-preview" >= "2025-02-01-preview"); the
    undated ones ("v1", "latest", "preview") are the newest."""
    head = version[:10]
    if len(head) == 10 and head[4] == "-" and head[7] == "-":
        return head >= minimum[:10]
    return True


def build_client(
    service: Service,
    rules: ClientRules,
    *,
    asynchronous: bool,
    max_retries: int,
    timeout: float,
) -> Any:
    """The ``openai`` client for ``service`` (see the module docstring); raises ``rules.error``
    with an actionable message when the service is not fully described."""
    common: dict[str, Any] = {"max_retries": max_retries, "timeout": timeout}
    if service.kind == "azure_openai":
        if not service.endpoint:
            raise rules.error(rules.missing_endpoint)
        minimum = rules.min_api_version
        if minimum and not api_version_at_least(service.api_version, minimum):
            raise rules.error(
                rules.old_api_version.format(version=service.api_version, minimum=minimum)
            )
        auth: dict[str, Any] = (
            {"api_key": service.api_key}
            if service.api_key
            else {"azure_ad_token_provider": entra_token_provider()}
        )
        cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        return cls(
            azure_endpoint=service.endpoint, api_version=service.api_version, **auth, **common
        )
    if service.kind == "openai":
        api_key: Any = service.api_key
        if not api_key:
            if rules.missing_key is not None:
                raise rules.error(rules.missing_key)
            api_key = _entra_api_key(asynchronous)
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(base_url=service.base_url or None, api_key=api_key, **common)
    raise rules.error(f"unknown {rules.what} kind {service.kind!r}; use azure_openai or openai")


def _entra_api_key(asynchronous: bool) -> Callable[[], Any]:
    """An Entra ID bearer token in place of an OpenAI key (the SDK calls it before each request;
    the credential blocks, so the asynchronous client gets it from a thread)."""
    provider = entra_token_provider()
    if not asynchronous:
        return provider

    async def api_key() -> str:
        return await asyncio.to_thread(provider)

    return api_key
