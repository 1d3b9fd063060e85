"""Parse export files (``*.jsonl`` / ``*.jsonl.gz``) into ``raw_completions`` rows.

The parser is vectorized: a file is decoded once, split into lines, and handed to DuckDB as one
column; DuckDB's JSON functions validate and extract every field of every line in bulk. Python only
touches the rare lines DuckDB refuses (to give the exact JSON error, or to repair lone UTF-16
surrogates, which Python's ``json`` accepts and DuckDB does not).

Every line ends up either as a row of ``raw_completions`` or as a row of ``rejected_records`` with
its file, line number and reason. Blank lines are not records and are only counted.

Field rules (documented in docs/DATA.md):

* ``id`` must be a non-empty string, ``created`` a number of seconds since the epoch (integral
  floats are accepted; values that look like milliseconds are rejected with that reason).
* ``response`` is ``choices[0].message.content``: a string as is, ``null``/missing as ``""``, an
  array of content parts as the concatenation of its ``text`` parts. Any other type is rejected.
* ``metadata`` must be an object or null; ``choices`` an array or null.
* ``messages`` is kept as the JSON the export holds (the ``data`` list of the messages endpoint; a
  whole ``{"object": "list", "data": [...]}`` page is unwrapped).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from conv_pipeline.core.schema import (
    HOUR_KEY_FORMAT,
    RAW_COMPLETIONS,
    REJECTED_RECORDS,
    conform,
    empty,
)

EXCERPT_CHARS = 300
CHUNK_LINES = 50_000
# Newest plausible `created` (seconds): year 9999. Larger values are milliseconds or garbage.
MAX_SECONDS = 253_402_300_799
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass
class ParsedFile:
    records: pl.DataFrame
    rejected: pl.DataFrame
    lines: int = 0
    blank_lines: int = 0


def read_text(path: Path) -> tuple[str | None, list[tuple[int | None, str]]]:
    """Return the decoded text of an export file and file-level problems.

    A truncated gzip stream keeps what could be decompressed and reports the truncation; invalid
    UTF-8 is reported per line by the caller (``None`` text means "decode line by line").
    """
    problems: list[tuple[int | None, str]] = []
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data, problem = _gunzip(data)
        if problem:
            problems.append((None, problem))
    try:
        return data.decode("utf-8"), problems
    except UnicodeDecodeError:
        return None, problems + [(None, "__bytes__")]


def _gunzip(data: bytes) -> tuple[bytes, str | None]:
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(rest)
        except zlib.error as exc:
            return bytes(out), f"corrupt gzip data ({exc}); kept what was readable before it"
        if not d.eof:
            return bytes(out), "gzip stream truncated: the file ends early; kept the complete lines"
        rest = d.unused_data.lstrip(b"\x00")
    return bytes(out), None


def _split_lines(path: Path) -> tuple[pl.DataFrame, list[tuple[int | None, str, str]]]:
    """Lines of a file as a frame ``(line_no, text)`` plus per-line/file problems."""
    text, problems = read_text(path)
    rejected: list[tuple[int | None, str, str]] = []
    if text is None:
        problems = [p for p in problems if p[1] != "__bytes__"]
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw, _ = _gunzip(raw)
        texts: list[str] = []
        for i, line in enumerate(raw.split(b"\n"), start=1):
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                texts.append("")
                rejected.append(
                    (
                        i,
                        f"invalid UTF-8 at byte {exc.start} of the line",
                        line[:EXCERPT_CHARS].decode("utf-8", "replace"),
                    )
                )
        lines = texts
    else:
        lines = text.split("\n")
    for line_no, reason in problems:
        rejected.append((line_no, reason, ""))
    return _lines_frame(lines, 1), rejected


def _lines_frame(lines: list[str], first_line: int) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "line_no": pl.int_range(first_line, first_line + len(lines), eager=True),
            "text": lines,
        },
        schema={"line_no": pl.Int64, "text": pl.String},
    )
    if frame.height:
        # A byte-order mark on the first line and Windows line endings are not part of the JSON.
        frame = frame.with_columns(
            pl.when(pl.col("line_no") == 1)
            .then(pl.col("text").str.strip_prefix("\ufeff"))
            .otherwise(pl.col("text"))
            .str.strip_suffix("\r")
        )
    return frame


def _iter_blocks(
    path: Path,
) -> Iterator[tuple[pl.DataFrame, list[tuple[int | None, str, str]], bool]]:
    """Blocks of at most ``CHUNK_LINES`` lines ``(frame, problems, ends_with_newline)``.

    Plain files are streamed, so a file of any size is parsed in bounded memory; gzip files are
    decompressed whole (to keep the readable part of a truncated stream).
    """
    if path.name.endswith(".gz"):
        frame, problems = _split_lines(path)
        trailing = bool(frame.height) and frame["text"][-1] == ""
        yield frame, problems, trailing
        return
    block: list[str] = []
    problems: list[tuple[int | None, str, str]] = []
    first = 1
    line_no = 0
    trailing = False
    with open(path, "rb") as fh:
        for raw in fh:
            line_no += 1
            trailing = raw.endswith(b"\n")
            raw = raw[:-1] if trailing else raw
            try:
                block.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                block.append("")
                problems.append(
                    (
                        line_no,
                        f"invalid UTF-8 at byte {exc.start} of the line",
                        raw[:EXCERPT_CHARS].decode("utf-8", "replace"),
                    )
                )
            if len(block) >= CHUNK_LINES:
                yield _lines_frame(block, first), problems, False
                first, block, problems = line_no + 1, [], []
    if trailing:
        block.append("")  # the empty piece after the final newline, as str.split gives it
    yield _lines_frame(block, first), problems, trailing


# One pass of DuckDB over all lines: validity, the top-level fields, and the derived columns.
_EXTRACT_SQL = r"""
CREATE OR REPLACE TEMP MACRO content_text(c) AS (
    CASE json_type(c)
        WHEN 'VARCHAR' THEN c ->> '$'
        WHEN 'ARRAY' THEN array_to_string(
            list_filter(json_extract_string(c, '$[*].text'), lambda x: x IS NOT NULL), '')
        ELSE NULL
    END
);
CREATE OR REPLACE TEMP MACRO jtype(t) AS (
    CASE t WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number'
           WHEN 'DOUBLE' THEN 'number' ELSE lower(t) END
);
CREATE OR REPLACE TEMP TABLE parsed AS
WITH valid AS (
    SELECT line_no, json_valid(text) AS ok, text FROM lines
),
r AS (
    SELECT line_no, ok,
        CASE WHEN ok THEN json_type(text) END AS top_type,
        CASE WHEN ok AND json_type(text) = 'OBJECT' THEN json_extract(text,
            ['$.id', '$.created', '$.model', '$.choices', '$.usage', '$.metadata', '$.messages'])
        END AS r
    FROM valid
),
f AS (
    SELECT line_no, ok, top_type,
        r[1] AS j_id, json_type(r[1]) AS t_id,
        r[2] AS j_created, json_type(r[2]) AS t_created,
        r[3] AS j_model, json_type(r[3]) AS t_model,
        r[4] AS j_choices, json_type(r[4]) AS t_choices,
        r[5] AS j_usage, json_type(r[5]) AS t_usage,
        r[6] AS j_metadata, json_type(r[6]) AS t_metadata,
        CASE
            WHEN json_type(r[7]) = 'OBJECT' AND json_type(r[7], '$.data') = 'ARRAY'
            THEN r[7] -> '$.data'
            ELSE r[7]
        END AS j_messages
    FROM r
),
g AS (
    SELECT *,
        CASE WHEN t_choices = 'ARRAY' THEN json_array_length(j_choices) ELSE 0 END AS n_choices,
        CASE WHEN t_choices = 'ARRAY' THEN json_type(j_choices, '$[0]') END AS t_c0,
        CASE WHEN t_choices = 'ARRAY' THEN json_extract(j_choices, [
            '$[0].message.content', '$[0].finish_reason', '$[0].message.refusal',
            '$[0].message.tool_calls', '$[0].message.function_call']) END AS c,
        CASE WHEN t_created IN ('BIGINT', 'UBIGINT', 'DOUBLE')
             THEN TRY_CAST(j_created ->> '$' AS DOUBLE) END AS created_num,
        json_type(j_messages) AS t_messages,
        CASE WHEN json_type(j_messages) = 'ARRAY'
             THEN json_extract_string(j_messages, '$[*].role') END AS roles,
        CASE WHEN t_metadata = 'OBJECT' THEN json_extract_string(j_metadata, [
            '$.user_type', '$.category', '$.conversation_id', '$.prompt_variant',
            '$.pipeline_source']) END AS md,
        CASE WHEN t_usage = 'OBJECT' THEN json_extract_string(j_usage, [
            '$.prompt_tokens', '$.completion_tokens', '$.total_tokens']) END AS u
    FROM f
),
h AS (
    SELECT *,
        json_type(c[1]) AS t_content,
        json_type(c[4]) AS t_tool_calls,
        len(roles) + 1 - list_position(list_reverse(roles), 'user') AS last_user_idx,
        coalesce(nullif(list_position(roles, 'system'), 0), list_position(roles, 'developer'))
            AS system_idx
    FROM g
)
SELECT
    line_no,
    CASE
        WHEN NOT ok THEN 'malformed JSON'
        WHEN top_type <> 'OBJECT' THEN 'not a JSON object (got ' || jtype(top_type) || ')'
        WHEN t_id IS NULL OR t_id = 'NULL' THEN 'missing field "id"'
        WHEN t_id <> 'VARCHAR' THEN '"id" must be a string (got ' || jtype(t_id) || ')'
        WHEN trim(j_id ->> '$') = '' THEN '"id" is empty'
        WHEN t_created IS NULL OR t_created = 'NULL' THEN 'missing field "created"'
        WHEN created_num IS NULL
            THEN '"created" must be a number of seconds since the epoch (got '
                 || jtype(t_created) || ')'
        WHEN created_num > 100000000000 AND created_num <= 100000000000000
            THEN '"created" looks like milliseconds, expected seconds since the epoch'
        WHEN created_num < 0 OR created_num > $max_seconds OR isnan(created_num)
            THEN '"created" is out of range: ' || (j_created ->> '$')
        WHEN t_choices IS NOT NULL AND t_choices NOT IN ('ARRAY', 'NULL')
            THEN '"choices" must be an array (got ' || jtype(t_choices) || ')'
        WHEN n_choices > 0 AND t_c0 <> 'OBJECT'
            THEN '"choices[0]" must be an object'
        WHEN t_content IS NOT NULL AND t_content NOT IN ('VARCHAR', 'ARRAY', 'NULL')
            THEN '"choices[0].message.content" must be a string, an array of content parts or '
                 || 'null (got ' || jtype(t_content) || ')'
        WHEN t_metadata IS NOT NULL AND t_metadata NOT IN ('OBJECT', 'NULL')
            THEN '"metadata" must be an object (got ' || jtype(t_metadata) || ')'
        ELSE NULL
    END AS reason,
    CASE WHEN t_id = 'VARCHAR' THEN j_id ->> '$' END AS completion_id,
    TRY_CAST(floor(created_num) AS BIGINT) AS created,
    CASE WHEN t_model IS NULL OR t_model = 'NULL' THEN NULL ELSE j_model ->> '$' END AS model,
    CASE WHEN t_metadata = 'OBJECT' THEN CAST(j_metadata AS VARCHAR) ELSE '{}' END AS metadata,
    md[1] AS user_type,
    md[2] AS category,
    md[3] AS conversation_id,
    md[4] AS prompt_variant,
    md[5] AS pipeline_source,
    CASE WHEN t_messages IN ('ARRAY', 'OBJECT', 'VARCHAR')
         THEN CAST(j_messages AS VARCHAR) END AS messages,
    CASE WHEN t_messages = 'ARRAY' THEN len(roles) END AS n_messages,
    CASE WHEN system_idx > 0
         THEN content_text(j_messages -> ('$[' || (system_idx - 1) || '].content'))
    END AS system_prompt,
    CASE WHEN list_position(roles, 'user') > 0
         THEN content_text(j_messages -> ('$[' || (last_user_idx - 1) || '].content'))
    END AS last_user_message,
    coalesce(content_text(c[1]), '') AS response,
    (t_content IS NULL OR t_content = 'NULL') AS response_is_null,
    c[2] ->> '$' AS finish_reason,
    CASE WHEN json_type(c[3]) = 'VARCHAR' THEN c[3] ->> '$' END AS refusal,
    CASE WHEN t_tool_calls = 'ARRAY' THEN CAST(c[4] AS VARCHAR) END AS tool_calls,
    CASE WHEN t_tool_calls = 'ARRAY' THEN json_array_length(c[4])
         WHEN json_type(c[5]) = 'OBJECT' THEN 1
         ELSE 0 END AS n_tool_calls,
    n_choices,
    TRY_CAST(u[1] AS BIGINT) AS prompt_tokens,
    TRY_CAST(u[2] AS BIGINT) AS completion_tokens,
    TRY_CAST(u[3] AS BIGINT) AS total_tokens,
    CASE WHEN t_usage = 'OBJECT' THEN CAST(j_usage AS VARCHAR) END AS usage
