"""Token sequences laid out as the rows of one forward: each alone, or a shared prompt with its responses.

In a causal model a token never sees what follows it, so sequences that begin with the same tokens
(the responses to one prompt) can share one copy of that beginning: a row holds the common prefix once,
then each sequence's own tokens, and under `shared_prompt_mask` each continuation attends to the
prefix and causally to itself only, with position ids that continue from the prefix for every one.
Its reward is read at its last token. That is exact, not an approximation: every hidden state a
continuation sees is the one encoding its sequence alone would give.

A pair then costs P + C + R tokens instead of 2P + C + R, a ranking of K responses P + sum(R) instead
of K * P + sum(R). Sharing is decided per prompt group by a cost model: tokens (the linear layers)
plus `attention_weight` * (row length)^2 (dense attention computes every query-key product, masked or
not), so a group whose shared row would cost more, or whose sequences do not begin alike (a prompt that
truncation cut differently for different responses), stays as separate rows.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

PREFIX = 0
"""Segment id of a shared prefix; continuations are 1, 2, ...; padding is -1."""
PADDING = -1


@dataclass(frozen=True)
class SharePolicy:
    """How rows may share prefixes: the cost of attention relative to the linear layers.

    `attention_weight`: cost of one query-key product per layer relative to one token through the
    linear layers. For a transformer of width h that is about 4h / (24 h^2) = 1 / (6h) with dense
    attention; 0 where masked blocks cost nothing (a block-sparse kernel).
    """

    attention_weight: float

    @classmethod
    def dense(cls, hidden_size: int) -> "SharePolicy":
        """Dense attention (SDPA with a mask) in a model of this width."""
        return cls(attention_weight=1.0 / (6.0 * hidden_size))

    def cost(self, tokens: int, length: int) -> float:
        """Relative compute of a row holding `tokens` tokens in `length` positions."""
        return tokens + self.attention_weight * length * length


@dataclass(frozen=True)
class Row:
    """One row of a forward: a prefix shared by its sequences (length 0: a plain row), then each
    sequence's own tokens in turn."""

    prefix: list[int]
    parts: list[tuple[int, list[int]]] = field(default_factory=list)
    """(sequence index, the sequence's tokens after the prefix), in row order."""

    @property
    def length(self) -> int:
        return len(self.prefix) + sum(len(tokens) for _, tokens in self.parts)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _clusters(sequences: list[Sequence[int]], members: list[int]) -> list[tuple[int, list[int]]]:
    """Sequences of one group in clusters that share a prefix: (prefix length, member indices).

    Sorted by content, sequences that begin alike are neighbours; a sequence joins the current cluster
    when the cluster's tokens saved, (members - 1) * prefix, grow by it. A prefix never takes a
    sequence's last token (its reward is read there).
    """
    order = sorted(members, key=lambda i: list(sequences[i]))
    clusters: list[tuple[int, list[int]]] = []
    for i in order:
        if clusters:
            prefix, current = clusters[-1]
            shared = min(common_prefix(sequences[current[0]], sequences[i]), prefix, len(sequences[i]) - 1)
            if len(current) * shared > (len(current) - 1) * prefix:
                clusters[-1] = (shared, [*current, i])
                continue
        clusters.append((len(sequences[i]) - 1, [i]))
    return clusters


def layout(
    sequences: Sequence[Sequence[int]], groups: Sequence[str], policy: SharePolicy | None
) -> list[Row]:
    """The rows that encode `sequences` (distinct, non-empty), each sequence exactly once.

    `groups[i]`: the prompt group of sequence i; only sequences of one group share a row. Without a
    policy every sequence is a row of its own (what encoders need: their prompt tokens attend to the
    response). Rows come in order of their first sequence.
    """
    if policy is None:
        return [Row([], [(i, list(seq))]) for i, seq in enumerate(sequences)]
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    rows: list[Row] = []
    for indices in members.values():
        for prefix, cluster in _clusters(list(sequences), indices):
            shared = Row(
                list(sequences[cluster[0]][:prefix]), [(i, list(sequences[i][prefix:])) for i in cluster]
            )
            separate = [Row([], [(i, list(sequences[i]))]) for i in cluster]
            alone_cost = sum(policy.cost(row.length, row.length) for row in separate)
            shared_cost = policy.cost(shared.length, shared.length)
            rows.extend([shared] if len(cluster) > 1 and prefix and shared_cost < alone_cost else separate)
    return sorted(rows, key=lambda row: min(i for i, _ in row.parts))


@dataclass(frozen=True)
class RowTensors:
    """Rows as the model's inputs. r rows of s positions, n sequences."""

    input_ids: Tensor
    """(r, s) long, padded on the right with the pad id."""
    attention_mask: Tensor
    """(r, s) long: 1 on real tokens, 0 on padding."""
    position_ids: Tensor
    """(r, s) long: 0.. along the prefix, then continuing from the prefix for each continuation."""
    segments: Tensor
    """(r, s) long: PREFIX (0) for prefix tokens, k = 1, 2, ... for the row's k-th continuation,
    PADDING (-1) for padding."""
    read_index: Tensor
    """(n,) long: where sequence i's reward is read, as row * s + position of its last token."""

    def layout_inputs(self) -> dict[str, Tensor]:
        """`RewardModule.forward`'s arguments besides ids and mask: position ids, segments, read index."""
        return {"position_ids": self.position_ids, "segments": self.segments, "read_index": self.read_index}


def row_tensors(rows: Sequence[Row], pad_id: int) -> RowTensors:
    """The tensors of `rows`; sequence indices must be 0..n-1, each once."""
    width = max((row.length for row in rows), default=0)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    segments = torch.full(shape, PADDING, dtype=torch.long)
    n = sum(len(row.parts) for row in rows)
    read_index = torch.full((n,), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        p = len(row.prefix)
        input_ids[r, :p] = torch.tensor(row.prefix, dtype=torch.long)
        position_ids[r, :p] = torch.arange(p)
        segments[r, :p] = PREFIX
        start = p
        for k, (sequence, tokens) in enumerate(row.parts, start=1):
            end = start + len(tokens)
            input_ids[r, start:end] = torch.tensor(tokens, dtype=torch.long)
            position_ids[r, start:end] = torch.arange(p, p + len(tokens))
            segments[r, start:end] = k
            read_index[sequence] = r * width + end - 1
            start = end
    if bool((read_index < 0).any()):
        raise ValueError("row_tensors: the rows must hold sequences 0..n-1, each once")
    return RowTensors(input_ids, (segments != PADDING).long(), position_ids, segments, read_index)


def shared_prompt_mask(segments: Tensor) -> Tensor:
    """(r, 1, s, s) bool, True where a query (dim 2) may attend to a key (dim 3): causally, within its own
    segment and to the row's prefix. A padding query attends to itself only, so that no attention row is
    empty (an empty softmax is nan, and nan times a zero gradient is still nan).

    segments: (r, s) long as in `RowTensors.segments`.
    """
    s = segments.shape[1]
    positions = torch.arange(s, device=segments.device)
    causal = positions[:, None] >= positions[None, :]  # (s, s)
    query, key = segments[:, :, None], segments[:, None, :]  # (r, s, 1), (r, 1, s)
    allowed = causal & (query != PADDING) & (key != PADDING) & ((key == PREFIX) | (key == query))
    return (allowed | torch.eye(s, dtype=torch.bool, device=segments.device))[:, None]
