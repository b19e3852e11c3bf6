"""Unique-sequence batching, its equivalence with a naive per-pair forward, and the epoch planner."""

import random
from collections import Counter

import pytest
import torch
from torch import Tensor
from transformers import AutoModelForSequenceClassification, BertConfig, PreTrainedModel

from rmcore.model.batching import (
    Batch,
    Example,
    PairExample,
    RankingExample,
    collate,
    padding_waste,
    pair_count,
    ranking_pairs,
)
from rmcore.model.losses import pair_loss, plackett_luce
from rmcore.model.plan import plan_batches
from rmcore.model.rows import SharePolicy

PAD = 0
X, Y, Z, W = [5, 6, 7], [5, 6, 8, 9], [5, 10], [5, 11, 12, 13, 14]


def pair(
    prompt: str, chosen: list[int], rejected: list[int], p: float = 1.0, margin: float | None = None
) -> PairExample:
    return PairExample(prompt_id=prompt, chosen=chosen, rejected=rejected, p_chosen=p, margin=margin)


def random_examples(n_prompts: int, seed: int, max_len: int = 60) -> list[Example]:
    """Prompts with 1-3 pairs or one ranking of 3-5 responses: a shared prompt of 1..max_len - 20
    tokens, then a response of 1..20 tokens (so lengths vary mostly between prompts, as in real data)."""
    rng = random.Random(seed)

    def tokens(n: int) -> list[int]:
        return [rng.randrange(1, 100) for _ in range(n)]

    def responses(n: int) -> list[list[int]]:
        """n distinct prompt + response sequences (a pair of identical sequences is refused)."""
        prompt, unique = tokens(rng.randrange(1, max_len - 19)), set[tuple[int, ...]]()
        while len(unique) < n:
            unique.add(tuple(prompt + tokens(rng.randrange(1, 21))))
        shuffled = sorted(unique)
        rng.shuffle(shuffled)
        return [list(s) for s in shuffled]

    examples: list[Example] = []
    for i in range(n_prompts):
        if rng.random() < 0.3:
            k = rng.randrange(3, 6)
            ranks = list(range(k))
            rng.shuffle(ranks)
            examples.append(RankingExample(prompt_id=f"q{i}", responses=responses(k), ranks=ranks))
        else:
            n = rng.randrange(1, 4)
            sequences = responses(2 * n)
            examples.extend(
                pair(f"q{i}", sequences[2 * j], sequences[2 * j + 1], p=rng.choice([1.0, 0.75]))
                for j in range(n)
            )
    rng.shuffle(examples)
    return examples


# ---------------------------------------------------------------- collate


def test_pairs_sharing_a_sequence_collapse_to_unique_rows() -> None:
    # given two pairs of one prompt sharing X, and a pair of another prompt repeating (Y, Z)
    examples = [pair("a", X, Y, p=0.75, margin=2.0), pair("a", X, Z), pair("b", Y, Z)]
    # when
    batch = collate(examples, pad_id=PAD)
    # then X, Y, Z are three rows (not six), and the pairs index them
    assert batch.n_rows == 3
    assert batch.input_ids.shape == (3, 4)
    assert batch.chosen.tolist() == [0, 0, 1]
    assert batch.rejected.tolist() == [1, 2, 2]
    assert batch.pair_group.tolist() == [0, 0, 1]
    assert batch.n_pairs == 3 and batch.n_groups == 2
    assert batch.p_chosen.tolist() == [0.75, 1.0, 1.0]
    assert batch.margin[0].item() == 2.0 and batch.margin[1:].isnan().all()
    assert batch.pair_from_ranking is not None and not batch.pair_from_ranking.any()
    assert batch.rankings == []


