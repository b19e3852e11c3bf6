"""A new model against the champion on benchmark suites: the promotion gate and the side-by-side table.

    SuiteResult (new) + SuiteResult (champion) -> section_scores -> suite_refusals (the gate)
                                               -> comparison_markdown (the retrain flow's summary)

Scores are accuracy fractions as in `SuiteResult`; differences are shown in points (hundredths).
"""

from collections.abc import Mapping

from rmcore.evaluation.markdown import cell, percent
from rmcore.evaluation.suites.results import SuiteResult

ROUNDING = 1e-9
"""Slack for float rounding in the gate: 0.80 - 0.75 is 0.05000000000000004, not more than 0.05."""


def section_scores(result: SuiteResult) -> dict[str, float]:
    """The result's section scores keyed by their MLflow metric name (`suite.<suite>.<section>`); the
    overall score, the mean of the sections, is left out."""
    overall = f"suite.{result.suite}.overall"
    return {name: score for name, score in result.metrics().items() if name != overall}


def suite_refusals(new: Mapping[str, float], champion: Mapping[str, float], floor: float | None) -> list[str]:
    """Why suite scores refuse a new model: one reason per section where it falls more than `floor`
    below the champion.

    new, champion: section scores by metric name (`section_scores`), accuracy fractions. A section
    refuses when champion - new > floor (strictly, up to `ROUNDING`), over the sections both have;
    floor None refuses nothing. E.g. champion 0.80, floor 0.05: new 0.74 is refused (6.0 points below),
    new 0.76 allowed.
    """
    if floor is None:
        return []
    return [
        f"{name} {percent(new[name])} is {100 * (champion[name] - new[name]):.1f} points below the "
        f"champion's {percent(champion[name])} (suite_floor {100 * floor:.1f} points)"
        for name in sorted(new.keys() & champion.keys())
        if champion[name] - new[name] > floor + ROUNDING
    ]


def difference(new: float, champion: float | None) -> str:
    """new - champion in points with its sign ("+2.5"); "n/a" without a champion score."""
    return "n/a" if champion is None else f"{100 * (new - champion):+.1f}"


def comparison_markdown(new: SuiteResult, champion: SuiteResult | None) -> str:
    """A table of the suite's sections and overall score: section | new | champion | difference, with
    the items whose prompt the training lake holds, as `rmcore evaluate --suite` counts them."""
    theirs = champion.sections if champion is not None else {}
    rows = [(section, score, theirs.get(section)) for section, score in new.sections.items()]
    rows.append(("overall", new.overall, champion.overall if champion is not None else None))
    lines = [
        f"### {new.suite} (`{cell(new.source)}`)",
        "",
        "| section | new | champion | difference |",
        "|---|---:|---:|---:|",
        *(
            f"| {cell(section)} | {percent(score)} | {percent(other) if champion else 'none yet'} "
            f"| {difference(score, other)} |"
            for section, score, other in rows
        ),
        "",
    ]
    if new.excluded:
        lines += [f"{new.excluded} items whose prompt is in the training lake were left out.", ""]
    elif new.overlap:
        lines += [f"{new.overlap} items share a prompt with the training lake: they inflate the score.", ""]
    return "\n".join(lines)
