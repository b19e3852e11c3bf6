"""Typed field access for readers: each getter returns a clean value or raises RowRejected."""

from collections.abc import Mapping
from typing import Any

from rmcore.data.records import ROLES, Label, Message, Reason, RowRejected

ROLE_ALIASES = {"human": "user", "prompter": "user", "gpt": "assistant", "bot": "assistant"}
LABELS: dict[str, Label] = {"a": "a", "b": "b", "tie": "tie"}


def present(record: Mapping[str, Any], name: str) -> Any:
    """The value of `name`, which must exist and not be null."""
    if name not in record:
        raise RowRejected(Reason.MISSING_FIELD, f"field '{name}' is missing")
    value = record[name]
    if value is None:
        raise RowRejected(Reason.NULL_FIELD, f"field '{name}' is null")
    return value


def text(record: Mapping[str, Any], name: str) -> str:
    """A required string field with some non-whitespace content."""
    return nonempty(present(record, name), name)


def mapping(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A required nested object (a JSON object, a Parquet struct)."""
    value = present(record, name)
    if not isinstance(value, Mapping):
        raise RowRejected(Reason.NOT_AN_OBJECT, f"field '{name}' is {type(value).__name__}, not an object")
    return value


def nonempty(value: Any, name: str) -> str:
    """`value` checked to be a string with some non-whitespace content."""
    if not isinstance(value, str):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is {type(value).__name__}, not text")
    if not value.strip():
        raise RowRejected(Reason.EMPTY_TEXT, f"field '{name}' is empty")
    return value


def optional_str(record: Mapping[str, Any], name: str) -> str | None:
    """An optional scalar field as text (annotator ids may arrive as numbers); None if absent."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip()
    raise RowRejected(Reason.NON_STRING, f"field '{name}' is {type(value).__name__}, not text")


def optional_number(record: Mapping[str, Any], name: str) -> float | None:
    """An optional numeric field (a margin or strength); None if absent or blank."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is a boolean, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is not a number: {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is not finite: {value!r}")
    return number


def number(record: Mapping[str, Any], name: str) -> float:
    """A required finite number (a score)."""
    present(record, name)
    value = optional_number(record, name)
    if value is None:
        raise RowRejected(Reason.EMPTY_TEXT, f"field '{name}' is blank, not a number")
    return value


def number_code(value: Any) -> int | None:
    """A small integer code (a vote or label) from an int, a whole float or a digit string.

    None for anything else (booleans included), so lookups can refuse it by name.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) else None


def label(record: Mapping[str, Any], name: str = "label") -> Label:
    """A pairwise label: a, b or tie (case and surrounding spaces ignored)."""
    value = present(record, name)
    parsed = LABELS.get(str(value).strip().lower()) if isinstance(value, str) else None
    if parsed is None:
        raise RowRejected(Reason.UNKNOWN_LABEL, f"field '{name}' is {value!r}, not a, b or tie")
    return parsed


def coded_label(record: Mapping[str, Any], name: str, codes: Mapping[int, Label]) -> Label:
    """A label given as a small integer code (e.g. 0 = first response better), by `codes`."""
    value = present(record, name)
    code = number_code(value)
    if code is None or code not in codes:
        accepted = " or ".join(str(c) for c in codes)
        raise RowRejected(Reason.UNKNOWN_LABEL, f"field '{name}' is {value!r}, not {accepted}")
    return codes[code]


def attributes(values: Mapping[str, str | None]) -> dict[str, str]:
    """A judgment's attributes: the named values a source gave (None ones left out)."""
    return {name: value for name, value in values.items() if value is not None}


def role(value: Any) -> str:
    """A chat role, with common aliases (human, prompter, gpt, bot) mapped to the standard ones."""
    if not isinstance(value, str):
        raise RowRejected(Reason.NON_STRING, f"message role is {type(value).__name__}, not text")
    name = value.strip().lower()
    name = ROLE_ALIASES.get(name, name)
    if name not in ROLES:
        raise RowRejected(Reason.UNKNOWN_ROLE, f"unknown message role {value!r}")
    return name


def messages(value: Any, name: str) -> tuple[Message, ...]:
    """A list of {role, content} messages; a plain string is one user message."""
    if isinstance(value, str):
        return (Message("user", nonempty(value, name)),)
    if not isinstance(value, list) or not value:
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is not text or a message list")
    parsed = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RowRejected(Reason.NON_STRING, f"{name}[{index}] is not a message object")
        content = present(item, "content")
        parsed.append(Message(role(present(item, "role")), nonempty(content, f"{name}[{index}]")))
    return tuple(parsed)


def split_last_turn(conversation: tuple[Message, ...], name: str) -> tuple[tuple[Message, ...], str]:
    """A conversation split into (context, final assistant reply)."""
    *context, last = conversation
    if last.role != "assistant":
        raise RowRejected(Reason.MISSING_FIELD, f"'{name}' does not end with an assistant reply")
    return tuple(context), last.content
