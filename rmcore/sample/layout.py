"""How the sample's rows become file bytes: their order, and deterministic JSONL and gzip."""

import gzip
import json
import random
from collections.abc import Sequence
from typing import Any, TypeVar

from rmcore.data.records import Reason

T = TypeVar("T")


def json_line(value: dict[str, Any]) -> bytes:
    """One JSONL line (without the newline), UTF-8, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def interleave(
    rng: random.Random,
    base: Sequence[T],
    copies: Sequence[tuple[int, T]],
    bad: Sequence[tuple[Reason, T]],
) -> tuple[list[T], list[tuple[int, Reason]]]:
    """Rows in file order and the 1-based rows of the bad ones.

    Base rows keep their order; each copy lands after its source row; bad rows land anywhere
    but first, so that format detection sees a good row.
    """
    n = len(base)
    keyed: list[tuple[tuple[float, int], T, Reason | None]] = [
        ((float(i), 0), row, None) for i, row in enumerate(base)
    ]
    keyed += [((rng.uniform(src, n), 1), row, None) for src, row in copies]
    keyed += [((rng.uniform(0.5, n), 2), row, reason) for reason, row in bad]
    keyed.sort(key=lambda entry: entry[0])
    rows = [row for _, row, _ in keyed]
    bad_rows = [(i, reason) for i, (_, _, reason) in enumerate(keyed, 1) if reason is not None]
    return rows, bad_rows


def jsonl_bytes(lines: Sequence[bytes]) -> bytes:
    """A JSONL file's bytes."""
    return b"".join(line + b"\n" for line in lines)


def gzipped(data: bytes) -> bytes:
    """gzip with no time stamp or file name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)
