"""MLflow tracking against a temporary SQLite store: runs, the reward pyfunc, registry and promotion.

One store serves the whole module (creating a SQLite database costs about 6 s); each test uses its
own experiment or registered model name where it needs a clean slate.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.models import get_model_info
from mlflow.tracking import MlflowClient

from rmcore import tracking
from rmcore.cli import main as cli
from rmcore.config import Config, TrackingConfig
from rmcore.evaluation.metrics import pair_metrics
from rmcore.tracking import (
    champion_version,
    experiment_id,
    log_artifacts,
    log_config,
    log_dataset,
    log_evaluation,
    log_history,
    log_reward_model,
    model_dir_of,
    promote,
    register,
    should_promote,
    tracked_run,
)

ROWS = [
    {"prompt": "question number 3 from set 2", "response": "the answer is helpful and correct"},
    {"prompt": "question number 3 from set 2", "response": "the answer is rude and wrong"},
    {"prompt": "How do I boil an egg?", "response": "Put it in boiling water for eight minutes."},
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's working directory (the cwd), with no MLFLOW_TRACKING_URI from outside."""
    path = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.chdir(path)
        yield path


@pytest.fixture(scope="module")
def store(folder: Path) -> TrackingConfig:
    """The default tracking config (store ./mlflow relative to the cwd), system metrics off for speed."""
    return TrackingConfig(system_metrics=False)


@pytest.fixture(scope="module")
def model_dir(tiny_trained: tuple[Path, Path]) -> Path:
    """A tiny trained model with held-out reward stats (so normalized rewards)."""
    return tiny_trained[0]


@pytest.fixture(scope="module")
def model_uri(store: TrackingConfig, model_dir: Path) -> str:
    """The trained model logged once as the reward pyfunc."""
    with tracked_run(store, run_name="logged-model"):
        return log_reward_model(model_dir)


@pytest.fixture(scope="module")
def champion(store: TrackingConfig, model_uri: str) -> str:
    """The logged model registered as reward-model and promoted: `models:/reward-model@champion`."""
    version = register(store, model_uri, {"data_hash": "abc"})
    promote(store, version, 0.75, None, None)
    return "models:/reward-model@champion"


def test_tracking_uri_is_the_config_then_the_environment_then_the_local_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no configured URI and no environment variable, then SQLite in the store folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(TrackingConfig()) == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    # given the environment variable, then it wins over the store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri(TrackingConfig()) == "http://127.0.0.1:5000"
    # given a configured URI, then it wins over both
    assert tracking.tracking_uri(TrackingConfig(tracking_uri="sqlite:///x.db")) == "sqlite:///x.db"


def test_experiment_is_created_once_with_artifacts_beside_the_database(
    store: TrackingConfig, folder: Path
) -> None:
    # when the experiment id is asked for twice
    first, second = experiment_id(store), experiment_id(store)
    # then it is one experiment, in mlflow/mlflow.db, whose artifacts go to mlflow/artifacts
    assert first == second
    assert (folder / "mlflow" / "mlflow.db").is_file()
    experiment = MlflowClient(tracking.tracking_uri(store)).get_experiment(first)
    assert experiment.name == "rmcore"
    assert experiment.artifact_location == (folder / "mlflow" / "artifacts").as_uri()


