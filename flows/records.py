"""The typed records the flows pass between their tasks and return.

    ingest flow   IngestRecord (rmcore.data.ingest), PairsRecord (rmcore.data.pairs) -> IngestOutcome
    retrain flow  TrainedModel, HeldOutEvaluation, ChampionEvaluation, Promotion (rmcore.tracking),
                  SuiteResult (rmcore.evaluation.suites) -> RetrainResult

TypedDicts, not dataclasses, for what crosses a Prefect task: a TypedDict is a plain dict at run time,
so a task's result stays what Prefect's JSON serializer writes and reads as it is, while mypy refuses
a misspelt key. `train_model` persists its result as JSON under its cache key; Prefect would write a
dataclass as {"__class__": its import path, "data": ...} and rebuild it by importing that path, so a
renamed or moved class would turn every cached training into a plain dict or a failure, and results
cached before this module existed (plain dicts) would not read back as one. `SuiteResult` and the
other frozen dataclasses travel only inside one flow run, never persisted.
"""

from typing import Any, NotRequired, TypedDict

from rmcore.data.ingest.commit import IngestRecord
from rmcore.data.pairs.build import PairsRecord
from rmcore.evaluation.suites.results import SuiteResult
from rmcore.tracking import Promotion
from rmcore.training.summary import TrainingSummary


class IngestOutcome(TypedDict):
    """What the ingest flow returns: the ingest summary, the pair build and the data report's file paths
    by kind (json, markdown, annotators_plot)."""

    ingest: IngestRecord
    pairs: PairsRecord
    report: dict[str, str]


class AnnotatorAgreement(TypedDict):
    """One annotator in the data report: agreement with the other annotators on shared pairs."""

    source: str
    annotator: str
    judgments: int
    shared: int
    scored: int
    agreement: float | None


class ModelAgreement(TypedDict):
    """One annotator with held-out votes: how often the model sides with them
    (rmcore.evaluation.suspects.annotator_model_agreement)."""

    source: str
    annotator: str
    votes: int
    decided: int
    model_agreement: float | None
    agreement: float | None


class TrainedModel(TrainingSummary):
    """The training task's result: the training summary (`eval`: validation metrics) and its MLflow run."""

    run_id: str
    out: str
    """The training's output directory."""


class Headline(TypedDict):
    """The held-out numbers the summary and promotion read from `pair_metrics`."""

    n_pairs: int
    accuracy: float | None
    """None when no pair is decided (all conflicts)."""
    loss: float | None
    ece: float | None
    """Expected calibration error."""


class HeldOutEvaluation(TypedDict):
    """A model on the lake's test split: all of `pair_metrics` (logged to MLflow as test.*), its headline,
    the report's files by name, how many held-out labels it contradicts, and its agreement with each
    annotator's held-out votes."""

    metrics: dict[str, Any]
    headline: Headline
    report: dict[str, str]
    suspects: int
    annotators: list[ModelAgreement]


class Champion(TypedDict):
    """The registered champion: its version and its downloaded model directory."""

    version: str
    model_dir: str


class ChampionEvaluation(Champion, HeldOutEvaluation):
    """The champion scored like the new model: on the test split and on each benchmark suite."""

    suites: list[SuiteResult]


class RetrainResult(TypedDict):
    """What the retrain flow returns; the keys past `tracking_uri` are there when it trained
    (`message` when it did not), `champion` when there was one."""

    ingest: IngestRecord | None
    pairs: PairsRecord
    trained: bool
    model_dir: str
    run_id: str
    tracking_uri: str
    message: NotRequired[str]
    train: NotRequired[TrainedModel]
    annotators: NotRequired[list[AnnotatorAgreement]]
    evaluation: NotRequired[HeldOutEvaluation]
    suites: NotRequired[list[SuiteResult]]
    """The new model's scores on each of evaluate.suites, in their order."""
    champion: NotRequired[ChampionEvaluation]
    promotion: NotRequired[Promotion]