FROM h
"""


def _repair_invalid(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[int, str, str]]]:
    """Lines DuckDB's parser refused: exact JSON error, or a repaired line when Python's parser
    accepts it (lone surrogates → U+FFFD, one code point for one, so lengths and scores hold)."""
    repaired_no: list[int] = []
    repaired_text: list[str] = []
    rejected: list[tuple[int, str, str]] = []
    for line_no, text in frame.iter_rows():
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = (
                f"malformed JSON: {exc.msg} (line column {exc.colno})"
                if isinstance(exc, json.JSONDecodeError)
                else "malformed JSON: nested too deeply"
            )
            rejected.append((line_no, reason, text[:EXCERPT_CHARS]))
            continue
        fixed = _SURROGATES.sub("\ufffd", json.dumps(obj, ensure_ascii=False))
        repaired_no.append(line_no)
        repaired_text.append(fixed)
    return (
        pl.DataFrame(
            {"line_no": repaired_no, "text": repaired_text},
            schema={"line_no": pl.Int64, "text": pl.String},
        ),
        rejected,
    )


def parse_lines(
    lines: pl.DataFrame, *, source_file: str, partition_start: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse a frame ``(line_no, text)`` of non-blank lines into (records, rejected)."""
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        parsed = _run_extract(con, lines)
        bad_json = (
            parsed.filter(pl.col("reason").eq_missing("malformed JSON"))
            .select("line_no")
            .join(lines, on="line_no", how="left")
        )
        repaired_rows = pl.DataFrame()
        repaired = pl.DataFrame()
        python_rejects: list[tuple[int, str, str]] = []
        if bad_json.height:
            repaired, python_rejects = _repair_invalid(bad_json)
            if repaired.height:
                repaired_rows = _run_extract(con, repaired).with_columns(
                    pl.lit("lone UTF-16 surrogates replaced with U+FFFD").alias("ingest_note")
                )
            parsed = parsed.filter(pl.col("reason").ne_missing("malformed JSON"))
    finally:
        con.close()
    if repaired_rows.height:
        parsed = pl.concat([parsed, repaired_rows], how="diagonal_relaxed").sort("line_no")
    if "ingest_note" not in parsed.columns:
        parsed = parsed.with_columns(pl.lit(None, pl.String).alias("ingest_note"))

    start_s = int(partition_start.timestamp())
    parsed = parsed.with_columns(
        pl.when(pl.col("reason").is_null() & (pl.col("created") < start_s))
        .then(
            pl.lit(
                "created before the first partition "
                f"({partition_start.astimezone(UTC).strftime('%Y-%m-%dT%H:%MZ')})"
            )
        )
        .otherwise(pl.col("reason"))
        .alias("reason")
    )
    good = parsed.filter(pl.col("reason").is_null())
    records = conform(
        good.with_columns(
            pl.from_epoch("created", time_unit="s").dt.replace_time_zone("UTC").alias("created_at"),
            pl.lit(source_file).alias("source_file"),
            pl.col("line_no").alias("source_line"),
        ).with_columns(
            pl.col("created_at")
            .dt.truncate("1h")
            .dt.strftime(HOUR_KEY_FORMAT)
            .alias("partition_key"),
        ),
        RAW_COMPLETIONS,
    )
    bad = (
        parsed.filter(pl.col("reason").is_not_null())
        .select("line_no", "completion_id", "created", "reason")
        .join(
            pl.concat([lines.join(repaired, on="line_no", how="anti"), repaired])
            if repaired.height
            else lines,
            on="line_no",
            how="left",
        )
    )
    rejected_frames = [
        bad.select(
            pl.lit(source_file).alias("source_file"),
            pl.col("line_no").alias("source_line"),
            "completion_id",
            pl.when(pl.col("created").is_not_null() & pl.col("created").is_between(0, MAX_SECONDS))
            .then(
                pl.from_epoch("created", time_unit="s")
                .dt.replace_time_zone("UTC")
                .dt.truncate("1h")
                .dt.strftime(HOUR_KEY_FORMAT)
            )
            .alias("partition_key"),
            "reason",
            pl.col("text").str.slice(0, EXCERPT_CHARS).alias("raw_excerpt"),
        )
    ]
    if python_rejects:
        rejected_frames.append(_rejects_frame(source_file, python_rejects))
    rejected = pl.concat(
        [conform(f, REJECTED_RECORDS) for f in rejected_frames], how="vertical"
    ).sort("source_line", nulls_last=True)
    return records, rejected


