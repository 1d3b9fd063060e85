"""The stand-in's in-memory store of stored completions, its validation rules and its errors.

Thread-safe (one re-entrant lock). Completions are kept as ``GET /chat/completions/{id}`` returns
them and their input messages as ``GET /chat/completions/{id}/messages`` returns them, so a record
of the export format (docs/ARCHITECTURE.md) goes in and comes out unchanged.
"""

from __future__ import annotations

import copy
import gzip
import json
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The service's limits on `metadata` (create, update and the list filter).
METADATA_MAX_KEYS = 16
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 512


class StandinAPIError(Exception):
    """An error the stand-in answers with: ``status`` and the ``{"error": {...}}`` envelope.

    A responder may raise it to make ``POST /chat/completions`` fail the way the service would
    (a content filter 400, a 429 …).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - the envelope's field name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str = "invalid_value"):
    return StandinAPIError(400, message, param=param, code=code)


def not_found_completion(completion_id: str) -> StandinAPIError:
    return StandinAPIError(
        404,
        f"No chat completion found with id '{completion_id}'.",
        param="completion_id",
        code="not_found",
    )


def validate_metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    """The service's rules: an object of at most 16 string→string pairs, keys ≤ 64 characters,
    values ≤ 512 characters. ``None`` is allowed (no metadata). Raises :class:`StandinAPIError`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(
            f"Invalid type for '{param}': expected an object, but got {_json_type(value)} instead.",
            param,
            "invalid_type",
        )
    if len(value) > METADATA_MAX_KEYS:
        raise bad_request(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{METADATA_MAX_KEYS} properties, but got an object with {len(value)} properties "
            "instead.",
            param,
            "object_above_max_properties",
        )
    for key, val in value.items():
        if len(key) > METADATA_MAX_KEY_CHARS:
            raise bad_request(
                f"Invalid '{param}': string too long. Expected a key with maximum length "
                f"{METADATA_MAX_KEY_CHARS}, but got a key with length {len(key)} instead.",
                param,
                "string_above_max_length",
            )
        if not isinstance(val, str):
            raise bad_request(
                f"Invalid type for '{param}.{key}': expected a string, but got {_json_type(val)} "
                "instead.",
                f"{param}.{key}",
                "invalid_type",
            )
        if len(val) > METADATA_MAX_VALUE_CHARS:
            raise bad_request(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"{METADATA_MAX_VALUE_CHARS}, but got a string with length {len(val)} instead.",
                f"{param}.{key}",
                "string_above_max_length",
            )
    return dict(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _sort_created(completion: dict) -> float:
    created = completion.get("created")
    if isinstance(created, int | float) and not isinstance(created, bool):
        return created
    return 0


@dataclass
class LoadSummary:
    """What :meth:`CompletionStore.load_export` did: records loaded, lines it could not use."""

    files: int = 0
    loaded: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, reason)


