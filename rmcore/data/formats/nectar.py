"""Nectar (berkeley-nest/Nectar): seven answers to one prompt, ranked by GPT-4.

Record: {prompt: "\\n\\nHuman: ...\\n\\nAssistant:", answers: [{answer, model, rank}, ...], turns,
num_responses, source: [origin dataset names], good_natured}. The prompt is an HH-style transcript
(possibly multi-turn) ending with an empty Assistant turn: its turns are read as HH's are
(formats.hh.turns) and the empty Assistant turn is dropped. Each row is one ranking of its answers in
the order given, rank 1 best (stored as rank - 1, 0 best).

GPT-4 made the labels, not people: category is MODEL_LABELLED (a team can leave such data out);
attributes: labeller "gpt-4", model_0.. (each answer's model), source (the origin names joined by
", ") and good_natured ("true" / "false").

Rejected: fewer than two answers, or ranks that are not 1..K each once (invalid_ranks); a prompt
that is not a transcript (malformed), has an empty turn (empty_text) or ends with an Assistant reply
rather than a Human turn (missing_field); two answers with the same text (identical_responses, as
for every format).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.hh import turns as transcript_turns
from rmcore.data.records import MODEL_LABELLED, Message, Parsed, Ranking, Reason, RowRejected

LABELLER = "gpt-4"


def is_nectar(record: Mapping[str, Any]) -> bool:
    """A prompt and a list of ranked answers."""
    return {"prompt", "answers"} <= record.keys()


def objects(value: Any, name: str) -> list[Mapping[str, Any]]:
    """A list of at least two objects (the responses of a ranking)."""
    if not isinstance(value, list) or len(value) < 2:
        raise RowRejected(Reason.INVALID_RANKS, f"'{name}' must be a list of at least two responses")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RowRejected(Reason.NOT_AN_OBJECT, f"{name}[{index}] is not an object")
    return value


def model_attributes(items: Sequence[Mapping[str, Any]], source: str | None) -> dict[str, str]:
    """A model-labelled ranking's attributes: the labeller, each response's model, the origin."""
    attributes = {"labeller": LABELLER}
    for index, item in enumerate(items):
        model = fields.optional_str(item, "model")
        if model:
            attributes[f"model_{index}"] = model
    if source:
        attributes["source"] = source
    return attributes


def prompt(text: str) -> tuple[Message, ...]:
    """The prompt's turns, without the empty Assistant turn it ends with."""
    turns = transcript_turns("\n\n" + text.lstrip(), "prompt")
    if turns and turns[-1].role == "assistant" and not turns[-1].content:
        turns = turns[:-1]
    if not turns:
        raise RowRejected(Reason.MALFORMED, "'prompt' has no Human turn")
    if any(not m.content for m in turns):
        raise RowRejected(Reason.EMPTY_TEXT, "a turn of 'prompt' is empty")
    if turns[-1].role != "user":
        raise RowRejected(Reason.MISSING_FIELD, "'prompt' ends with an Assistant reply, not a Human turn")
    return turns


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One ranking of the row's answers."""
    turns = prompt(fields.text(record, "prompt"))
    answers = objects(fields.present(record, "answers"), "answers")
    codes = [fields.number_code(a.get("rank")) for a in answers]
    ranks = [r for r in codes if r is not None]
    if sorted(ranks) != list(range(1, len(answers) + 1)):
        raise RowRejected(
            Reason.INVALID_RANKS,
            f"answer ranks must be 1..{len(answers)} each once, got {[a.get('rank') for a in answers]!r}",
        )
    attributes = model_attributes(answers, _source(record))
    good_natured = record.get("good_natured")
    if good_natured is not None:
        if not isinstance(good_natured, bool):
            raise RowRejected(Reason.NON_STRING, f"field 'good_natured' is {good_natured!r}, not a boolean")
        attributes["good_natured"] = "true" if good_natured else "false"
    return [
        Ranking(
            prompt=turns,
            responses=tuple(fields.text(a, "answer") for a in answers),
            ranks=tuple(r - 1 for r in ranks),
            category=MODEL_LABELLED,
            attributes=attributes,
        )
    ]


def _source(record: Mapping[str, Any]) -> str | None:
    """The origin dataset names joined by ", " (a list of names, or one name as text)."""
    value = record.get("source")
    if isinstance(value, list):
        for index, name in enumerate(value):
            if not isinstance(name, str):
                raise RowRejected(Reason.NON_STRING, f"source[{index}] is {type(name).__name__}, not text")
        return ", ".join(name.strip() for name in value if name.strip()) or None
    return fields.optional_str(record, "source")
