"""The ingestion stage: ``raw_completions``, the stored completions of each hour as the source
holds them, PII-redacted before they leave this layer."""

import dagster as dg
import polars as pl

from conv_pipeline import keys
from conv_pipeline.assets.metadata import standard
from conv_pipeline.checks import integrity
from conv_pipeline.core.privacy import redaction, retention
from conv_pipeline.core.schema import RAW_COMPLETIONS
from conv_pipeline.partitions import Partitions
from conv_pipeline.project import Project
from conv_pipeline.resources import CompletionSource, PipelineStore

HOURS_PER_BATCH = 24
# What the checks and the metadata need of the rows once they are written.
_CHECK_COLUMNS = [
    "completion_id",
    "created_at",
    "partition_key",
    "user_type",
    "category",
    "finish_reason",
    "response",
]


def build_raw_completions(parts: Partitions) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.RAW,
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.INGESTION,
        kinds={"openai", "azure", "duckdb", "polars", "parquet"},
        description=(
            "Stored completions (Azure OpenAI Stored Completions API or a local export) of each "
            "UTC hour of `created`, one row per completion: metadata promoted to columns, input "
            "messages, the final assistant text as `response`, finish reason, tool calls and "
            "token usage. Texts are PII-redacted here, before they leave the raw layer "
            "(docs/PRIVACY.md). Input that cannot be used lands in `rejected_records` with its "
            "reason."
        ),
        check_specs=integrity.specs(
            keys.RAW, [integrity.UNIQUE, integrity.IN_WINDOW, integrity.SCHEMA]
        ),
    )
    def raw_completions(
        context: dg.AssetExecutionContext, source: CompletionSource, pipeline: PipelineStore
    ) -> dg.MaterializeResult:
        store, config = pipeline.store, pipeline.config
        # Hours whose raw detail retention deleted keep what they have (docs/PRIVACY.md).
        kept = retention.retained_keys(store, context.partition_keys)
        hours = [k for k in context.partition_keys if k not in kept]
        redactor, pii = redaction.redactor_from(config.privacy), {}
        sync = source.sync(store, config.partition_start)
        context.log.info(
            f"{source.describe()}: {sync.files} files, {sync.records} usable records, "
            f"{sync.rejected} rejected; parsed {len(sync.files_parsed)} new or changed files"
        )
        # Hours are read and written a day at a time: memory stays bounded on long backfills.
        frames, empty_hours, source_schema = [], 0, None
        for start in range(0, len(hours), HOURS_PER_BATCH):
            batch = hours[start : start + HOURS_PER_BATCH]
            frame = source.read_hours(store, config.partition_start, batch)
            if source_schema is None or frame.schema != RAW_COMPLETIONS:
                source_schema = frame.head(0)
            # PII is redacted before anything leaves the raw layer (core/privacy/redaction.py).
            frame, found = redaction.redact_completions(frame, redactor)
            pii = {
                k: pii.get(k, 0) + found.get(k, 0)
                for k in redaction.KINDS
                if k in pii or k in found
            }
            by_key = frame.partition_by("partition_key", as_dict=True, maintain_order=True)
            for key in batch:
                store.write_hour("raw_completions", key, by_key.get((key,), frame.clear()))
            empty_hours += sum(1 for k in batch if (k,) not in by_key)
            context.log.info(
                f"raw_completions: {start + len(batch)}/{len(hours)} hours written "
                f"(through {batch[-1]}): {frame.height} completions in this batch"
            )
            frames.append(frame.select(_CHECK_COLUMNS))
            del frame, by_key
        frame = (
            pl.concat(frames)
            if frames
            else pl.DataFrame(schema={c: RAW_COMPLETIONS[c] for c in _CHECK_COLUMNS})
        )
        store.refresh_warehouse()
        per_hour = store.rejected_counts()
        rejected = sum(per_hour.get(k, 0) for k in hours)
        metadata = standard(
            frame,
            RAW_COMPLETIONS,
            ["completion_id", "created_at", "user_type", "category", "finish_reason", "response"],
            hours,
        )
        metadata.update(
            {
                "source": source.describe(),
                "rejected_records_in_window": rejected,
                "source_files": sync.files,
                "source_files_parsed_this_run": len(sync.files_parsed),
                "source_rejected_total": sync.rejected,
                "empty_partitions": empty_hours,
                "pii_redactions": dg.MetadataValue.json(pii if redactor else "redaction off"),
                "pii_redactions_total": sum(pii.values()),
                "retained_partitions_left_as_they_are": len(kept),
                **sync.extra,
            }
        )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                integrity.unique_ids(keys.RAW, frame),
                integrity.inside_window(keys.RAW, frame),
                integrity.schema_matches(
                    keys.RAW,
                    source_schema
                    if source_schema is not None
                    else pl.DataFrame(schema=RAW_COMPLETIONS),
                    RAW_COMPLETIONS,
                ),
            ],
        )

    return raw_completions


def build_defs(project: Project) -> dg.Definitions:
    """The ingestion stage: ``raw_completions`` and its blocking integrity checks."""
    return dg.Definitions(
        assets=[build_raw_completions(project.parts)],
        resources=project.uses("source", "pipeline"),
    )
