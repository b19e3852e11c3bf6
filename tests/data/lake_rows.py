"""Helpers the data tests share: a JSONL file written from rows, a lake's comparisons, an ingest's counts."""

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from rmcore.data.ingest import IngestSummary
from rmcore.data.lake import Lake


def write_jsonl(path: Path, rows: list[dict | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path


def comparisons(lake: Lake) -> list[dict[str, Any]]:
    """Every committed comparison row."""
    parts = lake.parts("comparisons")
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pylist() if parts else []


def counts(result: IngestSummary) -> dict[str, Any]:
    """The summary's counts, with the invariant rows_read = accepted + rejected checked."""
    assert result.rows_read == result.accepted + sum(result.rejected.values())
    return {
        "rows_read": result.rows_read,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "new_comparisons": result.new_comparisons,
        "duplicates": result.duplicates,
    }
