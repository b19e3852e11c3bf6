"""Experiment tracking (MLflow): runs, the reward model as a pyfunc, the registry and promotion.

mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db   (browse what this module records)

The only module that imports mlflow (with `reward_pyfunc.py`, the code MLflow logs as the model).
The store is `tracking.tracking_uri` of the config, else $MLFLOW_TRACKING_URI, else SQLite in
`mlflow/mlflow.db` with artifacts in `mlflow/artifacts` (never ./mlruns).

Logging goes to the active run of the calling thread: open it with `tracked_run`, or resume it by
id with `tracked_run(cfg, run_id=...)` in another thread (a Prefect task's).

Promotion (champion / challenger): a new version takes the alias "champion" when its accuracy on
the held-out pairs beats the champion's on the same pairs by more than `promotion_margin`, or when
there is no champion yet. Otherwise it takes the alias "challenger" (the latest version that did
not beat the champion) and the champion stays. With `suite_floor` set, a new version whose score on
any section of a benchmark suite (evaluate.suites) falls more than the floor below the champion's on
the same suite is refused whatever its accuracy (`suite_refusals`). Each version is tagged with the
decision and both scores; a replaced champion keeps its version and is tagged `promotion.replaced_by`.
"""

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import unquote

import mlflow
import pandas as pd
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from rmcore.config import Config, TrackingConfig
from rmcore.evaluation.suites.compare import suite_refusals
from rmcore.model.saved import read_metadata

CHAMPION = "champion"
"""Alias of the registered version that serves (`models:/reward-model@champion`)."""
CHALLENGER = "challenger"
"""Alias of the latest version that did not beat the champion."""
MODEL_NAME = "model"
"""Name of the logged pyfunc model in its run."""
MODEL_DIR_ARTIFACT = "model_dir"
"""Key of the rmcore model directory among the pyfunc's artifacts."""
PYFUNC_CODE = Path(__file__).with_name("reward_pyfunc.py")
"""The pyfunc's code, logged as the model (MLflow models from code)."""
INPUT_EXAMPLE = pd.DataFrame(
    {
        "prompt": ["What is the capital of France?", "What is the capital of France?"],
        "response": ["The capital of France is Paris.", "I am not sure, maybe Lyon."],
    }
)
"""Two (prompt, response) rows stored with the model as its input example."""
PYFUNC_PACKAGES = (
    "mlflow",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "numpy",
    "pandas",
    "pyarrow",
    "orjson",
    "pydantic",
    "pyyaml",
    "duckdb",
)
"""What the pyfunc imports through rmcore.scoring and rmcore.model (rmcore itself must be installed
beside them)."""


class TrackingError(ValueError):
    """A tracking call that cannot be done as asked (no active run, an unknown model)."""


# ---------------------------------------------------------------- store and runs


def tracking_uri(cfg: TrackingConfig) -> str:
    """cfg.tracking_uri, else $MLFLOW_TRACKING_URI, else sqlite:///<absolute cfg.store>/mlflow.db."""
    if cfg.tracking_uri:
        return cfg.tracking_uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(cfg.store / 'mlflow.db').resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (a relative one against the cwd); None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0])).resolve()


def client(cfg: TrackingConfig) -> MlflowClient:
    """A client of cfg's store (tracking and registry), which also becomes this process's tracking URI.

    A SQLite database's folder is created first; MLflow creates the database itself.
    """
    uri = tracking_uri(cfg)
    database = sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    _use_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _use_tracking_uri(uri: str) -> None:
    """Make `uri` the store of MLflow's fluent API in this process, leaving $MLFLOW_TRACKING_URI as it was.

    `mlflow.set_tracking_uri` also exports the variable, which would then outrank the `store` of every
    config this process reads later (a second pipeline, a test).
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def experiment_id(cfg: TrackingConfig) -> str:
    """The id of cfg.experiment, created on first use; with SQLite its artifacts go beside the database.

    A SQLite store at <dir>/mlflow.db keeps artifacts in <dir>/artifacts (a file:// URI), so nothing
    lands in ./mlruns; a tracking server decides its own artifact location.
    """
    store = client(cfg)
    found = store.get_experiment_by_name(cfg.experiment)
    if found is not None:
        return str(found.experiment_id)
    database = sqlite_path(tracking_uri(cfg))
    location = (database.parent / "artifacts").as_uri() if database is not None else None
    return store.create_experiment(cfg.experiment, artifact_location=location)


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_id: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start a run in cfg's experiment (or resume run `run_id`) for the block; yields the run id.

    System metrics are sampled while the block runs when cfg.system_metrics. The run ends FINISHED,
    or FAILED when the block raises. Re-entering the run already active in this thread is a no-op.
    """
    experiment = experiment_id(cfg)
    active = mlflow.active_run()
    if run_id is not None and active is not None and active.info.run_id == run_id:
        yield run_id
        return
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=experiment if run_id is None else None,
        run_name=run_name,
        tags=tags,
        log_system_metrics=cfg.system_metrics,
    ) as run:
        yield run.info.run_id


