"""RewardBench (v1) rows: one prompt, one chosen and one rejected completion, and the row's subset.

    {"prompt": str, "chosen": str, "rejected": str, "chosen_model", "rejected_model",
     "subset": "alpacaeval-easy" | ... | "hep-rust", "id": int}

as in the `filtered` split of allenai/reward-bench (Lambert et al. 2024, "RewardBench: Evaluating
Reward Models for Language Modeling", arXiv:2403.13787; the dataset card lists the fields). The prior sets
(allenai/pref-test-sets: anthropic_helpful, anthropic_harmless, anthropic_hhh, mtbench_gpt4,
mtbench_human, shp, summarize) have the same fields with `prompt` a list of {role, content} messages
(a list of strings in their first release). Their subset is the split they come from: RewardBench's
`load_eval_dataset` (rewardbench/utils.py) renames each split's own `subset` column away and names
the rows by split, and so does `read_suite` for `hf://allenai/pref-test-sets:<split>`.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
import rmcore.data.suites.shared as shared
from rmcore.data.suites.items import SuiteItem


def matches(record: Mapping[str, Any]) -> bool:
    """A prompt, one chosen and one rejected text, and a subset."""
    return (
        "prompt" in record
        and "subset" in record
        and isinstance(record.get("chosen"), str)
        and isinstance(record.get("rejected"), str)
    )


def item(record: Mapping[str, Any], subset: str | None = None) -> SuiteItem:
    """The row as a suite item; `subset`, when given (a prior set's split), replaces the row's own."""
    return SuiteItem(
        id=shared.suite_id(record),
        subset=subset if subset is not None else shared.subset(record),
        prompt=shared.prompt(record),
        chosen=(fields.text(record, "chosen"),),
        rejected=(fields.text(record, "rejected"),),
    )
