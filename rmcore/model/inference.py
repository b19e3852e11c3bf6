"""Rewards from a reward model: of token sequences, of (prompt, response) rows and of pairs.

    trained = load_trained(Path("runs/latest/model"))
    rewards = trained.scorer().row_rewards(prompts, responses)

A `Scorer` holds what scoring needs in one place: the model, the module that computes its rewards
(FSDP shards it in training), the autocast dtype, the device, a padded-token budget per forward,
and the processes that share the work. Sequences are batched shortest first under the budget, so
little compute goes to padding. This module, with `rmcore.model.saved`, is all that serving a model
(`rmcore score`, the MLflow pyfunc) imports: no training loop, no DDP or FSDP, no peft.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from rmcore.config import ModelConfig
from rmcore.model.batching import pad_sequences
from rmcore.model.reward import RewardModel, RewardModule, attention_kernels, build_reward_model
from rmcore.model.rows import Block, layout, pack, row_tensors
from rmcore.model.saved import ModelMetadata, read_metadata
from rmcore.model.tokenize import Message, encode_many

T = TypeVar("T")

DEFAULT_MAX_TOKENS = 16_384
"""Padded tokens per forward when scoring, unless the config's train.max_tokens says otherwise."""


class Ranks(Protocol):
    """The processes that share scoring: this one's rank, how many there are, and an all-gather."""

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    def gather(self, value: T) -> list[T]:
        """Every process's `value`, in rank order, on every process."""
        ...


@dataclass(frozen=True)
class OneProcess:
    """Scoring in this process alone."""

    rank: int = 0
    world_size: int = 1

    def gather(self, value: T) -> list[T]:
        return [value]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it fast (CUDA with bf16, CPUs with AMX or AVX512-BF16), else None."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return torch.bfloat16 if ("amx_bf16" in flags or "avx512_bf16" in flags) else None


