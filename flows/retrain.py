"""The retrain flow: ingest new labels -> pairs -> train -> evaluate new and champion -> register -> promote.

    python -m flows.retrain --sample                  # the built-in sample, as `make run` does
    python -m flows.retrain data/raw/new --config configs/default.yaml --set train.epochs=2
    prefect deployment run 'retrain/adhoc' -p paths='["data/raw/new"]'    # see prefect.yaml

Each task wraps one rmcore call and passes paths. Training is cached on a key over rmcore's version, the
config and the content hash of the lake's pair files: a rerun with no new data and an unchanged config
trains nothing and says so. Reading files and talking to MLflow retry; training and evaluation do not
(they are deterministic, and a retried training resumes from its last checkpoint anyway).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.context import TaskRunContext

from flows.ingest import build_pair_datasets, data_report, ingest_flow
from rmcore import __version__, tracking
from rmcore.config import Config, ConfigError, add_override_argument, load_config
from rmcore.data.lake import Lake
from rmcore.data.pairs import lake_pairs_hash
from rmcore.evaluation.evaluate import evaluate_model
from rmcore.evaluation.markdown import number, percent
from rmcore.evaluation.metrics import to_jsonable
from rmcore.evaluation.report import write_eval_report
from rmcore.evaluation.suspects import label_review
from rmcore.model.saved import MODEL_DIR, is_saved_model
from rmcore.training import TrainingError
from rmcore.training.checkpoint import discard_checkpoints, latest_checkpoint
from rmcore.training.exclusive import sole_training
from rmcore.training.launch import train_processes
from rmcore.training.metrics_log import METRICS
from rmcore.training.recipe import keyed_output, training_key

SPLIT = "test"
"""The held-out split the new model and the champion are compared on."""
SUSPECTS = "suspects.parquet"
LOWEST_ANNOTATORS = 5
"""How many of each source's lowest-agreement annotators the flow's summary lists."""


def _key_parameter(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"rmcore-train-{parameters['key']}"


@task(retries=2, retry_delay_seconds=1)
def pairs_hash(lake: str) -> str:
    """Content hash of the lake's pair and ranking tables (every split)."""
    return lake_pairs_hash(Lake(lake))


@task(cache_key_fn=_key_parameter, persist_result=True, result_serializer="json")
def train_model(config: Config, key: str, data_hash: str, lake_version: int) -> dict[str, Any]:
    """Train on the lake's train split into `config.output_dir`, in the training's MLflow run; the summary.

    An interrupted attempt's checkpoint is resumed, and so is its MLflow run; a retrain of the same key
    that is running now makes this one stop in one line (`sole_training`). With
    `train.nproc_per_node` > 1 the processes' output goes into this task's log.
    """
    tags = {
        "rmcore.data_hash": data_hash,
        "rmcore.lake_version": str(lake_version),
        "rmcore.version": __version__,
    }
    # under the lock, so that a retrain of the same key running now is refused before its checkpoint
    # is taken for an interrupted attempt's, or its MLflow run for a dead one
    with sole_training(config.output_dir):
        resume = latest_checkpoint(config.output_dir) is not None
        with tracking.training_run(config.tracking, key, resume, tags) as (run_id, resumed):
            if not resumed:
                tracking.log_config(config)
                tracking.log_dataset(Lake(config.data.lake).uri, lake_version, data_hash, "pairs", "training")
            result = train_processes(config, resume=resume, progress=False, log=get_run_logger().info)
            tracking.log_history(config.output_dir / METRICS)
            tracking.log_training_summary(result)
            tracking.log_evaluation(result["eval"], "validation")
    summary = {key: value for key, value in result.items() if key != "eval"}
    return to_jsonable(
        {**summary, "validation": result["eval"], "run_id": run_id, "out": str(config.output_dir)}
    )


