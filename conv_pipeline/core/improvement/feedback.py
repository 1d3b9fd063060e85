"""Explicit user feedback, joined to the scores, and how well the scores agree with it.

Sources (docs/FEEDBACK.md):

* **metadata** of the stored completions: the keys named by ``feedback.thumbs_key`` (``feedback``),
  ``rating_key`` (``rating``) and ``comment_key`` (``feedback_comment``);
* **files** under ``feedback.path`` (default ``$CONV_PIPELINE_DATA_DIR/feedback``): ``*.jsonl``
  (one object per line) and ``*.csv`` (a header row), keyed by ``completion_id``, with ``thumbs``
  (or ``feedback``), ``rating``, ``comment`` and optionally ``created_at`` (ISO 8601 or seconds).

Each row is validated; a bad row becomes a ``rejected_records`` row with its reason. Several rows
for the same completion are resolved deterministically: the latest ``created_at`` wins (a row
without one counts as older than any dated row), then a file row over metadata, then the last row
by file path and line; the others are rejected as superseded, naming the winner.

Agreement: per score (``quality_score``, and the judge's column when it exists), per segment, the
negative-feedback rate, the AUC of a low score for predicting negative feedback (Mann-Whitney,
with Hanley-McNeil 95% interval), the point-biserial correlation of the score with positive
feedback and the Spearman correlation with the rating; and the thumbs-down rate per quality band.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy import stats

from conv_pipeline.core.schema import (
    CONVERSATION_FEEDBACK,
    FEEDBACK_AGREEMENT,
    REJECTED_RECORDS,
    TS,
    conform,
    empty,
)
from conv_pipeline.core.scoring.rubric import BANDS

EXCERPT_CHARS = 300
UP = ("up", "thumbs_up", "thumbsup", "positive", "like", "good", "👍", "+1", "1", "true", "yes")
DOWN = (
    "down",
    "thumbs_down",
    "thumbsdown",
    "negative",
    "dislike",
    "bad",
    "👎",
    "-1",
    "0",
    "false",
    "no",
)

_RAW_FIELDS = ("completion_id", "thumbs", "rating", "comment", "created_at")


def _lines(path: Path) -> pl.DataFrame:
    text = path.read_bytes().decode("utf-8", "replace").lstrip("\ufeff")
    lines = text.split("\n")
    frame = pl.DataFrame(
        {"line": pl.int_range(1, len(lines) + 1, eager=True), "text": lines},
        schema={"line": pl.Int64, "text": pl.String},
    ).with_columns(pl.col("text").str.strip_suffix("\r"))
    return frame.filter(pl.col("text").str.strip_chars() != "")


_JSONL_SQL = """
WITH v AS (
    SELECT line, text, json_valid(text) AS valid,
        -- the JSON functions only ever see valid JSON
        CASE WHEN json_valid(text) THEN text ELSE 'null' END AS safe
    FROM lines
)
SELECT line, text,
    valid AND json_type(safe) = 'OBJECT' AS ok,
    CASE WHEN valid THEN json_type(safe) END AS top,
    CASE WHEN json_type(safe) = 'OBJECT' THEN json_extract_string(safe, [
        '$.completion_id', '$.thumbs', '$.feedback', '$.rating', '$.comment', '$.created_at',
        '$.timestamp']) END AS f
