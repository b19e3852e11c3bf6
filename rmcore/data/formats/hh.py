"""Anthropic HH-RLHF transcripts: {"chosen", "rejected"}, each "\\n\\nHuman: ...\\n\\nAssistant: ...".

The prompt is the shared conversation up to the last Assistant turn; a record whose two
transcripts differ before that turn is rejected (prompt_mismatch).
"""

import re
from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.conversations import split_shared
from rmcore.data.formats.pairwise import judgment
from rmcore.data.records import Message, Parsed, Reason, RowRejected

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def is_hh(record: Mapping[str, Any]) -> bool:
    """HH transcripts: chosen is text holding an Assistant turn, and there is no prompt."""
    chosen = record.get("chosen")
    return (
        "prompt" not in record
        and "rejected" in record
        and isinstance(chosen, str)
        and "\n\nAssistant:" in chosen
    )


def turns(text: str, name: str) -> tuple[Message, ...]:
    """The messages of one transcript as written, empty turns included."""
    parts = _TURN.split(text)
    if parts[0].strip():
        raise RowRejected(Reason.MALFORMED, f"'{name}' has text before the first Human turn")
    return tuple(
        Message(_ROLES[speaker], content.strip())
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    )


def transcript(text: str, name: str) -> tuple[Message, ...]:
    """The messages of one transcript; the final Assistant turn may not be empty."""
    messages = turns(text, name)
    if not messages or not messages[-1].content:
        raise RowRejected(Reason.EMPTY_TEXT, f"'{name}' ends with an empty Assistant turn")
    return messages


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: the chosen transcript's last reply over the rejected one's."""
    pair = split_shared(
        transcript(fields.text(record, "chosen"), "chosen"),
        transcript(fields.text(record, "rejected"), "rejected"),
    )
    if any(not message.content for message in pair.prompt + pair.turns_a + pair.turns_b):
        raise RowRejected(Reason.EMPTY_TEXT, "a prompt turn is empty")
    return [judgment(record, pair, "a")]
