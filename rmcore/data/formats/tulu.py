"""Tulu human-evaluation spreadsheet rows: graded preference between completion_a and _b.

`preference` is one of a-is-better, a-is-slightly-better, tie, b-is-slightly-better,
b-is-better; "better" is strength 2 and "slightly better" strength 1 (a tie has none).
Each row is one evaluator's judgment; `evaluator` is the annotator.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

PREFERENCES: dict[str, tuple[Label, float | None]] = {
    "a-is-better": ("a", 2.0),
    "a-is-slightly-better": ("a", 1.0),
    "tie": ("tie", None),
    "b-is-slightly-better": ("b", 1.0),
    "b-is-better": ("b", 2.0),
}


def is_tulu(record: Mapping[str, Any]) -> bool:
    """Two completions and a graded preference."""
    return {"prompt", "completion_a", "completion_b", "preference"} <= record.keys()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One graded judgment."""
    preference = fields.present(record, "preference")
    if not isinstance(preference, str) or preference not in PREFERENCES:
        raise RowRejected(
            Reason.UNKNOWN_LABEL,
            f"preference {preference!r} is not one of {', '.join(PREFERENCES)}",
        )
    label, strength = PREFERENCES[preference]
    return [
        Judgment(
            prompt=(Message("user", fields.text(record, "prompt")),),
            response_a=fields.text(record, "completion_a"),
            response_b=fields.text(record, "completion_b"),
            label=label,
            strength=strength,
            annotator=fields.optional_str(record, "evaluator"),
            category=fields.optional_str(record, "instance_id"),
        )
    ]
