"""The visual evaluation report of a reward model: PNG plots and one HTML page, from its scores on pairs.

rmcore evaluate --model runs/latest/model --pairs data/lake/pairs/test.parquet --report reports/test

`write_eval_report(chosen, rejected, pairs, metrics, out)` takes the rewards of each pair's chosen
and rejected response ((n,) each), the pair table they came from and `pair_metrics` of the same
(rmcore.evaluation.metrics), and writes into `out`, each file atomically:

- reliability.png: the reliability diagram of metrics["calibration"] (mean sigmoid(r_a - r_b) against the
  mean share of votes for a per bin, each pair in both orientations; the diagonal, the count per bin as
  bars), its ECE in the title;
- reward_hist.png: histograms of chosen and rejected rewards over the same bins, their means marked;
- accuracy_by_agreement.png: accuracy per number of votes and per p_chosen bucket, conflicts left out;
- accuracy_by_source.png: accuracy per source (the 20 largest when there are more);
- reward_vs_length.png: reward against response length in characters, with Pearson correlations;
- report.html: the headline metrics and every plot embedded as base64 (MLflow's artifact view shows an
  HTML file from a blob URL in a sandboxed iframe, where images referenced by relative name do not load);
- report.md: `report_markdown(metrics)` under `title`, with links to the PNG files.

Figures are `matplotlib.figure.Figure` objects drawn by the Agg canvas (rmcore.figures), at a
fixed size and 100 dpi. A plot without data (an empty table, no decided pair) says so instead of failing.
"""

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rmcore.atomic import write_text
from rmcore.evaluation.markdown import number, percent, report_markdown
from rmcore.evaluation.metrics import char_lengths, pearson
from rmcore.figures import BAR_COLOR, new_figure, no_data, png_bytes, short_label, write_bytes

CHOSEN_COLOR = "#1f77b4"
REJECTED_COLOR = "#d62728"
LABEL_BOX = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.0}
"""Background of a value written over lines."""
MAX_SOURCES = 20
"""At most this many sources are drawn, the largest by decided pairs."""
MAX_POINTS = 2000
"""At most this many pairs are drawn in the length scatter (PNG size, overplotting)."""

PLOTS = {
    "reliability.png": "Reliability diagram: the model's mean probability that a response wins (sigmoid of "
    "the reward margin) against the share of votes it got, per bin, each pair counted from both sides; "
    "the grey bars count each bin.",
    "reward_hist.png": "Rewards the model gives to chosen and to rejected responses (same bins); "
    "the dashed lines are their means.",
    "accuracy_by_agreement.png": "Accuracy by annotator agreement: by number of votes and by p_chosen, the "
    "share of votes for the chosen response. Conflicts (p_chosen = 0.5) are left out.",
    "accuracy_by_source.png": "Accuracy by source, with the number of decided pairs beside each bar.",
    "reward_vs_length.png": "Reward against response length in characters: a length bias shows as a slope.",
}
"""File name of each plot, in report order, and its caption."""


# ---------------------------------------------------------------------------------------------
# Small pieces


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


# ---------------------------------------------------------------------------------------------
# The plots


