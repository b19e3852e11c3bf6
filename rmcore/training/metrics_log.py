"""The training's metrics log: output_dir/metrics.jsonl, one JSON object per optimizer step and per
held-out evaluation, each with its "step". `rmcore.tracking.log_history` sends it to MLflow.

A step leaves its metrics on the device (`StepRecord`); `read_back` reads a run of them in one
transfer at a log point, so that no step waits for the device to report.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch
from torch import Tensor

from rmcore.atomic import write_text

METRICS = "metrics.jsonl"
"""The log's file name in the output directory."""


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One record as a line at the end of the log."""
    with path.open("ab") as f:
        f.write(orjson.dumps(record) + b"\n")


def forget_records_after(path: Path, step: int) -> None:
    """Keep the records of steps up to `step` only: an interrupted attempt may have logged steps after
    its last checkpoint (and half a line), and the resumed run logs those steps again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_bytes().splitlines():
        try:
            if orjson.loads(line)["step"] <= step:
                kept.append(line.decode() + "\n")
        except orjson.JSONDecodeError:
            continue
    write_text(path, "".join(kept))


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One optimizer step's metrics as the step left them: on the device, not read yet."""

    step: int
    metrics: dict[str, Tensor]
    """() float64 each: the step's loss terms and statistics, each micro-batch's weighted by its share."""
    grad_norm: Tensor
    """() the gradient norm before clipping."""
    losses: Tensor
    """(micro-batches,) each micro-batch's loss, where a non-finite one is found."""
    lr: float
    pairs_per_s: float


@dataclass(frozen=True, kw_only=True)
class StepValues:
    """A `StepRecord` read back."""

    step: int
    metrics: dict[str, float]
    grad_norm: float
    losses: list[float]
    lr: float
    pairs_per_s: float

    def record(self) -> dict[str, Any]:
        """The step's line in metrics.jsonl."""
        return {
            "step": self.step,
            **self.metrics,
            "grad_norm": self.grad_norm,
            "lr": self.lr,
            "pairs_per_s": self.pairs_per_s,
        }


def read_back(records: Sequence[StepRecord]) -> list[StepValues]:
    """The records' values, read from the device in one transfer (one host sync for all of them)."""
    if not records:
        return []
    pieces = []
    for r in records:
        pieces += [torch.stack([v.reshape(()) for v in r.metrics.values()]) if r.metrics else r.losses[:0]]
        pieces += [r.grad_norm.double().reshape(1), r.losses.double().reshape(-1)]
    flat = torch.cat([piece.double().to(records[0].losses.device) for piece in pieces]).tolist()
    values, at = [], 0
    for r in records:
        n, k = len(r.metrics), int(r.losses.numel())
        metrics = dict(zip(r.metrics, flat[at : at + n], strict=True))
        grad_norm, losses = flat[at + n], flat[at + n + 1 : at + n + 1 + k]
        values.append(
            StepValues(
                step=r.step,
                metrics=metrics,
                grad_norm=grad_norm,
                losses=losses,
                lr=r.lr,
                pairs_per_s=r.pairs_per_s,
            )
        )
        at += n + 1 + k
    return values