def length_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices of sequences of these lengths, shortest first, in batches of at most `max_tokens`
    padded tokens (rows x longest); a sequence longer than that is a batch alone."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        longest, end = 0, start
        while end < len(order) and max(longest, lengths[order[end]]) * (end - start + 1) <= max(
            max_tokens, lengths[order[end]]
        ):
            longest = max(longest, lengths[order[end]])
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def pair_token_ids(
    rm: RewardModel, pairs: pa.Table, same_cut: bool = False
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of every pair's (prompt, chosen) and (prompt, rejected), each prompt rendered once;
    with `same_cut`, each prompt cut alike for all its responses (`rmcore.model.tokenize`).

    A multi-turn response is read after its leading turns: the sequence renders the prompt, the turns
    and the final reply, and truncation cuts the conversation from the left, never the final reply
    while anything before it is left."""
    contexts = response_contexts(pairs, "chosen") + response_contexts(pairs, "rejected")
    responses = pairs.column("chosen").to_pylist() + pairs.column("rejected").to_pylist()
    ids = encode_many(rm, contexts, responses, same_cut=same_cut)
    return ids[: pairs.num_rows], ids[pairs.num_rows :]


def response_contexts(pairs: pa.Table, side: str) -> list[list[dict[str, str]]]:
    """Each pair's prompt followed by the turns that lead to its `side` ("chosen" or "rejected")
    reply; the prompt alone where the reply follows it directly (or in pair files written before
    responses had turns)."""
    prompts: list[list[dict[str, str]]] = pairs.column("prompt").to_pylist()
    if f"{side}_turns" not in pairs.column_names:
        return prompts
    turns = pairs.column(f"{side}_turns").to_pylist()
    return [prompt + (lead or []) for prompt, lead in zip(prompts, turns, strict=True)]


@dataclass(frozen=True, kw_only=True)
class Scorer:
    """A reward model ready to score, and how: precision, device, batch budget, processes."""

    rm: RewardModel
    module: nn.Module | None = None
    """(n, s) ids and mask -> (n,) rewards; None: `RewardModule(rm)`. In training, the sharded module."""
    dtype: torch.dtype | None = None
    """Autocast dtype (None: float32)."""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    max_tokens: int = DEFAULT_MAX_TOKENS
    """Padded tokens per forward (rows x longest row)."""
    ranks: Ranks = field(default_factory=OneProcess)
    """With several training processes, each scores its share and every one gets every reward."""

    @torch.no_grad()
    def sequence_rewards(self, sequences: list[list[int]], groups: Sequence[str] | None = None) -> np.ndarray:
        """Rewards of distinct token sequences, (n,) float64, in the order given.

        `groups[i]`: the prompt of sequence i; with them and the model's `share` policy, the responses
        to one prompt share blocks (exact; rmcore.model.rows). Blocks are batched shortest first under
        the padded-token budget, and packed into rows in each batch. Rank r of W scores the batches
        r, r + W, ...; a rank with fewer batches than another scores the first batch again for
        nothing, so every rank runs as many forwards (under FSDP each one all-gathers the weights,
        which every rank must join).
        """
        module = self.module if self.module is not None else RewardModule(self.rm)
        share = self.rm.share if groups is not None else None
        blocks = layout(sequences, groups if groups is not None else [""] * len(sequences), share)
        batches = length_batches([block.length for block in blocks], self.max_tokens)
        rank, world = self.ranks.rank, self.ranks.world_size
        mine = batches[rank::world]
        spare = -(-len(batches) // world) - len(mine)
        was_training = self.rm.model.training
        self.rm.model.eval()
        values = [
            self._batch_rewards(module, [blocks[i] for i in batch]) for batch in mine + batches[:1] * spare
        ]
        self.rm.model.train(was_training)
        out = np.zeros(len(sequences), dtype=np.float64)
        for owner, part in enumerate(self.ranks.gather(values[: len(mine)])):
            for batch, scores in zip(batches[owner::world], part, strict=True):
                out[[i for b in batch for i, _ in blocks[b].parts]] = scores
        return out

    def row_rewards(self, prompts: Sequence[Sequence[Message]], responses: Sequence[str]) -> np.ndarray:
        """Rewards of (prompt messages, response) rows, (n,), in order.

        Each distinct sequence is scored once; the responses to one prompt share rows where the model
        allows it (decoders), as in `pair_rewards`.
        """
        sequences = encode_many(self.rm, prompts, responses)
        groups = [repr([(m["role"], m["content"]) for m in prompt]) for prompt in prompts]
        return self._distinct_rewards(sequences, groups)

    def pair_rewards(self, pairs: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Rewards of every pair's chosen and rejected response, (p,) each, in the table's order.

        Each distinct sequence is scored once; the responses to one prompt share rows where the model
        allows it (decoders).
        """
        chosen, rejected = pair_token_ids(self.rm, pairs)
        n = len(chosen)
        prompts = pairs.column("prompt_id").to_pylist() if "prompt_id" in pairs.column_names else range(n)
        scores = self._distinct_rewards(chosen + rejected, [str(prompts[k % n]) for k in range(2 * n)])
        return scores[:n], scores[n:]

    def _distinct_rewards(self, sequences: list[list[int]], groups: list[str]) -> np.ndarray:
        """Rewards of `sequences`, (n,), each distinct one scored once in the group of its first
        occurrence (`groups[i]`: the prompt sequence i answers; sequences of one group may share)."""
        index: dict[tuple[int, ...], int] = {}
        first_groups: list[str] = []
        for seq, group in zip(sequences, groups, strict=True):
            if tuple(seq) not in index:
                index[tuple(seq)] = len(index)
                first_groups.append(group)
        scores = self.sequence_rewards([list(seq) for seq in index], first_groups)
        return scores[[index[tuple(seq)] for seq in sequences]]

    def _batch_rewards(self, module: nn.Module, blocks: list[Block]) -> np.ndarray:
        """Rewards of the sequences of a few blocks, (n,) in block order, in one forward: right-padded
        sequences, or blocks sharing prompts packed into rows."""
        pad = self.rm.tokenizer.pad_token_id if self.rm.tokenizer.pad_token_id is not None else 0
        if self.rm.share is None:
            inputs = pad_sequences([tokens for block in blocks for _, tokens in block.parts], pad)
            layout_inputs: dict[str, torch.Tensor] = {}
        else:
            numbered, k = [], 0
            for block in blocks:
                numbered.append(
                    Block(block.prefix, [(k + j, tokens) for j, (_, tokens) in enumerate(block.parts)])
                )
                k += len(block.parts)
            tensors = row_tensors(pack(numbered), pad)
            inputs, layout_inputs = (tensors.input_ids, tensors.attention_mask), tensors.layout_inputs()
        dtype, device = self.dtype, self.device
        with (
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
            attention_kernels(device),
        ):
            moved = {name: value.to(device) for name, value in layout_inputs.items()}
            scores: np.ndarray = (
                module(inputs[0].to(device), inputs[1].to(device), **moved).float().cpu().numpy()
            )
        return scores


@dataclass(frozen=True)
class TrainedModel:
    """A saved reward model, loaded, with what training recorded beside it."""

    rm: RewardModel
    metadata: ModelMetadata
    dtype: torch.dtype | None
    """The autocast dtype of the precision it was trained with, on this machine."""

    @property
    def reward_mean(self) -> float | None:
        """Mean held-out reward at the end of training."""
        return self.metadata.reward_mean

    @property
    def reward_std(self) -> float | None:
        """Standard deviation of the held-out rewards."""
        return self.metadata.reward_std

    def scorer(self, max_tokens: int = DEFAULT_MAX_TOKENS) -> Scorer:
        """A scorer of this model on its own device, in its training precision."""
        return Scorer(rm=self.rm, dtype=self.dtype, device=self.rm.model.device, max_tokens=max_tokens)

    def normalized(self, rewards: np.ndarray) -> np.ndarray | None:
        """(reward - held-out mean) / held-out std, (n,); None when the model has no such statistics."""
        mean, std = self.metadata.reward_mean, self.metadata.reward_std
        return (rewards - mean) / std if mean is not None and std else None


def load_trained(model_dir: Path) -> TrainedModel:
    """A model directory written by `rmcore train` (weights, tokenizer, rmcore.json), in eval mode."""
    metadata = read_metadata(model_dir)
    cfg = ModelConfig(
        name_or_path=str(model_dir),
        max_length=metadata.max_length,
        pooling=metadata.pooling,
        rendering=metadata.rendering,
    )
    rm = build_reward_model(cfg)
    rm.tokenizer.padding_side = metadata.padding_side
    rm.model.eval()
    return TrainedModel(rm, metadata, autocast_dtype(metadata.precision, rm.model.device))
