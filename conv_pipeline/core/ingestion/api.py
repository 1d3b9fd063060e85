"""Copy the Stored Completions API into an export folder, incrementally and crash-safely.

The service lists stored completions (``GET /chat/completions``) with a cursor (``after`` = the
last item's id) but no time filter. A *pass* walks the list newest first (``order=desc``) down to a
*floor*: the previous pass's newest ``created`` minus an overlap (default one hour), so that a
completion that shows up late, with a ``created`` a little in the past, is still read. Items already
written (same ``id``) are skipped, so the overlap never duplicates. For every new completion the
input messages are read (``GET /chat/completions/{id}/messages``, paginated) concurrently, with a
bound, while the next list page is already being fetched.

What a pass finds is written as export files (``api-<seq>.jsonl``, the export format of docs/ARCHITECTURE.md:
the completion exactly as the service returned it plus ``messages``), a chunk at a time and
atomically, each with its ids beside it in ``.conv_pipeline/``. The state (watermark, the pass in
progress and its cursor) is written after the chunk it describes, so:

* a crash or a failure between two pages keeps every chunk already written and the cursor of the
  last one; the next sync resumes the pass there, then walks the head of the list again for what
  arrived meanwhile: nothing is lost and, ids being skipped, nothing is duplicated;
* a chunk written just before a crash but not yet in the state is adopted on the next sync;
* a pass interrupted by its time budget (the sensor's ticks are short) resumes the same way.

The files are then read like any export folder (``LocalStaging``), so parsing, rejected records
and hourly partitions work exactly as for the local source. Nothing here logs or stores a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai
import polars as pl

from conv_pipeline.core.clients import ClientRules, Service, build_client
from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet, file_lock

STATE_VERSION = 1
STATE_DIR = ".conv_pipeline"
MIN_API_VERSION = "2025-02-01-preview"
# List pages whose messages may be in flight at once (memory stays bounded by this).
PAGES_AHEAD = 4
FUTURE_SLACK_SECONDS = 300


class ApiSourceError(RuntimeError):
    """A failure a person can act on: the message says what happened and what to do."""


# What the source requires of its service (core/clients.py builds the client).
API_RULES = ClientRules(
    what="API",
    missing_endpoint="CONV_PIPELINE_SOURCE=azure_openai needs AZURE_OPENAI_ENDPOINT "
    "(https://<resource>.openai.azure.com)",
    missing_key=None,  # no key: Entra ID, for Azure's /openai/v1/ too
    min_api_version=MIN_API_VERSION,
    old_api_version="OPENAI_API_VERSION={version} is too old for stored completions; "
    "use {minimum} or later",
    error=ApiSourceError,
)


@dataclass(frozen=True)
class ApiConfig(Service):
    """The service (``Service``: kind, endpoint, base_url, api_version, api_key; no key means
    Entra ID) and what a sync lists, how fast. The defaults here are the resource's too
    (``resources/source.py``)."""

    metadata: dict[str, str] = field(default_factory=dict)
    model: str = ""
    page_size: int = 100
    concurrency: int = 16
    overlap_seconds: int = 3600
    max_retries: int = 6
    timeout_seconds: float = 60.0
    chunk_records: int = 5000

    def where(self) -> str:
        """The service, as shown to people: no key, no query string."""
        if self.kind == "azure_openai":
            return f"Azure OpenAI {self.endpoint.rstrip('/')} (api-version {self.api_version})"
        return f"OpenAI-compatible API {(self.base_url or 'https://api.openai.com/v1').rstrip('/')}"

    def filters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.metadata:
            out["metadata"] = dict(sorted(self.metadata.items()))
        if self.model:
            out["model"] = self.model
        return out

    def fingerprint(self) -> str:
        """Identifies what is listed: the service and the filters (changing them starts over)."""
        where = self.endpoint if self.kind == "azure_openai" else self.base_url
        blob = json.dumps([self.kind, where.rstrip("/"), self.filters()], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


def parse_metadata_filter(text: str) -> dict[str, str]:
    """``CONV_PIPELINE_API_METADATA``: a JSON object, or ``key=value`` pairs separated by commas."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"CONV_PIPELINE_API_METADATA is not valid JSON: {exc}") from exc
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError("CONV_PIPELINE_API_METADATA must map strings to strings")
        return value
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"CONV_PIPELINE_API_METADATA: {part.strip()!r} is not key=value "
                '(use k1=v1,k2=v2 or a JSON object such as {"k1": "v1"})'
            )
        out[key.strip()] = value.strip()
    return out


