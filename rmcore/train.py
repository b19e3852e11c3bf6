"""python -m rmcore.train --config configs/default.yaml [--set KEY=VALUE ...] [--resume] [--json]

Train a reward model r(x, y) by minimizing a ranking loss over human preference pairs.

    build   the reward model, the tokenized examples, the step plan, the optimizer and schedule
    fit     for each optimizer step: micro-batches -> loss_step -> backward; clip, step, schedule;
            periodic evaluation, early stopping and atomic checkpoints
    finish  save the model (safetensors, tokenizer, rmcore.json with reward statistics) and evaluate

`rmcore train` runs the same `main`. Several processes: `torchrun --nproc_per_node N -m rmcore.train
...` trains with DDP, or with FSDP (`train.distributed: fsdp`) for a model that does not fit one
device (see rmcore/distributed.py); rank 0 alone writes files and prints. `train.compile` wraps the
scorer in torch.compile. With `model.lora` set, peft adapters and the scalar head train; the model
directory holds the merged full model (loadable without peft) and the adapters + head in `adapter/`.
"""

import argparse
import contextlib
import hashlib
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import orjson
import pyarrow as pa
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rmcore import __version__
from rmcore.config import Config, ConfigError, LoraSettings, LossConfig, ModelConfig, TrainConfig, load_config
from rmcore.data.atomic import write_text
from rmcore.data.pairsets import PairSet, load_pairs, shared_prompts
from rmcore.distributed import (
    Dist,
    full_model_state,
    full_optimizer_state,
    init_distributed,
    load_model_state,
    load_optimizer_state,
    shard_model,
    shard_step,
    shutdown,
)
from rmcore.evaluate import pair_metrics
from rmcore.model.batching import (
    Batch,
    PairExample,
    RankingExample,
    collate,
    pad_sequences,
    pair_count,
    plan_batches,
)
from rmcore.model.losses import LossOut, pair_loss, plackett_luce
from rmcore.model.reward import RewardModel, RewardModule, build_reward_model, quiet_transformers
from rmcore.model.tokenize import encode_many, identical_after_truncation

CHECKPOINTS = "checkpoints"
MODEL_DIR = "model"
METADATA = "rmcore.json"
ADAPTER_DIR = "adapter"
"""Inside the model directory, when trained with LoRA: the peft adapters and the scalar head."""


class TrainingError(Exception):
    """Training cannot go on; the message says why and what to do."""


# ---------------------------------------------------------------- build


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally insist on deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


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


def build_model(cfg: ModelConfig) -> RewardModel:
    """The reward model of `cfg`, dropout off unless asked; with `cfg.lora`, wrapped in peft adapters.

    Dropout goes before the adapters are added, so LoRA's own dropout (`lora.dropout`) stays.
    """
    rm = build_reward_model(cfg)
    if cfg.disable_dropout:
        for module in rm.model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    return apply_lora(rm, cfg.lora) if cfg.lora is not None else rm


def head_modules(model: nn.Module) -> list[str]:
    """Names of the modules that turn the backbone's hidden state into the reward.

    The scalar head (`score` of decoders, `classifier` of encoders) and, for encoders with one,
    the pooler feeding the classifier: freshly initialized or not, they must train and be saved.
    """
    names = [name for name in ("score", "classifier") if isinstance(getattr(model, name, None), nn.Module)]
    base = getattr(model, "base_model", None)
    if isinstance(getattr(base, "pooler", None), nn.Module):
        names.append("pooler")
    return names


def apply_lora(rm: RewardModel, settings: LoraSettings) -> RewardModel:
    """`rm` with its model wrapped by peft LoRA adapters (task SEQ_CLS).

    Only the adapters and the head modules (`head_modules`, as peft `modules_to_save`) train; the
    rest of the backbone is frozen. PITFALLS 4: a head left out would keep its random weights.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        modules_to_save=head_modules(rm.model),
    )
    try:
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecates
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
            model = get_peft_model(rm.model, config)
    except ValueError as error:
        raise TrainingError(
            f"LoRA cannot adapt {type(rm.model).__name__}: {error}; "
            "set model.lora.target_modules (e.g. [q_proj, v_proj])"
        ) from error
    return RewardModel(cast(Any, model), rm.tokenizer, rm.pooling, rm.rendering, rm.max_length)


def is_peft(model: nn.Module) -> bool:
    """True for a peft-wrapped model."""
    return hasattr(model, "peft_config") and callable(getattr(model, "merge_and_unload", None))


@dataclass
class Examples:
    """Tokenized training examples and what truncation did to them."""

    items: list[PairExample | RankingExample]
    pairs: int
    identical_after_truncation: int


def _encode_pairs(rm: RewardModel, pairs: pa.Table) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of every pair's (prompt, chosen) and (prompt, rejected), each prompt rendered once."""
    prompts = pairs.column("prompt").to_pylist()
    responses = pairs.column("chosen").to_pylist() + pairs.column("rejected").to_pylist()
    ids = encode_many(rm, prompts + prompts, responses)
    return ids[: len(prompts)], ids[len(prompts) :]


