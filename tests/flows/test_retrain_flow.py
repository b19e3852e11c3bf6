"""The retrain flow end to end under a real (temporary) Prefect API, a temporary MLflow SQLite store and a
tiny encoder: register, promote, skip a rerun with nothing new, never promote a worse model."""

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client

from flows.retrain import retrain_flow, train_model
from rmcore.config import load_config
from rmcore.evaluation.markdown import percent
from rmcore.evaluation.suites.compare import difference, section_scores, suite_refusals
from rmcore.evaluation.suites.run import evaluate_suite
from rmcore.tracking import experiment_id, tracking_uri
from rmcore.training import TrainingError
from rmcore.training.recipe import keyed_output


@pytest.fixture
def pipeline(tmp_path: Path, tiny_encoder_dir: Path) -> Path:
    """A pipeline config whose lake, runs and MLflow store are temporary, training the tiny encoder."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"data:\n  lake: {tmp_path / 'lake'}\n  raw: {tmp_path / 'raw'}\n"
        f"model:\n  name_or_path: {tiny_encoder_dir}\n  max_length: 48\n  precision: fp32\n"
        "train:\n  batch_size: 16\n  lr: 2.0e-3\n  epochs: 4\n  save_every: 1000\n"
        f"tracking:\n  store: {tmp_path / 'mlflow'}\n  system_metrics: false\n"
        f"output_dir: {tmp_path / 'runs'}\n"
    )
    return path


async def _latest_artifact(key: str) -> str:
    async with get_client() as client:
        artifacts = await client.read_latest_artifacts()
        return str(next(a.data for a in artifacts if a.key == key))


@pytest.mark.slow
def test_retrain_registers_a_champion_skips_a_rerun_and_keeps_it_against_a_worse_model(
    pipeline: Path,
    tmp_path: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given label files where the chosen response carries "good" words, and a crowd of three careful
    # annotators and a contrarian voting on 20 more pairs
    first_labels = write_labels(tmp_path / "incoming" / "day1.jsonl", synthetic_pairs(400, seed=11))
    crowd = tmp_path / "incoming" / "crowd.jsonl"
    crowd.write_bytes(
        b"".join(
            orjson.dumps(
                {"prompt": row["prompt"][0]["content"], "response_a": row["chosen"]}
                | {"response_b": row["rejected"], "annotator": annotator}
                | {"label": "b" if annotator == "contrarian" else "a"}
            )
            + b"\n"
            for row in synthetic_pairs(20, seed=13).to_pylist()
            for annotator in ("careful-1", "careful-2", "careful-3", "contrarian")
        )
    )
    # and an export that is not the Parquet its name says
    broken = tmp_path / "incoming" / "broken.parquet"
    broken.write_bytes(b"PAR1 and then nothing")
    config = load_config(pipeline)
    client = MlflowClient(tracking_uri(config.tracking))

    # when the flow retrains on them
    first = retrain_flow([str(first_labels), str(crowd), str(broken)], str(pipeline))

    # then version 1 is registered as champion, with its held-out metrics, data hash and reports
    assert first["trained"] and first["promotion"]["promoted"]
    champion = client.get_model_version_by_alias("reward-model", "champion")
    assert str(champion.version) == first["promotion"]["version"] == "1"
    run = client.get_run(first["run_id"])
    assert run.data.metrics["test.accuracy"] == pytest.approx(first["evaluation"]["metrics"]["accuracy"])
    assert run.data.metrics["test.accuracy"] >= 0.9
    assert len(client.get_metric_history(first["run_id"], "train.loss")) > 1
    assert run.data.metrics["training.tokens_encoded"] == first["train"]["tokens_encoded"] > 0
    assert run.data.metrics["training.shapes"] == first["train"]["shapes"] >= 1
    assert champion.tags["rmcore.data_hash"] == run.data.tags["rmcore.data_hash"]
    assert run.data.tags["rmcore.lake_version"] == str(first["ingest"]["lake_version"]) == "1"
    logged = {a.path for a in client.list_artifacts(first["run_id"], "evaluation")}
    assert {"evaluation/report.html", "evaluation/reliability.png", "evaluation/suspects.parquet"} <= logged
    data_logged = {a.path for a in client.list_artifacts(first["run_id"], "data")}
    assert {"data/data_report.json", "data/annotators.png"} <= data_logged
    summary = asyncio.run(_latest_artifact("retrain-summary"))
    assert "new champion" in summary
    # and the unreadable file did not stop it: the others were committed and trained on, and the
    # summary lists it with the reason
    assert list(first["ingest"]["files_failed"]) == [str(broken)]
    assert f"`{broken}`: cannot read as parquet" in summary
    assert first["ingest"]["accepted"] == 400 + 80
    # and its summary lists the lowest-agreement annotators, the contrarian first, and the suspects
    annotators = [line for line in summary.splitlines() if line.startswith("| ") and "crowd" in line]
    assert annotators[0].split(" | ")[1] == "contrarian" and "| 0.0% |" in annotators[0]
    assert f"{first['evaluation']['suspects']} held-out labels the new model contradicts" in summary

    # when it runs again with the same file and config
    again = retrain_flow([str(first_labels)], str(pipeline))

    # then nothing is trained or registered, and it says so
    assert not again["trained"] and "nothing trained" in again["message"]
    assert again["run_id"] == first["run_id"]
    assert len(client.search_model_versions("name='reward-model'")) == 1

    # when new labels arrive but the config makes a worse model (one tiny step: an untrained head)
    second_labels = write_labels(tmp_path / "incoming" / "day2.jsonl", synthetic_pairs(200, seed=12))
    untrained = ["train.max_steps=1", "train.lr=1e-6"]
    worse = retrain_flow([str(second_labels)], str(pipeline), overrides=untrained)

    # then the worse model is registered as challenger and the champion stays, both scored on the same pairs
    decision = worse["promotion"]
    assert worse["trained"] and not decision["promoted"]
    assert decision["new_accuracy"] < decision["champion_accuracy"]
    assert worse["champion"]["metrics"]["n_pairs"] == worse["evaluation"]["metrics"]["n_pairs"] > 0
    assert str(client.get_model_version_by_alias("reward-model", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("reward-model", "challenger")
    assert str(challenger.version) == decision["version"] == "2"


SECTIONS = {"alpacaeval-easy": "Chat", "mt-bench-hard": "Chat Hard", "refusals-dangerous": "Safety"}
SECTIONS |= {"hep-python": "Reasoning"}
"""A RewardBench subset of each section, for a made-up suite file."""


@pytest.mark.slow
def test_retrain_scores_both_models_on_a_suite_logs_them_side_by_side_and_gates_promotion(
    pipeline: Path,
    tmp_path: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given a RewardBench-shaped file (prompt, chosen, rejected, subset, id): 24 pairs whose chosen
    # response carries "good" words, 6 in a subset of each section; and a suite floor of 5 points
    suite = tmp_path / "suites" / "rewardbench.jsonl"
    suite.parent.mkdir()
    suite.write_bytes(
        b"".join(
            orjson.dumps(
                {"prompt": row["prompt"][0]["content"], "chosen": row["chosen"], "rejected": row["rejected"]}
                | {"subset": list(SECTIONS)[i % 4], "id": str(i)}
            )
            + b"\n"
            for i, row in enumerate(synthetic_pairs(24, seed=21).to_pylist())
        )
    )
    options = [f"evaluate.suites=[{suite}]", "tracking.suite_floor=0.05"]
    config = load_config(pipeline, options)
    client = MlflowClient(tracking_uri(config.tracking))
    labels = write_labels(tmp_path / "incoming" / "day1.jsonl", synthetic_pairs(200, seed=11))

    # when the flow trains a first model
    first = retrain_flow([str(labels)], str(pipeline), overrides=options)

    # then its run has suite.rewardbench.<section> and overall, as evaluate_suite scores the model
    champion = evaluate_suite(Path(first["model_dir"]), str(suite), config)
    names = {f"suite.rewardbench.{s}" for s in ("chat", "chat_hard", "safety", "reasoning", "overall")}
    assert set(champion.metrics()) == names
    logged = client.get_run(first["run_id"]).data.metrics
    assert {name: logged[name] for name in names} == pytest.approx(champion.metrics())
    assert first["suites"][0].sections == pytest.approx(champion.sections)
    # and the summary's suite table shows its scores, with no champion yet; the report is logged
    summary = asyncio.run(_latest_artifact("retrain-summary"))
    assert f"| Chat | {percent(champion.sections['Chat'])} | none yet | n/a |" in summary
    reports = {a.path for a in client.list_artifacts(first["run_id"], "evaluation/suites")}
    assert "evaluation/suites/suite_rewardbench.json" in reports

    # when new labels come with a config that makes a worse model (one tiny step: an untrained head)
    more = write_labels(tmp_path / "incoming" / "day2.jsonl", synthetic_pairs(100, seed=12))
    second = retrain_flow(
        [str(more)], str(pipeline), overrides=[*options, "train.max_steps=1", "train.lr=1e-6"]
    )

    # then both models' scores are on its run, the champion's as champion_suite.*
    new = evaluate_suite(Path(second["model_dir"]), str(suite), config)
    logged = client.get_run(second["run_id"]).data.metrics
    assert {name: logged[name] for name in names} == pytest.approx(new.metrics())
    assert {name: logged[f"champion_{name}"] for name in names} == pytest.approx(champion.metrics())
    # and the sections more than 5 points below the champion's refuse it, named in the decision, the
    # registered version's tags and the summary, beside the table of both models and their difference
    refusals = suite_refusals(section_scores(new), section_scores(champion), 0.05)
    decision = second["promotion"]
    assert refusals and decision["suite_refusals"] == refusals and not decision["promoted"]
    tags = client.get_model_version("reward-model", decision["version"]).tags
    assert tags["promotion.refused_by"] == "; ".join(refusals)
    summary = asyncio.run(_latest_artifact("retrain-summary"))
    assert "Refused by the benchmark suites (tracking.suite_floor):" in summary
    assert all(f"- {reason}" in summary for reason in refusals)
    chat = (new.sections["Chat"], champion.sections["Chat"])
    assert f"| Chat | {percent(chat[0])} | {percent(chat[1])} | {difference(*chat)} |" in summary


def test_retrain_without_test_pairs_stops_before_training(
    pipeline: Path,
    tmp_path: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given splits that leave no prompt to the test split, on which promotion compares models
    labels = write_labels(tmp_path / "incoming" / "labels.jsonl", synthetic_pairs(20, seed=3))
    no_test = ["data.splits.train=0.9", "data.splits.validation=0.1", "data.splits.test=0.0"]

    # when the flow runs / then it refuses before training, saying what to change
    with pytest.raises(ValueError, match=r"test split has no pairs.*data\.splits\.test"):
        retrain_flow([str(labels)], str(pipeline), overrides=no_test)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_retrain_launches_torchrun_for_several_processes(
    pipeline: Path,
    tmp_path: Path,
    synthetic_pairs: Callable[..., pa.Table],
    write_labels: Callable[[Path, pa.Table], Path],
) -> None:
    # given a config asking for two processes per node
    labels = write_labels(tmp_path / "incoming" / "labels.jsonl", synthetic_pairs(120, seed=5))

    # when the flow retrains
    result = retrain_flow([str(labels)], str(pipeline), overrides=["train.nproc_per_node=2"])

    # then training ran under torchrun with two ranks (gloo on CPU) and the model was registered
    assert result["train"]["world_size"] == 2
    assert result["promotion"]["version"] == "1"
    assert (Path(result["model_dir"]) / "model.safetensors").exists()


def test_a_retrain_of_a_key_that_is_training_now_stops_without_touching_its_run(
    pipeline: Path, tmp_path: Path, hold_training: Callable[[Path], subprocess.Popen[str]]
) -> None:
    # given a retrain of some training key running in another process (it holds the key's folder)
    config = keyed_output(load_config(pipeline), "k" * 32)
    holder = hold_training(config.output_dir)

    # when a second retrain of the same key reaches its training task
    with pytest.raises(TrainingError, match=f"being trained by process {holder.pid}"):
        train_model.fn(config, "k" * 32, "data-hash", 1)

    # then it stopped before MLflow: no run was started, adopted or marked killed
    client = MlflowClient(tracking_uri(config.tracking))
    assert client.search_runs([experiment_id(config.tracking)]) == []