def test_a_run_records_config_history_evaluation_dataset_and_artifacts(
    store: TrackingConfig, folder: Path, tmp_path: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given a training log of three steps, an evaluation and two files to keep
    history = tmp_path / "metrics.jsonl"
    history.write_text(
        "\n".join(json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-3, "note": "text"}) for s in (1, 2, 3))
        + "\n"
    )
    pairs = synthetic_pairs(4, seed=0)
    metrics = pair_metrics(np.array([1.0, 2.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 0.5]), pairs)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("# report\n")
    summary = tmp_path / "summary.json"
    summary.write_text("{}")

    # when a run logs them
    config = Config()
    with tracked_run(store, run_name="everything", tags={"kind": "test"}) as run_id:
        log_config(config)
        log_history(history)
        log_evaluation(metrics, "test")
        log_dataset(str(tmp_path / "lake"), 3, "0123456789abcdef0123456789abcdef", "pairs", "training")
        log_artifacts([report, summary], "evaluation")

    # then the params are the config's options under dotted keys
    client = MlflowClient(tracking.tracking_uri(store))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "test"
    assert run.data.params["train.lr"] == str(config.train.lr)
    assert run.data.params["tracking.registered_model"] == "reward-model"
    assert run.data.params["model.lora"] == "None"
    # and the training history is per step, text values left out
    loss = client.get_metric_history(run_id, "train.loss")
    assert [(m.step, m.value) for m in loss] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert "train.note" not in run.data.metrics
    # and the evaluation's numeric scalars are flat, prefixed, nested keys joined by dots
    assert run.data.metrics["test.accuracy"] == metrics["accuracy"] == 0.75
    assert run.data.metrics["test.loss"] == pytest.approx(metrics["loss"])
    assert run.data.metrics["test.calibration.ece"] == pytest.approx(metrics["calibration"]["ece"])
    assert run.data.metrics["test.by_source.synthetic.accuracy"] == 0.75
    assert run.data.metrics["test.by_category._none_.n_pairs"] == 4  # "(none)": MLflow refuses ( )
    # and the dataset input carries the content hash as its digest, and as its source the lake and the
    # lake version the pairs were built from
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == "0123456789abcdef0123456789abcdef"
    assert dataset_input.dataset.name == "pairs"
    assert dataset_input.dataset.source_type == "delta_table"
    assert json.loads(dataset_input.dataset.source) == {
        "path": str(tmp_path / "lake"),
        "delta_table_version": 3,
    }
    assert dataset_input.tags[0].value == "training"
    # and the artifacts are in the store's artifacts folder, a folder keeping its name; no ./mlruns
    names = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert names == {"evaluation/report", "evaluation/summary.json"}
    assert run.info.artifact_uri.startswith((folder / "mlflow" / "artifacts").as_uri())
    assert not (folder / "mlruns").exists()


def test_a_run_resumes_by_id_and_fails_when_its_block_raises(store: TrackingConfig) -> None:
    # given a finished run
    with tracked_run(store, run_name="resumed") as run_id:
        log_evaluation({"accuracy": 0.5}, "validation")
    # when it is resumed by id (as a task in another thread does), also from inside itself
    with tracked_run(store, run_id=run_id) as resumed, tracked_run(store, run_id=run_id) as inner:
        log_evaluation({"accuracy": 0.6}, "test")
    # then the metrics land on the same run
    client = MlflowClient(tracking.tracking_uri(store))
    assert resumed == inner == run_id
    assert client.get_run(run_id).data.metrics == {"validation.accuracy": 0.5, "test.accuracy": 0.6}
    # and a block that raises leaves its run FAILED
    with pytest.raises(RuntimeError), tracked_run(store, run_name="failing") as failed:
        raise RuntimeError("boom")
    assert client.get_run(failed).info.status == "FAILED"


def test_logging_outside_a_run_is_refused(tmp_path: Path) -> None:
    history = tmp_path / "metrics.jsonl"
    history.write_text('{"step": 1, "loss": 1.0}\n')
    with pytest.raises(tracking.TrackingError, match="tracked_run"):
        log_history(history)


