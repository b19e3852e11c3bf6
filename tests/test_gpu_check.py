"""`bench/gpu_check.py --dry-run`: the GPU check's own code, on the CPU with a tiny model, in seconds, so
that the one command a GPU machine runs is known to work before one is lent."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path: Path) -> None:
    # when the check runs with --dry-run
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu_check.py"),
            "--dry-run",
            "--json",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # then it succeeds and prints one JSON object, also written to the file
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "out.json").read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    # and every mode trained its steps; sharing prompts encoded fewer tokens than the sequences hold
    modes = result["modes"]
    assert set(modes) == {"shared", "separate", "padded"}
    assert all(m["steps"] == 2 and m["pairs_per_s"] > 0 and m["mfu"] > 0 for m in modes.values())
    assert modes["shared"]["tokens_encoded"] < modes["shared"]["tokens_alone"]
    assert modes["separate"]["tokens_encoded"] == modes["separate"]["tokens_alone"]
    # and the TRL-style step computes the rankings' expanded pairs, padded: more than either
    assert modes["padded"]["tokens_computed"] > modes["separate"]["tokens_computed"]
    # and one DDP step and one FSDP step on a one-rank group (gloo) gave the plain step's loss and gradients
    one_rank = result["one_rank"]
    assert one_rank["backend"] == "gloo" and one_rank["match"]
    assert one_rank["ddp"]["loss"] == one_rank["plain"]["loss"]
