"""What keeps a GPU busy, locked on the CPU: the step reads nothing back between log points, the
background feed gives the serial batches, log points do not change what is logged, rows come in
width buckets, and FlexAttention is refused on the CPU before anything loads."""

import json
import random
import shutil
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rmcore.cli import main as cli
from rmcore.config import Config, ModelConfig, load_config
from rmcore.model.batching import PairExample
from rmcore.model.reward import RewardModule, attending_with, build_reward_model
from rmcore.model.rows import RowTensors, SharePolicy, layout, pack, row_tensors
from rmcore.training import TrainingError
from rmcore.training.compiled import DynamicRows, compilations
from rmcore.training.feed import Collation, in_background, micro_batches
from rmcore.training.recipe import train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def decoder_pairs(tmp_path_factory: pytest.TempPathFactory, synthetic_pairs: Callable[..., pa.Table]) -> Path:
    """Pairs where every other prompt has two pairs (so the tiny decoder shares prompts), and held-out."""
    folder = tmp_path_factory.mktemp("decoder_pairs")
    pq.write_table(synthetic_pairs(64, seed=1, two_every=2), folder / "train.parquet")
    pq.write_table(synthetic_pairs(16, seed=2), folder / "eval.parquet")
    return folder


def _config(model: Path, pairs: Path, out: Path, *extra: str) -> Config:
    return load_config(
        None,
        [
            f"model.name_or_path={model}",
            "model.max_length=160",
            "model.precision=fp32",
            f"data.train={pairs / 'train.parquet'}",
            f"data.eval={pairs / 'eval.parquet'}",
            f"output_dir={out}",
            "train.batch_size=8",
            "train.lr=2e-3",
            "train.save_every=0",
            *extra,
        ],
    )


def _steps(out: Path) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "loss" in line]


READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")
"""The Tensor methods that hand a value to Python: on a GPU each waits for the device."""