def make_client(config: ApiConfig, *, asynchronous: bool = True) -> Any:
    """The official SDK's client for ``config`` (async for reading, sync for the capture helpers'
    ``generate`` command), with the SDK's retries and backoff up to ``max_retries`` times."""
    return build_client(
        config,
        API_RULES,
        asynchronous=asynchronous,
        max_retries=config.max_retries,
        timeout=config.timeout_seconds,
    )


@dataclass
class ExportStats:
    complete: bool = True  # False: the time budget ran out, the pass resumes next time
    passes: int = 0
    list_requests: int = 0
    message_requests: int = 0
    listed: int = 0
    new_records: int = 0
    skipped_known: int = 0
    vanished: int = 0  # deleted between the list and the messages call
    chunks_written: int = 0
    watermark: int | None = None
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {f"api_{k}": v for k, v in asdict(self).items() if v is not None}


def _created(item: Any) -> int | None:
    value = item.get("created") if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def dedupe_key(item: Any) -> str:
    """The completion's ``id``; an item without one is keyed by its content, so re-reading it
    never writes it twice (the parser then rejects it with its reason)."""
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
        return item["id"]
    blob = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return "sha1:" + hashlib.sha1(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ApiExporter:
    """Keeps ``export_dir`` in step with what the API holds (see the module docstring)."""

    def __init__(
        self,
        export_dir: str | Path,
        config: ApiConfig,
        *,
        client_factory: Callable[[ApiConfig], Any] = make_client,
    ):
        self.export_dir = Path(export_dir)
        self.config = config
        self.client_factory = client_factory

    # ---- state -------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.export_dir / STATE_DIR

    @property
    def state_path(self) -> Path:
        return self.state_dir / "state.json"

    def _ids_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.ids.parquet"

    def _lock(self):
        return file_lock(self.state_dir / ".lock")

    def load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            state = {}
        if state.get("version") != STATE_VERSION:
            state = {"version": STATE_VERSION, "chunks": {}, "next_seq": 1}
        state.setdefault("chunks", {})
        if state.get("fingerprint") != self.config.fingerprint():
            # Another service or other filters: what was read stays, the walk starts over.
            state.update(fingerprint=self.config.fingerprint(), watermark=None, pass_=None)
        self._adopt_orphans(state)
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write_bytes(
            self.state_path, json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
        )

    def _adopt_orphans(self, state: dict[str, Any]) -> None:
        """A chunk written right before a crash, whose state entry was not saved yet."""
        for path in sorted(self.export_dir.glob("api-*.jsonl")):
            if path.name in state["chunks"]:
                continue
            keys, created = [], []
            for line in path.read_text("utf-8", errors="surrogateescape").splitlines():
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                keys.append(dedupe_key({k: v for k, v in item.items() if k != "messages"}))
                c = _created(item)
                if c is not None:
                    created.append(c)
            atomic_write_parquet(self._ids_path(path.name), pl.DataFrame({"key": keys}))
            state["chunks"][path.name] = _chunk_entry(len(keys), created)
            seq = int(path.stem.split("-")[1]) if path.stem.split("-")[1].isdigit() else 0
            state["next_seq"] = max(state.get("next_seq", 1), seq + 1)

    def _known(self, state: dict[str, Any], floor: int | None) -> set[str]:
        """Ids already written that a walk down to ``floor`` could meet again."""
        paths = [
            self._ids_path(name)
            for name, entry in state["chunks"].items()
            if floor is None
            or entry.get("max_created") is None
            or entry.get("undated")
            or entry["max_created"] >= floor
        ]
        paths = [p for p in paths if p.exists()]
        if not paths:
            return set()
        return set(pl.read_parquet(paths, columns=["key"])["key"].to_list())

    # ---- sync --------------------------------------------------------------------------------
    def sync(self, budget_seconds: float | None = None) -> ExportStats:
        with self._lock():
            return asyncio.run(self._sync(budget_seconds))

    async def _sync(self, budget_seconds: float | None) -> ExportStats:
        started = time.monotonic()
        deadline = started + budget_seconds if budget_seconds else None
        stats = ExportStats()
        state = self.load_state()
        client = self.client_factory(self.config)
        try:
            while True:
                current = state.get("pass_")
                resumed = bool(current and current.get("after"))
                if not current:
                    wm = state.get("watermark")
                    floor = wm - self.config.overlap_seconds if wm is not None else None
                    state["pass_"] = {"floor": floor, "top": None, "after": None}
                stats.passes += 1
                done = await self._walk(client, state, stats, deadline)
                if not done:
                    stats.complete = False
                    break
                top = state["pass_"].get("top")
                wm = state.get("watermark")
                if top is not None:
                    state["watermark"] = top if wm is None else max(wm, top)
                state["pass_"] = None
                self._save_state(state)
                if not resumed:
                    break
                # A resumed pass finished the old walk; the head may hold what came meanwhile.
        finally:
            with contextlib.suppress(Exception):
                await client.close()
        stats.watermark = state.get("watermark")
        stats.seconds = round(time.monotonic() - started, 3)
        return stats

    async def _walk(self, client: Any, state: dict, stats: ExportStats, deadline) -> bool:
        cfg = self.config
        walk = state["pass_"]
        floor = walk["floor"]
        known = self._known(state, floor - cfg.overlap_seconds if floor is not None else None)
        sem = asyncio.Semaphore(max(1, cfg.concurrency))
        inflight: deque[tuple[str | None, list[dict], list[asyncio.Task]]] = deque()
        buffer: list[dict] = []
        committed_after: list[str | None] = [walk.get("after")]

        def flush() -> None:
            if buffer:
                self._write_chunk(state, buffer)
                stats.chunks_written += 1
                buffer.clear()
            walk["after"] = committed_after[0]
            self._save_state(state)

        async def commit_first() -> None:
            last_id, items, tasks = inflight.popleft()
            results = await asyncio.gather(*tasks)
            for item, messages in zip(items, results, strict=True):
                if messages is None:
                    stats.vanished += 1
                    continue
                record = dict(item)
                record["messages"] = messages
                buffer.append(record)
            stats.new_records += sum(1 for m in results if m is not None)
            committed_after[0] = last_id
            if len(buffer) >= cfg.chunk_records:
                flush()

        after = walk.get("after")
        finished = False
        pages = 0
        try:
            while True:
                if deadline is not None and pages and time.monotonic() >= deadline:
                    break  # (every call reads at least one page, so a pass always advances)
                pages += 1
                try:
                    page = await self._list_page(client, after, stats)
                except _StaleCursor:
                    # The item the cursor named is gone (deleted): walk again from the head;
                    # ids already written are skipped.
                    after = None
                    walk["after"] = None
                    continue
                data = page.get("data") or []
                dated = [c for c in map(_created, data) if c is not None]
                # A `created` in the future (clock skew, milliseconds) must not lift the
                # watermark past the present, or later passes would skip what comes next.
                horizon = int(time.time()) + FUTURE_SLACK_SECONDS
                tops = [c for c in dated if c <= horizon]
                if tops:
                    walk["top"] = max(tops + [walk["top"]] if walk.get("top") else tops)
                if len(dated) >= 2 and dated[0] < dated[-1]:
                    # The service ignored order=desc: no early stop for this pass (items older
                    # than the floor are still skipped, so nothing is written twice).
                    walk["unordered"] = True
                stop = not data or not page.get("has_more")
                if floor is not None and dated and not walk.get("unordered"):
                    # Newest first: once a whole page is older than the floor, so is the rest.
                    stop = stop or all(c < floor for c in dated)
                fresh: list[dict] = []
                for item in data:
                    stats.listed += 1
                    c = _created(item)
                    if floor is not None and c is not None and c < floor:
                        continue  # older than the floor: read by an earlier pass
                    key = dedupe_key(item)
                    if key in known:
                        stats.skipped_known += 1
                        continue
                    known.add(key)
                    fresh.append(item)
                tasks = [
                    asyncio.create_task(self._messages(client, item, sem, stats))
                    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
                    else _done([])
                    for item in fresh
                ]
                last = data[-1] if data else None
                last_id = (last.get("id") if isinstance(last, dict) else None) or page.get(
                    "last_id"
                )
                inflight.append((last_id, fresh, tasks))
                while inflight and (
                    len(inflight) >= PAGES_AHEAD or all(t.done() for t in inflight[0][2])
                ):
                    await commit_first()
                if stop:
                    finished = True
                    break
                if not isinstance(last_id, str) or not last_id:
                    raise ApiSourceError(
                        f"{cfg.where()}: a list page says has_more but gives no id to continue "
                        "after; the service's answer does not follow the API"
                    )
                after = last_id
            while inflight:
                await commit_first()
        except BaseException:
            # Keep what was fully read: the pages before the failing one are written and the
            # cursor stops right after them.
            for _, _, tasks in inflight:
                for t in tasks:
                    t.cancel()
            with contextlib.suppress(BaseException):
                flush()
            raise
        flush()
        return finished

    def _write_chunk(self, state: dict, records: list[dict]) -> None:
        seq = state.get("next_seq", 1)
        name = f"api-{seq:06d}.jsonl"
        lines = "".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records
        )
        created = [c for c in map(_created, records) if c is not None]
        # The ids go first: a chunk is only read once its state entry exists, or adopted.
        keys = [dedupe_key({k: v for k, v in r.items() if k != "messages"}) for r in records]
        atomic_write_parquet(self._ids_path(name), pl.DataFrame({"key": keys}))
        atomic_write_bytes(self.export_dir / name, lines.encode("utf-8", "surrogatepass"))
        entry = _chunk_entry(len(records), created)
        state["chunks"][name] = entry
        state["next_seq"] = seq + 1

    # ---- calls -------------------------------------------------------------------------------
    async def _list_page(self, client: Any, after: str | None, stats: ExportStats) -> dict:
        cfg = self.config
        kwargs: dict[str, Any] = {"limit": cfg.page_size, "order": "desc", **cfg.filters()}
        if after:
            kwargs["after"] = after
        stats.list_requests += 1
        try:
            raw = await client.chat.completions.with_raw_response.list(**kwargs)
        except Exception as exc:
            if after and _status(exc) in (400, 404):
                raise _StaleCursor from exc
            raise self._explain(exc, "listing stored completions") from exc
        return _json_object(raw, cfg, "the list of stored completions")

    async def _messages(
        self, client: Any, item: dict, sem: asyncio.Semaphore, stats: ExportStats
    ) -> list | None:
        """All input messages of one completion, or None when it was deleted meanwhile."""
        out: list = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100, "order": "asc"}
            if after:
                kwargs["after"] = after
            async with sem:
                stats.message_requests += 1
                try:
                    raw = await client.chat.completions.messages.with_raw_response.list(
                        item["id"], **kwargs
                    )
                except Exception as exc:
                    if _status(exc) == 404 and not out:
                        return None
                    raise self._explain(exc, f"reading the messages of {item['id']}") from exc
            page = _json_object(raw, self.config, f"the messages of {item['id']}")
            data = page.get("data")
            if not isinstance(data, list):
                raise ApiSourceError(
                    f"{self.config.where()}: the messages of {item['id']} came without a data list"
                )
            out.extend(data)
            if not page.get("has_more") or not data:
                return out
            last = data[-1]
            after = (last.get("id") if isinstance(last, dict) else None) or page.get("last_id")
            if not after:
                return out

    def _explain(self, exc: Exception, doing: str) -> ApiSourceError:
        where = self.config.where()
        retries = self.config.max_retries
        status = _status(exc)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            hint = (
                "check AZURE_OPENAI_API_KEY, or that the identity DefaultAzureCredential finds "
                "has the 'Cognitive Services OpenAI User' role"
                if self.config.kind == "azure_openai"
                else "check OPENAI_API_KEY"
            )
            return ApiSourceError(f"{where} refused the credentials ({status}) {doing}: {hint}")
        if isinstance(exc, openai.RateLimitError):
            return ApiSourceError(
                f"{where} is still rate-limiting (429) {doing} after {retries} retries. Nothing "
                "read so far is lost; run again later, or lower CONV_PIPELINE_API_CONCURRENCY"
            )
        if isinstance(exc, openai.APITimeoutError):
            return ApiSourceError(
                f"{where} did not answer in {self.config.timeout_seconds:g}s {doing}, "
                f"{retries} retries included. Nothing read so far is lost; run again, or raise "
                "CONV_PIPELINE_API_TIMEOUT_SECONDS"
            )
        if isinstance(exc, openai.APIConnectionError):
            return ApiSourceError(
                f"could not reach {where} {doing} ({retries} retries): {type(exc).__name__}. "
                "Check the endpoint and the network; nothing read so far is lost"
            )
        if isinstance(exc, openai.NotFoundError):
            return ApiSourceError(
                f"{where} answered 404 {doing}: check the endpoint "
                f"(and for Azure an api version of {MIN_API_VERSION} or later, without a "
                "deployment in the URL)"
            )
        if isinstance(exc, openai.APIStatusError):
            message = _error_message(exc)
            return ApiSourceError(
                f"{where} answered {status} {doing}"
                + (f" after {retries} retries" if status and status >= 500 else "")
                + (f": {message}" if message else "")
            )
        if isinstance(exc, ApiSourceError):
            return exc
        return ApiSourceError(f"{where}: {type(exc).__name__} {doing}: {exc}")


class _StaleCursor(Exception):
    pass


def _done(value: Any) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:300]
    return ""


def _json_object(raw: Any, config: ApiConfig, what: str) -> dict:
    try:
        value = json.loads(raw.text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiSourceError(f"{config.where()}: {what} is not valid JSON ({exc})") from exc
    if not isinstance(value, dict) or not isinstance(value.get("data", []), list):
        raise ApiSourceError(f"{config.where()}: {what} is not a list object with `data`")
    return value


def _chunk_entry(count: int, created: list[int]) -> dict[str, Any]:
    return {
        "count": count,
        "min_created": min(created) if created else None,
        "max_created": max(created) if created else None,
        "undated": len(created) < count,
    }
