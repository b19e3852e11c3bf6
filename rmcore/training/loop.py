"""The training loop: for each optimizer step, micro-batches -> loss_step -> backward; clip, step,
schedule; log points, periodic evaluation, early stopping and atomic checkpoints.

rmcore train --set train.log_every=10 --set train.prefetch=2

`rmcore.training.recipe` builds a `Run` (the model, the examples, the plan, the optimizer...) and
calls `fit`; `loss_step` is the maths of one micro-batch.
"""

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rmcore.config import Config, LossConfig
from rmcore.data.pairs import PairSet
from rmcore.evaluation.evaluate import Evaluation, evaluate
from rmcore.model.batching import Batch, Example, loss_weight, pair_count
from rmcore.model.inference import Scorer
from rmcore.model.losses import LossOut, pair_loss, plackett_luce
from rmcore.model.reward import (
    BLOCK_SPARSE_ATTENTION,
    RewardModel,
    attending_with,
    attention_implementation,
    attention_kernels,
)
from rmcore.training import TrainingError
from rmcore.training.checkpoint import TrainState, latest_checkpoint, write_checkpoint
from rmcore.training.distributed import Dist, gradient_sync, reduce_values, shard_step, whole
from rmcore.training.feed import Collation, TokenCount, micro_batches
from rmcore.training.metrics_log import METRICS, StepRecord, append_record, read_back


@dataclass(frozen=True, kw_only=True)
class Examples:
    """Tokenized training examples and what truncation did to them."""

    items: list[Example]
    pairs: int
    """Pair examples among the items."""
    rankings: int
    """Ranking examples (K > 2 responses) among the items: only with the listwise loss."""
    identical_after_truncation: int
    """Pairs left out because truncation made their two sequences equal."""


# ---------------------------------------------------------------- the maths of one micro-batch


def loss_step(scorer: nn.Module, batch: Batch, loss: LossConfig, dtype: torch.dtype | None) -> LossOut:
    """Rewards of the batch's unique sequences, then the configured ranking loss over its pairs; the
    batch is where the scorer runs. Reads no value back: the loss and its metrics stay on the device.

    `scorer`: `RewardModule(rm)` or a wrapper of it (DDP): (n, s) ids and mask -> (n,) rewards.
    """
    batch = batch.without_ranking_pairs()
    device = batch.input_ids.device
    with (
        torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        attention_kernels(device),
    ):
        scores = scorer(batch.input_ids, batch.attention_mask, **batch.row_inputs())
    scores = scores.float()
    out = pair_loss(
        scores[batch.chosen],
        scores[batch.rejected],
        p_chosen=batch.p_chosen,
        margin=batch.margin,
        pair_group=batch.pair_group,
        kind=loss.pairwise,
        use_margin=loss.margin,
        centering=loss.centering,
        group_normalize=loss.group_by_prompt,
    )
    index, lengths = batch.ranking_matrix()
    if loss.listwise and index.shape[0]:
        listwise = plackett_luce(scores[index], lengths)
        logged = out.parts["loss"].double() + listwise.parts["loss"].double()
        parts = {**out.parts, "loss": logged, "loss_pl": listwise.parts["loss"]}
        out = LossOut(out.loss + listwise.loss, parts)
    return out


# ---------------------------------------------------------------- the loop


