"""Commit: staged files into the lake's Delta tables, one commit per table, then one to `files`.

    StagedFile (staging) -> commit -> rankings, comparisons, rejects commits -> files commit, IngestSummary

Judgments and rankings the lake already holds, or that an earlier file of the same ingest brought,
are dropped as duplicates. Each table's commit is optimistic: it is computed against the table's
latest version and carries the transaction `rmcore.ingest` at the next version, so when another
writer commits first the commit fails and is computed again against the new version. It also
carries `rmcore.file:<content hash>` for each of its files and their counts in its metadata
(`rmcore.added`): a file whose transaction a table already holds (a killed run, or another writer
ingesting the same file) is not written again, and its counts are read back from that commit.
"""

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction

from rmcore.atomic import ParquetParts
from rmcore.data.ingest.stage import StagedFile
from rmcore.data.lake import FileEntry, Lake, schemas
from rmcore.data.lake.duck import connect, parquet_list
from rmcore.data.lake.lake import ADDED, file_app, next_ingest, record_files
from rmcore.data.lake.placing import commit_placed, place, unplace

KEYS = {"comparisons": "comparison_id", "rankings": "ranking_id", "rejects": None}
"""Each data table's identity column (rejects are kept whole: every quarantined row is a record)."""


class IngestRecord(TypedDict):
    """`IngestSummary` as it crosses a JSON edge (`rmcore ingest --json`, the ingest flow's tasks)."""

    rows_read: int
    accepted: int
    rejected: dict[str, int]
    """Rows quarantined, by reason."""
    rejected_total: int
    new_comparisons: int
    duplicates: int
    new_rankings: int
    files_ingested: list[str]
    files_skipped: int
    """Files already in the lake (their paths are `skipped_paths`)."""
    skipped_paths: list[str]
    files_failed: dict[str, str]
    """Files that could not be read as a whole, with the reason."""
    lake: str
    lake_version: int | None


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
    lake_version: int | None = None

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

    def as_dict(self) -> IngestRecord:
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
            "lake_version": self.lake_version,
        }


def _added_earlier(table: DeltaTable, hashes: set[str]) -> dict[str, int]:
    """Rows each file added to `table` in commits already made (read from their metadata)."""
    found: dict[str, int] = {}
    for commit in table.history():
        if hashes <= found.keys():
            break
        if ADDED in commit:
            found.update({h: n for h, n in json.loads(commit[ADDED]).items() if h in hashes})
    return found


def _new_rows(
    lake: Lake, db: duckdb.DuckDBPyConnection, name: str, table: DeltaTable, files: list[StagedFile]
) -> tuple[list[AddAction], dict[str, int]]:
    """Place the rows of staged `files` that neither `table` nor an earlier staged chunk holds (by
    id) into the table's folder; the actions that add them, and how many rows each file adds.

    A chunk without duplicates is placed as it was staged; one with duplicates is filtered first.
    """
    key = KEYS[name]
    actions: list[AddAction] = []
    added: dict[str, int] = {}
    if key is not None:
        lake.view(db, "existing", table, name)
        db.execute(f"CREATE OR REPLACE TEMP TABLE added ({key} VARCHAR)")
    for item in files:
        added[item.content_hash] = 0
        for staged in item.tables(name):
            source, rows = staged, pq.ParquetFile(staged).metadata.num_rows
            if key is not None:
                source, rows = _unknown_rows(db, staged, key, name)
            if rows:
                actions.append(place(lake, name, source))
                added[item.content_hash] += rows
    return actions, added