class CompletionStore:
    """Completions sorted by (created, id), their messages, and tombstones of deleted ones (so a
    client whose ``after`` cursor was deleted between two pages can still continue)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._completions: dict[str, dict] = {}
        self._messages: dict[str, list[dict]] = {}
        self._keys: list[tuple[float, str]] = []
        self._deleted: dict[str, tuple[float, str]] = {}

    # ---- writing ---------------------------------------------------------------------------

    def add(self, completion: dict, messages: Iterable[dict] | None = None) -> str:
        """Store ``completion`` (as GET returns it) with its input ``messages``. Messages without
        an ``id`` get ``{completion_id}-{i}``. A ``messages`` key inside ``completion`` (an export
        record) is used when ``messages`` is None. Replaces an existing record with the same id."""
        if not isinstance(completion, dict):
            raise TypeError(f"a completion must be a dict, not {type(completion).__name__}")
        record = copy.deepcopy(completion)
        inline = record.pop("messages", None)
        if messages is None:
            messages = inline or []
        cid = record.get("id")
        if not isinstance(cid, str) or not cid:
            raise ValueError("a stored completion needs a non-empty string 'id'")
        items = []
        for i, message in enumerate(messages):
            item = copy.deepcopy(message)
            if isinstance(item, dict):
                item.setdefault("id", f"{cid}-{i}")
            items.append(item)
        key = (_sort_created(record), cid)
        with self._lock:
            old = self._completions.get(cid)
            if old is not None:
                self._keys.pop(bisect_left(self._keys, (_sort_created(old), cid)))
            self._deleted.pop(cid, None)
            self._completions[cid] = record
            self._messages[cid] = items
            insort(self._keys, key)
        return cid

    def update_metadata(self, completion_id: str, metadata: dict | None) -> dict:
        with self._lock:
            record = self._completions.get(completion_id)
            if record is None:
                raise not_found_completion(completion_id)
            record["metadata"] = dict(metadata or {})
            return copy.deepcopy(record)

    def delete(self, completion_id: str) -> None:
        with self._lock:
            record = self._completions.pop(completion_id, None)
            if record is None:
                raise not_found_completion(completion_id)
            key = (_sort_created(record), completion_id)
            self._keys.pop(bisect_left(self._keys, key))
            self._messages.pop(completion_id, None)
            self._deleted[completion_id] = key

    def clear(self) -> None:
        with self._lock:
            self._completions.clear()
            self._messages.clear()
            self._keys.clear()
            self._deleted.clear()

    def load_export(self, folder: str | Path) -> LoadSummary:
        """Preload every ``*.jsonl`` / ``*.jsonl.gz`` under ``folder`` (sorted by path), one
        export record per line. The first occurrence of an id wins (like the pipeline); blank
        lines are ignored; lines that are not a JSON object with an ``id`` are listed in
        ``skipped`` with their reason."""
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"export folder not found: {root}")
        summary = LoadSummary()
        paths = sorted(
            p for p in root.rglob("*") if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz"))
        )
        with self._lock:
            for path in paths:
                summary.files += 1
                self._load_file(path, summary)
        return summary

    def _load_file(self, path: Path, summary: LoadSummary) -> None:
        for lineno, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                summary.skipped.append((str(path), lineno, f"invalid JSON: {exc}"))
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                summary.skipped.append((str(path), lineno, "not an object with a string id"))
                continue
            if record["id"] in self._completions:
                summary.duplicates += 1
                continue
            messages = record.get("messages")
            if messages is not None and not isinstance(messages, list):
                summary.skipped.append((str(path), lineno, "'messages' is not a list"))
                continue
            self.add(record)
            summary.loaded += 1

    # ---- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._completions)

    def __contains__(self, completion_id: object) -> bool:
        return completion_id in self._completions

    def get(self, completion_id: str) -> dict:
        with self._lock:
            record = self._completions.get(completion_id)
            if record is None:
                raise not_found_completion(completion_id)
            return copy.deepcopy(record)

    def messages(self, completion_id: str) -> list[dict]:
        with self._lock:
            if completion_id not in self._completions:
                raise not_found_completion(completion_id)
            return copy.deepcopy(self._messages[completion_id])

    def snapshot(self) -> list[dict]:
        """Every stored completion in ascending (created, id) order, as export records."""
        with self._lock:
            return [
                {**copy.deepcopy(self._completions[cid]), "messages": self.messages(cid)}
                for _, cid in self._keys
            ]

    def list(
        self,
        *,
        after: str | None,
        limit: int,
        order: str,
        metadata: dict[str, str],
        model: str | None,
    ) -> tuple[list[dict], bool]:
        """One page: up to ``limit`` completions after the ``after`` id in ``order`` that match
        every ``metadata`` pair and ``model``; and whether more follow."""
        with self._lock:
            keys = self._keys
            if after is None:
                start = 0 if order == "asc" else len(keys) - 1
            else:
                record = self._completions.get(after)
                key = (_sort_created(record), after) if record is not None else None
                key = key or self._deleted.get(after)
                if key is None:
                    raise bad_request(
                        f"Invalid 'after': no chat completion found with id '{after}'.", "after"
                    )
                start = bisect_right(keys, key) if order == "asc" else bisect_left(keys, key) - 1
            step = 1 if order == "asc" else -1
            page: list[dict] = []
            has_more = False
            for cid in _walk(keys, start, step):
                record = self._completions[cid]
                if model is not None and record.get("model") != model:
                    continue
                if metadata:
                    have = record.get("metadata") or {}
                    if any(have.get(k) != v for k, v in metadata.items()):
                        continue
                if len(page) == limit:
                    has_more = True
                    break
                page.append(copy.deepcopy(record))
            return page, has_more

    def list_messages(
        self, completion_id: str, *, after: str | None, limit: int, order: str
    ) -> tuple[list[dict], bool]:
        with self._lock:
            items = self.messages(completion_id)
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [m.get("id") if isinstance(m, dict) else None for m in items]
            if after not in ids:
                raise bad_request(
                    f"Invalid 'after': no message found with id '{after}' in chat completion "
                    f"'{completion_id}'.",
                    "after",
                )
            items = items[ids.index(after) + 1 :]
        return items[:limit], len(items) > limit


def _walk(keys: list[tuple[float, str]], start: int, step: int) -> Iterator[str]:
    i = start
    while 0 <= i < len(keys):
        yield keys[i][1]
        i += step


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        yield from enumerate(fh, start=1)
