"""One epoch's order: optimizer steps of about `batch_pairs` pairs, cut into micro-batches that fit a
padded-token budget, bucketed by length so little compute goes to padding.

rmcore train --set train.batch_size=16 --set train.max_tokens=16384

A micro-batch's cost is what its forward computes: rows x longest row, for the rows `collate` will
build from its sequences (each unique sequence once; with a `SharePolicy`, the responses to one
prompt in blocks that hold the prompt once, packed several to a row, rmcore.model.rows).
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rmcore.model.batching import Example, PairExample, ranking_pairs
from rmcore.model.rows import SharePolicy, bucket_width, layout, row_of_each


@dataclass
class _Unit:
    """Examples that travel together (one example, or a prompt's examples)."""

    examples: list[int]
    sequences: set[int]
    """Interned ids of the unit's unique sequences."""
    width: int
    """The widest row the unit needs alone: its longest sequence, or with a share policy its longest
    block (what bucketing sorts by, so that micro-batches hold rows of like width)."""
    pairs: int


class _Rows:
    """The rows of a micro-batch being packed, kept as block lengths per prompt group: adding sequences
    re-lays out only their groups. Padded tokens = rows x row width (the widest block rounded up to
    `multiple`): one row per sequence without a share policy, else the rows `rmcore.model.rows.pack`
    fills with the groups' blocks."""

    def __init__(
        self, sequences: list[tuple[int, ...]], groups: list[str], share: SharePolicy | None, multiple: int
    ) -> None:
        self.sequences, self.groups, self.share, self.multiple = sequences, groups, share, multiple
        self.members: dict[str, set[int]] = {}
        self.blocks: dict[str, list[int]] = {}
        """Group -> the lengths of its members' blocks."""

    def _lengths(self, group: str, ids: set[int]) -> list[int]:
        if self.share is None:
            return [len(self.sequences[i]) for i in ids]
        members = sorted(ids)
        return [
            b.length for b in layout([self.sequences[i] for i in members], [group] * len(members), self.share)
        ]

    def _by_group(self, ids: set[int], members: dict[str, set[int]]) -> dict[str, set[int]]:
        """The groups of `ids`, each with its `members` and its ids among `ids`."""
        grouped: dict[str, set[int]] = {}
        for i in ids:
            grouped.setdefault(self.groups[i], set(members.get(self.groups[i], ()))).add(i)
        return grouped

    def _with(self, ids: set[int]) -> tuple[dict[str, set[int]], dict[str, list[int]]]:
        changed = self._by_group(ids, self.members)
        return changed, {group: self._lengths(group, members) for group, members in changed.items()}

    def widest(self, ids: set[int]) -> int:
        """The longest row these sequences need alone (a sequence, or a block with a share policy)."""
        grouped = self._by_group(ids, {})
        return max((n for group, own in grouped.items() for n in self._lengths(group, own)), default=0)

    def padded_with(self, ids: set[int]) -> int:
        """Padded tokens of the micro-batch with these sequences added."""
        _, blocks = self._with(ids)
        lengths = [n for own in {**self.blocks, **blocks}.values() for n in own]
        width = bucket_width(max(lengths, default=0), self.multiple)
        if self.share is None:
            return len(lengths) * width
        return (max(row_of_each(lengths, self.multiple), default=-1) + 1) * width

    def add(self, ids: set[int]) -> None:
        changed, blocks = self._with(ids)
        self.members.update(changed)
        self.blocks.update(blocks)

    def empty(self) -> "_Rows":
        return _Rows(self.sequences, self.groups, self.share, self.multiple)


def _sequences_of(example: Example) -> list[list[int]]:
    return [example.chosen, example.rejected] if isinstance(example, PairExample) else example.responses


def _units(
    examples: Sequence[Example],
    max_tokens: int,
    keep_prompts_together: bool,
    share: SharePolicy | None,
    multiple: int,
) -> tuple[list[_Unit], list[set[int]], _Rows]:
    """Units in order of first appearance; every example's interned sequences; their layout shapes.

    Raises ValueError (all problems at once) for empty sequences, pairs of identical sequences
    and examples that alone exceed max_tokens.
    """
    interned: dict[tuple[int, ...], int] = {}
    groups: list[str] = []
    example_ids: list[set[int]] = []
    problems: list[str] = []
    units: list[_Unit] = []
    by_prompt: dict[str, _Unit] = {}
    for i, example in enumerate(examples):
        sequences = _sequences_of(example)
        ids = []
        for seq in sequences:
            key = tuple(seq)
            if key not in interned:
                interned[key] = len(interned)
                groups.append(example.prompt_id)
            ids.append(interned[key])
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
        example_ids.append(set(ids))
        unit = by_prompt.get(example.prompt_id) if keep_prompts_together else None
        if unit is None:
            unit = _Unit([i], set(ids), 0, len(pairs))
            units.append(unit)
            if keep_prompts_together:
                by_prompt[example.prompt_id] = unit
        else:
            unit.examples.append(i)
            unit.sequences |= set(ids)
            unit.pairs += len(pairs)
    rows = _Rows(list(interned), groups, share, multiple)
    for unit in units:
        unit.width = rows.widest(unit.sequences)
    for i, own in enumerate(example_ids):
        if (cost := rows.padded_with(own)) > max_tokens:
            problems.append(
                f"example {i} alone needs {cost} padded tokens: raise max_tokens to at least that"
            )
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{len(problems)} example(s) cannot be batched:\n  {shown}{more}")
    return units, example_ids, rows


def _micro_batches(
    units: list[_Unit], example_ids: list[set[int]], empty: _Rows, max_tokens: int
) -> list[list[int]]:
    """Pack one step's units, in the order given, into micro-batches under max_tokens.

    A unit goes whole into the current micro-batch when it fits, else starts a new one; a unit
    too large for any micro-batch is split example by example (each example fits, by _units).
    """
    batches: list[list[int]] = []
    current: list[int] = []
    rows = empty.empty()

    def fits(more: set[int]) -> bool:
        return rows.padded_with(more) <= max_tokens

    def close() -> None:
        nonlocal current, rows
        if current:
            batches.append(current)
        current, rows = [], empty.empty()

    for unit in units:
        if not fits(unit.sequences):
            close()
        if fits(unit.sequences):
            current.extend(unit.examples)
            rows.add(unit.sequences)
            continue
        for i in unit.examples:  # the unit alone exceeds the budget: split it
            if not fits(example_ids[i]):
                close()
            current.append(i)
            rows.add(example_ids[i])
    close()
    return batches


def plan_batches(
    examples: Sequence[Example],
    batch_pairs: int,
    max_tokens: int,
    seed: int,
    keep_prompts_together: bool,
    *,
    share: SharePolicy | None = None,
    bucketing: bool = True,
    window_steps: int = 64,
    width_multiple: int = 1,
) -> list[list[list[int]]]:
    """One epoch's order: optimizer steps -> micro-batches -> example indices.

    1. Units: each example, or with keep_prompts_together all examples of one prompt_id (a
       ranking is always one unit). A unit is never split across steps.
    2. The units are shuffled (random.Random(seed)). With bucketing, each window of about
       window_steps * batch_pairs pairs is sorted by the width of the unit's widest row (its
       longest sequence, or with `share` its longest block).
    3. Steps: consecutive units until the step holds at least batch_pairs pairs (a step can
       exceed batch_pairs by less than its last unit's pairs; the epoch's last step may be short).
    4. Each step's units are packed, in order (shortest first with bucketing), into
       micro-batches whose cost, rows * longest row (one row per unique sequence, or with `share`
       the rows its blocks pack into; the longest row rounded up to `width_multiple`, as `collate`
       pads it), stays <= max_tokens; a prompt group stays in one micro-batch unless it alone
       exceeds the budget.
    5. With bucketing the steps are shuffled again, so training does not run short to long.

    Deterministic for given examples and seed; pass seed + epoch for a new order each epoch.
    Every example appears exactly once. Raises ValueError (all problems at once) when an example
    cannot be batched: an empty sequence, two identical sequences in a pair, or one example
    needing more than max_tokens padded tokens.
    """
    if min(batch_pairs, max_tokens, window_steps, width_multiple) < 1:
        raise ValueError(
            "batch_pairs, max_tokens, window_steps and width_multiple must be >= 1, "
            f"got {batch_pairs}, {max_tokens}, {window_steps}, {width_multiple}"
        )
    units, example_ids, rows = _units(examples, max_tokens, keep_prompts_together, share, width_multiple)
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
                ordered.extend(sorted(window, key=lambda u: u.width))
                window, pairs = [], 0
        ordered.extend(sorted(window, key=lambda u: u.width))
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
        steps = [sorted(s, key=lambda u: u.width) for s in steps]
    return [_micro_batches(s, example_ids, rows, max_tokens) for s in steps]
