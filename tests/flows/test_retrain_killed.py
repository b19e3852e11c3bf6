"""A retrain killed mid-training (SIGKILL, after its first checkpoint) and run again: it resumes the
checkpoint and the MLflow run, registers one version, and leaves no run RUNNING and no step twice."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from mlflow import MlflowClient
from prefect.settings import get_current_settings

from flows.retrain import retrain_flow
from rmcore.config import load_config
from rmcore.tracking import TRAINING_KEY_TAG, experiment_id, tracking_uri

ROOT = Path(__file__).resolve().parents[2]


def _kill_after_first_checkpoint(command: list[str], runs: Path, env: dict[str, str]) -> None:
    """Start `command` in a process group of its own; SIGKILL the group once a checkpoint exists."""
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    ) as child:
        deadline = time.monotonic() + 240
        while not list(runs.glob("*/checkpoints/latest")):
            if child.poll() is not None:
                raise AssertionError(f"the retrain ended before its first checkpoint: {child.stderr}")
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_a_killed_retrain_resumes_its_run_and_registers_once(
    tmp_path: Path,
    tiny_encoder_dir: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given a pipeline whose training takes a few hundred steps and checkpoints every 5
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"data:\n  lake: {tmp_path / 'lake'}\n  raw: {tmp_path / 'raw'}\n"
        f"model:\n  name_or_path: {tiny_encoder_dir}\n  max_length: 48\n  precision: fp32\n"
        "train:\n  batch_size: 4\n  lr: 2.0e-3\n  epochs: 6\n  save_every: 5\n"
        f"tracking:\n  store: {tmp_path / 'mlflow'}\n  system_metrics: false\n"
        f"output_dir: {tmp_path / 'runs'}\n"
    )
    labels = write_labels(tmp_path / "incoming" / "labels.jsonl", synthetic_pairs(200, seed=21))
    config = load_config(pipeline)

    # when the retrain flow runs in another process (on this session's Prefect API) and is killed
    # with SIGKILL as soon as training wrote its first checkpoint
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    command = [sys.executable, "-m", "flows.retrain", str(labels), "--config", str(pipeline)]
    _kill_after_first_checkpoint(command, tmp_path / "runs", env)

    # then its MLflow run is left RUNNING, as any killed process leaves it
    client = MlflowClient(tracking_uri(config.tracking))
    experiment = experiment_id(config.tracking)
    killed = client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    assert len(killed) == 1

    # when the retrain runs again
    result = retrain_flow([str(labels)], str(pipeline))

    # then it resumed the killed run (same id) and finished it, and registered one version
    assert result["trained"] and result["run_id"] == killed[0].info.run_id
    assert result["promotion"]["version"] == "1"
    assert len(client.search_model_versions("name='reward-model'")) == 1
    runs = client.search_runs([experiment])
    assert [run.info.status for run in runs] == ["FINISHED"]
    assert runs[0].data.tags[TRAINING_KEY_TAG]
    # and every optimizer step is logged once, the killed attempt's steps after its checkpoint included
    steps = [m.step for m in client.get_metric_history(result["run_id"], "train.loss")]
    assert sorted(steps) == list(range(1, result["train"]["steps"] + 1))