@pytest.mark.parametrize(
    ("backbone", "setting"),
    [
        ("decoder", "model.share_prompt=auto"),
        ("decoder", "model.share_prompt=off"),
        ("encoder", "model.max_length=48"),
    ],
    ids=["decoder-shared-rows", "decoder-a-row-each", "encoder"],
)
def test_a_step_reads_no_tensor_value_between_log_points(
    backbone: str,
    setting: str,
    request: pytest.FixtureRequest,
    decoder_pairs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given every way a tensor's value reaches Python, watched on the training thread
    main = threading.current_thread()
    reads: list[list[str]] = []

    def watched(name: str) -> Callable[..., object]:
        original = getattr(torch.Tensor, name)

        def read(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            if threading.current_thread() is main:
                reads.append([frame.name for frame in traceback.extract_stack()])
            return original(self, *args, **kwargs)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, watched(name))

    # when a tiny model trains 6 steps, logging every 3 (the plan has more steps, so no evaluation is due)
    model = request.getfixturevalue(f"tiny_{backbone}_dir")
    config = _config(
        model, decoder_pairs, tmp_path / "run", "train.max_steps=6", "train.log_every=3", setting
    )
    result = train(config, progress=False)
    monkeypatch.undo()

    # then inside the training loop, values were read at the log points only
    in_loop = [stack for stack in reads if "fit" in stack]
    outside_log_points = [stack for stack in in_loop if "_log" not in stack]
    assert outside_log_points == [], outside_log_points[0][-8:]
    # and the log points did read: the 6 steps were logged
    assert in_loop and [s["step"] for s in _steps(tmp_path / "run")] == [1, 2, 3, 4, 5, 6]
    assert (result["shared_prompt_saving"] > 0.1) == (setting == "model.share_prompt=auto")


def test_log_points_and_the_background_feed_leave_every_logged_value_as_it_was(
    tiny_decoder_dir: Path, decoder_pairs: Path, tmp_path: Path
) -> None:
    # given the same run logged every step and collated in the loop, and logged every 4 steps with
    # micro-batches collated by the background thread
    def run(name: str, *extra: str) -> list[dict[str, float]]:
        train(_config(tiny_decoder_dir, decoder_pairs, tmp_path / name, *extra), progress=False)
        return [{k: v for k, v in step.items() if k != "pairs_per_s"} for step in _steps(tmp_path / name)]

    serial = run("serial", "train.log_every=1", "train.prefetch=0")
    fed = run("fed", "train.log_every=4", "train.prefetch=3")

    # then metrics.jsonl holds every step with exactly the same values (the speed aside)
    assert len(serial) > 4 and [s["step"] for s in serial] == list(range(1, len(serial) + 1))
    assert fed == serial


def _examples(n: int) -> list[PairExample]:
    return [
        PairExample(
            prompt_id=f"p{i // 2}",
            chosen=[1, 2, 3, 4 + i] * (1 + i % 5),
            rejected=[1, 2, 3, 9, i],
            p_chosen=1.0,
            margin=None,
        )
        for i in range(n)
    ]


def test_the_background_feed_yields_the_serial_batches_in_order() -> None:
    # given 12 micro-batches of pairs that share prompts, in width buckets of 8
    examples = _examples(36)
    jobs = [examples[i : i + 3] for i in range(0, 36, 3)]
    collation = Collation(pad_id=0, padding_side="right", share=None, width_multiple=8)

    # when they are prepared in the loop and by the background thread, 2 ahead
    serial = list(micro_batches(jobs, collation, CPU, ahead=0))
    fed = list(micro_batches(jobs, collation, CPU, ahead=2))

    # then the same batches arrive in the same order, every tensor equal, counted alike
    assert len(fed) == len(serial) == 12
    for a, b in zip(serial, fed, strict=True):
        assert a.counts == b.counts and a.counts.shape[1] % 8 == 0
        for name in ("input_ids", "attention_mask", "chosen", "rejected", "p_chosen", "pair_group"):
            assert torch.equal(getattr(a.batch, name), getattr(b.batch, name))


def test_the_background_feed_raises_where_it_failed_and_stops_when_the_consumer_does() -> None:
    # given a producer that fails at its third item
    def items() -> Iterator[int]:
        yield from (1, 2)
        raise ValueError("item 3 is bad")

    # then the consumer gets the first two, then the producer's own error
    got = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for item in in_background(items, 1, CPU):
            got.append(item)
    assert got == [1, 2]

    # and a consumer that stops early ends the thread
    feed = in_background(lambda: iter(range(1_000_000)), 2, CPU)
    assert next(feed) == 0
    feed.close()
    assert not any(t.name == "rmcore-feed" and t.is_alive() for t in threading.enumerate())


def test_an_epoch_runs_no_more_widths_than_buckets(
    tiny_decoder_dir: Path, decoder_pairs: Path, tmp_path: Path
) -> None:
    # given rows padded up to multiples of 32
    config = _config(tiny_decoder_dir, decoder_pairs, tmp_path / "run", "train.width_multiple=32")

    # when the tiny decoder trains an epoch with shared prompts
    result = train(config, progress=False)

    # then every micro-batch's width is a multiple of 32, at most the buckets up to the widest row
    widths = result["widths"]
    assert widths and all(w % 32 == 0 for w in widths)
    assert len(widths) <= max(widths) // 32
    assert result["shapes"] >= len(widths) and result["width_multiple"] == 32
    # and the padding the buckets add is counted
    assert result["tokens_padded"] > result["tokens_encoded"]


def test_flex_attention_on_the_cpu_is_refused_before_anything_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a model path that does not exist: loading anything would fail differently
    argv = [
        "train",
        "--set",
        f"model.name_or_path={tmp_path / 'absent'}",
        "--set",
        "model.attention=flex_attention",
    ]
    argv += ["--set", f"output_dir={tmp_path / 'run'}"]

    # when `rmcore train` starts on this CPU / then it stops in one line saying why and what to use
    assert cli(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA only" in err[0] and "no backward pass" in err[0]
    assert "model.attention=auto" in err[0]
    with pytest.raises(TrainingError, match="CUDA only"):
        train(load_config(None, ["model.attention=flex_attention"]), progress=False)


@pytest.mark.slow
def test_a_compiled_scorer_compiles_once_per_bucket_width_and_trains_as_the_eager_one(
    tiny_decoder_dir: Path, decoder_pairs: Path, tmp_path: Path
) -> None:
    # given a machine where inductor can build CPU kernels (it needs a C++ compiler)
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile (inductor) needs a C++ compiler on PATH for CPU kernels: none found")

    # when the tiny decoder trains with shared prompts in width buckets of 64, compiled and eager
    def run(name: str, *extra: str) -> tuple[dict, list[dict[str, float]]]:
        config = _config(tiny_decoder_dir, decoder_pairs, tmp_path / name, "train.width_multiple=64", *extra)
        return train(config, progress=False), _steps(tmp_path / name)

    compiled, compiled_steps = run("compiled", "train.compile=true")
    eager, eager_steps = run("eager")

    # then the row counts varied, yet one graph served each width: a recompile per new width at most
    assert compiled["shapes"] > len(compiled["widths"]) >= 2
    assert 1 <= compiled["compiled_graphs"] <= len(compiled["widths"])
    assert compiled["recompiles"] <= len(compiled["widths"]) - 1
    assert eager["compiled_graphs"] == 0
    # and the losses are the eager scorer's
    assert [s["loss"] for s in compiled_steps] == pytest.approx([s["loss"] for s in eager_steps], abs=1e-4)


@pytest.mark.slow
def test_compiled_flex_attention_with_dynamic_rows_gives_sdpa_rewards_without_a_graph_per_row_count(
    tiny_decoder_dir: Path,
) -> None:
    # given the tiny decoder, and micro-batches of prompts with two responses each, in rows 64 wide
    # (FlexAttention has no backward on the CPU, but its compiled forward runs here)
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile (inductor) needs a C++ compiler on PATH for CPU kernels: none found")
    rm = build_reward_model(ModelConfig(name_or_path=str(tiny_decoder_dir), precision="fp32"))
    share = SharePolicy(attention_weight=0.0)
    rng = random.Random(0)

    def rows(prompts: int) -> RowTensors:
        sequences, groups = [], []
        for p in range(prompts):
            prompt = [rng.randrange(1, 250) for _ in range(rng.randint(5, 20))]
            for _ in range(2):
                sequences.append(prompt + [rng.randrange(1, 250) for _ in range(rng.randint(3, 12))])
                groups.append(str(p))
        return row_tensors(pack(layout(sequences, groups, share), 64), 0, 64)

    dense, flex = RewardModule(rm), DynamicRows(RewardModule(rm), max_graphs=8)
    graphs = []
    for prompts in (3, 5, 9, 7, 12):
        batch = rows(prompts)
        with torch.no_grad():
            expected = dense(batch.input_ids, batch.attention_mask, **batch.layout_inputs())
            with attending_with(rm.model, "flex_attention"):
                got = flex(batch.input_ids, batch.attention_mask, **batch.layout_inputs())

        # then every micro-batch's rewards are SDPA's with the dense mask
        assert batch.input_ids.shape[1] == 64
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        graphs.append(compilations().graphs)

    # and once the rows dimension is dynamic, new row counts of the width compile nothing more
    assert len({tuple(rows(n).input_ids.shape) for n in (3, 5, 9, 7, 12)}) > 2
    assert graphs[2] == graphs[3] == graphs[4]