def build_examples(rm: RewardModel, data: PairSet, listwise: bool) -> Examples:
    """Token ids of every pair (and, for the listwise loss, every ranking of K > 2).

    Pairs that truncation made identical are counted and left out (PITFALLS 2).
    """
    pairs = data.pairs
    chosen, rejected = _encode_pairs(rm, pairs)
    items: list[PairExample | RankingExample] = []
    dropped = 0
    for prompt_id, c, r, p, m in zip(
        pairs.column("prompt_id").to_pylist(),
        chosen,
        rejected,
        pairs.column("p_chosen").to_pylist(),
        pairs.column("margin").to_pylist(),
        strict=True,
    ):
        if identical_after_truncation(c, r):
            dropped += 1
            continue
        items.append(PairExample(prompt_id, c, r, float(p), m))
    rankings = data.rankings if listwise else data.rankings.slice(0, 0)
    for row in rankings.select(["prompt_id", "prompt", "responses", "ranks"]).to_pylist():
        responses = encode_many(rm, [row["prompt"]] * len(row["responses"]), row["responses"])
        if len({tuple(ids) for ids in responses}) == len(responses):
            items.append(RankingExample(row["prompt_id"], responses, row["ranks"]))
    return Examples(items, len(items), dropped)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; no weight decay on biases and norms."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier at `step`: linear warmup, then cosine, linear or constant decay."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup then decay, per optimizer step."""
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup, cfg.schedule)
    )


def build_plan(examples: Examples, cfg: TrainConfig) -> list[list[list[int]]]:
    """Optimizer steps -> micro-batches -> example indices, over all epochs (fractions allowed)."""
    plan: list[list[list[int]]] = []
    epoch = 0
    while True:
        steps = plan_batches(
            examples.items, cfg.batch_size, cfg.max_tokens, cfg.seed + epoch, cfg.keep_prompts_together
        )
        remaining = math.ceil(cfg.epochs * len(steps)) - epoch * len(steps)
        plan.extend(steps[: max(0, remaining)])
        epoch += 1
        if remaining <= len(steps):
            return plan


# ---------------------------------------------------------------- the maths of one micro-batch


def loss_step(
    scorer: nn.Module, batch: Batch, loss: LossConfig, dtype: torch.dtype | None, device: torch.device
) -> LossOut:
    """Rewards of the batch's unique sequences, then the configured ranking loss over its pairs.

    `scorer`: `RewardModule(rm)` or a wrapper of it (DDP): (n, s) ids and mask -> (n,) rewards.
    """
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        scores = scorer(batch.input_ids.to(device), batch.attention_mask.to(device))
    scores = scores.float()
    batch = batch.to(device)
    # A ranking's pairs already stand in the pair files: rankings feed only the listwise term.
    keep = ~batch.pair_from_ranking if batch.pair_from_ranking is not None else slice(None)
    out = pair_loss(
        scores[batch.chosen[keep]],
        scores[batch.rejected[keep]],
        p_chosen=batch.p_chosen[keep],
        margin=batch.margin[keep],
        pair_group=batch.pair_group[keep],
        kind=loss.pairwise,
        use_margin=loss.margin,
        centering=loss.centering,
        group_normalize=loss.group_by_prompt,
    )
    if loss.listwise and batch.rankings:
        index, lengths = batch.ranking_matrix()
        listwise = plackett_luce(scores[index], lengths)
        out = LossOut(out.loss + listwise.loss, {**out.metrics, "loss_pl": listwise.metrics["loss_pl"]})
    return out


# ---------------------------------------------------------------- checkpoints


@dataclass
class TrainState:
    """Where training stands: the next optimizer step, and the best held-out accuracy so far."""

    step: int = 0
    best_accuracy: float = -1.0
    evals_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def _rng_state() -> dict[str, Any]:
    """This process's random generators (CUDA: the current device only)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"][0])


