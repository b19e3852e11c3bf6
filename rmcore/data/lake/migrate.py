"""Migrate: a lake of Parquet parts and manifest.json (schema 2) into the lake's Delta tables.

rmcore lake migrate --lake data/lake

    manifest.json + its listed parts -> migrate_lake -> comparisons, rankings, rejects, files, Migration

The old lake's parts lie in the folders the Delta tables take over (`<lake>/comparisons/...`); Delta
reads only the files its log names, so the two can share a folder while the migration runs. The steps,
ordered so that a kill at any point leaves a lake that a rerun migrates to the same result:
1. reset: while manifest.json exists every other command refuses the lake, so a Delta log, a `files`
   table or an unlisted file in a table folder is what a killed migration (or the old writer) left:
   it is deleted. The parts the manifest lists are the data being migrated and are never touched.
2. copy: each data table gets one commit of the listed parts' rows, in manifest order, carrying what an
   ingest commit carries (`rmcore.ingest`, `rmcore.file:<hash>` per file, `rmcore.added`), so a later
   ingest of one of the files is skipped and dedup holds; then `files` gets a row per manifest entry.
3. commit point: the figures are written to `.migrated.json`, then manifest.json is deleted: from
   here the lake is Delta tables and every command reads it.
4. cleanup: the old parts (listed or not), old pair files, temporary files and `.lock` are deleted,
   then `.migrated.json`. A rerun after a kill during this step finishes it and reports the figures.
   Old files are found by the names the old writer gave them (a part is `<file hash>-<chunk>.parquet`,
   a Delta data file `part-...`), so the files of Delta writers already at work are left alone.
Pairs are not migrated: build-pairs writes them again from the migrated tables.
"""

import json
import re
import shutil
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import CommitProperties, Transaction
from pydantic import BaseModel, ConfigDict, Field

from rmcore.atomic import fsync_directory, write_text
from rmcore.data.lake.lake import (
    ADDED,
    DATA_TABLES,
    MANIFEST,
    TABLES,
    FileEntry,
    Lake,
    file_app,
    next_ingest,
    record_files,
)
from rmcore.data.lake.placing import commit_placed, place

OLD_SCHEMA = 2
"""The schema version of the lakes this module migrates (the last one before Delta)."""

MIGRATED = ".migrated.json"
"""Written at the commit point: the migration's figures, kept until the old layout is deleted."""

OLD_PART = re.compile(r"[0-9a-f]+-\d{4}\.parquet")
"""The name of an old lake's part, `<file hash>-<chunk>.parquet`; Delta names its files `part-...`."""


class OldEntry(FileEntry):
    """A file entry of manifest.json: the `files` row, and the parts it wrote per table."""

    parts: dict[str, list[str]] = Field(default_factory=dict)


class OldManifest(BaseModel):
    """manifest.json of a schema-2 lake."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int
    files: list[OldEntry]


@dataclass(frozen=True)
class Migration:
    """What a migration moved: rows per data table, file entries, and the lake's version after."""

    lake: str
    rows: dict[str, int]
    files: int
    lake_version: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        """What was migrated, and what to run next."""
        rows = ", ".join(f"{self.rows[t]} {t}" for t in DATA_TABLES)
        return [
            f"migrated {self.files} ingested file(s) of {self.lake} (schema {OLD_SCHEMA}): {rows}",
            f"the lake is now Delta tables (lake version {self.lake_version}); its old parts and"
            f" {MANIFEST} are removed",
            f"pairs are not migrated: run `rmcore build-pairs --lake {self.lake}`",
        ]


class _MigratingLake(Lake):
    """The lake as the migration writes it: its manifest is what it migrates, not a reason to refuse."""

    def refuse_old_layout(self) -> None:
        return None


def migrate_lake(lake: Lake) -> Migration:
    """Move a schema-2 lake's committed rows into Delta tables and remove the old layout.

    Raises ValueError for a lake with nothing to migrate (already Delta tables, or no lake) and for a
    manifest of another schema version.
    """
    root = Path(lake.uri)
    if not lake.remote and (root / MANIFEST).exists():
        manifest = read_manifest(root / MANIFEST)
        reset(root, manifest)
        migration = copy(lake, manifest)
        commit_point(root, migration)
        clean(root)
        return migration
    if not lake.remote and (root / MIGRATED).exists():
        migration = Migration(**json.loads((root / MIGRATED).read_bytes()))
        clean(root)
        return migration
    if any(lake.table(name) is not None for name in TABLES):
        raise ValueError(f"{lake.uri}: nothing to migrate: already Delta tables")
    raise ValueError(f"no lake at {lake.uri}: nothing to migrate (no {MANIFEST}, no Delta tables)")


