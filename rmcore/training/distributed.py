"""rmcore train --config configs/default.yaml --set train.nproc_per_node=2 [--set train.distributed=fsdp]

Several processes: one model replica each (DDP), or one model sharded between them (FSDP2); gloo
on CPU, NCCL on CUDA.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; `init_distributed` reads them and joins the process
group when WORLD_SIZE > 1 (one process, or no torchrun: nothing to join, every helper is a no-op).

Every rank builds the same step plan (deterministic per seed). Within one optimizer step, rank r
takes its share of the step's micro-batches (`shard_step`): round-robin when the step has at least
as many micro-batches as ranks, otherwise micro-batches are split between prompt groups first. A
rank with a shorter share than another runs zero-weight micro-batches to make up the difference:
every rank runs as many forward and backward passes per step, since FSDP all-gathers weights in
each of them and DDP all-reduces gradients (collectives every rank must join). Each rank scales
its micro-batch losses by weight / step total * world size: DDP and FSDP average gradients over
ranks, so their sum is the single-process gradient.

FSDP (`shard_model`): each transformer block is one unit, the root holds embeddings and head; a
unit's full weights exist only during its own forward and backward. Checkpoints and the saved model
hold full (unsharded) tensors gathered to rank 0 (`full_model_state`, `full_optimizer_state`), in
the same files as without FSDP: a run can resume under FSDP, DDP or in one process alike.
"""

