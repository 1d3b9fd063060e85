"""Calibration: how far the judge agrees with people on a golden set.

The golden set is a JSONL file of human-labelled pairs, one per line::

    {"id": "g-001", "evaluator": "coherence", "query": "...", "response": "...",
     "context": "...", "human_score": 4, "labeller": "ana"}

(``context`` only matters to groundedness; ``labeller`` and ``note`` are optional). The judge
scores each pair with the same prompt and model as in the pipeline (through the same cache, with
the id prefixed ``golden:``), and per evaluator we report the quadratic-weighted Cohen's kappa
(scikit-learn), Spearman's rank correlation (SciPy), exact agreement and agreement within one
point. A line that is not a valid pair is rejected with its reason, never silently skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.evaluators import Evaluator
from conv_pipeline.core.judge.pipeline import judge_items
from conv_pipeline.core.judge.types import (
    CALIBRATION_SCHEMA,
    JudgeConnection,
    Outcome,
    empty_calibration,
)
from conv_pipeline.core.schema import REJECTED_RECORDS, conform

DEFAULT_GOLDEN_SET = (
    Path(__file__).resolve().parent.parent.parent / "judge_golden" / "golden_set.jsonl"
)
LABELS = [1, 2, 3, 4, 5]


class GoldenItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    evaluator: str = Field(min_length=1)
    query: str = ""
    response: str
    context: str = ""
    human_score: int = Field(ge=1, le=5)


@dataclass
class GoldenSet:
    path: str
    sha256: str
    items: list[GoldenItem] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # line, reason, raw_excerpt


def load_golden_set(path: str | Path, known_evaluators: set[str]) -> GoldenSet:
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError as exc:
        raise ValueError(f"judge golden set {target} does not exist") from exc
    out = GoldenSet(path=str(target), sha256=hashlib.sha256(data).hexdigest())
    seen: set[tuple[str, str]] = set()
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue

        def reject(reason: str, line=line, n=n) -> None:
            out.rejected.append({"line": n, "reason": reason, "raw_excerpt": line[:200]})

        try:
            obj = json.loads(line)
        except ValueError as exc:
            reject(f"not JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            reject("not a JSON object")
            continue
        try:
            item = GoldenItem.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            reject(f"{'.'.join(map(str, first['loc'])) or 'item'}: {first['msg']}")
            continue
        if item.evaluator not in known_evaluators:
            reject(f"evaluator {item.evaluator!r} is not configured")
            continue
        if (item.id, item.evaluator) in seen:
            reject(f"duplicate id {item.id!r} for {item.evaluator}")
            continue
        seen.add((item.id, item.evaluator))
        out.items.append(item)
    return out


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def agreement(human: list[int], judge: list[int]) -> dict[str, float | None]:
    """Quadratic-weighted Cohen's kappa, Spearman, exact and within-one agreement."""
    if not human:
        return {
            "kappa_quadratic": None,
            "spearman": None,
            "exact_agreement": None,
            "within_one": None,
        }
    if len(set(human)) == 1 and human == judge:
        kappa = 1.0  # perfect agreement on one label: scikit-learn's 0/0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappa = cohen_kappa_score(human, judge, labels=LABELS, weights="quadratic")
    varied = len(set(human)) > 1 and len(set(judge)) > 1
    rho = spearmanr(human, judge).statistic if varied else None  # undefined for a constant
    n = len(human)
    return {
        "kappa_quadratic": _none_if_nan(kappa),
        "spearman": _none_if_nan(rho),
        "exact_agreement": round(sum(h == j for h, j in zip(human, judge, strict=True)) / n, 4),
        "within_one": round(sum(abs(h - j) <= 1 for h, j in zip(human, judge, strict=True)) / n, 4),
    }


def calibration_table(
    golden: GoldenSet,
    outcomes: dict[tuple[str, str], Outcome],
    *,
    min_kappa: float,
    min_items: int,
    model: str,
    prompt_versions: dict[str, str],
) -> pl.DataFrame:
    """One row per evaluator and one for ``all`` (pooled). ``passed`` is null when an evaluator
    has fewer than ``min_items`` scored pairs (too few to say)."""
    rows = []
    pooled_h: list[int] = []
    pooled_j: list[int] = []
    for name in sorted({it.evaluator for it in golden.items}):
        mine = [it for it in golden.items if it.evaluator == name]
        pairs = [
            (it.human_score, outcomes[(f"golden:{it.id}", name)].score)
            for it in mine
            if (f"golden:{it.id}", name) in outcomes
            and outcomes[(f"golden:{it.id}", name)].status == "ok"
        ]
        human = [h for h, _ in pairs]
        judge = [j for _, j in pairs]
        pooled_h += human
        pooled_j += judge
        rows.append(
            _row(
                name,
                len(mine),
                human,
                judge,
                min_kappa,
                min_items,
                model,
                prompt_versions.get(name),
                golden,
            )
        )
    if rows:
        rows.append(
            _row(
                "all",
                len(golden.items),
                pooled_h,
                pooled_j,
                min_kappa,
                min_items,
                model,
                None,
                golden,
            )
        )
    return pl.DataFrame(rows, schema=CALIBRATION_SCHEMA) if rows else empty_calibration()


def _row(name, items, human, judge, min_kappa, min_items, model, version, golden) -> dict:
    a = agreement(human, judge)
    k = a["kappa_quadratic"]
    return {
        "evaluator": name,
        "items": items,
        "scored": len(human),
        **a,
        "mean_human": round(sum(human) / len(human), 4) if human else None,
        "mean_judge": round(sum(judge) / len(judge), 4) if judge else None,
        "min_kappa": min_kappa,
        "passed": None if len(human) < min_items or k is None else k >= min_kappa,
        "judge_model": model,
        "prompt_version": version,
        "golden_set": golden.path,
        "golden_set_sha256": golden.sha256,
    }


def rejected_frame(golden: GoldenSet) -> pl.DataFrame:
    """The golden set's rejected lines as ``rejected_records`` rows (source ``judge_golden_set``)."""
    rows = [
        {
            "source": "judge_golden_set",
            "source_file": golden.path,
            "source_line": r["line"],
            "reason": r["reason"],
            "raw_excerpt": r["raw_excerpt"],
        }
        for r in golden.rejected
    ]
    schema = {
        "source": pl.String,
        "source_file": pl.String,
        "source_line": pl.Int64,
        "reason": pl.String,
        "raw_excerpt": pl.String,
    }
    return conform(pl.DataFrame(rows, schema=schema), REJECTED_RECORDS)


def judge_golden_set(
    golden: GoldenSet,
    evaluators: list[Evaluator],
    settings: JudgeSettings,
    connection: JudgeConnection,
    cache: JudgmentCache,
) -> dict[tuple[str, str], Outcome]:
    """Each pair judged by its evaluator, through the cache (ids ``golden:<id>``): outcome by
    ``(golden:<id>, evaluator)``."""
    outcomes: dict[tuple[str, str], Outcome] = {}
    for ev in evaluators:
        items = [
            {
                "id": f"golden:{it.id}",
                "query": it.query,
                "response": it.response,
                "context": it.context,
            }
            for it in golden.items
            if it.evaluator == ev.name
        ]
        if items:
            got, _ = judge_items(items, [ev], settings, connection, cache)
            outcomes.update(got)
    return outcomes
