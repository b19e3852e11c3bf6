"""Shared-prompt rows: the layout, the mask, and exactness. Rewards and gradients of sequences encoded in
rows that hold their prompt once equal those of each sequence encoded alone, on tiny random Llama-,
Qwen2-, Mistral- and Gemma-style decoders, in float32 and under bf16 autocast.

python -m pytest tests/model/test_rows.py
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    GemmaConfig,
    LlamaConfig,
    MistralConfig,
    PretrainedConfig,
    Qwen2Config,
)

from rmcore.config import LossConfig, ModelConfig
from rmcore.model.batching import PairExample, RankingExample, collate, pad_sequences
from rmcore.model.inference import Scorer
from rmcore.model.reward import ModelLoadError, RewardModel, RewardModule, build_reward_model
from rmcore.model.rows import (
    PADDING,
    PREFIX,
    Block,
    SharePolicy,
    layout,
    pack,
    row_of_each,
    row_tensors,
    shared_prompt_mask,
)
from rmcore.model.tokenize import encode_many
from rmcore.training.loop import loss_step

FREE = SharePolicy(attention_weight=0.0)
"""Sharing whenever it saves a token (attention costs nothing, as with a block-sparse kernel)."""

P = [11, 12, 13, 14, 15]
A, B, C = [21, 22, 23], [31, 32, 33, 34], [41]


# ---------------------------------------------------------------- the layout


def test_the_responses_to_one_prompt_share_a_row_and_are_read_at_their_last_tokens() -> None:
    # given three responses to prompt P, and one sequence of another prompt
    sequences = [P + A, P + B, P + C, [9, 9, 9]]
    groups = ["p", "p", "p", "q"]

    # when they are laid out
    blocks = layout(sequences, groups, FREE)

    # then P is held once, followed by each response (sorted by content), and q's sequence is alone
    assert blocks == [Block(P, [(0, A), (1, B), (2, C)]), Block([], [(3, [9, 9, 9])])]
    tensors = row_tensors([[block] for block in blocks], pad_id=0)
    width = len(P) + len(A) + len(B) + len(C)  # 13
    assert tensors.input_ids.shape == (2, width)
    assert tensors.input_ids[0].tolist() == P + A + B + C
    assert tensors.position_ids[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 5, 6, 7, 8, 5]
    assert tensors.segments[0].tolist() == [PREFIX] * 5 + [1] * 3 + [2] * 4 + [3]
    assert tensors.segments[1].tolist() == [1, 1, 1] + [PADDING] * 10
    assert tensors.blocks[1].tolist() == [0, 0, 0] + [PADDING] * 10
    # and each reward is read at its sequence's last token: row * width + position
    assert tensors.read_index.tolist() == [7, 11, 12, width + 2]
    assert tensors.attention_mask.sum().item() == 13 + 3


def test_a_prefix_never_takes_a_sequences_last_token() -> None:
    # given a response that is a prefix of another (its last token is where its reward is read)
    blocks = layout([P, P + A], ["p", "p"], FREE)
    # then the shared prefix stops one token short of it
    assert blocks == [Block(P[:-1], [(0, P[-1:]), (1, P[-1:] + A)])]


def test_responses_whose_prompt_truncation_cut_differently_fall_back_to_rows_of_their_own() -> None:
    # given two responses with the whole prompt and one whose prompt lost its first two tokens
    sequences = [P + A, P + B, P[2:] + C]
    # when they are laid out / then the two alike share a row and the third is alone
    blocks = layout(sequences, ["p"] * 3, FREE)
    assert blocks == [Block(P, [(0, A), (1, B)]), Block([], [(2, P[2:] + C)])]


def test_sharing_is_left_out_where_dense_attention_would_cost_more() -> None:
    # given a one-token prompt and two long responses: one token saved, a row twice as long
    long_a, long_b = list(range(100, 400)), list(range(500, 800))
    sequences = [[7, *long_a], [7, *long_b]]
    # when attention is dense in a narrow model (weight 1 / (6 * 64)) / then they stay apart
    assert len(layout(sequences, ["p", "p"], SharePolicy.dense(64))) == 2
    # and when masked blocks cost nothing (a block-sparse kernel), they share
    assert len(layout(sequences, ["p", "p"], FREE)) == 1
    # and without a policy (encoders) every sequence is its own row
    assert len(layout([P + A, P + B], ["p", "p"], None)) == 2


def test_the_mask_lets_each_continuation_see_its_blocks_prefix_and_itself_causally() -> None:
    # given a row of two blocks: prefix (2 tokens), continuation 1 (2 tokens), continuation 2 (1 token);
    # then a plain sequence of 2 tokens; then padding
    blocks = torch.tensor([[0, 0, 0, 0, 0, 1, 1, PADDING]])
    segments = torch.tensor([[PREFIX, PREFIX, 1, 1, 2, 1, 1, PADDING]])

    # when the mask is built
    allowed = shared_prompt_mask(blocks, segments)[0, 0].int().tolist()

    # then (rows: queries, columns: keys) the continuations never see each other, the second block
    # sees only itself (segment 1 of another block is not its segment), and padding sees only itself,
    # so no softmax row is empty
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
    ]


def test_blocks_are_packed_into_rows_as_wide_as_the_longest_best_fit_longest_first() -> None:
    # given blocks of 10, 6, 5, 4, 3 and 2 tokens: 30 tokens, so at least 3 rows of 10
    lengths = [6, 10, 4, 5, 3, 2]
    # when they are packed / then 10 | 6 + 4 | 5 + 3 + 2: three full rows, by hand
    assert row_of_each(lengths) == [1, 0, 1, 2, 2, 2]
    # and the count depends on the lengths only, never their order
    assert max(row_of_each(lengths[::-1])) == 2
    assert row_of_each([]) == []


def test_packed_rows_restart_positions_in_each_block_and_read_each_sequence_at_its_end() -> None:
    # given a shared block of 13 tokens and two plain sequences of 3 and 8
    blocks = [Block(P, [(0, A), (1, B), (2, C)]), Block([], [(3, [9, 9, 9])]), Block([], [(4, [8] * 8)])]

    # when they are packed and made tensors
    rows = pack(blocks)
    tensors = row_tensors(rows, pad_id=0)

    # then the 13-token block fills row 0, and the 8 and the 3 share row 1 (longest first)
    assert rows == [[blocks[0]], [blocks[1], blocks[2]]]
    assert tensors.input_ids[1].tolist() == [9, 9, 9] + [8] * 8 + [0, 0]
    assert tensors.position_ids[1].tolist()[:11] == [0, 1, 2, *range(8)]
    assert tensors.blocks[1].tolist() == [0] * 3 + [1] * 8 + [PADDING] * 2
    assert tensors.segments[1].tolist() == [1] * 11 + [PADDING] * 2
    assert tensors.read_index.tolist() == [7, 11, 12, 13 + 2, 13 + 10]


# ---------------------------------------------------------------- exactness on real architectures

ARCHITECTURES: dict[str, Callable[..., PretrainedConfig]] = {
    "llama": LlamaConfig,
    "qwen2": Qwen2Config,
    "mistral": MistralConfig,
    "gemma": GemmaConfig,
}


def tiny_decoder(kind: str, attention: str = "sdpa") -> RewardModel:
    """A 2-layer, 64-wide random decoder reward model with grouped-query attention, in eval mode."""
    config = ARCHITECTURES[kind](
        vocab_size=128,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        head_dim=16,
    )
    config.num_labels = 1
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=attention).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.score.weight, std=1.0)
    return RewardModel(model, None, "last", "plain", 256, FREE)  # type: ignore[arg-type]  # no tokenizer needed


def sequences_and_groups() -> tuple[list[list[int]], list[str]]:
    """Two prompts with 2 and 3 responses, one response whose prompt was cut (a fallback block), and a
    sequence alone: 7 sequences in 4 blocks, packed into 3 rows."""
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(1, 128, (n,), generator=gen).tolist()

    p, q = ids(9), ids(14)
    sequences = [p + ids(4), p + ids(7), q + ids(3), q + ids(11), q + ids(5), q[4:] + ids(6), ids(8)]
    return sequences, ["p", "p", "q", "q", "q", "q", "r"]


def rewards_and_grads(
    rm: RewardModel, shared: bool, dtype: torch.dtype | None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Rewards of the sequences, and the gradients of a fixed weighting of them."""
    sequences, groups = sequences_and_groups()
    module = RewardModule(rm)
    rm.model.zero_grad()
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        if shared:
            rows = row_tensors(pack(layout(sequences, groups, FREE)), pad_id=0)
            assert rows.input_ids.shape[0] == 3  # blocks of 20 + 8, 33 and 16 tokens
            rewards = module(rows.input_ids, rows.attention_mask, **rows.layout_inputs())
        else:
            rewards = module(*pad_sequences(sequences, 0))
    weights = torch.linspace(-1.0, 1.0, len(sequences))
    (rewards * weights).sum().backward()
    return rewards.detach(), [p.grad.clone() for p in rm.model.parameters() if p.grad is not None]


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
@pytest.mark.parametrize(("dtype", "tolerance"), [(None, 1e-5), (torch.bfloat16, 1e-2)])
def test_shared_rows_give_the_rewards_and_gradients_of_separate_rows(
    kind: str, dtype: torch.dtype | None, tolerance: float
) -> None:
    # given a tiny random decoder of this architecture
    rm = tiny_decoder(kind)

    # when the sequences are encoded alone, and in rows sharing their prompts
    alone, alone_grads = rewards_and_grads(rm, shared=False, dtype=dtype)
    shared, shared_grads = rewards_and_grads(rm, shared=True, dtype=dtype)

    # then rewards and every gradient agree, relative to their largest value: fp32 within 1e-5, bf16
    # within 1e-2 (8 bits of mantissa: one rounding is up to 2^-8 = 0.4%; measured here: rewards
    # equal, gradients within 0.5%)
    torch.testing.assert_close(shared, alone, rtol=0, atol=tolerance * max(1.0, float(alone.abs().max())))
    assert len(shared_grads) == len(alone_grads) > 0
    for a, b in zip(shared_grads, alone_grads, strict=True):
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b, rtol=0, atol=tolerance * scale)


