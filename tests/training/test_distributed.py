"""Multi-process training: how a step's micro-batches are shared, and `rmcore train` with
train.nproc_per_node=2 (torchrun, gloo, 2 CPU processes) giving the weights of one process, with DDP
and with FSDP.

python -m pytest tests/training/test_distributed.py
"""

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rmcore.config import Config, ConfigError, DataConfig, load_config
from rmcore.data.pairs import load_pairs
from rmcore.evaluation.evaluate import evaluate
from rmcore.model.inference import load_trained
from rmcore.training.distributed import Dist, init_distributed, shard_step
from rmcore.training.recipe import build_examples, build_model, build_plan, train

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- sharing one step between ranks


def test_a_step_with_enough_micro_batches_is_dealt_round_robin() -> None:
    # given 5 micro-batches of one prompt each
    step = [[0], [1], [2], [3], [4]]
    prompts = ["a", "b", "c", "d", "e"]

    # when 2 ranks share them / then rank 0 takes micro-batches 0, 2, 4 and rank 1 takes 1, 3, then
    # an empty one (a zero-weight micro-batch): both run 3 forward and backward passes
    assert shard_step(step, prompts, 0, 2) == [[0], [2], [4]]
    assert shard_step(step, prompts, 1, 2) == [[1], [3], []]


def test_one_micro_batch_is_split_between_prompt_groups_never_inside_one() -> None:
    # given one micro-batch whose examples belong to prompts a, b, a, c (a's two pairs apart)
    step = [[0, 1, 2, 3]]
    prompts = ["a", "b", "a", "c"]

    # when 2 ranks share it / then the groups [0, 2], [1], [3] are halved: 2 groups, then 1
    assert shard_step(step, prompts, 0, 2) == [[0, 2, 1]]
    assert shard_step(step, prompts, 1, 2) == [[3]]


def test_the_widest_micro_batch_is_halved_until_every_rank_has_one() -> None:
    # given micro-batches [0, 1, 2] (prompts a, b, c) and [3] (prompt d), and 4 ranks
    step = [[0, 1, 2], [3]]
    prompts = ["a", "b", "c", "d"]

    # when they are shared / then [0, 1, 2] -> [0, 1] + [2], then [0, 1] -> [0] + [1]
    shares = [shard_step(step, prompts, rank, 4) for rank in range(4)]
    assert shares == [[[0]], [[1]], [[2]], [[3]]]


def test_a_rank_gets_nothing_when_the_step_has_fewer_prompt_groups_than_ranks() -> None:
    # given a step holding the two pairs of one prompt / when 2 ranks share it
    # then rank 0 runs it whole and rank 1 gets an empty micro-batch (run with weight zero)
    assert shard_step([[0, 1]], ["a", "a"], 0, 2) == [[0, 1]]
    assert shard_step([[0, 1]], ["a", "a"], 1, 2) == [[]]


def test_every_example_is_run_once_by_exactly_one_rank() -> None:
    # given random steps of random prompt groups
    rng = random.Random(0)
    for _ in range(200):
        prompts = [rng.choice("abcdef") for _ in range(rng.randint(1, 12))]
        order = list(range(len(prompts)))
        rng.shuffle(order)
        cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
        step = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
        world = rng.randint(1, 5)

        # when the ranks take their shares
        shares = [shard_step(step, prompts, rank, world) for rank in range(world)]

        # then each example is in exactly one micro-batch, and every rank runs as many micro-batches
        seen = sorted(i for share in shares for mb in share for i in mb)
        assert seen == sorted(order)
        assert len({len(share) for share in shares}) == 1
        # and a prompt's examples within one planned micro-batch stay with one rank
        owner = {i: rank for rank, share in enumerate(shares) for mb in share for i in mb}
        for mb in step:
            for prompt in {prompts[i] for i in mb}:
                assert len({owner[i] for i in mb if prompts[i] == prompt}) == 1
        # and one rank alone (world 1) gets the plan's micro-batches unchanged
        assert shard_step(step, prompts, 0, 1) == step


def test_fsdp_with_lora_is_refused_before_step_0() -> None:
    # given LoRA adapters and FSDP sharding / when the config loads / then it names both and the fix
    with pytest.raises(ConfigError, match=r"fsdp does not train LoRA adapters.*use train\.distributed ddp"):
        load_config(None, ["train.distributed=fsdp", "model.lora.r=4"])
    # and each alone is accepted
    assert load_config(None, ["train.distributed=fsdp"]).train.distributed == "fsdp"
    assert load_config(None, ["model.lora.r=4"]).train.distributed == "ddp"