FROM v
"""


def read_jsonl(path: Path) -> pl.DataFrame:
    """Raw fields of a JSONL feedback file (strings), with ``problem`` for unparseable lines."""
    lines = _lines(path)
    con = duckdb.connect()
    try:
        con.register("lines", lines.to_arrow())
        out = con.sql(_JSONL_SQL).pl()
    finally:
        con.close()
    f = pl.col("f")
    return out.select(
        "line",
        pl.col("text").str.slice(0, EXCERPT_CHARS).alias("raw_excerpt"),
        pl.when(~pl.col("ok"))
        .then(
            pl.when(pl.col("top").is_null())
            .then(pl.lit("malformed JSON"))
            .otherwise(pl.lit("not a JSON object"))
        )
        .alias("problem"),
        f.list.get(0, null_on_oob=True).alias("completion_id"),
        pl.coalesce(f.list.get(1, null_on_oob=True), f.list.get(2, null_on_oob=True)).alias(
            "thumbs"
        ),
        f.list.get(3, null_on_oob=True).alias("rating"),
        f.list.get(4, null_on_oob=True).alias("comment"),
        pl.coalesce(f.list.get(5, null_on_oob=True), f.list.get(6, null_on_oob=True)).alias(
            "created_at"
        ),
    )


def read_csv(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        return pl.DataFrame(
            {"line": [None], "raw_excerpt": [""], "problem": [f"unreadable CSV: {exc}"]},
            schema={"line": pl.Int64, "raw_excerpt": pl.String, "problem": pl.String},
        )
    cols = {c.strip().lower(): c for c in df.columns}

    def col(*names: str) -> pl.Expr:
        for n in names:
            if n in cols:
                return pl.col(cols[n]).str.strip_chars()
        return pl.lit(None, pl.String)

    return df.select(
        # Row numbers of the data rows (the header is line 1).
        pl.int_range(2, df.height + 2).cast(pl.Int64).alias("line"),
        pl.concat_str([pl.col(c).fill_null("") for c in df.columns], separator=",")
        .str.slice(0, EXCERPT_CHARS)
        .alias("raw_excerpt"),
        pl.lit(None, pl.String).alias("problem"),
        col("completion_id").alias("completion_id"),
        col("thumbs", "feedback").alias("thumbs"),
        col("rating").alias("rating"),
        col("comment").alias("comment"),
        col("created_at", "timestamp").alias("created_at"),
    )


def feedback_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in (".jsonl", ".csv") and not p.name.startswith(".")
    )


def _parse_time(expr: pl.Expr) -> pl.Expr:
    s = expr.str.strip_chars()
    seconds = s.cast(pl.Float64, strict=False)
    iso = s.str.replace(r"Z$", "+00:00").str.to_datetime(
        time_zone="UTC", strict=False, time_unit="us"
    )
    return (
        pl.when(seconds.is_not_null())
        .then(
            pl.from_epoch(
                (seconds * 1_000_000).cast(pl.Int64), time_unit="us"
            ).dt.replace_time_zone("UTC")
        )
        .otherwise(iso)
        .cast(TS)
    )


def normalize(raw: pl.DataFrame, settings, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate raw string fields into (feedback rows, rejected rows with ``reason``)."""
    thumbs = pl.col("thumbs").str.strip_chars().str.to_lowercase()
    rating = pl.col("rating").str.strip_chars().cast(pl.Float64, strict=False)
    comment = pl.col("comment").str.strip_chars()
    ts = _parse_time(pl.col("created_at"))
    lo, hi = settings.rating_min, settings.rating_max
    df = raw.with_columns(
        pl.when(thumbs.is_in(UP))
        .then(pl.lit("up"))
        .when(thumbs.is_in(DOWN))
        .then(pl.lit("down"))
        .alias("_thumbs"),
        rating.alias("_rating"),
        pl.when(comment != "").then(comment).alias("_comment"),
        ts.alias("_at"),
    )
    reason = (
        pl.when(pl.col("problem").is_not_null())
        .then(pl.col("problem"))
        .when(pl.col("completion_id").is_null() | (pl.col("completion_id").str.strip_chars() == ""))
        .then(pl.lit('missing field "completion_id"'))
        .when(pl.col("thumbs").is_not_null() & (thumbs != "") & pl.col("_thumbs").is_null())
        .then(
            pl.format(
                'unknown thumbs value "{}" (expected up/down, true/false, 1/-1)', pl.col("thumbs")
            )
        )
        .when(
            pl.col("rating").is_not_null()
            & (pl.col("rating").str.strip_chars() != "")
            & pl.col("_rating").is_null()
        )
        .then(pl.format('rating must be a number (got "{}")', pl.col("rating")))
        .when(pl.col("_rating").is_not_null() & ~pl.col("_rating").is_between(lo, hi))
        .then(pl.format("rating {} is outside {}–{}", pl.col("_rating"), pl.lit(lo), pl.lit(hi)))
        .when(
            pl.col("created_at").is_not_null()
            & (pl.col("created_at").str.strip_chars() != "")
            & pl.col("_at").is_null()
        )
        .then(
            pl.format(
                'created_at "{}" is neither ISO 8601 nor seconds since the epoch',
                pl.col("created_at"),
            )
        )
        .when(
            pl.col("_thumbs").is_null() & pl.col("_rating").is_null() & pl.col("_comment").is_null()
        )
        .then(pl.lit("no feedback: none of thumbs, rating or comment"))
    )
    df = df.with_columns(reason.alias("reason"))
    rejected = df.filter(pl.col("reason").is_not_null())
    good = df.filter(pl.col("reason").is_null()).select(
        pl.col("completion_id").str.strip_chars(),
        pl.lit(source).alias("feedback_source"),
        "feedback_file",
        pl.col("line").alias("feedback_line"),
        pl.col("_at").alias("feedback_at"),
        pl.col("_thumbs").alias("thumbs"),
        pl.col("_rating").alias("rating"),
        pl.col("_comment").str.slice(0, settings.max_comment_chars).alias("comment"),
    )
    return good, rejected