def read_manifest(path: Path) -> OldManifest:
    """The manifest, refused unless it is of schema 2 (version 1 predates multi-turn rows)."""
    raw = json.loads(path.read_bytes())
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != OLD_SCHEMA:
        raise ValueError(
            f"{path}: a lake of schema version {version}; only schema {OLD_SCHEMA} lakes migrate, a version 1"
            " lake must be re-ingested from the raw files: `rmcore ingest FILES --lake NEW_LAKE`"
        )
    manifest = OldManifest.model_validate(raw)
    missing = [
        part for entry in manifest.files for part in _parts(entry) if not (path.parent / part).is_file()
    ]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} listed part(s) missing, first {missing[0]}; the lake cannot be"
            " migrated whole: re-ingest the raw files into a new lake"
        )
    return manifest


def _parts(entry: OldEntry) -> list[str]:
    """The entry's parts of the data tables, relative to the lake root."""
    return [part for name in DATA_TABLES for part in entry.parts.get(name, [])]


def reset(root: Path, manifest: OldManifest) -> None:
    """Step 1: delete what an earlier, killed migration wrote; keep every part the manifest lists."""
    listed = {root / part for entry in manifest.files for part in _parts(entry)}
    for name in DATA_TABLES:
        folder = root / name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif path not in listed:
                path.unlink()
    if (root / "files").is_dir():
        shutil.rmtree(root / "files")
    (root / MIGRATED).unlink(missing_ok=True)


def copy(lake: Lake, manifest: OldManifest) -> Migration:
    """Step 2: commit the listed parts' rows to the data tables, then the entries to `files`."""
    lake = _MigratingLake(lake.uri)
    lake.create_tables()
    root = Path(lake.uri)
    rows = {name: _copy_table(lake, root, name, manifest.files) for name in DATA_TABLES}
    entries = [FileEntry.model_validate(e.model_dump(exclude={"parts"})) for e in manifest.files]
    _, version = record_files(lake, entries)
    return Migration(lake=lake.uri, rows=rows, files=len(entries), lake_version=version)


def _copy_table(lake: Lake, root: Path, name: str, entries: list[OldEntry]) -> int:
    """One commit of a table's listed parts, hard-linked under Delta names and marked as an ingest of
    every entry's file; its rows."""
    table = lake.table(name)
    assert table is not None
    added = {
        e.content_hash: sum(pq.ParquetFile(root / p).metadata.num_rows for p in e.parts.get(name, []))
        for e in entries
    }
    if not sum(added.values()):
        return 0
    actions = [place(lake, name, root / part) for entry in entries for part in entry.parts.get(name, [])]
    properties = CommitProperties(
        custom_metadata={ADDED: json.dumps(added)},
        app_transactions=[next_ingest(table), *(Transaction(file_app(e.content_hash), 1) for e in entries)],
    )
    commit_placed(table, actions, "append", properties)
    return sum(added.values())


def commit_point(root: Path, migration: Migration) -> None:
    """Step 3: record the figures, then delete the manifest: from here the lake is Delta tables."""
    write_text(root / MIGRATED, json.dumps(migration.as_dict()))
    (root / MANIFEST).unlink()
    fsync_directory(root)


def clean(root: Path) -> None:
    """Step 4: delete the old layout (parts, temporary files, pair files, the lock), then the record of
    step 3. Only the names the old writer gave are matched."""
    for name in DATA_TABLES:
        folder = root / name
        for path in folder.iterdir() if folder.is_dir() else []:
            temporary = path.name.startswith(".") and path.name.endswith(".tmp")
            if path.is_file() and (OLD_PART.fullmatch(path.name) or temporary):
                path.unlink()
    pairs = root / "pairs"
    for path in pairs.glob("*.parquet") if pairs.is_dir() else []:
        path.unlink()
    for path in root.glob(f".{MANIFEST}.*.tmp"):
        path.unlink()
    (root / ".lock").unlink(missing_ok=True)
    with suppress(OSError):  # the pairs folder stays while it holds a pairs table built since
        pairs.rmdir()
    (root / MIGRATED).unlink()
    fsync_directory(root)
