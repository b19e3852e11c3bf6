"""HelpSteer3 preference (nvidia/HelpSteer3, config "preference"): graded votes between two responses.

Record: {domain, language, context: [{role, content}, ...] ending with a user turn, response1,
response2, overall_preference: -3..3, individual_preference: [{score: -3..3, reasoning, feedback1,
feedback2}, ...] (may be absent)}. A score below 0 prefers response1 (label a), above 0 response2
(label b), 0 is a tie; its magnitude is the strength (1 slightly, 2 better, 3 much better; a tie has
none). The prompt is the whole context, earlier turns included.

Each individual_preference entry is one annotator's vote, one judgment; a row without entries gives
one judgment from overall_preference, with no annotator. Annotators are anonymous and differ per
row, so a vote's annotator is named by a digest of the row's content and the entry's index: distinct
for every row and entry (a per-annotator statistic never merges two rows' annotators), the same
each time the row is read (ingesting the row again adds nothing), and two annotators of one row who
give the same score stay two votes. category = domain; attributes: language.

Rejected: a score that is not an integer in -3..3 (unknown_label), a context that does not end with
a user turn (missing_field), and the usual missing, null, non-text or empty fields.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.identity import digest, normalized_text, prompt_id, text_id
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

SCORES = range(-3, 4)


def is_helpsteer3(record: Mapping[str, Any]) -> bool:
    """A context, two numbered responses and an overall preference."""
    return {"context", "response1", "response2", "overall_preference"} <= record.keys()


def score(value: Any, name: str) -> int:
    """A preference score: an integer in -3..3 (a whole float is accepted, booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in SCORES:
        raise RowRejected(Reason.UNKNOWN_LABEL, f"{name} is {value!r}, not an integer in -3..3")
    return int(value)


def label_and_strength(value: int) -> tuple[Label, float | None]:
    """A score as a label (negative: response1, positive: response2, 0: tie) and its magnitude."""
    if value == 0:
        return "tie", None
    return ("a" if value < 0 else "b"), float(abs(value))


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment per individual vote, or one from the overall preference when there are none."""
    prompt = fields.messages(fields.present(record, "context"), "context")
    if prompt[-1].role != "user":
        raise RowRejected(Reason.MISSING_FIELD, "'context' does not end with a user turn")
    response1, response2 = fields.text(record, "response1"), fields.text(record, "response2")
    overall = score(fields.present(record, "overall_preference"), "overall_preference")
    votes = _votes(record.get("individual_preference"))
    language = fields.optional_str(record, "language")

    def judgment(value: int, annotator: str | None) -> Judgment:
        label, strength = label_and_strength(value)
        return Judgment(
            prompt=prompt,
            response_a=response1,
            response_b=response2,
            label=label,
            strength=strength,
            annotator=annotator,
            category=fields.optional_str(record, "domain"),
            attributes={"language": language} if language else {},
        )

    if not votes:
        return [judgment(overall, None)]
    row = _row_digest(prompt, response1, response2, overall, votes)
    return [judgment(value, f"helpsteer3-{row}-{index}") for index, (value, _) in enumerate(votes)]


def _votes(value: Any) -> list[tuple[int, tuple[str, ...]]]:
    """Each individual vote's score and texts (reasoning, feedback1, feedback2; "" when absent)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowRejected(Reason.NOT_AN_OBJECT, "'individual_preference' is not a list of votes")
    votes = []
    for index, entry in enumerate(value):
        name = f"individual_preference[{index}]"
        if not isinstance(entry, Mapping):
            raise RowRejected(Reason.NOT_AN_OBJECT, f"{name} is not a vote object")
        texts = tuple(fields.optional_str(entry, k) or "" for k in ("reasoning", "feedback1", "feedback2"))
        votes.append((score(fields.present(entry, "score"), f"{name}.score"), texts))
    return votes


def _row_digest(
    prompt: tuple[Message, ...],
    response1: str,
    response2: str,
    overall: int,
    votes: list[tuple[int, tuple[str, ...]]],
) -> str:
    """16 hex digits naming a row by its content (normalized, so any export of the row gives the same)."""
    parts = [prompt_id(prompt), text_id(response1), text_id(response2), str(overall)]
    for value, texts in votes:
        parts += [str(value), *(normalized_text(t) for t in texts)]
    return digest("\x1f".join(parts))[:16]
