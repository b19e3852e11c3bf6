"""LLMBar (and its processed FairEval / MT-Bench sets): {input, output_1, output_2, label: 1|2}."""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

_LABELS: dict[int, Label] = {1: "a", 2: "b"}


def is_llmbar(record: Mapping[str, Any]) -> bool:
    """Two numbered outputs and a numeric label."""
    return {"input", "output_1", "output_2", "label"} <= record.keys()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment."""
    value = fields.number_code(fields.present(record, "label"))
    if value not in _LABELS:
        raise RowRejected(Reason.UNKNOWN_LABEL, f"field 'label' is {value!r}, not 1 or 2")
    return [
        Judgment(
            prompt=(Message("user", fields.text(record, "input")),),
            response_a=fields.text(record, "output_1"),
            response_b=fields.text(record, "output_2"),
            label=_LABELS[value],
        )
    ]
