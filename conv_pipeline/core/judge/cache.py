"""The judgment cache: one SQLite file under the data folder (``judge/cache.sqlite``).

A judgment is keyed by ``(completion_id, evaluator, prompt_version, model)``; a re-run, a
backfill or an overlapping run reads it instead of paying for a call again. Every judgment is
committed as soon as it arrives (WAL mode), so a crash mid-run loses nothing that was paid for.
What is cached: scores (``ok``) and answers the parser could not read (``unparseable``: the call
was paid for, and the same prompt at temperature 0 answers the same). Failed calls (errors after
the retries) are not cached: the next run tries them again. Insight texts are cached the same way,
keyed by a hash of their prompt and model.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from conv_pipeline.core.judge.types import Outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    completion_id TEXT NOT NULL,
    evaluator TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    score INTEGER,
    reason TEXT,
    raw_output TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    finish_reason TEXT,
    response_model TEXT,
    judged_at REAL NOT NULL,
    PRIMARY KEY (completion_id, evaluator, prompt_version, model)
);
CREATE TABLE IF NOT EXISTS texts (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    body TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class CachedJudgment:
    status: str
    score: int | None
    reason: str | None
    raw_output: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    response_model: str | None

    @classmethod
    def of(cls, outcome: Outcome) -> CachedJudgment:
        return cls(
            outcome.status,
            outcome.score,
            outcome.reason,
            outcome.raw_output,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            outcome.finish_reason,
            outcome.response_model,
        )

    def outcome(self) -> Outcome:
        return Outcome(
            status=self.status,
            score=self.score,
            reason=self.reason,
            raw_output=self.raw_output,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            response_model=self.response_model,
            cached=True,
        )


class JudgmentCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.executescript(_SCHEMA)
        self._con.commit()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> JudgmentCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lookup(
        self, completion_ids: list[str], evaluator: str, prompt_version: str, model: str
    ) -> dict[str, CachedJudgment]:
        out: dict[str, CachedJudgment] = {}
        with self._lock:
            for i in range(0, len(completion_ids), 500):
                chunk = completion_ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._con.execute(
                    "SELECT completion_id, status, score, reason, raw_output, prompt_tokens, "
                    "completion_tokens, finish_reason, response_model FROM judgments "
                    f"WHERE evaluator = ? AND prompt_version = ? AND model = ? "
                    f"AND completion_id IN ({marks})",
                    [evaluator, prompt_version, model, *chunk],
                ).fetchall()
                for r in rows:
                    out[r[0]] = CachedJudgment(
                        r[1], r[2], r[3], r[4], r[5] or 0, r[6] or 0, r[7], r[8]
                    )
        return out

    def put(
        self,
        completion_id: str,
        evaluator: str,
        prompt_version: str,
        model: str,
        judgment: CachedJudgment,
    ) -> None:
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO judgments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    completion_id,
                    evaluator,
                    prompt_version,
                    model,
                    judgment.status,
                    judgment.score,
                    judgment.reason,
                    judgment.raw_output,
                    judgment.prompt_tokens,
                    judgment.completion_tokens,
                    judgment.finish_reason,
                    judgment.response_model,
                    time.time(),
                ],
            )
            self._con.commit()

    def count(self) -> int:
        with self._lock:
            return self._con.execute("SELECT count(*) FROM judgments").fetchone()[0]

    def get_text(self, key: str) -> tuple[str, int, int] | None:
        with self._lock:
            row = self._con.execute(
                "SELECT body, prompt_tokens, completion_tokens FROM texts WHERE key = ?", [key]
            ).fetchone()
        return (row[0], row[1] or 0, row[2] or 0) if row else None

    def put_text(self, key: str, model: str, body: str, prompt_tokens: int, completion_tokens: int):
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO texts VALUES (?,?,?,?,?,?)",
                [key, model, body, prompt_tokens, completion_tokens, time.time()],
            )
            self._con.commit()
