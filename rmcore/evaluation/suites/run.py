"""A saved model on a benchmark suite: read the suite, score each distinct completion once, apply the
suite's rules.

rmcore evaluate --model runs/latest/model --suite rewardbench hf://allenai/reward-bench

    suite file or hf:// id -> read_suite -> Suite -> suite_rewards (Scorer.row_rewards) -> score_suite
                                                                                          -> SuiteResult

Scoring goes through the scorer held-out evaluation uses (`rmcore.model.inference.Scorer`), in the
precision the model trained with and at most `config.train.max_tokens` padded tokens per forward:
sequences are batched shortest first, each distinct token sequence is scored once, and on decoders the
completions of one prompt share a single copy of it.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from rmcore.config import Config
from rmcore.data.identity import prompt_id
from rmcore.data.lake import Lake
from rmcore.data.records import Message
from rmcore.data.suites import Suite, SuiteName, read_suite
from rmcore.evaluation.suites.results import SuiteResult
from rmcore.evaluation.suites.rules import score_suite
from rmcore.model.inference import Scorer, load_trained

TRAINED_TABLES = ("comparisons", "rankings")
"""The lake's tables a model trains on: their prompts are the ones a suite item must not share."""


@dataclass(frozen=True)
class SuiteRewards:
    """A scorer's rewards on a suite, aligned with `suite.items`: each item's chosen and rejected
    completions in the item's order, and how many distinct (prompt, completion) texts were scored."""

    chosen: list[tuple[float, ...]]
    rejected: list[tuple[float, ...]]
    distinct: int


def suite_rewards(scorer: Scorer, suite: Suite) -> SuiteRewards:
    """Rewards of every completion of every item; each distinct (prompt, completion) text is encoded
    and scored once, whichever items and sides it appears in, through `Scorer.row_rewards` (which
    also scores a token sequence met twice after truncation once, and shares prompts on decoders)."""
    index: dict[tuple[tuple[tuple[str, str], ...], str], int] = {}
    prompts: list[list[dict[str, str]]] = []
    completions: list[str] = []

    def slot(prompt: tuple[Message, ...], completion: str) -> int:
        key = (tuple((m.role, m.content) for m in prompt), completion)
        if key not in index:
            index[key] = len(index)
            prompts.append([{"role": m.role, "content": m.content} for m in prompt])
            completions.append(completion)
        return index[key]

    chosen_slots = [[slot(item.prompt, text) for text in item.chosen] for item in suite.items]
    rejected_slots = [[slot(item.prompt, text) for text in item.rejected] for item in suite.items]
    rewards = scorer.row_rewards(prompts, completions).tolist() if completions else []
    return SuiteRewards(
        chosen=[tuple(rewards[k] for k in slots) for slots in chosen_slots],
        rejected=[tuple(rewards[k] for k in slots) for slots in rejected_slots],
        distinct=len(completions),
    )


def lake_prompt_ids(lake: Lake) -> set[str]:
    """The prompt ids of everything the lake holds to train on (comparisons and rankings, every split);
    empty for a lake that does not exist yet."""
    return set().union(*(lake.column(table, "prompt_id") for table in TRAINED_TABLES))


def overlapping(suite: Suite, trained_prompts: set[str]) -> list[bool]:
    """For each item, whether its prompt is in `trained_prompts` by content identity
    (`rmcore.data.identity.prompt_id`: the same messages after NFC, trimming and whitespace folding)."""
    return [prompt_id(item.prompt) in trained_prompts for item in suite.items]


def evaluate_suite(
    model_dir: Path,
    source: str,
    config: Config,
    name: SuiteName | None = None,
    exclude_overlap: bool = False,
) -> SuiteResult:
    """A saved model's scores on the suite at `source` (a file or an hf:// id; its shape detected when
    `name` is None) by the suite's published rules (`rmcore.evaluation.suites.rules.score_suite`).

    Items whose prompt is in the lake at `config.data.lake` are counted (`overlap`); with
    `exclude_overlap` they are left out before scoring (`excluded`).
    """
    suite = read_suite(source, name)
    shared = overlapping(suite, lake_prompt_ids(Lake(config.data.lake)))
    overlap = sum(shared)
    if exclude_overlap and overlap:
        if overlap == len(suite.items):
            raise ValueError(
                f"{source}: all {overlap} items have a prompt in the lake {config.data.lake}; "
                "nothing is left to score without --exclude-overlap"
            )
        kept = tuple(item for item, in_lake in zip(suite.items, shared, strict=True) if not in_lake)
        suite = replace(suite, items=kept)
    trained = load_trained(model_dir)
    rewards = suite_rewards(trained.scorer(config.train.max_tokens), suite)
    result = score_suite(suite, rewards.chosen, rewards.rejected)
    return replace(result, overlap=overlap, excluded=overlap if exclude_overlap else 0)
