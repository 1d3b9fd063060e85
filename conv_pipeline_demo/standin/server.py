"""A faithful stand-in of the Stored Completions API on loopback, for tests and local trials.

See docs/STANDIN.md. Stdlib only: a ``ThreadingHTTPServer`` in a background thread.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conv_pipeline_demo.standin.faults import Faults
from conv_pipeline_demo.standin.responder import (
    Responder,
    build_completion,
    default_responder,
    input_message_items,
    stored_form,
)
from conv_pipeline_demo.standin.store import (
    CompletionStore,
    LoadSummary,
    StandinAPIError,
    bad_request,
    validate_metadata,
)

DEFAULT_API_KEY = "standin-key"
MIN_API_VERSION = "2025-02-01-preview"
SERVICE_LIMIT_MAX = 100  # the service rejects a larger `limit`
DEFAULT_LIMIT = 20
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
SECRET_HEADERS = {"api-key", "authorization", "x-api-key", "ocp-apim-subscription-key", "cookie"}

_ROUTE = re.compile(
    r"^/(?:(?P<v1>v1)|openai/(?P<av1>v1)|openai/deployments/(?P<dep>[^/]+)|(?P<azure>openai))"
    r"/chat/completions(?:/(?P<cid>[^/]+?)(?P<msgs>/messages)?)?/?$"
)
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$")
_ALNUM = string.ascii_letters + string.digits


def _not_found() -> StandinAPIError:
    """Azure's answer for a route or api-version it does not serve."""
    return StandinAPIError(404, "Resource not found", type="not_found_error", code="404")


def _api_version_key(version: str) -> tuple[str, int] | None:
    m = _API_VERSION.match(version)
    return (m.group(1), 0 if m.group(2) else 1) if m else None


