"""RewardBench 2 rows: one prompt, one or more correct and several incorrect completions, a section.

    {"id": str, "prompt": str, "chosen": [str, ...], "rejected": [str, ...], "num_correct": int,
     "num_incorrect": int, "total_completions": int, "models": [str, ...],
     "subset": "Factuality" | "Precise IF" | "Math" | "Safety" | "Focus" | "Ties",
     "additional_metadata": {...}}

as in the `test` split of allenai/reward-bench-2 (Malik et al. 2025, "RewardBench 2: Advancing Reward
Model Evaluation", arXiv:2506.01937; the dataset card lists the fields). Outside Ties a row has one chosen and
three rejected completions; a Ties row has every correct answer as chosen. The counts and models are
not needed to score and are not read: `chosen` and `rejected` are the completions.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.suites.shared as shared
from rmcore.data.suites.items import SuiteItem


def matches(record: Mapping[str, Any]) -> bool:
    """Lists of chosen and rejected texts, a section or RewardBench 2's counts, and no RM-Bench domain."""
    return (
        "domain" not in record
        and ("subset" in record or "num_correct" in record)
        and shared.is_texts(record.get("chosen"))
        and shared.is_texts(record.get("rejected"))
    )


def item(record: Mapping[str, Any]) -> SuiteItem:
    """The row as a suite item: at least one chosen and one rejected completion."""
    return SuiteItem(
        id=shared.suite_id(record),
        subset=shared.subset(record),
        prompt=shared.prompt(record),
        chosen=shared.completions(record, "chosen"),
        rejected=shared.completions(record, "rejected"),
    )