def test_the_eager_attention_takes_the_mask_as_an_additive_bias() -> None:
    # given the eager attention, which would misread a bool mask without a word
    rm = tiny_decoder("mistral", attention="eager")
    # when / then shared rows still give the separate rows' rewards
    alone, _ = rewards_and_grads(rm, shared=False, dtype=None)
    shared, _ = rewards_and_grads(rm, shared=True, dtype=None)
    torch.testing.assert_close(shared, alone, rtol=0, atol=1e-5)


def test_a_training_step_is_the_same_with_shared_rows(tiny_decoder_dir: Path) -> None:
    # given the tiny decoder with its ChatML tokenizer, a pair and a ranking of one prompt, and a pair
    # of another, tokenized as training does
    rm = build_reward_model(ModelConfig(name_or_path=str(tiny_decoder_dir), precision="fp32"))
    assert rm.share is not None  # auto: a decoder shares
    colour, hello = [{"role": "user", "content": "Name a colour."}], [{"role": "user", "content": "Hi?"}]
    prompts = [colour] * 4 + [hello] * 2
    ids = encode_many(rm, prompts, ["Red.", "Blue, I think.", "Green!", "No.", "Hello!", "Go away."])
    examples: list[PairExample | RankingExample] = [
        PairExample(prompt_id="a", chosen=ids[0], rejected=ids[3], p_chosen=1.0, margin=None),
        RankingExample(prompt_id="a", responses=ids[:3], ranks=[0, 1, 2]),
        PairExample(prompt_id="b", chosen=ids[4], rejected=ids[5], p_chosen=1.0, margin=None),
    ]
    pad = rm.tokenizer.pad_token_id
    assert pad is not None
    cfg = LossConfig(listwise=True)

    def step(share: SharePolicy | None) -> tuple[dict[str, float], list[torch.Tensor]]:
        batch = collate(examples, pad, "right", share)
        rm.model.zero_grad()
        out = loss_step(RewardModule(rm), batch, cfg, None)
        out.loss.backward()
        return out.metrics, [p.grad.clone() for p in rm.model.parameters() if p.grad is not None]

    # when one loss step runs on rows that share prompts, and on a row per sequence
    shared_batch = collate(examples, pad, "right", rm.share)
    assert shared_batch.n_rows == 2 and shared_batch.n_sequences == 6
    (shared, shared_grads), (alone, alone_grads) = step(rm.share), step(None)

    # then the losses and gradients are the same
    assert shared.keys() == alone.keys()
    for key in shared:
        assert shared[key] == pytest.approx(alone[key], abs=1e-5), key
    for a, b in zip(shared_grads, alone_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * max(1.0, float(b.abs().max())))


