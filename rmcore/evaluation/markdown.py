"""Metrics as text: number formatting, and the markdown report of `pair_metrics`.

rmcore evaluate --model runs/latest/model --pairs data/lake
"""

from typing import Any


def percent(x: float | None) -> str:
    """A share as a percentage with one decimal ("61.2%"); "n/a" for None."""
    return "n/a" if x is None else f"{100 * x:.1f}%"


def number(x: float | None, digits: int = 4) -> str:
    """A number with `digits` decimals; "n/a" for None."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def cell(text: str) -> str:
    """Text safe inside a markdown table cell: pipes escaped, line breaks folded."""
    return text.replace("|", "\\|").replace("\n", " ")


def _group_table(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| group | pairs | decided | conflicts | accuracy | ties | loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in groups.items():
        lines.append(
            f"| {cell(name)} | {g['n_pairs']} | {g['n_decided']} | {g['n_conflict']} "
            f"| {percent(g['accuracy'])} | {percent(g['tie_rate'])} | {number(g['loss'])} |"
        )
    return [*lines, ""]


def report_markdown(metrics: dict[str, Any]) -> str:
    """The metrics of `pair_metrics` as a markdown report: headline, groups, calibration, rewards."""
    m = metrics
    longer = m["baselines"]["longer_wins"]
    cal = m["calibration"]
    lines = [
        "# Reward model evaluation",
        "",
        f"{m['n_pairs']} pairs: {m['n_decided']} decided, {m['n_conflict']} conflicts (p_chosen = 0.5, "
        "no right answer: left out of accuracy, kept in the soft-label loss).",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| **accuracy** (strict) | **{percent(m['accuracy'])}** |",
        f"| ties (\\|d\\| <= {m['tie_tol']:g}) | {percent(m['tie_rate'])} ({m['n_ties']}) |",
        f"| accuracy, ties as half | {percent(m['accuracy_ties_half'])} |",
        f"| loss (Bradley-Terry NLL, decided) | {number(m['loss'])} |",
        f"| loss (Bradley-Terry NLL, all pairs) | {number(m['loss_all'])} |",
        f"| soft-label loss (floor {number(m['loss_soft_floor'])}) | {number(m['loss_soft'])} |",
        f"| mean margin r_chosen - r_rejected | {number(m['margin_mean'])} |",
        f"| expected calibration error ({cal['bins']} bins) | {number(cal['ece'])} |",
        f"| baseline: longer response wins | {percent(longer['accuracy'])} "
        f"(equal lengths {percent(longer['equal_length_rate'])}) |",
        f"| correlation of reward with length | {number(m['baselines']['length_correlation'], 3)} |",
        f"| correlation of margin with length difference | "
        f"{number(m['baselines']['length_diff_correlation'], 3)} |",
        "",
        f"Accuracy rule: {m['accuracy_rule']}.",
        "",
        "## Accuracy by group",
        "",
    ]
    lines += _group_table("By source", m["by_source"])
    lines += _group_table("By category", m["by_category"])
    lines += _group_table("By number of votes", m["by_n_votes"])
    lines += _group_table("By annotator agreement (p_chosen)", m["by_p_chosen"])
    lines += _group_table("By length", m["by_length"])
    lines += [
        "## Calibration",
        "",
        f"Confidence: {cal['confidence']}. Outcome: {cal['outcome']}.",
        "",
        "| bin | pairs | mean confidence | observed |",
        "|---|---:|---:|---:|",
    ]
    for row in cal["table"]:
        lines.append(
            f"| [{row['lo']:.2f}, {row['hi']:.2f}) | {row['count']} | {number(row['confidence'], 3)} "
            f"| {number(row['observed'], 3)} |"
        )
    lines += [
        "",
        "## Rewards",
        "",
        "| rewards | n | mean | std | min | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("chosen", "rejected", "all"):
        s = m["rewards"][name]
        lines.append(
            f"| {name} | {s['n']} | {number(s['mean'])} | {number(s['std'])} "
            f"| {number(s['min'])} | {number(s['max'])} |"
        )
    return "\n".join(lines) + "\n"
