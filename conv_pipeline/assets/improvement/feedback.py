"""``conversation_feedback`` (daily): explicit user feedback joined to the scores, and the scores'
agreement with it. The rules are in ``core/improvement/feedback.py``; docs/FEEDBACK.md explains
every rule and config key."""

from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.improvement.common import (
    day_start,
    hours_of,
    one_or_many,
    read_window,
    write_day_table,
    write_report,
)
from conv_pipeline.assets.metadata import md_table
from conv_pipeline.core.config import FeedbackSettings, MonitoringConfig
from conv_pipeline.core.files import atomic_write_parquet
from conv_pipeline.core.improvement import feedback as fb
from conv_pipeline.core.privacy import redaction
from conv_pipeline.core.schema import CONVERSATION_FEEDBACK, FEEDBACK_AGREEMENT
from conv_pipeline.core.storage import DataStore
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore

_RAW_COLUMNS = ["completion_id", "partition_key", "metadata"]


def feedback_path(store: DataStore, configured: str) -> Path:
    path = Path(configured).expanduser()
    return path if path.is_absolute() else store.root / path


def _feedback_files(store: DataStore, st: FeedbackSettings, redactor, source: Path):
    """The feedback files' rows, read once per run (they are keyed by id, not by day): comments
    redacted, one row per completion; bad and superseded rows go to ``rejected_records``."""
    rows, bad = fb.read_feedback_files(source, st, store.root)
    if redactor is not None and rows.height:
        # Comments leave the raw layer here: they are redacted like every other text.
        comments, _ = redactor.redact_series(rows["comment"])
        rows = rows.with_columns(comments)
    rows, superseded = fb.resolve(rows)
    atomic_write_parquet(
        store.rejected_dir("feedback") / "files.parquet",
        redaction.redact_excerpts(pl.concat([fb.rejected_rows(bad), fb.rejected_rows(superseded)])),
    )
    return rows, bad, superseded


def _feedback_day(
    store: DataStore, st: FeedbackSettings, file_rows: pl.DataFrame, day: str
) -> tuple[dict, dict, set[str]]:
    scored, issues, raw = read_window(store, hours_of(day_start(day), 1), _RAW_COLUMNS)
    md_rows, md_bad = fb.from_metadata(raw, st)
    from_files = file_rows.join(scored.select("completion_id"), on="completion_id", how="semi")
    winners, superseded = fb.resolve(pl.concat([md_rows, from_files], how="vertical_relaxed"))
    # Only metadata rows lose here (a file row that lost to a later file row already went to
    # files.parquet): a file row beaten by metadata is recorded too.
    atomic_write_parquet(
        store.rejected_dir("feedback") / f"metadata-{day}.parquet",
        pl.concat([fb.rejected_rows(md_bad), fb.rejected_rows(superseded)]),
    )
    table = fb.join_scores(
        fb.with_negative(winners, st.negative_rating_at_most),
        raw,
        scored,
        issues,
        day,
        st.judge_score_column,
    )
    result = fb.agreement(table, st, day)
    result["conversations"] = scored.height
    result["coverage"] = table.height / scored.height if scored.height else None
    result["rejected_metadata_rows"] = md_bad.height
    md = fb.render_markdown(result)
    write_day_table(store, "conversation_feedback", day, table, CONVERSATION_FEEDBACK)
    write_day_table(store, "feedback_agreement", day, fb.to_table(result), FEEDBACK_AGREEMENT)
    path = write_report(store, "feedback", day, md, result)
    overall = next(r for r in result["segments"] if r["dimension"] == "all")
    row = {
        "day": day,
        "conversations": scored.height,
        "with_feedback": table.height,
        "negative": result["negative"],
        "auc_quality": overall["auc_negative"],
    }
    last = {"md": md, "path": path, "result": result, "overall": overall}
    return row, last, set(from_files["completion_id"].to_list())


def _unknown_ids(store: DataStore, file_rows: pl.DataFrame) -> int:
    """Feedback for ids the warehouse does not hold (yet): kept in the files, counted."""
    raw_files = list((store.tables_dir / "raw_completions").glob("*/*.parquet"))
    known = (
        pl.scan_parquet(raw_files).select("completion_id").collect()
        if raw_files
        else pl.DataFrame(schema={"completion_id": pl.String})
    )
    return file_rows.join(known, on="completion_id", how="anti").height


def build_conversation_feedback(parts: Partitions, config: MonitoringConfig) -> dg.AssetsDefinition:
    st = config.improvement.feedback

    @dg.asset(
        key=keys.FEEDBACK,
        deps=[keys.RAW, keys.SCORED, keys.ISSUES],
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.IMPROVEMENT,
        kinds={"polars", "duckdb"},
        description=(
            "Explicit user feedback (thumbs, ratings, comments) from the completions' metadata "
            "and from feedback files keyed by completion id, validated (bad rows in "
            "`rejected_records`), one per completion, joined to the day's scores and issues "
            "(table `conversation_feedback`); with the scores' agreement: negative-feedback rate "
            "by quality band, AUC, point-biserial and Spearman correlations by segment (table "
            "`feedback_agreement`, `reports/feedback/<day>.md`)."
        ),
    )
    def conversation_feedback(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store
        source = feedback_path(store, st.path)
        redactor = redaction.redactor_from(pipeline.config.privacy)
        file_rows, file_bad, file_superseded = _feedback_files(store, st, redactor, source)
        matched: set[str] = set()
        per_day, last = [], {}
        for day in context.partition_keys:
            row, last, ids = _feedback_day(store, st, file_rows, day)
            per_day.append(row)
            matched |= ids
        store.refresh_warehouse()
        overall = last["overall"]
        meta = {
            "path": dg.MetadataValue.path(str(last["path"])),
            "feedback_source": dg.MetadataValue.path(str(source)),
            "feedback_files_rejected_rows": file_bad.height,
            "feedback_files_superseded_rows": file_superseded.height,
            "feedback_file_rows_matched_in_run": len(matched),
            "feedback_for_unknown_completions": _unknown_ids(store, file_rows),
        }
        single = {
            "dagster/row_count": per_day[-1]["with_feedback"],
            "report": dg.MetadataValue.md(last["md"]),
            "negative_rate_by_band": dg.MetadataValue.md(
                md_table(pl.DataFrame(last["result"]["negative_rate_by_band"]))
            ),
            "auc_quality_score": overall["auc_negative"],
            "point_biserial_r": overall["point_biserial_r"],
            "spearman_rho": overall["spearman_rho"],
            "verdict": fb.verdict(overall),
        }
        single = {k: v for k, v in single.items() if v is not None}
        return dg.MaterializeResult(metadata=one_or_many(meta, per_day, single))

    return conversation_feedback
