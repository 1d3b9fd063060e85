"""``BlobPublisher``: where reports, datasets and (when asked) Parquet partitions are published.

The client is dagster-azure's ``AzureBlobStorageResource`` (account key, SAS or
``DefaultAzureCredential``); a connection string (how Azurite is reached, and what the portal
hands out) is read at run time and turned into the same resource. Secrets arrive as
``dg.EnvVar`` and are never logged or put in metadata; error messages name the account URL only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import dagster as dg
from azure.storage.blob import BlobServiceClient
from dagster_azure.blob import (
    AzureBlobStorageDefaultCredential,
    AzureBlobStorageKeyCredential,
    AzureBlobStorageResource,
)
from dagster_azure.blob.resources import AzureBlobStorageSASTokenCredential

from conv_pipeline.core.publishing.blob import (
    PublishResult,
    mirror_existing,
    parse_connection_string,
    publish_files,
)


class BlobPublisher(dg.ConfigurableResource):
    """Azure Blob publishing. ``credential`` says what ``secret`` holds: ``key`` (an account
    key), ``sas`` (a SAS token), ``connection_string`` (account URL and key/SAS in one; the
    ``account_url`` field is then ignored) or ``default`` (``DefaultAzureCredential``, no
    secret). Either way the client is dagster-azure's ``AzureBlobStorageResource``."""

    account_url: str = ""
    credential: Literal["key", "sas", "connection_string", "default"] = "default"
    secret: str | None = None
    insights_container: str = "insights"
    conversations_container: str = "conversations"
    publish_parquet: bool = False
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    block_size: int = 4 * 1024 * 1024
    concurrency: int = 8

    def _storage(self) -> AzureBlobStorageResource:
        if self.credential == "connection_string":
            if not self.secret:
                raise dg.Failure("CONV_PIPELINE_BLOB_CONNECTION_STRING is empty")
            try:
                parts = parse_connection_string(self.secret)
            except ValueError as exc:
                raise dg.Failure(f"CONV_PIPELINE_BLOB_CONNECTION_STRING: {exc}") from exc
            url = parts.account_url
            credential = (
                AzureBlobStorageKeyCredential(key=parts.account_key)
                if parts.account_key
                else AzureBlobStorageSASTokenCredential(token=parts.sas_token)
            )
        else:
            url = self.account_url
            if not url:
                raise dg.Failure(
                    "Blob publishing is on but CONV_PIPELINE_BLOB_ACCOUNT_URL is empty"
                )
            if self.credential in ("key", "sas") and not self.secret:
                raise dg.Failure(
                    f"Blob publishing with credential {self.credential!r} needs its secret"
                )
            if self.credential == "key":
                credential = AzureBlobStorageKeyCredential(key=self.secret)
            elif self.credential == "sas":
                credential = AzureBlobStorageSASTokenCredential(token=self.secret)
            else:
                credential = AzureBlobStorageDefaultCredential()
        return AzureBlobStorageResource(account_url=url, credential=credential)

    @property
    def display_url(self) -> str:
        """The account URL without any query string (a SAS in the URL is never shown)."""
        return self._storage().account_url.split("?", 1)[0]

    @contextmanager
    def client(self) -> Iterator[BlobServiceClient]:
        with self._storage().get_client() as service:
            yield service

    def publish(
        self, container: str, files: dict[str, Path], replace_prefixes: list[str]
    ) -> PublishResult:
        with self.client() as service:
            return publish_files(
                service,
                container,
                files,
                replace_prefixes=replace_prefixes,
                account_url=self.display_url,
                max_attempts=self.max_attempts,
                backoff_seconds=self.backoff_seconds,
                block_size=self.block_size,
                concurrency=self.concurrency,
            )

    def mirror(self, container: str, root: Path, top_prefixes: list[str]) -> PublishResult:
        with self.client() as service:
            return mirror_existing(
                service,
                container,
                root,
                top_prefixes,
                account_url=self.display_url,
                max_attempts=self.max_attempts,
                backoff_seconds=self.backoff_seconds,
                block_size=self.block_size,
                concurrency=self.concurrency,
            )
