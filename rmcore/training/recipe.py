"""The training recipe: a reward model r(x, y) fit to human preference pairs by a ranking loss.

rmcore train --config configs/default.yaml [--set KEY=VALUE ...] [--resume] [--json]

    build   the reward model, the tokenized examples, the step plan, the optimizer and schedule
    fit     the loop (rmcore.training.loop): for each optimizer step, micro-batches -> loss_step ->
            backward; clip, step, schedule; log points, periodic evaluation, early stopping and
            atomic checkpoints
    finish  save the model (safetensors, tokenizer, rmcore.json with reward statistics), evaluate it
            and write the summary (output_dir/summary.json)

Every rank of a torchrun run executes `train` (rmcore.training.launch starts them); rank 0 alone
writes files. With `model.lora` set, peft adapters and the scalar head train; the model directory
holds the merged full model (loadable without peft) and the adapters + head in `adapter/`.
"""

import hashlib
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from torch import nn

from rmcore import __version__
from rmcore.atomic import write_text
from rmcore.config import Config, ModelConfig, TrainConfig
from rmcore.data.pairs import PairSet, load_pairs, shared_prompts
from rmcore.model.batching import PairExample, RankingExample, pair_count
from rmcore.model.inference import Scorer, autocast_dtype, pair_token_ids
from rmcore.model.plan import plan_batches
from rmcore.model.reward import (
    BLOCK_SPARSE_ATTENTION,
    RewardModel,
    attention_implementation,
    build_reward_model,
)
from rmcore.model.rows import SharePolicy
from rmcore.model.saved import ADAPTER_DIR, MODEL_DIR, ModelMetadata, publishing, write_model
from rmcore.model.tokenize import encode_many, identical_after_truncation
from rmcore.training import TrainingError
from rmcore.training.checkpoint import CHECKPOINTS, TrainState, latest_checkpoint, restore, write_checkpoint
from rmcore.training.compiled import compilations
from rmcore.training.distributed import (
    Dist,
    full_model_state,
    init_distributed,
    scorer_modules,
    shutdown,
)
from rmcore.training.feed import Collation
from rmcore.training.loop import Examples, Run, evaluate_held_out, fit
from rmcore.training.lora import is_peft, merged, with_lora
from rmcore.training.metrics_log import METRICS, forget_records_after
from rmcore.training.optim import build_optimizer, build_scheduler
from rmcore.training.summary import TrainingSummary

SUMMARY = "summary.json"
"""The training summary `train` returns, also written by rank 0 into the output directory."""

# ---------------------------------------------------------------- build


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally insist on deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def check_device(cfg: ModelConfig, device: torch.device) -> None:
    """Refuse, before anything loads, what cannot train on `device`."""
    if cfg.attention in BLOCK_SPARSE_ATTENTION and device.type != "cuda":
        raise TrainingError(
            f"model.attention={cfg.attention} trains on CUDA only: FlexAttention has no backward pass on "
            f"the {device.type.upper()}; use model.attention=auto (SDPA here) or sdpa"
        )


def build_model(cfg: ModelConfig, device: torch.device) -> RewardModel:
    """The reward model of `cfg` to train on `device`, dropout off unless asked; with `cfg.lora`,
    wrapped in peft adapters.

    Dropout goes before the adapters are added, so LoRA's own dropout (`lora.dropout`) stays.
    """
    rm = build_reward_model(cfg, device)
    if cfg.disable_dropout:
        for module in rm.model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    return with_lora(rm, cfg.lora) if cfg.lora is not None else rm


def build_examples(rm: RewardModel, data: PairSet, listwise: bool, same_cut: bool = False) -> Examples:
    """Token ids of every pair (and, for the listwise loss, every ranking of K > 2); with `same_cut`,
    a long prompt cut alike for all its pairs' responses, and for all of a ranking's.

    A pair that truncation made identical has no signal: it is counted and left out.
    """
    pairs = data.pairs
    chosen, rejected = pair_token_ids(rm, pairs, same_cut)
    items: list[PairExample | RankingExample] = []
    for prompt_id, c, r, p, m in zip(
        pairs.column("prompt_id").to_pylist(),
        chosen,
        rejected,
        pairs.column("p_chosen").to_pylist(),
        pairs.column("margin").to_pylist(),
        strict=True,
    ):
        if not identical_after_truncation(c, r):
            items.append(PairExample(prompt_id=prompt_id, chosen=c, rejected=r, p_chosen=float(p), margin=m))
    n_pairs = len(items)
    rankings = data.rankings if listwise else data.rankings.slice(0, 0)
    for row in rankings.select(["prompt_id", "prompt", "responses", "ranks"]).to_pylist():
        responses = encode_many(
            rm, [row["prompt"]] * len(row["responses"]), row["responses"], same_cut=same_cut
        )
        if len({tuple(ids) for ids in responses}) == len(responses):
            items.append(RankingExample(prompt_id=row["prompt_id"], responses=responses, ranks=row["ranks"]))
    return Examples(
        items=items,
        pairs=n_pairs,
        rankings=len(items) - n_pairs,
        identical_after_truncation=pairs.num_rows - n_pairs,
    )