def test_a_ranking_of_four_costs_four_rows_and_gives_six_pairs() -> None:
    # given one ranking of K = 4 with ranks out of order: W best, then Y, X, Z
    ranking = RankingExample(prompt_id="a", responses=[X, Y, Z, W], ranks=[2, 1, 3, 0])
    # when
    batch = collate([ranking], pad_id=PAD)
    # then 4 rows (X=0, Y=1, Z=2, W=3), K(K-1)/2 = 6 implied pairs, one strict ranking best -> worst
    assert batch.n_rows == 4
    assert batch.n_pairs == 6
    assert list(zip(batch.chosen.tolist(), batch.rejected.tolist(), strict=True)) == [
        (3, 1), (3, 0), (3, 2), (1, 0), (1, 2), (0, 2)
    ]  # fmt: skip
    assert [r.tolist() for r in batch.rankings] == [[3, 1, 0, 2]]
    assert batch.pair_group.tolist() == [0] * 6
    assert batch.p_chosen.tolist() == [1.0] * 6
    assert batch.pair_from_ranking is not None and batch.pair_from_ranking.all()
    index, lengths = batch.ranking_matrix()
    assert index.tolist() == [[3, 1, 0, 2]] and lengths.tolist() == [4]


def test_a_ranking_with_ties_gives_only_its_strict_pairs() -> None:
    # given ranks [0, 1, 1]: Y and Z tie
    batch = collate([RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[0, 1, 1])], pad_id=PAD)
    # then X beats Y and X beats Z; no Y-Z pair and no Plackett-Luce ranking
    assert list(zip(batch.chosen.tolist(), batch.rejected.tolist(), strict=True)) == [(0, 1), (0, 2)]
    assert batch.rankings == []
    assert ranking_pairs([1, 0, 2]) == [(1, 0), (1, 2), (0, 2)]
    # and the example counts 2 pairs (a strict ranking of 3 counts 3, a pair 1)
    assert pair_count(RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[0, 1, 1])) == 2
    assert pair_count(RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[2, 1, 0])) == 3
    assert pair_count(pair("a", X, Y)) == 1


def test_sequences_repeated_across_pairs_and_rankings_collapse() -> None:
    # given a ranking of X, Y, Z and pairs that reuse Y, Z and W of another prompt
    examples: list[Example] = [
        RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[0, 1, 2]),
        pair("b", Y, W),
        pair("b", Z, W),
        pair("a", X, Z),
    ]
    # when
    batch = collate(examples, pad_id=PAD)
    # then 4 unique sequences and 3 + 3 pairs; prompt "a" pairs share group 0
    assert batch.n_rows == 4
    assert batch.n_pairs == 6
    assert batch.pair_group.tolist() == [0, 0, 0, 1, 1, 0]
    assert [r.tolist() for r in batch.rankings] == [[0, 1, 2]]


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_side_and_attention_mask(side: str) -> None:
    # given sequences of lengths 3 and 5
    batch = collate([pair("a", X, W)], pad_id=PAD, padding_side=side)  # type: ignore[arg-type]
    # then the short row is padded on the requested side, and the mask marks real tokens
    if side == "right":
        assert batch.input_ids[0].tolist() == [5, 6, 7, PAD, PAD]
        assert batch.attention_mask[0].tolist() == [1, 1, 1, 0, 0]
    else:
        assert batch.input_ids[0].tolist() == [PAD, PAD, 5, 6, 7]
        assert batch.attention_mask[0].tolist() == [0, 0, 1, 1, 1]
    assert batch.input_ids[1].tolist() == W
    assert batch.tokens == 8 and batch.padded_tokens == 10
    assert padding_waste([batch]) == pytest.approx(2 / 10)


def test_identical_pairs_and_empty_sequences_are_refused() -> None:
    with pytest.raises(ValueError, match="identical"):
        collate([pair("a", X, list(X))], pad_id=PAD)
    with pytest.raises(ValueError, match="identical"):
        collate([RankingExample(prompt_id="a", responses=[X, Y, list(X)], ranks=[0, 1, 2])], pad_id=PAD)
    with pytest.raises(ValueError, match="empty"):
        collate([pair("a", X, [])], pad_id=PAD)


def test_batch_to_keeps_everything() -> None:
    batch = collate(
        [RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[0, 1, 2]), pair("b", X, W)], PAD
    )
    moved = batch.to("cpu")
    assert torch.equal(moved.input_ids, batch.input_ids) and moved.n_pairs == batch.n_pairs == 4
    assert [r.tolist() for r in moved.rankings] == [[0, 1, 2]]