@task
def evaluate_on_test(model_dir: str, config: Config, report_dir: str, title: str) -> dict[str, Any]:
    """Metrics of a model on the lake's held-out split, its visual report (PNG plots + HTML), and the
    held-out labels it contradicts (suspects.parquet) with its agreement with each annotator."""
    scored = evaluate_model(Path(model_dir), None, SPLIT, config)
    files = write_eval_report(
        scored.chosen, scored.rejected, scored.pairs, scored.metrics, Path(report_dir), title
    )
    review = label_review(scored, Path(report_dir) / SUSPECTS)
    report = {name: str(path) for name, path in files.items()} | {SUSPECTS: review["path"]}
    return {
        "metrics": to_jsonable(scored.metrics),
        "report": report,
        "suspects": review["pairs"],
        "annotators": to_jsonable(review["annotators"]),
    }


@task(retries=2, retry_delay_seconds=2)
def champion_model(config: Config, dest: str) -> dict[str, Any] | None:
    """The registered champion's version and local model directory, or None before the first promotion."""
    version = tracking.champion_version(config.tracking)
    if version is None:
        return None
    uri = f"models:/{config.tracking.registered_model}/{version}"
    return {"version": version, "model_dir": str(tracking.model_dir_of(uri, Path(dest)))}


@task(retries=2, retry_delay_seconds=2)
def register_model(
    config: Config,
    trained: dict[str, Any],
    evaluated: dict[str, Any],
    champion: dict[str, Any] | None,
    data_report: dict[str, str],
) -> str:
    """Log held-out metrics, reports and the pyfunc model into the training run; the new model version."""
    metrics = evaluated["metrics"]
    with tracking.tracked_run(config.tracking, run_id=trained["run_id"]):
        tracking.log_evaluation(metrics, SPLIT)
        if champion is not None:
            tracking.log_evaluation(champion["metrics"], f"champion_{SPLIT}")
        tracking.log_artifacts([Path(p) for p in evaluated["report"].values()], "evaluation")
        tracking.log_artifacts([Path(p) for p in data_report.values()], "data")
        model_uri = tracking.log_reward_model(Path(trained["model_dir"]))
        tags = {
            "rmcore.data_hash": trained["data_hash"],
            "rmcore.training_key": trained["key"],
            f"{SPLIT}.accuracy": str(metrics["accuracy"]),
            f"{SPLIT}.loss": str(metrics["loss"]),
        }
        return tracking.register(config.tracking, model_uri, tags)


@task(retries=2, retry_delay_seconds=2)
def promote_model(
    config: Config, version: str, accuracy: float, champion: dict[str, Any] | None
) -> dict[str, Any]:
    """Alias `champion` for the new version if it beats the champion on the same pairs, else `challenger`."""
    return tracking.promote(
        config.tracking,
        version,
        accuracy,
        champion["metrics"]["accuracy"] if champion else None,
        champion["version"] if champion else None,
    )


def annotator_lines(result: dict[str, Any]) -> list[str]:
    """The summary's label-quality part: each source's lowest-agreement annotators, with the new model's
    agreement with their held-out votes, and how many held-out labels the model contradicts."""
    evaluation = result["evaluation"]
    model = {(a["source"], a["annotator"]): a for a in evaluation["annotators"]}
    shown: dict[str, int] = {}
    rows = []
    for entry in result["annotators"]:
        if entry["agreement"] is None or shown.get(entry["source"], 0) == LOWEST_ANNOTATORS:
            continue
        shown[entry["source"]] = shown.get(entry["source"], 0) + 1
        held_out = model.get((entry["source"], entry["annotator"]), {}).get("model_agreement")
        rows.append(
            f"| {entry['source']} | {entry['annotator']} | {entry['judgments']} | "
            f"{percent(entry['agreement'])} | {percent(held_out)} |"
        )
    suspects = (
        f"{evaluation['suspects']} held-out labels the new model contradicts, surest first: "
        f"`{evaluation['report'][SUSPECTS]}`."
    )
    if not rows:
        return [suspects, ""]
    return [
        "Lowest-agreement annotators (agreement with the other annotators on shared pairs; the new "
        "model's agreement with their held-out votes):",
        "",
        "| source | annotator | judgments | agreement | model agreement |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        suspects,
        "",
    ]