def _unknown_rows(db: duckdb.DuckDBPyConnection, staged: Path, key: str, name: str) -> tuple[Path, int]:
    """The staged chunk's rows whose `key` neither `existing` nor `added` holds, as a Parquet file (the
    chunk itself when all are new), and their count; their keys join `added`."""
    ids = pq.read_table(staged, columns=[key]).column(key).combine_chunks()
    # qualified names: an unqualified key missing from a subquery's table would bind to the outer one
    query = (
        f"SELECT s.{key} FROM read_parquet({parquet_list([staged])}) s WHERE s.{key} IN "
        f"(SELECT e.{key} FROM existing e UNION ALL SELECT a.{key} FROM added a)"
    )
    known = db.sql(query).to_arrow_table().column(0).combine_chunks()
    keep = pc.invert(pc.is_in(ids, value_set=known)) if len(known) else None
    kept = ids if keep is None else ids.filter(keep)
    db.register("kept", pa.table({key: kept}))
    db.execute(f"INSERT INTO added SELECT {key} FROM kept")
    db.unregister("kept")
    if keep is None:
        return staged, len(kept)
    target = staged.with_name(f"new-{staged.name}")
    out, offset = ParquetParts(target, schemas.LAKE[name]), 0
    for batch in pq.ParquetFile(staged, pre_buffer=False).iter_batches(batch_size=8192):
        out.write(pa.Table.from_batches([batch]).filter(keep.slice(offset, batch.num_rows)))
        offset += batch.num_rows
    out.close()
    return target, len(kept)


def _commit_table(
    lake: Lake, db: duckdb.DuckDBPyConnection, name: str, files: list[StagedFile]
) -> dict[str, int]:
    """Commit the new rows of staged `files` to one data table; the rows each file added to it."""
    while True:
        table = lake.table(name)
        assert table is not None
        done = {
            f.content_hash for f in files if table.transaction_version(file_app(f.content_hash)) is not None
        }
        earlier = _added_earlier(table, done) if done else {}
        todo = [f for f in files if f.content_hash not in done]
        with lake.reading():
            actions, added = _new_rows(lake, db, name, table, todo)
        if not actions:
            return {**earlier, **added}
        properties = CommitProperties(
            custom_metadata={ADDED: json.dumps(added)},
            app_transactions=[next_ingest(table), *(Transaction(file_app(f.content_hash), 1) for f in todo)],
        )
        try:
            commit_placed(table, actions, "append", properties)
        except CommitFailedError:
            unplace(lake, name, actions)
            continue
        return {**earlier, **added}


def _entry(item: StagedFile, added: dict[str, dict[str, int]]) -> FileEntry:
    new_comparisons = added["comparisons"].get(item.content_hash, 0)
    return FileEntry(
        content_hash=item.content_hash,
        path=item.path,
        format=item.format,
        source=item.source,
        rows_read=item.rows_read,
        accepted=item.accepted,
        rejected=item.rejected,
        new_comparisons=new_comparisons,
        duplicates=item.duplicates_in_file + item.comparisons - new_comparisons,
        new_rankings=added["rankings"].get(item.content_hash, 0),
        ingested_at=datetime.fromisoformat(item.ingested_at),
    )


def commit(lake: Lake, staged: list[StagedFile]) -> IngestSummary:
    """Commit staged files to the lake: a commit per data table, then their rows in `files`."""
    summary = IngestSummary(lake=lake.uri)
    lake.create_tables()
    done = lake.ingested()
    files = []
    for item in staged:
        if item.content_hash in done:
            summary.files_skipped.append(item.path)
        else:
            done.add(item.content_hash)
            files.append(item)
    if files:
        db = connect(lake.work / ".duckdb")
        try:
            added = {
                name: _commit_table(lake, db, name, files) for name in ("rankings", "comparisons", "rejects")
            }
        finally:
            db.close()
        entries = [_entry(item, added) for item in files]
        recorded, summary.lake_version = record_files(lake, entries)
        for entry in entries:
            if entry in recorded:
                summary.add(entry)
            else:
                summary.files_skipped.append(entry.path)
    remove_committed_stagings(lake, done)
    return summary


def remove_committed_stagings(lake: Lake, committed: set[str]) -> None:
    """Remove the stagings of committed files, including those a killed run left behind."""
    for summary in (lake.work / "staging").glob("*/staged.json"):
        if StagedFile.model_validate_json(summary.read_bytes()).content_hash in committed:
            shutil.rmtree(summary.parent, ignore_errors=True)
