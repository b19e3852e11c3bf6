"""`bench/gpu_check.py --dry-run`: the GPU check's own code, on the CPU with a tiny model (about 80 s with
../shared/data's train section), so that the one command a GPU machine runs is known to work before
one is lent."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.mark.slow
def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path: Path) -> None:
    # given the real data sets when this checkout has them (the train section is skipped otherwise)
    has_data = (DATA / "hh-rlhf/harmless-base/test.jsonl.gz").exists() and (
        DATA / "oasst-en100/en_100_tree.jsonl"
    ).exists()

    # when the check runs with --dry-run
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu_check.py"),
            "--dry-run",
            "--json",
            str(tmp_path / "out.json"),
            "--markdown",
            str(tmp_path / "out.md"),
            *(["--data", str(DATA), "--max-pairs", "48"] if has_data else []),
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
    # and at 16 and at 64 pairs a step every mode trained its steps (no flex on the CPU), with no
    # kernel-time figure on the CPU and torch's compile counters read around each mode
    assert set(result["harness"]) == {"16", "64"}
    for modes in result["harness"].values():
        assert set(modes) == {"shared", "separate", "padded"}, modes
        for m in modes.values():
            assert m["steps"] == 2 and m["pairs_per_s"] > 0 and m["mfu"] > 0, m
            assert m["gpu_busy"] is None and m["host_syncs_per_step"] is None and m["profiled_steps"] == 2
            assert isinstance(m["recompiles"], int) and isinstance(m["compiled_graphs"], int)
        # sharing prompts encoded fewer tokens than the sequences hold; widths come in buckets of 8
        assert modes["shared"]["tokens_encoded"] < modes["shared"]["tokens_alone"]
        assert modes["separate"]["tokens_encoded"] == modes["separate"]["tokens_alone"]
        assert modes["shared"]["width_multiple"] == 8 and modes["padded"]["width_multiple"] == 1
        # and the TRL-style step computes the rankings' expanded pairs, padded: more than either
        assert modes["padded"]["tokens_computed"] > modes["separate"]["tokens_computed"]
    assert set(result["speedups"]) == {"16", "64"}
    # and one DDP step and one FSDP step on a one-rank group (gloo) gave the plain step's loss and gradients
    one_rank = result["one_rank"]
    assert one_rank["backend"] == "gloo" and one_rank["match"]
    assert one_rank["ddp"]["loss"] == one_rank["plain"]["loss"]
    # and `rmcore train` ran on both lakes, sharing off and auto (sdpa: no flex on the CPU)
    train = result["train"]
    if not has_data:
        assert train == {"skipped": "no --data"}
    else:
        runs = {(r["data"], r["share_prompt"]): r for r in train["runs"]}
        assert set(runs) == {(d, s) for d in ("hh", "oasst") for s in ("off", "auto")}
        for run in runs.values():
            assert "error" not in run and "skipped" not in run, run
            assert run["steps"] == 3 and run["pairs_per_s"] > 0 and run["attention"] == "sdpa"
            assert 0 <= run["held_out_accuracy"] <= 1 and run["width_multiple"] == 8
            assert all(w % 8 == 0 for w in run["widths"]) and run["shapes"] >= 1
        assert runs["hh", "auto"]["padding"] < runs["hh", "off"]["padding"]
        assert train["model"]["vocab_size"] == 30522
    # and the markdown holds the harness table and the train table
    text = (tmp_path / "out.md").read_text()
    assert "| 64 | padded |" in text and ("| hh | auto | sdpa |" in text or not has_data)