def save_checkpoint(
    out: Path,
    rm: RewardModel,
    optimizer_state: dict[str, Any],
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    state: TrainState,
    rng_per_rank: list[dict[str, Any]] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoints/step-N atomically (a temporary folder renamed); point `latest` at it.

    Weights: `save_pretrained` of `weights` (a sharded model's, gathered by `full_model_state`), or
    of the model's own (with LoRA: the adapters and head only; the frozen base is rebuilt from
    model.name_or_path). `optimizer_state`: whole tensors (`full_optimizer_state`). `rng_per_rank`:
    every training process's RNG state (several ranks); default: this process's.
    """
    rng = rng_per_rank or [_rng_state()]
    root = out / CHECKPOINTS
    final = root / f"step-{state.step:07d}"
    tmp = root / f".step-{state.step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with quiet_transformers():
        rm.model.save_pretrained(tmp / "weights", state_dict=weights)
    torch.save(
        {
            "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict(),
            "rng": rng[0],
            "rng_per_rank": rng,
            "state": state.__dict__,
        },
        tmp / "trainer.pt",
    )
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_text(root / "latest", final.name)
    for old in sorted(root.glob("step-*"))[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint `latest` names, if any."""
    pointer = out / CHECKPOINTS / "latest"
    if not pointer.exists():
        return None
    path = out / CHECKPOINTS / pointer.read_text().strip()
    return path if path.is_dir() else None


def restore(
    checkpoint: Path,
    rm: RewardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    dist: Dist | None = None,
) -> TrainState:
    """Load weights, optimizer, schedule, RNG and position from a checkpoint; the state to go on from.

    Every rank loads the same checkpoint (whole tensors; a sharded model and optimizer keep their
    shards of them) and takes its own RNG state when the checkpoint was written by as many ranks
    (else rank 0's).
    """
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for file in sorted((checkpoint / "weights").glob("*.safetensors")):
        weights.update(load_file(file))
    if is_peft(rm.model):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(rm.model, weights)
    else:
        load_model_state(rm.model, weights)
    saved = torch.load(checkpoint / "trainer.pt", map_location="cpu", weights_only=False)
    load_optimizer_state(rm.model, optimizer, saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    per_rank = saved.get("rng_per_rank") or [saved["rng"]]
    rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
    _set_rng_state(per_rank[rank] if len(per_rank) == world else saved["rng"])
    return TrainState(**saved["state"])


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def score_pairs(
    rm: RewardModel,
    data: PairSet,
    max_tokens: int,
    dtype: torch.dtype | None,
    device: torch.device,
    dist: Dist | None = None,
    scorer: nn.Module | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rewards of every pair's chosen and rejected response, (p,) each, in the table's order.

    With several ranks (`dist`), the ranks share the work and all get every score (`score_sequences`).
    """
    chosen, rejected = _encode_pairs(rm, data.pairs)
    scores = score_sequences(rm, chosen + rejected, max_tokens, dtype, device, dist, scorer)
    return scores[: len(chosen)], scores[len(chosen) :]


@torch.no_grad()
def score_sequences(
    rm: RewardModel,
    sequences: list[list[int]],
    max_tokens: int,
    dtype: torch.dtype | None,
    device: torch.device,
    dist: Dist | None = None,
    scorer: nn.Module | None = None,
) -> np.ndarray:
    """Rewards of token sequences, (n,), batched by length under a padded-token budget.

    `scorer`: the module computing rewards, default `RewardModule(rm)`; under FSDP the sharded one.
    With several ranks (`dist`), rank r scores batches r, r + W, ... and every rank gets every
    score. A rank with fewer batches than another scores the first batch again for nothing: every
    rank runs as many forwards, as FSDP needs (each forward all-gathers the weights).
    """
    dist = dist or Dist()
    module = scorer or RewardModule(rm)
    batches = length_batches([len(seq) for seq in sequences], max_tokens)
    mine = batches[dist.rank :: dist.world_size]
    spare = -(-len(batches) // dist.world_size) - len(mine)
    pad = rm.tokenizer.pad_token_id if rm.tokenizer.pad_token_id is not None else 0
    was_training = rm.model.training
    rm.model.eval()
    values = [
        _score_batch(module, [sequences[i] for i in batch], pad, dtype, device)
        for batch in mine + batches[:1] * spare
    ]
    rm.model.train(was_training)
    out = np.zeros(len(sequences), dtype=np.float64)
    for rank, part in enumerate(dist.gather(values[: len(mine)])):
        for batch, scores in zip(batches[rank :: dist.world_size], part, strict=True):
            out[batch] = scores
    return out


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


def _score_batch(
    module: nn.Module, sequences: list[list[int]], pad: int, dtype: torch.dtype | None, device: torch.device
) -> np.ndarray:
    """Rewards of a few token sequences, (n,), right-padded into one forward."""
    ids, mask = pad_sequences(sequences, pad)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        scores: np.ndarray = module(ids.to(device), mask.to(device)).float().cpu().numpy()
    return scores


def evaluate_pairs(
    rm: RewardModel,
    data: PairSet,
    max_tokens: int,
    dtype: torch.dtype | None,
    device: torch.device,
    dist: Dist | None = None,
    scorer: nn.Module | None = None,
) -> dict[str, Any]:
    """Held-out metrics of the model on a pair set (with `dist`: scored by all ranks, on all ranks).

    `scorer`: as for `score_sequences` (the sharded module under FSDP).
    """
    chosen, rejected = score_pairs(rm, data, max_tokens, dtype, device, dist, scorer)
    return pair_metrics(chosen, rejected, data.pairs)


# ---------------------------------------------------------------- the loop


@dataclass
class Run:
    """Everything `fit` needs, built before step 0."""

    config: Config
    out: Path
    rm: RewardModel
    module: nn.Module
    """`RewardModule(rm)`, sharded in place under FSDP: what evaluation calls."""
    scorer: nn.Module
    """`module`, compiled (train.compile) and wrapped in DDP (several ranks, ddp): what the loss calls."""
    examples: Examples
    plan: list[list[list[int]]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    held_out: PairSet | None
    device: torch.device
    dtype: torch.dtype | None
    log: Callable[[dict[str, Any]], None]
    dist: Dist = field(default_factory=Dist)


def fit(run: Run, state: TrainState, progress: bool) -> TrainState:
    """Optimizer steps from `state.step` to the end of the plan; the final state.

    Each rank runs its share of the step's micro-batches (`shard_step`: as many as every other rank;
    an empty one runs as a zero-weight micro-batch so the rank still joins FSDP's gathers and DDP's
    all-reduce). A micro-batch's loss is scaled by its weight (pairs, or prompt groups when
    group-normalized) over the whole step's, times the world size since DDP and FSDP average
    gradients over ranks: the summed gradient is the single-process one.
    """
    cfg, loss_cfg, dist = run.config.train, run.config.loss, run.dist
    run.rm.model.train()
    pad = run.rm.tokenizer.pad_token_id if run.rm.tokenizer.pad_token_id is not None else 0
    side: Literal["left", "right"] = "left" if run.rm.tokenizer.padding_side == "left" else "right"
    prompt_ids = [example.prompt_id for example in run.examples.items]
    bar = _progress_bar(len(run.plan), state.step, progress and dist.is_main)
    started, pairs_done = time.perf_counter(), 0
    end = min(len(run.plan), state.step + cfg.max_steps) if cfg.max_steps else len(run.plan)
    while state.step < end:
        step = run.plan[state.step]
        mine = shard_step(step, prompt_ids, dist.rank, dist.world_size)
        # an empty micro-batch runs one example at weight 0, so that the rank joins every collective
        batches = [collate([run.examples.items[i] for i in mb or step[0][:1]], pad, side) for mb in mine]
        weights = [
            float(b.n_groups if loss_cfg.group_by_prompt else b.n_pairs) if mb else 0.0
            for b, mb in zip(batches, mine, strict=True)
        ]
        total = dist.sum(sum(weights)) or 1.0
        run.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        bad: float | None = None
        for k, (batch, weight) in enumerate(zip(batches, weights, strict=True)):
            share = weight / total
            with _gradient_sync(run.scorer, last=k == len(batches) - 1):
                out = loss_step(run.scorer, batch, loss_cfg, run.dtype, run.device)
                (out.loss * (share * dist.world_size)).backward()
            if not torch.isfinite(out.loss) and bad is None:
                bad = out.loss.item()
            if weight == 0:
                continue
            for key, value in out.metrics.items():
                totals[key] = totals.get(key, 0.0) + value * share
        totals, bad = _reduce_step(dist, totals, bad)
        if bad is not None:
            raise TrainingError(
                f"loss became {bad} at step {state.step}; the last good checkpoint is "
                f"{latest_checkpoint(run.out)}. Lower train.lr or use model.precision=fp32"
            )
        grad_norm = torch.nn.utils.clip_grad_norm_(run.rm.model.parameters(), cfg.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        state.step += 1
        pairs_done += sum(pair_count(run.examples.items[i]) for mb in step for i in mb)
        pairs_per_s = pairs_done / max(time.perf_counter() - started, 1e-9)
        record = {
            "step": state.step,
            **totals,
            "grad_norm": float(grad_norm),
            "lr": float(run.scheduler.get_last_lr()[0]),
            "pairs_per_s": pairs_per_s,
        }
        state.history.append(record)
        run.log(record)
        bar(state.step, totals.get("loss", float("nan")), pairs_per_s)
        if _stop_after_evaluation(run, state):
            break
        if cfg.save_every and state.step % cfg.save_every == 0:
            checkpoint(run, state)
    return state


def _gradient_sync(scorer: nn.Module, last: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP all-reduces gradients on a step's last backward only (`no_sync` before it).

    FSDP reduce-scatters after every backward: each rank keeps gradient shards only (less memory).
    """
    if isinstance(scorer, DistributedDataParallel) and not last:
        return scorer.no_sync()
    return contextlib.nullcontext()


def _reduce_step(
    dist: Dist, totals: dict[str, float], bad: float | None
) -> tuple[dict[str, float], float | None]:
    """The step's metrics summed over ranks, and the first non-finite loss any rank saw."""
    if not dist.enabled:
        return totals, bad
    summed: dict[str, float] = {}
    first_bad: float | None = None
    for rank_totals, rank_bad in dist.gather((totals, bad)):
        for key, value in rank_totals.items():
            summed[key] = summed.get(key, 0.0) + value
        first_bad = rank_bad if first_bad is None else first_bad
    return summed, first_bad


def checkpoint(run: Run, state: TrainState) -> Path | None:
    """Every rank's RNG state (and, under FSDP, the whole weights and optimizer state) to rank 0,
    which writes the checkpoint; its path there (None elsewhere)."""
    rng = run.dist.gather(_rng_state())
    weights = full_model_state(run.rm.model)
    optimizer_state = full_optimizer_state(run.rm.model, run.optimizer)
    path = None
    if run.dist.is_main:
        path = save_checkpoint(run.out, run.rm, optimizer_state, run.scheduler, state, rng, weights)
    run.dist.barrier()
    return path


def _stop_after_evaluation(run: Run, state: TrainState) -> bool:
    """Evaluate when due; True when early stopping says to stop."""
    cfg = run.config.train
    steps_per_epoch = max(1, round(len(run.plan) / run.config.train.epochs))
    due = state.step % cfg.eval_every == 0 if cfg.eval_every else state.step % steps_per_epoch == 0
    if run.held_out is None or not due or state.step == len(run.plan):
        return False
    metrics = evaluate_pairs(
        run.rm, run.held_out, cfg.max_tokens, run.dtype, run.device, run.dist, run.module
    )
    run.log({"step": state.step, "eval_accuracy": metrics["accuracy"], "eval_loss": metrics["loss"]})
    if metrics["accuracy"] > state.best_accuracy:
        state.best_accuracy, state.evals_without_improvement = metrics["accuracy"], 0
        return False
    state.evals_without_improvement += 1
    return (
        bool(cfg.early_stopping_patience) and state.evals_without_improvement >= cfg.early_stopping_patience
    )


def _progress_bar(total: int, start: int, enabled: bool) -> Callable[[int, float, float], None]:
    if not enabled or not sys.stderr.isatty():
        return lambda step, loss, rate: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, unit="step", desc="train")

    def update(step: int, loss: float, rate: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.4f}", pairs_per_s=f"{rate:.1f}")
        if step >= total:
            bar.close()

    return update