def reliability_figure(metrics: dict[str, Any]) -> Figure:
    """Reliability diagram of metrics["calibration"]: per non-empty bin, mean confidence against mean
    outcome (a point on the diagonal is calibrated), with the bin counts as bars on a second axis."""
    calibration = metrics["calibration"]
    table = [row for row in calibration["table"] if row["count"]]
    figure = new_figure(6.4, 5.0)
    ax = figure.add_subplot()
    ax.set_title(f"Reliability of sigmoid(r_a - r_b)\nECE = {number(calibration['ece'], 3)}")
    if not table:
        no_data(ax, "no pairs")
        return figure
    counts = ax.twinx()
    width = 1.0 / calibration["bins"]
    counts.bar(
        [row["lo"] + width / 2 for row in table],
        [row["count"] for row in table],
        width=width * 0.9,
        color="0.85",
        label="responses per bin (each pair twice)",
    )
    counts.set_ylabel("responses per bin (each pair twice)")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts.set_ylim(0, max(row["count"] for row in table) * 3)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", label="perfect calibration")
    ax.plot(
        [row["confidence"] for row in table],
        [row["observed"] for row in table],
        marker="o",
        color=CHOSEN_COLOR,
        label="model",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("predicted: mean sigmoid(r_a - r_b) in the bin (each pair both ways)")
    ax.set_ylabel("observed: mean share of votes for a")
    handles = ax.get_legend_handles_labels()[0] + counts.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    return figure


def reward_hist_figure(chosen: np.ndarray, rejected: np.ndarray) -> Figure:
    """Histograms of chosen (n,) and rejected (n,) rewards over the same bins, each mean a dashed line."""
    figure = new_figure(7.0, 4.5)
    ax = figure.add_subplot()
    ax.set_title(f"Rewards of chosen and rejected responses ({_pairs(chosen.size)})")
    if chosen.size == 0:
        no_data(ax, "no pairs")
        return figure
    rewards = np.concatenate([chosen, rejected])
    edges = np.histogram_bin_edges(rewards, bins="auto")
    if edges.size > 51:
        edges = np.histogram_bin_edges(rewards, bins=50)
    for values, name, color in ((chosen, "chosen", CHOSEN_COLOR), (rejected, "rejected", REJECTED_COLOR)):
        mean = float(values.mean())
        ax.hist(values, bins=edges.tolist(), color=color, alpha=0.45, label=name)
        ax.axvline(mean, color=color, linestyle="--", linewidth=1.5, label=f"mean {name} = {mean:.3f}")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
    ax.set_xlabel("reward")
    ax.set_ylabel("responses")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper right", ncol=2)
    return figure


def _accuracy_bars(ax: Axes, groups: dict[str, dict[str, Any]], overall: float | None, xlabel: str) -> None:
    """Vertical bars of each group's accuracy over its decided pairs (value above, n at the base), the
    overall accuracy and chance as lines."""
    names = list(groups)
    decided = [groups[name]["n_decided"] for name in names]
    ax.set_xlabel(xlabel)
    if not any(decided):
        no_data(ax, "no decided pairs")
        return
    accuracy = [groups[name]["accuracy"] or 0.0 for name in names]
    positions = np.arange(len(names))
    ax.bar(positions, accuracy, color=BAR_COLOR, width=0.6)
    for x, acc, n in zip(positions, accuracy, decided, strict=True):
        ax.text(float(x), 0.02, f"n={n}", ha="center", va="bottom", fontsize=9, color="white" if n else "0.4")
        if n:
            ax.text(float(x), acc + 0.02, percent(acc), ha="center", va="bottom", fontsize=9, bbox=LABEL_BOX)
    if overall is not None:
        ax.axhline(overall, color="black", linestyle="--", linewidth=1.2, label=f"overall {percent(overall)}")
    ax.axhline(0.5, color="0.6", linestyle=":", linewidth=1.0, label="chance")
    ax.set_xticks(positions, [short_label(name) for name in names])
    ax.set_ylim(0, 1.25)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy (decided pairs)")
    ax.legend(loc="upper right", ncol=2, fontsize=9)


def accuracy_by_agreement_figure(metrics: dict[str, Any]) -> Figure:
    """Accuracy per n_votes group (left) and per p_chosen group (right), conflicts left out (a caption)."""
    figure = new_figure(10.0, 4.6)
    left, right = figure.subplots(1, 2, sharey=True)
    figure.suptitle("Accuracy by annotator agreement")
    _accuracy_bars(left, metrics["by_n_votes"], metrics["accuracy"], "votes on the pair")
    _accuracy_bars(right, metrics["by_p_chosen"], metrics["accuracy"], "p_chosen (share of votes for chosen)")
    right.set_ylabel("")
    figure.supxlabel(
        f"Conflicts (p_chosen = 0.5, no right answer): {_pairs(metrics['n_conflict'])}, left out of every "
        "bar and of the overall line. Ties count as wrong.",
        fontsize=9,
        color="0.3",
    )
    return figure


def accuracy_by_source_figure(metrics: dict[str, Any]) -> Figure:
    """Horizontal bars of accuracy per source (the `MAX_SOURCES` largest by decided pairs), each value and
    n in a column right of 1.0, the overall accuracy and chance as lines."""
    groups = metrics["by_source"]
    ranked = sorted(groups, key=lambda name: (-groups[name]["n_decided"], name))
    shown = ranked[:MAX_SOURCES]
    figure = new_figure(8.0, 4.8)
    ax = figure.add_subplot()
    more = f" (the {MAX_SOURCES} largest of {len(ranked)})" if len(ranked) > MAX_SOURCES else ""
    ax.set_title(f"Accuracy by source{more}")
    if not any(groups[name]["n_decided"] for name in shown):
        no_data(ax, "no decided pairs")
        return figure
    positions = np.arange(len(shown))[::-1]
    accuracy = [groups[name]["accuracy"] or 0.0 for name in shown]
    ax.barh(positions, accuracy, color=BAR_COLOR, height=0.6)
    for y, name in zip(positions, shown, strict=True):
        group = groups[name]
        text = f"{percent(group['accuracy'])}  n={group['n_decided']}" if group["n_decided"] else "n=0"
        ax.text(1.03, y, text, va="center", fontsize=9)
    ax.axvline(
        metrics["accuracy"], color="black", linestyle="--", label=f"overall {percent(metrics['accuracy'])}"
    )
    ax.axvline(0.5, color="0.6", linestyle=":", label="chance")
    ax.set_yticks(positions, [short_label(name) for name in shown])
    ax.set_xlim(0, 1.3)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("accuracy (decided pairs; conflicts left out, ties wrong)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=9)
    return figure


def reward_vs_length_figure(chosen: np.ndarray, rejected: np.ndarray, pairs: pa.Table) -> Figure:
    """Scatter of reward against response length (characters), chosen and rejected apart, each with its
    Pearson r in the legend and the pooled r over all 2n responses in the title; log x for wide ranges.
    Correlations use every pair; at most `MAX_POINTS` pairs, drawn at random (seed 0), are plotted."""
    figure = new_figure(7.0, 5.0)
    ax = figure.add_subplot()
    len_chosen, len_rejected = char_lengths(pairs, "chosen"), char_lengths(pairs, "rejected")
    pooled = pearson(np.concatenate([chosen, rejected]), np.concatenate([len_chosen, len_rejected]))
    ax.set_title(f"Reward against response length (Pearson r = {number(pooled, 2)} over all responses)")
    if chosen.size == 0:
        no_data(ax, "no pairs")
        return figure
    shown = np.arange(chosen.size)
    if chosen.size > MAX_POINTS:
        shown = np.sort(np.random.default_rng(0).choice(chosen.size, MAX_POINTS, replace=False))
        ax.set_title(f"{ax.get_title()}\n{MAX_POINTS} of {chosen.size} pairs drawn", fontsize="medium")
    size, alpha = (18, 0.7) if shown.size <= 500 else (8, 0.3)
    for lengths, rewards, name, color in (
        (len_chosen, chosen, "chosen", CHOSEN_COLOR),
        (len_rejected, rejected, "rejected", REJECTED_COLOR),
    ):
        r = number(pearson(rewards, lengths), 2)
        ax.scatter(
            lengths[shown],
            rewards[shown],
            s=size,
            alpha=alpha,
            color=color,
            linewidths=0,
            label=f"{name} (r = {r})",
        )
    lengths = np.concatenate([len_chosen, len_rejected])
    if lengths.min() >= 1 and lengths.max() >= 20 * lengths.min():
        ax.set_xscale("log")
    ax.set_xlabel("response length (characters)")
    ax.set_ylabel("reward")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, markerscale=2)
    return figure


# ---------------------------------------------------------------------------------------------
# The pages


def _headline_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) of the headline table, formatted."""
    m = metrics
    longer = m["baselines"]["longer_wins"]
    return [
        ("pairs", f"{m['n_pairs']} ({m['n_decided']} decided, {m['n_conflict']} conflicts)"),
        ("accuracy (strict)", percent(m["accuracy"])),
        ("ties", f"{percent(m['tie_rate'])} ({m['n_ties']})"),
        ("accuracy, ties as half", percent(m["accuracy_ties_half"])),
        ("loss (Bradley-Terry NLL, decided)", number(m["loss"])),
        ("soft-label loss (floor)", f"{number(m['loss_soft'])} ({number(m['loss_soft_floor'])})"),
        ("expected calibration error", number(m["calibration"]["ece"])),
        ("baseline: longer response wins", percent(longer["accuracy"])),
        ("correlation of reward with length", number(m["baselines"]["length_correlation"], 3)),
    ]


def report_html(metrics: dict[str, Any], pngs: dict[str, bytes], title: str) -> str:
    """A self-contained HTML page: the headline metrics table, then each PNG embedded as base64."""
    rows = "\n".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in _headline_rows(metrics)
    )
    figures = "\n".join(
        f'<figure id="{html.escape(name)}"><img src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(PLOTS[name])} <code>{html.escape(name)}</code></figcaption></figure>"
        for name, data in pngs.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1040px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td {{ border: 1px solid #ccc; padding: 4px 10px; }}
td:last-child {{ text-align: right; }}
figure {{ margin: 2em 0; }}
img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<table>
{rows}
</table>
<p>Accuracy rule: {html.escape(metrics["accuracy_rule"])}.</p>
{figures}
</body>
</html>
"""


