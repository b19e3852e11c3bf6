"""What a benchmark suite's reader produces: the suite's items, each a prompt with its completions.

A suite is scored, not trained on: its items never enter the lake. Each reader keeps the suite's own
grouping (`subset`), because the suite's published scoring rules are defined over it.
"""

from dataclasses import dataclass
from typing import Literal

from rmcore.data.records import Message

SuiteName = Literal["rewardbench", "rewardbench2", "rm-bench"]
SUITE_NAMES: tuple[SuiteName, ...] = ("rewardbench", "rewardbench2", "rm-bench")


@dataclass(frozen=True, slots=True)
class SuiteItem:
    """One item of a suite: a prompt, the completions that should win and those that should lose.

    rewardbench    one chosen, one rejected; `subset` is one of the 23 subsets or a prior set
    rewardbench2   one or more chosen (Ties: every correct answer), several rejected; `subset` is the
                   section (Factuality, Precise IF, Math, Safety, Focus, Ties)
    rm-bench       three chosen and three rejected, in style order (concise, detailed, detailed with
                   markdown): chosen[i] and rejected[i] share a style; `subset` is the domain
    """

    id: str
    subset: str
    prompt: tuple[Message, ...]
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suite:
    """A suite's items as read from one file or hub dataset."""

    name: SuiteName
    source: str
    items: tuple[SuiteItem, ...]
