"""The training scorer under torch.compile: rows dynamic, one graph per row width, compilations counted.

rmcore train --set train.compile=true       (FlexAttention, model.attention auto on CUDA: always compiled)

A micro-batch is (rows, width): rows vary with what the step holds, widths come from a few buckets
(train.width_multiple). Marking the rows dimension dynamic before each call lets one graph serve
every row count, and the width, kept static, picks the graph: one per bucket width, each with
FlexAttention's kernel and its block-mask construction specialised to that width (torch gives a
micro-batch of a single row a graph of its own: it specializes dimensions of size 1). Dynamo's
recompile limit is raised to the number of graphs the widths can need, so a run never falls back
to eager code after its eighth graph.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn


class DynamicRows(nn.Module):
    """`torch.compile(module)` called with dimension 0 of every input dynamic (the rows, and the
    sequences of `read_index`), under a recompile limit of `max_graphs`."""

    def __init__(self, module: nn.Module, max_graphs: int) -> None:
        super().__init__()
        self.compiled = torch.compile(module)
        self.max_graphs = max_graphs

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **layout: Tensor) -> Tensor:
        for tensor in (input_ids, attention_mask, *layout.values()):
            torch._dynamo.maybe_mark_dynamic(tensor, 0)
        limit = max(torch._dynamo.config.recompile_limit, self.max_graphs)
        with torch._dynamo.config.patch(recompile_limit=limit):
            return self.compiled(input_ids, attention_mask, **layout)


@dataclass(frozen=True)
class Compilations:
    """What torch.compile has done in this process so far, from torch's own counters."""

    graphs: int
    """Graphs compiled (dynamo's unique_graphs)."""
    recompiles: int
    """Compilations of a frame after its first: a guard failed (a new shape, a new grad mode...)."""

    def since(self, earlier: "Compilations") -> "Compilations":
        """What happened after `earlier`."""
        return Compilations(self.graphs - earlier.graphs, self.recompiles - earlier.recompiles)


def compilations() -> Compilations:
    """Graphs compiled and recompiles so far in this process."""
    from torch._dynamo.convert_frame import FRAME_COMPILE_COUNTER
    from torch._dynamo.utils import counters

    recompiles = sum(max(0, count - 1) for count in FRAME_COMPILE_COUNTER.values())
    return Compilations(graphs=int(counters["stats"]["unique_graphs"]), recompiles=recompiles)
