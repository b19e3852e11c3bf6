"""Prometheus-format pairwise evals: {source, chosen_instruction, rejected_instruction}.

Each instruction is a grading prompt embedding the task and one response between the
`###The instruction to evaluate:`, `###Response to evaluate:` and `###Score Rubrics:` headers.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Message, Parsed, Reason, RowRejected

_TASK = "###The instruction to evaluate:"
_RESPONSE = "###Response to evaluate:"
_RUBRIC = "###Score Rubrics:"


def is_prometheus(record: Mapping[str, Any]) -> bool:
    """A pair of grading prompts."""
    return {"chosen_instruction", "rejected_instruction"} <= record.keys()


def task_and_response(text: str, name: str) -> tuple[str, str]:
    """The (instruction, response) embedded in one grading prompt."""
    start, middle, end = text.find(_TASK), text.find(_RESPONSE), text.find(_RUBRIC)
    if not 0 <= start < middle < end:
        raise RowRejected(Reason.MALFORMED, f"'{name}' lacks the instruction/response headers")
    return text[start + len(_TASK) : middle].strip(), text[middle + len(_RESPONSE) : end].strip()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: the chosen grading prompt's response over the rejected one's."""
    task, chosen = task_and_response(fields.text(record, "chosen_instruction"), "chosen")
    rejected_task, rejected = task_and_response(fields.text(record, "rejected_instruction"), "rejected")
    if task != rejected_task:
        raise RowRejected(Reason.PROMPT_MISMATCH, "chosen and rejected grade different tasks")
    return [
        Judgment(
            prompt=(Message("user", fields.nonempty(task, "instruction")),),
            response_a=fields.nonempty(chosen, "chosen response"),
            response_b=fields.nonempty(rejected, "rejected response"),
            label="a",
            source=fields.optional_str(record, "source"),
        )
    ]