def width_multiple(cfg: TrainConfig, device: torch.device) -> int:
    """What row widths are padded up to a multiple of: `cfg.width_multiple`, or 128 on CUDA (kernels'
    plans and compiled graphs are per shape there) and 1 elsewhere (padding only costs compute)."""
    if cfg.width_multiple is not None:
        return cfg.width_multiple
    return 128 if device.type == "cuda" else 1


def build_plan(
    examples: Examples, cfg: TrainConfig, share: SharePolicy | None, multiple: int = 1
) -> list[list[list[int]]]:
    """Optimizer steps -> micro-batches -> example indices, over all epochs (fractions allowed);
    micro-batches fit cfg.max_tokens in the rows `share` lays out, widths a multiple of `multiple`."""
    plan: list[list[list[int]]] = []
    epoch = 0
    while True:
        steps = plan_batches(
            examples.items,
            cfg.batch_size,
            cfg.max_tokens,
            cfg.seed + epoch,
            cfg.keep_prompts_together,
            share=share,
            bucketing=cfg.bucketing,
            width_multiple=multiple,
        )
        remaining = math.ceil(cfg.epochs * len(steps)) - epoch * len(steps)
        plan.extend(steps[: max(0, remaining)])
        epoch += 1
        if remaining <= len(steps):
            return plan


# ---------------------------------------------------------------- finish


