"""``conversation_feedback`` (group ``improvement``, daily): explicit user feedback joined to the
scores, and the scores' agreement with it. The logic is in ``core/improvement/feedback.py``; docs/FEEDBACK.md
explains every rule and config key."""

from pathlib import Path

import dagster as dg
import polars as pl

from conv_pipeline.assets._meta import md_table
from conv_pipeline.assets._ui import asset_ui
from conv_pipeline.assets.improvement.datasets import (
    _COMMON,
    _one_or_many,
    _report,
    _table_path,
    day_start,
    hours_of,
)
from conv_pipeline.assets.ingestion import RAW_KEY
from conv_pipeline.assets.scoring import ISSUES_KEY, SCORED_KEY
from conv_pipeline.core.config import MonitoringConfig
from conv_pipeline.core.improvement import feedback as fb
from conv_pipeline.core.judge import store as judge_store
from conv_pipeline.core.judge.pipeline import join_judgments
from conv_pipeline.core.privacy import redaction as privacy
from conv_pipeline.core.schema import CONVERSATION_FEEDBACK, FEEDBACK_AGREEMENT, conform
from conv_pipeline.core.storage import DataStore, atomic_write_parquet
from conv_pipeline.partitions import Partitions
from conv_pipeline.resources import PipelineStore

FEEDBACK_KEY = dg.AssetKey("conversation_feedback")
FEEDBACK_ASSETS = ("conversation_feedback",)
_RAW_COLUMNS = [
    "completion_id", "partition_key", "metadata",
]  # fmt: skip


def feedback_path(store: DataStore, configured: str) -> Path:
    path = Path(configured).expanduser()
    return path if path.is_absolute() else store.root / path


def build_feedback_assets(parts: Partitions, config: MonitoringConfig) -> list[dg.AssetsDefinition]:
    st = config.improvement.feedback

    @dg.asset(
        key=FEEDBACK_KEY,
        deps=[RAW_KEY, SCORED_KEY, ISSUES_KEY],
        partitions_def=parts.daily,
        kinds={"polars", "duckdb"},
        description=(
            "Explicit user feedback (thumbs, ratings, comments) from the completions' metadata "
            "and from feedback files keyed by completion id, validated (bad rows in "
            "`rejected_records`), one per completion, joined to the day's scores and issues "
            "(table `conversation_feedback`); with the scores' agreement: negative-feedback rate "
            "by quality band, AUC, point-biserial and Spearman correlations by segment (table "
            "`feedback_agreement`, `reports/feedback/<day>.md`)."
        ),
        **{**_COMMON, **asset_ui("conversation_feedback")},
    )
    def conversation_feedback(
        context: dg.AssetExecutionContext, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store = pipeline.store
        redactor = privacy.redactor_from(pipeline.config.privacy)
        source = feedback_path(store, st.path)
        # Files are read once per run (they are keyed by id, not by day).
        file_rows, file_bad = fb.read_feedback_files(source, st, store.root)
        if redactor is not None and file_rows.height:
            # Comments leave the raw layer here: they are redacted like every other text.
            comments, _ = redactor.redact_series(file_rows["comment"])
            file_rows = file_rows.with_columns(comments)
        file_rows, file_superseded = fb.resolve(file_rows)
        rejected_dir = store.rejected_dir("feedback")
        atomic_write_parquet(
            rejected_dir / "files.parquet",
            privacy.redact_excerpts(
                pl.concat([fb.rejected_rows(file_bad), fb.rejected_rows(file_superseded)])
            ),
        )
        matched: set[str] = set()
        per_day, last = [], {}
        for day in context.partition_keys:
            hours = hours_of(day_start(day), 1)
            # the judge's columns (judge_score …) join the scored rows, as in the warehouse view
            scored = join_judgments(
                store.read_hours("scored_conversations", hours),
                judge_store.read_hours(store, hours),
            )
            issues = store.read_hours("conversation_issues", hours)
            raw = store.read_hours("raw_completions", hours, columns=_RAW_COLUMNS)
            md_rows, md_bad = fb.from_metadata(raw, st)
            ids = scored.select("completion_id")
            from_files = file_rows.join(ids, on="completion_id", how="semi")
            matched |= set(from_files["completion_id"].to_list())
            winners, superseded = fb.resolve(
                pl.concat([md_rows, from_files], how="vertical_relaxed")
            )
            # Only metadata rows lose here (a file row that lost to a later file row already
            # went to files.parquet): a file row beaten by metadata is recorded too.
            atomic_write_parquet(
                rejected_dir / f"metadata-{day}.parquet",
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
            atomic_write_parquet(
                _table_path(store, "conversation_feedback", day),
                conform(table, CONVERSATION_FEEDBACK),
            )
            atomic_write_parquet(
                _table_path(store, "feedback_agreement", day),
                conform(fb.to_table(result), FEEDBACK_AGREEMENT),
            )
            path = _report(store, "feedback", day, md, result)
            overall = next(r for r in result["segments"] if r["dimension"] == "all")
            per_day.append(
                {
                    "day": day,
                    "conversations": scored.height,
                    "with_feedback": table.height,
                    "negative": result["negative"],
                    "auc_quality": overall["auc_negative"],
                }
            )
            last = {"md": md, "path": path, "result": result, "overall": overall}
        store.refresh_warehouse()
        overall = last["overall"]
        raw_files = list((store.tables_dir / "raw_completions").glob("*/*.parquet"))
        known = (
            pl.scan_parquet(raw_files).select("completion_id").collect()
            if raw_files
            else pl.DataFrame(schema={"completion_id": pl.String})
        )
        unknown = file_rows.join(known, on="completion_id", how="anti").height
        meta = {
            "path": dg.MetadataValue.path(str(last["path"])),
            "feedback_source": dg.MetadataValue.path(str(source)),
            "feedback_files_rejected_rows": file_bad.height,
            "feedback_files_superseded_rows": file_superseded.height,
            "feedback_file_rows_matched_in_run": len(matched),
            # Feedback for ids the warehouse does not hold (yet): kept in the files, counted here.
            "feedback_for_unknown_completions": unknown,
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
        return dg.MaterializeResult(metadata=_one_or_many(meta, per_day, single))

    return [conversation_feedback]
