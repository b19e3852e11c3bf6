"""OpenAssistant message trees: one tree per record; sibling replies ranked by `rank` (0 best).

Each message with two or more ranked replies gives one ranking whose prompt is the
conversation from the root down to that message. Deleted or unranked replies are left out.
Synthetic trees (`synthetic: true` at the root) are quarantined unless asked for.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.formats.ranking import ranks
from rmcore.data.records import Message, Parsed, Ranking, Reason, RowRejected


def is_oasst(record: Mapping[str, Any]) -> bool:
    """A message tree: a root prompt object holding replies."""
    root = record.get("prompt")
    return isinstance(root, Mapping) and "replies" in root


def parse(record: Mapping[str, Any], include_synthetic: bool = False) -> list[Parsed]:
    """Every ranked group of sibling replies in the tree."""
    root = fields.present(record, "prompt")
    if not isinstance(root, Mapping):
        raise RowRejected(Reason.NOT_AN_OBJECT, "field 'prompt' is not a message object")
    if root.get("synthetic") and not include_synthetic:
        raise RowRejected(Reason.SYNTHETIC, "synthetic tree (pass include_synthetic to ingest it)")
    rankings: list[Parsed] = list(_rankings(root, ()))
    if not rankings:
        raise RowRejected(Reason.NO_JUDGMENT, "tree has no message with two ranked replies")
    return rankings


def _message(node: Mapping[str, Any]) -> Message:
    return Message(fields.role(fields.present(node, "role")), fields.text(node, "text"))


def _rankings(node: Mapping[str, Any], path: tuple[Message, ...]) -> Iterator[Ranking]:
    conversation = (*path, _message(node))
    replies = node.get("replies") or []
    if not isinstance(replies, list) or not all(isinstance(r, Mapping) for r in replies):
        raise RowRejected(Reason.NOT_AN_OBJECT, "'replies' is not a list of message objects")
    ranked = [r for r in replies if r.get("rank") is not None and not r.get("deleted")]
    if len(ranked) >= 2:
        yield Ranking(
            prompt=conversation,
            responses=tuple(fields.text(r, "text") for r in ranked),
            ranks=ranks([r["rank"] for r in ranked], len(ranked)),
            category=fields.optional_str(node, "lang"),
        )
    for reply in replies:
        yield from _rankings(reply, conversation)