TRAINING_KEY_TAG = "rmcore.training_key"
"""Tag naming the training key of a run: what it trains, so a retried training finds its run."""


@contextmanager
def training_run(
    cfg: TrackingConfig, key: str, resume: bool, tags: dict[str, str] | None = None
) -> Iterator[tuple[str, bool]]:
    """The run of the training `key` for the block; yields (run id, whether an earlier run was resumed).

    A process killed mid-training leaves its run RUNNING. When training resumes from that attempt's
    checkpoint (`resume`), the newest such run of the same key is resumed, same run id; every other
    RUNNING run of the key is marked KILLED, since no process is left to finish it. Otherwise a new
    run starts, tagged with the key and `tags`. It ends FINISHED, or FAILED when the block raises.
    """
    store = client(cfg)
    stale = store.search_runs(
        [experiment_id(cfg)],
        filter_string=f"tags.`{TRAINING_KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'",
        order_by=["attributes.start_time DESC"],
    )
    adopted = stale[0].info.run_id if resume and stale else None
    for run in stale:
        if run.info.run_id != adopted:
            store.set_terminated(run.info.run_id, status="KILLED")
    if adopted is not None:
        with tracked_run(cfg, run_id=adopted) as run_id:
            yield run_id, True
        return
    run_tags = {TRAINING_KEY_TAG: key, **(tags or {})}
    with tracked_run(cfg, run_name=f"retrain-{key[:8]}", tags=run_tags) as run_id:
        yield run_id, False


