"""Helpers the data tests share: a JSONL file written from rows, a lake's comparisons and pairs, an
ingest's counts."""

from pathlib import Path
from typing import Any

import orjson

from rmcore.data.ingest import IngestSummary
from rmcore.data.lake import Lake
from rmcore.data.pairs import read_split
from rmcore.data.pairs.splits import SPLITS


def write_jsonl(path: Path, rows: list[dict | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path


def comparisons(lake: Lake) -> list[dict[str, Any]]:
    """Every committed comparison row, in raw-file order (file, then row)."""
    return lake.read("comparisons").sort_by([("raw_file", "ascending"), ("raw_row", "ascending")]).to_pylist()


def pair_rows(lake: Lake) -> list[dict[str, Any]]:
    """Every pair row build-pairs wrote, all splits, split by split and by pair id within a split."""
    return read_split(lake, "pairs", SPLITS).to_pylist()


def ranking_rows(lake: Lake) -> list[dict[str, Any]]:
    """Every ranking of K > 2 build-pairs wrote, all splits, split by split and by ranking id."""
    return read_split(lake, "pair_rankings", SPLITS).to_pylist()


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
