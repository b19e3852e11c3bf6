"""The lake: Delta tables under one root, on local disk or on an object store.

Layout under the root (a local path, or any URI deltalake opens: s3://, gs://, az://):
    comparisons/    one row per accepted judgment
    rankings/       one row per accepted ranking of K >= 2 responses
    rejects/        one row per quarantined raw row, with its reason
    files/          one row per ingested file: what it contributed, and the versions of the three
                    tables above once it was committed; this table's version is the lake's version
    pairs/          build-pairs' pairs, partitioned by split, replaced whole by each build
    pair_rankings/  build-pairs' rankings of K > 2, partitioned by split
Local work (ingest's staging, DuckDB's spill, the data report) lives under the root for a local lake
and under `$XDG_CACHE_HOME/rmcore/lakes/<hash of the URI>` for a remote one.

The rules:
- Every table is a Delta table, so Spark, DuckDB and Polars read it, and every write is a Delta
  commit: atomic, on local disk and on object stores alike, with no lock to hold.
- An ingest commits each data table once, then records its files in `files`. Every rmcore commit to
  a table carries the transaction `rmcore.ingest` at its next version, so two writers that read the
  same version of a table cannot both commit to it: the second retries on the new version, which is
  how dedup holds with concurrent writers. Each commit also carries one transaction per input file
  (`rmcore.file:<content hash>`), so a rerun after a kill never writes a file's rows twice.
- What each input file contributed is a table (`files`), not the metadata of its commits: Delta
  deletes log entries past their retention (30 days by default) at checkpoints, and the record of
  what was ingested must outlive that; as a table, other engines query it too.
- Readers read the lake at a version of `files`: each of its rows names the table versions that held
  every file committed so far, so a lake version fixes exactly what build-pairs reads (`--as-of`).
  Compaction and vacuum commit too, changing no row: readers follow them from the named versions
  (so they read compacted files), and they add lake versions with the rows of the one before.
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from pydantic import BaseModel, ConfigDict

from rmcore.data.identity import digest
from rmcore.data.lake.duck import parquet_list
from rmcore.data.lake.schemas import FILES, LAKE, SCHEMA_VERSION
from rmcore.data.lake.verify import MISSING, first_line, verify_table

DATA_TABLES = ("comparisons", "rankings", "rejects")
"""The tables ingest writes, each row traced to its raw file and row."""

TABLES = (*DATA_TABLES, "files")
"""The tables whose commits ingest makes."""

PAIR_TABLES = ("pairs", "pair_rankings")
"""The tables build-pairs replaces."""

MANIFEST = "manifest.json"
"""The commit record of the lake before Delta (schema 2): its presence marks a lake to migrate."""

ROW_PRESERVING = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
"""Delta operations that change no row of a table (`rmcore lake compact` and `vacuum` make them)."""

DESCRIPTION = f"rmcore lake table, schema {SCHEMA_VERSION}"
"""Every table's Delta description: how rmcore knows the tables it reads are of its own schema."""


INGEST_APP = "rmcore.ingest"
"""The transaction every rmcore commit to a data table carries, at the table's next ingest number."""

ADDED = "rmcore.added"
"""Commit metadata of an ingest's data-table commit: JSON of {content hash: rows the file added}."""

WRITER = WriterProperties(compression="ZSTD", max_row_group_size=16384)
"""How rmcore writes the lake's Parquet files."""


class FileEntry(BaseModel):
    """What one ingested file contributed to the lake: a row of the `files` table."""

    model_config = ConfigDict(extra="forbid")

    content_hash: str
    path: str
    format: str
    source: str
    rows_read: int
    accepted: int
    rejected: dict[str, int]
    new_comparisons: int
    duplicates: int
    new_rankings: int
    ingested_at: datetime


@dataclass(frozen=True)
class Snapshot:
    """The lake at one version of `files`: the version of each data table that it names."""

    version: int
    tables: dict[str, int]


class OldLake(ValueError):
    """A lake in a layout this rmcore no longer writes."""


class LakeDamaged(ValueError):
    """A file the lake's log commits is missing or unreadable."""


def file_app(content_hash: str) -> str:
    """The transaction id that marks one input file's rows as committed to a table."""
    return f"rmcore.file:{content_hash}"


def next_ingest(table: DeltaTable) -> Transaction:
    """The `rmcore.ingest` transaction of the table's next commit: two writers of one version collide."""
    return Transaction(INGEST_APP, (table.transaction_version(INGEST_APP) or 0) + 1)


def is_remote(location: str) -> bool:
    """Whether a lake location is a URI of an object store rather than a local path."""
    return "://" in location and not location.startswith("file://")


