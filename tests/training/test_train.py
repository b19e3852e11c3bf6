"""The training loop end to end on a tiny encoder: learning, checkpoints, resume, regression, failures."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from rmcore.cli import main as cli
from rmcore.config import Config, LossConfig, load_config
from rmcore.model.batching import PairExample, RankingExample, collate
from rmcore.model.losses import plackett_luce
from rmcore.training import TrainingError
from rmcore.training.checkpoint import latest_checkpoint
from rmcore.training.loop import loss_step
from rmcore.training.optim import lr_factor
from rmcore.training.recipe import train, training_key


@pytest.fixture(scope="module")
def pair_files(
    tmp_path_factory: pytest.TempPathFactory, synthetic_pairs: Callable[..., pa.Table]
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    pq.write_table(synthetic_pairs(192, seed=1), folder / "train.parquet")
    pq.write_table(synthetic_pairs(64, seed=2), folder / "eval.parquet")
    return folder / "train.parquet", folder / "eval.parquet"


def _config(model: Path, train_file: Path, eval_file: Path, out: Path, *extra: str) -> Config:
    return load_config(
        None,
        [
            f"model.name_or_path={model}",
            "model.max_length=48",
            "model.precision=fp32",
            f"data.train={train_file}",
            f"data.eval={eval_file}",
            f"output_dir={out}",
            "train.batch_size=16",
            "train.lr=2e-3",
            "train.epochs=2",
            "train.save_every=4",
            *extra,
        ],
    )


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def test_lr_factor_warms_up_then_decays() -> None:
    # given 10 steps with 2 of warmup / then the factor rises to 1 and falls to 0 (cosine) or 1 - t
    assert [lr_factor(s, 10, 2, "cosine") for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(6, 10, 2, "cosine") == pytest.approx(0.5)
    assert lr_factor(6, 10, 2, "linear") == pytest.approx(0.5)
    assert lr_factor(9, 10, 2, "constant") == 1.0


def test_tiny_model_learns_a_synthetic_preference(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given pairs where the chosen response uses "good" words and the rejected one "bad" words
    config = _config(tiny_encoder_dir, *pair_files, tmp_path / "run", "train.epochs=6")

    # when a tiny encoder trains on them
    result = train(config, progress=False)

    # then it ranks held-out pairs (new prompts, new word mixes) correctly
    assert result["eval"]["accuracy"] >= 0.95
    assert result["identical_after_truncation"] == 0
    assert result["held_out_prompts_in_train"] == 0
    # and the model directory holds safetensors weights, the tokenizer and rmcore's metadata
    model_dir = Path(result["model_dir"])
    assert (model_dir / "model.safetensors").exists() and not list(model_dir.glob("*.bin"))
    meta = orjson.loads((model_dir / "rmcore.json").read_bytes())
    assert meta["pooling"] == "first" and meta["max_length"] == 48
    assert meta["reward_std"] > 0 and meta["train_data_hash"]
    # and per-step metrics were logged, one line per optimizer step
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines if "loss" in json.loads(line)]
    assert [s["step"] for s in steps] == list(range(1, result["steps"] + 1))


def test_resume_after_a_stop_equals_an_uninterrupted_run(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given one uninterrupted run
    whole = train(_config(tiny_encoder_dir, *pair_files, tmp_path / "whole"), progress=False)

    # when the same run stops after 6 steps (checkpointed) and is resumed to the end
    first = train(_config(tiny_encoder_dir, *pair_files, tmp_path / "split", "train.max_steps=6"), False)
    assert first["steps"] == 6
    assert latest_checkpoint(tmp_path / "split") is not None
    rest = train(_config(tiny_encoder_dir, *pair_files, tmp_path / "split"), resume=True, progress=False)

    # then it ends at the same step with the same weights and the same logged losses
    assert rest["steps"] == whole["steps"]
    a, b = _weights(Path(whole["model_dir"])), _weights(Path(rest["model_dir"]))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]

    assert losses("split") == pytest.approx(losses("whole"), abs=1e-6)


def test_fixed_seed_per_step_losses(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given a fixed seed, fp32 and the tiny encoder / when it trains 5 steps
    train(_config(tiny_encoder_dir, *pair_files, tmp_path / "run", "train.max_steps=5"), progress=False)

    # then the per-step losses are the recorded ones (a change here is a change in training maths)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [round(json.loads(line)["loss"], 4) for line in lines if "loss" in json.loads(line)]
    assert losses == pytest.approx(EXPECTED_LOSSES, abs=2e-4)


EXPECTED_LOSSES = [0.6946, 0.8046, 0.3899, 0.3466, 0.2104]


@pytest.mark.slow
def test_a_compiled_scorer_trains_as_the_eager_one(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given a machine where inductor can build CPU kernels (it needs a C++ compiler)
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile (inductor) needs a C++ compiler on PATH for CPU kernels: none found")

    # when the fixed-seed run trains 2 steps with train.compile
    out = tmp_path / "run"
    config = _config(tiny_encoder_dir, *pair_files, out, "train.max_steps=2", "train.compile=true")
    result = train(config, progress=False)

    # then it trains, with the per-step losses of the eager scorer
    lines = (out / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]
    assert result["steps"] == 2
    assert losses == pytest.approx(EXPECTED_LOSSES[:2], abs=2e-4)


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(
    tiny_encoder_dir: Path,
    pair_files: tuple[Path, Path],
    tmp_path: Path,
    synthetic_pairs: Callable[..., pa.Table],
) -> None:
    # given pairs whose margin is infinite, trained with the margin loss
    bad = tmp_path / "bad.parquet"
    good = pq.read_table(pair_files[0]).slice(0, 64)
    pq.write_table(pa.concat_tables([good, synthetic_pairs(64, seed=3, margin=float("inf"))]), bad)
    config = _config(
        tiny_encoder_dir, bad, pair_files[1], tmp_path / "run", "loss.margin=true", "train.save_every=1"
    )

    # when training reaches them / then it stops naming the step and the last good checkpoint
    with pytest.raises(TrainingError, match="loss became") as error:
        train(config, progress=False)
    checkpoint = latest_checkpoint(tmp_path / "run")
    if checkpoint is not None:
        assert str(checkpoint) in str(error.value)


def test_cli_train_json_summary(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the documented --set keys / when `rmcore train --json` runs
    train_file, eval_file = pair_files
    code = cli(
        [
            "train",
            "--set", f"model.name_or_path={tiny_encoder_dir}",
            "--set", "model.max_length=48",
            "--set", f"data.train={train_file}",
            "--set", f"data.eval={eval_file}",
            "--set", "train.batch_size=32",
            "--set", "train.lr=1e-3",
            "--set", "train.epochs=1",
            "--set", f"output_dir={tmp_path / 'run'}",
            "--json",
        ]
    )  # fmt: skip

    # then the last line is one JSON object with the promised keys
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"model_dir", "steps", "train_seconds", "train_pairs_per_s", "eval"} <= result.keys()
    assert {"accuracy", "loss"} <= result["eval"].keys()
    assert result["steps"] == 6


def test_held_out_prompts_seen_in_training_are_counted_and_warned_about(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an evaluation file that is the training file itself (every held-out prompt leaked)
    train_file, _ = pair_files
    argv = ["train", "--set", f"model.name_or_path={tiny_encoder_dir}", "--set", "model.max_length=48"]
    argv += ["--set", f"data.train={train_file}", "--set", f"data.eval={train_file}"]
    argv += ["--set", "train.max_steps=1", "--set", f"output_dir={tmp_path / 'run'}", "--json"]

    # when `rmcore train` runs
    assert cli(argv) == 0

    # then the summary counts the shared prompts and stderr says the accuracy is inflated
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["held_out_prompts_in_train"] == 192
    assert "192 held-out prompt(s) also occur in the training data" in err


def test_cli_train_refuses_unknown_keys_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # given a misspelt key and a bad value / when train starts / then both are named, before step 0
    assert cli(["train", "--set", "train.lrr=1", "--set", "model.max_length=2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.lrr" in err[0] and "model.max_length" in err[0]


def test_resume_without_checkpoint_is_refused(
    tiny_encoder_dir: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(_config(tiny_encoder_dir, *pair_files, tmp_path / "run"), resume=True, progress=False)


def test_training_key_ignores_where_outputs_go_but_not_what_trains() -> None:
    # given the default config and a data hash
    base = load_config(None)
    key = training_key(base, "data-1")

    # then output paths and tracking do not change the key; the data, a training option or the model do
    assert training_key(load_config(None, ["output_dir=elsewhere", "tracking.experiment=x"]), "data-1") == key
    assert training_key(base, "data-2") != key
    assert training_key(load_config(None, ["train.lr=1e-4"]), "data-1") != key
    assert training_key(load_config(None, ["model.max_length=128"]), "data-1") != key
    assert len(key) == 32


def test_training_key_depends_on_how_votes_were_aggregated() -> None:
    # given the same data hash, pairs aggregated by vote shares and by Dawid-Skene
    votes = load_config(None, ["data.pairs.aggregate=votes"])
    dawid_skene = load_config(None, ["data.pairs.aggregate=dawid-skene"])
    # then the keys differ: the choice is part of what trains, so a cached model is not reused across it
    assert training_key(votes, "data-1") != training_key(dawid_skene, "data-1")
    assert training_key(votes, "data-1") == training_key(load_config(None), "data-1")


class _TokenSum(torch.nn.Module):
    """A stand-in scorer: the reward of a sequence is the sum of its real token ids / 10."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (input_ids * attention_mask).sum(dim=1).float() / 10


