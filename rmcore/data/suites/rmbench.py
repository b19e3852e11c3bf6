"""RM-Bench rows: one prompt, three chosen and three rejected completions in style order, a domain.

    {"id", "prompt": str, "chosen": [concise, detailed, detailed with markdown],
     "rejected": [concise, detailed, detailed with markdown],
     "domain": "chat" | "code" | "math" | "safety-refuse" | "safety-response"}

as in THU-KEG/RM-Bench (`data/total_dataset.json` and one file per domain; Liu et al. 2025,
"RM-Bench: Benchmarking Reward Models of Language Models with Subtlety and Style", ICLR 2025,
arXiv:2410.16184; the repository's README gives the style order). chosen[i] and rejected[i] share a style.

The item's subset is one of the four domains the authors report: a row belongs to the first of
chat, math, code, safety its `domain` starts with, so safety-refuse and safety-response are both
safety (`split_dataset_by_domain` in the repository's scripts/utils.py).
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.suites.shared as shared
from rmcore.data.records import Reason, RowRejected
from rmcore.data.suites.items import SuiteItem

STYLES = ("concise", "detailed", "detailed with markdown")
"""The order of each row's chosen and rejected completions."""
DOMAINS = ("chat", "math", "code", "safety")
"""The domains RM-Bench reports, each matched as a prefix of a row's `domain`."""


def matches(record: Mapping[str, Any]) -> bool:
    """A domain, and lists of chosen and rejected texts."""
    return (
        "domain" in record
        and shared.is_texts(record.get("chosen"))
        and shared.is_texts(record.get("rejected"))
    )


def domain(record: Mapping[str, Any]) -> str:
    """The reported domain a row's `domain` falls in (safety-refuse -> safety)."""
    raw = shared.subset(record, "domain")
    for name in DOMAINS:
        if raw.startswith(name):
            return name
    expected = "chat, math, code, safety-refuse, safety-response"
    raise RowRejected(Reason.MALFORMED, f"field 'domain' is {raw!r}, not one of {expected}")


def item(record: Mapping[str, Any]) -> SuiteItem:
    """The row as a suite item: exactly three chosen and three rejected completions, in style order."""
    return SuiteItem(
        id=shared.suite_id(record),
        subset=domain(record),
        prompt=shared.prompt(record),
        chosen=shared.completions(record, "chosen", len(STYLES)),
        rejected=shared.completions(record, "rejected", len(STYLES)),
    )
