"""Start a training: in this process, or as `train.nproc_per_node` processes on this node (torchrun).

rmcore train --config configs/default.yaml --set train.nproc_per_node=2
torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29400 -m rmcore.training.launch --config F

`train_processes` is what `rmcore train` and the retrain flow call. With one process it trains here.
With more, it runs `python -m torch.distributed.run --standalone --nproc_per_node N -m
rmcore.training.launch --config <output_dir>/launch.yaml [--resume]`: every rank runs `main` below
(as on several nodes, where torchrun is started by hand), rank 0 writes the summary into
output_dir/summary.json, and the launcher reads it once every process has exited. Nothing is parsed
from the processes' output, which goes to this process's stdout and stderr or to `log`.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import yaml

from rmcore.atomic import write_text
from rmcore.config import Config, ConfigError, add_override_argument, load_config
from rmcore.training import TrainingError
from rmcore.training.recipe import SUMMARY, train
from rmcore.training.summary import TrainingSummary

LAUNCH_CONFIG = "launch.yaml"
"""The config the launched processes read, in the output directory."""


def under_torchrun() -> bool:
    """True in a process torchrun started (it sets LOCAL_RANK for every rank)."""
    return "LOCAL_RANK" in os.environ


def threads_per_process(processes: int) -> int:
    """CPU threads for each of `processes` ranks on this machine: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // processes)


def torchrun_command(config_file: str, processes: int, resume: bool) -> list[str]:
    """The torchrun command that starts `processes` ranks of `main` on this node."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", "rmcore.training.launch", "--config", config_file, *(["--resume"] if resume else []),
    ]  # fmt: skip


def train_processes(
    config: Config, resume: bool = False, progress: bool = True, log: Callable[[str], None] | None = None
) -> TrainingSummary:
    """Train as `config.train.nproc_per_node` processes (one: in this process); the summary.

    `log`: where the processes' output lines go (default: this process's stdout and stderr).
    """
    processes = config.train.nproc_per_node
    if processes == 1 or under_torchrun():
        return train(config, resume=resume, progress=progress)
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / LAUNCH_CONFIG, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    (out / SUMMARY).unlink(missing_ok=True)
    command = torchrun_command(str(out / LAUNCH_CONFIG), processes, resume)
    threads = os.environ.get("OMP_NUM_THREADS") or str(threads_per_process(processes))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    if log is None:
        status = subprocess.run(command, env=env, check=False).returncode
    else:
        log(f"launching {' '.join(command)}")
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                log(line.rstrip())
        status = child.returncode
    if status != 0:
        raise TrainingError(
            f"the {processes} training processes failed (torchrun exit status {status}); "
            "their errors are in the output above"
        )
    summary: TrainingSummary = orjson.loads((out / SUMMARY).read_bytes())
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """One rank of a torchrun training: train with the config; errors are one line naming the rank."""
    parser = argparse.ArgumentParser(
        prog="python -m rmcore.training.launch", description="One training process (rank) under torchrun."
    )
    parser.add_argument("--config", type=Path, help="pipeline config YAML (default: built-in defaults)")
    add_override_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    try:
        train(load_config(args.config, args.overrides), resume=args.resume, progress=False)
    except (ConfigError, TrainingError, FileNotFoundError, ValueError, OSError) as error:
        print(f"rmcore train (rank {os.environ.get('RANK', '0')}): error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
