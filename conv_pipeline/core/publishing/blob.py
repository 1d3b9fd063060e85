"""Publishing files to Azure Blob Storage (Dagster-free; the resource hands in the client).

Decisions (docs/PUBLISHING.md):

* **Atomic replace by block-list commit.** A file is uploaded as staged blocks (each with its
  MD5, which the service verifies) and becomes visible under its final name only when the block
  list is committed. Until then readers see the previous version (or nothing): a crash or a failed
  upload never leaves a half-written blob under the final name, and there is no temporary blob
  to clean up. Uncommitted blocks are discarded by the service (after a week, or at the next
  commit).
* **Retries are ours.** Each operation is sent with the SDK's own retries off
  (``retry_total=0``) and retried here ``max_attempts`` times with exponential backoff, so the
  number of attempts and the waiting time are a setting, and a retry restarts the whole file
  (blocks are staged again; nothing is half-committed).
* **Replace a partition's prefix.** Publishing a partition uploads its files and then deletes
  blobs under the partition's prefixes that the new set no longer contains, so re-publishing
  replaces the partition (a dataset split that became empty does not linger).
* **Skip what is already there.** A blob carries the SHA-256 of its bytes in its metadata
  (``sha256``); a file whose blob already has the same digest is not uploaded again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ContentSettings

DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
# Per-operation options: the SDK's own retry loop is off, ours counts (see the module docstring).
_NO_SDK_RETRY = {"retry_total": 0}

CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".jsonl": "application/x-ndjson; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv; charset=utf-8",
}


class BlobPublishError(RuntimeError):
    """An upload that could not be completed; the message says what to do (never a secret)."""


@dataclass(frozen=True)
class ConnectionParts:
    account_url: str
    account_name: str
    account_key: str | None
    sas_token: str | None


def parse_connection_string(conn: str) -> ConnectionParts:
    """An Azure Storage connection string → the blob endpoint and its credential.

    Accepts ``AccountName``/``AccountKey`` with ``BlobEndpoint`` (Azurite, custom domains) or
    ``DefaultEndpointsProtocol``/``EndpointSuffix`` (Azure), and ``SharedAccessSignature``.
    Error messages name the missing fields, never the values.
    """
    fields: dict[str, str] = {}
    for part in conn.strip().strip(";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError("the Blob connection string has a part without '=' in it")
        fields[name.strip().lower()] = value.strip()
    if conn.strip().lower() == "usedevelopmentstorage=true" or fields.get("usedevelopmentstorage"):
        raise ValueError(
            "UseDevelopmentStorage=true is not supported: give Azurite's full connection string "
            "(AccountName, AccountKey and BlobEndpoint)"
        )
    account = fields.get("accountname", "")
    endpoint = fields.get("blobendpoint", "")
    if not endpoint:
        if not account:
            raise ValueError("the Blob connection string has neither BlobEndpoint nor AccountName")
        protocol = fields.get("defaultendpointsprotocol", "https")
        suffix = fields.get("endpointsuffix", "core.windows.net")
        endpoint = f"{protocol}://{account}.blob.{suffix}"
    key = fields.get("accountkey") or None
    sas = fields.get("sharedaccesssignature") or None
    if not key and not sas:
        raise ValueError(
            "the Blob connection string has neither AccountKey nor SharedAccessSignature"
        )
    return ConnectionParts(endpoint.rstrip("/"), account, key, sas)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return status in (408, 429) or status >= 500
    return False


def _explain(exc: BaseException, account_url: str, what: str) -> BlobPublishError:
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return BlobPublishError(
            f"Blob storage at {account_url} refused the credentials while {what} "
            f"(HTTP {status}, {code or 'authentication failed'}): check the account key, SAS token, "
            "connection string or the identity's 'Storage Blob Data Contributor' role"
        )
    if isinstance(exc, ServiceRequestError):
        return BlobPublishError(
            f"Blob storage at {account_url} could not be reached while {what}: {type(exc).__name__}"
        )
    return BlobPublishError(
        f"Blob storage at {account_url} failed while {what}: HTTP {status} {code or ''}".strip()
    )


class _Retrying:
    def __init__(self, account_url: str, max_attempts: int, backoff_seconds: float, sleep):
        self.lock = threading.Lock()
        self.account_url = account_url
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff_seconds
        self.sleep = sleep
        self.retries = 0

    def __call__(self, what: str, fn: Callable):
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below
                if attempt < self.max_attempts and _transient(exc):
                    with self.lock:
                        self.retries += 1
                    self.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                raise _explain(exc, self.account_url, what) from exc
        raise AssertionError("unreachable")


def ensure_container(service: BlobServiceClient, name: str, retry: _Retrying) -> ContainerClient:
    container = service.get_container_client(name)

    def create():
        with contextlib.suppress(ResourceExistsError):
            container.create_container(**_NO_SDK_RETRY)

    retry(f"creating the container {name!r}", create)
    return container


def upload_atomic(
    container: ContainerClient,
    name: str,
    data: bytes | Iterable[bytes],
    *,
    sha256: str,
    content_type: str,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> None:
    """Stage ``data`` as blocks, then commit: the blob appears (or changes) only at the commit."""
    blob = container.get_blob_client(name)
    chunks: Iterable[bytes]
    if isinstance(data, bytes | bytearray):
        chunks = (data[i : i + block_size] for i in range(0, max(len(data), 1), block_size))
    else:
        chunks = data
    prefix = uuid.uuid4().hex[:16]
    blocks = []
    for i, chunk in enumerate(chunks):
        block_id = base64.b64encode(f"{prefix}-{i:08d}".encode()).decode()
        blob.stage_block(block_id, chunk, length=len(chunk), validate_content=True, **_NO_SDK_RETRY)
        blocks.append(BlobBlock(block_id=block_id))
    blob.commit_block_list(
        blocks,
        content_settings=ContentSettings(content_type=content_type),
        metadata={"sha256": sha256},
        **_NO_SDK_RETRY,
    )


@dataclass
class PublishResult:
    container: str
    uploaded: list[str]
    unchanged: list[str]
    deleted: list[str]
    bytes_uploaded: int
    retries: int

    def as_metadata(self) -> dict:
        return {
            "container": self.container,
            "blobs_uploaded": len(self.uploaded),
            "blobs_unchanged": len(self.unchanged),
            "blobs_deleted": len(self.deleted),
            "bytes_uploaded": self.bytes_uploaded,
            "upload_retries": self.retries,
        }


def _parents(prefixes: Iterable[str]) -> list[str]:
    """The folders to list for ``prefixes`` (each listed once: a day's 24 hours in one call)."""
    return sorted({p.rsplit("/", 1)[0] + "/" if "/" in p else "" for p in prefixes})


def publish_files(
    service: BlobServiceClient,
    container_name: str,
    files: dict[str, Path],
    *,
    replace_prefixes: Iterable[str] = (),
    account_url: str = "",
    max_attempts: int = 4,
    backoff_seconds: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    concurrency: int = 8,
    sleep=time.sleep,
) -> PublishResult:
    """Upload ``files`` (blob name → local path) to ``container_name``, creating it if missing.

    Blobs under ``replace_prefixes`` that are not in ``files`` are deleted afterwards (the
    partition is replaced). The bytes uploaded are the local file's bytes, so the blob and the
    local copy are identical; the SHA-256 in the blob's metadata says so. Files are uploaded
    ``concurrency`` at a time; the first failure is raised after the others have finished.
    """
    retry = _Retrying(account_url or service.url, max_attempts, backoff_seconds, sleep)
    container = ensure_container(service, container_name, retry)
    prefixes = sorted(set(replace_prefixes))
    existing: dict[str, str | None] = {}
    for folder in _parents(prefixes):

        def listing(folder=folder):
            return {
                b.name: (b.metadata or {}).get("sha256")
                for b in container.list_blobs(
                    name_starts_with=folder or None, include=["metadata"], **_NO_SDK_RETRY
                )
                if any(b.name.startswith(p) for p in prefixes)
            }

        existing.update(retry(f"listing {container_name}/{folder}", listing))

    def one(name: str) -> tuple[str, int]:
        data = files[name].read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        current = existing.get(name)
        if name not in existing:

            def head():
                try:
                    props = container.get_blob_client(name).get_blob_properties(**_NO_SDK_RETRY)
                    return (props.metadata or {}).get("sha256")
                except ResourceNotFoundError:
                    return None

            current = retry(f"reading {container_name}/{name}", head)
        if current == digest:
            return "unchanged", 0
        content_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        retry(
            f"uploading {container_name}/{name}",
            lambda: upload_atomic(
                container,
                name,
                data,
                sha256=digest,
                content_type=content_type,
                block_size=block_size,
            ),
        )
        return "uploaded", len(data)

    def gone(name: str) -> tuple[str, int]:
        def delete():
            with contextlib.suppress(ResourceNotFoundError):
                container.delete_blob(name, **_NO_SDK_RETRY)

        retry(f"deleting {container_name}/{name}", delete)
        return "deleted", 0

    outcome: dict[str, list[str]] = {"uploaded": [], "unchanged": [], "deleted": []}
    total = 0
    stale = sorted(set(existing) - set(files))
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for batch in ([(one, n) for n in sorted(files)], [(gone, n) for n in stale]):
            futures = {pool.submit(fn, name): name for fn, name in batch}
            errors = []
            for future, name in futures.items():
                try:
                    kind, size = future.result()
                except BlobPublishError as exc:
                    errors.append(exc)
                    continue
                outcome[kind].append(name)
                total += size
            if errors:  # uploads that failed keep their previous version; nothing is deleted
                raise errors[0]
    return PublishResult(
        container_name,
        outcome["uploaded"],
        outcome["unchanged"],
        outcome["deleted"],
        total,
        retry.retries,
    )


def relative_blob_names(root: Path, paths: Iterable[Path]) -> dict[str, Path]:
    """Local files under ``root`` → blob names: their path relative to ``root``, with ``/``."""
    return {p.relative_to(root).as_posix(): p for p in paths}


# ---- what a partition publishes ------------------------------------------------------------
# Blob names are the files' paths relative to the data folder (``insights``) or to its
# ``tables/`` folder (``conversations``): stable and partition-keyed, the same layout as on disk.

PARQUET_TABLES = ("raw_completions", "scored_conversations", "conversation_issues")


def _stem_files(base: Path) -> list[Path]:
    """``base.*``: a report's Markdown, JSON and the plots beside it (``<stem>.<plot>.png``),
    without the hidden temporary files of a write in progress."""
    if not base.parent.is_dir():
        return []
    return sorted(
        p
        for p in base.parent.glob(f"{base.name}.*")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
    )


def hourly_insight_files(store, key: str) -> tuple[dict[str, Path], list[str]]:
    """The hour's report (``reports/hourly/<day>/<HH>.md|.json`` and its plots) and its
    replace prefix."""
    md, _ = store.report_paths("hourly", key)
    base = md.with_suffix("")
    files = relative_blob_names(store.root, _stem_files(base))
    return files, [base.relative_to(store.root).as_posix() + "."]


def hourly_parquet_files(store, key: str) -> tuple[dict[str, Path], list[str]]:
    """The hour's Parquet partitions (``<table>/<day>/<HH>.parquet``) and their names."""
    paths = [store.hour_path(t, key) for t in PARQUET_TABLES]
    paths.append(store.hourly_report_table_path(key))
    files = relative_blob_names(store.tables_dir, [p for p in paths if p.exists()])
    return files, [p.relative_to(store.tables_dir).as_posix() for p in paths]


def daily_insight_files(store, day: str) -> tuple[dict[str, Path], list[str]]:
    """The day's reports (``reports/<kind>/<day>.md|.json``: daily, experiments, drift,
    clusters) and curated datasets (``datasets/<kind>/<day>/*``), with their replace prefixes."""
    paths: list[Path] = []
    prefixes: list[str] = []
    reports = store.reports_dir
    if reports.exists():
        for kind in sorted(p for p in reports.iterdir() if p.is_dir() and p.name != "hourly"):
            paths += _stem_files(kind / day)
            prefixes.append((kind / f"{day}.").relative_to(store.root).as_posix())
    datasets = store.root / "datasets"
    if datasets.exists():
        for kind in sorted(p for p in datasets.iterdir() if p.is_dir()):
            folder = kind / day
            if folder.is_dir():
                paths += sorted(p for p in folder.rglob("*") if p.is_file())
            prefixes.append(folder.relative_to(store.root).as_posix() + "/")
    files = relative_blob_names(store.root, [p for p in paths if p.exists()])
    return files, prefixes


def range_report_files(store, first: str, last: str) -> tuple[dict[str, Path], list[str]]:
    """A ranged daily run's whole-range reports (``reports/<kind>/range/<first>_<last>.*``)."""
    paths: list[Path] = []
    prefixes: list[str] = []
    if store.reports_dir.exists():
        for folder in sorted(store.reports_dir.glob("*/range")):
            base = folder / f"{first}_{last}"
            paths += _stem_files(base)
            prefixes.append(base.relative_to(store.root).as_posix() + ".")
    files = relative_blob_names(store.root, [p for p in paths if p.exists()])
    return files, prefixes


def mirror_existing(
    service: BlobServiceClient,
    container_name: str,
    root: Path,
    top_prefixes: Iterable[str],
    **kwargs,
) -> PublishResult:
    """Bring the blobs under ``top_prefixes`` back in line with the local files they copy:
    a blob whose local file is gone is deleted, one whose local file changed is replaced; no new
    blob is added (that is the publishing assets' work). Used after the retention job scrubbed
    old raw detail locally, so the Blob copies lose it too (docs/PUBLISHING.md)."""
    container = service.get_container_client(container_name)
    if not container.exists(**_NO_SDK_RETRY):
        return PublishResult(container_name, [], [], [], 0, 0)
    prefixes = sorted(set(top_prefixes))
    names = {
        b.name for p in prefixes for b in container.list_blobs(name_starts_with=p, **_NO_SDK_RETRY)
    }
    files = {n: root / n for n in sorted(names) if (root / n).is_file()}
    return publish_files(service, container_name, files, replace_prefixes=prefixes, **kwargs)
