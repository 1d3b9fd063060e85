"""How the stand-in answers ``POST /chat/completions``: responders and the completion they become.

A responder is a callable ``(request_json) -> reply``; the request is the body the client sent,
with ``model`` filled in (the deployment name on ``/openai/deployments/{name}/...``). The reply is:

* a ``str``: the assistant's ``content`` (``finish_reason`` "stop");
* a ``dict`` with ``"choices"``: a whole completion; missing top-level fields (id, object, created,
  model, usage, system_fingerprint, service_tier) are filled in;
* a ``dict`` with ``"message"``: one choice, e.g. ``{"message": {...}, "finish_reason": "length"}``;
* any other ``dict``: ``choices[0].message`` itself (``{"content": ...}``, ``{"refusal": ...}``,
  ``{"tool_calls": [...]}``), completed with ``role``, ``content``, ``refusal``, ``annotations``.

It may raise :class:`~conv_pipeline_demo.standin.store.StandinAPIError` to answer with an error.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from conv_pipeline_demo.standin.store import StandinAPIError

Responder = Callable[[dict], "str | dict"]

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

_TEMPLATES = (
    "Here is a step by step answer to your question about {topic}. First, open the settings page "
    "and check the current configuration. Then apply the change and save it. Please let me know "
    "if anything is unclear and I will help you further.",
    "Thanks for asking about {topic}. In short: the option you need is under Account > Settings. "
    "Select it, confirm the change, and reload the page. If the problem persists, please share "
    "the exact error message so I can help.",
    "Good question about {topic}. The recommended approach is to review the documentation for "
    "this feature, follow the guide step by step, and verify the result afterwards. I hope this "
    "helps; feel free to ask a follow-up question.",
)


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the ``text`` parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def last_user_text(request: dict) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def default_responder(request: dict) -> str:
    """A deterministic, helpful-looking answer (~250 characters) derived from the last user
    message: the same question always gets the same answer."""
    question = last_user_text(request).strip()
    topic = " ".join(question.split())[:60].rstrip(" ?.!") or "this"
    digest = hashlib.sha256(question.encode("utf-8", "surrogatepass")).digest()
    return _TEMPLATES[digest[0] % len(_TEMPLATES)].format(topic=f"“{topic}”")


def count_tokens(text: str) -> int:
    """A rough token count (words and punctuation), close enough to BPE counts for tests."""
    return len(_TOKEN.findall(text)) if text else 0


def prompt_tokens(messages: list) -> int:
    total = 3
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += 4 + count_tokens(message_text(message.get("content")))
        if message.get("name"):
            total += 1
    return total


def _message(fields: dict) -> dict:
    message = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    message.update(copy.deepcopy(fields))
    if not message.get("tool_calls"):
        message.pop("tool_calls", None)
    return message


def _truncate(choice: dict, max_tokens: int | None) -> None:
    """Cut the content to ``max_tokens`` and set ``finish_reason`` "length", like the service."""
    content = choice["message"].get("content")
    if max_tokens is None or not isinstance(content, str):
        return
    tokens = list(_TOKEN.finditer(content))
    if len(tokens) > max_tokens:
        choice["message"]["content"] = content[: tokens[max_tokens - 1].end()] if max_tokens else ""
        choice["finish_reason"] = "length"


def build_completion(
    request: dict,
    reply: Any,
    *,
    completion_id: str,
    created: int,
    request_id: str,
) -> dict:
    """The completion ``POST /chat/completions`` answers with, from a responder's reply."""
    max_tokens = request.get("max_completion_tokens", request.get("max_tokens"))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = None
    n = request.get("n") if isinstance(request.get("n"), int) else 1
    if isinstance(reply, str):
        reply = {"content": reply}
    if not isinstance(reply, dict):
        raise StandinAPIError(
            500,
            f"The stand-in's responder returned {type(reply).__name__}, not a str or dict.",
            type="server_error",
            code="responder_error",
        )
    if "choices" in reply:
        completion = copy.deepcopy(reply)
    else:
        if "message" in reply:
            one = {
                "message": _message(reply["message"]),
                "finish_reason": reply.get("finish_reason"),
                "logprobs": reply.get("logprobs"),
            }
        else:
            one = {"message": _message(reply), "finish_reason": None, "logprobs": None}
        if one["finish_reason"] is None and "finish_reason" not in reply:
            one["finish_reason"] = "tool_calls" if one["message"].get("tool_calls") else "stop"
        choices = []
        for i in range(max(n, 1)):
            choice = {"index": i, **copy.deepcopy(one)}
            _truncate(choice, max_tokens)
            choices.append(choice)
        completion = {"choices": choices}
    completion.setdefault("id", completion_id)
    completion.setdefault("object", "chat.completion")
    completion.setdefault("created", created)
    completion.setdefault("model", request.get("model"))
    if "usage" not in completion:
        out = 0
        for choice in completion.get("choices") or []:
            message = choice.get("message") or {} if isinstance(choice, dict) else {}
            out += count_tokens(message_text(message.get("content")))
            out += count_tokens(message.get("refusal") or "")
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {} if isinstance(call, dict) else {}
                out += (
                    3
                    + count_tokens(str(fn.get("name", "")))
                    + count_tokens(str(fn.get("arguments", "")))
                )
        prompt = prompt_tokens(request.get("messages") or [])
        completion["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": out,
            "total_tokens": prompt + out,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    completion.setdefault("system_fingerprint", "fp_standin01")
    completion.setdefault("service_tier", request.get("service_tier") or "default")
    completion.setdefault("request_id", request_id)
    completion["metadata"] = request.get("metadata") or {}
    return completion


# Request parameters the service echoes in a stored completion (GET / list), when sent.
STORED_REQUEST_FIELDS = (
    "seed",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "tool_choice",
    "tools",
    "response_format",
)


def stored_form(request: dict, completion: dict) -> dict:
    """The completion as ``GET /chat/completions/{id}`` returns it: the created completion plus
    the request parameters the service keeps (``input_user`` is the request's ``user``)."""
    stored = copy.deepcopy(completion)
    for name in STORED_REQUEST_FIELDS:
        stored[name] = copy.deepcopy(request.get(name))
    stored["input_user"] = request.get("user")
    return stored


def input_message_items(completion_id: str, messages: list) -> list[dict]:
    """The input messages as ``GET /chat/completions/{id}/messages`` returns them: ids
    ``{completion_id}-{i}``; a list ``content`` becomes its text in ``content`` and the parts in
    ``content_parts``."""
    items = []
    for i, message in enumerate(messages):
        content = message.get("content")
        item = {
            "id": f"{completion_id}-{i}",
            "role": message.get("role"),
            "content": message_text(content) if isinstance(content, list) else content,
            "name": message.get("name"),
            "content_parts": copy.deepcopy(content) if isinstance(content, list) else None,
        }
        for extra in ("tool_calls", "tool_call_id", "refusal", "function_call"):
            if message.get(extra) is not None:
                item[extra] = copy.deepcopy(message[extra])
        items.append(item)
    return items


def scripted(replies: Iterable[Any], *, cycle: bool = False) -> Responder:
    """A responder that answers with ``replies`` in order (thread-safe), each one any reply form
    above or a :class:`StandinAPIError` instance to raise. When they run out it answers a 500
    (``code`` "script_exhausted"), or starts again with ``cycle=True``."""
    items = list(replies)
    if not items:
        raise ValueError("scripted() needs at least one reply")
    lock = threading.Lock()
    state = {"next": 0}

    def responder(request: dict) -> Any:
        with lock:
            i = state["next"]
            if i >= len(items):
                if not cycle:
                    raise StandinAPIError(
                        500,
                        f"The stand-in's script of {len(items)} replies is exhausted.",
                        type="server_error",
                        code="script_exhausted",
                    )
                i = 0
            state["next"] = i + 1
        reply = items[i]
        if isinstance(reply, StandinAPIError):
            raise reply
        return copy.deepcopy(reply)

    return responder


def judged_answer(request: dict) -> str:
    """The text after the last ``ANSWER:`` (or ``RESPONSE:``) of a judge prompt's last user
    message; the whole message when there is none."""
    text = last_user_text(request)
    for marker in ("ANSWER:", "RESPONSE:", "Response:", "response:"):
        if marker in text:
            return text.rsplit(marker, 1)[1].strip()
    return text.strip()


def default_judge_score(request: dict) -> int:
    """A deterministic score: 1 for an empty answer, 2 below 30 characters, otherwise 3-5 from a
    hash of the answer."""
    answer = judged_answer(request)
    if not answer:
        return 1
    if len(answer) < 30:
        return 2
    return 3 + hashlib.sha256(answer.encode("utf-8", "surrogatepass")).digest()[0] % 3


def judge_responder(score: Callable[[dict], int] | None = None, *, form: str = "json") -> Responder:
    """A responder for LLM-judge prompts, for load tests and local trials: answers every request
    with a score from ``score(request)`` (default :func:`default_judge_score`) in the given form:
    ``"json"`` (``{"score": n, "reason": "..."}``) or ``"tags"`` (``<S0>…</S0><S1>…</S1><S2>n</S2>``,
    the form Azure AI Evaluation's prompty evaluators parse)."""
    pick = score or default_judge_score
    if form not in ("json", "tags"):
        raise ValueError("form must be 'json' or 'tags'")

    def responder(request: dict) -> str:
        n = int(pick(request))
        reason = f"The stand-in judge gives {n} to an answer of {len(judged_answer(request))} characters."
        if form == "tags":
            return f"<S0>Let's think step by step.</S0><S1>{reason}</S1><S2>{n}</S2>"
        return json.dumps({"score": n, "reason": reason})

    return responder
