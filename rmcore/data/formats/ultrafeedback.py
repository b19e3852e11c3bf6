"""UltraFeedback, raw form (openbmb/UltraFeedback): four completions of one instruction, rated by GPT-4.

Record: {source, instruction, models: [...], completions: [{model, principle, custom_system_prompt,
annotations: {...}, "fine-grained_score", overall_score, critique, response}, ...], correct_answers,
incorrect_answers}. Each row is one ranking of its completions' responses, in the order given, by
fine-grained_score (the mean of GPT-4's four aspect ratings), higher better: ranks are the dense
ranks of the negated score (0 best), so equal scores tie. The prompt is the instruction alone: each
completion was written under its own custom_system_prompt, which is not part of the task.

GPT-4 made the labels, not people: category is MODEL_LABELLED (a team can leave such data out);
attributes: labeller "gpt-4", source, model_0.. (each completion's model).

Rejected: fewer than two completions, or a completion whose fine-grained_score is missing, not a
number or not finite (invalid_ranks); a missing or empty instruction or response; two responses with
the same text (identical_responses, as for every format).
"""

import math
from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.nectar import model_attributes, objects
from rmcore.data.records import MODEL_LABELLED, Message, Parsed, Ranking, Reason, RowRejected

SCORE = "fine-grained_score"


def is_ultrafeedback(record: Mapping[str, Any]) -> bool:
    """An instruction and a list of completions."""
    return {"instruction", "completions"} <= record.keys()


def dense_ranks(scores: list[float]) -> tuple[int, ...]:
    """Ranks with the highest score 0, equal scores sharing a rank and no gaps after a tie."""
    order = sorted(set(scores), reverse=True)
    return tuple(order.index(s) for s in scores)


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One ranking of the row's completions by fine-grained score."""
    instruction = fields.text(record, "instruction")
    completions = objects(fields.present(record, "completions"), "completions")
    return [
        Ranking(
            prompt=(Message("user", instruction),),
            responses=tuple(fields.text(c, "response") for c in completions),
            ranks=dense_ranks([_score(c, f"completions[{i}]") for i, c in enumerate(completions)]),
            category=MODEL_LABELLED,
            attributes=model_attributes(completions, fields.optional_str(record, "source")),
        )
    ]


def _score(completion: Mapping[str, Any], name: str) -> float:
    value = completion.get(SCORE)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RowRejected(Reason.INVALID_RANKS, f"{name} has no finite '{SCORE}': {value!r}")
    return float(value)