def run_ui_link(cfg: TrackingConfig, run_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    """The run's page in the MLflow UI: on the tracking server itself, else on `mlflow ui` at `ui`.

    For a local store the page shows once `mlflow ui --backend-store-uri <tracking_uri>` runs.
    """
    uri = tracking_uri(cfg)
    base = uri if uri.startswith(("http://", "https://")) else ui
    experiment = client(cfg).get_run(run_id).info.experiment_id
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def active_run_id() -> str:
    """The id of this thread's active run."""
    run = mlflow.active_run()
    if run is None:
        raise TrackingError("no active MLflow run: log inside `with tracked_run(cfg):`")
    return str(run.info.run_id)


# ---------------------------------------------------------------- logging


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level: {"train": {"lr": 3e-5}} -> {"train.lr": 3e-5}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def metric_key(name: str) -> str:
    """`name` with "_" for each character other than letters, digits and "_-. :".

    MLflow refuses "(" in a key ("(none)" groups); a "/" (a source's path) would nest UI groups.
    """
    return "".join(c if c.isalnum() or c in "_-. :" else "_" for c in name)


def is_number(value: Any) -> bool:
    """True for int and float values (not bool, not None)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def log_config(config: Config) -> None:
    """Every config option as a run parameter, keyed by its dotted path ("train.lr", "model.lora")."""
    mlflow.log_params({key: str(value) for key, value in flatten(config.model_dump(mode="json")).items()})


def history_metrics(metrics_jsonl: Path, prefix: str = "train") -> list[Metric]:
    """Metrics `prefix.key` at their step from a metrics.jsonl (one JSON object per line with "step").

    Non-numeric values are left out; every metric gets the file's modification time as timestamp.
    """
    timestamp = int(metrics_jsonl.stat().st_mtime * 1000)
    metrics: list[Metric] = []
    for line in metrics_jsonl.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        step = int(record["step"])
        metrics.extend(
            Metric(metric_key(f"{prefix}.{key}"), float(value), timestamp, step)
            for key, value in record.items()
            if key != "step" and is_number(value)
        )
    return metrics


def log_history(metrics_jsonl: Path, prefix: str = "train") -> None:
    """The per-step training metrics training wrote (runs/<x>/metrics.jsonl), as `train.loss` etc."""
    MlflowClient().log_batch(active_run_id(), metrics=history_metrics(metrics_jsonl, prefix))


def evaluation_metrics(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The numeric scalars of `pair_metrics` (rmcore.evaluation.metrics), keyed by dotted path under `prefix`.

    "test" gives test.accuracy, test.loss, test.calibration.ece, test.rewards.chosen.mean,
    test.by_source.<source>.accuracy, ...; lists (the reliability table) and None are left out.
    """
    return {
        metric_key(name): float(value) for name, value in flatten(metrics, prefix).items() if is_number(value)
    }


def log_evaluation(metrics: Mapping[str, Any], prefix: str) -> None:
    """Evaluation metrics (see `evaluation_metrics`) on the active run."""
    mlflow.log_metrics(evaluation_metrics(metrics, prefix))


def log_training_summary(summary: Mapping[str, Any]) -> None:
    """The numbers of a training summary (steps, pairs, seconds, pairs/s, tokens encoded, padding,
    shared-prompt saving, ...) as metrics `training.<key>` on the active run; nested parts are left out."""
    mlflow.log_metrics({metric_key(f"training.{k}"): float(v) for k, v in summary.items() if is_number(v)})


def log_dataset(lake: str, lake_version: int, content_hash: str, name: str, context: str) -> None:
    """Pairs built from a lake as a run input (`mlflow.log_input`) whose digest is their content hash.

    The source is a Delta source: the lake's URI and the lake version the pairs were built from
    (`rmcore build-pairs --as-of VERSION` rebuilds them). context: what the run used them for
    ("training", "evaluation"). MLflow keeps at most 36 characters of a digest; rmcore's content
    hashes have 32.
    """
    source = DeltaDatasetSource(path=lake, delta_table_version=lake_version)
    dataset = MetaDataset(source, name=name, digest=content_hash)  # type: ignore[abstract]  # profile: None
    mlflow.log_input(dataset, context=context)


def log_artifacts(paths: Sequence[Path], artifact_path: str) -> None:
    """Files and folders as artifacts under `artifact_path` (a folder keeps its name)."""
    for path in paths:
        if path.is_dir():
            mlflow.log_artifacts(str(path), f"{artifact_path}/{path.name}")
        else:
            mlflow.log_artifact(str(path), artifact_path)


# ---------------------------------------------------------------- the model


def reward_signature(normalized: bool) -> ModelSignature:
    """Input: string columns prompt, response. Output: double reward (and reward_normalized)."""
    outputs = ("reward", "reward_normalized") if normalized else ("reward",)
    return ModelSignature(
        inputs=Schema([ColSpec("string", "prompt"), ColSpec("string", "response")]),
        outputs=Schema([ColSpec("double", name) for name in outputs]),
    )


def has_reward_stats(model_dir: Path) -> bool:
    """True when the model directory stores the held-out reward mean and std (normalized rewards)."""
    return read_metadata(model_dir).normalizes


def pip_requirements() -> list[str]:
    """PYFUNC_PACKAGES pinned to the versions installed here, local tags such as "+cpu" dropped.

    Stated rather than inferred: MLflow's inference loads the model in a subprocess (about 10 s)
    and missed torch here.
    """
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in PYFUNC_PACKAGES]


def log_reward_model(model_dir: Path) -> str:
    """Log a trained rmcore model directory on the active run as the reward pyfunc; its model URI.

    The pyfunc (`reward_pyfunc.py`, logged as code) maps a DataFrame of string columns prompt and
    response to rewards, with a signature and an input example; the directory is its artifact.
    """
    active_run_id()
    info = mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(PYFUNC_CODE),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
        signature=reward_signature(has_reward_stats(model_dir)),
        input_example=INPUT_EXAMPLE,
        pip_requirements=pip_requirements(),
    )
    return str(info.model_uri)


