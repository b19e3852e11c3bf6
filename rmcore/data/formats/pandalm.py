"""PandaLM: {instruction, input, response1, response2, annotator1..3}, votes 1, 2 or 0 (tie).

Each annotator column is one judgment. The prompt is the instruction, followed by the input
(after a blank line) when there is one.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

_VOTES: dict[int, Label] = {1: "a", 2: "b", 0: "tie"}
ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def is_pandalm(record: Mapping[str, Any]) -> bool:
    """Two numbered responses and annotator vote columns."""
    return {"instruction", "response1", "response2", "annotator1"} <= record.keys()


def instruction_prompt(instruction: str, extra: Any) -> tuple[Message, ...]:
    """The instruction, then the optional input after a blank line, as one user message."""
    if isinstance(extra, str) and extra.strip():
        return (Message("user", f"{instruction}\n\n{extra}"),)
    return (Message("user", instruction),)


def vote(record: Mapping[str, Any], name: str) -> Label:
    """One annotator's vote as a label."""
    value = fields.number_code(fields.present(record, name))
    if value not in _VOTES:
        raise RowRejected(Reason.UNKNOWN_LABEL, f"field '{name}' is {value!r}, not 0, 1 or 2")
    return _VOTES[value]


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment per annotator column present."""
    prompt = instruction_prompt(fields.text(record, "instruction"), record.get("input"))
    response_a = fields.text(record, "response1")
    response_b = fields.text(record, "response2")
    category = fields.optional_str(record, "motivation_app")
    return [
        Judgment(prompt, response_a, response_b, vote(record, name), None, name, category)
        for name in ANNOTATORS
        if name in record
    ]