# ---------------------------------------------------------------- equivalence with a naive forward


def tiny_bert() -> PreTrainedModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        pad_token_id=PAD,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_config(config)
    return model.eval()


def rewards_of(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    return model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)


def one(model: PreTrainedModel, tokens: list[int]) -> Tensor:
    """The reward of one sequence, encoded alone (no padding)."""
    ids = torch.tensor([tokens])
    return rewards_of(model, ids, torch.ones_like(ids))[0]


def grads(model: PreTrainedModel) -> dict[str, Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_unique_sequence_batching_matches_a_naive_per_pair_forward() -> None:
    # given pairs that share sequences, soft labels, and a ranking of 4 (ranks out of order)
    examples: list[Example] = [
        pair("a", X, Y, p=0.75),
        pair("a", X, Z),
        pair("b", Y, Z, p=0.6),
        RankingExample(prompt_id="c", responses=[X, W, [7, 7, 7, 7, 7, 7], Z], ranks=[1, 0, 3, 2]),
    ]
    # the naive reading by hand: (chosen, rejected, p, group) for every pair, each side encoded alone
    naive_pairs = [
        (X, Y, 0.75, 0), (X, Z, 1.0, 0), (Y, Z, 0.6, 1),
        (W, X, 1.0, 2), (W, Z, 1.0, 2), (W, [7] * 6, 1.0, 2),
        (X, Z, 1.0, 2), (X, [7] * 6, 1.0, 2), (Z, [7] * 6, 1.0, 2),
    ]  # fmt: skip
    naive_ranking = [W, X, Z, [7] * 6]

    def loss_of(r_w: Tensor, r_l: Tensor, p: Tensor, groups: Tensor, ranking: Tensor) -> Tensor:
        pairs = pair_loss(
            r_w, r_l, kind="soft", p_chosen=p, centering=0.01, pair_group=groups, group_normalize=True
        )
        return pairs.loss + plackett_luce(ranking).loss

    # when the batched forward encodes each unique sequence once (5 rows for 9 pairs + 1 ranking)
    model = tiny_bert()
    batch = collate(examples, pad_id=PAD, padding_side="right")
    assert batch.n_rows == 5
    r = rewards_of(model, batch.input_ids, batch.attention_mask)
    index, lengths = batch.ranking_matrix()
    batched = pair_loss(
        r[batch.chosen], r[batch.rejected], kind="soft", p_chosen=batch.p_chosen, centering=0.01,
        pair_group=batch.pair_group, group_normalize=True,
    ).loss + plackett_luce(r[index], lengths).loss  # fmt: skip
    batched.backward()
    batched_grads = grads(model)

    # and the naive forward encodes chosen and rejected separately for every pair (18 + 4 forwards)
    model.zero_grad()
    r_w = torch.stack([one(model, c) for c, _, _, _ in naive_pairs])
    r_l = torch.stack([one(model, rej) for _, rej, _, _ in naive_pairs])
    p = torch.tensor([x[2] for x in naive_pairs])
    groups = torch.tensor([x[3] for x in naive_pairs])
    ranking = torch.stack([one(model, s) for s in naive_ranking])[None]
    naive = loss_of(r_w, r_l, p, groups, ranking)
    naive.backward()
    naive_grads = grads(model)

    # then the losses and every parameter's gradient agree within 1e-6
    assert batched.item() == pytest.approx(naive.item(), abs=1e-6)
    assert batched_grads.keys() == naive_grads.keys() and len(batched_grads) > 10
    for name, g in batched_grads.items():
        torch.testing.assert_close(g, naive_grads[name], atol=1e-6, rtol=0, msg=name)


# ---------------------------------------------------------------- plan_batches


def micro_batch_cost(examples: list[Example], indices: list[int], share: SharePolicy | None = None) -> int:
    return collate([examples[i] for i in indices], PAD, "right", share).padded_tokens


SHARING = {
    "one row per sequence": None,
    "shared prompts, dense attention": SharePolicy.dense(16),
    "shared prompts, free attention": SharePolicy(attention_weight=0.0),
}


@pytest.mark.parametrize("together", [True, False])
@pytest.mark.parametrize("share", SHARING.values(), ids=SHARING.keys())
def test_plan_covers_every_example_once_and_respects_max_tokens(
    share: SharePolicy | None, together: bool
) -> None:
    # given 200 prompts of pairs and rankings with random lengths
    examples = random_examples(200, seed=0)
    # when
    plan = plan_batches(
        examples, batch_pairs=16, max_tokens=600, seed=1, keep_prompts_together=together, share=share
    )
    # then every example appears exactly once
    flat = [i for step in plan for micro in step for i in micro]
    assert sorted(flat) == list(range(len(examples)))
    # and every micro-batch, collated, costs at most max_tokens (rows x longest row: unique sequences,
    # or the packed rows of shared-prompt blocks)
    assert all(micro_batch_cost(examples, micro, share) <= 600 for step in plan for micro in step)
    # and steps hold at least 16 pairs (a ranking of K counts K(K-1)/2), except the last one
    pairs = [sum(collate([examples[i] for i in micro], PAD).n_pairs for micro in step) for step in plan]
    assert sum(p < 16 for p in pairs) <= 1


def test_packing_shared_prompt_blocks_lets_a_micro_batch_hold_more() -> None:
    # given one prompt of 6 tokens with two short responses (a block of 6 + 1 + 1 = 8 tokens), and two
    # sequences of 4 tokens of another prompt that begin differently
    examples: list[Example] = [
        pair("a", [1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 8]),
        pair("b", [9, 9, 9, 9], [8, 8, 8, 8]),
    ]
    share = SharePolicy(attention_weight=0.0)
    # when they are planned under a budget of 2 rows of 8 (without packing they need 3 rows of 8)
    plan = plan_batches(
        examples, batch_pairs=2, max_tokens=16, seed=0, keep_prompts_together=True, share=share
    )
    # then both pairs go into one micro-batch, whose second row holds both of b's sequences
    assert [sorted(micro) for micro in plan[0]] == [[0, 1]]
    batch = collate(examples, PAD, "right", share)
    assert batch.n_rows == 2 and batch.padded_tokens == 16 and batch.tokens == 16


def test_plan_is_deterministic_per_seed() -> None:
    # given
    examples = random_examples(100, seed=1)

    def plan(seed: int) -> list[list[list[int]]]:
        return plan_batches(examples, batch_pairs=8, max_tokens=500, seed=seed, keep_prompts_together=True)

    # then the same seed gives the same plan, another seed another plan
    assert plan(7) == plan(7)
    assert plan(7) != plan(8)


@pytest.mark.parametrize("bucketing", [True, False])
def test_plan_keeps_prompt_groups_together(bucketing: bool) -> None:
    # given prompts with several pairs each
    examples = random_examples(150, seed=2)
    # when
    plan = plan_batches(
        examples, batch_pairs=8, max_tokens=800, seed=3, keep_prompts_together=True, bucketing=bucketing
    )
    # then all pairs of a prompt are in one step, and here (each group fits) in one micro-batch
    step_of: dict[str, set[int]] = {}
    micro_of: dict[str, set[tuple[int, int]]] = {}
    for s, step in enumerate(plan):
        for m, micro in enumerate(step):
            for i in micro:
                step_of.setdefault(examples[i].prompt_id, set()).add(s)
                micro_of.setdefault(examples[i].prompt_id, set()).add((s, m))
    assert all(len(steps) == 1 for steps in step_of.values())
    assert all(len(micros) == 1 for micros in micro_of.values())


def test_a_prompt_group_larger_than_the_budget_is_split_across_micro_batches_of_one_step() -> None:
    # given one prompt with 6 pairs of distinct 10-token sequences (12 rows x 10 = 120 tokens)
    examples: list[Example] = [pair("a", [1 + i] * 10, [50 + i] * 10) for i in range(6)]
    # when the budget holds 2 pairs (4 rows x 10 = 40 tokens)
    plan = plan_batches(examples, batch_pairs=4, max_tokens=40, seed=0, keep_prompts_together=True)
    # then one step (the group is never split across steps) of 3 micro-batches of 2 pairs
    assert len(plan) == 1
    assert sorted(len(micro) for micro in plan[0]) == [2, 2, 2]


def test_without_keeping_prompts_together_steps_have_exactly_batch_pairs() -> None:
    # given 50 single pairs spread over 10 prompts
    examples: list[Example] = [pair(f"q{i % 10}", [1 + i, 2], [100 - i - 1, 3]) for i in range(50)]
    # when
    plan = plan_batches(examples, batch_pairs=8, max_tokens=64, seed=0, keep_prompts_together=False)
    # then 50 = 6 steps of 8 + one of 2
    assert sorted(sum(len(m) for m in step) for step in plan) == [2] + [8] * 6


def test_bucketing_wastes_less_padding_than_a_plain_shuffle() -> None:
    # given 300 prompts with lengths 2..120
    examples = random_examples(300, seed=4, max_len=120)

    def waste(bucketing: bool, together: bool) -> float:
        plan = plan_batches(
            examples,
            batch_pairs=16,
            max_tokens=2048,
            seed=5,
            keep_prompts_together=together,
            bucketing=bucketing,
        )
        return padding_waste(collate([examples[i] for i in micro], PAD) for step in plan for micro in step)

    for together in (True, False):
        # when
        bucketed, shuffled = waste(True, together), waste(False, together)
        # then bucketing wastes clearly less padding
        assert bucketed < shuffled / 2, (together, bucketed, shuffled)


def test_plan_reports_every_unbatchable_example_at_once() -> None:
    # given an identical pair, a pair too long for the budget and an empty sequence
    examples: list[Example] = [
        pair("a", X, list(X)),
        pair("b", [1] * 30, [2] * 30),
        pair("c", X, []),
        pair("d", X, Y),
    ]
    # when / then one error lists all three with the fix
    with pytest.raises(ValueError, match="3 example") as error:
        plan_batches(examples, batch_pairs=2, max_tokens=50, seed=0, keep_prompts_together=True)
    message = str(error.value)
    assert "example 0" in message and "identical" in message
    assert "example 1 alone needs 60 padded tokens" in message and "raise max_tokens" in message
    assert "example 2 has an empty" in message


def test_plan_counts_rows_once_across_a_micro_batch() -> None:
    # given 4 pairs of one prompt that all share the chosen sequence X (5 unique rows of <= 4 tokens)
    examples: list[Example] = [pair("a", X, [20 + i, 21, 22, 23]) for i in range(4)]
    # when the budget is 5 rows x 4 tokens = 20 (8 rows without dedup would need 32)
    plan = plan_batches(examples, batch_pairs=4, max_tokens=20, seed=0, keep_prompts_together=True)
    # then all four pairs fit one micro-batch
    assert plan == [[sorted(plan[0][0])]] and sorted(plan[0][0]) == [0, 1, 2, 3]
    batch: Batch = collate([examples[i] for i in plan[0][0]], PAD)
    assert batch.n_rows == 5 and batch.padded_tokens == 20
    assert Counter(batch.chosen.tolist()) == Counter({0: 4})


def test_without_ranking_pairs_keeps_given_pairs_with_groups_renumbered() -> None:
    # given a ranking of prompt a (3 implied pairs, group 0), then a pair of prompt b (group 1)
    batch = collate(
        [RankingExample(prompt_id="a", responses=[X, Y, Z], ranks=[0, 1, 2]), pair("b", X, W)], PAD
    )
    assert batch.pair_group.tolist() == [0, 0, 0, 1]

    # when the pairs a ranking implies are left out
    pairwise = batch.without_ranking_pairs()

    # then b's pair remains as group 0 (the group ids index per-group sums of that length), rows and
    # the ranking stay for the listwise loss
    assert pairwise.n_pairs == 1 and pairwise.pair_group.tolist() == [0]
    assert (pairwise.chosen.tolist(), pairwise.rejected.tolist()) == ([0], [3])
    assert torch.equal(pairwise.input_ids, batch.input_ids) and len(pairwise.rankings) == 1