def report_md(metrics: dict[str, Any], title: str) -> str:
    """`report_markdown(metrics)` under the heading `title`, then a link to each PNG file."""
    body = report_markdown(metrics).split("\n", 1)[1]
    links = "\n".join(f"![{name}]({name})\n\n{caption}\n" for name, caption in PLOTS.items())
    return f"# {title}\n{body}\n## Plots\n\n{links}"


def write_eval_report(
    chosen: np.ndarray,
    rejected: np.ndarray,
    pairs: pa.Table,
    metrics: dict[str, Any],
    out: Path,
    title: str = "Reward model evaluation",
) -> dict[str, Path]:
    """Write the plots, report.html and report.md into `out`; {file name: path}, plots first.

    chosen, rejected: rewards (n,) of each pair's responses; pairs: the pair table (n rows; `chosen`
    and `rejected` texts); metrics: `pair_metrics(chosen, rejected, pairs)`.
    """
    chosen = np.asarray(chosen, dtype=np.float64)
    rejected = np.asarray(rejected, dtype=np.float64)
    if not (chosen.shape == rejected.shape == (pairs.num_rows,)):
        raise ValueError(
            f"write_eval_report: rewards of shapes {chosen.shape} and {rejected.shape} "
            f"for a table of {pairs.num_rows} pairs"
        )
    figures = {
        "reliability.png": reliability_figure(metrics),
        "reward_hist.png": reward_hist_figure(chosen, rejected),
        "accuracy_by_agreement.png": accuracy_by_agreement_figure(metrics),
        "accuracy_by_source.png": accuracy_by_source_figure(metrics),
        "reward_vs_length.png": reward_vs_length_figure(chosen, rejected, pairs),
    }
    assert list(figures) == list(PLOTS)
    pngs = {name: png_bytes(figure) for name, figure in figures.items()}
    for name, data in pngs.items():
        write_bytes(out / name, data)
    write_text(out / "report.md", report_md(metrics, title))
    write_text(out / "report.html", report_html(metrics, pngs, title))
    return {name: out / name for name in [*pngs, "report.md", "report.html"]}
