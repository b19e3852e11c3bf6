"""Pair sets for training and evaluation: from a lake's pair files, a built pair file, or any label file.

    lake directory      <lake>/pairs/<split>.parquet and rankings_<split>.parquet (build-pairs' output)
    pair Parquet file   used as it is (a file build-pairs wrote)
    any other file      ingested into a scratch lake beside the run and paired: every split is used

The content hash of what was read is recorded with the model, so a model names its data.
"""

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rmcore.config import DataConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake, schemas
from rmcore.data.pairs.build import build_pairs, pairs_dir
from rmcore.data.pairs.splits import SPLITS


@dataclass(frozen=True, kw_only=True)
class PairSet:
    """Pairs (and rankings of K > 2) to train or evaluate on, with the hash of their content."""

    pairs: pa.Table
    rankings: pa.Table
    content_hash: str
    origin: str
    lake: Path | None = None
    """The lake the pairs were built from (its comparisons name who voted); None for a bare pair file."""


def _read(paths: list[Path], schema: pa.Schema) -> pa.Table:
    tables = [pq.read_table(p) for p in paths if p.exists()]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables, promote_options="permissive")


def _hash(paths: list[Path]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in paths if p.exists()):
        h.update(path.read_bytes())
    return h.hexdigest()


def _from_lake(root: Path, splits: tuple[str, ...]) -> PairSet:
    folder = pairs_dir(Lake(root))
    pair_files = [folder / f"{s}.parquet" for s in splits]
    if not any(p.exists() for p in pair_files):
        raise FileNotFoundError(
            f"{folder}: no pair files; run `rmcore ingest FILES --lake {root}` then "
            f"`rmcore build-pairs --lake {root}`"
        )
    ranking_files = [folder / f"rankings_{s}.parquet" for s in splits]
    return PairSet(
        pairs=_read(pair_files, schemas.PAIRS),
        rankings=_read(ranking_files, schemas.SPLIT_RANKINGS),
        content_hash=_hash(pair_files + ranking_files),
        origin=f"{root} ({', '.join(splits)})",
        lake=root,
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


def lake_pairs_hash(root: Path) -> str:
    """Content hash of every pair and ranking file build-pairs wrote in the lake at `root`, all splits."""
    folder = pairs_dir(Lake(root))
    return _hash([folder / f"{prefix}{s}.parquet" for s in SPLITS for prefix in ("", "rankings_")])


def _is_pair_file(path: Path) -> bool:
    """A Parquet file that build-pairs wrote (it has chosen, rejected and p_chosen columns)."""
    return path.suffix == ".parquet" and {"chosen", "rejected", "p_chosen"} <= set(pq.read_schema(path).names)


def load_pairs(source: Path | None, split: str, data: DataConfig, scratch: Path) -> PairSet:
    """The pairs of `split` from `source` (None: data.lake); a label file is ingested whole."""
    if source is None:
        return _from_lake(data.lake, (split,))
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such pair file or lake")
    if source.is_dir():
        return _from_lake(source, (split,))
    if _is_pair_file(source):
        empty = schemas.SPLIT_RANKINGS.empty_table()
        return PairSet(
            pairs=pq.read_table(source), rankings=empty, content_hash=_hash([source]), origin=str(source)
        )
    shutil.rmtree(scratch, ignore_errors=True)
    lake = Lake(scratch)
    summary = ingest(lake, [source], data.ingest)
    if summary.files_failed:
        raise ValueError(f"{source}: {summary.files_failed[str(source)]}")
    build_pairs(lake, SplitConfig(), data.pairs)
    return _from_lake(scratch, SPLITS)