def test_pyfunc_inputs_and_outputs() -> None:
    from rmcore.reward_pyfunc import rewards_frame
    from rmcore.scoring import scoring_inputs

    # given rows of prompt and response strings, then a prompt is one user message
    rows = pd.DataFrame({"prompt": ["Hi?", "Why?"], "response": ["Hello.", "Because."]})
    prompts, responses = scoring_inputs(rows.to_dict("records"))
    assert prompts == [[{"role": "user", "content": "Hi?"}], [{"role": "user", "content": "Why?"}]]
    assert responses == ["Hello.", "Because."]
    # and an empty response is refused with its row
    with pytest.raises(ValueError, match="row 1: field 'response' is empty"):
        scoring_inputs([{"prompt": "a", "response": "ok"}, {"prompt": "b", "response": " "}])
    # and a model without held-out stats returns (and declares) only the raw reward
    assert list(rewards_frame(np.array([0.5]), None).columns) == ["reward"]
    assert tracking.reward_signature(normalized=False).outputs.input_names() == ["reward"]
    both = rewards_frame(np.array([0.5]), np.array([1.5]))
    assert both.to_dict("list") == {"reward": [0.5], "reward_normalized": [1.5]}


def test_metric_keys_keep_letters_digits_and_separators() -> None:
    assert tracking.metric_key("test.by_source.(none).accuracy") == "test.by_source._none_.accuracy"
    assert tracking.metric_key("test.by_source.hh/train.jsonl:1 a-b") == "test.by_source.hh_train.jsonl:1 a-b"


@pytest.mark.parametrize(
    ("new", "champion", "margin", "promoted"),
    [
        (0.5, None, 0.0, True),  # no champion yet
        (0.71, 0.70, 0.0, True),  # better
        (0.70, 0.70, 0.0, False),  # equal is not better
        (0.69, 0.70, 0.0, False),  # worse
        (0.72, 0.70, 0.05, False),  # better, within the margin
        (0.75, 0.70, 0.05, False),  # better by exactly the margin
        (0.76, 0.70, 0.05, True),  # better by more than the margin
    ],
)
def test_should_promote(new: float, champion: float | None, margin: float, promoted: bool) -> None:
    assert should_promote(new, champion, margin) is promoted


def test_promotion_keeps_the_champion_unless_beaten_by_more_than_the_margin(
    store: TrackingConfig, model_uri: str
) -> None:
    # given a registered model of its own, with a margin of 0.02
    cfg = store.model_copy(update={"registered_model": "promotion-test", "promotion_margin": 0.02})
    assert champion_version(cfg) is None
    client = MlflowClient(tracking.tracking_uri(cfg))

    def next_version(accuracy: float) -> dict[str, object]:
        version = register(cfg, model_uri, {"data_hash": "abc", "accuracy": str(accuracy)})
        champion = champion_version(cfg)
        champion_accuracy = None if champion is None else float(scores[champion])
        scores[version] = accuracy
        return promote(cfg, version, accuracy, champion_accuracy, champion)

    scores: dict[str, float] = {}
    # when the first version comes: it becomes champion
    first = next_version(0.70)
    assert first["promoted"] is True and first["alias"] == "champion"
    assert champion_version(cfg) == first["version"] == "1"
    # when a worse one comes: challenger, and the champion stays
    worse = next_version(0.60)
    assert (worse["promoted"], worse["alias"], worse["champion_version"]) == (False, "challenger", "1")
    assert champion_version(cfg) == "1"
    assert str(client.get_model_version_by_alias(cfg.registered_model, "challenger").version) == "2"
    # when one better by less than the margin comes: not promoted either
    close = next_version(0.71)
    assert close["promoted"] is False and champion_version(cfg) == "1"
    # when one better by more than the margin comes: it is the champion, the old one tagged
    better = next_version(0.80)
    assert better == {
        "promoted": True,
        "version": "4",
        "alias": "champion",
        "champion_version": "4",
        "previous_champion": "1",
        "new_accuracy": 0.80,
        "champion_accuracy": 0.70,
        "margin": 0.02,
        "suite_refusals": [],
    }
    assert champion_version(cfg) == "4"
    # and every version records the decision and both scores
    tags = client.get_model_version(cfg.registered_model, "4").tags
    assert tags["promotion.decision"] == "champion"
    assert (tags["promotion.new_accuracy"], tags["promotion.champion_accuracy"]) == ("0.8", "0.7")
    assert tags["promotion.champion_version"] == "1" and tags["data_hash"] == "abc"
    assert client.get_model_version(cfg.registered_model, "2").tags["promotion.decision"] == "challenger"
    assert client.get_model_version(cfg.registered_model, "1").tags["promotion.replaced_by"] == "4"


