"""What a training returns: `TrainingSummary`, also written by rank 0 as output_dir/summary.json.

A TypedDict rather than a dataclass: the summary crosses process and JSON boundaries as it is (rank 0
writes it for the torchrun launcher, `rmcore train --json` prints it, the retrain flow's training task
caches it as Prefect JSON), and a TypedDict is a plain dict at run time, while mypy still refuses a
misspelt key.
"""

from typing import Any, TypedDict


class TokenSummary(TypedDict):
    """Tokens the forwards computed, summed over the training ranks."""

    tokens_encoded: int
    """Real tokens through the model (a shared prompt counts once)."""
    tokens_padded: int
    """Positions computed, padding included."""
    padding: float
    """Share of computed positions that were padding: 1 - tokens_encoded / tokens_padded."""
    shared_prompt_saving: float
    """Share of tokens that encoding each prompt once saved: 1 - tokens_encoded / tokens alone."""


class TrainingSummary(TokenSummary):
    """One training: what it trained on, how fast, in which shapes, and the held-out metrics."""

    model_dir: str
    steps: int
    """Optimizer steps done (the step reached, counting those of a resumed attempt)."""
    train_pairs: int
    train_rankings: int
    identical_after_truncation: int
    """Pairs whose two sequences are the same once cut to model.max_length."""
    held_out_prompts_in_train: int
    """Held-out prompts that also occur in the training pairs (they inflate held-out accuracy)."""
    train_seconds: float
    train_pairs_per_s: float
    """Pairs trained by this invocation / train_seconds."""
    shapes: int
    """Distinct (rows, width) micro-batch shapes the forwards ran."""
    widths: list[int]
    width_multiple: int
    attention: str
    compiled_graphs: int
    recompiles: int
    precision: str
    device: str
    world_size: int
    eval: dict[str, Any]
    """`pair_metrics` of the final model on the held-out pairs (rmcore.evaluation.metrics); empty
    without held-out pairs."""