def save_model(
    out: Path,
    rm: RewardModel,
    config: Config,
    metrics: dict[str, Any],
    data_hash: str,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """The model directory `out/model` (see rmcore.model.saved), published whole; its path.

    `metrics`: the held-out evaluation, whose reward mean and std go into the metadata; `weights`: a
    sharded model's whole state dict (`full_model_state`), default the model's own. A LoRA model is
    saved twice: its adapters and head in `adapter/`, and merged into the backbone as the
    directory's full model, which plain transformers and `rmcore score` load without peft.
    """
    final = out / MODEL_DIR
    stats = metrics.get("rewards", {}).get("all", {})
    with publishing(final) as tmp:
        lora = is_peft(rm.model)
        saved = merged(rm, tmp / ADAPTER_DIR) if lora else rm
        metadata = ModelMetadata(
            rendering=rm.rendering,
            pooling=rm.pooling,
            max_length=rm.max_length,
            padding_side=rm.tokenizer.padding_side,
            reward_mean=stats.get("mean"),
            reward_std=stats.get("std"),
            train_data_hash=data_hash,
            lora_adapter=ADAPTER_DIR if lora else None,
            config=config.model_dump(mode="json"),
        )
        write_model(tmp, saved, metadata, weights)
    return final


def training_key(config: Config, data_hash: str) -> str:
    """What a trained model depends on: rmcore's version, the config (less where outputs go and
    tracking) and the content hash of its data; blake2b-128 hex. Equal keys train the same model."""
    settings = config.model_dump(mode="json", exclude={"output_dir", "tracking"})
    document = {"rmcore": __version__, "config": settings, "data": data_hash}
    return hashlib.blake2b(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def keyed_output(config: Config, key: str) -> Config:
    """`config` training into output_dir/<the key's first 16 hex digits>: one folder per training key,
    so the model of a cached training stays where it was made, and an interrupted one resumes there."""
    return config.model_copy(update={"output_dir": config.output_dir / key[:16]})


def train(config: Config, resume: bool = False, progress: bool = True) -> TrainingSummary:
    """Build, fit, save and evaluate; the summary (JSON-ready), also in output_dir/summary.json.

    Under torchrun (WORLD_SIZE > 1) every rank runs this; the process group lives for this call.
    """
    dist = init_distributed()
    try:
        return _train(config, dist, resume, progress)
    finally:
        shutdown(dist)


def _train(config: Config, dist: Dist, resume: bool, progress: bool) -> TrainingSummary:
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    check_device(config.model, dist.device)
    seed_everything(config.train.seed, config.train.deterministic)
    dtype = autocast_dtype(config.model.precision, dist.device)
    rm = build_model(config.model, dist.device)
    multiple = width_multiple(config.train, dist.device)
    # a row is never wider than a micro-batch's budget: the widths the run can use
    module, scorer = scorer_modules(rm, config.train, dist, widths=-(-config.train.max_tokens // multiple))
    scratch = out / "data" if dist.is_main else out / "data" / f"rank-{dist.rank}"
    train_set = load_pairs(config.data.train, "train", config.data, scratch / "train")
    held_out = _held_out(config, scratch)
    examples = build_examples(rm, train_set, config.loss.listwise, config.model.prompt_cut == "per_prompt")
    if not examples.items:
        raise TrainingError(f"no training pairs in {train_set.origin}")
    plan = build_plan(examples, config.train, rm.share, multiple)
    optimizer = build_optimizer(rm.model, config.train)  # over the shards under FSDP
    scheduler = build_scheduler(optimizer, config.train, len(plan))
    state = TrainState()
    checkpoint_dir = latest_checkpoint(out) if resume else None
    if resume and checkpoint_dir is None:
        raise TrainingError(f"--resume: no checkpoint under {out / CHECKPOINTS}; start without --resume")
    if checkpoint_dir is not None:
        state = restore(checkpoint_dir, rm, optimizer, scheduler, dist)
        if dist.is_main:
            forget_records_after(out / METRICS, state.step)
    elif dist.enabled:
        torch.manual_seed(config.train.seed + dist.rank)  # same weights (built above), own dropout
    if checkpoint_dir is None and dist.is_main:
        (out / METRICS).unlink(missing_ok=True)
    evaluator = Scorer(
        rm=rm, module=module, dtype=dtype, device=dist.device, max_tokens=config.train.max_tokens, ranks=dist
    )
    run = Run(
        config=config,
        rm=rm,
        scorer=scorer,
        evaluator=evaluator,
        examples=examples,
        plan=plan,
        optimizer=optimizer,
        scheduler=scheduler,
        held_out=held_out,
        dtype=dtype,
        dist=dist,
        collation=Collation(
            pad_id=rm.tokenizer.pad_token_id if rm.tokenizer.pad_token_id is not None else 0,
            padding_side="left" if rm.tokenizer.padding_side == "left" else "right",
            share=rm.share,
            width_multiple=multiple,
        ),
    )
    started, start_step, compiled = time.perf_counter(), state.step, compilations()
    state = fit(run, state, progress)
    seconds = time.perf_counter() - started
    compiled = compilations().since(compiled)
    write_checkpoint(out, rm, optimizer, scheduler, state, dist)
    metrics = evaluate_held_out(evaluator, held_out).metrics if held_out else {}
    shapes = sorted({tuple(shape) for rank in dist.gather(sorted(run.tokens.shapes)) for shape in rank})
    weights = full_model_state(rm.model)
    trained_pairs = sum(
        pair_count(examples.items[i]) for step in plan[start_step : state.step] for mb in step for i in mb
    )
    summary: TrainingSummary = {
        "model_dir": str(out / MODEL_DIR),
        "steps": state.step,
        "train_pairs": examples.pairs,
        "train_rankings": examples.rankings,
        "identical_after_truncation": examples.identical_after_truncation,
        "held_out_prompts_in_train": shared_prompts(train_set, held_out) if held_out else 0,
        "train_seconds": seconds,
        "train_pairs_per_s": trained_pairs / max(seconds, 1e-9),
        **run.tokens.summary(dist.sum),
        "shapes": len(shapes),
        "widths": sorted({width for _, width in shapes}),
        "width_multiple": multiple,
        "attention": attention_implementation(rm.model),
        "compiled_graphs": compiled.graphs,
        "recompiles": compiled.recompiles,
        "precision": str(dtype).removeprefix("torch.") if dtype else "float32",
        "device": dist.device.type,
        "world_size": dist.world_size,
        "eval": metrics,
    }
    if dist.is_main:
        save_model(out, rm, config, metrics, train_set.content_hash, weights)
        write_text(out / SUMMARY, orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    # the last collective, so that the ranks tear the process group down together: with collectives
    # after it and rank 0 still writing, a gloo rank was aborted at exit ("terminate called without an
    # active exception") in 1 of 20 two-process FSDP runs; 0 of 30 since
    dist.barrier()
    return summary


def _held_out(config: Config, scratch: Path) -> PairSet | None:
    """The evaluation pairs: data.eval, or the validation split of the training lake."""
    if config.data.eval is not None:
        return load_pairs(config.data.eval, "validation", config.data, scratch / "eval")
    source = config.data.train
    if source is not None and not source.is_dir():
        return None
    held_out = load_pairs(source, "validation", config.data, scratch / "eval")
    return held_out if held_out.pairs.num_rows else None
