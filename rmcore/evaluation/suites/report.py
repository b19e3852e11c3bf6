"""A suite's scores as a markdown report, a JSON file and one bar plot per section.

rmcore evaluate --model runs/latest/model --suite rewardbench hf://allenai/reward-bench --report reports/

`suite_markdown(result)` is the text `rmcore evaluate --suite` prints; `write_suite_report(result, out)`
writes into `out`, each file atomically:

- suite_<suite>.md: the markdown, with a link to each plot;
- suite_<suite>.json: `SuiteResult.as_dict()`;
- suite_<suite>_<section>.png: the accuracy of each of the section's subsets (RM-Bench: the domain's
  easy, normal and hard accuracies beside its own), the section's score as a dashed line, chance
  dotted; `<section>` is the section's name in lower case, words joined by underscores.
"""

import math
from pathlib import Path

import numpy as np
import orjson
from matplotlib.figure import Figure

from rmcore.atomic import write_text
from rmcore.evaluation.markdown import cell, percent
from rmcore.evaluation.suites.results import SubsetScore, SuiteResult
from rmcore.evaluation.suites.rules import SUBSET_MAPPING
from rmcore.figures import BAR_COLOR, new_figure, no_data, png_bytes, short_label, write_bytes

TITLES = {"rewardbench": "RewardBench", "rewardbench2": "RewardBench 2", "rm-bench": "RM-Bench"}
"""Each suite's published name."""
STYLES = ("concise", "detailed", "detailed with markdown")
"""RM-Bench's response styles, in the order of its 3x3 matrix's rows (chosen) and columns (rejected)."""
LEVELS = ("easy", "normal", "hard")
CHANCE = {"rewardbench": 0.5, "rewardbench2": 0.25, "rm-bench": 0.5}
"""A random reward's accuracy: one chosen against one rejected, or (RewardBench 2) against three."""


def slug(section: str) -> str:
    """A section name as a file name part: lower case, words joined by underscores."""
    return "_".join(section.lower().split())


def plot_name(result: SuiteResult, section: str) -> str:
    """The file name of a section's bar plot."""
    return f"suite_{slug(result.suite)}_{slug(section)}.png"


def section_subsets(result: SuiteResult, section: str) -> dict[str, SubsetScore]:
    """The subsets a section is scored over, as the result has them: RewardBench's by its
    SUBSET_MAPPING; in RewardBench 2 and RM-Bench a section is one subset (a section, a domain)."""
    names = SUBSET_MAPPING.get(section, ()) if result.suite == "rewardbench" else (section,)
    return {name: result.subsets[name] for name in names if name in result.subsets}


def section_items(result: SuiteResult, section: str) -> int:
    """How many items a section counts: the items of its subsets (RewardBench's math-prm by its own
    count, not its section weight)."""
    return sum(score.n for score in section_subsets(result, section).values())


def share(x: float) -> str:
    """A score as a percentage; "n/a" for NaN (a suite part with nothing to score)."""
    return "n/a" if math.isnan(x) else percent(x)


def _score_rows(scores: dict[str, SubsetScore]) -> list[str]:
    return [f"| {cell(name)} | {share(s.accuracy)} | {s.n} |" for name, s in scores.items()]


def _subset_lines(result: SuiteResult) -> list[str]:
    """The subset table; RewardBench's names each subset's section (none: outside every section)."""
    if result.suite != "rewardbench":
        return [
            "## Subsets",
            "",
            "| subset | accuracy | items |",
            "|---|---:|---:|",
            *_score_rows(result.subsets),
            "",
        ]
    section_of = {name: section for section, names in SUBSET_MAPPING.items() for name in names}
    rows = [
        f"| {cell(name)} | {section_of.get(name, 'none')} | {share(s.accuracy)} | {s.n} |"
        for name, s in result.subsets.items()
    ]
    return ["## Subsets", "", "| subset | section | accuracy | items |", "|---|---|---:|---:|", *rows, ""]


def _overlap_lines(result: SuiteResult) -> list[str]:
    """The warning about items whose prompt the training lake holds, or what was left out."""
    if result.excluded:
        return [
            f"> {result.excluded} items whose prompt is also in the training lake were left out "
            "(--exclude-overlap); the scores are over the other items.",
            "",
        ]
    if result.overlap:
        return [
            f"> **Warning:** {result.overlap} items have a prompt that is also in the training lake; they "
            "can inflate the score. Rerun with --exclude-overlap to leave them out.",
            "",
        ]
    return []