def summary_markdown(result: dict[str, Any]) -> str:
    """The flow's markdown artifact: data counts, rejects, metrics of both models, the promotion decision."""
    ingested, pairs = result["ingest"], result["pairs"]
    if ingested is None:
        data = "No new label files: trained on the lake as it is."
    else:
        rejected = ", ".join(f"{reason} {n}" for reason, n in ingested["rejected"].items()) or "none"
        failed = "".join(f"\n- `{path}`: {why}" for path, why in ingested["files_failed"].items())
        data = (
            f"Rows read {ingested['rows_read']}: {ingested['accepted']} accepted, "
            f"{ingested['rejected_total']} rejected ({rejected}); "
            f"{ingested['new_comparisons']} new comparisons."
            + (f"\n\nFiles that could not be read, left out of this training:{failed}\n" if failed else "")
        )
    split_counts = ", ".join(f"{split} {n}" for split, n in pairs["pairs"].items())
    lines = [
        "# Retrain",
        "",
        f"{data} Pairs per split, from lake version {pairs['lake_version']}: {split_counts}.",
        "",
    ]
    if not result["trained"]:
        return "\n".join([*lines, result["message"]])
    new, champion, decision = result["evaluation"], result.get("champion"), result["promotion"]
    table = [f"| held-out ({SPLIT}) | new model | champion |", "|---|---:|---:|"]
    for label, value in (
        ("pairs", lambda m: str(m["n_pairs"])),
        ("accuracy", lambda m: percent(m["accuracy"])),
        ("Bradley-Terry loss", lambda m: number(m["loss"])),
        ("expected calibration error", lambda m: number(m["calibration"]["ece"])),
    ):
        theirs = value(champion["metrics"]) if champion else "none yet"
        table.append(f"| {label} | {value(new['metrics'])} | {theirs} |")
    verdict = (
        f"**Version {decision['version']} is the new champion.**"
        if decision["promoted"]
        else f"**Version {decision['version']} stays challenger**; the champion is still version "
        f"{decision['champion_version']}."
    )
    return "\n".join(
        [
            *lines,
            *annotator_lines(result),
            f"Trained {result['train']['steps']} steps on {result['train']['train_pairs']} pairs in "
            f"{result['train']['train_seconds']:.0f} s ({result['train']['train_pairs_per_s']:.1f} pairs/s).",
            "",
            *table,
            "",
            verdict + f" Margin required: {decision['margin']}.",
            "",
            f"Evaluation report: `{new['report']['report.html']}`. MLflow run `{result['run_id']}` "
            f"({result['tracking_uri']}).",
        ]
    )