def read_feedback_files(path: Path, settings, root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every feedback file under ``path``: (valid rows, rejected rows)."""
    goods, bads = [], []
    for file in feedback_files(path):
        try:
            raw = read_csv(file) if file.suffix.lower() == ".csv" else read_jsonl(file)
        except OSError as exc:
            raw = pl.DataFrame(
                {"line": [None], "raw_excerpt": [""], "problem": [f"unreadable file: {exc}"]},
                schema={"line": pl.Int64, "raw_excerpt": pl.String, "problem": pl.String},
            )
        for name in _RAW_FIELDS:
            if name not in raw.columns:
                raw = raw.with_columns(pl.lit(None, pl.String).alias(name))
        try:
            rel = file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = str(file)
        raw = raw.with_columns(pl.lit(rel).alias("feedback_file"))
        good, bad = normalize(raw, settings, "file")
        goods.append(good)
        bads.append(bad)
    good = pl.concat(goods) if goods else normalize(_empty_raw(), settings, "file")[0]
    bad = (
        pl.concat(bads)
        if bads
        else _empty_raw().with_columns(pl.lit(None, pl.String).alias("reason"))
    )
    return good, bad


def _empty_raw() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "line": pl.Int64,
            "raw_excerpt": pl.String,
            "problem": pl.String,
            **{f: pl.String for f in _RAW_FIELDS},
            "feedback_file": pl.String,
        }
    )


def from_metadata(raw: pl.DataFrame, settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feedback in the completions' metadata (a JSON object of strings)."""
    keys = {
        "thumbs": settings.thumbs_key,
        "rating": settings.rating_key,
        "comment": settings.comment_key,
    }
    md = pl.col("metadata")

    def get(key: str | None) -> pl.Expr:
        if not key:
            return pl.lit(None, pl.String)
        # A key is looked up as a JSON path member: quote it so any name works.
        return md.str.json_path_match(f'$["{key}"]')

    frame = raw.select(
        "completion_id",
        pl.lit(None, pl.Int64).alias("line"),
        pl.lit("").alias("raw_excerpt"),
        pl.lit(None, pl.String).alias("problem"),
        get(keys["thumbs"]).alias("thumbs"),
        get(keys["rating"]).alias("rating"),
        get(keys["comment"]).alias("comment"),
        pl.lit(None, pl.String).alias("created_at"),
        pl.lit("metadata").alias("feedback_file"),
        pl.col("partition_key"),
    ).filter(
        pl.col("thumbs").is_not_null()
        | pl.col("rating").is_not_null()
        | pl.col("comment").is_not_null()
    )
    good, bad = normalize(frame, settings, "metadata")
    return good, bad


def resolve(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One feedback per completion: latest ``feedback_at`` (undated oldest), then file over
    metadata, then the last by file and line. Returns (winners, superseded with their reason)."""
    if rows.height == 0:
        return rows, rows.with_columns(pl.lit(None, pl.String).alias("reason")).clear()
    ranked = rows.with_columns(
        pl.col("feedback_at").is_not_null().alias("_dated"),
        (pl.col("feedback_source") == "file").alias("_file"),
    ).sort(
        ["completion_id", "_dated", "feedback_at", "_file", "feedback_file", "feedback_line"],
        nulls_last=False,
    )
    winners = ranked.group_by("completion_id", maintain_order=True).last()
    tagged = ranked.join(
        winners.select(
            "completion_id",
            pl.col("feedback_file").alias("_wfile"),
            pl.col("feedback_line").alias("_wline"),
        ),
        on="completion_id",
    )
    losers = tagged.filter(
        (pl.col("feedback_file") != pl.col("_wfile"))
        | ~pl.col("feedback_line").eq_missing(pl.col("_wline"))
    ).with_columns(
        pl.format(
            "superseded feedback for this completion_id: kept {} line {}",
            "_wfile",
            pl.col("_wline").cast(pl.String).fill_null("–"),
        ).alias("reason")
    )
    drop = ["_dated", "_file"]
    return winners.drop(drop), losers.drop([*drop, "_wfile", "_wline"])


def rejected_rows(bad: pl.DataFrame) -> pl.DataFrame:
    """Rejected feedback as ``rejected_records`` rows (source ``feedback``)."""
    if bad.height == 0:
        return empty(REJECTED_RECORDS)
    return conform(
        bad.select(
            pl.lit("feedback").alias("source"),
            pl.col("feedback_file").alias("source_file"),
            pl.col(next(c for c in ("line", "feedback_line") if c in bad.columns)).alias(
                "source_line"
            ),
            pl.col("completion_id") if "completion_id" in bad.columns else pl.lit(None),
            pl.col("partition_key") if "partition_key" in bad.columns else pl.lit(None),
            "reason",
            (pl.col("raw_excerpt") if "raw_excerpt" in bad.columns else pl.lit("")).alias(
                "raw_excerpt"
            ),
        ),
        REJECTED_RECORDS,
    )


def join_scores(
    feedback: pl.DataFrame,
    raw: pl.DataFrame,
    scored: pl.DataFrame,
    issues: pl.DataFrame,
    day: str,
    judge_column: str,
) -> pl.DataFrame:
    """The day's completions that have feedback, with their scores and issues."""
    per = (
        issues.group_by("completion_id").agg(pl.col("issue").unique().sort().alias("issues"))
        if issues.height
        else pl.DataFrame(schema={"completion_id": pl.String, "issues": pl.List(pl.String)})
    )
    cols = [
        "completion_id",
        "created_at",
        "partition_key",
        "model",
        "user_type",
        "category",
        "prompt_variant",
        "quality_score",
        "quality_band",
    ]
    judge = (
        [pl.col(judge_column).cast(pl.Float64).alias("judge_score")]
        if judge_column in scored.columns
        else []
    )
    base = scored.select(*cols, *judge)
    out = (
        base.join(feedback, on="completion_id", how="inner")
        .join(per, on="completion_id", how="left")
        .with_columns(
            pl.lit(day).alias("day"),
            pl.col("issues").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("issues").list.len().fill_null(0).gt(0).alias("has_issue"),
        )
        .sort("completion_id")
    )
    return conform(out, CONVERSATION_FEEDBACK)


def negative_expr(at_most: float) -> pl.Expr:
    """Negative feedback: thumbs down, or (without thumbs) a rating at or below the threshold."""
    limit = pl.lit(at_most)
    return (
        pl.when(pl.col("thumbs").is_not_null())
        .then(pl.col("thumbs") == "down")
        .when(pl.col("rating").is_not_null())
        .then(pl.col("rating") <= limit)
    )


def with_negative(df: pl.DataFrame, at_most: float) -> pl.DataFrame:
    return df.with_columns(negative_expr(at_most).alias("is_negative"))


# ---- agreement ----------------------------------------------------------------------------------


def auc_low_score(scores: np.ndarray, negative: np.ndarray) -> tuple[float, float, float] | None:
    """AUC of a *low* score for predicting negative feedback (0.5 = no better than chance), and
    its Hanley-McNeil 95% interval. Equals P(score of a positive > score of a negative) + ½ P(tie)."""
    pos, neg = scores[~negative], scores[negative]
    n1, n2 = len(pos), len(neg)
    if not n1 or not n2:
        return None
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    a = float(u) / (n1 * n2)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    se = math.sqrt(max(var, 0.0))
    return a, max(0.0, a - 1.959964 * se), min(1.0, a + 1.959964 * se)


def _segment_stats(df: pl.DataFrame, score: str, min_samples: int) -> dict:
    labelled = df.filter(pl.col("is_negative").is_not_null() & pl.col(score).is_not_null())
    n = labelled.height
    neg = labelled["is_negative"].to_numpy().astype(bool) if n else np.array([], bool)
    s = labelled[score].to_numpy().astype(float) if n else np.array([], float)
    out = {
        "n": n,
        "n_negative": int(neg.sum()),
        "negative_rate": float(neg.mean()) if n else None,
        "auc_negative": None,
        "auc_ci_low": None,
        "auc_ci_high": None,
        "point_biserial_r": None,
        "point_biserial_p": None,
        "spearman_rho": None,
        "spearman_p": None,
    }
    rated = df.filter(pl.col("rating").is_not_null() & pl.col(score).is_not_null())
    out["n_rated"] = rated.height
    ok = n >= min_samples and 0 < neg.sum() < n
    if ok:
        auc = auc_low_score(s, neg)
        if auc:
            out["auc_negative"], out["auc_ci_low"], out["auc_ci_high"] = auc
        if np.ptp(s) > 0:
            r = stats.pointbiserialr((~neg).astype(float), s)
            out["point_biserial_r"], out["point_biserial_p"] = float(r.statistic), float(r.pvalue)
    if rated.height >= min_samples:
        x, y = rated[score].to_numpy(), rated["rating"].to_numpy()
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            rho = stats.spearmanr(x, y)
            out["spearman_rho"], out["spearman_p"] = float(rho.statistic), float(rho.pvalue)
    out["status"] = "tested" if ok else "insufficient_data"
    return out


def agreement(table: pl.DataFrame, settings, day: str) -> dict:
    """How the scores agree with the feedback of one day (see the module docstring)."""
    scores = ["quality_score"]
    if "judge_score" in table.columns and table["judge_score"].drop_nulls().len():
        scores.append("judge_score")
    rows = []
    for score in scores:
        segments = [("all", "all", table)]
        for dim in settings.dimensions:
            if dim not in table.columns:
                continue
            for (value,), part in table.partition_by(
                dim, as_dict=True, maintain_order=True
            ).items():
                if value is not None:
                    segments.append((dim, str(value), part))
        for dim, seg, part in sorted(segments, key=lambda t: (t[0] != "all", t[0], t[1])):
            rows.append(
                {
                    "day": day,
                    "score": score,
                    "dimension": dim,
                    "segment": seg,
                    **_segment_stats(part, score, settings.min_samples),
                }
            )
    bands = (
        table.filter(pl.col("is_negative").is_not_null())
        .group_by("quality_band")
        .agg(pl.len().alias("n"), pl.col("is_negative").sum().alias("negative"))
        .with_columns((pl.col("negative") / pl.col("n")).alias("negative_rate"))
    )
    by_band = {r["quality_band"]: r for r in bands.to_dicts()}
    band_rows = [
        {
            "quality_band": b,
            "n": by_band.get(b, {}).get("n", 0),
            "negative": by_band.get(b, {}).get("negative", 0),
            "negative_rate": by_band.get(b, {}).get("negative_rate"),
        }
        for b in BANDS
    ]
    k = settings.examples
    neg = table.filter(pl.col("is_negative").eq_missing(True))
    pos = table.filter(pl.col("is_negative").eq_missing(False))
    pick = ["completion_id", "quality_score", "thumbs", "rating", "issues", "comment"]
    disagree = {
        "negative_but_high_score": neg.sort(
            ["quality_score", "completion_id"], descending=[True, False]
        )
        .head(k)
        .select(pick)
        .to_dicts(),
        "positive_but_low_score": pos.sort(["quality_score", "completion_id"])
        .head(k)
        .select(pick)
        .to_dicts(),
    }
    by_source = dict(table.group_by("feedback_source").len().sort("feedback_source").rows())
    return {
        "day": day,
        "feedback_rows": table.height,
        "with_thumbs": int(table["thumbs"].is_not_null().sum()),
        "with_rating": int(table["rating"].is_not_null().sum()),
        "with_comment": int(table["comment"].is_not_null().sum()),
        "negative": int(table["is_negative"].eq_missing(True).sum()),
        "by_source": by_source,
        "scores": scores,
        "segments": rows,
        "negative_rate_by_band": band_rows,
        "disagreements": disagree,
        "settings": settings.model_dump(),
    }


def to_table(result: dict) -> pl.DataFrame:
    return conform(
        pl.DataFrame(result["segments"], infer_schema_length=None)
        if result["segments"]
        else empty(FEEDBACK_AGREEMENT),
        FEEDBACK_AGREEMENT,
    )


def _f(v, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) < 1e-3 and v else f"{v:.{nd}f}"
    return str(v)


def verdict(row: dict) -> str:
    if row["status"] != "tested" or row["auc_negative"] is None:
        return "not enough labelled feedback to judge"
    a, lo = row["auc_negative"], row["auc_ci_low"]
    if lo > 0.5:
        strength = "strongly" if a >= 0.8 else "moderately" if a >= 0.7 else "weakly"
        return (
            f"low scores predict negative feedback ({strength}: AUC {a:.2f}, 95% CI from {lo:.2f})"
        )
    return f"the score does not predict negative feedback (AUC {a:.2f}, CI includes 0.5)"


def render_markdown(result: dict) -> str:
    lines = [f"# Feedback vs scores — {result['day']}", ""]
    lines.append(
        f"{result['feedback_rows']} conversations with feedback ({result['with_thumbs']} thumbs, "
        f"{result['with_rating']} ratings, {result['with_comment']} comments; "
        f"{result['negative']} negative). Sources: "
        + (", ".join(f"{k} {v}" for k, v in result["by_source"].items()) or "none")
        + "."
    )
    lines.append("")
    for score in result["scores"]:
        overall = next(
            (r for r in result["segments"] if r["score"] == score and r["dimension"] == "all"), None
        )
        if overall:
            lines.append(f"**{score}**: {verdict(overall)}.")
    lines += [
        "",
        "## Negative feedback by quality band",
        "",
        "| band | n | negative | rate |",
        "|---|---|---|---|",
    ]
    for b in result["negative_rate_by_band"]:
        lines.append(
            f"| {b['quality_band']} | {b['n']} | {b['negative']} | {_f(b['negative_rate'])} |"
        )
    lines += [
        "",
        "## Agreement by segment",
        "",
        "| score | dimension | segment | n | negative rate | AUC (95% CI) | point-biserial r | Spearman ρ (n rated) | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["segments"]:
        auc = (
            "–"
            if r["auc_negative"] is None
            else f"{r['auc_negative']:.3f} ({r['auc_ci_low']:.2f}–{r['auc_ci_high']:.2f})"
        )
        lines.append(
            f"| {r['score']} | {r['dimension']} | {r['segment']} | {r['n']} | {_f(r['negative_rate'])} | {auc} | "
            f"{_f(r['point_biserial_r'])} | {_f(r['spearman_rho'])} ({r['n_rated']}) | {r['status']} |"
        )
    for title, key in (
        ("Negative feedback on high scores", "negative_but_high_score"),
        ("Positive feedback on low scores", "positive_but_low_score"),
    ):
        rows = result["disagreements"][key]
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("_none_")
            continue
        lines += [
            "| completion id | score | thumbs | rating | issues | comment |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            comment = " ".join((r["comment"] or "–").split()).replace("|", "\\|")[:120]
            lines.append(
                f"| `{r['completion_id']}` | {_f(r['quality_score'])} | {_f(r['thumbs'])} | {_f(r['rating'])} | "
                f"{', '.join(r['issues'] or []) or '–'} | {comment} |"
            )
    return "\n".join(lines) + "\n"
