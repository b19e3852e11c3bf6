"""Batches of preference examples where each unique token sequence is encoded once.

A micro-batch holds pairs (chosen, rejected) and rankings (K responses of one prompt). Every
distinct token sequence in it is one row of `input_ids`; the losses index the rows' rewards:
a ranking of K responses costs K rows, not K(K-1), and a response shared by several pairs is
encoded once. Rankings contribute (a) their K(K-1)/2 implied pairs to the pairwise losses,
grouped by prompt, and (b) their row indices ordered best -> worst to the Plackett-Luce loss.

Ties in a ranking (equal ranks) are not broken: tied responses form no pair, and a ranking
with any tie gives only its strictly ordered pairs (no Plackett-Luce term, which needs a strict
order). A pair whose two sequences are identical (e.g. after truncation) carries no signal and
is refused: drop such pairs before planning (truncation can make a pair's two sequences equal).

`plan_batches` orders an epoch: optimizer steps of about `batch_pairs` pairs, each cut into
micro-batches under a padded-token budget, with length bucketing so little compute goes to
padding. `collate` turns the examples of one micro-batch into a `Batch`.
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor


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
    """A collated micro-batch. n rows (unique sequences), s padded length, p pairs, r rankings."""

    input_ids: Tensor
    """(n, s) long: each unique token sequence once, padded with the pad id."""
    attention_mask: Tensor
    """(n, s) long: 1 on real tokens, 0 on padding."""
    chosen: Tensor
    """(p,) long: row of each pair's preferred sequence."""
    rejected: Tensor
    """(p,) long: row of each pair's rejected sequence."""
    p_chosen: Tensor
    """(p,) float32: soft label of each pair (1.0 for pairs implied by a ranking)."""
    margin: Tensor
    """(p,) float32: margin of each pair, nan where none (always nan for ranking pairs)."""
    pair_group: Tensor
    """(p,) long: prompt group of each pair, ids 0..G-1 in order of first appearance."""
    rankings: list[Tensor]
    """Strict rankings only: each a (K_j,) long tensor of rows ordered best -> worst."""
    n_pairs: int
    """p."""
    pair_from_ranking: Tensor | None = field(default=None)
    """(p,) bool: True for pairs implied by a ranking (None when the batch was built by hand)."""

    @property
    def n_rows(self) -> int:
        """n: unique sequences encoded."""
        return int(self.input_ids.shape[0])

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
        `rewards[index]` is the (r, K) reward matrix that plackett_luce takes with the lengths.
        """
        device = self.chosen.device
        if not self.rankings:
            return torch.zeros((0, 0), dtype=torch.long, device=device), torch.zeros(
                0, dtype=torch.long, device=device
            )
        index = torch.nn.utils.rnn.pad_sequence(self.rankings, batch_first=True, padding_value=0)
        lengths = torch.tensor([len(r) for r in self.rankings], dtype=torch.long, device=index.device)
        return index, lengths

    def without_ranking_pairs(self) -> "Batch":
        """This batch for the pairwise loss with the pairs implied by rankings left out (those pairs
        already stand in the pair files; rankings feed the listwise loss), the prompt groups of the
        pairs left numbered 0..G-1 again. Rows and rankings stay."""
        if self.pair_from_ranking is None or not bool(self.pair_from_ranking.any()):
            return self
        keep = ~self.pair_from_ranking
        return Batch(
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            chosen=self.chosen[keep],
            rejected=self.rejected[keep],
            p_chosen=self.p_chosen[keep],
            margin=self.margin[keep],
            pair_group=torch.unique(self.pair_group[keep], return_inverse=True)[1],
            rankings=self.rankings,
            n_pairs=int(keep.sum()),
            pair_from_ranking=self.pair_from_ranking[keep],
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """A copy with every tensor on `device`."""

        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        return Batch(
            input_ids=move(self.input_ids),
            attention_mask=move(self.attention_mask),
            chosen=move(self.chosen),
            rejected=move(self.rejected),
            p_chosen=move(self.p_chosen),
            margin=move(self.margin),
            pair_group=move(self.pair_group),
            rankings=[move(r) for r in self.rankings],
            n_pairs=self.n_pairs,
            pair_from_ranking=None if self.pair_from_ranking is None else move(self.pair_from_ranking),
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


def is_strict(ranks: Sequence[int]) -> bool:
    """True when no two responses share a rank (the ranking gets a Plackett-Luce term)."""
    return len(set(ranks)) == len(ranks)


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, padding_side: Literal["left", "right"] = "right"
) -> tuple[Tensor, Tensor]:
    """input_ids and attention_mask, (n, longest) each: the sequences padded on `padding_side`."""
    width = max((len(s) for s in sequences), default=0)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, tokens in enumerate(sequences):
        span = slice(0, len(tokens)) if padding_side == "right" else slice(width - len(tokens), width)
        input_ids[i, span] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[i, span] = 1
    return input_ids, attention_mask


def collate(
    examples: Sequence[Example], pad_id: int, padding_side: Literal["left", "right"] = "right"
) -> Batch:
    """One micro-batch: unique sequences as rows, pairs and rankings as row indices.

    Rows appear in order of first appearance (a pair's chosen before its rejected; a ranking's
    responses in the order given). Pairs keep the examples' order; a ranking's implied pairs
    follow `ranking_pairs`. Prompt groups are numbered by first appearance of their prompt_id
    among the examples, so pairs and rankings of one prompt share a group.

    Raises ValueError for an empty sequence, an unknown padding side, or a pair (given, or
    implied by a ranking) whose two sequences are identical.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    rows: dict[tuple[int, ...], int] = {}
    groups: dict[str, int] = {}
    chosen: list[int] = []
    rejected: list[int] = []
    p_chosen: list[float] = []
    margin: list[float] = []
    pair_group: list[int] = []
    from_ranking: list[bool] = []
    rankings: list[Tensor] = []

    def row(tokens: Sequence[int]) -> int:
        if not tokens:
            raise ValueError(
                "an example has an empty token sequence: every response needs at least one token"
            )
        return rows.setdefault(tuple(tokens), len(rows))

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
            add_pair(
                row(example.chosen), row(example.rejected), group, example.p_chosen, example.margin, False
            )
            continue
        if len(example.ranks) != len(example.responses):
            raise ValueError(
                f"a ranking of prompt {example.prompt_id!r} has {len(example.responses)} responses "
                f"but {len(example.ranks)} ranks"
            )
        index = [row(response) for response in example.responses]
        for better, worse in ranking_pairs(example.ranks):
            add_pair(index[better], index[worse], group, 1.0, None, True)
        if is_strict(example.ranks):
            order = sorted(range(len(index)), key=lambda i: example.ranks[i])
            rankings.append(torch.tensor([index[i] for i in order], dtype=torch.long))

    input_ids, attention_mask = pad_sequences(list(rows), pad_id, padding_side)
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        chosen=torch.tensor(chosen, dtype=torch.long),
        rejected=torch.tensor(rejected, dtype=torch.long),
        p_chosen=torch.tensor(p_chosen, dtype=torch.float32),
        margin=torch.tensor(margin, dtype=torch.float32),
        pair_group=torch.tensor(pair_group, dtype=torch.long),
        rankings=rankings,
        n_pairs=len(chosen),
        pair_from_ranking=torch.tensor(from_ranking, dtype=torch.bool),
    )