@dataclass(kw_only=True)
class Run:
    """Everything `fit` needs, built before step 0."""

    config: Config
    rm: RewardModel
    scorer: nn.Module
    """`RewardModule(rm)`, compiled (train.compile), in DDP (several ranks): what the loss calls."""
    evaluator: Scorer
    """Scores the held-out pairs with the uncompiled module (sharded under FSDP), on every rank."""
    examples: Examples
    plan: list[list[list[int]]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    held_out: PairSet | None
    dtype: torch.dtype | None
    dist: Dist
    collation: Collation
    """How micro-batches are collated (pad, side, shared prompts, width buckets)."""
    tokens: TokenCount = field(default_factory=TokenCount)

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to output_dir/metrics.jsonl (rank 0)."""
        if self.dist.is_main:
            append_record(self.config.output_dir / METRICS, record)


@dataclass(frozen=True, kw_only=True)
class _Step:
    """One optimizer step as this rank runs it: its micro-batches, and what each weighs in the step."""

    jobs: list[list[Example]]
    """The examples of each of this rank's micro-batches (a zero-weight filler repeats one example)."""
    weights: list[float]
    """Each micro-batch's pairs, or prompt groups when group-normalized; 0 for a filler."""
    total: float
    """The weights of the whole step, every rank's micro-batches."""
    pairs: int
    """Pairs the whole step trains on."""


def _steps(run: Run, start: int, end: int) -> list[_Step]:
    """Steps `start`..`end` of the plan as this rank runs them (`shard_step`), weighed on the host from
    the examples alone, so that no step waits for a count from the device or the other ranks."""
    items, rank, world = run.examples.items, run.dist.rank, run.dist.world_size
    prompt_ids = [example.prompt_id for example in items]
    grouped = run.config.loss.group_by_prompt

    def weight(micro_batch: Sequence[int]) -> float:
        return float(loss_weight([items[i] for i in micro_batch], grouped)) if micro_batch else 0.0

    steps = []
    for step in run.plan[start:end]:
        shares = [shard_step(step, prompt_ids, r, world) for r in range(world)]
        steps.append(
            _Step(
                # an empty micro-batch runs one example at weight 0, so that the rank joins every collective
                jobs=[[items[i] for i in micro_batch or step[0][:1]] for micro_batch in shares[rank]],
                weights=[weight(micro_batch) for micro_batch in shares[rank]],
                total=sum(weight(micro_batch) for share in shares for micro_batch in share) or 1.0,
                pairs=sum(pair_count(items[i]) for micro_batch in step for i in micro_batch),
            )
        )
    return steps


def fit(run: Run, state: TrainState, progress: bool) -> TrainState:
    """Optimizer steps from `state.step` to the end of the plan; the final state.

    Each rank runs its share of the step's micro-batches (`shard_step`: as many as every other rank;
    an empty one runs as a zero-weight micro-batch so the rank still joins FSDP's gathers and DDP's
    all-reduce). A micro-batch's loss is scaled by its weight (pairs, or prompt groups when
    group-normalized) over the whole step's, times the world size since DDP and FSDP average
    gradients over ranks: the summed gradient is the single-process one.

    A background thread collates and copies the micro-batches ahead (`rmcore.training.feed`); a step
    only queues work on the device. Its metrics, gradient norm and micro-batch losses stay there until
    a log point (every `train.log_every` steps, and before an evaluation, a checkpoint or the end),
    which reads every pending step at once, logs each, and stops at a non-finite loss, naming its step.
    """
    cfg, loss_cfg, dist = run.config.train, run.config.loss, run.dist
    run.rm.model.train()
    bar = _progress_bar(len(run.plan), state.step, progress and dist.is_main)
    started, pairs_done = time.perf_counter(), 0
    end = min(len(run.plan), state.step + cfg.max_steps) if cfg.max_steps else len(run.plan)
    steps = _steps(run, state.step, end)
    jobs = [job for step in steps for job in step.jobs]
    pending: list[StepRecord] = []
    with contextlib.closing(micro_batches(jobs, run.collation, dist.device, cfg.prefetch)) as feed:
        for step in steps:
            run.optimizer.zero_grad(set_to_none=True)
            metrics: dict[str, torch.Tensor] = {}
            losses = []
            for k, weight in enumerate(step.weights):
                micro = next(feed)
                share = weight / step.total
                with gradient_sync(run.scorer, last=k == len(step.weights) - 1):
                    out = loss_step(run.scorer, micro.on_stream(), loss_cfg, run.dtype)
                    (out.loss * (share * dist.world_size)).backward()
                losses.append(out.parts["loss"])
                if weight == 0:
                    continue
                run.tokens.add(micro.counts)
                for key, value in out.parts.items():  # float64, as the host summed them before
                    metrics[key] = metrics.get(key, 0.0) + value.double() * share
            grad_norm = torch.nn.utils.clip_grad_norm_(run.rm.model.parameters(), cfg.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            state.step += 1
            pairs_done += step.pairs
            pending.append(
                StepRecord(
                    step=state.step,
                    metrics=metrics,
                    grad_norm=whole(grad_norm),
                    losses=torch.stack(losses),
                    lr=float(run.scheduler.get_last_lr()[0]),
                    pairs_per_s=pairs_done / max(time.perf_counter() - started, 1e-9),
                )
            )
            saving = bool(cfg.save_every) and state.step % cfg.save_every == 0
            if state.step % cfg.log_every == 0 or state.step == end or saving or _evaluation_due(run, state):
                _log(run, pending, bar)
                pending = []
            if _stop_after_evaluation(run, state):
                break
            if saving:
                write_checkpoint(run.config.output_dir, run.rm, run.optimizer, run.scheduler, state, dist)
    return state


def _log(run: Run, pending: list[StepRecord], bar: Callable[[int, float, float], None]) -> None:
    """Read the pending steps back (one transfer), stop at the first non-finite loss, log the others."""
    for values in reduce_values(run.dist, read_back(pending)):
        bad = next((loss for loss in values.losses if not math.isfinite(loss)), None)
        if bad is not None:
            raise TrainingError(
                f"loss became {bad} at step {values.step}; the last good checkpoint is "
                f"{latest_checkpoint(run.config.output_dir)}. Lower train.lr or use model.precision=fp32"
            )
        run.log(values.record())
        bar(values.step, values.metrics.get("loss", float("nan")), values.pairs_per_s)


def _evaluation_due(run: Run, state: TrainState) -> bool:
    """Whether the held-out pairs are evaluated after this step (every train.eval_every steps, or at
    each epoch's end; never after the last step, which `train` evaluates)."""
    cfg = run.config.train
    steps_per_epoch = max(1, round(len(run.plan) / cfg.epochs))
    due = state.step % cfg.eval_every == 0 if cfg.eval_every else state.step % steps_per_epoch == 0
    return run.held_out is not None and due and state.step != len(run.plan)


def _stop_after_evaluation(run: Run, state: TrainState) -> bool:
    """Evaluate when due; True when early stopping says to stop."""
    if run.held_out is None or not _evaluation_due(run, state):
        return False
    metrics = evaluate_held_out(run.evaluator, run.held_out).metrics
    run.log({"step": state.step, "eval_accuracy": metrics["accuracy"], "eval_loss": metrics["loss"]})
    cfg = run.config.train
    if metrics["accuracy"] > state.best_accuracy:
        state.best_accuracy, state.evals_without_improvement = metrics["accuracy"], 0
        return False
    state.evals_without_improvement += 1
    return (
        bool(cfg.early_stopping_patience) and state.evals_without_improvement >= cfg.early_stopping_patience
    )


def evaluate_held_out(evaluator: Scorer, held_out: PairSet) -> Evaluation:
    """`evaluate` on the held-out pairs, a FlexAttention model attending with SDPA meanwhile (the same
    rewards, without compiling for each of evaluation's many shapes)."""
    implementation = attention_implementation(evaluator.rm.model)
    dense = "sdpa" if implementation in BLOCK_SPARSE_ATTENTION else implementation
    with attending_with(evaluator.rm.model, dense):
        return evaluate(evaluator, held_out.pairs)


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
