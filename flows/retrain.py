"""The retrain flow: ingest new labels -> pairs -> train -> evaluate new and champion -> register -> promote.

    python -m flows.retrain --sample                  # the built-in sample, as `make run` does
    python -m flows.retrain data/raw/new --config configs/default.yaml --set train.epochs=2
    prefect deployment run 'retrain/adhoc' -p paths='["data/raw/new"]'    # see prefect.yaml

After the test split, the new model and the champion are scored on each benchmark suite of
evaluate.suites (a task per model per suite): the scores go to the training's MLflow run as
suite.<suite>.<section> (the champion's as champion_suite.<suite>.<section>), the summary shows them side
by side, and with tracking.suite_floor set a section too far below the champion's refuses promotion.

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
from collections.abc import Callable
from pathlib import Path

import orjson
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.context import TaskRunContext

from flows.ingest import build_pair_datasets, data_report, ingest_flow
from flows.records import (
    Champion,
    ChampionEvaluation,
    Headline,
    HeldOutEvaluation,
    ModelAgreement,
    RetrainResult,
    TrainedModel,
)
from rmcore import __version__, tracking
from rmcore.config import Config, ConfigError, SuiteSpec, add_override_argument, load_config
from rmcore.data.ingest.commit import IngestRecord
from rmcore.data.lake import Lake
from rmcore.data.pairs import lake_pairs_hash
from rmcore.evaluation.evaluate import evaluate_model
from rmcore.evaluation.markdown import number, percent
from rmcore.evaluation.metrics import to_jsonable
from rmcore.evaluation.report import write_eval_report
from rmcore.evaluation.suites.compare import comparison_markdown, section_scores
from rmcore.evaluation.suites.report import write_suite_report
from rmcore.evaluation.suites.results import SuiteResult
from rmcore.evaluation.suites.run import evaluate_suite
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
SUITES = "suites"
"""The folder of a model's report that holds its suite reports."""


def _key_parameter(_: TaskRunContext, parameters: dict[str, object]) -> str:
    return f"rmcore-train-{parameters['key']}"


@task(retries=2, retry_delay_seconds=1)
def pairs_hash(lake: str) -> str:
    """Content hash of the lake's pair and ranking tables (every split)."""
    return lake_pairs_hash(Lake(lake))


@task(cache_key_fn=_key_parameter, persist_result=True, result_serializer="json")
def train_model(config: Config, key: str, data_hash: str, lake_version: int) -> TrainedModel:
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
    trained: TrainedModel = to_jsonable(TrainedModel(**result, run_id=run_id, out=str(config.output_dir)))
    return trained


@task
def evaluate_on_test(model_dir: str, config: Config, report_dir: str, title: str) -> HeldOutEvaluation:
    """Metrics of a model on the lake's held-out split, its visual report (PNG plots + HTML), and the
    held-out labels it contradicts (suspects.parquet) with its agreement with each annotator."""
    scored = evaluate_model(Path(model_dir), None, SPLIT, config)
    files = write_eval_report(
        scored.chosen, scored.rejected, scored.pairs, scored.metrics, Path(report_dir), title
    )
    review = label_review(scored, Path(report_dir) / SUSPECTS)
    report = {name: str(path) for name, path in files.items()} | {SUSPECTS: review["path"]}
    metrics = to_jsonable(scored.metrics)
    headline = Headline(
        n_pairs=metrics["n_pairs"],
        accuracy=metrics["accuracy"],
        loss=metrics["loss"],
        ece=metrics["calibration"]["ece"],
    )
    annotators: list[ModelAgreement] = to_jsonable(review["annotators"])
    return HeldOutEvaluation(
        metrics=metrics, headline=headline, report=report, suspects=review["pairs"], annotators=annotators
    )


@task
def score_suite(model_dir: str, spec: SuiteSpec, config: Config, report_dir: str) -> SuiteResult:
    """A model's scores on one benchmark suite by its published rules, and its report in `report_dir`."""
    result = evaluate_suite(Path(model_dir), spec.source, config, spec.suite, spec.exclude_overlap)
    write_suite_report(result, Path(report_dir))
    return result


def score_suites(model_dir: str, config: Config, report_dir: str) -> list[SuiteResult]:
    """A model's scores on each of evaluate.suites, in their order; two files of one suite are refused,
    since their metrics suite.<suite>.* would collide."""
    results = [score_suite(model_dir, spec, config, report_dir) for spec in config.evaluate.suites]
    for i, result in enumerate(results):
        earlier = next((r for r in results[:i] if r.suite == result.suite), None)
        if earlier is not None:
            raise ValueError(
                f"evaluate.suites: {earlier.source} and {result.source} are both {result.suite} suites; "
                "their metrics suite.<suite>.* would collide, so list one file per suite"
            )
    return results


def suite_metrics(results: list[SuiteResult], prefix: str = "") -> dict[str, float]:
    """Every result's `SuiteResult.metrics()` in one mapping, each name after `prefix`."""
    return {f"{prefix}{name}": score for result in results for name, score in result.metrics().items()}


