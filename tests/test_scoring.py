"""Using a trained model: `rmcore score` rows and `rmcore evaluate` pairs, from the saved directory."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rmcore.cli import main as cli
from rmcore.scoring import load_trained, score_file


def test_score_writes_raw_and_normalized_rewards_that_match_training_scores(
    tiny_trained: tuple[Path, Path], tmp_path: Path
) -> None:
    # given the held-out pairs written as (prompt, response) rows, chosen then rejected
    model_dir, eval_file = tiny_trained
    pairs = pq.read_table(eval_file)
    rows = [
        {"prompt": p[0]["content"], "response": r}
        for column in ("chosen", "rejected")
        for p, r in zip(pairs.column("prompt").to_pylist(), pairs.column(column).to_pylist(), strict=True)
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    # when they are scored from the saved model directory
    summary = score_file(model_dir, source, tmp_path / "scores.parquet")

    # then every row has a reward equal to what the reloaded model gives the same pair
    scores = pq.read_table(tmp_path / "scores.parquet")
    assert summary["rows"] == scores.num_rows == 2 * pairs.num_rows
    model = load_trained(model_dir)
    chosen, rejected = model.scorer(max_tokens=4096).pair_rewards(pairs)
    np.testing.assert_allclose(
        scores.column("reward").to_numpy(), np.concatenate([chosen, rejected]), atol=1e-5
    )
    # and normalized rewards use the held-out mean and std stored with the model
    raw, normalized = scores.column("reward").to_numpy(), scores.column("reward_normalized").to_numpy()
    np.testing.assert_allclose(normalized, (raw - model.reward_mean) / model.reward_std, rtol=1e-6)


def test_cli_evaluate_and_score(
    tiny_trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, eval_file = tiny_trained
    # when `rmcore evaluate --json` runs on the held-out pair file
    assert cli(["evaluate", "--model", str(model_dir), "--pairs", str(eval_file), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then it reports accuracy, loss, calibration and the length baseline
    assert metrics["n_pairs"] == 24 and 0 <= metrics["accuracy"] <= 1
    assert {"loss", "calibration", "baselines", "rewards"} <= metrics.keys()
    # and `rmcore score` on a JSONL file writes JSONL
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"prompt": "hello", "response": "a helpful answer"}) + "\n")
    assert cli(["score", "--model", str(model_dir), str(source), "--output", str(tmp_path / "o.jsonl")]) == 0
    assert "reward" in json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])


def test_score_refuses_a_directory_without_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")
    assert cli(["score", "--model", str(tmp_path), str(source), "--output", str(tmp_path / "o.parquet")]) == 1
    err = capsys.readouterr().err
    assert "rmcore.json" in err and "Traceback" not in err


def test_the_names_registered_pyfuncs_import_still_score(tiny_trained: tuple[Path, Path]) -> None:
    # given the imports and calls of the pyfunc code logged with models registered by rmcore 0.1
    # (MLflow stores that code with the model and runs it again at load time)
    from rmcore.data.formats import fields
    from rmcore.data.records import RowRejected
    from rmcore.scoring import TrainedModel, load_trained, score_rows
    from rmcore.tracking import MODEL_DIR_ARTIFACT

    model_dir, _ = tiny_trained
    prompt = fields.messages("How do I boil an egg?", "prompt")
    assert MODEL_DIR_ARTIFACT == "model_dir" and issubclass(RowRejected, Exception)

    # when that code loads the model and scores a row
    trained = load_trained(model_dir)
    raw, normalized = score_rows(
        trained, [[{"role": m.role, "content": m.content} for m in prompt]], ["Boil it."]
    )

    # then it gets a raw and a normalized reward, as it did
    assert isinstance(trained, TrainedModel)
    assert raw.shape == (1,) and normalized is not None
    assert normalized[0] == pytest.approx((raw[0] - trained.reward_mean) / trained.reward_std)
