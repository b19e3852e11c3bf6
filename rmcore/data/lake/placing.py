"""Finished Parquet files into a table's folder, then one Delta commit that names them all.

    local Parquet files -> place (hard link, or upload to the object store) -> AddAction -> commit

rmcore writes the lake's Parquet files itself, with pyarrow or DuckDB, streaming and bounded in
memory, and commits them with deltalake's `create_write_transaction`: deltalake's own writer holds
a whole target file per partition in memory, which at a million rows passes the 2 GB that ingest
is held to. A local lake gets hard links to the staged files (no bytes copied); a remote one gets
uploads through deltalake's object store, with the credentials deltalake reads. A placed file that
no commit names is invisible to every reader; `rmcore lake vacuum` deletes it.
"""

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake._internal import DeltaFileSystemHandler
from deltalake.transaction import AddAction, RemoveAction

from rmcore.data.lake.lake import Lake

UPLOAD_BYTES = 8 << 20


def _upload(source: Path, table_uri: str, relative: str) -> None:
    # deltalake's pyarrow handler wraps this stream in a pa.PythonFile, whose writes pass Buffers
    # that the stream's write rejects; writing bytes to the stream itself works
    stream = DeltaFileSystemHandler(table_uri).open_output_stream(relative)
    with source.open("rb") as f:
        while chunk := f.read(UPLOAD_BYTES):
            stream.write(chunk)
    stream.close()  # type: ignore[attr-defined]  # missing from deltalake's stub, present at run time


def place(lake: Lake, table: str, source: Path, split: str | None = None) -> AddAction:
    """Put a finished local Parquet file into `table`'s folder under a fresh name (in the partition of
    `split` for a pair table); the action that adds it, for a commit to make."""
    relative = f"{f'split={split}/' if split else ''}part-{uuid.uuid4().hex}.zstd.parquet"
    if lake.remote:
        _upload(source, lake.table_uri(table), relative)
    else:
        target = Path(lake.table_uri(table)) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    rows = pq.ParquetFile(source).metadata.num_rows
    return AddAction(
        path=relative,
        size=source.stat().st_size,
        partition_values={"split": split} if split else {},
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps({"numRecords": rows}),
    )


def unplace(lake: Lake, table: str, actions: list[AddAction]) -> None:
    """Delete placed files that no commit names (after a commit that failed)."""
    handler = DeltaFileSystemHandler(lake.table_uri(table))
    for action in actions:
        handler.delete_file(action.path)


def commit_placed(
    table: DeltaTable, actions: list[AddAction], mode: str, properties: CommitProperties | None = None
) -> int:
    """Commit placed files to `table` (append, or overwrite: they replace every file); its new version."""
    table.create_write_transaction(
        list[AddAction | RemoveAction](actions), mode, table.schema(), commit_properties=properties
    )
    return table.version()