def test_a_suite_section_below_the_floor_keeps_a_more_accurate_model_challenger(
    store: TrackingConfig, model_uri: str
) -> None:
    # given a champion at 0.70 held-out accuracy and 0.80 on RewardBench Chat, and a floor of 0.05
    cfg = store.model_copy(update={"registered_model": "suite-gate-test", "suite_floor": 0.05})
    first = register(cfg, model_uri, {})
    promote(cfg, first, 0.70, None, None)
    champion_scores = {"suite.rewardbench.chat": 0.80, "suite.rewardbench.safety": 0.60}
    client = MlflowClient(tracking.tracking_uri(cfg))

    # when a version more accurate on the held-out pairs (0.90) scores 0.74 on Chat (6 points below)
    worse_chat = register(cfg, model_uri, {})
    new_scores = {"suite.rewardbench.chat": 0.74, "suite.rewardbench.safety": 0.65}
    refused = promote(cfg, worse_chat, 0.90, 0.70, first, (new_scores, champion_scores))

    # then it stays challenger, the section named in the decision and in the version's tags
    reason = "suite.rewardbench.chat 74.0% is 6.0 points below the champion's 80.0% (suite_floor 5.0 points)"
    assert (refused["promoted"], refused["alias"]) == (False, "challenger")
    assert refused["suite_refusals"] == [reason]
    assert champion_version(cfg) == first
    tags = client.get_model_version(cfg.registered_model, worse_chat).tags
    assert (tags["promotion.refused_by"], tags["promotion.suite_floor"]) == (reason, "0.05")

    # when the next one scores 0.76 on Chat (4 points below, within the floor): it is promoted
    within = register(cfg, model_uri, {})
    new_scores = {"suite.rewardbench.chat": 0.76, "suite.rewardbench.safety": 0.65}
    allowed = promote(cfg, within, 0.90, 0.70, first, (new_scores, champion_scores))
    assert (allowed["promoted"], allowed["suite_refusals"]) == (True, [])
    assert champion_version(cfg) == within
    assert "promotion.refused_by" not in client.get_model_version(cfg.registered_model, within).tags


def test_the_logged_model_has_a_signature_an_input_example_and_the_model_directory(
    store: TrackingConfig, model_uri: str, model_dir: Path, tmp_path: Path
) -> None:
    # when the logged model is inspected
    info = get_model_info(model_uri)
    # then it takes string columns prompt and response and returns raw and normalized rewards
    assert info.signature.inputs.input_names() == ["prompt", "response"]
    assert info.signature.outputs.input_names() == ["reward", "reward_normalized"]
    assert info.saved_input_example_info is not None
    # and its artifact is the saved rmcore model directory
    local = model_dir_of(model_uri, tmp_path / "download", store)
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in model_dir.iterdir())
    assert (local / "rmcore.json").read_bytes() == (model_dir / "rmcore.json").read_bytes()