@flow(name="retrain", log_prints=True)
def retrain_flow(
    paths: list[str] | None = None,
    config_path: str | None = None,
    sample: bool = False,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Ingest new label files, then train, evaluate, register and promote a reward model; what happened."""
    config = load_config(Path(config_path) if config_path else None, overrides or ())
    lake = str(config.data.lake)
    if paths or sample:
        ingested = ingest_flow(paths, config_path, sample=sample, overrides=overrides)
    else:
        pairs = build_pair_datasets(lake, config)
        ingested = {"ingest": None, "pairs": pairs, "report": data_report(lake)["paths"]}
    if not ingested["pairs"]["pairs"].get(SPLIT):
        raise ValueError(
            f"{lake}: the {SPLIT} split has no pairs, and promotion compares models on it; ingest more "
            f"labels or raise data.splits.{SPLIT}"
        )
    data_hash = pairs_hash(lake)
    key = training_key(config, data_hash)
    run_config = keyed_output(config, key)
    stale = not is_saved_model(run_config.output_dir / MODEL_DIR)
    lake_version = ingested["pairs"]["lake_version"]
    state = train_model.with_options(refresh_cache=stale)(
        run_config, key, data_hash, lake_version, return_state=True
    )
    trained = {**state.result(), "key": key, "data_hash": data_hash}
    result: dict[str, Any] = {
        "ingest": ingested["ingest"],
        "pairs": ingested["pairs"],
        "trained": state.name != "Cached",
        "model_dir": trained["model_dir"],
        "run_id": trained["run_id"],
        "tracking_uri": tracking.tracking_uri(config.tracking),
    }
    if not result["trained"]:
        result["message"] = (
            f"No new data and an unchanged config (training key {key[:16]}): nothing trained. The model of "
            f"MLflow run {trained['run_id']} ({trained['model_dir']}) stays as registered."
        )
        print(result["message"])
    else:
        reports = run_config.output_dir / "report"
        result["train"] = {k: v for k, v in trained.items() if k != "validation"}
        result["annotators"] = orjson.loads(Path(ingested["report"]["json"]).read_bytes())["annotators"]
        result["evaluation"] = evaluate_on_test(
            trained["model_dir"], config, str(reports / "new"), "New model"
        )
        with tempfile.TemporaryDirectory(prefix="rmcore-champion-") as scratch:
            champion = champion_model(run_config, scratch)
            if champion is not None:
                scored = evaluate_on_test(
                    champion["model_dir"], config, str(reports / "champion"), "Champion"
                )
                champion = result["champion"] = {**champion, **scored}
        version = register_model(run_config, trained, result["evaluation"], champion, ingested["report"])
        result["promotion"] = promote_model(
            run_config, version, result["evaluation"]["metrics"]["accuracy"], champion
        )
        discard_checkpoints(run_config.output_dir)
    create_markdown_artifact(
        key="retrain-summary",
        markdown=summary_markdown(result),
        description="rmcore retrain: data, metrics, promotion",
    )
    create_link_artifact(
        key="mlflow-run",
        link=tracking.run_ui_link(config.tracking, result["run_id"]),
        description="The MLflow run of this retraining (for a local store: start `mlflow ui` first)",
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the flow from the command line and print where to look."""
    parser = argparse.ArgumentParser(description="Run the rmcore retrain flow.")
    parser.add_argument("paths", nargs="*", help="new label files or folders to ingest first")
    parser.add_argument("--sample", action="store_true", help="ingest the built-in sample")
    parser.add_argument("--config", help="pipeline config YAML (default: configs/default.yaml's values)")
    add_override_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    try:
        result = retrain_flow(args.paths, args.config, args.sample, args.overrides)
    except (ConfigError, TrainingError, FileNotFoundError, ValueError) as error:
        print(f"retrain: error: {error}", file=sys.stderr)
        return 1
    print()
    if result["trained"]:
        decision, metrics = result["promotion"], result["evaluation"]["metrics"]
        against = (
            f" (champion version {decision['previous_champion']}: {percent(decision['champion_accuracy'])})"
            if decision["previous_champion"]
            else " (the first champion)"
        )
        print(
            f"model version {decision['version']}: held-out accuracy {percent(metrics['accuracy'])} on "
            f"{metrics['n_pairs']} {SPLIT} pairs; "
            + ("promoted to champion" if decision["promoted"] else "challenger, champion unchanged")
            + against
        )
        print(f"evaluation report: {result['evaluation']['report']['report.html']}")
    else:
        print(result["message"])
    print(f"model: {result['model_dir']}")
    print(f"MLflow run {result['run_id']} in {result['tracking_uri']}")
    mlflow_cli = os.path.relpath(Path(sys.executable).parent / "mlflow")
    print(f"browse: {mlflow_cli} ui --backend-store-uri {result['tracking_uri']}   (http://127.0.0.1:5000)")
    print(f"pipeline took {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