def model_dir_of(model_uri: str, dest: Path, cfg: TrackingConfig | None = None) -> Path:
    """The rmcore model directory (weights, tokenizer, rmcore.json) of a models:/ or runs:/ URI.

    The logged model is downloaded into `dest` from cfg's store (None: this process's tracking URI).
    """
    uri = tracking_uri(cfg) if cfg is not None else mlflow.get_tracking_uri()
    _use_tracking_uri(uri)  # a models:/ URI resolves through the process's registry, whatever is passed
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise FileNotFoundError(
            f"{model_uri}: no MLflow store at {database}; run the retrain flow (make run) to create it, "
            "or point MLFLOW_TRACKING_URI at the store that holds the model"
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(dest), tracking_uri=uri, registry_uri=uri
            )
        )
    except MlflowException as error:
        raise FileNotFoundError(f"{model_uri}: not found in {uri}: {error.message}") from error
    flavor = Model.load(str(local / "MLmodel")).flavors.get("python_function", {})
    artifact = flavor.get("artifacts", {}).get(MODEL_DIR_ARTIFACT)
    if artifact is None:
        raise TrackingError(f"{model_uri} is not an rmcore reward model (no {MODEL_DIR_ARTIFACT} artifact)")
    return local / artifact["path"]


# ---------------------------------------------------------------- registry and promotion


def register(cfg: TrackingConfig, model_uri: str, tags: dict[str, str]) -> str:
    """A new version of cfg.registered_model from a logged model, tagged with `tags`; its version."""
    client(cfg)
    version = mlflow.register_model(model_uri, cfg.registered_model, tags=tags)
    return str(version.version)


def champion_version(cfg: TrackingConfig) -> str | None:
    """The version holding the alias "champion", or None (no such model or alias yet)."""
    found = client(cfg).search_registered_models(filter_string=f"name = '{cfg.registered_model}'")
    aliases = found[0].aliases if found else {}
    version = aliases.get(CHAMPION)
    return None if version is None else str(version)


def should_promote(new: float, champion: float | None, margin: float) -> bool:
    """True when there is no champion score, else when new > champion + margin (strictly)."""
    return champion is None or new > champion + margin


class Promotion(TypedDict):
    """A promotion decision (`promote`)."""

    promoted: bool
    version: str
    """The new version."""
    alias: str
    """The alias it took: "champion" or "challenger"."""
    champion_version: str | None
    """The champion after the decision."""
    previous_champion: str | None
    new_accuracy: float
    champion_accuracy: float | None
    margin: float
    suite_refusals: list[str]
    """Why suite scores refused the new version (`suite_refusals`); empty when they did not."""


def promote(
    cfg: TrackingConfig,
    version: str,
    new_accuracy: float,
    champion_accuracy: float | None,
    champion: str | None,
    suites: tuple[Mapping[str, float], Mapping[str, float]] | None = None,
) -> Promotion:
    """Give `version` the alias "champion" or "challenger" (see `should_promote`); the decision.

    champion: the version holding "champion" now and champion_accuracy its accuracy on the same
    held-out pairs (None: no champion, and the new version is promoted). suites: the new version's and
    the champion's section scores on the benchmark suites; with cfg.suite_floor set, a section more
    than the floor below the champion's refuses the new version (`suite_refusals`). The new version is
    tagged promotion.decision / new_accuracy / champion_accuracy / champion_version / margin, and
    promotion.suite_floor / promotion.refused_by when a suite refused it; a replaced champion is
    tagged promotion.replaced_by and keeps its version.
    """
    store = client(cfg)
    name, margin = cfg.registered_model, cfg.promotion_margin
    refusals = suite_refusals(*suites, cfg.suite_floor) if suites and champion is not None else []
    promoted = should_promote(new_accuracy, champion_accuracy, margin) and not refusals
    alias = CHAMPION if promoted else CHALLENGER
    store.set_registered_model_alias(name, alias, version)
    if promoted and champion is not None and champion != version:
        store.set_model_version_tag(name, champion, "promotion.replaced_by", version)
    decision = {
        "promotion.decision": alias,
        "promotion.new_accuracy": str(new_accuracy),
        "promotion.champion_accuracy": str(champion_accuracy),
        "promotion.champion_version": str(champion),
        "promotion.margin": str(margin),
    }
    if refusals:
        decision["promotion.suite_floor"] = str(cfg.suite_floor)
        decision["promotion.refused_by"] = "; ".join(refusals)
    for key, value in decision.items():
        store.set_model_version_tag(name, version, key, value)
    return Promotion(
        promoted=promoted,
        version=version,
        alias=alias,
        champion_version=version if promoted else champion,
        previous_champion=champion,
        new_accuracy=new_accuracy,
        champion_accuracy=champion_accuracy,
        margin=margin,
        suite_refusals=refusals,
    )
