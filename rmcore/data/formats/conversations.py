"""Two conversations as one comparison: the prompt they share and how each continues it.

Multi-turn preference data compares two conversations that share their user turns and differ from
some assistant turn on (Chatbot Arena, MT-Bench, TRL's conversational format). The shared part up
to the first assistant turn that differs is the prompt; the rest of each conversation is its
response: the turns that lead to its final reply (assistant, user, ...), then the reply itself.

    a = [u1, a1, u2, a2]     prompt = [u1]
    b = [u1, b1, u2, b2]     a: turns [a1, u2], reply a2     b: turns [b1, u2], reply b2

Conversations whose user (or system) turns differ are not two answers to one prompt: rejected as
prompt_mismatch. Exports that carry each conversation as one text with role markers ("User: ...",
"Human: ...", "### Assistant ...") are read by `transcript`.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.identity import normalized_text
from rmcore.data.records import Judgment, Label, Message, Reason, RowRejected

_MARKER = re.compile(
    r"^[ \t]*(?:###[ \t]*(human|assistant|user)\b[ \t]*:?|(human|assistant|user)[ \t]*:)",
    re.IGNORECASE | re.MULTILINE,
)
_ROLES = {"human": "user", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True, slots=True)
class Continuations:
    """A shared prompt and two responses to it, each its leading turns and its final reply."""

    prompt: tuple[Message, ...]
    turns_a: tuple[Message, ...]
    reply_a: str
    turns_b: tuple[Message, ...]
    reply_b: str

    def judgment(self, label: Label, **details: Any) -> Judgment:
        """The judgment of a over b with `label` and what the source says beside it (strength,
        annotator, category, source, attributes)."""
        return Judgment(
            prompt=self.prompt,
            response_a=self.reply_a,
            response_b=self.reply_b,
            label=label,
            response_a_turns=self.turns_a,
            response_b_turns=self.turns_b,
            **details,
        )


def split_shared(a: tuple[Message, ...], b: tuple[Message, ...]) -> Continuations:
    """The prompt two conversations share and how each continues it (see the module).

    Both must end with an assistant reply and have the same user and system turns, in the same
    places; the prompt is everything before the first assistant turn that differs.
    """
    for conversation, name in ((a, "a"), (b, "b")):
        if not conversation or conversation[-1].role != "assistant":
            raise RowRejected(
                Reason.MISSING_FIELD, f"conversation {name} does not end with an assistant reply"
            )
    if len(a) != len(b) or any(
        x.role != y.role or (x.role != "assistant" and not _same(x, y)) for x, y in zip(a, b, strict=True)
    ):
        raise RowRejected(Reason.PROMPT_MISMATCH, "the two conversations have different user turns")
    cut = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if not _same(x, y)), len(a) - 1)
    if cut == 0:
        raise RowRejected(Reason.MISSING_FIELD, "the conversations have no prompt before the reply")
    return Continuations(a[:cut], a[cut:-1], a[-1].content, b[cut:-1], b[-1].content)


def transcript(text: str) -> tuple[Message, ...] | None:
    """The messages of a text written as a transcript with role markers, or None if it is not one.

    Markers start a line: `User:`, `Human:`, `Assistant:` in any case, or `### Human` /
    `### Assistant` (colon optional). A transcript starts with a marker and holds a user turn.
    """
    markers = list(_MARKER.finditer(text))
    if not markers or text[: markers[0].start()].strip():
        return None
    ends = [m.start() for m in markers[1:]] + [len(text)]
    messages = tuple(
        Message(_ROLES[(m.group(1) or m.group(2)).lower()], text[m.end() : end].strip())
        for m, end in zip(markers, ends, strict=True)
    )
    return messages if any(m.role == "user" for m in messages) else None


def prompt_and_responses(record: Mapping[str, Any], prompt: str, a: str, b: str) -> Continuations:
    """The prompt field and two response fields of a record, as a prompt and two continuations.

    A prompt field that is empty while both responses are transcripts with role markers means the
    conversations came whole in the responses: their shared prefix becomes the prompt. Otherwise an
    empty prompt is empty_text, and the responses are single replies.
    """
    value = fields.present(record, prompt)
    if isinstance(value, str) and not value.strip():
        texts = fields.text(record, a), fields.text(record, b)
        conversation_a, conversation_b = transcript(texts[0]), transcript(texts[1])
        if conversation_a is None or conversation_b is None:
            raise RowRejected(
                Reason.EMPTY_TEXT,
                f"field '{prompt}' is empty and the responses are not conversations with role markers",
            )
        if any(not m.content for m in conversation_a + conversation_b):
            raise RowRejected(Reason.EMPTY_TEXT, f"a turn of the conversations in '{a}' and '{b}' is empty")
        return split_shared(conversation_a, conversation_b)
    return Continuations(
        fields.messages(value, prompt), (), fields.text(record, a), (), fields.text(record, b)
    )


def _same(x: Message, y: Message) -> bool:
    return x.role == y.role and normalized_text(x.content) == normalized_text(y.content)
