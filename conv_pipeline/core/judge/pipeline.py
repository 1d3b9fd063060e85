"""The judge in the pipeline: which conversations are judged, the ``judge_evaluations`` table,
the issues its failing judgments raise, and the summaries checks and reports use.

Sampling (per hourly partition, deterministic): every conversation whose heuristic
``quality_score`` is below ``always_judge_below_quality`` and every conversation with a heuristic
issue of severity warning or error (``always_judge_flagged``) is judged; of the others, those whose stable bucket
``md5_number("<sampling_seed>:<completion_id>") % 10000`` is below ``sampling_rate * 10000``. A
conversation never leaves the sample when its hour gains rows, so re-runs reuse the cache.
Priority (what the run budget keeps first): low quality, then flagged, then sampled, each by
bucket.

Columns of ``judge_evaluations`` (one row per sampled conversation), per evaluator ``<e>`` named
like Azure AI Evaluation's: ``<e>`` (integer 1-5), ``<e>_result`` (``pass`` when the score is at
least the threshold, ``fail`` otherwise; null when there is no score), ``<e>_reason``,
``<e>_threshold``, ``<e>_prompt_tokens``, ``<e>_completion_tokens``, ``<e>_total_tokens``,
``<e>_finish_reason``, ``<e>_model`` — plus ours: ``<e>_status`` (``ok``, ``unparseable``,
``failed``, ``skipped_budget``, ``nothing_to_ground``), ``<e>_prompt_version`` and ``<e>_cached``.
Per row: ``judge_score`` (mean of the evaluators' scores), ``judge_result`` (``fail`` when an
evaluator failed, ``pass`` when all scored ones passed), ``judge_evaluations_scored``,
``judge_model``, ``judge_sample_reason`` and the token sums.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.judge.cache import CachedJudgment, JudgmentCache
from conv_pipeline.core.judge.evaluators import Evaluator, conversation_inputs
from conv_pipeline.core.judge.runner import estimate_tokens, run_tasks
from conv_pipeline.core.judge.types import (
    CACHED_STATUSES,
    JudgeConnection,
    JudgeTask,
    Outcome,
    RunLimits,
    empty_table,
    evaluator_names,
    table_schema,
)
from conv_pipeline.core.schema import CONVERSATION_ISSUES
from conv_pipeline.core.scoring.issues import ISSUE_RULES, issue_flags

REASONS = ("low_quality", "flagged", "sampled")
NOTHING_TO_GROUND = (
    "nothing to ground: the conversation carried no system message, tool result or retrieved "
    "passage"
)


# ---- sampling ------------------------------------------------------------------------------------


def buckets(ids: pl.Series, seed: int) -> pl.Series:
    """Stable 0..9999 bucket of each id (DuckDB's ``md5_number``), independent of Polars'
    hashing, which changes between versions."""
    con = duckdb.connect()
    try:
        con.register("ids", pl.DataFrame({"completion_id": ids}).to_arrow())
        out = con.sql(
            "SELECT (md5_number($seed || ':' || completion_id) % 10000)::INTEGER AS b FROM ids",
            params={"seed": str(seed)},
        ).pl()
    finally:
        con.close()
    return out["b"]


def select_for_judging(
    scored: pl.DataFrame, settings: JudgeSettings, *, low_quality_below: float
) -> pl.DataFrame:
    """The sampled rows of ``scored`` with ``judge_sample_reason`` and ``_bucket``, in priority
    order (vectorized)."""
    if scored.height == 0:
        return scored.with_columns(
            pl.lit(None, pl.String).alias("judge_sample_reason"), pl.lit(0).alias("_bucket")
        ).clear()
    flags = issue_flags(scored.lazy(), low_quality_below=low_quality_below).collect()
    # an issue of severity warning or error (not the informational missing_finish_reason)
    serious = [name for name, (severity, _) in ISSUE_RULES.items() if severity != "info"]
    flagged = pl.any_horizontal([pl.col(c) for c in serious]).fill_null(False)
    below = settings.always_judge_below_quality
    low = (pl.col("quality_score") < below).fill_null(False) if below is not None else pl.lit(False)
    rate = int(round(settings.sampling_rate * 10_000))
    frame = flags.with_columns(
        buckets(flags["completion_id"], settings.sampling_seed).alias("_bucket")
    )
    reason = (
        pl.when(low)
        .then(pl.lit("low_quality"))
        .when(flagged & pl.lit(settings.always_judge_flagged))
        .then(pl.lit("flagged"))
        .when(pl.col("_bucket") < rate)
        .then(pl.lit("sampled"))
        .otherwise(pl.lit(None, pl.String))
    )
    order = pl.col("judge_sample_reason").replace_strict(
        {r: i for i, r in enumerate(REASONS)}, return_dtype=pl.Int32
    )
    return (
        frame.with_columns(reason.alias("judge_sample_reason"))
        .filter(pl.col("judge_sample_reason").is_not_null())
        .sort(order, pl.col("_bucket"), pl.col("completion_id"))
        .select(*scored.columns, "judge_sample_reason", "_bucket")
    )


# ---- judging -------------------------------------------------------------------------------------


@dataclass
class JudgeRunStats:
    sampled: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    judgments: int = 0  # (conversation, evaluator) pairs
    cache_hits: int = 0
    planned_calls: int = 0  # calls needed (not cached, something to ground)
    calls: int = 0
    skipped_budget: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    estimated_tokens: int = 0
    estimated_cost_usd: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    actual_cost_usd: float | None = None
    seconds: float = 0.0
    per_evaluator: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "judge_sampled_conversations": self.sampled,
            "judge_sample_reasons": dict(self.by_reason),
            "judge_judgments": self.judgments,
            "judge_cache_hits": self.cache_hits,
            "judge_planned_calls": self.planned_calls,
            "judge_calls": self.calls,
            "judge_skipped_budget": self.skipped_budget,
            "judge_statuses": dict(self.statuses),
            "judge_estimated_tokens": self.estimated_tokens,
            "judge_estimated_cost_usd": self.estimated_cost_usd,
            "judge_prompt_tokens": self.prompt_tokens,
            "judge_completion_tokens": self.completion_tokens,
            "judge_total_tokens": self.prompt_tokens + self.completion_tokens,
            "judge_actual_cost_usd": self.actual_cost_usd,
            "judge_seconds": round(self.seconds, 3),
        }


def _cost(settings: JudgeSettings, prompt: int, completion: int) -> float | None:
    p, c = settings.usd_per_million_prompt_tokens, settings.usd_per_million_completion_tokens
    if p is None or c is None:
        return None
    return round((prompt * p + completion * c) / 1_000_000, 6)


def limits_of(settings: JudgeSettings) -> RunLimits:
    return RunLimits(
        concurrency=settings.concurrency,
        requests_per_minute=settings.requests_per_minute,
        tokens_per_minute=settings.tokens_per_minute,
        max_retries=settings.max_retries,
        timeout_seconds=settings.timeout_seconds,
        max_output_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
        max_calls=settings.max_judgments_per_run,
        max_tokens=settings.max_tokens_per_run,
    )


def judge_items(
    items: list[dict[str, str]],
    evaluators: list[Evaluator],
    settings: JudgeSettings,
    connection: JudgeConnection,
    cache: JudgmentCache,
    *,
    client: Any = None,
    on_plan: Any = None,
) -> tuple[dict[tuple[str, str], Outcome], JudgeRunStats]:
    """Judge each item (``{"id", "query", "response", "context"}``, in priority order) with each
    evaluator, through the cache. Returns outcome by ``(id, evaluator)`` and the run's figures."""
    started = time.perf_counter()
    stats = JudgeRunStats(sampled=len(items))
    model = connection.model
    outcomes, tasks = _plan(items, evaluators, settings, model, cache, stats)
    _estimate(tasks, settings, stats)
    versions = {ev.name: ev.prompt_version for ev in evaluators}
    if on_plan is not None:
        on_plan(stats)

    def store(task: JudgeTask, outcome: Outcome) -> None:
        if outcome.status in CACHED_STATUSES:
            version = versions[task.evaluator]
            judgment = CachedJudgment.of(outcome)
            cache.put(task.completion_id, task.evaluator, version, model, judgment)

    results, budget = run_tasks(tasks, connection, limits_of(settings), store, client=client)
    for task, outcome in zip(tasks, results, strict=True):
        outcomes[(task.completion_id, task.evaluator)] = outcome
        if outcome.status != "skipped_budget":
            stats.prompt_tokens += outcome.prompt_tokens
            stats.completion_tokens += outcome.completion_tokens
    stats.calls = budget.calls
    stats.skipped_budget = budget.skipped
    stats.actual_cost_usd = _cost(settings, stats.prompt_tokens, stats.completion_tokens)
    _tally(stats, outcomes, evaluators)
    stats.seconds = time.perf_counter() - started
    return outcomes, stats


def _plan(
    items: list[dict[str, str]],
    evaluators: list[Evaluator],
    settings: JudgeSettings,
    model: str,
    cache: JudgmentCache,
    stats: JudgeRunStats,
) -> tuple[dict[tuple[str, str], Outcome], list[JudgeTask]]:
    """The outcomes known without a call (cached, nothing to ground) and the calls to make, in
    priority order: the conversation's rank first, so a budget cut drops whole low-priority rows."""
    outcomes: dict[tuple[str, str], Outcome] = {}
    tasks: list[JudgeTask] = []
    ids = [it["id"] for it in items]
    rank = {cid: i for i, cid in enumerate(ids)}
    for ev in evaluators:
        hits = cache.lookup(ids, ev.name, ev.prompt_version, model)
        for it in items:
            key = (it["id"], ev.name)
            stats.judgments += 1
            if ev.needs_context and not it["context"].strip():
                outcomes[key] = Outcome(status="nothing_to_ground", reason=NOTHING_TO_GROUND)
                continue
            hit = hits.get(it["id"])
            if hit is not None:
                stats.cache_hits += 1
                outcomes[key] = hit.outcome()
                continue
            messages = ev.render(it["query"], it["response"], it["context"])
            tasks.append(
                JudgeTask(
                    it["id"],
                    ev.name,
                    messages,
                    estimate_tokens(messages, settings.max_output_tokens),
                )
            )
    tasks.sort(key=lambda t: rank[t.completion_id])
    stats.planned_calls = len(tasks)
    return outcomes, tasks


def _estimate(tasks: list[JudgeTask], settings: JudgeSettings, stats: JudgeRunStats) -> None:
    """What the run's budget will let through, at the estimate: its tokens and cost."""
    est = [t.estimated_tokens for t in tasks[: settings.max_judgments_per_run]]
    running, kept = 0, 0
    for e in est:
        if running + e > settings.max_tokens_per_run:
            break
        running += e
        kept += 1
    stats.estimated_tokens = running
    prompt_est = sum(max(e - settings.max_output_tokens, 0) for e in est[:kept])
    stats.estimated_cost_usd = _cost(settings, prompt_est, kept * settings.max_output_tokens)


def _tally(
    stats: JudgeRunStats,
    outcomes: dict[tuple[str, str], Outcome],
    evaluators: list[Evaluator],
) -> None:
    """The run's statuses, and per evaluator its scores' average and pass rate."""
    for o in outcomes.values():
        stats.statuses[o.status] = stats.statuses.get(o.status, 0) + 1
    for ev in evaluators:
        mine = [o for (cid, name), o in outcomes.items() if name == ev.name]
        scores = [o.score for o in mine if o.status == "ok"]
        stats.per_evaluator[ev.name] = {
            "scored": len(scores),
            "average": round(sum(scores) / len(scores), 4) if scores else None,
            "pass_rate": round(sum(s >= ev.threshold for s in scores) / len(scores), 4)
            if scores
            else None,
            "not_scored": len(mine) - len(scores),
            "prompt_version": ev.prompt_version,
        }


def judge_partitions(
    scored: pl.DataFrame,
    raw: pl.DataFrame,
    evaluators: list[Evaluator],
    settings: JudgeSettings,
    connection: JudgeConnection,
    cache: JudgmentCache,
    *,
    low_quality_below: float,
    client: Any = None,
    on_plan: Any = None,
) -> tuple[pl.DataFrame, JudgeRunStats]:
    """The ``judge_evaluations`` rows of ``scored`` (any number of hours, one budget)."""
    names = [ev.name for ev in evaluators]
    sample = select_for_judging(scored, settings, low_quality_below=low_quality_below)
    if sample.height == 0:
        return empty_table(names), JudgeRunStats()
    texts = sample.select("completion_id").join(
        raw.select("completion_id", "messages", "response"),
        on="completion_id",
        how="left",
        maintain_order="left",  # the sample's priority order is the budget's
    )
    items = [
        {"id": cid, **conversation_inputs(messages, response)}
        for cid, messages, response in texts.iter_rows()
    ]
    outcomes, stats = judge_items(
        items, evaluators, settings, connection, cache, client=client, on_plan=on_plan
    )
    stats.by_reason = dict(sample.group_by("judge_sample_reason").len().rows())
    return wide_table(sample, evaluators, outcomes, connection.model), stats


def wide_table(
    sample: pl.DataFrame,
    evaluators: list[Evaluator],
    outcomes: dict[tuple[str, str], Outcome],
    model: str,
) -> pl.DataFrame:
    ids = sample["completion_id"].to_list()
    cols: dict[str, list] = {}
    for ev in evaluators:
        got = [outcomes[(cid, ev.name)] for cid in ids]
        score = [o.score if o.status == "ok" else None for o in got]
        cols[ev.name] = score
        cols[f"{ev.name}_result"] = [
            None if s is None else ("pass" if s >= ev.threshold else "fail") for s in score
        ]
        cols[f"{ev.name}_reason"] = [o.reason for o in got]
        cols[f"{ev.name}_threshold"] = [ev.threshold] * len(ids)
        cols[f"{ev.name}_status"] = [o.status for o in got]
        cols[f"{ev.name}_prompt_tokens"] = [o.prompt_tokens for o in got]
        cols[f"{ev.name}_completion_tokens"] = [o.completion_tokens for o in got]
        cols[f"{ev.name}_total_tokens"] = [o.prompt_tokens + o.completion_tokens for o in got]
        cols[f"{ev.name}_finish_reason"] = [o.finish_reason for o in got]
        cols[f"{ev.name}_model"] = [o.response_model for o in got]
        cols[f"{ev.name}_prompt_version"] = [ev.prompt_version] * len(ids)
        cols[f"{ev.name}_cached"] = [o.cached for o in got]
    schema = {k: v for k, v in table_schema([ev.name for ev in evaluators]).items() if k in cols}
    wide = pl.DataFrame(cols, schema=schema)
    names = [ev.name for ev in evaluators]
    results = [pl.col(f"{n}_result") for n in names]
    frame = pl.concat(
        [
            sample.select("completion_id", "partition_key", "created_at", "judge_sample_reason"),
            wide,
        ],
        how="horizontal",
    )
    frame = frame.with_columns(
        pl.lit(model).alias("judge_model"),
        pl.mean_horizontal([pl.col(n) for n in names]).alias("judge_score"),
        pl.when(pl.any_horizontal([r == "fail" for r in results]).fill_null(False))
        .then(pl.lit("fail"))
        .when(pl.any_horizontal([r == "pass" for r in results]).fill_null(False))
        .then(pl.lit("pass"))
        .otherwise(pl.lit(None, pl.String))
        .alias("judge_result"),
        pl.sum_horizontal([pl.col(n).is_not_null() for n in names])
        .cast(pl.Int32)
        .alias("judge_evaluations_scored"),
        pl.sum_horizontal([pl.col(f"{n}_prompt_tokens") for n in names]).alias(
            "judge_prompt_tokens"
        ),
        pl.sum_horizontal([pl.col(f"{n}_completion_tokens") for n in names]).alias(
            "judge_completion_tokens"
        ),
    ).with_columns(
        (pl.col("judge_prompt_tokens") + pl.col("judge_completion_tokens")).alias(
            "judge_total_tokens"
        )
    )
    schema = table_schema(names)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


# ---- downstream ----------------------------------------------------------------------------------


def join_judgments(scored: pl.DataFrame, judged: pl.DataFrame) -> pl.DataFrame:
    """``scored`` with the judge columns (null for conversations the judge did not sample)."""
    if judged.height == 0:  # judge off, or nothing sampled: no judge columns at all
        return scored
    extra = [c for c in judged.columns if c not in ("partition_key", "created_at")]
    return scored.join(judged.select(extra), on="completion_id", how="left", maintain_order="left")


def judge_issue_rules(evaluators: list[Evaluator]) -> dict[str, tuple[str, str]]:
    return {
        ev.issue: ("warning", f"LLM judge: {ev.name} below {ev.threshold} (1-5)")
        for ev in evaluators
    }


def judge_issues(scored_judged: pl.DataFrame, issue_of: dict[str, str]) -> pl.DataFrame:
    """One issue row per failing judgment (``<e>_result == "fail"``): ``incoherent``,
    ``disfluent``, ``irrelevant``, ``ungrounded``, or a custom evaluator's issue."""
    index = [c for c in CONVERSATION_ISSUES if c not in ("issue", "severity", "detail")]
    parts = []
    for name, issue in issue_of.items():
        if f"{name}_result" not in scored_judged.columns:
            continue
        parts.append(
            scored_judged.filter(pl.col(f"{name}_result") == "fail").select(
                *index,
                pl.lit(issue).alias("issue"),
                pl.lit("warning").alias("severity"),
                pl.format(
                    "LLM judge {} {} < {}: {}",
                    pl.lit(name),
                    pl.col(name),
                    pl.col(f"{name}_threshold"),
                    pl.col(f"{name}_reason").fill_null("").str.slice(0, 240),
                ).alias("detail"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=CONVERSATION_ISSUES)
    return pl.concat(parts).select(list(CONVERSATION_ISSUES)).cast(CONVERSATION_ISSUES)


def summarize(judged: pl.DataFrame) -> dict[str, Any]:
    """Judge figures of a window: per evaluator, and overall (``judge_average_score``,
    ``judge_pass_rate``, ``judge_failure_rate``)."""
    names = evaluator_names(judged)
    out: dict[str, Any] = {"judged_conversations": 0, "evaluators": {}}
    if judged.height == 0 or not names:
        out.update(judge_average_score=None, judge_pass_rate=None, judge_failure_rate=None)
        return out
    out["judged_conversations"] = judged.filter(pl.col("judge_evaluations_scored") > 0).height
    passed = scored = attempted = bad = 0
    for n in names:
        row = judged.select(
            pl.col(n).count().alias("scored"),
            pl.col(n).mean().alias("average"),
            (pl.col(f"{n}_result") == "pass").sum().alias("passed"),
            pl.col(f"{n}_status").is_in(["unparseable", "failed"]).sum().alias("bad"),
            (pl.col(f"{n}_status") == "nothing_to_ground").sum().alias("nothing_to_ground"),
            (pl.col(f"{n}_status") == "skipped_budget").sum().alias("skipped_budget"),
        ).row(0, named=True)
        k = int(row["scored"])
        out["evaluators"][n] = {
            "scored": k,
            "average": round(row["average"], 4) if row["average"] is not None else None,
            "pass_rate": round(row["passed"] / k, 4) if k else None,
            "failed_or_unparseable": int(row["bad"]),
            "nothing_to_ground": int(row["nothing_to_ground"]),
            "skipped_budget": int(row["skipped_budget"]),
        }
        passed += int(row["passed"])
        scored += k
        attempted += k + int(row["bad"])
        bad += int(row["bad"])
    avg = judged["judge_score"].mean()
    out["judge_average_score"] = round(float(avg), 4) if avg is not None else None
    out["judge_pass_rate"] = round(passed / scored, 4) if scored else None
    out["judge_failure_rate"] = round(bad / attempted, 4) if attempted else None
    return out


def with_judge_issues(
    issues: pl.DataFrame, scored: pl.DataFrame, judged: pl.DataFrame, issue_of: dict[str, str]
) -> pl.DataFrame:
    """The heuristic issues plus the judge's, ordered by conversation (heuristic ones first)."""
    if judged.height == 0:
        return issues
    extra = judge_issues(join_judgments(scored, judged), issue_of)
    if extra.height == 0:
        return issues
    return pl.concat([issues, extra]).sort("created_at", "completion_id", maintain_order=True)


def partition_summaries(judged: pl.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    by_key = judged.partition_by("partition_key", as_dict=True) if judged.height else {}
    return {k: summarize(by_key.get((k,), judged.clear())) for k in keys}


def segment_summary(scored_judged: pl.DataFrame, segments: tuple[str, ...]) -> dict[str, list]:
    """Per segment value: judged conversations, mean judge_score and the pass rate."""
    if "judge_score" not in scored_judged.columns or scored_judged.height == 0:
        return {}
    judged = scored_judged.filter(pl.col("judge_score").is_not_null())
    if judged.height == 0:
        return {}
    out = {}
    for seg in segments:
        out[seg] = (
            judged.group_by(pl.col(seg).fill_null("unknown").alias("value"))
            .agg(
                pl.len().alias("judged"),
                pl.col("judge_score").mean().round(3).alias("average_judge_score"),
                (pl.col("judge_result") == "pass").mean().round(4).alias("judge_pass_rate"),
            )
            .sort(["judged", "value"], descending=[True, False])
            .to_dicts()
        )
    return out
