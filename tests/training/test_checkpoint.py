"""Checkpoints hold no pickles, and a run killed between a checkpoint and the next resumes to the
uninterrupted run's losses and weights, each step logged once."""

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from rmcore.config import Config, load_config
from rmcore.training.checkpoint import CHECKPOINTS, TRAINER_STATE, TRAINER_TENSORS, latest_checkpoint
from rmcore.training.metrics_log import METRICS
from rmcore.training.recipe import train


def _config(model: Path, folder: Path, out: str, *extra: str) -> Config:
    return load_config(
        None,
        [
            f"model.name_or_path={model}",
            "model.max_length=48",
            "model.precision=fp32",
            f"data.train={folder / 'train.parquet'}",
            f"data.eval={folder / 'eval.parquet'}",
            f"output_dir={folder / out}",
            "train.batch_size=16",
            "train.lr=2e-3",
            "train.save_every=3",
            *extra,
        ],
    )


def _logged_steps(out: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def test_a_run_killed_after_a_checkpoint_resumes_as_if_never_stopped(
    tiny_encoder_dir: Path, tmp_path: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given pair files, and one uninterrupted run of 8 steps
    pq.write_table(synthetic_pairs(128, seed=1), tmp_path / "train.parquet")
    pq.write_table(synthetic_pairs(32, seed=2), tmp_path / "eval.parquet")
    whole = train(_config(tiny_encoder_dir, tmp_path, "whole"), progress=False)
    assert whole["steps"] == 8

    # when a run stops after 5 steps, and is then set back to its checkpoint of step 3, as a run
    # killed during step 5 leaves it: steps 4 and 5 logged, the checkpoint of step 3 the latest
    out = tmp_path / "killed"
    train(_config(tiny_encoder_dir, tmp_path, "killed", "train.max_steps=5"), progress=False)
    (out / CHECKPOINTS / "latest").write_text("step-0000003")
    assert [step for step, _ in _logged_steps(out)] == [1, 2, 3, 4, 5]
    rest = train(_config(tiny_encoder_dir, tmp_path, "killed"), resume=True, progress=False)

    # then every step is logged once, with the uninterrupted run's losses, and the weights agree
    assert rest["steps"] == 8
    resumed, uninterrupted = _logged_steps(out), _logged_steps(tmp_path / "whole")
    assert [step for step, _ in resumed] == [step for step, _ in uninterrupted] == list(range(1, 9))
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in uninterrupted], abs=1e-6)
    a = load_file(Path(whole["model_dir"]) / "model.safetensors")
    b = load_file(Path(rest["model_dir"]) / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)

    # and a checkpoint is safetensors and JSON only: resuming unpickles nothing
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None
    files = {path.relative_to(checkpoint).as_posix() for path in checkpoint.rglob("*") if path.is_file()}
    assert {TRAINER_STATE, TRAINER_TENSORS, "weights/model.safetensors"} <= files
    assert all(name.endswith((".json", ".safetensors")) for name in files), files
    state = json.loads((checkpoint / TRAINER_STATE).read_text())
    assert state["state"]["step"] == 8 and len(state["rng"]) == 1