# ---------------------------------------------------------------- finish


def save_model(
    out: Path,
    rm: RewardModel,
    config: Config,
    metrics: dict[str, Any],
    data_hash: str,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """save_pretrained weights (safetensors), tokenizer and rmcore.json, published atomically.

    `weights`: a sharded model's whole state dict (`full_model_state`); default: the model's own.

    A LoRA model is saved twice: its adapters and head (peft `save_pretrained`) in `adapter/`, and
    merged into the backbone (`merge_and_unload`) as the directory's full model, which plain
    transformers, `build_reward_model` and `rmcore score` load without peft. `rm.model` becomes the
    merged model (the same rewards, up to float rounding).
    """
    final = out / MODEL_DIR
    tmp = out / f".{MODEL_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    lora = is_peft(rm.model)
    with quiet_transformers():
        if lora:
            rm.model.save_pretrained(tmp / ADAPTER_DIR)
            rm.model = cast(Any, rm.model).merge_and_unload()
        rm.model.save_pretrained(tmp, state_dict=weights)
        rm.tokenizer.save_pretrained(tmp)
    stats = metrics.get("rewards", {}).get("all", {})
    metadata = {
        "rendering": rm.rendering,
        "pooling": rm.pooling,
        "max_length": rm.max_length,
        "padding_side": rm.tokenizer.padding_side,
        "reward_mean": stats.get("mean"),
        "reward_std": stats.get("std"),
        "train_data_hash": data_hash,
        "lora_adapter": ADAPTER_DIR if lora else None,
        "config": config.model_dump(mode="json"),
    }
    (tmp / METADATA).write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def training_key(config: Config, data_hash: str) -> str:
    """What a trained model depends on: rmcore's version, the config (less where outputs go and
    tracking) and the content hash of its data; blake2b-128 hex. Equal keys train the same model."""
    settings = config.model_dump(mode="json", exclude={"output_dir", "tracking"})
    document = {"rmcore": __version__, "config": settings, "data": data_hash}
    return hashlib.blake2b(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def train(config: Config, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Build, fit, save and evaluate; the result summary (JSON-ready).

    Under torchrun (WORLD_SIZE > 1) every rank runs this; the process group lives for this call.
    """
    dist = init_distributed()
    try:
        return _train(config, dist, resume, progress)
    finally:
        shutdown(dist)


def _train(config: Config, dist: Dist, resume: bool, progress: bool) -> dict[str, Any]:
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.train.seed, config.train.deterministic)
    device = dist.device
    dtype = autocast_dtype(config.model.precision, device)
    rm = build_model(config.model)
    module, scorer = build_scorer(rm, config.train, dist)
    scratch = out / "data" if dist.is_main else out / "data" / f"rank-{dist.rank}"
    train_set = load_pairs(config.data.train, "train", config.data, scratch / "train")
    held_out = _held_out(config, scratch)
    examples = build_examples(rm, train_set, config.loss.listwise)
    if not examples.items:
        raise TrainingError(f"no training pairs in {train_set.origin}")
    plan = build_plan(examples, config.train)
    optimizer = build_optimizer(rm.model, config.train)  # over the shards under FSDP
    scheduler = build_scheduler(optimizer, config.train, len(plan))
    state = TrainState()
    checkpoint_dir = latest_checkpoint(out) if resume else None
    if resume and checkpoint_dir is None:
        raise TrainingError(f"--resume: no checkpoint under {out / CHECKPOINTS}; start without --resume")
    if checkpoint_dir is not None:
        state = restore(checkpoint_dir, rm, optimizer, scheduler, dist)
    elif dist.enabled:
        torch.manual_seed(config.train.seed + dist.rank)  # same weights (built above), own dropout
    log_path = out / "metrics.jsonl"
    if checkpoint_dir is None and dist.is_main:
        log_path.unlink(missing_ok=True)

    def log(record: dict[str, Any]) -> None:
        if dist.is_main:
            with log_path.open("ab") as f:
                f.write(orjson.dumps(record) + b"\n")

    run = Run(
        config,
        out,
        rm,
        module,
        scorer,
        examples,
        plan,
        optimizer,
        scheduler,
        held_out,
        device,
        dtype,
        log,
        dist,
    )
    started = time.perf_counter()
    start_step = state.step
    state = fit(run, state, progress)
    seconds = time.perf_counter() - started
    checkpoint(run, state)
    max_tokens = config.train.max_tokens
    metrics = evaluate_pairs(rm, held_out, max_tokens, dtype, device, dist, module) if held_out else {}
    model_dir = out / MODEL_DIR
    weights = full_model_state(rm.model)
    if dist.is_main:
        save_model(out, rm, config, metrics, train_set.content_hash, weights)
    dist.barrier()
    trained_pairs = sum(
        pair_count(examples.items[i]) for step in plan[start_step : state.step] for mb in step for i in mb
    )
    return {
        "model_dir": str(model_dir),
        "steps": state.step,
        "train_pairs": examples.pairs,
        "identical_after_truncation": examples.identical_after_truncation,
        "held_out_prompts_in_train": shared_prompts(train_set, held_out) if held_out else 0,
        "train_seconds": seconds,
        "train_pairs_per_s": trained_pairs / max(seconds, 1e-9),
        "precision": str(dtype).removeprefix("torch.") if dtype else "float32",
        "device": device.type,
        "world_size": dist.world_size,
        "eval": metrics,
    }


def build_scorer(rm: RewardModel, cfg: TrainConfig, dist: Dist) -> tuple[nn.Module, nn.Module]:
    """`RewardModule(rm)` on `dist.device`, and what the loss calls: that module, compiled if asked.

    With several ranks and `cfg.distributed` ddp, the scorer is wrapped in DDP (rank 0's weights
    broadcast to all); with fsdp, the module is sharded in place (`shard_model`, per transformer
    block) before it is compiled, as PyTorch documents (compile the module DDP or FSDP wraps).
    `cfg.compile` targets CUDA with fixed, bucketed shapes; on CPU, recompiling for each new
    micro-batch shape made training slower. Evaluation calls the module itself: sharded under FSDP,
    never compiled (its many shapes), outside DDP (whose forward broadcasts buffers).
    """
    module = RewardModule(rm)
    fsdp = dist.enabled and cfg.distributed == "fsdp"
    if fsdp:
        shard_model(module, getattr(rm.model, "_no_split_modules", None) or (), dist)
    else:
        module.to(dist.device)
    scorer = cast(nn.Module, torch.compile(module)) if cfg.compile else module
    if dist.enabled and not fsdp:
        device_ids = [dist.device.index or 0] if dist.device.type == "cuda" else None
        scorer = DistributedDataParallel(scorer, device_ids=device_ids)
    return module, scorer


def _held_out(config: Config, scratch: Path) -> PairSet | None:
    """The evaluation pairs: data.eval, or the validation split of the training lake."""
    if config.data.eval is not None:
        return load_pairs(config.data.eval, "validation", config.data, scratch / "eval")
    source = config.data.train
    if source is not None and not source.is_dir():
        return None
    held_out = load_pairs(source, "validation", config.data, scratch / "eval")
    return held_out if held_out.pairs.num_rows else None


def run(args: argparse.Namespace) -> int:
    """Train from parsed arguments; errors are one line on stderr, exit status 1."""
    try:
        config = load_config(args.config, args.overrides)
        result = train(config, resume=args.resume, progress=not args.json)
    except (ConfigError, TrainingError, FileNotFoundError, ValueError, OSError) as error:
        rank = os.environ.get("RANK", "0")
        where = f" (rank {rank})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        print(f"rmcore train{where}: error: {error}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if result["held_out_prompts_in_train"]:
        print(
            f"rmcore train: warning: {result['held_out_prompts_in_train']} held-out prompt(s) also occur "
            "in the training data; held-out accuracy is inflated (split by prompt, or use the lake's splits)",
            file=sys.stderr,
        )
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        accuracy = result["eval"].get("accuracy")
        print(
            f"trained {result['steps']} steps on {result['train_pairs']} pairs in "
            f"{result['train_seconds']:.1f} s ({result['train_pairs_per_s']:.1f} pairs/s, "
            f"{result['precision']}); held-out accuracy "
            f"{'n/a' if accuracy is None else f'{accuracy:.3f}'}; model: {result['model_dir']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rmcore.train` (and torchrun ... -m rmcore.train): the same as `rmcore train`."""
    from rmcore.cli import add_train_arguments

    parser = argparse.ArgumentParser(prog="rmcore train", description=__doc__.splitlines()[2])
    add_train_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
