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

import dagster as dg
from azure.storage.blob import BlobServiceClient
from dagster_azure.blob import AzureBlobStorageKeyCredential, AzureBlobStorageResource
from dagster_azure.blob.resources import AzureBlobStorageSASTokenCredential

from conv_pipeline.core.blob import PublishResult, parse_connection_string, publish_files


class BlobPublisher(dg.ConfigurableResource):
    """Azure Blob publishing: ``storage`` (account URL + credential) or ``connection_string``."""

    storage: AzureBlobStorageResource | None = None
    connection_string: str | None = None
    insights_container: str = "insights"
    conversations_container: str = "conversations"
    publish_parquet: bool = False
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    block_size: int = 4 * 1024 * 1024

    def _storage(self) -> AzureBlobStorageResource:
        if self.storage is not None:
            return self.storage
        if not self.connection_string:
            raise dg.Failure(
                "Blob publishing is on but neither an account URL with a credential nor a "
                "connection string is configured (docs/PUBLISHING.md)"
            )
        try:
            parts = parse_connection_string(self.connection_string)
        except ValueError as exc:
            raise dg.Failure(f"CONV_PIPELINE_BLOB_CONNECTION_STRING: {exc}") from exc
        credential = (
            AzureBlobStorageKeyCredential(key=parts.account_key)
            if parts.account_key
            else AzureBlobStorageSASTokenCredential(token=parts.sas_token)
        )
        return AzureBlobStorageResource(account_url=parts.account_url, credential=credential)

    @property
    def account_url(self) -> str:
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
                account_url=self.account_url,
                max_attempts=self.max_attempts,
                backoff_seconds=self.backoff_seconds,
                block_size=self.block_size,
            )


def build_blob_publisher(blob) -> BlobPublisher:
    """The publisher for ``settings.blob`` (a ``BlobSettings``); secrets stay ``dg.EnvVar``."""
    from dagster_azure.blob import AzureBlobStorageDefaultCredential

    from conv_pipeline.settings import BLOB_SECRET_VARS

    common = dict(
        insights_container=blob.insights_container,
        conversations_container=blob.conversations_container,
        publish_parquet=blob.publish_parquet,
        max_attempts=blob.max_attempts,
        backoff_seconds=blob.backoff_seconds,
    )
    if blob.credential == "connection_string":
        return BlobPublisher(
            connection_string=dg.EnvVar(BLOB_SECRET_VARS["connection_string"]), **common
        )
    if not blob.account_url:
        raise ValueError(
            "CONV_PIPELINE_BLOB_ENABLED is on: set CONV_PIPELINE_BLOB_ACCOUNT_URL "
            "(or CONV_PIPELINE_BLOB_CONNECTION_STRING)"
        )
    if blob.credential == "key":
        credential = AzureBlobStorageKeyCredential(key=dg.EnvVar(BLOB_SECRET_VARS["key"]))
    elif blob.credential == "sas":
        credential = AzureBlobStorageSASTokenCredential(token=dg.EnvVar(BLOB_SECRET_VARS["sas"]))
    else:
        credential = AzureBlobStorageDefaultCredential()
    return BlobPublisher(
        storage=AzureBlobStorageResource(account_url=blob.account_url, credential=credential),
        **common,
    )
