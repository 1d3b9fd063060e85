"""One generated stored completion, and its two renderings: the export-format dict
(:meth:`Rec.as_dict`) and its JSON line (:meth:`Rec.as_json`), which is exactly
``json.dumps(rec.as_dict(), ensure_ascii=False)`` (the tests check it on whole samples) but several
times faster: every message's JSON is made once, when the message is, and reused by every later
turn of its conversation."""

from __future__ import annotations

import json
from json.encoder import encode_basestring

_USAGE_TAIL = (
    '"audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}'
)


def js(text: str | None) -> str:
    """A JSON value for a text (``null`` for None)."""
    return "null" if text is None else encode_basestring(text)


def meta_parts(meta: dict[str, str]) -> tuple[str, str]:
    """The JSON of a conversation's metadata around its ``prompt_variant`` entry (which can change
    from one turn to the next): the entries before it and the entries after it."""
    full = json.dumps(meta, ensure_ascii=False)[1:-1]
    marker = f', "prompt_variant": {encode_basestring(meta["prompt_variant"])}'
    at = full.index(marker)  # the first keys are the generator's own, so this is the entry
    return full[:at], full[at + len(marker) :]


def tokens(text: str | None) -> int:
    """The sample's token estimate: UTF-8 bytes / 4 (about four characters per token in
    English, denser for other scripts)."""
    if not text:
        return 0
    return (len(text) if text.isascii() else len(text.encode("utf-8"))) // 4 + 1


class Message:
    """An input message as ``GET /chat/completions/{id}/messages`` lists it (without its id), with
    its JSON body and its token count."""

    __slots__ = ("role", "content", "extra_key", "extra", "body", "tokens", "value")

    def __init__(self, role: str, content: str | None, extra_key: str = "", extra=None) -> None:
        self.role = role
        self.content = content
        self.extra_key = extra_key
        self.extra = extra
        self.value = js(content)  # the content's JSON
        body = f'"role": "{role}", "content": {self.value}, "name": null, "content_parts": null'
        n = 4 + tokens(content)
        if extra_key == "tool_calls":
            body += f', "tool_calls": {json.dumps(extra, ensure_ascii=False)}'
            n += sum(8 + tokens(c["function"]["arguments"]) for c in extra)
        elif extra_key == "tool_call_id":
            body += f', "tool_call_id": "{extra}"'
        self.body = body
        self.tokens = n

    def as_dict(self, mid: str) -> dict:
        out = {
            "id": mid,
            "role": self.role,
            "content": self.content,
            "name": None,
            "content_parts": None,
        }
        if self.extra_key:
            out[self.extra_key] = self.extra
        return out


class Tools:
    """The function tools the app sends, with their JSON and token count (shared, read-only)."""

    __slots__ = ("defs", "json", "tokens")

    def __init__(self, defs: list[dict]) -> None:
        self.defs = defs
        self.json = json.dumps(defs, ensure_ascii=False)
        self.tokens = len(self.json) // 4


class Rec:
    """A stored completion as generated (see :func:`.generator.iter_sample_records`). The
    metadata is the conversation's (``meta``, and its JSON around ``prompt_variant`` in
    ``meta_json``) with this turn's ``prompt_variant``, ``timestamp`` and ``turn``."""

    __slots__ = (
        "cid", "created", "model", "content", "content_json", "refusal", "tool_calls", "finish",
        "prompt_tokens", "completion_tokens", "cached", "reasoning", "meta", "meta_json",
        "variant", "iso", "turn", "fingerprint", "request_id", "tools", "messages",
    )  # fmt: skip

    def __init__(
        self, cid, created, model, content, content_json, refusal, tool_calls, finish,
        prompt_tokens, completion_tokens, cached, reasoning, meta, meta_json, variant, iso, turn,
        fingerprint, request_id, tools, messages,
    ) -> None:  # fmt: skip
        self.cid = cid
        self.created = created
        self.model = model
        self.content = content
        self.content_json = content_json
        self.refusal = refusal
        self.tool_calls = tool_calls
        self.finish = finish
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached = cached
        self.reasoning = reasoning
        self.meta = meta
        self.meta_json = meta_json
        self.variant = variant
        self.iso = iso
        self.turn = turn
        self.fingerprint = fingerprint
        self.request_id = request_id
        self.tools = tools
        self.messages = messages

    @property
    def metadata(self) -> dict[str, str]:
        out = dict(self.meta)
        out["prompt_variant"] = self.variant
        out["timestamp"] = self.iso
        out["turn"] = self.turn
        return out

    def response(self) -> str:
        return self.content or ""

    def as_dict(self) -> dict:
        message: dict = {"role": "assistant", "content": self.content, "refusal": self.refusal}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        message["annotations"] = []
        return {
            "id": self.cid,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": self.reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "metadata": self.metadata,
            "system_fingerprint": self.fingerprint,
            "service_tier": "default",
            "request_id": self.request_id,
            "seed": None,
            "temperature": 1.0,
            "top_p": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "tool_choice": "auto" if self.tools else None,
            "tools": self.tools.defs if self.tools else None,
            "input_user": None,
            "messages": [m.as_dict(f"{self.cid}-{i}") for i, m in enumerate(self.messages)],
        }

    def as_json(self) -> str:
        cid = self.cid
        calls = (
            f'"tool_calls": {json.dumps(self.tool_calls, ensure_ascii=False)}, '
            if self.tool_calls
            else ""
        )
        messages = ", ".join(
            f'{{"id": "{cid}-{i}", {m.body}}}' for i, m in enumerate(self.messages)
        )
        tools = self.tools
        choice = '"auto"' if tools else "null"
        head, tail = self.meta_json
        return (
            f'{{"id": "{cid}", "object": "chat.completion", "created": {self.created}, '
            f'"model": "{self.model}", "choices": [{{"index": 0, "message": {{"role": '
            f'"assistant", "content": {self.content_json}, "refusal": {js(self.refusal)}, '
            f'{calls}"annotations": []}}, "finish_reason": "{self.finish}", "logprobs": null}}], '
            f'"usage": {{"prompt_tokens": {self.prompt_tokens}, '
            f'"completion_tokens": {self.completion_tokens}, '
            f'"total_tokens": {self.prompt_tokens + self.completion_tokens}, '
            f'"prompt_tokens_details": {{"cached_tokens": {self.cached}, "audio_tokens": 0}}, '
            f'"completion_tokens_details": {{"reasoning_tokens": {self.reasoning}, '
            f"{_USAGE_TAIL}, "
            f'"metadata": {{{head}, "prompt_variant": "{self.variant}"{tail}, '
            f'"timestamp": "{self.iso}", "turn": "{self.turn}"}}, '
            f'"system_fingerprint": "{self.fingerprint}", "service_tier": "default", '
            f'"request_id": "{self.request_id}", "seed": null, "temperature": 1.0, '
            f'"top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0, '
            f'"tool_choice": {choice}, '
            f'"tools": {tools.json if tools else "null"}, '
            f'"input_user": null, "messages": [{messages}]}}'
        )
