"""Pair sets for training and evaluation: from a lake's pair tables, a pair Parquet file, or any label file.

    lake (path or URI)  its `pairs` and `pair_rankings` tables (build-pairs' output), one split or more
    pair Parquet file   used as it is (a file of the pairs schema)
    any other file      ingested into a scratch lake beside the run and paired: every split is used

The content hash of what was read is recorded with the model, so a model names its data.
"""

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rmcore.config import DataConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake, schemas
from rmcore.data.pairs.build import LAKE_VERSION, build_pairs
from rmcore.data.pairs.splits import SPLITS


@dataclass(frozen=True, kw_only=True)
class PairSet:
    """Pairs (and rankings of K > 2) to train or evaluate on, with the hash of their content."""

    pairs: pa.Table
    rankings: pa.Table
    content_hash: str
    origin: str
    lake: Lake | None = None
    """The lake the pairs were built from (its comparisons name who voted); None for a bare pair file."""
    lake_version: int | None = None
    """The lake version the pairs were built from; None for a bare pair file."""


def read_split(lake: Lake, name: str, splits: tuple[str, ...]) -> pa.Table:
    """The rows of a pair table (`pairs` or `pair_rankings`) in `splits`, a split at a time, sorted by id."""
    schema = schemas.LAKE[name]
    table = lake.table(name)
    if table is None:
        return schema.empty_table()
    key = "pair_id" if name == "pairs" else "ranking_id"
    with lake.reading():
        rows = table.to_pyarrow_table(filters=[("split", "in", list(splits))])
    rows = rows.select(schema.names).cast(schema)
    parts = [rows.filter(pa.compute.equal(rows.column("split"), s)).sort_by(key) for s in splits]
    return pa.concat_tables(parts)


def built_from(lake: Lake) -> int | None:
    """The lake version the pair tables were last built from (None before the first build)."""
    table = lake.table("pairs")
    if table is None:
        return None
    (last,) = table.history(1)
    return int(json.loads(last[LAKE_VERSION])) if LAKE_VERSION in last else None


def content_hash(tables: list[pa.Table]) -> str:
    """BLAKE2b-128 of tables' data (Arrow IPC of each, one chunk per column): the same rows give the
    same hash however the files holding them were cut."""
    h = hashlib.blake2b(digest_size=16)
    for table in tables:
        sink = pa.BufferOutputStream()
        whole = table.combine_chunks().replace_schema_metadata(None)
        with pa.ipc.new_stream(sink, whole.schema) as writer:
            writer.write_table(whole)
        h.update(sink.getvalue())
    return h.hexdigest()


def _file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(path.read_bytes())
    return h.hexdigest()


def _from_lake(lake: Lake, splits: tuple[str, ...]) -> PairSet:
    if lake.table("pairs") is None:
        raise FileNotFoundError(
            f"{lake.uri}: no pairs built; run `rmcore ingest FILES --lake {lake.uri}` then "
            f"`rmcore build-pairs --lake {lake.uri}`"
        )
    pairs, rankings = read_split(lake, "pairs", splits), read_split(lake, "pair_rankings", splits)
    return PairSet(
        pairs=pairs,
        rankings=rankings,
        content_hash=content_hash([pairs, rankings]),
        origin=f"{lake.uri} ({', '.join(splits)})",
        lake=lake,
        lake_version=built_from(lake),
    )


def prompt_ids(data: PairSet) -> set[str]:
    """The distinct prompt ids of a pair set's pairs and rankings."""
    return {*data.pairs.column("prompt_id").to_pylist(), *data.rankings.column("prompt_id").to_pylist()}


def shared_prompts(train: PairSet, held_out: PairSet) -> int:
    """How many distinct held-out prompts also occur in the training pairs (leakage: 0 expected).

    A lake's splits are disjoint by construction (a prompt's split is a function of its hash); a
    separate evaluation file can overlap the training data, which inflates held-out accuracy.
    """
    return len(prompt_ids(train) & prompt_ids(held_out))


def lake_pairs_hash(lake: Lake) -> str:
    """Content hash of every pair and ranking build-pairs wrote to the lake, all splits."""
    return content_hash([read_split(lake, "pairs", SPLITS), read_split(lake, "pair_rankings", SPLITS)])


def _is_pair_file(path: Path) -> bool:
    """A Parquet file of pairs (it has chosen, rejected and p_chosen columns)."""
    return path.suffix == ".parquet" and {"chosen", "rejected", "p_chosen"} <= set(pq.read_schema(path).names)


def load_pairs(source: Path | None, split: str, data: DataConfig, scratch: Path) -> PairSet:
    """The pairs of `split` from `source` (None: data.lake); a label file is ingested whole."""
    if source is None:
        return _from_lake(Lake(data.lake), (split,))
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such pair file or lake")
    if source.is_dir():
        return _from_lake(Lake(source), (split,))
    if _is_pair_file(source):
        empty = schemas.SPLIT_RANKINGS.empty_table()
        return PairSet(
            pairs=pq.read_table(source), rankings=empty, content_hash=_file_hash(source), origin=str(source)
        )
    shutil.rmtree(scratch, ignore_errors=True)
    lake = Lake(scratch)
    summary = ingest(lake, [source], data.ingest)
    if summary.files_failed:
        raise ValueError(f"{source}: {summary.files_failed[str(source)]}")
    build_pairs(lake, SplitConfig(), data.pairs)
    return _from_lake(lake, SPLITS)
