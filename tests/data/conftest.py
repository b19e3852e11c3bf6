"""Fixtures for the data tests, chiefly the readers' tests.

`ingested(name, rows, config)` writes `rows` (dicts, or raw bytes for a broken line) as the JSONL
file `raw/<name>`, ingests it into a fresh lake, builds the pairs and returns an `Ingested`.
`rejection_reason(parse, record)` is the reason a parser rejects a record; `claimants(record)` the
formats whose recognisers claim it and the one detection picks.
"""

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from lake_rows import comparisons, counts, pair_rows

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import detected, formats
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import PairsSummary, build_pairs
from rmcore.data.records import Reason, RowRejected

Record = Mapping[str, Any]

PAIR_FIELDS = ("chosen", "rejected", "p_chosen", "n_votes", "ties", "margin", "category")


@dataclass
class Ingested:
    """One file ingested into its own lake, with the lake's pairs built."""

    lake: Lake
    path: Path
    config: IngestConfig
    result: IngestSummary
    pairs: PairsSummary

    def counts(self, result: IngestSummary | None = None) -> dict[str, Any]:
        """An ingest's counts (this one's by default), checking rows_read = accepted + rejected."""
        return counts(result or self.result)

    def pair_rows(self) -> list[dict[str, Any]]:
        """Every pair row of every split, as (prompt's last message, then PAIR_FIELDS) dicts, sorted."""
        rows = pair_rows(self.lake)
        kept = [{"prompt": row["prompt"][-1]["content"], **{k: row[k] for k in PAIR_FIELDS}} for row in rows]
        return sorted(kept, key=lambda row: (row["prompt"], row["chosen"]))

    def comparisons(self) -> list[dict[str, Any]]:
        """Every comparison the lake holds, in file order."""
        return comparisons(self.lake)

    def assert_again_adds_nothing(self, config: IngestConfig | None = None) -> None:
        """Ingest the same file into the same lake once more (with this or another config): it is
        skipped, nothing is read or added, and the lake holds the comparisons it held."""
        held = len(self.comparisons())
        again = ingest(self.lake, [self.path], config or self.config)
        assert again.files_skipped == [str(self.path)]
        assert self.counts(again) == {
            "rows_read": 0,
            "accepted": 0,
            "rejected": {},
            "new_comparisons": 0,
            "duplicates": 0,
        }
        assert len(self.comparisons()) == held


@pytest.fixture
def ingested(tmp_path: Path) -> Callable[..., Ingested]:
    lakes = itertools.count()

    def run(name: str, rows: list[dict[str, Any] | bytes], config: IngestConfig | None = None) -> Ingested:
        config = config or IngestConfig()
        path = tmp_path / "raw" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
        lake = Lake(tmp_path / f"lake-{next(lakes)}")
        result = ingest(lake, [path], config)
        return Ingested(lake, path, config, result, build_pairs(lake, SplitConfig(), PairsConfig()))

    return run


@pytest.fixture
def rejection_reason() -> Callable[[Callable[[Record], object], Record], Reason]:
    def run(parse: Callable[[Record], object], record: Record) -> Reason:
        with pytest.raises(RowRejected) as info:
            parse(record)
        return info.value.reason

    return run


@pytest.fixture
def claimants() -> Callable[[Record], tuple[list[str], str | None]]:
    def run(record: Record) -> tuple[list[str], str | None]:
        known = formats()
        fmt = detected(record, known)
        return [f.name for f in known.values() if f.matches(record)], fmt.name if fmt else None

    return run