def all_sections(results: list[SuiteResult]) -> dict[str, float]:
    """Every result's section scores by metric name (`section_scores`), what the promotion gate reads."""
    return {name: score for result in results for name, score in section_scores(result).items()}


@task(retries=2, retry_delay_seconds=2)
def champion_model(config: Config, dest: str) -> Champion | None:
    """The registered champion's version and local model directory, or None before the first promotion."""
    version = tracking.champion_version(config.tracking)
    if version is None:
        return None
    uri = f"models:/{config.tracking.registered_model}/{version}"
    return Champion(version=version, model_dir=str(tracking.model_dir_of(uri, Path(dest))))


@task(retries=2, retry_delay_seconds=2)
def register_model(
    config: Config,
    trained: TrainedModel,
    evaluated: HeldOutEvaluation,
    suites: list[SuiteResult],
    champion: ChampionEvaluation | None,
    data_report: dict[str, str],
    key: str,
    data_hash: str,
) -> str:
    """Log held-out metrics, suite scores, reports and the pyfunc model into the training run; the new
    model version."""
    with tracking.tracked_run(config.tracking, run_id=trained["run_id"]):
        tracking.log_evaluation(evaluated["metrics"], SPLIT)
        tracking.log_evaluation(suite_metrics(suites), "")
        if champion is not None:
            tracking.log_evaluation(champion["metrics"], f"champion_{SPLIT}")
            tracking.log_evaluation(suite_metrics(champion["suites"], "champion_"), "")
        reports = [Path(p) for p in evaluated["report"].values()]
        suite_reports = Path(evaluated["report"]["report.html"]).parent / SUITES
        tracking.log_artifacts([*reports, *([suite_reports] if suites else [])], "evaluation")
        tracking.log_artifacts([Path(p) for p in data_report.values()], "data")
        model_uri = tracking.log_reward_model(Path(trained["model_dir"]))
        tags = {
            "rmcore.data_hash": data_hash,
            "rmcore.training_key": key,
            f"{SPLIT}.accuracy": str(evaluated["headline"]["accuracy"]),
            f"{SPLIT}.loss": str(evaluated["headline"]["loss"]),
        }
        return tracking.register(config.tracking, model_uri, tags)


@task(retries=2, retry_delay_seconds=2)
def promote_model(
    config: Config,
    version: str,
    evaluated: HeldOutEvaluation,
    suites: list[SuiteResult],
    champion: ChampionEvaluation | None,
) -> tracking.Promotion:
    """Alias `champion` for the new version if it beats the champion on the same pairs, and no suite
    section falls more than tracking.suite_floor below the champion's; else `challenger`."""
    accuracy = evaluated["headline"]["accuracy"]
    if accuracy is None:
        raise ValueError(f"no {SPLIT} pair has a majority label (all are conflicts): nothing to compare on")
    if champion is None:
        return tracking.promote(config.tracking, version, accuracy, None, None)
    scores = (all_sections(suites), all_sections(champion["suites"]))
    theirs = champion["headline"]["accuracy"]
    return tracking.promote(config.tracking, version, accuracy, theirs, champion["version"], scores)


def annotator_lines(result: RetrainResult) -> list[str]:
    """The summary's label-quality part: each source's lowest-agreement annotators, with the new model's
    agreement with their held-out votes, and how many held-out labels the model contradicts."""
    evaluation = result["evaluation"]
    model = {(a["source"], a["annotator"]): a["model_agreement"] for a in evaluation["annotators"]}
    shown: dict[str, int] = {}
    rows = []
    for entry in result["annotators"]:
        if entry["agreement"] is None or shown.get(entry["source"], 0) == LOWEST_ANNOTATORS:
            continue
        shown[entry["source"]] = shown.get(entry["source"], 0) + 1
        held_out = model.get((entry["source"], entry["annotator"]))
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


def suite_lines(result: RetrainResult) -> list[str]:
    """The summary's benchmark part: per suite, each section's score of the new model and the champion
    and their difference (`comparison_markdown`); nothing without evaluate.suites."""
    mine, champion = result["suites"], result.get("champion")
    theirs: list[SuiteResult | None] = [*champion["suites"]] if champion else [None] * len(mine)
    tables = [comparison_markdown(ours, other) for ours, other in zip(mine, theirs, strict=True)]
    return ["## Benchmark suites", "", *tables] if tables else []


