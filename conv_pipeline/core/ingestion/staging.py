"""The local export folder as a source: parsed once per file, then read by hour.

``sync`` parses every new or changed export file (size or modification time differs) into a
staged Parquet file sorted by ``created``, writes the file's rejected lines, and notes which hourly
partitions the file touches. Files that disappeared are un-staged. Completion ids seen more than
once across the folder are resolved globally: the first occurrence (by file path, then line) wins,
the others become ``rejected_records`` rows that name where the winner is.

``read_hours`` then reads only the staged files that touch the requested hours, with predicate
push-down on the partition key. A sync is guarded by a file lock and every file it writes is
written atomically, so a crash mid-sync leaves the previous, consistent state.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from conv_pipeline.core.files import atomic_write_bytes, atomic_write_parquet, file_lock
from conv_pipeline.core.ingestion.parse import is_export_file, parse_export_file
from conv_pipeline.core.privacy.redaction import redact_excerpts
from conv_pipeline.core.schema import RAW_COMPLETIONS, REJECTED_RECORDS, conform, empty

MANIFEST_VERSION = 4  # 4: staged rows carry the privacy columns, excerpts are redacted
# Files above this many bytes in total are parsed in a pool of worker processes.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


@dataclass
class SyncResult:
    changed_hours: set[str] = field(default_factory=set)
    hours: dict[str, int] = field(default_factory=dict)  # partition key -> staged records
    files_parsed: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    rejected: int = 0
    duplicates: int = 0
    fingerprint: str = ""  # changes whenever anything staged changes
    hour_digests: dict[str, str] = field(default_factory=dict)  # changes when an hour's data does
    extra: dict = field(default_factory=dict)  # what the source adds to the asset's metadata


def _file_id(rel: str) -> str:
    return hashlib.sha1(rel.encode("utf-8")).hexdigest()[:16]


def _stage_one(
    path: str, rel: str, staged: str, rejected: str, partition_start: datetime, source: str
) -> dict:
    parsed = parse_export_file(Path(path), source_file=rel, partition_start=partition_start)
    records = parsed.records.sort("created", "source_line")
    atomic_write_parquet(Path(staged), records)
    atomic_write_parquet(
        Path(rejected),
        redact_excerpts(parsed.rejected).with_columns(pl.lit(source).alias("source")),
    )
    hours = records.group_by("partition_key").len().rows() if records.height else []
    return {
        "hours": {k: int(n) for k, n in hours},
        "records": records.height,
        "rejected": parsed.rejected.height,
        "lines": parsed.lines,
        "blank_lines": parsed.blank_lines,
    }


class LocalStaging:
    def __init__(
        self,
        export_dir: str | Path,
        staging_dir: str | Path,
        rejected_dir: str | Path,
        partition_start: datetime,
        *,
        workers: int = 2,
        source_name: str = "local",
    ):
        self.export_dir = Path(export_dir).resolve()
        self.staging_dir = Path(staging_dir)
        self.rejected_dir = Path(rejected_dir)
        self.partition_start = partition_start
        self.workers = workers
        self.source_name = source_name

    @property
    def manifest_path(self) -> Path:
        return self.staging_dir / "manifest.json"

    @property
    def duplicates_path(self) -> Path:
        return self.staging_dir / "duplicates.parquet"

    def _staged(self, file_id: str) -> Path:
        return self.staging_dir / f"{file_id}.parquet"

    def _rejected(self, file_id: str) -> Path:
        return self.rejected_dir / f"{file_id}.parquet"

    def _lock(self):
        return file_lock(self.staging_dir / ".lock")

    def load_manifest(self) -> dict:
        try:
            manifest = json.loads(self.manifest_path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {"version": MANIFEST_VERSION, "files": {}, "duplicates": 0}
        if (
            manifest.get("version") != MANIFEST_VERSION
            or manifest.get("partition_start") != self.partition_start.isoformat()
        ):
            return {"version": MANIFEST_VERSION, "files": {}, "duplicates": 0}
        return manifest

    def list_files(self) -> dict[str, Path]:
        if not self.export_dir.is_dir():
            raise FileNotFoundError(
                f"The export folder {self.export_dir} does not exist. Write the sample with "
                "`conv-pipeline sample` or point CONV_PIPELINE_LOCAL_DIR at a folder of *.jsonl "
                "files."
            )
        files = {}
        for path in sorted(self.export_dir.rglob("*")):
            if is_export_file(path) and not any(
                p.startswith(".") for p in path.relative_to(self.export_dir).parts
            ):
                files[path.relative_to(self.export_dir).as_posix()] = path
        return files

    def sync(self) -> SyncResult:
        with self._lock():
            return self._sync()

    def _referenced(self, known: dict[str, dict]) -> set[str]:
        return {e["file_id"] for e in known.values()}

    def _remove_orphans(self, known: dict[str, dict]) -> None:
        """Delete staged/rejected files the manifest does not reference (left by a crash, or
        superseded versions of a re-parsed file)."""
        keep = self._referenced(known)
        for folder in (self.staging_dir, self.rejected_dir):
            if not folder.is_dir():
                continue
            for path in folder.glob("*.parquet"):
                stem = path.name.removesuffix(".parquet")
                if stem not in keep and stem not in ("duplicates", "_schema"):
                    path.unlink(missing_ok=True)

    def _sync(self) -> SyncResult:
        manifest = self.load_manifest()
        known: dict[str, dict] = manifest["files"]
        self._remove_orphans(known)
        result = SyncResult()
        current = self.list_files()
        todo: list[tuple[str, Path, dict]] = []
        for rel, path in current.items():
            stat = path.stat()
            fp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            entry = known.get(rel)
            if entry and entry["size"] == fp["size"] and entry["mtime_ns"] == fp["mtime_ns"]:
                continue
            todo.append((rel, path, fp))
        for rel in sorted(set(known) - set(current)):
            result.changed_hours |= set(known.pop(rel)["hours"])
            result.files_removed.append(rel)

        if todo:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            # Every version of a file gets its own names: the previous version stays readable
            # until the new manifest is committed, whatever happens in between.
            versions = {
                rel: _file_id(f"{rel}\0{fp['size']}\0{fp['mtime_ns']}") for rel, _, fp in todo
            }
            jobs = [
                (
                    str(path),
                    rel,
                    str(self._staged(versions[rel])),
                    str(self._rejected(versions[rel])),
                    self.partition_start,
                    self.source_name,
                )
                for rel, path, _ in todo
            ]
            total = sum(fp["size"] for _, _, fp in todo)
            if self.workers > 1 and len(todo) > 1 and total >= PARALLEL_MIN_BYTES:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
                    outcomes = list(pool.map(_stage_one, *zip(*jobs, strict=True)))
            else:
                outcomes = [_stage_one(*job) for job in jobs]
            for (rel, _, fp), outcome in zip(todo, outcomes, strict=True):
                old = known.get(rel)
                if old:
                    result.changed_hours |= set(old["hours"])
                result.changed_hours |= set(outcome["hours"])
                known[rel] = {"file_id": versions[rel], **fp, **outcome}
                result.files_parsed.append(rel)

        if todo or result.files_removed:
            dup_hours = self._resolve_duplicates(known)
            old_dups = manifest.get("dup_hours", {})
            result.changed_hours |= {
                h for h in set(dup_hours) | set(old_dups) if dup_hours.get(h) != old_dups.get(h)
            }
            manifest["dup_hours"] = dup_hours
            manifest["partition_start"] = self.partition_start.isoformat()
            manifest["version"] = MANIFEST_VERSION
            atomic_write_bytes(
                self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
            )
            self._remove_orphans(known)

        dup_hours = manifest.get("dup_hours", {})
        result.files = len(known)
        contributions: dict[str, list] = {}
        for rel, entry in sorted(known.items()):
            result.records += entry["records"]
            result.rejected += entry["rejected"]
            for key, n in entry["hours"].items():
                result.hours[key] = result.hours.get(key, 0) + n
                contributions.setdefault(key, []).append((rel, entry["size"], entry["mtime_ns"], n))
        for key, (losers, _) in dup_hours.items():
            result.duplicates += losers
            result.hours[key] = result.hours.get(key, 0) - losers
        result.records -= result.duplicates
        result.rejected += result.duplicates
        result.hours = {k: n for k, n in result.hours.items() if n > 0}
        result.hour_digests = {
            key: hashlib.sha1(json.dumps([parts, dup_hours.get(key)]).encode()).hexdigest()[:16]
            for key, parts in contributions.items()
            if key in result.hours
        }
        result.fingerprint = hashlib.sha1(
            json.dumps(sorted((k, v["size"], v["mtime_ns"]) for k, v in known.items())).encode()
        ).hexdigest()[:16]
        return result

    def _resolve_duplicates(self, known: dict[str, dict]) -> dict[str, list]:
        """Write the losers of duplicate ids; return per hour ``[losers, digest of the hour's
        duplicate state]`` for the hours that hold any duplicated id."""
        staged = [self._staged(e["file_id"]) for e in known.values() if e["records"]]
        dup_path = self.rejected_dir / "duplicates.parquet"
        if not staged:
            atomic_write_parquet(self.duplicates_path, _DUP_EMPTY)
            atomic_write_parquet(dup_path, empty(REJECTED_RECORDS))
            return {}
        ids = (
            pl.scan_parquet(staged)
            .select("completion_id", "source_file", "source_line", "partition_key")
            .filter(pl.col("completion_id").is_duplicated())
            .sort("source_file", "source_line")
            .collect()
        )
        firsts = ids.group_by("completion_id", maintain_order=True).first()
        marked = ids.join(
            firsts.select(
                "completion_id",
                pl.col("source_file").alias("first_file"),
                pl.col("source_line").alias("first_line"),
            ),
            on="completion_id",
        ).with_columns(
            (
                (pl.col("source_file") != pl.col("first_file"))
                | (pl.col("source_line") != pl.col("first_line"))
            ).alias("loser")
        )
        losers = marked.filter(pl.col("loser"))
        atomic_write_parquet(
            self.duplicates_path, losers.select("source_file", "source_line", "completion_id")
        )
        atomic_write_parquet(
            dup_path,
            conform(
                losers.with_columns(
                    pl.lit(self.source_name).alias("source"),
                    pl.format(
                        "duplicate completion_id: first seen in {} line {}",
                        "first_file",
                        "first_line",
                    ).alias("reason"),
                    pl.lit("").alias("raw_excerpt"),
                ),
                REJECTED_RECORDS,
            ),
        )
        out: dict[str, list] = {}
        for (key,), group in marked.sort("source_file", "source_line").group_by(
            "partition_key", maintain_order=True
        ):
            state = group.select("completion_id", "source_file", "source_line", "loser").rows()
            out[key] = [
                int(group["loser"].sum()),
                hashlib.sha1(json.dumps(state).encode()).hexdigest()[:16],
            ]
        return out

    def read_hours(self, partition_keys: Iterable[str]) -> pl.DataFrame:
        keys = sorted(set(partition_keys))
        manifest = self.load_manifest()
        staged = [
            self._staged(e["file_id"])
            for e in manifest["files"].values()
            if e["records"] and not set(e["hours"]).isdisjoint(keys)
        ]
        if not staged:
            return empty(RAW_COMPLETIONS)
        frame = pl.scan_parquet(staged).filter(pl.col("partition_key").is_in(keys))
        if self.duplicates_path.exists():
            losers = pl.scan_parquet(self.duplicates_path).select("source_file", "source_line")
            frame = frame.join(losers, on=["source_file", "source_line"], how="anti")
        return frame.collect().sort("created", "source_file", "source_line")


_DUP_EMPTY = pl.DataFrame(
    schema={"source_file": pl.String, "source_line": pl.Int64, "completion_id": pl.String}
)
