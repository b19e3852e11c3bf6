"""The README's deployment path, for real, on loopback: a Prefect server, a process work pool and worker,
`prefect deploy --all` of prefect.yaml, and an ad hoc `prefect deployment run ... --watch` that retrains."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.error import URLError

import orjson
import pyarrow as pa
import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"no healthy Prefect server at {url} after {timeout_s} s")


def _default_sigint() -> None:
    """A background process inherits SIGINT as ignored; Prefect turns SIGTERM into SIGINT, so restore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prefect_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a free loopback port with its own PREFECT_HOME; the environment to reach it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PWD": str(ROOT),
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        _wait_healthy(env["PREFECT_API_URL"], server)
        yield env
    finally:
        _stop(server)
        log.close()


def _prefect(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(2 * TIMEOUT_S)
def test_readme_deployment_path_retrains_through_a_worker(
    prefect_env: dict[str, str],
    tmp_path: Path,
    tiny_encoder_dir: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given a server, a process pool running one flow at a time, prefect.yaml's deployments and a worker
    _prefect(prefect_env, "work-pool", "create", "rmcore", "--type", "process")
    _prefect(prefect_env, "work-pool", "set-concurrency-limit", "rmcore", "1")
    deployed = _prefect(prefect_env, "--no-prompt", "deploy", "--all")
    assert "retrain/nightly" in deployed and "retrain/adhoc" in deployed
    schedules = _prefect(prefect_env, "deployment", "schedule", "ls", "retrain/nightly")
    assert "0 2 * * *" in schedules
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "rmcore"],
        env=prefect_env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT, preexec_fn=_default_sigint,
    )  # fmt: skip
    labels = write_labels(tmp_path / "incoming" / "labels.jsonl", synthetic_pairs(120, seed=21))
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"data:\n  lake: {tmp_path / 'lake'}\n  raw: {tmp_path / 'raw'}\n"
        f"model:\n  name_or_path: {tiny_encoder_dir}\n  max_length: 48\n  precision: fp32\n"
        "train:\n  lr: 2.0e-3\n  save_every: 1000\n"
        f"tracking:\n  store: {tmp_path / 'mlflow'}\n  system_metrics: false\n"
        f"output_dir: {tmp_path / 'runs'}\n"
    )
    try:
        # when an ad hoc retraining is requested as the README shows, and watched to the end
        _prefect(
            prefect_env,
            "deployment", "run", "retrain/adhoc",
            "-p", f"paths={orjson.dumps([str(labels)]).decode()}",
            "-p", f"config_path={config}",
            "--watch", "--watch-interval", "1", "--watch-timeout", str(TIMEOUT_S),
        )  # fmt: skip
    finally:
        _stop(worker)
        worker_log.close()

    # then the worker ran the flow to completion and the store holds a champion trained on those labels
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("reward-model", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert run.data.metrics["test.accuracy"] > 0