def test_the_attention_option_picks_the_implementation_and_how_sharing_is_costed(
    tiny_decoder_dir: Path,
) -> None:
    def built(attention: str) -> RewardModel:
        return build_reward_model(ModelConfig(name_or_path=str(tiny_decoder_dir), attention=attention))  # type: ignore[arg-type]

    # given / when the decoder is loaded with each attention implementation that takes a mask
    sdpa, eager, flex = built("auto"), built("eager"), built("flex_attention")
    # then dense kernels weigh the attention they compute, masked or not; FlexAttention skips masked
    # blocks, so sharing is free of it
    assert (
        sdpa.model.config._attn_implementation == "sdpa"
        and eager.model.config._attn_implementation == "eager"
    )
    assert sdpa.share == eager.share == SharePolicy.dense(int(sdpa.model.config.hidden_size))
    assert flex.model.config._attn_implementation == "flex_attention" and flex.share == FREE


def test_auto_attention_is_flex_for_a_decoder_sharing_prompts_that_trains_on_cuda(
    tiny_decoder_dir: Path, tiny_encoder_dir: Path
) -> None:
    # given where the model will train (loading it does not move it, so a CUDA target is only named)
    def attention(model: Path, device: str, share: str = "auto") -> tuple[str, SharePolicy | None]:
        config = ModelConfig(name_or_path=str(model), share_prompt=share)  # type: ignore[arg-type]
        rm = build_reward_model(config, torch.device(device))
        return rm.model.config._attn_implementation, rm.share

    # then a decoder that shares prompts on CUDA gets FlexAttention, sharing costed without attention
    assert attention(tiny_decoder_dir, "cuda") == ("flex_attention", FREE)
    # and on the CPU, without sharing, or for an encoder, SDPA stays
    assert attention(tiny_decoder_dir, "cpu")[0] == "sdpa"
    assert attention(tiny_decoder_dir, "cuda", share="off") == ("sdpa", None)
    assert attention(tiny_encoder_dir, "cuda") == ("sdpa", None)


