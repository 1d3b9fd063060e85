"""Shared pieces of the judge tests: a judge stand-in that answers by rubric, and settings."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

from conv_pipeline.core.config import DEFAULT_CONFIG_PATH
from conv_pipeline.settings import JudgeEnv, Settings
from conv_pipeline_demo.standin.responder import judged_answer

KEY = "sk-judge-test-5f2c9a71d0"  # a secret: must never reach a log, metadata or file
KEY_VAR = "CONV_PIPELINE_JUDGE_API_KEY"

INSIGHTS = {
    "summary": "The window holds 40 conversations.",
    "suggestions": [
        {
            "action": "prompt_optimization",
            "priority": "high",
            "reason": "short answers",
            "evidence": ["totals.average_quality", "chatcmpl-not-in-the-report"],
        },
        {"action": "buy_more_gpus", "priority": "low", "reason": "invented", "evidence": []},
    ],
}


def rubric_score(answer: str) -> int:
    """What the stand-in judge gives: 1 for answers under 30 characters, else 4."""
    return 1 if len(answer) < 30 else 4


class RubricJudge:
    """A thread-safe responder: insights prompts get ``INSIGHTS``; judge prompts a JSON score
    from :func:`rubric_score`; answers containing a marker in ``garbage_for`` get an unparseable
    reply. Counts calls per kind and the most calls in flight at once."""

    def __init__(self, *, delay_s: float = 0.0, garbage_for: tuple[str, ...] = ()):
        self.delay_s = delay_s
        self.garbage_for = garbage_for
        self.lock = threading.Lock()
        self.calls = {"judge": 0, "insights": 0}
        self.inflight = 0
        self.max_inflight = 0

    def __call__(self, request: dict) -> str:
        system = request["messages"][0]["content"] if request["messages"] else ""
        kind = "insights" if "LLMOps analyst" in system else "judge"
        with self.lock:
            self.calls[kind] += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if kind == "insights":
                return json.dumps(INSIGHTS)
            answer = judged_answer(request)
            if any(m in answer for m in self.garbage_for):
                return "I am not able to give a number for this."
            n = rubric_score(answer)
            return json.dumps({"score": n, "reason": f"rubric gives {n}"})
        finally:
            with self.lock:
                self.inflight -= 1


def judge_settings(settings: Settings, server, *, insights: bool = True) -> Settings:
    return dataclasses.replace(
        settings,
        judge=JudgeEnv(
            values={
                "model": "judge-model",
                "kind": "openai",
                "base_url": server.openai_v1_base,
                "insights_model": "judge-model" if insights else "",
            },
            api_key_var=KEY_VAR,
        ),
    )


def write_config(folder: Path, judge: dict, **sections) -> str:
    """A monitoring config: the bundled one with ``judge`` (and other sections) overridden."""
    cfg = json.loads(DEFAULT_CONFIG_PATH.read_text("utf-8"))
    cfg["judge"] = judge
    cfg.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "monitoring_config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return str(path)
