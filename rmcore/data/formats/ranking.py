"""Generic rankings: {"prompt", "responses": [...], "ranks": [...]}, rank 0 best, equal ranks tie."""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Parsed, Ranking, Reason, RowRejected


def is_ranking(record: Mapping[str, Any]) -> bool:
    """A record holding a list of responses and their ranks."""
    return {"prompt", "responses", "ranks"} <= record.keys()


def ranks(value: Any, k: int) -> tuple[int, ...]:
    """K integer ranks (booleans and fractions refused)."""
    if not isinstance(value, list) or len(value) != k:
        raise RowRejected(Reason.INVALID_RANKS, f"ranks must be a list of {k} integers")
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in value):
        raise RowRejected(Reason.INVALID_RANKS, f"ranks must be integers, got {value!r}")
    return tuple(value)


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One ranking of the record's responses."""
    responses = fields.present(record, "responses")
    if not isinstance(responses, list) or len(responses) < 2:
        raise RowRejected(Reason.INVALID_RANKS, "responses must be a list of at least two texts")
    texts = tuple(fields.nonempty(r, f"responses[{i}]") for i, r in enumerate(responses))
    return [
        Ranking(
            prompt=fields.messages(fields.present(record, "prompt"), "prompt"),
            responses=texts,
            ranks=ranks(fields.present(record, "ranks"), len(texts)),
            annotator=fields.optional_str(record, "annotator"),
            category=fields.optional_str(record, "category"),
            source=fields.optional_str(record, "source"),
        )
    ]
