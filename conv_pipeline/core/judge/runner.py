"""Calling the judge: the official ``openai`` SDK, asynchronously, within bounds.

* at most ``concurrency`` calls in flight (``asyncio.Semaphore``);
* a requests-per-minute and a tokens-per-minute budget (``aiolimiter`` leaky buckets; a call
  takes its estimated tokens from the second one);
* retries are the SDK's: 429 (waiting ``retry-after-ms`` / ``retry-after``), 408/409, 5xx,
  timeouts and dropped connections, with exponential backoff, up to ``max_retries`` times;
* a run budget: at most ``max_calls`` calls and ``max_tokens`` tokens (actual tokens of finished
  calls plus the estimates of calls in flight). A task past the budget is not sent and comes back
  ``skipped_budget``.

Every task comes back with an outcome (``ok``, ``unparseable``, ``failed``, ``skipped_budget``);
nothing raises out of :func:`run_tasks` for a single call's failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from aiolimiter import AsyncLimiter

from conv_pipeline.core.judge.parse import parse_judgment
from conv_pipeline.core.judge.types import JudgeConnection, JudgeTask, Outcome, RunLimits

CHARS_PER_TOKEN = 4  # the estimate before a call; actual counts come from the answer's usage


def estimate_tokens(messages: list[dict[str, str]], max_output_tokens: int) -> int:
    chars = sum(len(m["content"]) for m in messages)
    return chars // CHARS_PER_TOKEN + 4 * len(messages) + 3 + max_output_tokens


@dataclass
class Budget:
    max_calls: int
    max_tokens: int
    calls: int = 0
    tokens: int = 0  # actual tokens of finished calls
    reserved: int = 0  # estimates of calls in flight
    skipped: int = 0

    def reserve(self, estimate: int) -> bool:
        if self.calls >= self.max_calls or self.tokens + self.reserved + estimate > self.max_tokens:
            self.skipped += 1
            return False
        self.calls += 1
        self.reserved += estimate
        return True

    def settle(self, estimate: int, actual: int) -> None:
        self.reserved -= estimate
        self.tokens += actual


def _error_text(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = f"{type(exc).__name__}" + (f" {status}" if status else "") + f": {exc}"
    return " ".join(text.split())[:400]


async def _run(
    tasks: list[JudgeTask],
    client: Any,
    model: str,
    limits: RunLimits,
    on_result: Callable[[JudgeTask, Outcome], None] | None,
) -> tuple[list[Outcome], Budget]:
    sem = asyncio.Semaphore(limits.concurrency)
    rpm = AsyncLimiter(limits.requests_per_minute, limits.rate_period_seconds)
    tpm = AsyncLimiter(limits.tokens_per_minute, limits.rate_period_seconds)
    budget = Budget(limits.max_calls, limits.max_tokens)
    extra: dict[str, Any] = {"max_completion_tokens": limits.max_output_tokens}
    if limits.temperature is not None:
        extra["temperature"] = limits.temperature

    async def one(task: JudgeTask) -> Outcome:
        async with sem:
            if not budget.reserve(task.estimated_tokens):
                return Outcome(status="skipped_budget", reason="the run's judge budget ran out")
            await rpm.acquire()
            await tpm.acquire(min(task.estimated_tokens, limits.tokens_per_minute))
            started = time.perf_counter()
            actual = 0
            try:
                resp = await client.chat.completions.create(
                    model=model, messages=task.messages, **extra
                )
            except (openai.APIError, ValueError) as exc:
                outcome = Outcome(status="failed", reason=_error_text(exc))
            else:
                usage = resp.usage
                choice = resp.choices[0] if resp.choices else None
                text = choice.message.content if choice and choice.message else None
                if text is None and choice and choice.message and choice.message.refusal:
                    text = choice.message.refusal
                prompt = int(usage.prompt_tokens or 0) if usage else 0
                completion = int(usage.completion_tokens or 0) if usage else 0
                actual = prompt + completion
                parsed = parse_judgment(text, task.evaluator)
                common = {
                    "raw_output": (text or "")[:4000],
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "finish_reason": choice.finish_reason if choice else None,
                    "response_model": resp.model,
                }
                if parsed is None:
                    outcome = Outcome(
                        status="unparseable",
                        reason="the judge's answer holds no score 1-5: "
                        + " ".join((text or "<empty>").split())[:200],
                        **common,
                    )
                else:
                    outcome = Outcome(
                        status="ok", score=parsed.score, reason=parsed.reason, **common
                    )
            finally:
                budget.settle(task.estimated_tokens, actual)
            outcome.seconds = time.perf_counter() - started
        if on_result is not None:
            on_result(task, outcome)
        return outcome

    try:
        outcomes = await asyncio.gather(*(one(t) for t in tasks))
    finally:
        await client.close()
    return list(outcomes), budget


def run_tasks(
    tasks: list[JudgeTask],
    connection: JudgeConnection,
    limits: RunLimits,
    on_result: Callable[[JudgeTask, Outcome], None] | None = None,
    client: Any = None,
) -> tuple[list[Outcome], Budget]:
    """Judge ``tasks`` (in priority order: the budget cuts the end of the list) and return their
    outcomes in the same order. ``on_result`` is called as each call finishes (the cache write)."""
    if not tasks:
        return [], Budget(limits.max_calls, limits.max_tokens)
    if client is None:
        client = connection.client(
            asynchronous=True, max_retries=limits.max_retries, timeout=limits.timeout_seconds
        )
    return asyncio.run(_run(tasks, client, connection.model, limits, on_result))
