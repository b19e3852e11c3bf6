"""A suite's scores as typed records; a dict only at the JSON and MLflow edge (`as_dict`, `metrics`).

Accuracies are fractions in [0, 1]; `as_dict` and the markdown report show them as they are.
"""

import math
from dataclasses import dataclass, field

from rmcore.data.suites.items import SuiteName


@dataclass(frozen=True)
class SubsetScore:
    """Accuracy on one subset (or RM-Bench domain) and how many items it counts."""

    accuracy: float
    n: int


@dataclass(frozen=True)
class StyleScores:
    """RM-Bench's style difficulty: the 3x3 chosen-style by rejected-style accuracy matrix reduced to
    easy (below the diagonal), normal (the diagonal) and hard (above it)."""

    easy: float
    normal: float
    hard: float
    matrix: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class SuiteResult:
    """A model's scores on one suite by the suite's published rules."""

    suite: SuiteName
    source: str
    subsets: dict[str, SubsetScore]
    sections: dict[str, float]
    overall: float
    prior: dict[str, SubsetScore] = field(default_factory=dict)
    """RewardBench's prior sets (Anthropic HHH, Helpful, Harmless, MT-Bench, SHP, Summarize): reported
    apart, outside the sections and the overall score."""
    styles: dict[str, StyleScores] = field(default_factory=dict)
    """RM-Bench: easy / normal / hard overall ("overall") and per domain."""
    overlap: int = 0
    """Items whose prompt also appears in the training lake (they inflate the score)."""
    excluded: int = 0
    """Items left out because their prompt appears in the training lake (`--exclude-overlap`)."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: suite, subsets (name -> {accuracy, n}), sections, overall, and for RM-Bench
        easy / normal / hard overall and per domain."""
        out: dict[str, object] = {
            "suite": self.suite,
            "source": self.source,
            "subsets": {k: {"accuracy": v.accuracy, "n": v.n} for k, v in self.subsets.items()},
            "sections": dict(self.sections),
            "overall": self.overall,
            "overlap": self.overlap,
            "excluded": self.excluded,
        }
        if self.prior:
            out["prior"] = {k: {"accuracy": v.accuracy, "n": v.n} for k, v in self.prior.items()}
        if self.styles:
            for level in ("easy", "normal", "hard"):
                out[level] = {k: getattr(v, level) for k, v in self.styles.items()}
        return out

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: `suite.<suite>.<section>` for each section and `suite.<suite>.overall`."""
        named = {f"suite.{self.suite}.{_key(k)}": v for k, v in self.sections.items()}
        return {**named, f"suite.{self.suite}.overall": self.overall}


def _key(section: str) -> str:
    """A section name as an MLflow metric name part: lower case, words joined by underscores."""
    return "_".join(section.lower().split())


def mean_of_sections(sections: dict[str, float]) -> float:
    """A suite's overall score: the unweighted mean of its sections (NaN when none is present)."""
    return sum(sections.values()) / len(sections) if sections else math.nan
