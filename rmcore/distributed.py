"""torchrun --nproc_per_node 2 -m rmcore.train --config configs/default.yaml

Several processes, one model replica each (DDP): gloo on CPU, NCCL on CUDA.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; `init_distributed` reads them and joins the process
group when WORLD_SIZE > 1 (one process, or no torchrun: nothing to join, every helper is a no-op).

Every rank builds the same step plan (deterministic per seed). Within one optimizer step, rank r
takes its share of the step's micro-batches (`shard_step`): round-robin when the step has at least
as many micro-batches as ranks, otherwise micro-batches are split between prompt groups first, and
a rank left without work runs a zero-weight micro-batch so that it still joins the gradient
all-reduce (DDP never hangs). Each rank scales its micro-batch losses by weight / step total *
world size: DDP averages gradients over ranks, so their sum is the single-process gradient.
"""

import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as torch_dist

T = TypeVar("T")


@dataclass(frozen=True)
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
    return Dist(rank, world_size, local_rank, device, owns)


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
    or none has two groups left. The result may then be empty for some ranks: such a rank runs a
    zero-weight micro-batch. Deterministic: every rank computes every rank's share alike.
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
    return pieces[rank::world_size]


def _flat(groups: list[list[int]]) -> list[int]:
    return [i for group in groups for i in group]


def _groups(micro_batch: Sequence[int], prompt_ids: Sequence[str]) -> list[list[int]]:
    """The micro-batch's example indices grouped by prompt, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i in micro_batch:
        groups.setdefault(prompt_ids[i], []).append(i)
    return list(groups.values())