def _run_extract(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame) -> pl.DataFrame:
    con.register("lines", lines.to_arrow())
    try:
        con.execute(_EXTRACT_SQL.replace("$max_seconds", str(MAX_SECONDS)))
        return con.sql("SELECT * FROM parsed ORDER BY line_no").pl()
    finally:
        con.unregister("lines")


def _rejects_frame(source_file: str, rows: list[tuple[int | None, str, str]]) -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "source_file": [source_file] * len(rows),
                "source_line": [r[0] for r in rows],
                "reason": [r[1] for r in rows],
                "raw_excerpt": [r[2] for r in rows],
            },
            schema={
                "source_file": pl.String,
                "source_line": pl.Int64,
                "reason": pl.String,
                "raw_excerpt": pl.String,
            },
        ),
        REJECTED_RECORDS,
    )


def parse_export_file(path: Path, *, source_file: str, partition_start: datetime) -> ParsedFile:
    """Parse one export file into records and rejections (never raises for bad content)."""
    record_parts: list[pl.DataFrame] = []
    rejected_parts: list[pl.DataFrame] = []
    all_problems: list[tuple[int | None, str, str]] = []
    total = nonblank_total = 0
    try:
        for frame, problems, trailing in _iter_blocks(path):
            # A trailing newline leaves one empty piece after it that is not a line of the file.
            total += frame.height - (1 if trailing else 0)
            nonblank = frame.filter(pl.col("text").str.strip_chars().str.len_bytes() > 0)
            nonblank_total += nonblank.height
            all_problems += problems
            for offset in range(0, nonblank.height, CHUNK_LINES):
                records, rejected = parse_lines(
                    nonblank.slice(offset, CHUNK_LINES),
                    source_file=source_file,
                    partition_start=partition_start,
                )
                record_parts.append(records)
                rejected_parts.append(rejected)
    except OSError as exc:
        return ParsedFile(
            records=empty(RAW_COMPLETIONS),
            rejected=_rejects_frame(source_file, [(None, f"unreadable file: {exc}", "")]),
        )
    # Lines already rejected for invalid UTF-8 were blanked; don't count them as blank.
    bad_lines = {p[0] for p in all_problems if p[0] is not None}
    blank = total - nonblank_total - len(bad_lines)
    if total == 0 or (nonblank_total == 0 and not all_problems):
        all_problems.append((None, "empty file: no records", ""))
    records = pl.concat(record_parts) if record_parts else empty(RAW_COMPLETIONS)
    rejected = pl.concat(rejected_parts) if rejected_parts else empty(REJECTED_RECORDS)
    if all_problems:
        rejected = pl.concat([rejected, _rejects_frame(source_file, all_problems)]).sort(
            "source_line", nulls_last=True
        )
    return ParsedFile(records=records, rejected=rejected, lines=total, blank_lines=max(blank, 0))


def is_export_file(path: Path) -> bool:
    return path.is_file() and (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz"))


def write_jsonl(path: Path, records: list[dict], *, compress: bool | None = None) -> None:
    """Write records in the export format (used by ``sample``/``export`` and tests)."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    if compress if compress is not None else path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