class Lake:
    """A lake rooted at a local folder or an object-store URI."""

    def __init__(self, location: str | Path) -> None:
        text = str(location)
        self.remote = is_remote(text)
        self.uri = text.rstrip("/") if self.remote else str(Path(text.removeprefix("file://")).absolute())

    def __str__(self) -> str:
        return self.uri

    @property
    def work(self) -> Path:
        """The local folder for staging, DuckDB's spill and reports."""
        if not self.remote:
            return Path(self.uri)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "rmcore" / "lakes" / digest(self.uri)

    def table_uri(self, name: str) -> str:
        """Where one of the lake's tables lives."""
        return f"{self.uri}/{name}"

    def refuse_old_layout(self) -> None:
        """Raise OldLake when the root holds a manifest lake (schema 2) or tables of another schema."""
        if not self.remote and (Path(self.uri) / MANIFEST).exists():
            raise OldLake(
                f"{self.uri}: a lake of Parquet parts and {MANIFEST} (schema 2); this rmcore reads Delta"
                f" tables: run `rmcore lake migrate --lake {self.uri}` once, then rerun"
            )

    def table(self, name: str, version: int | None = None) -> DeltaTable | None:
        """One of the lake's tables (at `version`; the latest by default), or None before its first commit."""
        self.refuse_old_layout()
        try:
            table = DeltaTable(self.table_uri(name), version=version)
        except TableNotFoundError:
            return None
        description = table.metadata().description
        if description != DESCRIPTION:
            raise OldLake(
                f"{self.table_uri(name)}: a Delta table described {description!r}, not {DESCRIPTION!r};"
                " this rmcore reads only tables it wrote"
            )
        return table

    def create_tables(self) -> None:
        """Create the ingest tables that do not exist yet (empty, version 0); safe to race."""
        for name in TABLES:
            if self.table(name) is not None:
                continue
            try:
                DeltaTable.create(
                    self.table_uri(name),
                    LAKE[name],
                    mode="ignore",
                    name=name,
                    description=DESCRIPTION,
                )
            except DeltaError:
                if self.table(name) is None:
                    raise

    def snapshot(self, as_of: int | None = None) -> Snapshot | None:
        """The lake at version `as_of` of `files` (the latest by default); None before any ingest."""
        latest = self.table("files")
        if as_of is not None:
            newest = -1 if latest is None else latest.version()
            if not 1 <= as_of <= newest:
                raise ValueError(
                    f"{self.uri}: no lake version {as_of}; "
                    + (f"its versions are 1 to {newest}" if newest >= 1 else "the lake has no ingests yet")
                )
        files = latest if as_of is None else self.table("files", as_of)
        if files is None:
            return None
        with self.reading():
            versions = files.to_pyarrow_table(columns=[f"{t}_version" for t in DATA_TABLES])
        if versions.num_rows == 0:
            return None
        recorded = {t: int(pc.max(versions.column(f"{t}_version")).as_py()) for t in DATA_TABLES}
        return Snapshot(files.version(), {t: self._same_rows_until(t, v) for t, v in recorded.items()})

    def _same_rows_until(self, name: str, version: int) -> int:
        """The newest version of a table with the rows of `version`: the commits after it that change no
        row (compaction, vacuum) are followed, so a snapshot reads compacted files and survives the
        vacuum of the small ones."""
        table = self.table(name)
        assert table is not None
        newer = table.version() - version
        commits = sorted(table.history(newer), key=lambda c: int(c["version"])) if newer > 0 else []
        for commit in commits:
            if commit["operation"] not in ROW_PRESERVING:
                break
            version = int(commit["version"])
        return version

    def at(self, snapshot: Snapshot | None, name: str) -> DeltaTable | None:
        """A data table as a snapshot holds it (None for an empty lake)."""
        return None if snapshot is None else self.table(name, snapshot.tables[name])

    def files(self, snapshot: Snapshot | None = None) -> list[FileEntry]:
        """What each ingested file contributed, in commit order (at `snapshot`; the latest by default)."""
        table = self.table("files", None if snapshot is None else snapshot.version)
        if table is None:
            return []
        with self.reading():
            rows = table.to_pyarrow_table()
        rows = rows.sort_by([("ingested_at", "ascending"), ("content_hash", "ascending")])
        return [
            FileEntry.model_validate({**row, "rejected": dict(row["rejected"])})
            for row in rows.select(list(FileEntry.model_fields)).to_pylist()
        ]

    def ingested(self) -> set[str]:
        """Content hashes of every file the lake records."""
        table = self.table("files")
        if table is None:
            return set()
        with self.reading():
            return set(table.to_pyarrow_table(columns=["content_hash"]).column(0).to_pylist())

    def read(self, name: str, snapshot: Snapshot | None = None, columns: list[str] | None = None) -> pa.Table:
        """A table's rows as rmcore's schema has them (at `snapshot`; the latest by default)."""
        schema = LAKE[name]
        table = self.table(name) if snapshot is None or name not in DATA_TABLES else self.at(snapshot, name)
        wanted = pa.schema([schema.field(c) for c in columns]) if columns else schema
        if table is None:
            return wanted.empty_table()
        with self.reading():
            rows = table.to_pyarrow_table(columns=wanted.names)
        return rows.select(wanted.names).cast(wanted)

    def column(self, name: str, column: str) -> set[str]:
        """Every value of one string column of a table, e.g. its ids, as a set."""
        return set(self.read(name, columns=[column]).column(0).to_pylist())

    def view(self, db: duckdb.DuckDBPyConnection, view: str, table: DeltaTable | None, name: str) -> None:
        """A DuckDB view `view` over a table's committed files (empty of table `name`'s schema for None)."""
        # DuckDB refuses to register an Arrow object under the name of a SQL view, and a SQL view does not
        # shadow a registered object of its name: drop whichever `view` is, so that a commit's retry can
        # replace a view of files by an empty table (or by a newer version) on one connection
        db.execute(f"DROP VIEW IF EXISTS {view}")
        if table is not None and self.remote:
            db.register(view, table.to_pyarrow_dataset())
        elif table is not None and (files := table.file_uris()):
            db.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet({parquet_list(files)})"
            )
        else:
            db.register(view, LAKE[name].empty_table())

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Turn an error met while reading the lake's tables into LakeDamaged when a committed file is
        missing or unreadable: one line naming the file, why, and `rmcore lake check`.

        The errors do not name the file reliably (delta-rs reports a file shorter or longer than its
        commit says as "Requested range was invalid", and reads of a remote table give paths relative
        to it), so on an error of the readers (DuckDB, pyarrow, delta-rs, the OS) every table's latest
        version is verified (rmcore.data.lake.verify). The message names the bad file the error names,
        else the first one found; an error that names a table's Parquet file the latest versions no
        longer reference (a read of an older version) names that file: missing, or the error's first line.
        Any other error passes through unchanged.
        """
        try:
            yield
        except (duckdb.Error, OSError, pa.ArrowException, DeltaError) as error:
            damaged = self.damaged(error)
            if damaged is None:
                raise
            raise damaged from error

    def damaged(self, error: BaseException) -> LakeDamaged | None:
        """The LakeDamaged that `error` means (see `reading`), or None when every file is sound."""
        found = [
            damage
            for name in (*TABLES, *PAIR_TABLES)
            if (table := self.table(name)) is not None
            for damage in verify_table(table, self.table_uri(name)).damaged
        ]
        named = self._named_file(str(error))
        first = next((d for d in found if d.path == named), found[0] if found else None)
        if first is None and named is not None:
            gone = not self.remote and not Path(named).exists()
            return LakeDamaged(
                f"{named}: {MISSING if gone else first_line(error)}; an older lake version needs it and the"
                " latest do not: versions older than `rmcore lake vacuum` kept cannot be read"
            )
        if first is None:
            return None
        others = sum(d is not first for d in found)
        more = f" (and {others} more bad file(s))" if others else ""
        return LakeDamaged(f"{first.path}: {first.reason}{more}; run `rmcore lake check --lake {self.uri}`")

    def _named_file(self, message: str) -> str | None:
        """The first Parquet file of one of the lake's tables that an error message names, if any."""
        tables = "|".join((*TABLES, *PAIR_TABLES))
        found = re.search(rf"{re.escape(self.uri)}/(?:{tables})/[^'\"\s,]+?\.parquet", message)
        return None if found is None else found.group(0)


def record_files(lake: Lake, entries: list[FileEntry]) -> tuple[list[FileEntry], int]:
    """Append the entries the `files` table does not hold yet, each with the data tables' latest
    versions (what a snapshot of the new lake version reads); those appended, and the lake's version
    after. Retried on a new version when another writer commits first."""
    while True:
        files = lake.table("files")
        assert files is not None
        with lake.reading():
            held = set(files.to_pyarrow_table(columns=["content_hash"]).column(0).to_pylist())
        fresh = [e for e in entries if e.content_hash not in held]
        if not fresh:
            return [], files.version()
        versions = {f"{t}_version": lake.table(t).version() for t in DATA_TABLES}  # type: ignore[union-attr]
        rows = [{**e.model_dump(), **versions} for e in fresh]
        rows = [{**row, "rejected": list(row["rejected"].items())} for row in rows]
        properties = CommitProperties(app_transactions=[next_ingest(files)])
        try:
            write_deltalake(
                files,
                pa.Table.from_pylist(rows, FILES),
                mode="append",
                writer_properties=WRITER,
                commit_properties=properties,
            )
        except CommitFailedError:
            continue
        return fresh, files.version()