def test_a_ranking_before_a_pair_in_one_micro_batch_gives_the_listwise_plus_pairwise_loss() -> None:
    # given a micro-batch whose first prompt is a ranking (its implied pairs are left out of the
    # pairwise term) and whose second is one pair: rewards 0.3 > 0.2 > 0.1, and 0.5 vs 0.4
    ranking = RankingExample(prompt_id="a", responses=[[1], [2], [3]], ranks=[2, 1, 0])
    pair = PairExample(prompt_id="b", chosen=[5], rejected=[4], p_chosen=1.0, margin=None)
    batch = collate([ranking, pair], pad_id=0)
    cfg = LossConfig(listwise=True, group_by_prompt=True)

    # when the loss step runs
    out = loss_step(_TokenSum(), batch, cfg, None)

    # then the pairwise term is the pair's alone: -log sigmoid(0.5 - 0.4) = 0.6443967
    pairwise = -torch.nn.functional.logsigmoid(torch.tensor(0.1)).item()
    assert out.metrics["loss_bt"] == pytest.approx(pairwise, abs=1e-6)
    # and the listwise term is Plackett-Luce of 0.3 > 0.2 > 0.1:
    # -[0.3 - log(e^.3 + e^.2 + e^.1)] - [0.2 - log(e^.2 + e^.1)] = 1.0019428 + 0.6443967
    listwise = plackett_luce(torch.tensor([[0.3, 0.2, 0.1]])).loss.item()
    assert listwise == pytest.approx(1.6463395, abs=1e-6)
    assert out.metrics["loss_pl"] == pytest.approx(listwise, abs=1e-6)
    # and the logged loss is the total that is minimized
    assert out.metrics["loss"] == pytest.approx(pairwise + listwise, abs=1e-6)
    assert out.loss.item() == pytest.approx(pairwise + listwise, abs=1e-6)


