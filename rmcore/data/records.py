"""What readers produce: parsed judgments, rankings and rejections, before identity and storage."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Label = Literal["a", "b", "tie"]
ROLES = frozenset({"system", "user", "assistant"})
MODEL_LABELLED = "model-labelled"
"""The category of judgments a model made, not people (Nectar, UltraFeedback): a team can leave them out."""


class Reason(StrEnum):
    """Why a raw row was quarantined. Stable codes: reports and tests count by them."""

    MALFORMED = "malformed"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    NULL_FIELD = "null_field"
    NON_STRING = "non_string"
    EMPTY_TEXT = "empty_text"
    IDENTICAL_RESPONSES = "identical_responses"
    UNKNOWN_LABEL = "unknown_label"
    UNKNOWN_ROLE = "unknown_role"
    TEXT_TOO_LONG = "text_too_long"
    PROMPT_MISMATCH = "prompt_mismatch"
    INVALID_RANKS = "invalid_ranks"
    SYNTHETIC = "synthetic_skipped"
    NO_JUDGMENT = "no_judgment"


class RowRejected(Exception):
    """Raised by a reader for a row it cannot accept; the ingester quarantines the row."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message; a plain-text prompt is a single user message."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Judgment:
    """One human judgment: which of two responses to `prompt` is better.

    A response is the final assistant reply (`response_a`), preceded in a multi-turn conversation by
    the turns after the shared prompt that lead to it (`response_a_turns`: assistant, user, ...; empty
    for a single reply). `strength` is a graded preference (e.g. 1 = slightly, 2 = clearly better),
    None if the source does not grade. `source`, when None, is the file's default source.
    `attributes` keeps what a source says beyond that (the responses' models, a tie's kind, safety
    flags), as text.
    """

    prompt: tuple[Message, ...]
    response_a: str
    response_b: str
    label: Label
    strength: float | None = None
    annotator: str | None = None
    category: str | None = None
    source: str | None = None
    response_a_turns: tuple[Message, ...] = ()
    response_b_turns: tuple[Message, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ranking:
    """One human ranking of K >= 2 responses to `prompt`; rank 0 is best, equal ranks tie."""

    prompt: tuple[Message, ...]
    responses: tuple[str, ...]
    ranks: tuple[int, ...]
    annotator: str | None = None
    category: str | None = None
    source: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


Parsed = Judgment | Ranking