def summary_markdown(result: RetrainResult) -> str:
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
    rows: list[tuple[str, Callable[[Headline], str]]] = [
        ("pairs", lambda m: str(m["n_pairs"])),
        ("accuracy", lambda m: percent(m["accuracy"])),
        ("Bradley-Terry loss", lambda m: number(m["loss"])),
        ("expected calibration error", lambda m: number(m["ece"])),
    ]
    for label, value in rows:
        theirs = value(champion["headline"]) if champion else "none yet"
        table.append(f"| {label} | {value(new['headline'])} | {theirs} |")
    if decision["promoted"]:
        verdict = f"**Version {decision['version']} is the new champion.**"
    else:
        verdict = (
            f"**Version {decision['version']} stays challenger**; the champion is still version "
            f"{decision['champion_version']}."
        )
    closing = [verdict + f" Margin required: {decision['margin']}.", ""]
    if decision["suite_refusals"]:
        refusals = [f"- {reason}" for reason in decision["suite_refusals"]]
        closing += ["Refused by the benchmark suites (tracking.suite_floor):", "", *refusals, ""]
    train = result["train"]
    return "\n".join(
        [
            *lines,
            *annotator_lines(result),
            f"Trained {train['steps']} steps on {train['train_pairs']} pairs in "
            f"{train['train_seconds']:.0f} s ({train['train_pairs_per_s']:.1f} pairs/s).",
            "",
            *table,
            "",
            *suite_lines(result),
            *closing,
            f"Evaluation report: `{new['report']['report.html']}`. MLflow run `{result['run_id']}` "
            f"({result['tracking_uri']}).",
        ]
    )


def evaluate_and_promote(
    result: RetrainResult,
    config: Config,
    run_config: Config,
    trained: TrainedModel,
    data_report: dict[str, str],
    key: str,
    data_hash: str,
) -> None:
    """Score the new model and the champion on the test split and the suites, register and promote the
    new one; what happened goes into `result`.

    The champion is downloaded into a scratch folder and scored there, on the same pairs and suites.
    """
    reports = run_config.output_dir / "report"
    result["train"] = trained
    result["annotators"] = orjson.loads(Path(data_report["json"]).read_bytes())["annotators"]
    evaluation = result["evaluation"] = evaluate_on_test(
        trained["model_dir"], config, str(reports / "new"), "New model"
    )
    suites = result["suites"] = score_suites(trained["model_dir"], config, str(reports / "new" / SUITES))
    champion: ChampionEvaluation | None = None
    with tempfile.TemporaryDirectory(prefix="rmcore-champion-") as scratch:
        found = champion_model(run_config, scratch)
        if found is not None:
            scored = evaluate_on_test(found["model_dir"], config, str(reports / "champion"), "Champion")
            theirs = score_suites(found["model_dir"], config, str(reports / "champion" / SUITES))
            champion = result["champion"] = ChampionEvaluation(**found, **scored, suites=theirs)
    version = register_model(run_config, trained, evaluation, suites, champion, data_report, key, data_hash)
    result["promotion"] = promote_model(run_config, version, evaluation, suites, champion)


@flow(name="retrain", log_prints=True)
def retrain_flow(
    paths: list[str] | None = None,
    config_path: str | None = None,
    sample: bool = False,
    overrides: list[str] | None = None,
) -> RetrainResult:
    """Ingest new label files, then train, evaluate, register and promote a reward model; what happened."""
    config = load_config(Path(config_path) if config_path else None, overrides or ())
    lake = str(config.data.lake)
    ingest: IngestRecord | None = None
    if paths or sample:
        ingested = ingest_flow(paths, config_path, sample=sample, overrides=overrides)
        ingest, pairs, report = ingested["ingest"], ingested["pairs"], ingested["report"]
    else:
        pairs, report = build_pair_datasets(lake, config), data_report(lake)["paths"]
    if not pairs["pairs"].get(SPLIT):
        raise ValueError(
            f"{lake}: the {SPLIT} split has no pairs, and promotion compares models on it; ingest more "
            f"labels or raise data.splits.{SPLIT}"
        )
    data_hash = pairs_hash(lake)
    key = training_key(config, data_hash)
    run_config = keyed_output(config, key)
    stale = not is_saved_model(run_config.output_dir / MODEL_DIR)
    state = train_model.with_options(refresh_cache=stale)(
        run_config, key, data_hash, pairs["lake_version"], return_state=True
    )
    trained: TrainedModel = state.result()
    result = RetrainResult(
        ingest=ingest,
        pairs=pairs,
        trained=state.name != "Cached",
        model_dir=trained["model_dir"],
        run_id=trained["run_id"],
        tracking_uri=tracking.tracking_uri(config.tracking),
    )
    if not result["trained"]:
        result["message"] = (
            f"No new data and an unchanged config (training key {key[:16]}): nothing trained. The model of "
            f"MLflow run {trained['run_id']} ({trained['model_dir']}) stays as registered."
        )
        print(result["message"])
    else:
        evaluate_and_promote(result, config, run_config, trained, report, key, data_hash)
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
        decision, headline = result["promotion"], result["evaluation"]["headline"]
        against = (
            f" (champion version {decision['previous_champion']}: {percent(decision['champion_accuracy'])})"
            if decision["previous_champion"]
            else " (the first champion)"
        )
        print(
            f"model version {decision['version']}: held-out accuracy {percent(headline['accuracy'])} on "
            f"{headline['n_pairs']} {SPLIT} pairs; "
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
