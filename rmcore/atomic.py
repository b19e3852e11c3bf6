"""Atomic files: write beside the target under a temporary name, fsync, then rename into place.

A reader sees the old file or the new one, never half of one, whatever kills the writer.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file onto `path`, durably."""
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write; renamed onto `path` on success, removed on any failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(path: Path, table: pa.Table) -> None:
    """Write a Parquet file atomically."""
    with replacing(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class ParquetParts:
    """A Parquet file written in row batches under a temporary name, published on `close`."""

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = 8192) -> None:
        self.path = path
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows = 0
        self._tmp = temporary_path(path)
        self._rows: list[tuple[object, ...]] = []
        self._writer: pq.ParquetWriter | None = None

    def append(self, row: tuple[object, ...]) -> None:
        """Buffer one row (values in schema order); flush a row group when the buffer is full."""
        self._rows.append(row)
        self.rows += 1
        if len(self._rows) >= self.batch_rows:
            self._flush()

    def write(self, table: pa.Table) -> None:
        """Append a whole table (of this schema) after the buffered rows."""
        self._flush()
        if table.num_rows:
            self._writer_for().write_table(table.cast(self.schema))
            self.rows += table.num_rows

    def close(self) -> Path | None:
        """Publish the file, or write nothing if no row came; the published path, or None."""
        if self.rows == 0:
            return None
        self._flush()
        assert self._writer is not None
        self._writer.close()
        publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = [
            pa.array(values, type=f.type)
            for values, f in zip(zip(*self._rows, strict=True), self.schema, strict=True)
        ]
        self._writer_for().write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self._rows = []

    def _writer_for(self) -> pq.ParquetWriter:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        return self._writer
