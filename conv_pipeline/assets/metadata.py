"""Metadata helpers: what the Dagster UI shows for each materialization."""

from __future__ import annotations

import dagster as dg
import polars as pl

from conv_pipeline.core.reporting.plots import TITLES, data_uri, image_markdown

_DAGSTER_TYPES = {
    "String": "string",
    "Int64": "int64",
    "Int32": "int32",
    "Float64": "float64",
    "Boolean": "bool",
}


def column_schema(schema: dict[str, pl.DataType], descriptions: dict[str, str] | None = None):
    cols = []
    for name, dtype in schema.items():
        base = str(dtype).split("(")[0]
        cols.append(
            dg.TableColumn(
                name,
                _DAGSTER_TYPES.get(base, str(dtype)),
                description=(descriptions or {}).get(name),
            )
        )
    return dg.TableSchema(columns=cols)


def md_table(df: pl.DataFrame, limit: int = 10, width: int = 80) -> str:
    if df.height == 0:
        return "_no rows_"
    head = df.head(limit)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        cells = []
        for v in row:
            s = "–" if v is None else str(v)
            s = " ".join(s.split()).replace("|", "\\|")
            cells.append(s if len(s) <= width else s[: width - 1] + "…")
        lines.append("| " + " | ".join(cells) + " |")
    if df.height > limit:
        lines.append(f"\n_{df.height - limit:,} more rows_")
    return "\n".join(lines)


def standard(
    df: pl.DataFrame, schema: dict[str, pl.DataType], preview_cols: list[str], partitions: list[str]
) -> dict:
    meta = {
        "dagster/column_schema": column_schema(schema),
        "partitions_written": len(partitions),
        "preview": dg.MetadataValue.md(md_table(df.select(preview_cols))),
    }
    if len(partitions) > 1:
        # Dagster copies a ranged run's metadata onto every partition: a per-partition row count
        # would be wrong there, so the run's total is named for what it is.
        meta["rows_in_run"] = df.height
        meta["partition_range"] = f"{partitions[0]} … {partitions[-1]}"
    else:
        meta["dagster/row_count"] = df.height
    return meta


def plot_metadata(pngs: dict[str, bytes]) -> dict:
    """One ``plot_<name>`` Markdown entry per PNG, the image inline as a data URI: the Dagster UI
    shows it under [Show Markdown] (docs/UI.md)."""
    return {
        f"plot_{name}": dg.MetadataValue.md(
            f"### {TITLES[name]}\n\n" + image_markdown(TITLES[name], data_uri(png)) + "\n"
        )
        for name, png in pngs.items()
    }