class StoredCompletionsServer:
    """The Stored Completions API on ``http://127.0.0.1:{port}`` (port 0: a free one).

    Use as a context manager (or ``start()`` / ``stop()``)::

        with StoredCompletionsServer(api_keys={"k"}) as server:
            client = OpenAI(base_url=server.openai_v1_base, api_key="k")

    Args:
        api_keys: accepted in the ``api-key`` header and as ``Authorization: Bearer <key>``.
        bearer_tokens: accepted only as ``Authorization: Bearer <token>`` (Entra ID tokens).
            With no key and no token at all, authentication is off.
        latency_ms: added to every request.
        page_size_max: the most items one list page holds (a smaller ``limit`` wins).
        responder: ``(request_json) -> str | dict`` builds the answer of ``POST
            /chat/completions`` (see :mod:`conv_pipeline_demo.standin.responder`).
        messy: list items come as the service sometimes sends them: ``object: null``,
            ``finish_reason: null`` and unknown extra fields (GET by id stays clean).
        clock: ``() -> float`` unix seconds for ``created`` (settable later: ``server.clock``).
        min_api_version: the oldest ``api-version`` accepted on ``/openai/...`` without ``v1``.
        seed: makes completion ids reproducible.
        request_log_max: keep only the latest N entries of ``request_log`` (None: all), so a
            long benchmark does not grow the server's memory with every request.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        bearer_tokens: Iterable[str] = (),
        latency_ms: float = 0,
        page_size_max: int = SERVICE_LIMIT_MAX,
        responder: Responder | None = None,
        messy: bool = False,
        clock: Callable[[], float] | None = None,
        min_api_version: str = MIN_API_VERSION,
        seed: int | None = None,
        request_log_max: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if isinstance(api_keys, str) or isinstance(bearer_tokens, str):
            raise TypeError("api_keys and bearer_tokens are collections of strings")
        if page_size_max < 1:
            raise ValueError("page_size_max must be at least 1")
        if _api_version_key(min_api_version) is None:
            raise ValueError(f"min_api_version {min_api_version!r} is not YYYY-MM-DD[-preview]")
        self.api_keys = set(api_keys)
        self.bearer_tokens = set(bearer_tokens)
        self.latency_ms = latency_ms
        self.page_size_max = page_size_max
        self.responder: Responder = responder or default_responder
        self.messy = messy
        self.clock: Callable[[], float] = clock or time.time
        self.min_api_version = min_api_version
        self.host = host
        self.port = port
        self.store = CompletionStore()
        self.faults = Faults()
        self.request_log: list[dict[str, Any]] = []
        self.request_log_max = request_log_max
        self._log_lock = threading.Lock()
        self._ids = random.Random(seed) if seed is not None else None
        self._id_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> StoredCompletionsServer:
        if self._httpd is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.standin = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes sleeping (latency, slow) requests
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StoredCompletionsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # ---- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The root, ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_v1_base(self) -> str:
        """``base_url`` of a plain ``OpenAI`` client on Azure's v1 API: ``{url}/openai/v1``."""
        return f"{self.url}/openai/v1"

    @property
    def azure_endpoint(self) -> str:
        """``azure_endpoint`` of an ``AzureOpenAI`` client (with ``api_version``)."""
        return self.url

    @property
    def v1_base(self) -> str:
        """``base_url`` of a plain ``OpenAI`` client on the OpenAI shape: ``{url}/v1``."""
        return f"{self.url}/v1"

    # ---- data ------------------------------------------------------------------------------

    def add(self, completion: dict, messages: Iterable[dict] | None = None) -> str:
        """Preload one stored completion (as GET returns it; kept verbatim, messy or not) with
        its input messages (ids ``{id}-{i}`` added where missing). Returns the id."""
        return self.store.add(completion, messages)

    def load_export(self, folder: str | Path) -> LoadSummary:
        """Preload an export folder (``*.jsonl``, ``*.jsonl.gz``; the export format of docs/ARCHITECTURE.md)."""
        return self.store.load_export(folder)

    @property
    def completions(self) -> list[dict]:
        """Every stored completion (ascending created, id) as export records (with messages)."""
        return self.store.snapshot()

    def get(self, completion_id: str) -> dict:
        return self.store.get(completion_id)

    def messages(self, completion_id: str) -> list[dict]:
        return self.store.messages(completion_id)

    def requests(self, *, method: str | None = None, path_contains: str | None = None) -> list:
        """The logged requests, optionally only one method / paths containing a text."""
        with self._log_lock:
            return [
                r
                for r in self.request_log
                if (method is None or r["method"] == method.upper())
                and (path_contains is None or path_contains in r["path"])
            ]

    def new_completion_id(self) -> str:
        with self._id_lock:
            if self._ids is not None:
                tail = "".join(self._ids.choice(_ALNUM) for _ in range(29))
            else:
                tail = "".join(secrets.choice(_ALNUM) for _ in range(29))
        return f"chatcmpl-{tail}"

    # ---- request handling (called by the handler threads) ----------------------------------

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _log(self, entry: dict) -> None:
        with self._log_lock:
            self.request_log.append(entry)
            limit = self.request_log_max
            if limit is not None and len(self.request_log) > limit:
                del self.request_log[: len(self.request_log) - limit]

    def _authenticate(self, headers: dict[str, str], shape: str) -> str:
        if not self.api_keys and not self.bearer_tokens:
            return "none"
        key = headers.get("api-key")
        if key is not None and key in self.api_keys:
            return "api_key"
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
            if token in self.bearer_tokens:
                return "bearer_token"
            if token in self.api_keys:
                return "bearer_api_key"
        if shape == "v1":
            if key is None and not auth:
                msg = "You didn't provide an API key. Provide it in the Authorization header."
                raise StandinAPIError(401, msg, code="missing_api_key")
            raise StandinAPIError(401, "Incorrect API key provided.", code="invalid_api_key")
        raise StandinAPIError(
            401,
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
            type="invalid_request_error",
            code="401",
        )

    def _check_api_version(self, query: dict[str, str], shape: str) -> None:
        if shape not in ("azure", "azure_deployment"):
            return
        version = query.get("api-version")
        if not version:
            raise _not_found()
        key = _api_version_key(version)
        if key is None:
            raise StandinAPIError(
                400, "API version not supported", param="api-version", code="BadRequest"
            )
        if key < _api_version_key(self.min_api_version):
            raise _not_found()

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        entry: dict | None = None,
    ) -> tuple[int, dict, str]:
        """Route one request: (status, JSON body, shape). ``entry`` (the request's log entry)
        gets the kind of credential that was accepted."""
        m = _ROUTE.match(path)
        if m is None:
            raise _not_found()
        if m["v1"]:
            shape = "v1"
        elif m["av1"]:
            shape = "azure_v1"
        elif m["dep"]:
            shape = "azure_deployment"
        else:
            shape = "azure"
        cid, msgs = m["cid"], m["msgs"]
        auth = self._authenticate(headers, shape)
        if entry is not None:
            entry["auth"] = auth
        self._check_api_version(query, shape)
        if shape == "azure_deployment" and (cid is not None or method != "POST"):
            # Azure serves only the inference call under /deployments/: this is where an
            # AzureOpenAI client built with `azure_deployment` sends its list call.
            raise _not_found()
        if cid is None:
            if method == "POST":
                return 200, self._create(body, m["dep"], shape), shape
            if method == "GET":
                return 200, self._list(query), shape
        elif msgs:
            if method == "GET":
                return 200, self._list_messages(cid, query), shape
        elif method == "GET":
            return 200, self.store.get(cid), shape
        elif method == "POST":
            if not isinstance(body, dict) or "metadata" not in body:
                raise bad_request(
                    "Missing required parameter: 'metadata'.",
                    "metadata",
                    "missing_required_parameter",
                )
            return 200, self.store.update_metadata(cid, validate_metadata(body["metadata"])), shape
        elif method == "DELETE":
            self.store.delete(cid)
            return 200, {"object": "chat.completion.deleted", "id": cid, "deleted": True}, shape
        raise StandinAPIError(
            405, f"Method {method} is not allowed on {path}.", code="method_not_allowed"
        )

    def _create(self, body: Any, deployment: str | None, shape: str) -> dict:
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.", None, "invalid_type")
        request = copy.deepcopy(body)
        if deployment and not request.get("model"):
            request["model"] = deployment
        messages = request.get("messages")
        if messages is None:
            raise bad_request(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        if not isinstance(messages, list) or not messages:
            raise bad_request(
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                "messages",
                "empty_array",
            )
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise bad_request(
                    f"Invalid value for 'messages[{i}].role': expected one of "
                    f"{', '.join(sorted(ROLES))}.",
                    f"messages[{i}].role",
                )
        if not isinstance(request.get("model"), str) or not request["model"]:
            raise bad_request(
                "Missing required parameter: 'model'.", "model", "missing_required_parameter"
            )
        store = request.get("store")
        if store is not None and not isinstance(store, bool):
            raise bad_request(
                "Invalid type for 'store': expected a boolean.", "store", "invalid_type"
            )
        request["metadata"] = validate_metadata(request.get("metadata"))
        if request.get("stream"):
            raise bad_request(
                "The stand-in does not stream: 'stream' must be false.", "stream", "unsupported"
            )
        reply = self.responder(copy.deepcopy(request))
        cid = self.new_completion_id()
        completion = build_completion(
            request,
            reply,
            completion_id=cid,
            created=int(self.clock()),
            request_id=f"req_{secrets.token_hex(16)}",
        )
        if store:
            self.store.add(
                stored_form(request, completion),
                input_message_items(completion["id"], messages),
            )
        if shape.startswith("azure"):
            completion.setdefault(
                "prompt_filter_results",
                [{"prompt_index": 0, "content_filter_results": _SAFE_FILTERS}],
            )
            for choice in completion.get("choices") or []:
                if isinstance(choice, dict):
                    choice.setdefault("content_filter_results", _SAFE_FILTERS)
        return completion

    def _page_params(self, query: dict[str, str]) -> tuple[str | None, int, str]:
        raw = query.get("limit")
        if raw is None:
            limit = DEFAULT_LIMIT
        else:
            try:
                limit = int(raw)
            except ValueError:
                raise bad_request(
                    f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
                    "limit",
                    "invalid_type",
                ) from None
            if limit < 1:
                raise bad_request(
                    "Invalid 'limit': integer below minimum value. Expected a value >= 1, "
                    f"but got {limit} instead.",
                    "limit",
                    "integer_below_min_value",
                )
            if limit > SERVICE_LIMIT_MAX:
                raise bad_request(
                    "Invalid 'limit': integer above maximum value. Expected a value <= "
                    f"{SERVICE_LIMIT_MAX}, but got {limit} instead.",
                    "limit",
                    "integer_above_max_value",
                )
        order = query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise bad_request(
                f"Invalid value for 'order': expected one of asc, desc, but got '{order}'.",
                "order",
            )
        return query.get("after") or None, min(limit, self.page_size_max), order

    def _list(self, query: dict[str, str]) -> dict:
        after, limit, order = self._page_params(query)
        metadata = {
            k[9:-1]: v for k, v in query.items() if k.startswith("metadata[") and k[-1:] == "]"
        }
        validate_metadata(metadata)
        page, has_more = self.store.list(
            after=after, limit=limit, order=order, metadata=metadata, model=query.get("model")
        )
        if self.messy:
            page = [_messy(item) for item in page]
        return _envelope(page, has_more)

    def _list_messages(self, completion_id: str, query: dict[str, str]) -> dict:
        after, limit, order = self._page_params(query)
        page, has_more = self.store.list_messages(
            completion_id, after=after, limit=limit, order=order
        )
        return _envelope(page, has_more)


_SAFE_FILTERS = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}


