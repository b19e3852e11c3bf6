"""Source formats: how one raw record becomes judgments or rankings, and how to recognise it.

    file bytes -> containers.py (RawRecord) -> a reader per format (fields.py, conversations.py)
        -> Parsed (Judgment / Ranking) -> validate.py (checks every row must pass)

One module per format, named as the format (`--format NAME`); arena.py also reads mt_bench and
pairwise.py reads `labelled` and `trl`. Detection looks at the first record of a file; the order
below goes from the most specific shape to the most generic. `--format NAME` overrides detection.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from rmcore.config import IngestConfig
from rmcore.data.formats import (
    arena,
    arena_csv,
    helpsteer3,
    hh,
    llmbar,
    nectar,
    oasst,
    pairwise,
    pandalm,
    prometheus,
    ranking,
    safe_rlhf,
    shp,
    summarize,
    tulu,
    ultrafeedback,
    webgpt,
)
from rmcore.data.records import Parsed

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Format:
    """A named source format: a recogniser and a parser of one record."""

    name: str
    matches: Callable[[Record], bool]
    parse: Callable[[Record], list[Parsed]]


def formats(options: IngestConfig | None = None) -> dict[str, Format]:
    """Every known format by name, in detection order; `options` sets the readers' choices."""
    options = options or IngestConfig()
    oasst_parse = partial(oasst.parse, include_synthetic=options.include_synthetic)
    safe_rlhf_parse = partial(safe_rlhf.parse, preference=options.safe_rlhf_preference)
    return {
        f.name: f
        for f in (
            Format("oasst", oasst.is_oasst, oasst_parse),
            Format("pandalm", pandalm.is_pandalm, pandalm.parse),
            Format("tulu", tulu.is_tulu, tulu.parse),
            Format("prometheus", prometheus.is_prometheus, prometheus.parse),
            Format("llmbar", llmbar.is_llmbar, llmbar.parse),
            Format("mt_bench", arena.is_mt_bench, arena.parse),
            Format("arena", arena.is_arena, arena.parse),
            Format("arena_csv", arena_csv.is_arena_csv, arena_csv.parse),
            Format("helpsteer3", helpsteer3.is_helpsteer3, helpsteer3.parse),
            Format("nectar", nectar.is_nectar, nectar.parse),
            Format("ultrafeedback", ultrafeedback.is_ultrafeedback, ultrafeedback.parse),
            Format("shp", shp.is_shp, shp.parse),
            Format("safe_rlhf", safe_rlhf.is_safe_rlhf, safe_rlhf_parse),
            Format("summarize", summarize.is_summarize, summarize.parse),
            Format("webgpt", webgpt.is_webgpt, webgpt.parse),
            Format("ranking", ranking.is_ranking, ranking.parse),
            Format("hh", hh.is_hh, hh.parse),
            Format("labelled", pairwise.is_labelled, pairwise.parse_labelled),
            Format("trl", pairwise.is_trl, pairwise.parse_trl),
        )
    }


FORMAT_NAMES = tuple(formats())


def detected(record: Record, known: dict[str, Format]) -> Format | None:
    """The first format whose recogniser accepts `record`, or None."""
    return next((f for f in known.values() if f.matches(record)), None)