@pytest.mark.slow
def test_flex_attention_block_masks_give_the_rewards_of_separate_rows() -> None:
    # given a tiny Llama-style decoder with FlexAttention (on the CPU it has no backward: gradients are
    # for bench/gpu_check.py on a GPU, which trains with it)
    rm = tiny_decoder("llama", attention="flex_attention")
    sequences, groups = sequences_and_groups()
    module = RewardModule(rm)

    # when the sequences are scored alone, and in packed rows of shared-prompt blocks (a BlockMask)
    with torch.no_grad():
        alone = module(*pad_sequences(sequences, 0))
        rows = row_tensors(pack(layout(sequences, groups, FREE)), pad_id=0)
        shared = module(rows.input_ids, rows.attention_mask, **rows.layout_inputs())

    # then the rewards agree in float32
    torch.testing.assert_close(shared, alone, rtol=0, atol=1e-5 * max(1.0, float(alone.abs().max())))


def test_share_prompt_on_is_refused_for_an_encoder(tiny_encoder_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"share_prompt 'on'.*encoder"):
        build_reward_model(ModelConfig(name_or_path=str(tiny_encoder_dir), share_prompt="on"))
    # and auto leaves an encoder without sharing, off turns a decoder's off
    assert build_reward_model(ModelConfig(name_or_path=str(tiny_encoder_dir))).share is None


def test_scoring_pairs_with_shared_prompts_gives_the_rewards_of_separate_rows(
    tiny_decoder_dir: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given held-out pairs, some prompts with two pairs, and a budget that needs several forwards
    rm = build_reward_model(ModelConfig(name_or_path=str(tiny_decoder_dir), precision="fp32"))
    pairs = synthetic_pairs(12, seed=3, two_every=3)

    # when the pairs are scored with rows that share prompts, and one row per sequence
    shared = Scorer(rm=rm, max_tokens=400).pair_rewards(pairs)
    alone = Scorer(rm=replace(rm, share=None), max_tokens=400).pair_rewards(pairs)

    # then the rewards are the same
    for a, b in zip(shared, alone, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # and scoring the same responses as rows (rmcore score), repeats included, shares and agrees too
    prompts = pairs.column("prompt").to_pylist() * 2
    responses = pairs.column("chosen").to_pylist() + pairs.column("rejected").to_pylist()
    rows = Scorer(rm=rm, max_tokens=400).row_rewards(prompts + prompts[:3], responses + responses[:3])
    np.testing.assert_allclose(rows, np.concatenate([*alone, alone[0][:3]]), rtol=0, atol=1e-5)
