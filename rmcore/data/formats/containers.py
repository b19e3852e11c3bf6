"""Containers: how a file's bytes become raw records (JSONL, JSON, CSV, Parquet, XLSX, gzip).

The container is detected from content (gzip, Parquet and XLSX magic bytes; JSON text by its
first character), with the file name as a tie-breaker for CSV. Records stream: memory stays flat
whatever the file size, except for JSON documents and XLSX sheets, which are read whole.

`RawRecord.row` is the record's 1-based position in the file (for JSONL, its line number);
a record that cannot be decoded carries the reason instead of a value.
"""

import csv
import gzip
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from rmcore.data.records import Reason, RowRejected

CONTAINERS = ("jsonl", "json", "csv", "parquet", "xlsx")
_GZIP = b"\x1f\x8b"
_PARQUET = b"PAR1"
_ZIP = b"PK\x03\x04"
_BOM = b"\xef\xbb\xbf"
_PROGRESS_EVERY = 4096

csv.field_size_limit(1 << 30)


class UnreadableFile(Exception):
    """The file as a whole cannot be read; its rows are not ingested."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: a decoded mapping, or the reason it could not be decoded."""

    row: int
    value: dict[str, Any] | None
    raw: bytes | None = None
    error: RowRejected | None = None

    def raw_text(self, limit: int) -> str:
        """The record's original text, cut to `limit` characters, for the rejects table."""
        if self.raw is not None:
            text = self.raw.decode("utf-8", errors="replace")
        else:
            text = orjson.dumps(self.value, default=str).decode()
        return text[:limit]


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == _GZIP


def open_binary(path: Path) -> IO[bytes]:
    """The file's decompressed byte stream."""
    if is_gzip(path):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def detect_container(path: Path) -> str:
    """The container of `path`, from its (decompressed) first bytes and, for CSV, its name."""
    with open_binary(path) as f:
        head = f.read(4096)
    if head.startswith(_PARQUET):
        return "parquet"
    if head.startswith(_ZIP):
        return "xlsx"
    if _suffixes(path) & {".jsonl", ".ndjson"}:
        return "jsonl"
    stripped = head.removeprefix(_BOM).lstrip(b" \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        first_line = stripped.split(b"\n", 1)[0]
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            return "json"
        return "jsonl"
    return "csv"


def records(
    path: Path, container: str | None = None, on_bytes: Callable[[int], None] | None = None
) -> Iterator[RawRecord]:
    """The raw records of one file. `on_bytes` receives the compressed bytes read so far."""
    readers = {
        "jsonl": _jsonl,
        "json": _json,
        "csv": _csv,
        "parquet": _parquet,
        "xlsx": _xlsx,
    }
    kind = container or "file"
    try:
        kind = container or detect_container(path)
        with path.open("rb") as raw:
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if is_gzip(path) else raw
            report = (lambda: on_bytes(raw.tell())) if on_bytes else (lambda: None)
            yield from readers[kind](stream, report)
    except (OSError, EOFError, ValueError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise UnreadableFile(path, f"cannot read as {kind}: {error}") from error


def line_offsets(path: Path, parts: int) -> list[tuple[int, int, int]]:
    """A plain file cut into about `parts` byte ranges at line starts: (start, end, first line number)."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as f:
        for k in range(1, parts):
            f.seek(max(k * size // parts, starts[-1]))
            f.readline()
            if f.tell() < size and f.tell() > starts[-1]:
                starts.append(f.tell())
        ranges, line = [], 1
        f.seek(0)
        for start, end in zip(starts, [*starts[1:], size], strict=True):
            ranges.append((start, end, line))
            remaining = end - start
            while remaining:
                block = f.read(min(remaining, 1 << 24))
                line += block.count(b"\n")
                remaining -= len(block)
    return ranges


def jsonl_range(path: Path, start: int, end: int, first_row: int) -> Iterator[RawRecord]:
    """The JSONL records of the lines in bytes [start, end) of a plain file, numbered from `first_row`."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            position, row = start, first_row
            for line in f:
                if position >= end:
                    break
                position += len(line)
                if row == 1:
                    line = line.removeprefix(_BOM)
                if not line.isspace():
                    yield _decoded(row, line)
                row += 1
    except OSError as error:
        raise UnreadableFile(path, f"cannot read as jsonl: {error}") from error


def _suffixes(path: Path) -> set[str]:
    return {s.lower() for s in path.suffixes}


def _decoded(row: int, line: bytes) -> RawRecord:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            why = RowRejected(Reason.INVALID_UTF8, f"invalid UTF-8 at byte {bad.start}")
        else:
            why = RowRejected(Reason.MALFORMED, f"invalid JSON: {error}")
        return RawRecord(row, None, line, why)
    if not isinstance(value, dict):
        why = RowRejected(Reason.NOT_AN_OBJECT, f"a JSON {type(value).__name__}, not an object")
        return RawRecord(row, None, line, why)
    return RawRecord(row, value, line)


def _jsonl(stream: IO[bytes], report: Callable[[], None]) -> Iterator[RawRecord]:
    for row, line in enumerate(stream, start=1):
        if row == 1:
            line = line.removeprefix(_BOM)
        if row % _PROGRESS_EVERY == 0:
            report()
        if not line.isspace():
            yield _decoded(row, line)
    report()


def _json(stream: IO[bytes], report: Callable[[], None]) -> Iterator[RawRecord]:
    try:
        document = orjson.loads(stream.read().removeprefix(_BOM))
    except orjson.JSONDecodeError as error:
        raise ValueError(f"invalid JSON document: {error}") from error
    report()
    items = document if isinstance(document, list) else [document]
    for row, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield RawRecord(row, item)
        else:
            why = RowRejected(Reason.NOT_AN_OBJECT, f"a JSON {type(item).__name__}, not an object")
            yield RawRecord(row, None, orjson.dumps(item), why)


def _csv(stream: IO[bytes], report: Callable[[], None]) -> Iterator[RawRecord]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    for row, cells in enumerate(reader, start=1):
        if row % _PROGRESS_EVERY == 0:
            report()
        if not any(c.strip() for c in cells):
            continue
        raw = ",".join(cells).encode("utf-8", errors="surrogateescape")
        if len(cells) != len(header):
            why = RowRejected(Reason.MALFORMED, f"{len(cells)} fields, header has {len(header)}")
            yield RawRecord(row, None, raw, why)
            continue
        try:
            for cell in cells:
                cell.encode("utf-8")
        except UnicodeEncodeError as bad:
            why = RowRejected(Reason.INVALID_UTF8, f"invalid UTF-8 near character {bad.start}")
            yield RawRecord(row, None, raw, why)
            continue
        yield RawRecord(row, {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)}, raw)
    report()


def _parquet(stream: IO[bytes], report: Callable[[], None]) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(stream, pre_buffer=False).iter_batches(batch_size=8192):
        for value in batch.to_pylist():
            row += 1
            yield RawRecord(row, value)
        report()


def _xlsx(stream: IO[bytes], report: Callable[[], None]) -> Iterator[RawRecord]:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(stream.read()), read_only=True, data_only=True)
    report()
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h) if h is not None else "" for h in next(rows, ())]
    for row, cells in enumerate(rows, start=1):
        if all(c is None for c in cells):
            continue
        yield RawRecord(row, dict(zip(header, cells, strict=False)))
    workbook.close()
