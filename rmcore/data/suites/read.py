"""Reading a benchmark suite: a local file or an `hf://` id -> Suite, its shape detected from content.

    FILE (JSON, JSONL, Parquet; gzip too) -> containers.records  \\
                                                                  -> detect_suite -> rewardbench.py
    hf://owner/name[/config][:split]     -> hub.hub_rows         /                  rewardbench2.py
                                                                                    rmbench.py -> Suite

A suite is scored whole: its published scores are means over every subset, so a suite missing rows
would give a number nobody can compare. A bad row therefore refuses the file, with one line that names
the file, the row and the reason; nothing is skipped. Items keep the file's order.

The hub ids of the suites need no split: hf://allenai/reward-bench reads `filtered`,
hf://allenai/reward-bench-2 reads `test` (hub.SUITES). The prior sets are read one split at a time,
hf://allenai/pref-test-sets:anthropic_helpful, and the split names the items' subset.
"""

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import rmcore.data.suites.rewardbench as rewardbench
import rmcore.data.suites.rewardbench2 as rewardbench2
import rmcore.data.suites.rmbench as rmbench
from rmcore.data.formats.containers import RawRecord, UnreadableFile, records
from rmcore.data.ingest.hub import HF_PREFIX, SUITES, hub_dataset, hub_rows
from rmcore.data.records import RowRejected
from rmcore.data.suites.items import SUITE_NAMES, Suite, SuiteItem, SuiteName

PRIOR_SETS = frozenset({"allenai/pref-test-sets", "allenai/preference-test-sets"})
"""RewardBench's prior sets on the hub (the second name is the dataset's current one)."""

_MATCHES: dict[SuiteName, Callable[[Mapping[str, Any]], bool]] = {
    "rm-bench": rmbench.matches,
    "rewardbench2": rewardbench2.matches,
    "rewardbench": rewardbench.matches,
}
"""Detection, most specific shape first: RM-Bench has a domain, RewardBench 2 lists, RewardBench texts."""

_ITEMS: dict[SuiteName, Callable[[Mapping[str, Any]], SuiteItem]] = {
    "rewardbench": rewardbench.item,
    "rewardbench2": rewardbench2.item,
    "rm-bench": rmbench.item,
}

SHAPES = (
    "RewardBench (prompt, chosen and rejected texts, subset), "
    "RewardBench 2 (prompt, chosen and rejected lists, subset) "
    "or RM-Bench (prompt, chosen and rejected lists of 3, domain)"
)


def detect_suite(record: Mapping[str, Any]) -> SuiteName | None:
    """The suite a row's fields say it is from, or None for a row of none of them."""
    for name, matches in _MATCHES.items():
        if matches(record):
            return name
    return None


def read_suite(source: str, name: SuiteName | None = None) -> Suite:
    """Every item of the suite in a local file or `hf://` dataset, in order.

    `name` (rewardbench, rewardbench2, rm-bench) says the shape; None detects it from the first row.
    ValueError, in one line naming `source`, for a file or dataset that cannot be read, one that is
    not a suite, one with no rows, or any bad row (a field missing, a completion empty, a chosen or
    rejected of the wrong shape): a suite is scored whole, so one bad row refuses the file.
    """
    if name is not None and name not in SUITE_NAMES:
        raise ValueError(f"{source}: unknown suite {name!r}; expected one of {', '.join(SUITE_NAMES)}")
    rows, subset = _rows(source)
    if name is None and subset is not None:
        name = "rewardbench"
    item = _reader(name, subset) if name is not None else None
    items: list[SuiteItem] = []
    try:
        for raw in rows:
            value = _value(source, raw)
            if item is None:
                name = detect_suite(value)
                if name is None:
                    fields = ", ".join(sorted(value)[:12])
                    raise ValueError(f"{source}: not a benchmark suite (fields: {fields}); expected {SHAPES}")
                item = _reader(name, subset)
            try:
                items.append(item(value))
            except RowRejected as why:
                raise _refused(source, raw.row, why.detail) from None
    except UnreadableFile as error:
        lines = (line.strip() for line in str(error).splitlines())
        raise ValueError(" ".join(line for line in lines if line)) from error
    if name is None or not items:
        raise ValueError(f"{source}: no rows; a suite needs at least one")
    return Suite(name=name, source=source, items=tuple(items))


def _rows(source: str) -> tuple[Iterator[RawRecord], str | None]:
    """The source's raw rows, and the subset its split names (RewardBench's prior sets) or None."""
    if not source.startswith(HF_PREFIX):
        return records(Path(source)), None
    dataset = hub_dataset(source.removeprefix(HF_PREFIX), SUITES)
    subset = dataset.split if dataset.name.lower() in PRIOR_SETS else None
    return hub_rows(dataset), subset


def _reader(name: SuiteName, subset: str | None) -> Callable[[Mapping[str, Any]], SuiteItem]:
    """The row reader of a suite; for a prior set, RewardBench's, with the split as every row's subset."""
    if name == "rewardbench" and subset is not None:
        return partial(rewardbench.item, subset=subset)
    return _ITEMS[name]


def _value(source: str, raw: RawRecord) -> dict[str, Any]:
    if raw.value is None:
        assert raw.error is not None
        raise _refused(source, raw.row, raw.error.detail)
    return raw.value


def _refused(source: str, row: int, reason: str) -> ValueError:
    return ValueError(f"{source}: row {row}: {reason}; a suite is scored whole, so the file is refused")
