"""Integrity checks: blocking. If a partition's ids are not unique, rows fall outside its hour, or
the schema drifted, nothing downstream should be computed from it."""

from __future__ import annotations

import dagster as dg
import polars as pl

from conv_pipeline.core.schema import HOUR_KEY_FORMAT

UNIQUE = "unique_completion_id"
IN_WINDOW = "rows_inside_partition_window"
SCHEMA = "schema_matches_contract"
MATCHES_UPSTREAM = "one_row_per_raw_completion"
KNOWN_ISSUES = "issues_reference_scored_rows"


def specs(asset_key: dg.AssetKey, names: list[str]) -> list[dg.AssetCheckSpec]:
    descriptions = {
        UNIQUE: "Every completion_id appears once (across the partitions of the run).",
        IN_WINDOW: "Every row's created_at lies inside its partition's hour.",
        SCHEMA: "Columns and types are exactly the warehouse contract.",
        MATCHES_UPSTREAM: "Exactly one scored row per raw completion.",
        KNOWN_ISSUES: "Every issue row points at a scored conversation of the same partition.",
    }
    return [
        dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=descriptions[name])
        for name in names
    ]


def unique_ids(asset_key: dg.AssetKey, df: pl.DataFrame) -> dg.AssetCheckResult:
    dups = df.filter(pl.col("completion_id").is_duplicated())["completion_id"].unique().sort()
    return dg.AssetCheckResult(
        check_name=UNIQUE,
        asset_key=asset_key,
        passed=dups.len() == 0,
        metadata={"duplicate_ids": dups.len(), "examples": ", ".join(dups.head(5).to_list())},
    )


def inside_window(asset_key: dg.AssetKey, df: pl.DataFrame) -> dg.AssetCheckResult:
    outside = df.filter(
        pl.col("created_at").dt.truncate("1h").dt.strftime(HOUR_KEY_FORMAT)
        != pl.col("partition_key")
    ).height
    return dg.AssetCheckResult(
        check_name=IN_WINDOW,
        asset_key=asset_key,
        passed=outside == 0,
        metadata={"rows_outside_window": outside},
    )


def schema_matches(
    asset_key: dg.AssetKey, df: pl.DataFrame, contract: dict[str, pl.DataType]
) -> dg.AssetCheckResult:
    actual = {k: str(v) for k, v in df.schema.items()}
    expected = {k: str(v) for k, v in contract.items()}
    diff = {
        k: f"{actual.get(k, 'missing')} (expected {expected.get(k, 'absent')})"
        for k in sorted(set(actual) | set(expected))
        if actual.get(k) != expected.get(k)
    }
    return dg.AssetCheckResult(
        check_name=SCHEMA,
        asset_key=asset_key,
        passed=not diff,
        metadata={"differences": dg.MetadataValue.json(diff), "columns": len(actual)},
    )


def matches_upstream(
    asset_key: dg.AssetKey, scored: pl.DataFrame, raw_ids: pl.Series
) -> dg.AssetCheckResult:
    missing = (
        raw_ids.len() - scored.select(pl.col("completion_id").is_in(raw_ids.implode()).sum()).item()
    )
    return dg.AssetCheckResult(
        check_name=MATCHES_UPSTREAM,
        asset_key=asset_key,
        passed=scored.height == raw_ids.len() and missing == 0,
        metadata={"raw_rows": raw_ids.len(), "scored_rows": scored.height},
    )


def issues_reference_scored(
    asset_key: dg.AssetKey, issues: pl.DataFrame, scored_ids: pl.Series
) -> dg.AssetCheckResult:
    orphans = issues.filter(~pl.col("completion_id").is_in(scored_ids.implode())).height
    return dg.AssetCheckResult(
        check_name=KNOWN_ISSUES,
        asset_key=asset_key,
        passed=orphans == 0,
        metadata={"orphan_issue_rows": orphans},
    )
