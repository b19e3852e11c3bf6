"""Batches of preference examples where each unique token sequence is encoded once.

A micro-batch holds pairs (chosen, rejected) and rankings (K responses of one prompt). Every
distinct token sequence in it is encoded once; the losses index the sequences' rewards: a ranking
of K responses costs K sequences, not K(K-1), and a response shared by several pairs is encoded
once. Each sequence is a row of `input_ids`, or, for a decoder with a `SharePolicy`, the responses
to one prompt share a block that holds the prompt once, and blocks are packed several to a row
(rmcore.model.rows). Rankings contribute (a)
their K(K-1)/2 implied pairs to the pairwise losses, grouped by prompt, and (b) their sequence
indices ordered best -> worst to the Plackett-Luce loss.

Ties in a ranking (equal ranks) are not broken: tied responses form no pair, and a ranking
with any tie gives only its strictly ordered pairs (no Plackett-Luce term, which needs a strict
order). A pair whose two sequences are identical (e.g. after truncation) carries no signal and
is refused: drop such pairs before planning (truncation can make a pair's two sequences equal).

`rmcore.model.plan.plan_batches` orders an epoch into micro-batches; `collate` turns the examples
of one micro-batch into a `Batch`.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

from rmcore.model.rows import SharePolicy, bucket_width, layout, pack, row_tensors


@dataclass(frozen=True, kw_only=True)
class PairExample:
    """One comparison: token ids of prompt+chosen and prompt+rejected."""

    prompt_id: str
    chosen: list[int]
    rejected: list[int]
    p_chosen: float
    """Soft label: share of votes for chosen (1.0 when unanimous)."""
    margin: float | None
    """How much better chosen is (Llama 2 style margin), or None when unknown."""


@dataclass(frozen=True, kw_only=True)
class RankingExample:
    """K responses to one prompt (token ids of prompt+response) with their ranks, 0 best; equal ranks tie."""

    prompt_id: str
    responses: list[list[int]]
    ranks: list[int]


Example = PairExample | RankingExample


@dataclass
class Batch:
    """A collated micro-batch. n unique sequences in m rows of s positions, p pairs, r rankings."""

    input_ids: Tensor
    """(m, s) long: each unique token sequence once (a row each, or sharing rows), padded."""
    attention_mask: Tensor
    """(m, s) long: 1 on real tokens, 0 on padding."""
    chosen: Tensor
    """(p,) long: the sequence of each pair's preferred response."""
    rejected: Tensor
    """(p,) long: the sequence of each pair's rejected response."""
    p_chosen: Tensor
    """(p,) float32: soft label of each pair (1.0 for pairs implied by a ranking)."""
    margin: Tensor
    """(p,) float32: margin of each pair, nan where none (always nan for ranking pairs)."""
    pair_group: Tensor
    """(p,) long: prompt group of each pair, ids 0..G-1 in order of first appearance."""
    n_pairs: int
    """p."""
    pair_from_ranking: Tensor | None = field(default=None)
    """(p,) bool: True for pairs implied by a ranking (None when the batch was built by hand)."""
    n_ranking_pairs: int = 0
    """Pairs implied by rankings, counted on the host: without any, leaving them out reads no tensor."""
    ranking_index: Tensor = field(default_factory=lambda: torch.zeros((0, 0), dtype=torch.long))
    """(r, K) long: the strict rankings only, each row its sequences best -> worst, padded with sequence
    0 (`ranking_matrix`); built on the host by `collate` and moved with the batch."""
    ranking_lengths: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    """(r,) long: K_j of each strict ranking."""
    position_ids: Tensor | None = None
    """(m, s) long: positions in rows of blocks that share prompts; None: one sequence per row, in order."""
    blocks: Tensor | None = None
    """(m, s) long: the block of each position in its row, or padding (-1), with position_ids."""
    segments: Tensor | None = None
    """(m, s) long: prefix (0), continuation (1, 2, ...) or padding (-1) of each position, with
    position_ids; see rmcore.model.rows."""
    read_index: Tensor | None = None
    """(n,) long: row * s + position of each sequence's last token, with position_ids."""
    sequence_tokens: int = 0
    """Tokens of the n unique sequences each encoded alone: what rows that share nothing hold."""

    @property
    def n_rows(self) -> int:
        """m: rows encoded."""
        return int(self.input_ids.shape[0])

    @property
    def n_sequences(self) -> int:
        """n: unique sequences encoded (m without shared rows)."""
        return self.n_rows if self.read_index is None else int(self.read_index.shape[0])

    def row_inputs(self) -> dict[str, Tensor]:
        """The keyword arguments of `RewardModule.forward` besides ids and mask: the shared-row layout."""
        if (
            self.position_ids is None
            or self.blocks is None
            or self.segments is None
            or self.read_index is None
        ):
            return {}
        return {
            "position_ids": self.position_ids,
            "blocks": self.blocks,
            "segments": self.segments,
            "read_index": self.read_index,
        }

    @property
    def rankings(self) -> list[Tensor]:
        """The strict rankings, each a (K_j,) long tensor of sequences ordered best -> worst (reads the
        lengths: for inspection on the host, not inside a step)."""
        return [self.ranking_index[j, :length] for j, length in enumerate(self.ranking_lengths.tolist())]

    @property
    def shape(self) -> tuple[int, int]:
        """(m, s): rows and width, the shape every kernel of the forward sees."""
        return int(self.input_ids.shape[0]), int(self.input_ids.shape[1])

    @property
    def n_groups(self) -> int:
        """G: prompt groups that have pairs (reads pair_group; cheap while the batch is on the CPU)."""
        return int(self.pair_group.max().item()) + 1 if self.n_pairs else 0

    @property
    def tokens(self) -> int:
        """Real (non-padding) tokens."""
        return int(self.attention_mask.sum().item())

    @property
    def padded_tokens(self) -> int:
        """n * s: tokens the forward pass computes, padding included."""
        return int(self.input_ids.numel())

    def ranking_matrix(self) -> tuple[Tensor, Tensor]:
        """The strict rankings as a padded index matrix for `losses.plackett_luce`.

        Returns index (r, K) long (rows best -> worst, padded with row 0) and lengths (r,) long;
        `rewards[index]` is the (r, K) reward matrix that plackett_luce takes with the lengths. Built
        on the host by `collate` and moved with the batch, so that nothing is copied inside a step.
        """
        return self.ranking_index, self.ranking_lengths

    def without_ranking_pairs(self) -> "Batch":
        """This batch for the pairwise loss with the pairs implied by rankings left out (those pairs
        already stand in the pair files; rankings feed the listwise loss), the prompt groups of the
        pairs left numbered 0..G-1 again. Rows and rankings stay. Reads the batch's tensors: call it
        while the batch is on the host."""
        if self.n_ranking_pairs == 0 or self.pair_from_ranking is None:
            return self
        keep = ~self.pair_from_ranking
        return replace(
            self,
            chosen=self.chosen[keep],
            rejected=self.rejected[keep],
            p_chosen=self.p_chosen[keep],
            margin=self.margin[keep],
            pair_group=torch.unique(self.pair_group[keep], return_inverse=True)[1],
            n_pairs=int(keep.sum()),
            pair_from_ranking=self.pair_from_ranking[keep],
            n_ranking_pairs=0,
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """A copy with every tensor on `device`; with `non_blocking`, copies from pinned memory return at
        once (the device's queue orders them before any kernel that reads them)."""
        return self._mapped(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "Batch":
        """A copy in page-locked host memory, which a GPU copies from without making the host wait."""
        return self._mapped(Tensor.pin_memory)

    def recorded_on(self, stream: torch.cuda.Stream) -> "Batch":
        """This batch, the CUDA allocator told that `stream` uses its tensors, so that their memory (made
        on another stream) is not handed out again before the work queued on `stream` is done."""

        def record(t: Tensor) -> Tensor:
            t.record_stream(stream)
            return t

        return self._mapped(record)

    def _mapped(self, move: Callable[[Tensor], Tensor]) -> "Batch":
        def move_optional(t: Tensor | None) -> Tensor | None:
            return None if t is None else move(t)

        return Batch(
            input_ids=move(self.input_ids),
            attention_mask=move(self.attention_mask),
            chosen=move(self.chosen),
            rejected=move(self.rejected),
            p_chosen=move(self.p_chosen),
            margin=move(self.margin),
            pair_group=move(self.pair_group),
            n_pairs=self.n_pairs,
            pair_from_ranking=move_optional(self.pair_from_ranking),
            n_ranking_pairs=self.n_ranking_pairs,
            ranking_index=move(self.ranking_index),
            ranking_lengths=move(self.ranking_lengths),
            position_ids=move_optional(self.position_ids),
            blocks=move_optional(self.blocks),
            segments=move_optional(self.segments),
            read_index=move_optional(self.read_index),
            sequence_tokens=self.sequence_tokens,
        )


def ranking_pairs(ranks: Sequence[int]) -> list[tuple[int, int]]:
    """The strictly ordered pairs (better, worse) of a ranking, as positions into its responses.

    Ordered by the better response's rank, then the worse one's; tied responses form no pair.
    E.g. ranks [1, 0, 2] -> [(1, 0), (1, 2), (0, 2)].
    """
    order = sorted(range(len(ranks)), key=lambda i: (ranks[i], i))
    return [(a, b) for x, a in enumerate(order) for b in order[x + 1 :] if ranks[a] < ranks[b]]


def pair_count(example: Example) -> int:
    """Pairs the example gives the pairwise losses: 1 for a pair, the strictly ordered pairs of a
    ranking (K(K-1)/2 without ties)."""
    return 1 if isinstance(example, PairExample) else len(ranking_pairs(example.ranks))


def loss_weight(examples: Sequence[Example], group_by_prompt: bool) -> int:
    """What a micro-batch of `examples` weighs in its optimizer step, from the examples alone (no
    tensor is read): its pairs (`Batch.n_pairs`), or with group_by_prompt its prompt groups
    (`Batch.n_groups`: groups are numbered by first appearance, and G is one more than the highest
    number a pair has)."""
    if not group_by_prompt:
        return sum(pair_count(example) for example in examples)
    groups: dict[str, int] = {}
    highest = -1
    for example in examples:
        group = groups.setdefault(example.prompt_id, len(groups))
        if pair_count(example):
            highest = max(highest, group)
    return highest + 1


def is_strict(ranks: Sequence[int]) -> bool:
    """True when no two responses share a rank (the ranking gets a Plackett-Luce term)."""
    return len(set(ranks)) == len(ranks)


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    padding_side: Literal["left", "right"] = "right",
    multiple: int = 1,
) -> tuple[Tensor, Tensor]:
    """input_ids and attention_mask, (n, s) each: the sequences padded on `padding_side` to the longest,
    rounded up to `multiple` (`rmcore.model.rows.bucket_width`)."""
    width = bucket_width(max((len(s) for s in sequences), default=0), multiple)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, tokens in enumerate(sequences):
        span = slice(0, len(tokens)) if padding_side == "right" else slice(width - len(tokens), width)
        input_ids[i, span] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[i, span] = 1
    return input_ids, attention_mask


def collate(
    examples: Sequence[Example],
    pad_id: int,
    padding_side: Literal["left", "right"] = "right",
    share: SharePolicy | None = None,
    width_multiple: int = 1,
) -> Batch:
    """One micro-batch: unique sequences, and pairs and rankings as sequence indices.

    Sequences are numbered in order of first appearance (a pair's chosen before its rejected; a
    ranking's responses in the order given). Pairs keep the examples' order; a ranking's implied
    pairs follow `ranking_pairs`. Prompt groups are numbered by first appearance of their prompt_id
    among the examples, so pairs and rankings of one prompt share a group. Without `share`, sequence
    i is row i, padded on `padding_side`; with it, the responses to one prompt share blocks where the
    policy says that costs less (`rmcore.model.rows.layout`), packed into right-padded rows
    (`rmcore.model.rows.pack`), with the row layout. Rows are as wide as the longest, rounded up to
    `width_multiple` (a packed row may fill the room that adds).

    Raises ValueError for an empty sequence, an unknown padding side, or a pair (given, or
    implied by a ranking) whose two sequences are identical.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    sequences: dict[tuple[int, ...], int] = {}
    sequence_prompts: list[str] = []
    groups: dict[str, int] = {}
    chosen: list[int] = []
    rejected: list[int] = []
    p_chosen: list[float] = []
    margin: list[float] = []
    pair_group: list[int] = []
    from_ranking: list[bool] = []
    rankings: list[Tensor] = []

    def sequence(tokens: Sequence[int], prompt_id: str) -> int:
        if not tokens:
            raise ValueError(
                "an example has an empty token sequence: every response needs at least one token"
            )
        key = tuple(tokens)
        if key not in sequences:
            sequences[key] = len(sequences)
            sequence_prompts.append(prompt_id)
        return sequences[key]

    def add_pair(w: int, lose: int, group: int, p: float, m: float | None, ranked: bool) -> None:
        if w == lose:
            raise ValueError(
                f"a pair of prompt group {group} has identical chosen and rejected sequences "
                "(often after truncation): drop such pairs before batching"
            )
        chosen.append(w)
        rejected.append(lose)
        p_chosen.append(p)
        margin.append(float("nan") if m is None else m)
        pair_group.append(group)
        from_ranking.append(ranked)

    for example in examples:
        group = groups.setdefault(example.prompt_id, len(groups))
        if isinstance(example, PairExample):
            chosen_id = sequence(example.chosen, example.prompt_id)
            rejected_id = sequence(example.rejected, example.prompt_id)
            add_pair(chosen_id, rejected_id, group, example.p_chosen, example.margin, False)
            continue
        if len(example.ranks) != len(example.responses):
            raise ValueError(
                f"a ranking of prompt {example.prompt_id!r} has {len(example.responses)} responses "
                f"but {len(example.ranks)} ranks"
            )
        index = [sequence(response, example.prompt_id) for response in example.responses]
        for better, worse in ranking_pairs(example.ranks):
            add_pair(index[better], index[worse], group, 1.0, None, True)
        if is_strict(example.ranks):
            order = sorted(range(len(index)), key=lambda i: example.ranks[i])
            rankings.append(torch.tensor([index[i] for i in order], dtype=torch.long))

    if share is None:
        input_ids, attention_mask = pad_sequences(list(sequences), pad_id, padding_side, width_multiple)
        layout_inputs: dict[str, Tensor] = {}
    else:
        blocks = layout(list(sequences), sequence_prompts, share)
        rows = row_tensors(pack(blocks, width_multiple), pad_id, width_multiple)
        input_ids, attention_mask, layout_inputs = rows.input_ids, rows.attention_mask, rows.layout_inputs()
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        **layout_inputs,
        sequence_tokens=sum(len(tokens) for tokens in sequences),
        chosen=torch.tensor(chosen, dtype=torch.long),
        rejected=torch.tensor(rejected, dtype=torch.long),
        p_chosen=torch.tensor(p_chosen, dtype=torch.float32),
        margin=torch.tensor(margin, dtype=torch.float32),
        pair_group=torch.tensor(pair_group, dtype=torch.long),
        n_pairs=len(chosen),
        pair_from_ranking=torch.tensor(from_ranking, dtype=torch.bool),
        n_ranking_pairs=sum(from_ranking),
        ranking_index=torch.nn.utils.rnn.pad_sequence(rankings, batch_first=True, padding_value=0)
        if rankings
        else torch.zeros((0, 0), dtype=torch.long),
        ranking_lengths=torch.tensor([len(r) for r in rankings], dtype=torch.long),
    )


def padding_waste(batches: Iterable[Batch]) -> float:
    """Share of computed tokens that are padding: 1 - real tokens / (rows * padded length), summed
    over the batches (0.0 for no batches)."""
    real = padded = 0
    for batch in batches:
        real += batch.tokens
        padded += batch.padded_tokens
    return 1.0 - real / padded if padded else 0.0