def _style_lines(result: SuiteResult) -> list[str]:
    """RM-Bench's easy / normal / hard per domain, and the overall 3x3 matrix."""
    lines = [
        "## Style difficulty",
        "",
        "Accuracy of each chosen style against each rejected style: easy = the chosen response is in a "
        "richer style than the rejected one (below the diagonal), normal = the same style (the "
        "diagonal), hard = a plainer style (above it).",
        "",
        "| domain | easy | normal | hard |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {cell(domain)} | {share(s.easy)} | {share(s.normal)} | {share(s.hard)} |"
        for domain, s in result.styles.items()
    ]
    overall = result.styles.get("overall")
    if overall is not None and len(overall.matrix) == len(STYLES):
        lines += [
            "",
            "Overall matrix (rows: chosen style, columns: rejected style):",
            "",
            "| chosen \\ rejected | " + " | ".join(STYLES) + " |",
            "|---|" + "---:|" * len(STYLES),
        ]
        lines += [
            f"| {style} | " + " | ".join(share(x) for x in row) + " |"
            for style, row in zip(STYLES, overall.matrix, strict=True)
        ]
    return [*lines, ""]


def suite_markdown(result: SuiteResult) -> str:
    """The suite's scores as markdown: the overall score, the overlap warning, a section table
    (section, score, items), a subset table, RewardBench's prior sets apart, and RM-Bench's style
    difficulty per domain."""
    title = TITLES.get(result.suite, result.suite)
    lines = [
        f"# {title}: {result.source}",
        "",
        f"**Overall: {share(result.overall)}** (the mean of the {len(result.sections)} sections)",
        "",
        *_overlap_lines(result),
        "## Sections",
        "",
        "| section | score | items |",
        "|---|---:|---:|",
        *(
            f"| {cell(name)} | {share(score)} | {section_items(result, name)} |"
            for name, score in result.sections.items()
        ),
        "",
        *_subset_lines(result),
    ]
    if result.prior:
        lines += [
            "## Prior sets",
            "",
            "Reported apart: not in any section, nor in the overall score.",
            "",
            "| set | accuracy | items |",
            "|---|---:|---:|",
            *_score_rows(result.prior),
            "",
        ]
    if result.styles:
        lines += _style_lines(result)
    return "\n".join(lines)


def section_figure(result: SuiteResult, section: str) -> Figure:
    """Bars of the accuracy of each subset of `section` (value above, n at the base); for an RM-Bench
    domain, its easy, normal and hard accuracies too. The section's score dashed, chance dotted."""
    bars = section_subsets(result, section)
    counts: list[int | None] = [s.n for s in bars.values()]
    accuracy = [s.accuracy for s in bars.values()]
    style = result.styles.get(section)
    if style is not None:
        names = [*bars, *LEVELS]
        accuracy += [style.easy, style.normal, style.hard]
        counts += [None] * len(LEVELS)
    else:
        names = list(bars)
    figure = new_figure(max(5.0, 1.1 * len(names) + 2.0), 4.6)
    ax = figure.add_subplot()
    ax.set_title(f"{TITLES.get(result.suite, result.suite)}: {section} ({share(result.sections[section])})")
    if not names:
        no_data(ax, "no subsets")
        return figure
    positions = np.arange(len(names))
    ax.bar(positions, accuracy, color=BAR_COLOR, width=0.6)
    for x, acc, n in zip(positions, accuracy, counts, strict=True):
        ax.text(float(x), acc + 0.02, percent(acc), ha="center", va="bottom", fontsize=9)
        if n is not None:
            ax.text(float(x), 0.02, f"n={n}", ha="center", va="bottom", fontsize=9, color="white")
    ax.axhline(result.sections[section], color="black", linestyle="--", linewidth=1.2, label="section score")
    chance = CHANCE.get(result.suite, 0.5)
    ax.axhline(chance, color="0.6", linestyle=":", linewidth=1.0, label=f"chance {percent(chance)}")
    ax.set_xticks(positions, [short_label(name) for name in names], rotation=30, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper right", ncol=2, fontsize=9)
    return figure


def write_suite_report(result: SuiteResult, out_dir: Path) -> dict[str, Path]:
    """Write suite_<suite>.md, suite_<suite>.json and a bar plot per section into `out_dir`; their
    paths by file name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"suite_{slug(result.suite)}"
    files: dict[str, Path] = {}
    for section in result.sections:
        name = plot_name(result, section)
        write_bytes(out_dir / name, png_bytes(section_figure(result, section)))
        files[name] = out_dir / name
    links = "\n".join(f"![{section}]({plot_name(result, section)})\n" for section in result.sections)
    write_text(out_dir / f"{stem}.md", f"{suite_markdown(result)}\n## Plots\n\n{links}")
    json_text = orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode()
    write_text(out_dir / f"{stem}.json", json_text + "\n")
    return {f"{stem}.md": out_dir / f"{stem}.md", f"{stem}.json": out_dir / f"{stem}.json", **files}
