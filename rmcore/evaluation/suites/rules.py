"""A suite's published scoring rules: rewards in, the suite's scores out.

    Suite + rewards per item (chosen, rejected) -> score_suite -> SuiteResult
        rewardbench    rewardbench.score_rewardbench    (allenai/reward-bench, v1)
        rewardbench2   rewardbench2.score_rewardbench2  (allenai/reward-bench, v2 and its Ties rule)
        rm-bench       rmbench.score_rmbench            (THU-KEG/RM-Bench)

Each suite's module states its rule with the file or paper where the authors wrote it.
"""

from collections.abc import Sequence

from rmcore.data.suites.items import Suite
from rmcore.evaluation.suites.results import SuiteResult
from rmcore.evaluation.suites.rewardbench import EXAMPLE_COUNTS, PRIOR_SETS, SUBSET_MAPPING, score_rewardbench
from rmcore.evaluation.suites.rewardbench2 import SECTIONS as REWARDBENCH2_SECTIONS
from rmcore.evaluation.suites.rewardbench2 import score_rewardbench2
from rmcore.evaluation.suites.rmbench import DOMAINS as RMBENCH_DOMAINS
from rmcore.evaluation.suites.rmbench import score_rmbench

__all__ = [
    "EXAMPLE_COUNTS",
    "PRIOR_SETS",
    "REWARDBENCH2_SECTIONS",
    "RMBENCH_DOMAINS",
    "SUBSET_MAPPING",
    "score_suite",
]


def score_suite(
    suite: Suite, chosen: Sequence[tuple[float, ...]], rejected: Sequence[tuple[float, ...]]
) -> SuiteResult:
    """The suite's scores by its authors' rules.

    `chosen[k]` and `rejected[k]` are the rewards of `suite.items[k].chosen` and `.rejected`, in order.
    A suite with no items, or rewards that do not line up with its items, is refused.
    """
    if not suite.items:
        raise ValueError(f"{suite.name} suite {suite.source!r} has no items to score")
    if len(chosen) != len(suite.items) or len(rejected) != len(suite.items):
        raise ValueError(
            f"{suite.name} suite {suite.source!r}: {len(suite.items)} items but rewards for "
            f"{len(chosen)} chosen and {len(rejected)} rejected lists"
        )
    for item, c, r in zip(suite.items, chosen, rejected, strict=True):
        if len(c) != len(item.chosen) or len(r) != len(item.rejected) or not c or not r:
            raise ValueError(
                f"{suite.name} item {item.id!r}: {len(item.chosen)} chosen and {len(item.rejected)} "
                f"rejected completions but {len(c)} and {len(r)} rewards (each side needs at least one)"
            )
    if suite.name == "rewardbench":
        return score_rewardbench(suite, chosen, rejected)
    if suite.name == "rewardbench2":
        return score_rewardbench2(suite, chosen, rejected)
    return score_rmbench(suite, chosen, rejected)
