"""Chatbot Arena's CSV release: Kaggle's "LMSYS - Chatbot Arena Human Preference Predictions"
(lmarena-ai/arena-human-preference-55k).

    id, model_a, model_b, prompt, response_a, response_b, winner_model_a, winner_model_b, winner_tie

`prompt`, `response_a` and `response_b` are JSON lists of turns, e.g. prompt '["What is 2+2?",
"And 3+3?"]' and response_a '["4", "6"]': turn i is the user's prompt i and the model's reply to
it. Each side's conversation (user p1, assistant r1, user p2, assistant r2, ...) is split into the
prompt the two share and each side's leading turns and final reply
(rmcore.data.formats.conversations.split_shared). The winner columns are one-hot, 0 / 1 (as numbers, or
as text the way CSV gives them): winner_model_a is label a, winner_model_b b, winner_tie tie.
Attributes: id, model_a and model_b, where present.

Rejected: winner columns other than 0 / 1, or not exactly one of them 1 (unknown_label); a JSON
null turn, which the real data has (null_field, naming the field and turn); lists of different
lengths, an empty list or text that is not a JSON list (malformed); an empty turn (empty_text) or
one that is not text (non_string).
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.arena import json_value
from rmcore.data.formats.conversations import split_shared
from rmcore.data.records import Label, Message, Parsed, Reason, RowRejected

WINNER_COLUMNS: dict[str, Label] = {"winner_model_a": "a", "winner_model_b": "b", "winner_tie": "tie"}
TEXT_COLUMNS = ("prompt", "response_a", "response_b")


def is_arena_csv(record: Mapping[str, Any]) -> bool:
    """A prompt, two responses and the three one-hot winner columns."""
    return {*TEXT_COLUMNS, *WINNER_COLUMNS} <= record.keys()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment of the two conversations."""
    label = _winner(record)
    prompts, replies_a, replies_b = (_turns(record, name) for name in TEXT_COLUMNS)
    if not len(prompts) == len(replies_a) == len(replies_b):
        raise RowRejected(
            Reason.MALFORMED,
            f"'prompt' has {len(prompts)} turns, "
            f"'response_a' {len(replies_a)}, 'response_b' {len(replies_b)}",
        )
    pair = split_shared(_conversation(prompts, replies_a), _conversation(prompts, replies_b))
    attributes = {
        name: value for name in ("id", "model_a", "model_b") if (value := fields.optional_str(record, name))
    }
    return [pair.judgment(label, attributes=attributes)]


def _winner(record: Mapping[str, Any]) -> Label:
    """The label of the one winner column that is 1."""
    winners = []
    for name, label in WINNER_COLUMNS.items():
        value = fields.present(record, name)
        code = fields.number_code(value)
        if code not in (0, 1):
            raise RowRejected(Reason.UNKNOWN_LABEL, f"field '{name}' is {value!r}, not 0 or 1")
        if code == 1:
            winners.append(label)
    if len(winners) != 1:
        raise RowRejected(
            Reason.UNKNOWN_LABEL,
            f"{len(winners)} of {', '.join(WINNER_COLUMNS)} are 1; exactly one must be",
        )
    return winners[0]


def _turns(record: Mapping[str, Any], name: str) -> list[str]:
    """The texts of a JSON list of turns; a null or empty turn is named by its 1-based number."""
    value = json_value(record, name)
    if not isinstance(value, list) or not value:
        raise RowRejected(Reason.MALFORMED, f"field '{name}' is not a JSON list of turns")
    for number, turn in enumerate(value, start=1):
        where = f"turn {number} of '{name}'"
        if turn is None:
            raise RowRejected(Reason.NULL_FIELD, f"{where} is null")
        if not isinstance(turn, str):
            raise RowRejected(Reason.NON_STRING, f"{where} is {type(turn).__name__}, not text")
        if not turn.strip():
            raise RowRejected(Reason.EMPTY_TEXT, f"{where} is empty")
    return value


def _conversation(prompts: list[str], replies: list[str]) -> tuple[Message, ...]:
    return tuple(
        message
        for prompt, reply in zip(prompts, replies, strict=True)
        for message in (Message("user", prompt), Message("assistant", reply))
    )