import contextlib
import datetime
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from rmcore.config import TrainConfig
from rmcore.model.reward import BLOCK_SPARSE_ATTENTION, RewardModel, RewardModule, attention_implementation
from rmcore.training.compiled import DynamicRows
from rmcore.training.metrics_log import StepValues

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Dist:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False
    """True when `init_distributed` created the process group (and `shutdown` destroys it)."""

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.enabled:
            if self.device.type == "cuda":
                torch_dist.barrier(device_ids=[self.device.index or 0])
            else:
                torch_dist.barrier()

    def sum(self, value: float) -> float:
        """`value` summed over ranks (float64 all-reduce)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(tensor)
        return float(tensor.item())

    def gather(self, value: T) -> list[T]:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, value)
        return out


def init_distributed(env: Mapping[str, str] | None = None, timeout_s: float = 1800.0) -> Dist:
    """Join the process group torchrun describes in `env` (default os.environ), if WORLD_SIZE > 1.

    Backend NCCL with CUDA (device cuda:LOCAL_RANK), gloo on CPU. A process group that already
    exists (a caller's own) is used as it is and left for the caller to destroy.
    """
    env = os.environ if env is None else env
    world_size = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local_rank = int(env.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size <= 1:
        return Dist(device=device)
    owns = not torch_dist.is_initialized()
    if owns:
        torch_dist.init_process_group(
            backend="nccl" if cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=device if cuda else None,
        )
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, device=device, owns_group=owns)


def shutdown(dist: Dist) -> None:
    """Destroy the process group `init_distributed` created (no-op otherwise)."""
    if dist.owns_group and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def shard_step(
    micro_batches: Sequence[Sequence[int]], prompt_ids: Sequence[str], rank: int, world_size: int
) -> list[list[int]]:
    """The micro-batches (example indices) rank `rank` of `world_size` runs in one optimizer step.

    `micro_batches`: the step's micro-batches from the plan; `prompt_ids[i]`: example i's prompt.
    With at least `world_size` micro-batches, rank r takes micro-batches r, r + W, r + 2W, ...
    With fewer, the micro-batch with the most prompt groups is halved (between groups, never
    inside one, so the InstructGPT group mean is unchanged) until there are `world_size` of them
    or none has two groups left. Every rank gets as many micro-batches, ceil(pieces / W): a share
    that falls short ends with empty ones, each run as a zero-weight micro-batch. Deterministic:
    every rank computes every rank's share alike.
    """
    pieces = [list(mb) for mb in micro_batches]
    while len(pieces) < world_size:
        widths = [len(_groups(piece, prompt_ids)) for piece in pieces]
        widest = max(range(len(pieces)), key=lambda i: widths[i], default=-1)
        if widest < 0 or widths[widest] < 2:
            break
        groups = _groups(pieces[widest], prompt_ids)
        half = (len(groups) + 1) // 2
        pieces[widest : widest + 1] = [_flat(groups[:half]), _flat(groups[half:])]
    share = pieces[rank::world_size]
    runs = -(-len(pieces) // world_size)
    return share + [[] for _ in range(runs - len(share))]


def _flat(groups: list[list[int]]) -> list[int]:
    return [i for group in groups for i in group]


def _groups(micro_batch: Sequence[int], prompt_ids: Sequence[str]) -> list[list[int]]:
    """The micro-batch's example indices grouped by prompt, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i in micro_batch:
        groups.setdefault(prompt_ids[i], []).append(i)
    return list(groups.values())


def scorer_modules(rm: RewardModel, cfg: TrainConfig, dist: Dist, widths: int) -> tuple[nn.Module, nn.Module]:
    """`RewardModule(rm)` on `dist.device`, and what the loss calls: that module, compiled if asked.

    With several ranks and `cfg.distributed` ddp, the scorer is wrapped in DDP (rank 0's weights
    broadcast to all); with fsdp, the module is sharded in place (`shard_model`, per transformer
    block) before it is compiled, as PyTorch documents (compile the module DDP or FSDP wraps).
    `cfg.compile`, and FlexAttention always, compile it with the rows dynamic: a graph per row width
    (two where a micro-batch has a single row), of which the run can use `widths`
    (`rmcore.training.compiled`). Evaluation calls the
    module itself: sharded under FSDP, never compiled (its many shapes), outside DDP (whose forward
    broadcasts buffers).
    """
    module = RewardModule(rm)
    fsdp = dist.enabled and cfg.distributed == "fsdp"
    if fsdp:
        shard_model(module, getattr(rm.model, "_no_split_modules", None) or (), dist)
    else:
        module.to(dist.device)
    scorer: nn.Module = module
    if cfg.compile or attention_implementation(rm.model) in BLOCK_SPARSE_ATTENTION:
        # torch specializes a dimension of size 1, so single-row micro-batches get a graph of their own
        # per width; and the first call can compile twice while transformers initializes its kernels
        scorer = DynamicRows(module, max_graphs=2 * widths + 2)
    if dist.enabled and not fsdp:
        device_ids = [dist.device.index or 0] if dist.device.type == "cuda" else None
        scorer = DistributedDataParallel(scorer, device_ids=device_ids)
    return module, scorer


def gradient_sync(scorer: nn.Module, last: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP all-reduces gradients on a step's last backward only (`no_sync` before it).

    FSDP reduce-scatters after every backward: each rank keeps gradient shards only (less memory).
    """
    if isinstance(scorer, DistributedDataParallel) and not last:
        return scorer.no_sync()
    return contextlib.nullcontext()


def reduce_values(dist: Dist, values: list[StepValues]) -> list[StepValues]:
    """Steps read back on every rank, as one process would have seen them: each step's metrics summed
    over the ranks, its micro-batch losses those of every rank in rank order; gradient norm, learning
    rate and speed as this rank has them (the same on every rank, but the speed). One gather."""
    if not dist.enabled:
        return values
    summed: list[tuple[dict[str, float], list[float]]] = [({}, []) for _ in values]
    for rank_values in dist.gather([(v.metrics, v.losses) for v in values]):
        for (metrics, losses), (rank_metrics, rank_losses) in zip(summed, rank_values, strict=True):
            for key, value in rank_metrics.items():
                metrics[key] = metrics.get(key, 0.0) + value
            losses.extend(rank_losses)
    return [replace(v, metrics=m, losses=losses) for v, (m, losses) in zip(values, summed, strict=True)]


def whole(tensor: Tensor) -> Tensor:
    """A sharded result (a DTensor, e.g. FSDP's gradient norm) as one plain tensor on every rank; any
    other tensor as it is. No value is read."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


# ---------------------------------------------------------------- FSDP

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
"""Whole tensors, gathered to rank 0's CPU memory (the other ranks get empty dicts)."""


def shard_model(root: nn.Module, unit_classes: Collection[str], dist: Dist) -> None:
    """Shard `root`'s parameters between the ranks in place (FSDP2 `fully_shard`), on `dist.device`.

    Each submodule whose class is named in `unit_classes` (the transformer blocks: a Hugging Face
    model names them in `_no_split_modules`) becomes one unit, innermost first; `root` takes the
    rest (embeddings, head) and must be the module whose forward runs. A unit's weights are
    all-gathered for its forward and backward only; gradients are reduce-scattered (averaged over
    ranks) into each rank's shard. Only the shards move to the device, so the model need not fit
    one (each rank's CPU memory holds the whole model until then). Parameters stay float32: bf16
    comes from autocast, as without FSDP.
    """
    mesh = init_device_mesh(dist.device.type, (dist.world_size,))
    units = [module for module in root.modules() if type(module).__name__ in unit_classes]
    for unit in reversed(units):
        if unit is not root:
            fully_shard(unit, mesh=mesh)
    fully_shard(root, mesh=mesh)


def is_sharded(model: nn.Module) -> bool:
    """True when `model`'s parameters are FSDP shards (DTensors)."""
    return any(isinstance(param, DTensor) for param in model.parameters())


def full_model_state(model: nn.Module) -> dict[str, Tensor] | None:
    """A sharded model's full state dict: CPU tensors on rank 0, {} on the other ranks.

    None for a model that is not sharded (its own `state_dict()` is whole). Every rank must call
    it: the shards are all-gathered.
    """
    if not is_sharded(model):
        return None
    return cast(dict[str, Tensor], get_model_state_dict(model, options=_FULL))


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with whole tensors, in `Optimizer.state_dict()` form.

    For a sharded `model`, gathered to rank 0 ({} on the other ranks; every rank must call it) and
    renumbered as one process numbers parameters (in param-group order), so that a checkpoint
    written under FSDP resumes without it, and the other way round.
    """
    if not is_sharded(model):
        return optimizer.state_dict()
    named = get_optimizer_state_dict(model, optimizer, options=_FULL)
    return _numbered(dict(named)) if named else {}


def load_model_state(model: nn.Module, weights: Mapping[str, Tensor]) -> None:
    """Copy whole tensors into `model`'s parameters (into each rank's shard when sharded).

    Keys the model lacks are ignored and parameters the weights lack are kept (strict=False).
    """
    if is_sharded(model):
        options = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(model, dict(weights), options=options)
    else:
        model.load_state_dict(weights, strict=False)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a `full_optimizer_state` (every rank holds all of it); into each rank's shards when sharded."""
    if is_sharded(model):
        named = _named(state, model, optimizer)
        set_optimizer_state_dict(model, optimizer, named, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


def _numbered(named: dict[str, Any]) -> dict[str, Any]:
    """An optimizer state dict keyed by parameter name (torch.distributed.checkpoint's form) keyed by
    number instead: parameters counted across param groups in order, as `Optimizer.state_dict()` does."""
    order = [name for group in named["param_groups"] for name in group["params"]]
    number = {name: i for i, name in enumerate(order)}
    return {
        "state": {number[name]: value for name, value in named["state"].items()},
        "param_groups": [{**g, "params": [number[n] for n in g["params"]]} for g in named["param_groups"]],
    }


def _named(numbered: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The inverse of `_numbered` for `optimizer`, whose parameters are `model`'s."""
    names = {id(param): name for name, param in model.named_parameters()}
    order = [names[id(param)] for group in optimizer.param_groups for param in group["params"]]
    return {
        "state": {order[i]: value for i, value in numbered["state"].items()},
        "param_groups": [{**g, "params": [order[i] for i in g["params"]]} for g in numbered["param_groups"]],
    }