def padding_waste(batches: Iterable[Batch]) -> float:
    """Share of computed tokens that are padding: 1 - real tokens / (rows * padded length), summed
    over the batches (0.0 for no batches)."""
    real = padded = 0
    for batch in batches:
        real += batch.tokens
        padded += batch.padded_tokens
    return 1.0 - real / padded if padded else 0.0


@dataclass
class _Unit:
    """Examples that travel together (one example, or a prompt's examples), with their cost."""

    examples: list[int]
    rows: set[int]
    """Interned ids of the unit's unique sequences."""
    longest: int
    pairs: int


def _cost(rows: int, longest: int) -> int:
    """Padded tokens of a micro-batch: rows * longest row."""
    return rows * longest


def _units(
    examples: Sequence[Example], max_tokens: int, keep_prompts_together: bool
) -> tuple[list[_Unit], list[set[int]], list[int]]:
    """Units in order of first appearance; also every example's interned rows and longest row.

    Raises ValueError (all problems at once) for empty sequences, pairs of identical sequences
    and examples that alone exceed max_tokens.
    """
    interned: dict[tuple[int, ...], int] = {}
    example_rows: list[set[int]] = []
    example_longest: list[int] = []
    problems: list[str] = []
    units: list[_Unit] = []
    by_prompt: dict[str, _Unit] = {}
    for i, example in enumerate(examples):
        sequences = (
            [example.chosen, example.rejected] if isinstance(example, PairExample) else example.responses
        )
        ids = [interned.setdefault(tuple(s), len(interned)) for s in sequences]
        longest = max((len(s) for s in sequences), default=0)
        if any(len(s) == 0 for s in sequences):
            problems.append(f"example {i} has an empty token sequence")
        if isinstance(example, PairExample):
            pairs = [(0, 1)]
        else:
            if len(example.ranks) != len(example.responses):
                problems.append(
                    f"example {i} has {len(example.responses)} responses but {len(example.ranks)} ranks"
                )
                continue
            pairs = ranking_pairs(example.ranks)
        if any(ids[a] == ids[b] for a, b in pairs):
            problems.append(
                f"example {i} pairs two identical sequences (drop pairs identical after truncation)"
            )
        rows = set(ids)
        if _cost(len(rows), longest) > max_tokens:
            problems.append(
                f"example {i} alone needs {_cost(len(rows), longest)} padded tokens "
                f"({len(rows)} rows x {longest}): raise max_tokens to at least that"
            )
        example_rows.append(rows)
        example_longest.append(longest)
        unit = by_prompt.get(example.prompt_id) if keep_prompts_together else None
        if unit is None:
            unit = _Unit([i], set(rows), longest, len(pairs))
            units.append(unit)
            if keep_prompts_together:
                by_prompt[example.prompt_id] = unit
        else:
            unit.examples.append(i)
            unit.rows |= rows
            unit.longest = max(unit.longest, longest)
            unit.pairs += len(pairs)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{len(problems)} example(s) cannot be batched:\n  {shown}{more}")
    return units, example_rows, example_longest


