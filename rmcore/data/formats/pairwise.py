"""Generic pairwise records: TRL's standard format and the labelled a/b/tie form.

TRL explicit:  {"prompt", "chosen", "rejected"}, each text or a message list.
TRL implicit:  {"chosen", "rejected"} as full conversations; the prompt is their shared context.
Labelled:      {"prompt", "response_a", "response_b", "label": a|b|tie}.
All take optional `annotator`, `source`, `category` and `margin` (a graded strength).

Conversations may differ from an earlier assistant turn on (multi-turn chosen / rejected); an empty
prompt with both responses written as transcripts takes the prompt from them (conversations.py).
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.conversations import Continuations, prompt_and_responses, split_shared
from rmcore.data.records import Judgment, Label, Message, Parsed


def is_trl(record: Mapping[str, Any]) -> bool:
    """TRL's format: chosen and rejected, with or without an explicit prompt."""
    chosen = record.get("chosen")
    transcript = isinstance(chosen, str) and "\n\nAssistant:" in chosen
    return "rejected" in record and ("prompt" in record or not transcript)


def is_labelled(record: Mapping[str, Any]) -> bool:
    """The labelled form: two responses and a label."""
    return {"prompt", "response_a", "response_b", "label"} <= record.keys()


def judgment(record: Mapping[str, Any], pair: Continuations, label: Label) -> Judgment:
    """A judgment of two continuations, with the record's optional annotator, source, category and margin."""
    return pair.judgment(
        label,
        strength=fields.optional_number(record, "margin"),
        annotator=fields.optional_str(record, "annotator"),
        category=fields.optional_str(record, "category"),
        source=fields.optional_str(record, "source"),
    )


def parse_trl(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: chosen over rejected."""
    if "prompt" not in record:
        pair = split_shared(_conversation(record, "chosen"), _conversation(record, "rejected"))
    elif all(isinstance(record.get(name), str) for name in ("prompt", "chosen", "rejected")):
        pair = prompt_and_responses(record, "prompt", "chosen", "rejected")
    else:
        prompt = fields.messages(fields.present(record, "prompt"), "prompt")
        pair = split_shared(prompt + _reply(record, "chosen"), prompt + _reply(record, "rejected"))
    return [judgment(record, pair, "a")]


def parse_labelled(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment with an explicit a / b / tie label."""
    pair = prompt_and_responses(record, "prompt", "response_a", "response_b")
    return [judgment(record, pair, fields.label(record))]


def _conversation(record: Mapping[str, Any], name: str) -> tuple[Message, ...]:
    return fields.messages(fields.present(record, name), name)


def _reply(record: Mapping[str, Any], name: str) -> tuple[Message, ...]:
    """A response given as text (one assistant reply) or as the messages that continue the prompt."""
    value = fields.present(record, name)
    if isinstance(value, str):
        return (Message("assistant", fields.nonempty(value, name)),)
    return fields.messages(value, name)
