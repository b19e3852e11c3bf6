"""DuckDB connections for the lake's set-at-a-time work (dedup joins, aggregation, reports)."""

from collections.abc import Iterable
from pathlib import Path

import duckdb

MEMORY_LIMIT = "1GB"


def connect(scratch: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB bounded in memory, spilling under `scratch`."""
    db = duckdb.connect()
    db.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    db.execute("SET preserve_insertion_order = false")
    db.execute(f"SET temp_directory = '{scratch}'")
    return db


def parquet_list(paths: Iterable[Path | str]) -> str:
    """A SQL list literal of Parquet paths, for read_parquet([...])."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
