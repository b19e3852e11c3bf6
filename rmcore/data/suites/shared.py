"""The fields every suite's rows share: an id, a prompt, completions. Each getter returns a clean value
or raises RowRejected with the reason; the suite's reader turns that into the file's refusal.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Message, Reason, RowRejected


def suite_id(record: Mapping[str, Any]) -> str:
    """The row's `id` as text: RewardBench's are integers, RewardBench 2's strings."""
    value = fields.present(record, "id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowRejected(Reason.NON_STRING, f"field 'id' is {type(value).__name__}, not text or an integer")
    return fields.nonempty(str(value), "id").strip()


def is_texts(value: Any) -> bool:
    """True for a list of strings (a suite's completions), an empty list included."""
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def completions(record: Mapping[str, Any], name: str, count: int | None = None) -> tuple[str, ...]:
    """A list of non-empty completions: exactly `count` of them, or at least one when `count` is None."""
    value = fields.present(record, name)
    if not isinstance(value, list | tuple):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is {type(value).__name__}, not a list of texts")
    if count is not None and len(value) != count:
        raise RowRejected(Reason.MALFORMED, f"field '{name}' holds {len(value)} completions, not {count}")
    if not value:
        raise RowRejected(Reason.EMPTY_TEXT, f"field '{name}' is an empty list")
    return tuple(fields.nonempty(item, f"{name}[{i}]") for i, item in enumerate(value))


def prompt(record: Mapping[str, Any]) -> tuple[Message, ...]:
    """The `prompt`: a string is one user message; a list is the conversation before the completions.

    A list of {role, content} messages keeps its roles (aliases such as `human` mapped); a list of
    strings, as the prior sets were first published, alternates user, assistant, user, ... as
    RewardBench's `prepare_dialogue` reads it (rewardbench/utils.py). Either way the last message is
    the user's, non-empty, as RewardBench asserts. Earlier turns may be empty: the source keeps them.
    """
    value = fields.present(record, "prompt")
    if isinstance(value, str):
        return (Message("user", fields.nonempty(value, "prompt")),)
    if not isinstance(value, list | tuple) or not value:
        raise RowRejected(Reason.NON_STRING, "field 'prompt' is not text or a non-empty message list")
    messages = tuple(_message(item, i) for i, item in enumerate(value))
    if messages[-1].role != "user":
        raise RowRejected(Reason.MALFORMED, "field 'prompt' does not end with a user message")
    fields.nonempty(messages[-1].content, f"prompt[{len(messages) - 1}]")
    return messages


def _message(item: Any, index: int) -> Message:
    if isinstance(item, str):
        return Message("user" if index % 2 == 0 else "assistant", item)
    if not isinstance(item, Mapping):
        raise RowRejected(Reason.NON_STRING, f"prompt[{index}] is {type(item).__name__}, not a message")
    content = fields.present(item, "content")
    if not isinstance(content, str):
        raise RowRejected(Reason.NON_STRING, f"prompt[{index}] content is {type(content).__name__}, not text")
    return Message(fields.role(fields.present(item, "role")), content)


def subset(record: Mapping[str, Any], name: str = "subset") -> str:
    """A row's grouping (subset, section or domain) as given."""
    return fields.nonempty(fields.present(record, name), name).strip()
