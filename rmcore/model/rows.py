"""Token sequences laid out as the rows of one forward: each alone, or a shared prompt with its responses,
and several of those blocks packed side by side in one row.

In a causal model a token never sees what follows it, so sequences that begin with the same tokens
(the responses to one prompt) can share one copy of that beginning: a block holds the common prefix
once, then each sequence's own tokens, and under `shared_prompt_mask` each continuation attends to
the prefix and causally to itself only, with position ids that continue from the prefix for every
one. Its reward is read at its last token. That is exact, not an approximation: every hidden state a
continuation sees is the one encoding its sequence alone would give.

A pair then costs P + C + R tokens instead of 2P + C + R, a ranking of K responses P + sum(R) instead
of K * P + sum(R). Sharing is decided per prompt group by a cost model: tokens (the linear layers)
plus `attention_weight` * (block length)^2 (dense attention computes every query-key product, masked
or not), so a group whose shared block would cost more, or whose sequences do not begin alike (a
prompt that truncation cut differently for different responses), stays as blocks of one sequence.

Blocks then fill rows as wide as the longest block (`pack`): a short block goes into the room a row
leaves, not into a row of its own, and the mask is block-diagonal (a token sees only its own block),
with positions starting at 0 in each block. A micro-batch computes rows x width positions, so packing
turns padding into tokens without changing what any token sees.
"""

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

PREFIX = 0
"""Segment id of a shared prefix; continuations are 1, 2, ... within their block; padding is -1."""
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
class Block:
    """Sequences that share a prefix (length 0: one plain sequence): the prefix, then each sequence's
    own tokens in turn."""

    prefix: list[int]
    parts: list[tuple[int, list[int]]] = field(default_factory=list)
    """(sequence index, the sequence's tokens after the prefix), in block order."""

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
) -> list[Block]:
    """The blocks that encode `sequences` (distinct, non-empty), each sequence exactly once.

    `groups[i]`: the prompt group of sequence i; only sequences of one group share a block. Without a
    policy every sequence is a block of its own (what encoders need: their prompt tokens attend to the
    response). Blocks come in order of their first sequence.
    """
    if policy is None:
        return [Block([], [(i, list(seq))]) for i, seq in enumerate(sequences)]
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    blocks: list[Block] = []
    for indices in members.values():
        for prefix, cluster in _clusters(list(sequences), indices):
            shared = Block(
                list(sequences[cluster[0]][:prefix]), [(i, list(sequences[i][prefix:])) for i in cluster]
            )
            separate = [Block([], [(i, list(sequences[i]))]) for i in cluster]
            alone_cost = sum(policy.cost(block.length, block.length) for block in separate)
            shared_cost = policy.cost(shared.length, shared.length)
            blocks.extend([shared] if len(cluster) > 1 and prefix and shared_cost < alone_cost else separate)
    return sorted(blocks, key=lambda block: min(i for i, _ in block.parts))


