"""Plots as PNG files: matplotlib `Figure` objects drawn by the Agg canvas (no pyplot, no global
state), at a fixed size and `DPI`, written atomically. The data report and the evaluation report
draw theirs with these."""

import io
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rmcore.atomic import replacing

DPI = 100
BAR_COLOR = "#4c72b0"
MAX_LABEL = 28
"""Names longer than this are cut, with an ellipsis, where they label an axis."""


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of fixed size in inches, with the Agg canvas attached."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def short_label(name: str) -> str:
    """`name` cut to `MAX_LABEL` characters, an ellipsis marking the cut."""
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def no_data(ax: Axes, why: str) -> None:
    """Mark an axes as empty: the reason in its middle, no ticks."""
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def png_bytes(figure: Figure) -> bytes:
    """The figure encoded as PNG at `DPI`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file (a PNG) atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
