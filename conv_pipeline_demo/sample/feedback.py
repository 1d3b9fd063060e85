"""Feedback for the bundled sample: a feedback folder beside the export, so the demo shows the
``conversation_feedback`` asset (docs/FEEDBACK.md). The sample's records themselves are untouched.

For the same arguments as ``write_sample`` the same records are generated again; about 30% of them
get feedback, decided by ``md5(completion_id)`` (so the choice depends on the id alone). The chance
of negative feedback falls with the seed's score of the answer (75% below 5, 50% below 6, 20%
below 7, 8% above), so the heuristic agrees with the users, as in a healthy deployment — with
disagreements on both sides. Thumbs and comments go to ``sample-feedback.jsonl``, 1–5 ratings to
``sample-ratings.csv``; a few rows are wrong on purpose (an unknown thumbs value, a rating out of
range, a row without id) and two users change their mind later (duplicates the later row wins).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conv_pipeline.core.files import atomic_write_bytes
from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline_demo.sample.generator import iter_recs
from conv_pipeline_demo.sample.timeline import DEFAULT_HOURS, DEFAULT_N, DEFAULT_SEED, resolve_end

SHARE = 0.30
NEGATIVE_COMMENTS = (
    "This did not answer my question.",
    "Too short, I needed the actual steps.",
    "The answer stopped in the middle.",
    "It just said it cannot help.",
    "Wrong plan details.",
)
POSITIVE_COMMENTS = ("Thanks, that worked!", "Clear and quick.", "Exactly what I needed.")


@dataclass(frozen=True)
class FeedbackSummary:
    files: list[Path]
    rows: int
    thumbs: int
    ratings: int
    negative: int
    bad_rows: int
    duplicates: int


def _u(cid: str, salt: str) -> float:
    h = hashlib.md5(f"{salt}:{cid}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def _p_negative(score: float) -> float:
    return 0.75 if score < 5 else 0.5 if score < 6 else 0.2 if score < 7 else 0.08


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_sample_feedback(
    out_dir: Path,
    *,
    n: int = DEFAULT_N,
    hours: int = DEFAULT_HOURS,
    end: datetime | str | None = None,
    seed: int = DEFAULT_SEED,
) -> FeedbackSummary:
    """Write the feedback of the sample :func:`.export.write_sample` writes for the same
    arguments (``end`` as there: default the current hour; pass the same hour to both)."""
    out_dir = Path(out_dir)
    end = resolve_end(end)
    thumbs_rows: list[dict] = []
    rating_rows: list[dict] = []
    negative = 0
    for rec in iter_recs(n=n, hours=hours, end=end, seed=seed):
        cid = rec.cid
        if _u(cid, "pick") >= SHARE:
            continue
        score = calculate_quality_score({"response": rec.content or ""})
        neg = _u(cid, "neg") < _p_negative(score)
        negative += neg
        at = _iso(rec.created + 30 + int(_u(cid, "delay") * 3000))
        comment = None
        if _u(cid, "comment") < 0.35:
            pool = NEGATIVE_COMMENTS if neg else POSITIVE_COMMENTS
            comment = pool[int(_u(cid, "which") * len(pool))]
        if _u(cid, "kind") < 0.6:
            row = {"completion_id": cid, "thumbs": "down" if neg else "up", "created_at": at}
            if comment:
                row["comment"] = comment
            thumbs_rows.append(row)
        else:
            r = _u(cid, "rating")
            rating = (1 if r < 0.5 else 2) if neg else (3 if r < 0.25 else 4 if r < 0.6 else 5)
            rating_rows.append(
                {"completion_id": cid, "rating": rating, "comment": comment or "", "created_at": at}
            )
    # Two users change their mind an hour later: the later row wins.
    duplicates = 0
    for row in thumbs_rows[:2]:
        later = dict(row, thumbs="up" if row["thumbs"] == "down" else "down")
        later["created_at"] = _iso(
            int(datetime.fromisoformat(row["created_at"]).timestamp()) + 3600
        )
        later.pop("comment", None)
        thumbs_rows.append(later)
        duplicates += 1
        negative += (later["thumbs"] == "down") - (row["thumbs"] == "down")
    bad = [
        {"completion_id": thumbs_rows[0]["completion_id"] if thumbs_rows else "x", "thumbs": "meh"},
        {"thumbs": "down", "comment": "no id on this row"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in thumbs_rows + bad]
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / "sample-feedback.jsonl"
    atomic_write_bytes(jsonl, ("\n".join(lines) + "\n").encode("utf-8"))
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["completion_id", "rating", "comment", "created_at"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rating_rows)
    if rating_rows:
        writer.writerow(dict(rating_rows[0], rating=9, created_at=""))  # out of the 1–5 scale
    path_csv = out_dir / "sample-ratings.csv"
    atomic_write_bytes(path_csv, buf.getvalue().encode("utf-8"))
    return FeedbackSummary(
        files=[jsonl, path_csv],
        rows=len(thumbs_rows) + len(rating_rows),
        thumbs=len(thumbs_rows),
        ratings=len(rating_rows),
        negative=negative,
        bad_rows=len(bad) + (1 if rating_rows else 0),
        duplicates=duplicates,
    )
