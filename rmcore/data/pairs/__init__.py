"""Pairs: the lake's judgments become labelled, split preference pairs, and training reads them.

    lake -> votes.py (annotated votes) -> dawid_skene.py (posteriors, optional) ->
    build.py (+ splits.py) -> the lake's pairs and pair_rankings tables (PairsSummary) -> load.py -> PairSet

A label file given to `load_pairs` instead of a lake is ingested into a scratch lake first.
"""

from rmcore.data.pairs.build import PairsSummary, build_pairs
from rmcore.data.pairs.load import (
    PairSet,
    built_from,
    lake_pairs_hash,
    load_pairs,
    read_split,
    shared_prompts,
)

__all__ = [
    "PairSet",
    "PairsSummary",
    "build_pairs",
    "built_from",
    "lake_pairs_hash",
    "load_pairs",
    "read_split",
    "shared_prompts",
]