def bucket_width(length: int, multiple: int = 1) -> int:
    """`length` rounded up to a multiple of `multiple`: the width of a row whose longest block has
    `length` tokens, when rows come in a few widths so that kernels' plans, the allocator's blocks and
    compiled graphs are reused from one micro-batch to the next."""
    return -(-length // multiple) * multiple


def row_of_each(lengths: Sequence[int], multiple: int = 1) -> list[int]:
    """The row of each block of these lengths, packed best fit decreasing into rows as wide as the
    longest, rounded up to `multiple` (`bucket_width`): a block may use the room the rounding adds.

    Longest first, each block goes into the row with the least room that still holds it, or opens a
    row. The number of rows depends on the lengths only (never on their order), so a planner that
    counts rows and `pack` agree. At most 11/9 of the fewest rows possible, plus one.
    """
    width = bucket_width(max(lengths, default=0), multiple)
    rooms: list[tuple[int, int]] = []
    """(room left, row), sorted: the rows that can still take a token."""
    rows = [0] * len(lengths)
    opened = 0
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        k = bisect_left(rooms, (lengths[i], -1))
        if k == len(rooms):
            row, room = opened, width
            opened += 1
        else:
            room, row = rooms.pop(k)
        rows[i] = row
        if room > lengths[i]:
            insort(rooms, (room - lengths[i], row))
    return rows


def pack(blocks: Sequence[Block], multiple: int = 1) -> list[list[Block]]:
    """The rows that hold `blocks` (`row_of_each`), each row's blocks in the order given."""
    assignment = row_of_each([block.length for block in blocks], multiple)
    rows: list[list[Block]] = [[] for _ in range(max(assignment, default=-1) + 1)]
    for block, row in zip(blocks, assignment, strict=True):
        rows[row].append(block)
    return rows


@dataclass(frozen=True)
class RowTensors:
    """Rows of blocks as the model's inputs. r rows of s positions, n sequences."""

    input_ids: Tensor
    """(r, s) long, padded on the right with the pad id."""
    attention_mask: Tensor
    """(r, s) long: 1 on real tokens, 0 on padding."""
    position_ids: Tensor
    """(r, s) long: from 0 along each block's prefix, then continuing from the prefix for each
    continuation."""
    blocks: Tensor
    """(r, s) long: the block of each position within its row, 0, 1, ...; PADDING (-1) for padding."""
    segments: Tensor
    """(r, s) long: PREFIX (0) for prefix tokens, k = 1, 2, ... for its block's k-th continuation,
    PADDING (-1) for padding."""
    read_index: Tensor
    """(n,) long: where sequence i's reward is read, as row * s + position of its last token."""

    def layout_inputs(self) -> dict[str, Tensor]:
        """`RewardModule.forward`'s arguments besides ids and mask: the rows' layout."""
        return {
            "position_ids": self.position_ids,
            "blocks": self.blocks,
            "segments": self.segments,
            "read_index": self.read_index,
        }


def row_tensors(rows: Sequence[Sequence[Block]], pad_id: int, multiple: int = 1) -> RowTensors:
    """The tensors of `rows` (each a few blocks side by side), as wide as the fullest row rounded up to
    `multiple`; sequence indices must be 0..n-1, each once."""
    width = bucket_width(max((sum(block.length for block in row) for row in rows), default=0), multiple)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    block_ids = torch.full(shape, PADDING, dtype=torch.long)
    segments = torch.full(shape, PADDING, dtype=torch.long)
    n = sum(len(block.parts) for row in rows for block in row)
    read_index = torch.full((n,), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for b, block in enumerate(row):
            p = len(block.prefix)
            input_ids[r, start : start + p] = torch.tensor(block.prefix, dtype=torch.long)
            position_ids[r, start : start + p] = torch.arange(p)
            segments[r, start : start + p] = PREFIX
            block_ids[r, start : start + block.length] = b
            start += p
            for k, (sequence, tokens) in enumerate(block.parts, start=1):
                end = start + len(tokens)
                input_ids[r, start:end] = torch.tensor(tokens, dtype=torch.long)
                position_ids[r, start:end] = torch.arange(p, p + len(tokens))
                segments[r, start:end] = k
                read_index[sequence] = r * width + end - 1
                start = end
    if bool((read_index < 0).any()):
        raise ValueError("row_tensors: the rows must hold sequences 0..n-1, each once")
    return RowTensors(input_ids, (segments != PADDING).long(), position_ids, block_ids, segments, read_index)


def may_attend(
    query: Tensor,
    key: Tensor,
    query_block: Tensor,
    key_block: Tensor,
    query_segment: Tensor,
    key_segment: Tensor,
) -> Tensor:
    """Whether a query at position `query` may attend to a key at `key` (broadcast elementwise): causally,
    within its own block, to its own segment and the block's prefix. A padding query attends to itself
    only, so that no attention row is empty (an empty softmax is nan, and nan times a zero gradient is
    still nan). The one statement of the rule: `shared_prompt_mask` evaluates it densely, a block-sparse
    kernel per block of positions."""
    allowed = (
        (query >= key)
        & (query_block == key_block)
        & (query_segment != PADDING)
        & (key_segment != PADDING)
        & ((key_segment == PREFIX) | (key_segment == query_segment))
    )
    return allowed | (query == key)


def shared_prompt_mask(blocks: Tensor, segments: Tensor) -> Tensor:
    """(r, 1, s, s) bool, True where a query (dim 2) may attend to a key (dim 3), by `may_attend`.

    blocks, segments: (r, s) long as in `RowTensors`.
    """
    positions = torch.arange(segments.shape[1], device=segments.device)
    allowed = may_attend(
        positions[:, None],
        positions[None, :],
        blocks[:, :, None],
        blocks[:, None, :],
        segments[:, :, None],
        segments[:, None, :],
    )
    return allowed[:, None]
