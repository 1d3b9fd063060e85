"""The Stored Completions stand-in, driven by the real ``openai`` SDK over loopback HTTP.

Every test talks to the server through ``OpenAI`` / ``AzureOpenAI`` clients (or raw ``urllib``
where the SDK cannot express the request), so these tests are also the proof that the stand-in
speaks the API the SDK expects.
"""

from __future__ import annotations

import gzip
import json
import json as _json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import openai
import pytest
from openai import AzureOpenAI, OpenAI

from conv_pipeline.cli import main as cli
from conv_pipeline_demo.standin import (
    DEFAULT_API_KEY,
    StandinAPIError,
    StoredCompletionsServer,
    default_responder,
    scripted,
)

KEY = "test-key-0123456789"
TOKEN = "entra-token-abcdef"
API_VERSION = "2025-02-01-preview"
T0 = 1_741_593_600  # 2025-03-10 08:00:00 UTC


class Clock:
    """A settable clock for ``created``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Raw:
    """A bare HTTP answer (for requests the SDK cannot make)."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self):
        return json.loads(self.body)


def raw(method, url, *, headers=None, params=None, json=None, content=None) -> Raw:  # noqa: A002
    """One request with the standard library."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    headers = dict(headers or {})
    if json is not None:
        content = _json.dumps(json).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=content, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Raw(resp.status, resp.read())
    except urllib.error.HTTPError as err:
        return Raw(err.code, err.read())


@pytest.fixture
def server():
    with StoredCompletionsServer(api_keys={KEY}, bearer_tokens={TOKEN}, clock=Clock()) as s:
        yield s


def v1_client(server: StoredCompletionsServer, **kw) -> OpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("api_key", KEY)
    return OpenAI(base_url=server.openai_v1_base, **kw)


def azure_client(server: StoredCompletionsServer, **kw) -> AzureOpenAI:
    kw.setdefault("max_retries", 0)
    if "azure_ad_token_provider" not in kw:
        kw.setdefault("api_key", KEY)
    return AzureOpenAI(azure_endpoint=server.azure_endpoint, api_version=API_VERSION, **kw)


def record(i: int, *, created: int | None = None, **fields) -> dict:
    """An export record (completion as GET returns it + messages)."""
    cid = fields.pop("id", f"chatcmpl-{i:06d}")
    rec = {
        "id": cid,
        "object": "chat.completion",
        "created": T0 + i if created is None else created,
        "model": fields.pop("model", "gpt-4o-mini-2024-07-18"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {i}", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        "metadata": fields.pop("metadata", {}),
        "messages": [
            {
                "id": f"{cid}-0",
                "role": "user",
                "content": f"question {i}",
                "name": None,
                "content_parts": None,
            }
        ],
    }
    rec.update(fields)
    return rec


# ---- lifecycle and addresses -----------------------------------------------------------------


def test_starts_on_a_free_loopback_port_and_stops_cleanly():
    server = StoredCompletionsServer()
    with server:
        assert server.running and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.openai_v1_base == f"{server.url}/openai/v1"
        assert server.v1_base == f"{server.url}/v1"
        assert server.azure_endpoint == server.url
        client = OpenAI(base_url=server.v1_base, api_key=DEFAULT_API_KEY, max_retries=0)
        assert client.chat.completions.list().data == []
    assert not server.running
    with pytest.raises(urllib.error.URLError):
        raw("GET", f"{server.url}/v1/chat/completions")


# ---- the whole life of a stored completion -----------------------------------------------------


def test_create_list_retrieve_messages_update_delete_with_the_v1_client(server):
    client = v1_client(server)
    messages = [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "Where is my invoice?"},
        {"role": "assistant", "content": "In Billing."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "And the "}, {"type": "text", "text": "PDF?"}],
        },
        {"role": "user", "content": "Thanks", "name": "alice"},
    ]
    created = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        store=True,
        metadata={"user_type": "pro", "category": "billing"},
        temperature=0.2,
        user="u-1",
    )
    assert created.id.startswith("chatcmpl-") and len(created.id) == len("chatcmpl-") + 29
    assert created.object == "chat.completion"
    assert created.created == T0
    assert created.model == "gpt-4o"
    assert created.choices[0].finish_reason == "stop"
    assert created.choices[0].message.role == "assistant"
    answer = created.choices[0].message.content
    assert answer == default_responder({"messages": messages})
    assert "PDF" not in answer and "Thanks" in answer  # from the LAST user message
    usage = created.usage
    assert usage.prompt_tokens > 5 * 4 and usage.completion_tokens > 20
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert created.metadata == {"user_type": "pro", "category": "billing"}

    listed = client.chat.completions.list()
    assert [c.id for c in listed.data] == [created.id]
    assert listed.has_more is False

    got = client.chat.completions.retrieve(created.id)
    assert got.choices[0].message.content == answer
    assert got.metadata == {"user_type": "pro", "category": "billing"}
    assert got.model_extra["temperature"] == 0.2 and got.model_extra["input_user"] == "u-1"

    # messages, two per page
    page = client.chat.completions.messages.list(created.id, limit=2)
    assert [m.id for m in page.data] == [f"{created.id}-0", f"{created.id}-1"]
    assert page.has_more is True
    items = list(client.chat.completions.messages.list(created.id, limit=2))
    assert [m.id for m in items] == [f"{created.id}-{i}" for i in range(5)]
    assert [m.role for m in items] == [m["role"] for m in messages]
    assert items[3].content == "And the PDF?"
    assert [p.text for p in items[3].content_parts] == ["And the ", "PDF?"]
    assert items[4].name == "alice" and items[4].content_parts is None
    desc = client.chat.completions.messages.list(created.id, order="desc", limit=3)
    assert [m.id for m in desc.data] == [f"{created.id}-{i}" for i in (4, 3, 2)]

    updated = client.chat.completions.update(created.id, metadata={"reviewed": "yes"})
    assert updated.metadata == {"reviewed": "yes"}
    assert client.chat.completions.retrieve(created.id).metadata == {"reviewed": "yes"}
    assert client.chat.completions.list(metadata={"category": "billing"}).data == []

    deleted = client.chat.completions.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        created.id,
        True,
        "chat.completion.deleted",
    )
    for call in (
        lambda: client.chat.completions.retrieve(created.id),
        lambda: client.chat.completions.messages.list(created.id),
        lambda: client.chat.completions.update(created.id, metadata={}),
        lambda: client.chat.completions.delete(created.id),
    ):
        with pytest.raises(openai.NotFoundError) as err:
            call()
        assert err.value.body["code"] == "not_found"
    assert client.chat.completions.list().data == []
    assert server.completions == []


def test_store_false_answers_without_storing(server):
    client = v1_client(server)
    for store in (False, None):
        kwargs = {"store": store} if store is not None else {}
        done = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], **kwargs
        )
        assert done.choices[0].message.content
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(done.id)
    assert server.completions == []


def test_azure_client_with_api_key_uses_the_azure_paths(server):
    client = azure_client(server)
    done = client.chat.completions.create(
        model="gpt-4o-deploy", messages=[{"role": "user", "content": "hi"}], store=True
    )
    assert done.model == "gpt-4o-deploy"  # the deployment name became the model
    assert done.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert client.chat.completions.retrieve(done.id).id == done.id
    assert [c.id for c in client.chat.completions.list()] == [done.id]
    assert [m.content for m in client.chat.completions.messages.list(done.id)] == ["hi"]
    assert client.chat.completions.update(done.id, metadata={"k": "v"}).metadata == {"k": "v"}
    assert client.chat.completions.delete(done.id).deleted

    paths = [(r["method"], r["path"]) for r in server.request_log]
    assert paths == [
        ("POST", "/openai/deployments/gpt-4o-deploy/chat/completions"),
        ("GET", f"/openai/chat/completions/{done.id}"),
        ("GET", "/openai/chat/completions"),
        ("GET", f"/openai/chat/completions/{done.id}/messages"),
        ("POST", f"/openai/chat/completions/{done.id}"),
        ("DELETE", f"/openai/chat/completions/{done.id}"),
    ]
    for entry in server.request_log:
        assert entry["query"]["api-version"] == API_VERSION
        assert entry["auth"] == "api_key"
        assert entry["headers"]["api-key"] == "[redacted]"
        assert "authorization" not in entry["headers"]
    assert KEY not in json.dumps(server.request_log)


def test_entra_id_bearer_token_is_sent_and_accepted(server):
    calls = []

    def provider() -> str:
        calls.append(1)
        return TOKEN

    client = azure_client(server, azure_ad_token_provider=provider)
    done = client.chat.completions.create(
        model="d", messages=[{"role": "user", "content": "hi"}], store=True
    )
    client.chat.completions.list()
    assert len(calls) == 2  # asked for every request
    for entry in server.request_log:
        assert entry["auth"] == "bearer_token"
        assert entry["headers"]["authorization"] == "Bearer [redacted]"
        assert "api-key" not in entry["headers"]
    assert TOKEN not in json.dumps(server.request_log)
    assert server.get(done.id)["model"] == "d"
    # a token is not a key: the api-key header does not accept it
    bad = azure_client(server, api_key=TOKEN)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.list()


def test_the_plain_v1_shape_and_bearer_api_keys(server):
    client = OpenAI(base_url=server.v1_base, api_key=KEY, max_retries=0)
    done = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], store=True
    )
    assert client.chat.completions.retrieve(done.id).id == done.id
    assert {r["auth"] for r in server.request_log} == {"bearer_api_key"}
    assert {r["path"].split("/chat")[0] for r in server.request_log} == {"/v1"}
    # a stored completion is one store, whichever URL shape created it
    assert azure_client(server).chat.completions.retrieve(done.id).id == done.id
    assert v1_client(server).chat.completions.retrieve(done.id).id == done.id


# ---- auth and api versions -------------------------------------------------------------------


def test_missing_or_wrong_credentials_are_401(server):
    # the OpenAI shape answers like OpenAI, the Azure shapes like Azure
    plain = OpenAI(base_url=server.v1_base, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        plain.chat.completions.list()
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError) as err:
        v1_client(server, api_key="wrong").chat.completions.list()
    assert err.value.body["code"] == "401"
    with pytest.raises(openai.AuthenticationError) as err:
        azure_client(server, api_key="wrong").chat.completions.list()
    assert err.value.body["code"] == "401"
    with pytest.raises(openai.AuthenticationError):
        azure_client(server, azure_ad_token_provider=lambda: "expired").chat.completions.list()
    answer = raw("GET", f"{server.v1_base}/chat/completions")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
    assert answer.json()["error"]["code"] == "missing_api_key"
    assert raw("GET", f"{server.openai_v1_base}/chat/completions").status_code == 401
    assert [r["auth"] for r in server.request_log] == [None] * 6


def test_auth_is_off_without_any_key_or_token():
    with StoredCompletionsServer(api_keys=(), bearer_tokens=()) as s:
        assert raw("GET", f"{s.v1_base}/chat/completions").status_code == 200
        assert s.request_log[0]["auth"] == "none"


def test_api_version_is_required_and_must_be_recent_on_the_azure_shape(server):
    headers = {"api-key": KEY}
    base = f"{server.url}/openai/chat/completions"
    missing = raw("GET", base, headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Resource not found"
    garbage = raw("GET", base, params={"api-version": "latest-ish"}, headers=headers)
    assert garbage.status_code == 400 and garbage.json()["error"]["param"] == "api-version"
    for old in ("2024-10-21", "2024-10-01-preview", "2025-01-01-preview"):
        client = AzureOpenAI(
            azure_endpoint=server.azure_endpoint, api_version=old, api_key=KEY, max_retries=0
        )
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.list()
    for ok in ("2025-02-01-preview", "2025-04-01-preview", "2025-03-01"):
        assert raw("GET", base, params={"api-version": ok}, headers=headers).status_code == 200
    # the v1 shapes need none
    assert (
        raw("GET", f"{server.openai_v1_base}/chat/completions", headers=headers).status_code == 200
    )


def test_an_azure_deployment_on_the_client_sends_list_to_a_404(server):
    """The SDK quirk from issue 3: with ``azure_deployment`` the list call goes under
    /openai/deployments/{name}/, which Azure does not serve; create still works there."""
    client = azure_client(server, azure_deployment="dep")
    done = client.chat.completions.create(
        model="ignored", messages=[{"role": "user", "content": "hi"}], store=True
    )
    assert server.get(done.id)["model"] == "ignored"  # the body's model wins
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.list()
    assert server.request_log[-1]["path"] == "/openai/deployments/dep/chat/completions"
    assert server.request_log[-1]["method"] == "GET"
    # retrieve is not a deployments endpoint: the SDK sends it to /openai/chat/completions/{id}
    assert client.chat.completions.retrieve(done.id).id == done.id
    # a deployment without a model in the body: the deployment name is the model
    answer = raw(
        "POST",
        f"{server.url}/openai/deployments/dep/chat/completions",
        params={"api-version": API_VERSION},
        headers={"api-key": KEY},
        json={"messages": [{"role": "user", "content": "hi"}], "store": True},
    )
    assert answer.status_code == 200 and answer.json()["model"] == "dep"


# ---- listing -------------------------------------------------------------------------------


def test_list_pages_through_everything_in_order_with_after(server):
    # 250 completions; created collide in groups of 3 so the id breaks ties
    recs = [
        record(i, created=T0 + i // 3, id=f"chatcmpl-{(i * 7919) % 1000:04d}") for i in range(250)
    ]
    for rec in reversed(recs):
        server.add(rec)
    expected = [r["id"] for r in sorted(recs, key=lambda r: (r["created"], r["id"]))]
    client = v1_client(server)

    first = client.chat.completions.list(limit=7)
    assert [c.id for c in first.data] == expected[:7]
    assert first.has_more is True
    assert first.model_extra["first_id"] == expected[0]
    assert first.model_extra["last_id"] == expected[6]
    second = client.chat.completions.list(limit=7, after=first.data[-1].id)
    assert [c.id for c in second.data] == expected[7:14]

    seen = [c.id for c in client.chat.completions.list(limit=7)]  # the SDK follows `after`
    assert seen == expected
    lists = server.requests(method="GET", path_contains="/chat/completions")[-36:]
    assert len(server.requests(method="GET")) == 2 + 36  # ceil(250 / 7) pages
    assert lists[-1]["query"]["after"] == expected[244]  # the last page holds the last 5

    assert [c.id for c in client.chat.completions.list(order="desc", limit=100)] == expected[::-1]
    default_page = client.chat.completions.list()
    assert len(default_page.data) == 20  # the default limit
    last = client.chat.completions.list(after=expected[-1])
    assert last.data == [] and last.has_more is False
    assert last.model_extra["first_id"] is None and last.model_extra["last_id"] is None


def test_page_size_max_caps_pages_and_limit_above_100_is_rejected():
    with StoredCompletionsServer(api_keys={KEY}, page_size_max=10) as server:
        for i in range(35):
            server.add(record(i))
        client = v1_client(server)
        page = client.chat.completions.list(limit=100)
        assert len(page.data) == 10 and page.has_more is True
        assert len(list(client.chat.completions.list(limit=100))) == 35
        for bad, code in ((101, "integer_above_max_value"), (0, "integer_below_min_value")):
            with pytest.raises(openai.BadRequestError) as err:
                client.chat.completions.list(limit=bad)
            assert err.value.body["param"] == "limit" and err.value.body["code"] == code
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.list(extra_query={"limit": "ten"})
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.list(extra_query={"order": "sideways"})
        assert err.value.body["param"] == "order"
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.list(after="chatcmpl-unknown")
        assert err.value.body["param"] == "after"


def test_list_filters_by_metadata_and_model(server):
    for i in range(60):
        server.add(
            record(
                i,
                model=("gpt-4o", "gpt-4o-mini")[i % 2],
                metadata={"category": ("billing", "tech", "account")[i % 3], "v": str(i % 4)},
            )
        )
    client = v1_client(server)
    billing = [
        c.id for c in client.chat.completions.list(metadata={"category": "billing"}, limit=4)
    ]
    assert billing == [f"chatcmpl-{i:06d}" for i in range(0, 60, 3)]
    both = list(client.chat.completions.list(metadata={"category": "billing", "v": "0"}, limit=2))
    assert [c.id for c in both] == [f"chatcmpl-{i:06d}" for i in range(60) if i % 12 == 0]
    assert all(c.metadata["category"] == "billing" and c.metadata["v"] == "0" for c in both)
    mini_tech = list(
        client.chat.completions.list(model="gpt-4o-mini", metadata={"category": "tech"}, limit=3)
    )
    assert [c.id for c in mini_tech] == [f"chatcmpl-{i:06d}" for i in range(60) if i % 6 == 1]
    assert client.chat.completions.list(model="gpt-5").data == []
    assert client.chat.completions.list(metadata={"category": "nope"}).data == []


def test_messy_list_items_parse_and_keep_their_extra_fields():
    with StoredCompletionsServer(api_keys={KEY}, messy=True) as server:
        server.add(record(1, service_tier="default", x_vendor={"a": 1}))
        # per item: the ugly shapes, stored verbatim
        server.add(record(2, choices=[]))
        server.add(
            record(
                3,
                choices=[
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "refusal": None,
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "lookup", "arguments": '{"q": 1}'},
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
            )
        )
        server.add(
            record(
                4,
                choices=[
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                        "finish_reason": "stop",
                    }
                ],
            ),
            messages=[
                {
                    "role": "user",
                    "content": None,
                    "content_parts": [{"type": "text", "text": "part"}],
                }
            ],
        )
        client = v1_client(server)
        items = list(client.chat.completions.list())
        assert [c.id for c in items] == [f"chatcmpl-{i:06d}" for i in (1, 2, 3, 4)]
        assert all(c.object is None for c in items)
        assert items[0].choices[0].finish_reason is None
        assert items[0].model_extra["x_vendor"] == {"a": 1}
        assert "x_standin_unknown_field" in items[0].model_extra
        assert items[1].choices == []
        assert items[2].choices[0].message.tool_calls[0].function.name == "lookup"
        assert items[3].choices[0].message.refusal == "I can't."
        msg = client.chat.completions.messages.list(items[3].id).data[0]
        assert msg.id == f"{items[3].id}-0" and msg.content_parts[0].text == "part"
        # retrieve is the clean form
        one = client.chat.completions.retrieve(items[0].id)
        assert one.object == "chat.completion" and one.choices[0].finish_reason == "stop"


# ---- validation and the error envelope -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        (
            {"metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
            "object_above_max_properties",
        ),
        ({"metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
        ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"metadata": ["k"]}, "metadata", "invalid_type"),
        ({"store": "yes"}, "store", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"model": ""}, "model", "missing_required_parameter"),
    ],
)
def test_create_validates_like_the_service(server, kwargs, param, code):
    args = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "store": True}
    args.update(kwargs)
    with pytest.raises(openai.BadRequestError) as err:
        v1_client(server).chat.completions.create(**args)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param and err.value.body["code"] == code
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["message"]
    assert server.completions == []


def test_metadata_at_the_limits_is_accepted(server):
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    client = v1_client(server)
    done = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], store=True, metadata=metadata
    )
    assert client.chat.completions.retrieve(done.id).metadata == metadata
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.update(done.id, metadata={**metadata, "one-more": "x"})
    assert client.chat.completions.retrieve(done.id).metadata == metadata


def test_bad_json_missing_messages_and_unknown_routes_have_the_envelope(server):
    headers = {"api-key": KEY, "content-type": "application/json"}
    url = f"{server.openai_v1_base}/chat/completions"
    bad = raw("POST", url, headers=headers, content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    missing = raw("POST", url, headers=headers, json={"model": "m"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    nowhere = raw("GET", f"{server.url}/openai/v1/embeddings", headers=headers)
    assert nowhere.status_code == 404 and set(nowhere.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    put = raw("PUT", url, headers=headers, json={})
    assert put.status_code == 405
    no_meta = raw("POST", f"{url}/chatcmpl-x", headers=headers, json={})
    assert no_meta.status_code == 400 and no_meta.json()["error"]["param"] == "metadata"
    streaming = raw(
        "POST",
        url,
        headers=headers,
        json={"model": "m", "stream": True, "messages": [{"role": "user"}]},
    )
    assert streaming.status_code == 400 and streaming.json()["error"]["param"] == "stream"


# ---- responders ---------------------------------------------------------------------------


def test_responders_may_return_text_a_message_a_choice_or_a_whole_completion():
    replies = iter(
        [
            '{"score": 4}',
            {"content": None, "refusal": "I can't help with that."},
            {"message": {"content": "cut"}, "finish_reason": "length"},
            {
                "id": "chatcmpl-judge-1",
                "model": "judge-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "A"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        ]
    )
    seen = []

    def responder(request: dict):
        seen.append(request)
        return next(replies)

    with StoredCompletionsServer(api_keys={KEY}, responder=responder) as server:
        client = azure_client(server)
        ask = {"messages": [{"role": "user", "content": "judge this"}], "store": True}
        text = client.chat.completions.create(model="judge-dep", **ask)
        assert text.choices[0].message.content == '{"score": 4}'
        assert seen[0]["model"] == "judge-dep" and seen[0]["messages"] == ask["messages"]
        refusal = client.chat.completions.create(model="d", **ask)
        assert refusal.choices[0].message.refusal == "I can't help with that."
        assert refusal.choices[0].message.content is None
        cut = client.chat.completions.create(model="d", **ask)
        assert cut.choices[0].finish_reason == "length"
        whole = client.chat.completions.create(model="d", **ask)
        assert (whole.id, whole.model, whole.usage.total_tokens) == (
            "chatcmpl-judge-1",
            "judge-model",
            2,
        )
        assert whole.created == int(whole.created) and whole.object == "chat.completion"
        assert server.get("chatcmpl-judge-1")["choices"][0]["message"]["content"] == "A"
        assert len(server.completions) == 4


def test_a_responder_can_fail_like_the_service():
    def responder(request: dict):
        raise StandinAPIError(
            400, "The response was filtered", param="prompt", code="content_filter"
        )

    with StoredCompletionsServer(api_keys={KEY}, responder=responder) as server:
        with pytest.raises(openai.BadRequestError) as err:
            v1_client(server).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], store=True
            )
        assert err.value.body["code"] == "content_filter"
        assert server.completions == []


def test_a_scripted_responder_answers_in_order_then_fails_or_cycles():
    judgments = [
        '{"score": 5}',
        StandinAPIError(429, "busy", type="requests", code="429"),
        '{"score": 1}',
    ]
    with StoredCompletionsServer(api_keys={KEY}, responder=scripted(judgments)) as server:
        client = v1_client(server)
        ask = {"model": "judge", "messages": [{"role": "user", "content": "rate"}]}
        assert client.chat.completions.create(**ask).choices[0].message.content == '{"score": 5}'
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(**ask)
        assert client.chat.completions.create(**ask).choices[0].message.content == '{"score": 1}'
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(**ask)
        assert err.value.body["code"] == "script_exhausted"
        server.responder = scripted(["a", "b"], cycle=True)
        answers = [
            client.chat.completions.create(**ask).choices[0].message.content for _ in range(5)
        ]
        assert answers == ["a", "b", "a", "b", "a"]


def test_tool_calls_from_a_responder_and_max_tokens_truncation(server):
    def tools(request):
        return {
            "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]
        }

    server.responder = tools
    client = v1_client(server)
    done = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert done.choices[0].finish_reason == "tool_calls"
    assert done.choices[0].message.tool_calls[0].id == "call_9"
    server.responder = default_responder
    short = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], max_completion_tokens=5
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 5
    assert default_responder({"messages": [{"role": "user", "content": "x"}]}).startswith(
        short.choices[0].message.content
    )


def test_the_clock_sets_created(server):
    client = v1_client(server)
    server.clock.now = T0 + 3600.7
    done = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], store=True
    )
    assert done.created == T0 + 3600
    assert client.chat.completions.retrieve(done.id).created == T0 + 3600


# ---- faults -------------------------------------------------------------------------------


def test_429_carries_retry_after_headers_and_the_sdk_retries_it(server):
    rule = server.faults.add("429", times=2, retry_after_ms=30)
    with pytest.raises(openai.RateLimitError) as err:
        v1_client(server).chat.completions.list()
    assert err.value.response.headers["retry-after-ms"] == "30"
    assert err.value.response.headers["retry-after"] == "1"
    assert err.value.body["code"] == "429"
    assert rule.fired == 1
    # the second shot is absorbed by the SDK's retry, the third request succeeds
    assert v1_client(server, max_retries=2).chat.completions.list().data == []
    assert rule.fired == 2 and server.faults.fired == 2
    assert [r["status"] for r in server.request_log] == [429, 429, 200]
    assert server.request_log[2]["headers"]["x-stainless-retry-count"] == "1"


@pytest.mark.parametrize(
    ("kind", "error"),
    [("500", openai.InternalServerError), ("503", openai.InternalServerError)],
)
def test_server_errors_reach_the_sdk_and_retries_recover(server, kind, error):
    server.faults.add(kind, times=2)
    with pytest.raises(error) as err:
        v1_client(server).chat.completions.list()
    assert err.value.status_code == int(kind)
    assert err.value.body["type"] == "server_error"
    assert azure_client(server, max_retries=1).chat.completions.list().data == []
    assert server.faults.fired_by_kind() == {kind: 2}
    assert [r["status"] for r in server.request_log] == [int(kind), int(kind), 200]


def test_a_slow_answer_times_the_client_out_and_is_still_processed(server):
    server.faults.add("slow", delay_s=1.0, method="POST")
    client = v1_client(server, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], store=True
        )
    assert client.chat.completions.list().data == []  # GET is not slowed
    # like the real service the request was still carried out: a retry would duplicate it
    deadline = threading.Event()
    for _ in range(40):
        if server.completions:
            break
        deadline.wait(0.05)
    assert len(server.completions) == 1
    assert server.request_log[0]["fault"] == "slow"


def test_a_dropped_connection_is_a_connection_error_and_is_retried(server):
    server.add(record(1))
    server.faults.add("drop", times=1)
    with pytest.raises(openai.APIConnectionError) as err:
        v1_client(server).chat.completions.retrieve("chatcmpl-000001")
    assert not isinstance(err.value, openai.APITimeoutError)
    assert server.request_log[0]["status"] == "dropped"
    server.faults.add("drop", times=1)
    got = v1_client(server, max_retries=1).chat.completions.retrieve("chatcmpl-000001")
    assert got.id == "chatcmpl-000001" and server.faults.fired == 2


def test_faults_are_consumed_in_order_scoped_by_path_and_counted(server):
    server.add(record(1))
    client = v1_client(server)
    msgs = server.faults.add("500", times=1, path_contains="/messages")
    rate = server.faults.add("429", times=1)
    with pytest.raises(openai.RateLimitError):  # the first matching rule with shots is `rate`
        client.chat.completions.list()
    with pytest.raises(openai.InternalServerError):  # `msgs` comes first for /messages
        client.chat.completions.messages.list("chatcmpl-000001")
    assert client.chat.completions.messages.list("chatcmpl-000001").data
    assert (msgs.fired, rate.fired, server.faults.pending) == (1, 1, 0)
    with pytest.raises(ValueError):
        server.faults.add("404")


def test_every_kth_request_fails_for_load_tests(server):
    rule = server.faults.every(3, "503")
    client = v1_client(server)
    statuses = []
    for _ in range(9):
        try:
            client.chat.completions.list()
            statuses.append(200)
        except openai.InternalServerError as exc:
            statuses.append(exc.status_code)
    assert statuses == [200, 200, 503] * 3
    assert rule.fired == 3 and rule.seen == 9
    # with retries on, a load never sees them
    assert all(
        v1_client(server, max_retries=2).chat.completions.list().data == [] for _ in range(6)
    )


def test_latency_is_added_to_every_request(server):
    server.latency_ms = 400
    with pytest.raises(openai.APITimeoutError):
        v1_client(server, timeout=0.1).chat.completions.list()


# ---- concurrency, preloading -----------------------------------------------------------------


def test_concurrent_creates_are_all_stored_once(server):
    client = v1_client(server)
    errors = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": f"q {t} {i}"}],
                    store=True,
                    metadata={"t": str(t)},
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    ids = [c.id for c in client.chat.completions.list(limit=100)]
    assert len(ids) == len(set(ids)) == 160
    assert len(list(client.chat.completions.list(metadata={"t": "3"}))) == 20


def test_load_export_preloads_plain_and_gzip_files(tmp_path, server):
    recs = [record(i, metadata={"category": "billing"}) for i in range(5)]
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps(r) for r in recs[:3]) + "\n\nnot json\n[1]\n", encoding="utf-8"
    )
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as fh:
        for r in recs[2:]:  # recs[2] again: a duplicate
            fh.write(json.dumps(r) + "\n")
    (tmp_path / "notes.txt").write_text("ignored")
    summary = server.load_export(tmp_path)
    assert (summary.files, summary.loaded, summary.duplicates) == (2, 5, 1)
    assert [(Path(f).name, line) for f, line, _ in summary.skipped] == [
        ("a.jsonl", 5),
        ("a.jsonl", 6),
    ]
    assert server.completions == recs  # the export record comes back unchanged
    client = v1_client(server)
    got = client.chat.completions.retrieve("chatcmpl-000003")
    assert got.choices[0].message.content == "answer 3"
    assert [m.content for m in client.chat.completions.messages.list("chatcmpl-000003")] == [
        "question 3"
    ]
    with pytest.raises(FileNotFoundError):
        server.load_export(tmp_path / "missing")


def test_a_deleted_cursor_item_still_lets_the_next_page_follow(server):
    for i in range(6):
        server.add(record(i))
    client = v1_client(server)
    page = client.chat.completions.list(limit=3)
    client.chat.completions.delete(page.data[-1].id)
    rest = client.chat.completions.list(limit=3, after=page.data[-1].id)
    assert [c.id for c in rest.data] == [f"chatcmpl-{i:06d}" for i in (3, 4, 5)]


# ---- the CLI -------------------------------------------------------------------------------


def test_cli_standin_serves_an_export_until_interrupted(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "x.jsonl").write_text(
        "\n".join(json.dumps(record(i)) for i in range(3)) + "\n", encoding="utf-8"
    )
    script = Path(sys.executable).parent / "conv-pipeline"
    proc = subprocess.Popen(
        [
            str(script),
            "standin",
            "--load",
            str(export),
            "--api-key",
            "cli-key",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        loaded = proc.stdout.readline()
        serving = proc.stdout.readline()
        assert "loaded 3 stored completions from 1 files" in loaded
        url = serving.split("serving on ")[1].split()[0]
        client = OpenAI(base_url=f"{url}/openai/v1", api_key="cli-key", max_retries=0)
        assert [c.id for c in client.chat.completions.list()] == [
            f"chatcmpl-{i:06d}" for i in range(3)
        ]
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=f"{url}/v1", api_key="other", max_retries=0).chat.completions.list()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out and "cli-key" not in out


def test_cli_standin_reports_a_missing_export_folder(tmp_path, capsys):
    assert cli.main(["standin", "--load", str(tmp_path / "nope")]) == 2
    assert "export folder not found" in capsys.readouterr().err


def test_request_log_max_keeps_only_the_latest_entries():
    with StoredCompletionsServer(api_keys={KEY}, request_log_max=3) as server:
        client = v1_client(server)
        for i in range(5):
            client.chat.completions.list(limit=i + 1)
        assert [r["query"]["limit"] for r in server.request_log] == ["3", "4", "5"]


def test_the_async_client_reads_messages_concurrently(server):
    import asyncio

    from openai import AsyncOpenAI

    for i in range(30):
        server.add(record(i))
    server.latency_ms = 20

    async def read_all() -> dict[str, list[str]]:
        client = AsyncOpenAI(base_url=server.openai_v1_base, api_key=KEY, max_retries=0)
        ids = [c.id async for c in client.chat.completions.list(limit=100)]
        pages = await asyncio.gather(*(client.chat.completions.messages.list(i) for i in ids))
        await client.close()
        return {i: [m.content for m in p.data] for i, p in zip(ids, pages, strict=True)}

    got = asyncio.run(read_all())
    assert got == {f"chatcmpl-{i:06d}": [f"question {i}"] for i in range(30)}
