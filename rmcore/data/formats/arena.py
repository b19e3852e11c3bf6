"""Chatbot Arena battles and MT-Bench human judgments: two conversations and which model won.

Both come from LMSYS in one record shape, read by one parser and registered as two formats:

    {"question_id", "model_a", "model_b", "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)",
     "judge", "conversation_a": [{"role", "content"}, ...], "conversation_b": [...], "turn", ...}

- `arena`: lmsys/chatbot_arena_conversations (the 33k release) and later releases. `question_id`
  is a hex string; extras `anony`, `language`, `tstamp`, `openai_moderation`, `toxic_chat_tag`;
  some releases name the voter `judge_hash` instead of `judge`.
- `mt_bench`: lmsys/mt_bench_human_judgments. `question_id` is an integer (81..160) and there is
  no `language` or `tstamp`: that is how detection tells the two apart. Its conversations hold
  both questions (user, assistant, user, assistant); `turn` (1 or 2) says which one the row
  judges. Its gpt4_pair split names the judge as a list, e.g. ["gpt-4", "pair-v2"].

Mapping. The conversations are cut to their first `turn` user turns and the replies to them (a
turn-1 MT-Bench judgment compares the first exchange only; in the Arena `turn` counts the user
turns, so the cut leaves the conversation whole), then split into the prompt they share and each
side's leading turns and final reply (rmcore.data.formats.conversations.split_shared). `winner` model_a /
model_b is label a / b; both ties are label tie, the raw winner kept in attributes. `judge` (a
list joined with "/") or `judge_hash` is the annotator; a judge whose name starts with "gpt" is a
model, so its judgment gets category model-labelled. Attributes: model_a, model_b, winner, turn,
and where present question_id, language, anony, openai_flagged (OpenAI moderation's flag) and
toxic_chat_flagged (true when any ToxicChat tagger flagged the conversation).

Conversations may come as JSON text of such a list (CSV exports). Rejected: an unknown winner
(unknown_label); a turn that is not a positive integer, or JSON text that is not a message list
(malformed); a turn the conversations do not reach (missing_field); a malformed message anywhere
in either conversation; conversations whose user turns differ (prompt_mismatch).
"""

from collections.abc import Mapping
from typing import Any

import orjson

import rmcore.data.formats.fields as fields
from rmcore.data.formats.conversations import split_shared
from rmcore.data.records import MODEL_LABELLED, Label, Message, Parsed, Reason, RowRejected

WINNERS: dict[str, Label] = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "tie"}
_BATTLE = frozenset({"model_a", "model_b", "winner", "conversation_a", "conversation_b"})


def is_mt_bench(record: Mapping[str, Any]) -> bool:
    """An LMSYS battle with an integer question id and no Arena metadata (language, tstamp)."""
    return (
        record.keys() >= _BATTLE
        and fields.number_code(record.get("question_id")) is not None
        and "language" not in record
        and "tstamp" not in record
    )


def is_arena(record: Mapping[str, Any]) -> bool:
    """An LMSYS battle (two conversations, two models, a winner) that is not MT-Bench."""
    return record.keys() >= _BATTLE and not is_mt_bench(record)


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment of the two conversations up to the judged turn."""
    label = _winner(record)
    turn = _turn(record)
    pair = split_shared(
        first_turns(_conversation(record, "conversation_a"), turn, "conversation_a"),
        first_turns(_conversation(record, "conversation_b"), turn, "conversation_b"),
    )
    annotator = _judge(record)
    model_labelled = annotator is not None and annotator.lower().startswith("gpt")
    attributes = {
        "model_a": fields.text(record, "model_a"),
        "model_b": fields.text(record, "model_b"),
        "winner": str(record["winner"]),
        "turn": str(turn),
        **_metadata(record),
    }
    category = MODEL_LABELLED if model_labelled else None
    return [pair.judgment(label, annotator=annotator, category=category, attributes=attributes)]


def json_value(record: Mapping[str, Any], name: str) -> Any:
    """A field's value, decoded from JSON when it arrives as text (a CSV cell)."""
    value = fields.present(record, name)
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise RowRejected(Reason.MALFORMED, f"field '{name}' is not valid JSON: {error}") from None


def first_turns(conversation: tuple[Message, ...], turn: int, name: str) -> tuple[Message, ...]:
    """The conversation up to its `turn`-th user turn and the replies to it."""
    users = [i for i, message in enumerate(conversation) if message.role == "user"]
    if len(users) < turn:
        raise RowRejected(
            Reason.MISSING_FIELD,
            f"'{name}' has {len(users)} user turn(s); the judgment is of turn {turn}",
        )
    return conversation[: users[turn]] if turn < len(users) else conversation


def _conversation(record: Mapping[str, Any], name: str) -> tuple[Message, ...]:
    value = json_value(record, name)
    if not isinstance(value, list):
        raise RowRejected(Reason.MALFORMED, f"field '{name}' is not a list of messages")
    return fields.messages(value, name)


def _winner(record: Mapping[str, Any]) -> Label:
    value = fields.present(record, "winner")
    label = WINNERS.get(value) if isinstance(value, str) else None
    if label is None:
        raise RowRejected(
            Reason.UNKNOWN_LABEL, f"field 'winner' is {value!r}, not one of {', '.join(WINNERS)}"
        )
    return label


def _turn(record: Mapping[str, Any]) -> int:
    value = fields.present(record, "turn")
    turn = fields.number_code(value)
    if turn is None or turn < 1:
        raise RowRejected(Reason.MALFORMED, f"field 'turn' is {value!r}, not a positive integer")
    return turn


def _judge(record: Mapping[str, Any]) -> str | None:
    """The judge's name (a list of parts joined with "/"), or the Arena's `judge_hash`."""
    value = record.get("judge")
    if isinstance(value, list | tuple):
        return "/".join(fields.nonempty(part, f"judge[{i}]") for i, part in enumerate(value)) or None
    return fields.optional_str(record, "judge") or fields.optional_str(record, "judge_hash")


def _metadata(record: Mapping[str, Any]) -> dict[str, str]:
    """The optional extras as text: question id, language, anony and the safety flags."""
    extras: dict[str, str] = {}
    for name in ("question_id", "language"):
        value = fields.optional_str(record, name)
        if value is not None:
            extras[name] = value
    if isinstance(record.get("anony"), bool):
        extras["anony"] = _flag(record["anony"])
    moderation = record.get("openai_moderation")
    if isinstance(moderation, Mapping) and isinstance(moderation.get("flagged"), bool):
        extras["openai_flagged"] = _flag(moderation["flagged"])
    tags = record.get("toxic_chat_tag")
    flags = (
        [t.get("flagged") for t in tags.values() if isinstance(t, Mapping)]
        if isinstance(tags, Mapping)
        else []
    )
    if flags and all(isinstance(flag, bool) for flag in flags):
        extras["toxic_chat_flagged"] = _flag(any(flags))
    return extras


def _flag(value: bool) -> str:
    return "true" if value else "false"