def test_a_decoder_trains_the_same_with_shared_prompts_and_reports_the_saving(
    tiny_decoder_dir: Path, tmp_path: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given the tiny decoder, and pairs where every other prompt has two pairs
    pq.write_table(synthetic_pairs(48, seed=1, two_every=2), tmp_path / "train.parquet")
    pq.write_table(synthetic_pairs(16, seed=2), tmp_path / "eval.parquet")

    def run(share: str) -> tuple[dict, list[float]]:
        out = tmp_path / share
        files = (tmp_path / "train.parquet", tmp_path / "eval.parquet")
        # the byte tokenizer spends a token per character: 160 keeps whole prompts; without bucketing
        # (which sorts by row width, and rows differ with sharing) both runs take the same steps
        config = _config(
            tiny_decoder_dir,
            *files,
            out,
            f"model.share_prompt={share}",
            "model.max_length=160",
            "train.bucketing=false",
        )
        result = train(config, progress=False)
        lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return result, [line["loss"] for line in lines if "loss" in line]

    # when it trains with each prompt encoded once per micro-batch, and with a row per sequence
    shared, shared_losses = run("auto")
    alone, alone_losses = run("off")

    # then every step's loss and the held-out accuracy are the same
    assert shared_losses == pytest.approx(alone_losses, abs=1e-5)
    assert shared["eval"]["accuracy"] == alone["eval"]["accuracy"]
    # and the summary says what sharing saved: prompts encoded once, fewer tokens, none without it
    assert alone["shared_prompt_saving"] == 0.0
    assert 0.2 < shared["shared_prompt_saving"] < 0.7
    assert shared["tokens_encoded"] < alone["tokens_encoded"]
    assert 0.0 <= shared["padding"] < 1.0 and shared["tokens_padded"] >= shared["tokens_encoded"]


def test_cutting_a_long_prompt_alike_for_all_its_responses_lets_them_share_it(
    tiny_decoder_dir: Path, tmp_path: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given pairs whose prompts are too long for 80 byte tokens beside their responses of 3-8 words
    pq.write_table(synthetic_pairs(32, seed=1, filler=(3, 8), two_every=2), tmp_path / "train.parquet")
    pq.write_table(synthetic_pairs(8, seed=2), tmp_path / "eval.parquet")

    def saving(cut: str) -> float:
        files = (tmp_path / "train.parquet", tmp_path / "eval.parquet")
        overrides = f"model.prompt_cut={cut}", "model.max_length=80", "train.epochs=1"
        config = _config(tiny_decoder_dir, *files, tmp_path / cut, *overrides)
        return float(train(config, progress=False)["shared_prompt_saving"])

    # when it trains with each response's own prompt cut, and with one cut per prompt
    own, same = saving("per_response"), saving("per_prompt")

    # then responses of different lengths keep different prompt tails alone, and share little; cut
    # alike, every pair's two responses begin alike and share their prompt
    assert own < 0.05 and same > 0.15  # measured: 2.4% and 21.8%