def _micro_batches(
    units: list[_Unit], example_rows: list[set[int]], example_longest: list[int], max_tokens: int
) -> list[list[int]]:
    """Pack one step's units, in the order given, into micro-batches under max_tokens.

    A unit goes whole into the current micro-batch when it fits, else starts a new one; a unit
    too large for any micro-batch is split example by example (each example fits, by _units).
    """
    batches: list[list[int]] = []
    current: list[int] = []
    rows: set[int] = set()
    longest = 0

    def fits(more_rows: set[int], more_longest: int) -> bool:
        return _cost(len(rows | more_rows), max(longest, more_longest)) <= max_tokens

    def close() -> None:
        nonlocal current, rows, longest
        if current:
            batches.append(current)
        current, rows, longest = [], set(), 0

    for unit in units:
        if not fits(unit.rows, unit.longest):
            close()
        if fits(unit.rows, unit.longest):
            current.extend(unit.examples)
            rows |= unit.rows
            longest = max(longest, unit.longest)
            continue
        for i in unit.examples:  # the unit alone exceeds the budget: split it
            if not fits(example_rows[i], example_longest[i]):
                close()
            current.append(i)
            rows |= example_rows[i]
            longest = max(longest, example_longest[i])
    close()
    return batches


def plan_batches(
    examples: Sequence[Example],
    batch_pairs: int,
    max_tokens: int,
    seed: int,
    keep_prompts_together: bool,
    *,
    bucketing: bool = True,
    window_steps: int = 64,
) -> list[list[list[int]]]:
    """One epoch's order: optimizer steps -> micro-batches -> example indices.

    1. Units: each example, or with keep_prompts_together all examples of one prompt_id (a
       ranking is always one unit). A unit is never split across steps.
    2. The units are shuffled (random.Random(seed)). With bucketing, each window of about
       window_steps * batch_pairs pairs is sorted by the unit's longest sequence.
    3. Steps: consecutive units until the step holds at least batch_pairs pairs (a step can
       exceed batch_pairs by less than its last unit's pairs; the epoch's last step may be short).
    4. Each step's units are packed, in order (shortest first with bucketing), into
       micro-batches whose cost, unique rows * longest row, stays <= max_tokens; a prompt group
       stays in one micro-batch unless it alone exceeds the budget.
    5. With bucketing the steps are shuffled again, so training does not run short to long.

    Deterministic for given examples and seed; pass seed + epoch for a new order each epoch.
    Every example appears exactly once. Raises ValueError (all problems at once) when an example
    cannot be batched: an empty sequence, two identical sequences in a pair, or one example
    needing more than max_tokens padded tokens.
    """
    if batch_pairs < 1 or max_tokens < 1 or window_steps < 1:
        raise ValueError(
            "batch_pairs, max_tokens and window_steps must be >= 1, "
            f"got {batch_pairs}, {max_tokens}, {window_steps}"
        )
    units, example_rows, example_longest = _units(examples, max_tokens, keep_prompts_together)
    rng = random.Random(seed)
    rng.shuffle(units)

    if bucketing:
        window_pairs = window_steps * batch_pairs
        ordered: list[_Unit] = []
        window: list[_Unit] = []
        pairs = 0
        for unit in units:
            window.append(unit)
            pairs += max(unit.pairs, 1)
            if pairs >= window_pairs:
                ordered.extend(sorted(window, key=lambda u: u.longest))
                window, pairs = [], 0
        ordered.extend(sorted(window, key=lambda u: u.longest))
        units = ordered

    steps: list[list[_Unit]] = []
    step: list[_Unit] = []
    pairs = 0
    for unit in units:
        step.append(unit)
        pairs += unit.pairs
        if pairs >= batch_pairs:
            steps.append(step)
            step, pairs = [], 0
    if step:
        steps.append(step)
    if bucketing:
        rng.shuffle(steps)
    if bucketing:  # a step straddling two windows: shortest first all the same
        steps = [sorted(s, key=lambda u: u.longest) for s in steps]
    return [_micro_batches(s, example_rows, example_longest, max_tokens) for s in steps]
