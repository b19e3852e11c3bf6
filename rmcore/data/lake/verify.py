"""Verify a Delta table's committed files against what its log says of them.

    DeltaTable (one version) -> verify_table -> TableFiles (files checked, the damaged ones and why)

For each file the version's log adds (path, size in bytes, row count), in this order:
    missing                                      the store holds no object at the path
    unreadable: <the Parquet reader's first line> the footer cannot be read (junk, cut short)
    rows: the log commits N, the file holds M    the footer's row count differs from the commit's
    unreadable: the log commits N bytes, ...     any other size: delta-rs reads a file by its committed
                                                 size, so every reader of the table fails on it
Files are reached through delta-rs's own object store (`DeltaStorageHandler`), so a remote table is
checked with the credentials and endpoint the library reads from the environment, as its readers are.
Only footers are read: a file whose footer and size are intact but whose pages are damaged passes.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.fs import DeltaStorageHandler

MISSING = "missing"
"""The reason given for a committed file the store does not hold."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""delta-rs colours the causes in its error messages."""


@dataclass(frozen=True)
class Damage:
    """One committed file that cannot be read as committed."""

    path: str
    """The file's full path (local table) or URI (remote table)."""
    reason: str


@dataclass(frozen=True)
class TableFiles:
    """What verifying one version of a table found."""

    checked: int
    damaged: list[Damage]


def first_line(error: BaseException) -> str:
    """An error's first non-empty line, without terminal colours or a closing full stop (its type name
    when it has no text)."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__


def _footer_problem(fs: pafs.FileSystem, path: str, size: int, rows: int | None, actual: int) -> str | None:
    try:
        with fs.open_input_file(path) as handle:
            held = pq.ParquetFile(handle).metadata.num_rows
    except (pa.ArrowException, OSError) as error:
        return f"unreadable: {first_line(error)}"
    if rows is not None and held != rows:
        return f"rows: the log commits {rows}, the file holds {held}"
    if actual != size:
        return f"unreadable: the log commits {size} bytes, the file holds {actual}"
    return None


def verify_table(table: DeltaTable, location: str) -> TableFiles:
    """Check every file `table`'s version references (see the module docstring); `location` is the
    table's root as paths are reported (its local path or URI)."""
    adds = pa.table(table.get_add_actions(flatten=True))
    paths = adds.column("path").to_pylist()
    sizes = adds.column("size_bytes").to_pylist()
    rows = adds.column("num_records").to_pylist()  # null where the writer kept no statistics
    infos = pafs.PyFileSystem(DeltaStorageHandler(table.table_uri)).get_file_info(paths)
    held = {
        path: info.size
        for path, info in zip(paths, infos, strict=True)
        if info.type != pafs.FileType.NotFound
    }
    # the sizes the store holds, not the committed ones: a file's own footer is what is read; and
    # opening a file of known size asks the store nothing (a size lookup on open blocks the thread of
    # an in-process S3 server, as the tests run, until it times out)
    fs = pafs.PyFileSystem(DeltaStorageHandler(table.table_uri, known_sizes=held))
    damaged = []
    for path, size, count in zip(paths, sizes, rows, strict=True):
        reason = MISSING if path not in held else _footer_problem(fs, path, size, count, held[path])
        if reason is not None:
            damaged.append(Damage(f"{location}/{unquote(path)}", reason))
    return TableFiles(len(paths), damaged)