def test_runs_uri_and_unknown_models(store: TrackingConfig, model_uri: str, tmp_path: Path) -> None:
    # given the run that logged the model, when its runs:/ URI is resolved, then the same directory
    run_id = get_model_info(model_uri).run_id
    local = model_dir_of(f"runs:/{run_id}/model", tmp_path / "by_run", store)
    assert (local / "rmcore.json").is_file()
    # and an unknown registered model is a FileNotFoundError naming the URI
    with pytest.raises(FileNotFoundError, match="models:/no-such-model@champion"):
        model_dir_of("models:/no-such-model@champion", tmp_path / "missing", store)
    # and a store that does not exist is named, and not created
    nowhere = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/nowhere/mlflow.db")
    with pytest.raises(FileNotFoundError, match=r"no MLflow store at .*nowhere"):
        model_dir_of("models:/reward-model@champion", tmp_path / "none", nowhere)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_the_champion_pyfunc_scores_in_a_fresh_process_exactly_as_rmcore_score(
    store: TrackingConfig, champion: str, model_dir: Path, tmp_path: Path
) -> None:
    # given rows scored by `rmcore score` from the model directory
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert (
        cli(["score", "--model", str(model_dir), str(rows), "--output", str(tmp_path / "cli.parquet")]) == 0
    )
    expected = pq.read_table(tmp_path / "cli.parquet")

    # when a fresh Python process loads the champion from the registry and scores the same rows
    code = (
        "import json, sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({champion!r})\n"
        "rows = pd.DataFrame([json.loads(line) for line in open(sys.argv[1])])\n"
        "model.predict(rows).to_parquet(sys.argv[2])\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri(store)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(rows), str(tmp_path / "pyfunc.parquet")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got = pq.read_table(tmp_path / "pyfunc.parquet")

    # then it returns the same raw and normalized rewards, exactly equal floats
    for column in ("reward", "reward_normalized"):
        assert got.column(column).to_pylist() == expected.column(column).to_pylist()


@pytest.mark.slow
def test_rmcore_score_and_evaluate_take_a_registry_uri(
    store: TrackingConfig,
    champion: str,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    synthetic_pairs: Callable[..., pa.Table],
) -> None:
    # given the store named by MLFLOW_TRACKING_URI and rows scored from the model directory
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.tracking_uri(store))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert (
        cli(["score", "--model", str(model_dir), str(rows), "--output", str(tmp_path / "dir.parquet")]) == 0
    )
    # when `rmcore score --model models:/reward-model@champion` runs
    args = ["score", "--model", champion, str(rows), "--output", str(tmp_path / "out.parquet")]
    assert cli(args) == 0
    # then it writes the same rewards, bit for bit (same process, same batches)
    by_uri, by_dir = pq.read_table(tmp_path / "out.parquet"), pq.read_table(tmp_path / "dir.parquet")
    assert by_uri.column("reward").to_pylist() == by_dir.column("reward").to_pylist()
    # and `rmcore evaluate` takes the version URI
    pq.write_table(synthetic_pairs(6, seed=5), tmp_path / "pairs.parquet")
    capsys.readouterr()
    evaluate = ["evaluate", "--model", "models:/reward-model/1", "--pairs", str(tmp_path / "pairs.parquet")]
    assert cli([*evaluate, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_pairs"] == 6
    # and an unknown model is a one-line error
    missing = [
        "score",
        "--model",
        "models:/nope@champion",
        str(rows),
        "--output",
        str(tmp_path / "x.parquet"),
    ]
    assert cli(missing) == 1
    err = capsys.readouterr().err
    assert err.startswith("rmcore score: error: models:/nope@champion") and "Traceback" not in err


@pytest.mark.slow
def test_rmcore_score_finds_the_registry_of_its_config_in_a_fresh_process(
    folder: Path, champion: str, tmp_path: Path
) -> None:
    # given a config naming the store, no MLflow variables, and another working directory
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"tracking:\n  store: {folder / 'mlflow'}\n")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}

    # when `rmcore score --model models:/reward-model@champion --config ...` runs there
    rmcore = str(Path(sys.executable).parent / "rmcore")
    argv = [rmcore, "score", "--config", str(config), "--model", champion, str(rows), "--output", "out.pq"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    # then it scores every row from that store, and MLflow's default store was never created here
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "out.pq").num_rows == len(ROWS)
    assert not (tmp_path / "mlflow.db").exists()
