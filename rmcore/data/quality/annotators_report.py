"""The data report's annotator part: a markdown section per source and the plot reports/annotators.png.

Both read the report's `annotators` (entries of `rmcore.data.quality.annotators.annotator_agreement`, lowest
agreement first within a source) and `agreement` (`source_agreement`). A source with many annotators
shows its `LOWEST` lowest.
"""

import itertools
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rmcore.figures import BAR_COLOR, new_figure, no_data, short_label

LOWEST = 20
"""At most this many annotators of a source are shown, those of lowest agreement."""
AGREEMENT = (
    "agreement: the share of the annotator's votes that match the most frequent vote of the other "
    "annotators on the pair (their own votes left out; pairs where the others split evenly left out); "
    "scored: the votes that entered it; shared: the votes on pairs others also judged."
)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def by_source(annotators: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Annotator entries grouped by source, in the order given."""
    return {source: list(group) for source, group in itertools.groupby(annotators, key=lambda e: e["source"])}


def _summary(agreement: dict[str, Any] | None) -> str:
    if agreement is None:
        return "No pair has two or more annotated votes."
    return (
        f"Krippendorff's alpha (nominal; first / second / tie) {_number(agreement['krippendorff_alpha'])}, "
        f"percent agreement {_number(agreement['percent_agreement'])}, over {agreement['items']} pairs "
        "with two or more annotated votes."
    )


def annotators_markdown(report: dict[str, Any]) -> list[str]:
    """A section per source with annotator ids: alpha, percent agreement and items, then its annotators,
    lowest agreement first (the `LOWEST` lowest, and how many more)."""
    lines: list[str] = []
    for source, entries in by_source(report["annotators"]).items():
        more = len(entries) - LOWEST
        shown = f"; the {LOWEST} lowest shown, {more} more" if more > 0 else ""
        lines += [
            f"## Annotators: {source}",
            "",
            f"{_summary(report['agreement'].get(source))} {len(entries)} annotators{shown}.",
            "",
            "| annotator | judgments | shared | scored | agreement |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {e['annotator']} | {e['judgments']} | {e['shared']} | {e['scored']} | "
                f"{_number(e['agreement'])} |"
                for e in entries[:LOWEST]
            ),
            "",
        ]
    return [*lines, AGREEMENT, ""] if lines else []


def annotators_figure(report: dict[str, Any]) -> Figure:
    """Per source with annotator ids, a horizontal bar of each scored annotator's agreement (the `LOWEST`
    lowest, lowest on top), with its value and `scored` written beside it."""
    groups = by_source(report["annotators"])
    if not groups:
        figure = new_figure(8.0, 2.0)
        no_data(figure.add_subplot(), "no annotator ids in the lake")
        return figure
    bars = [sum(e["agreement"] is not None for e in entries) for entries in groups.values()]
    heights = [0.9 + 0.3 * min(max(n, 1), LOWEST) for n in bars]
    figure = new_figure(8.0, sum(heights))
    axes = figure.subplots(len(groups), 1, height_ratios=heights, squeeze=False)[:, 0]
    for ax, (source, entries) in zip(axes, groups.items(), strict=True):
        _agreement_bars(ax, source, entries, report["agreement"].get(source))
    return figure


def _agreement_bars(
    ax: Axes, source: str, entries: list[dict[str, Any]], agreement: dict[str, Any] | None
) -> None:
    """One source's scored annotators, lowest agreement on top; alpha and what is left out in the title."""
    scored = [e for e in entries if e["agreement"] is not None]
    shown = scored[:LOWEST]
    alpha = "" if agreement is None else f", alpha {_number(agreement['krippendorff_alpha'])}"
    cut = f", the {LOWEST} lowest of {len(scored)} scored" if len(scored) > LOWEST else ""
    unscored = (
        f", {len(entries) - len(scored)} of {len(entries)} not scored" if len(scored) < len(entries) else ""
    )
    ax.set_title(f"{source}{alpha}{cut}{unscored}", fontsize=10)
    if not shown:
        no_data(ax, "no annotator's votes were scored")
        return
    positions = np.arange(len(shown))[::-1]
    ax.barh(positions, [e["agreement"] for e in shown], color=BAR_COLOR, height=0.6)
    for y, e in zip(positions, shown, strict=True):
        ax.text(1.02, y, f"{e['agreement']:.2f}  scored {e['scored']}", va="center", fontsize=8)
    ax.set_yticks(positions, [short_label(e["annotator"]) for e in shown], fontsize=8)
    ax.set_xlim(0, 1.35)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("agreement with the other annotators' most frequent vote", fontsize=8)