def _envelope(page: list[dict], has_more: bool) -> dict:
    def ident(item: Any) -> Any:
        return item.get("id") if isinstance(item, dict) else None

    return {
        "object": "list",
        "data": page,
        "first_id": ident(page[0]) if page else None,
        "last_id": ident(page[-1]) if page else None,
        "has_more": has_more,
    }


def _messy(item: dict) -> dict:
    """A list item as the service sometimes returns it."""
    item["object"] = None
    for choice in item.get("choices") or []:
        if isinstance(choice, dict):
            choice["finish_reason"] = None
    item["x_standin_unknown_field"] = {"note": "fields a client does not know", "n": [1, None]}
    return item


def _redact(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if name in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} [redacted]".strip()
        out[name] = value
    return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    standin: StoredCompletionsServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close idle keep-alive connections, so their threads end with the server."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle and the client's delayed ACK add ~40 ms to every keep-alive
    # answer, which no real service does; answers also go out in one write (see _send).
    disable_nagle_algorithm = True
    server_version = "conv-pipeline-standin/1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # quiet: the request log is server.request_log

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        standin = self.server.standin
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "headers": _redact(headers),
            "auth": None,
            "status": None,
            "fault": None,
            "time": time.time(),
        }
        standin._log(entry)
        standin._sleep(standin.latency_ms / 1000)
        request_id = secrets.token_hex(16)
        rule = standin.faults.take(method, path)
        if rule is not None:
            entry["fault"] = rule.kind
            if rule.kind == "drop":
                entry["status"] = "dropped"
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if rule.kind == "slow":
                standin._sleep(rule.delay_s)
            else:
                self._send_error(entry, _fault_error(rule), request_id)
                return
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._send_error(
                entry,
                bad_request(
                    "We could not parse the JSON body of your request. The request body must be "
                    "valid JSON.",
                    None,
                    "invalid_json",
                ),
                request_id,
            )
            return
        try:
            status, payload, _shape = standin.handle(method, path, query, headers, body, entry)
        except StandinAPIError as exc:
            self._send_error(entry, exc, request_id)
            return
        except Exception as exc:  # a responder bug: answer 500 like a service would
            err = StandinAPIError(
                500,
                f"The stand-in failed: {type(exc).__name__}: {exc}",
                type="server_error",
                code="server_error",
            )
            self._send_error(entry, err, request_id)
            return
        self._send(entry, status, payload, request_id)

    def _send_error(self, entry: dict, exc: StandinAPIError, request_id: str) -> None:
        self._send(entry, exc.status, exc.envelope(), request_id, exc.headers)

    def _send(
        self,
        entry: dict,
        status: int,
        payload: dict,
        request_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        entry["status"] = status
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.send_header("apim-request-id", request_id)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self._headers_buffer.append(b"\r\n" + data)  # one write: headers + body
            self.flush_headers()
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True


def _fault_error(rule: Any) -> StandinAPIError:
    if rule.kind == "429":
        seconds = max(1, -(-rule.retry_after_ms // 1000))
        return StandinAPIError(
            429,
            "Requests to the ChatCompletions Operation under Azure OpenAI API version "
            "2025-02-01-preview have exceeded token rate limit of your current pricing tier. "
            f"Please retry after {seconds} seconds.",
            type="requests",
            code="429",
            headers={"retry-after-ms": str(rule.retry_after_ms), "retry-after": str(seconds)},
        )
    if rule.kind == "503":
        return StandinAPIError(
            503,
            "The service is temporarily unable to process your request. Please try again later.",
            type="server_error",
            code="service_unavailable",
        )
    return StandinAPIError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        code="server_error",
    )
