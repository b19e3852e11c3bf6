"""Generic pairwise records: TRL's standard format and the labelled a/b/tie form.

TRL explicit:  {"prompt", "chosen", "rejected"}, each text or a message list.
TRL implicit:  {"chosen", "rejected"} as full conversations; the prompt is their shared context.
Labelled:      {"prompt", "response_a", "response_b", "label": a|b|tie}.
All take optional `annotator`, `source`, `category` and `margin` (a graded strength).
"""

from collections.abc import Mapping
from typing import Any

from rmcore.data import fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected


def is_trl(record: Mapping[str, Any]) -> bool:
    """TRL's format: chosen and rejected, with or without an explicit prompt."""
    chosen = record.get("chosen")
    transcript = isinstance(chosen, str) and "\n\nAssistant:" in chosen
    return "rejected" in record and ("prompt" in record or not transcript)


def is_labelled(record: Mapping[str, Any]) -> bool:
    """The labelled form: two responses and a label."""
    return {"prompt", "response_a", "response_b", "label"} <= record.keys()


def judgment(
    record: Mapping[str, Any],
    prompt: tuple[Message, ...],
    response_a: str,
    response_b: str,
    label: Label,
) -> Judgment:
    """A judgment carrying the record's optional annotator, source, category and margin."""
    return Judgment(
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        label=label,
        strength=fields.optional_number(record, "margin"),
        annotator=fields.optional_str(record, "annotator"),
        category=fields.optional_str(record, "category"),
        source=fields.optional_str(record, "source"),
    )


def parse_trl(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: chosen over rejected."""
    if "prompt" in record:
        prompt = fields.messages(fields.present(record, "prompt"), "prompt")
        chosen_context, chosen = _response(record, "chosen")
        rejected_context, rejected = _response(record, "rejected")
        if chosen_context != rejected_context:
            raise RowRejected(Reason.PROMPT_MISMATCH, "chosen and rejected continue different turns")
        prompt = prompt + chosen_context
    else:
        prompt, chosen, rejected = shared_context(
            fields.messages(fields.present(record, "chosen"), "chosen"),
            fields.messages(fields.present(record, "rejected"), "rejected"),
        )
    return [judgment(record, prompt, chosen, rejected, "a")]


def parse_labelled(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment with an explicit a / b / tie label."""
    return [
        judgment(
            record,
            fields.messages(fields.present(record, "prompt"), "prompt"),
            fields.text(record, "response_a"),
            fields.text(record, "response_b"),
            fields.label(record),
        )
    ]


def shared_context(
    chosen: tuple[Message, ...], rejected: tuple[Message, ...]
) -> tuple[tuple[Message, ...], str, str]:
    """(prompt, chosen reply, rejected reply) from two full conversations with one context."""
    chosen_context, chosen_reply = fields.split_last_turn(chosen, "chosen")
    rejected_context, rejected_reply = fields.split_last_turn(rejected, "rejected")
    if chosen_context != rejected_context:
        raise RowRejected(Reason.PROMPT_MISMATCH, "chosen and rejected have different prompts")
    if not chosen_context:
        raise RowRejected(Reason.MISSING_FIELD, "conversation has no prompt before the reply")
    return chosen_context, chosen_reply, rejected_reply


def _response(record: Mapping[str, Any], name: str) -> tuple[tuple[Message, ...], str]:
    """A response given as text, or as messages ending in the assistant reply."""
    value = fields.present(record, name)
    if isinstance(value, str):
        return (), fields.nonempty(value, name)
    return fields.split_last_turn(fields.messages(value, name), name)
