"""The Parquet lake: table parts, the manifest that commits them, and the lock that serializes writers.

Layout under the lake root:
    manifest.json                 the commit record: every ingested file and the parts it wrote
    comparisons/<file hash>.parquet, rankings/..., rejects/...   one part per ingested file
    pairs/<split>.parquet, rankings/<split>.parquet under pairs/  built by build-pairs
    reports/data_report.{json,md}

Only parts listed in the manifest exist for readers. A run publishes its parts first and the
manifest last, so a run killed at any point leaves the lake as it was; the parts it left
behind are unreferenced and removed by the next writer (`vacuum`).
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from rmcore.atomic import TMP_SUFFIX, write_text
from rmcore.data.lake.schemas import SCHEMA_VERSION

TABLES = ("comparisons", "rankings", "rejects")


class FileEntry(BaseModel):
    """What one ingested file contributed to the lake."""

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
    ingested_at: str
    parts: dict[str, list[str]] = Field(default_factory=dict)


class Manifest(BaseModel):
    """The lake's commit record."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    files: list[FileEntry] = Field(default_factory=list)

    def hashes(self) -> set[str]:
        """Content hashes of every ingested file."""
        return {entry.content_hash for entry in self.files}


class Lake:
    """A lake rooted at a directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> Manifest:
        """The committed manifest (empty for a new lake)."""
        if not self.manifest_path.exists():
            return Manifest()
        manifest = Manifest.model_validate_json(self.manifest_path.read_bytes())
        if manifest.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"{self.manifest_path}: lake schema version {manifest.schema_version}, this rmcore"
                f" reads {SCHEMA_VERSION} (version 2 added multi-turn responses and source attributes);"
                f" ingest the raw files again into a new --lake directory"
            )
        return manifest

    def commit(self, manifest: Manifest) -> None:
        """Make `manifest` (and so every part it lists) the lake's state, atomically."""
        write_text(self.manifest_path, manifest.model_dump_json(indent=1))

    def part_path(self, table: str, content_hash: str, chunk: int) -> Path:
        """Where one chunk's part of `table`, written for one ingested file, lives."""
        return self.root / table / f"{content_hash}-{chunk:04d}.parquet"

    def parts(self, table: str, manifest: Manifest | None = None) -> list[Path]:
        """The committed parts of `table`, in ingestion order."""
        entries = (manifest or self.manifest()).files
        return [self.root / part for e in entries for part in e.parts.get(table, [])]

    def column(self, table: str, name: str, manifest: Manifest | None = None) -> set[str]:
        """Every value of one string column of a table, e.g. its ids, as a set."""
        values: set[str] = set()
        for path in self.parts(table, manifest):
            values.update(pq.read_table(path, columns=[name]).column(name).to_pylist())
        return values

    def vacuum(self, manifest: Manifest) -> list[Path]:
        """Remove parts and temporary files no commit refers to; the removed paths."""
        referenced = {self.root / p for e in manifest.files for parts in e.parts.values() for p in parts}
        removed = []
        for table in TABLES:
            directory = self.root / table
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if path.is_file() and path not in referenced:
                    path.unlink()
                    removed.append(path)
        for path in self.root.glob(f".*{TMP_SUFFIX}"):
            path.unlink()
            removed.append(path)
        return removed

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lake's writer lock (one writer at a time; a second waits)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
