"""Pairs: the lake's judgments become labelled, split preference pairs, and training reads them.

    lake -> votes.py (annotated votes) -> dawid_skene.py (posteriors, optional) ->
    build.py (+ splits.py) -> <lake>/pairs/<split>.parquet (PairsSummary) -> load.py -> PairSet

A label file given to `load_pairs` instead of a lake is ingested into a scratch lake first.
"""

from rmcore.data.pairs.build import PairsSummary, build_pairs, pairs_dir
from rmcore.data.pairs.load import PairSet, lake_pairs_hash, load_pairs, shared_prompts

__all__ = [
    "PairSet",
    "PairsSummary",
    "build_pairs",
    "lake_pairs_hash",
    "load_pairs",
    "pairs_dir",
    "shared_prompts",
]
