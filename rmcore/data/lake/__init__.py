"""The lake: Delta tables of judgments, rankings, rejects and ingested files, and the pairs built from them.

ingest commits -> lake.py (Lake: tables, versions, snapshots, DuckDB views) -> Delta tables
schemas.py   the Arrow schema of each table and the lake's schema version
duck.py      DuckDB connections for set-at-a-time work over the tables
Lake -> check.py (check_lake; each table's files by verify.py) -> LakeCheck: bad files, what to do
"""

from rmcore.data.lake.check import LakeCheck, Problem, check_lake
from rmcore.data.lake.lake import (
    DATA_TABLES,
    PAIR_TABLES,
    TABLES,
    FileEntry,
    Lake,
    LakeDamaged,
    OldLake,
    Snapshot,
)

__all__ = [
    "DATA_TABLES",
    "PAIR_TABLES",
    "TABLES",
    "FileEntry",
    "Lake",
    "LakeCheck",
    "LakeDamaged",
    "OldLake",
    "Problem",
    "Snapshot",
    "check_lake",
]
