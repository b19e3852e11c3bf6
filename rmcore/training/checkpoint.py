"""Checkpoints: everything a run needs to go on exactly where it stopped, written atomically, no pickles.

rmcore train --config configs/default.yaml --resume

    <output_dir>/checkpoints/
        latest                    the name of the newest complete checkpoint
        step-0000100/
            weights/              `save_pretrained` of the model (with LoRA: adapters and head only)
            trainer.safetensors   optimizer tensors and each rank's torch RNG states
            trainer.json          the position (`TrainState`), optimizer param groups, schedule,
                                  Python and NumPy RNG states

A checkpoint is written into a temporary folder and renamed, then `latest` is rewritten: a run killed
at any moment leaves the previous checkpoint intact. The two newest are kept. Whole tensors only (an
FSDP run gathers them to rank 0 first), so a checkpoint resumes under FSDP, DDP or one process alike.
"""

import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from rmcore.atomic import write_text
from rmcore.model.reward import RewardModel, quiet_transformers
from rmcore.training import TrainingError
from rmcore.training.distributed import (
    Dist,
    full_model_state,
    full_optimizer_state,
    load_model_state,
    load_optimizer_state,
)
from rmcore.training.lora import is_peft, load_adapter_state

CHECKPOINTS = "checkpoints"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"
KEEP = 2
"""Checkpoints kept: the newest, and the one before in case the newest is being written."""


@dataclass
class TrainState:
    """Where training stands: the next optimizer step, and the best held-out accuracy so far."""

    step: int = 0
    best_accuracy: float = -1.0
    evals_without_improvement: int = 0


def rng_state() -> tuple[dict[str, Any], dict[str, Tensor]]:
    """This process's random generators: Python's and NumPy's as JSON, torch's (CUDA: the current
    device's) as tensors."""
    name, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    plain = {
        "python": random.getstate(),
        "numpy": [name, np.asarray(keys).tolist(), position, has_gauss, gauss],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return plain, tensors


def _set_rng_state(plain: dict[str, Any], tensors: dict[str, Tensor]) -> None:
    version, keys, gauss = plain["python"]
    random.setstate((version, tuple(keys), gauss))
    name, numpy_keys, position, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(numpy_keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])


def _optimizer_tensors(optimizer_state: dict[str, Any]) -> dict[str, Tensor]:
    """The per-parameter tensors of an `Optimizer.state_dict()`, keyed optimizer.<index>.<name>."""
    return {
        f"optimizer.{index}.{name}": value.detach().cpu().contiguous()
        for index, values in optimizer_state.get("state", {}).items()
        for name, value in values.items()
    }


def _optimizer_state(param_groups: list[dict[str, Any]], tensors: dict[str, Tensor]) -> dict[str, Any]:
    """The inverse of `_optimizer_tensors`, with the param groups: an `Optimizer.state_dict()`."""
    state: dict[int, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
    return {"state": state, "param_groups": param_groups}


def save_checkpoint(
    out: Path,
    rm: RewardModel,
    optimizer_state: dict[str, Any],
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    state: TrainState,
    rng_per_rank: list[tuple[dict[str, Any], dict[str, Tensor]]],
    weights: dict[str, Tensor] | None = None,
) -> Path:
    """Write checkpoints/step-N atomically (a temporary folder renamed); point `latest` at it.

    Weights: `save_pretrained` of `weights` (a sharded model's, gathered by `full_model_state`), or
    of the model's own (with LoRA: the adapters and head only; the frozen base is rebuilt from
    model.name_or_path). `optimizer_state`: whole tensors (`full_optimizer_state`). `rng_per_rank`:
    every training process's `rng_state()`, in rank order.
    """
    root = out / CHECKPOINTS
    final = root / f"step-{state.step:07d}"
    tmp = root / f".step-{state.step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with quiet_transformers():
        rm.model.save_pretrained(tmp / "weights", state_dict=weights)
    tensors = _optimizer_tensors(optimizer_state)
    for rank, (_, rng_tensors) in enumerate(rng_per_rank):
        tensors.update({f"rng.{rank}.{name}": value for name, value in rng_tensors.items()})
    save_file(tensors, tmp / TRAINER_TENSORS)
    document = {
        "state": asdict(state),
        "param_groups": optimizer_state.get("param_groups", []),
        "scheduler": scheduler.state_dict(),
        "rng": [plain for plain, _ in rng_per_rank],
    }
    (tmp / TRAINER_STATE).write_bytes(orjson.dumps(document))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_text(root / "latest", final.name)
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_checkpoint(
    out: Path,
    rm: RewardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    state: TrainState,
    dist: Dist,
) -> Path | None:
    """A checkpoint of the run at `state`, from every rank: each rank's RNG state (and, under FSDP,
    the whole weights and optimizer state) goes to rank 0, which writes it. Its path on rank 0."""
    rng = dist.gather(rng_state())
    weights = full_model_state(rm.model)
    optimizer_state = full_optimizer_state(rm.model, optimizer)
    path = save_checkpoint(out, rm, optimizer_state, scheduler, state, rng, weights) if dist.is_main else None
    dist.barrier()
    return path


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
    dist: Dist,
) -> TrainState:
    """Load weights, optimizer, schedule, RNG and position from a checkpoint; the state to go on from.

    Every rank loads the same checkpoint (whole tensors; a sharded model and optimizer keep their
    shards of them) and takes its own RNG state when the checkpoint was written by as many ranks
    (else rank 0's).
    """
    if not (checkpoint / TRAINER_STATE).is_file():
        raise TrainingError(
            f"{checkpoint} has no {TRAINER_STATE} (written by an older rmcore?); start without --resume"
        )
    weights: dict[str, Tensor] = {}
    for file in sorted((checkpoint / "weights").glob("*.safetensors")):
        weights.update(load_file(file))
    if is_peft(rm.model):
        load_adapter_state(rm.model, weights)
    else:
        load_model_state(rm.model, weights)
    document = orjson.loads((checkpoint / TRAINER_STATE).read_bytes())
    tensors = load_file(checkpoint / TRAINER_TENSORS)
    load_optimizer_state(rm.model, optimizer, _optimizer_state(document["param_groups"], tensors))
    scheduler.load_state_dict(document["scheduler"])
    rank = dist.rank if len(document["rng"]) == dist.world_size else 0
    prefix = f"rng.{rank}."
    rng_tensors = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    _set_rng_state(document["rng"][rank], rng_tensors)
    return TrainState(**document["state"])


def discard_checkpoints(out: Path) -> None:
    """Delete a finished run's checkpoints: its model is saved, and they hold several times its size."""
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
