"""One evaluation path: a model's rewards on pairs -> `pair_metrics` -> the reports.

rmcore evaluate --model runs/latest/model --pairs data/lake --report report/ --json
"""

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rmcore.config import Config
from rmcore.data.pairs import load_pairs
from rmcore.data.pairs.votes import lake_votes
from rmcore.evaluation.metrics import pair_metrics
from rmcore.model.inference import Scorer, load_trained


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """A model's rewards on a pair table and `pair_metrics` of them."""

    metrics: dict[str, Any]
    chosen: np.ndarray
    """Rewards of each pair's chosen response, (p,), in the table's order."""
    rejected: np.ndarray
    """Rewards of each pair's rejected response, (p,)."""
    pairs: pa.Table
    votes: pa.Table | None = None
    """Who voted on the pairs (rmcore.data.pairs.votes.lake_votes of the lake they were built from); None
    for a bare pair file."""


def evaluate(scorer: Scorer, pairs: pa.Table) -> Evaluation:
    """The scorer's rewards on every pair of the table, and their metrics."""
    chosen, rejected = scorer.pair_rewards(pairs)
    return Evaluation(
        metrics=pair_metrics(chosen, rejected, pairs), chosen=chosen, rejected=rejected, pairs=pairs
    )


def evaluate_model(model_dir: Path, source: Path | None, split: str, config: Config) -> Evaluation:
    """A saved model on the pairs of `source`: a pair file, a lake's `split`, or a label file, with
    the votes cast on them where the source has them.

    A label file is ingested and paired in a temporary lake with `config.data`'s settings; forwards
    hold at most `config.train.max_tokens` padded tokens, in the precision the model trained with.
    """
    trained = load_trained(model_dir)
    with tempfile.TemporaryDirectory(prefix="rmcore-eval-") as scratch:
        data = load_pairs(source, split, config.data, Path(scratch) / "lake")
        votes = lake_votes(data.lake) if data.lake is not None else None
    return replace(evaluate(trained.scorer(config.train.max_tokens), data.pairs), votes=votes)