def test_without_torchrun_there_is_one_process_and_no_group() -> None:
    # given no torchrun variables / when the trainer asks where it stands / then rank 0 of 1
    dist = init_distributed({})
    assert (dist.rank, dist.world_size, dist.enabled, dist.is_main) == (0, 1, False, True)
    assert dist.sum(2.5) == 2.5 and dist.gather("x") == ["x"]
    assert Dist().device.type == "cpu"


# ---------------------------------------------------------------- torchrun, 2 processes, gloo


@pytest.fixture(scope="module")
def setup(
    tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory, synthetic_pairs: Callable[..., pa.Table]
) -> dict[str, Path]:
    """The tiny encoder without dropout (ranks draw other masks than one process), and pair files."""
    folder = tmp_path_factory.mktemp("distributed")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(folder / "model")
    # 14 prompts, every third with two pairs: 19 pairs
    pq.write_table(synthetic_pairs(14, seed=1, filler=(2, 8), two_every=3), folder / "train.parquet")
    pq.write_table(synthetic_pairs(6, seed=2, filler=(2, 8), two_every=3), folder / "eval.parquet")
    return {"model": folder / "model", "train": folder / "train.parquet", "eval": folder / "eval.parquet"}


def _overrides(setup: dict[str, Path], out: Path) -> list[str]:
    return [
        f"model.name_or_path={setup['model']}",
        "model.max_length=48",
        "model.precision=fp32",
        f"data.train={setup['train']}",
        f"data.eval={setup['eval']}",
        "loss.centering=0.01",  # without it the classifier bias has a zero gradient (see _assert_same)
        "train.batch_size=8",
        "train.max_tokens=200",
        "train.epochs=2",
        "train.lr=2e-3",
        "train.save_every=2",
        "train.eval_every=2",
        f"output_dir={out}",
    ]


def _config(setup: dict[str, Path], out: Path) -> Config:
    return load_config(None, _overrides(setup, out))


