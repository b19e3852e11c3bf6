"""Commit: staged files into the lake, under its lock, in one manifest write.

    StagedFile (<lake>/staging) -> commit -> lake parts + manifest, IngestSummary

Judgments the lake already holds are dropped as duplicates, the rest become the file's parts, and
one manifest write commits every file. A run killed at any point leaves the committed lake
unchanged.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rmcore.atomic import ParquetParts, publish, temporary_path
from rmcore.data.ingest.stage import StagedFile
from rmcore.data.lake import FileEntry, Lake, Manifest
from rmcore.data.lake.duck import connect, parquet_list
from rmcore.data.lake.schemas import COMPARISONS, RANKINGS


@dataclass
class IngestSummary:
    """What one ingest did, summed over its files."""

    rows_read: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    new_comparisons: int = 0
    duplicates: int = 0
    new_rankings: int = 0
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    files_failed: dict[str, str] = field(default_factory=dict)
    lake: str = ""

    def add(self, entry: FileEntry) -> None:
        """Count one committed file."""
        self.rows_read += entry.rows_read
        self.accepted += entry.accepted
        for reason, count in entry.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.new_comparisons += entry.new_comparisons
        self.duplicates += entry.duplicates
        self.new_rankings += entry.new_rankings
        self.files_ingested.append(entry.path)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary; `files_skipped` is a count, the skipped paths are listed apart."""
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
            "new_comparisons": self.new_comparisons,
            "duplicates": self.duplicates,
            "new_rankings": self.new_rankings,
            "files_ingested": self.files_ingested,
            "files_skipped": len(self.files_skipped),
            "skipped_paths": self.files_skipped,
            "files_failed": self.files_failed,
            "lake": self.lake,
        }


def _known(db: duckdb.DuckDBPyConnection, staged: Path, key: str, parts: list[Path]) -> pa.Array:
    """The ids of a staged table that already stand in `parts` (a DuckDB semi-join)."""
    if not parts:
        return pa.array([], pa.string())
    query = (
        f"SELECT {key} FROM read_parquet({parquet_list([staged])}) "
        f"WHERE {key} IN (SELECT {key} FROM read_parquet({parquet_list(parts)}))"
    )
    found: pa.Table = db.sql(query).to_arrow_table()
    return found.column(0).combine_chunks()


def _link(source: Path, target: Path) -> None:
    """Publish `source` as `target` without copying its bytes where the filesystem allows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    publish(tmp, target)


def _publish_new_rows(
    db: duckdb.DuckDBPyConnection, staged: Path, schema: pa.Schema, key: str, known: list[Path], target: Path
) -> int:
    """Publish the rows of a staged table whose `key` no part in `known` holds; how many."""
    ids = pq.read_table(staged, columns=[key]).column(key)
    duplicates = _known(db, staged, key, known)
    if len(duplicates) == 0:
        _link(staged, target)
        return len(ids)
    keep = pc.invert(pc.is_in(ids, value_set=duplicates))
    new = int(pc.sum(keep).as_py() or 0)
    if new:
        out, offset = ParquetParts(target, schema), 0
        for batch in pq.ParquetFile(staged, pre_buffer=False).iter_batches(batch_size=8192):
            out.write(pa.Table.from_batches([batch]).filter(keep.slice(offset, batch.num_rows)))
            offset += batch.num_rows
        out.close()
    return new


def _committed_file(
    lake: Lake, db: duckdb.DuckDBPyConnection, item: StagedFile, known: dict[str, list[Path]]
) -> FileEntry:
    """Publish one staged file's new rows as its lake parts (not yet committed); its entry.

    `known` holds, per table, the committed parts and those this commit published before.
    """
    parts: dict[str, list[str]] = {}
    added = {"comparisons": 0, "rankings": 0}
    for table, schema, key in (
        ("comparisons", COMPARISONS, "comparison_id"),
        ("rankings", RANKINGS, "ranking_id"),
    ):
        for chunk, staged in enumerate(item.tables(table)):
            target = lake.part_path(table, item.content_hash, chunk)
            new = _publish_new_rows(db, staged, schema, key, known[table], target)
            if new:
                added[table] += new
                known[table].append(target)
                parts.setdefault(table, []).append(str(target.relative_to(lake.root)))
    for chunk, staged in enumerate(item.tables("rejects")):
        target = lake.part_path("rejects", item.content_hash, chunk)
        _link(staged, target)
        parts.setdefault("rejects", []).append(str(target.relative_to(lake.root)))
    return FileEntry(
        content_hash=item.content_hash,
        path=item.path,
        format=item.format,
        source=item.source,
        rows_read=item.rows_read,
        accepted=item.accepted,
        rejected=item.rejected,
        new_comparisons=added["comparisons"],
        duplicates=item.duplicates_in_file + item.comparisons - added["comparisons"],
        new_rankings=added["rankings"],
        ingested_at=item.ingested_at,
        parts=parts,
    )


def commit(lake: Lake, staged: list[StagedFile]) -> IngestSummary:
    """Commit staged files to the lake in one manifest write; the summary of what was added."""
    summary = IngestSummary(lake=str(lake.root))
    with lake.locked():
        manifest = lake.manifest()
        lake.vacuum(manifest)
        known = {table: lake.parts(table, manifest) for table in ("comparisons", "rankings")}
        done = manifest.hashes()
        entries = []
        db = connect(lake.root / ".duckdb")
        try:
            for item in staged:
                if item.content_hash in done:
                    summary.files_skipped.append(item.path)
                    continue
                done.add(item.content_hash)
                entry = _committed_file(lake, db, item, known)
                entries.append(entry)
                summary.add(entry)
        finally:
            db.close()
        if entries:
            lake.commit(Manifest(files=[*manifest.files, *entries]))
        remove_committed_stagings(lake, done)
    return summary


def remove_committed_stagings(lake: Lake, committed: set[str]) -> None:
    """Remove the stagings of committed files, including those a killed run left behind."""
    for summary in (lake.root / "staging").glob("*/staged.json"):
        if StagedFile.model_validate_json(summary.read_bytes()).content_hash in committed:
            shutil.rmtree(summary.parent, ignore_errors=True)