def _torchrun(setup: dict[str, Path], out: Path, *extra: str, resume: bool = False) -> dict[str, object]:
    """`rmcore train ... --set train.nproc_per_node=2 [--resume] --json` on CPU (gloo); its summary."""
    sets = [arg for item in [*_overrides(setup, out), *extra] for arg in ("--set", item)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rmcore.cli", "train", *sets, "--set", "train.nproc_per_node=2"]
    done = subprocess.run(
        [*command, *(["--resume"] if resume else []), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout  # the launcher alone prints
    result: dict[str, object] = json.loads(lines[0])
    return result


def _steps(out: Path) -> list[tuple[int, float, float]]:
    """(step, loss, gradient norm) of each logged optimizer step."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in records if "loss" in r]


def _assert_same_weights(a_dir: Path, b_dir: Path) -> None:
    """Equal weights within 1e-4, except the attention key biases.

    A key bias adds q.b_k to every score of a query's softmax, which the softmax ignores: its gradient
    is exactly zero in exact arithmetic, float noise in practice, and AdamW's normalization turns
    noise into lr-sized steps that differ between any two summation orders.
    """
    a, b = load_file(a_dir / "model.safetensors"), load_file(b_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        if not name.endswith("attention.self.key.bias"):
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-4, msg=name)


@pytest.fixture(scope="module")
def one_process(setup: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("one_process")
    return train(_config(setup, out), progress=False) | {"out": out}


def test_the_plan_exercises_every_way_of_sharing_a_step(setup: dict[str, Path], tmp_path: Path) -> None:
    # given the plan of the torchrun runs below (every rank builds the same one)
    config = _config(setup, tmp_path)
    rm = build_model(config.model, torch.device("cpu"))
    examples = build_examples(rm, load_pairs(config.data.train, "train", config.data, tmp_path), False)
    plan = build_plan(examples, config.train, rm.share)
    prompts = [e.prompt_id for e in examples.items]

    # then it has steps of 3 micro-batches (2 for rank 0, 1 for rank 1), a step of one micro-batch
    # split between prompts, and a step of one prompt (rank 1 runs a zero-weight micro-batch)
    groups = [len({prompts[i] for mb in step for i in mb}) for step in plan]
    assert any(len(step) == 3 for step in plan)
    assert any(len(step) == 1 and g >= 2 for step, g in zip(plan, groups, strict=True))
    assert any(g == 1 for g in groups)
    assert len(plan) == 6


def _assert_trains_like_one_process(
    one_process: dict[str, object], run: dict[str, object], out: Path
) -> None:
    """Same steps, losses and gradient norms (rank 0's log), same final weights, same held-out metrics.

    The gradient norm catches a wrong loss scale, which AdamW's updates would hide.
    """
    assert run["steps"] == one_process["steps"] == 6 and run["world_size"] == 2
    one, two = _steps(Path(str(one_process["out"]))), _steps(out)
    assert [s for s, _, _ in two] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss, _ in two] == pytest.approx([loss for _, loss, _ in one], abs=1e-5)
    assert [norm for _, _, norm in two] == pytest.approx([norm for _, _, norm in one], abs=1e-4)
    _assert_same_weights(Path(str(one_process["model_dir"])), Path(str(run["model_dir"])))
    one_eval, two_eval = one_process["eval"], run["eval"]
    assert isinstance(one_eval, dict) and isinstance(two_eval, dict)
    assert two_eval["accuracy"] == one_eval["accuracy"]
    assert two_eval["loss"] == pytest.approx(one_eval["loss"], abs=1e-4)


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(
    setup: dict[str, Path], one_process: dict[str, object], tmp_path: Path
) -> None:
    # given one process trained in this process (fixture) / when torchrun trains 2 processes (gloo)
    two = _torchrun(setup, tmp_path / "two")

    # then they train as one process did, held-out evaluation (scored half by each rank) included
    _assert_trains_like_one_process(one_process, two, tmp_path / "two")


@pytest.mark.slow
def test_two_processes_resume_where_they_stopped(
    setup: dict[str, Path], one_process: dict[str, object], tmp_path: Path
) -> None:
    # given 2 processes stopped after 3 steps (the checkpoint of step 2, then the final one of 3)
    first = _torchrun(setup, tmp_path / "run", "train.max_steps=3")
    assert first["steps"] == 3

    # when 2 processes resume from it (each loads the same checkpoint)
    rest = _torchrun(setup, tmp_path / "run", resume=True)

    # then they end where one uninterrupted process ends
    assert rest["steps"] == 6
    assert [s for s, _, _ in _steps(tmp_path / "run")] == [1, 2, 3, 4, 5, 6]
    _assert_same_weights(Path(str(one_process["model_dir"])), Path(str(rest["model_dir"])))


# ---------------------------------------------------------------- torchrun, 2 processes, FSDP (gloo)


@pytest.fixture(scope="module")
def fsdp_run(setup: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("fsdp")
    return _torchrun(setup, out, "train.distributed=fsdp") | {"out": out}


@pytest.mark.slow
def test_two_fsdp_processes_train_the_weights_of_one(
    one_process: dict[str, object], fsdp_run: dict[str, object]
) -> None:
    # given one process (fixture) / when torchrun trains 2 processes sharing one sharded model (FSDP2)
    # then they train as one process did: the same whole weights gathered from the shards, and the
    # same held-out evaluation with every rank running as many forwards of the sharded model
    _assert_trains_like_one_process(one_process, fsdp_run, Path(str(fsdp_run["out"])))


@pytest.mark.slow
def test_the_fsdp_model_reloads_and_scores_as_trained(
    setup: dict[str, Path], fsdp_run: dict[str, object], tmp_path: Path
) -> None:
    # given the model directory rank 0 wrote from the gathered shards
    trained = load_trained(Path(str(fsdp_run["model_dir"])))

    # when the reloaded model scores the held-out pairs in this one process
    held_out = load_pairs(setup["eval"], "validation", DataConfig(), tmp_path)
    metrics = evaluate(trained.scorer(max_tokens=200), held_out.pairs).metrics

    # then it scores them as the sharded model did at the end of training
    trained_eval = fsdp_run["eval"]
    assert isinstance(trained_eval, dict)
    assert metrics["accuracy"] == trained_eval["accuracy"]
    assert metrics["loss"] == pytest.approx(trained_eval["loss"], abs=1e-5)


@pytest.mark.slow
def test_fsdp_processes_resume_where_they_stopped(
    setup: dict[str, Path], one_process: dict[str, object], tmp_path: Path
) -> None:
    # given 2 FSDP processes stopped after 3 steps (checkpoints hold whole tensors, gathered to rank 0)
    first = _torchrun(setup, tmp_path / "run", "train.distributed=fsdp", "train.max_steps=3")
    assert first["steps"] == 3
    shutil.copytree(tmp_path / "run", tmp_path / "alone")

    # when 2 FSDP processes resume from it, and one process resumes from a copy of it
    rest = _torchrun(setup, tmp_path / "run", "train.distributed=fsdp", resume=True)
    alone = train(_config(setup, tmp_path / "alone"), resume=True, progress=False)

    # then both end where one uninterrupted process ends
    assert rest["steps"] == alone["steps"] == 6
    assert [s for s, _, _ in _steps(tmp_path / "run")] == [1, 2, 3, 4, 5, 6]
    _assert_same_weights(Path(str(one_process["model_dir"])), Path(str(rest["model_dir"])))
    _assert_same_weights(Path(str(one_process["model_dir"])), Path(str(alone["model_dir"])))
