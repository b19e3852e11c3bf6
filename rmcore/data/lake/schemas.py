"""Arrow schemas of the lake's tables. Bump SCHEMA_VERSION on any incompatible change.

comparisons  one row per accepted human judgment (texts as they arrived; ids from normalized text)
rejects      one row per quarantined raw row, with the reason and the raw text
rankings     one row per accepted ranking of K >= 2 responses (its pairs are comparisons too)
files        one row per ingested file: its counts, and the tables' versions once it was committed
pairs        one row per unique (prompt, chosen, rejected) after vote aggregation, with its split

A response is its final reply (`response_a`, `chosen`) and, in a multi-turn comparison, the turns
between the shared prompt and that reply (`response_a_turns`, `chosen_turns`; empty otherwise).
`attributes` keeps a source's own fields (the responses' models, safety flags) as text.

Version 2 added the turns and attributes; version 3 made the tables Delta tables and added `files`.
"""

from datetime import datetime
from typing import NamedTuple

import pyarrow as pa

SCHEMA_VERSION = 3

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
TIMESTAMP = pa.timestamp("us", tz="UTC")
ATTRIBUTES = pa.map_(pa.string(), pa.string())

COMPARISONS = pa.schema(
    [
        ("comparison_id", pa.string()),
        ("pair_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", MESSAGES),
        ("response_a", pa.string()),
        ("response_b", pa.string()),
        ("response_a_id", pa.string()),
        ("response_b_id", pa.string()),
        ("response_a_turns", MESSAGES),
        ("response_b_turns", MESSAGES),
        ("label", pa.string()),
        ("strength", pa.float64()),
        ("annotator", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("attributes", ATTRIBUTES),
        ("ranking_id", pa.string()),
        ("raw_file", pa.string()),
        ("raw_row", pa.int64()),
        ("ingested_at", TIMESTAMP),
    ]
)

RANKINGS = pa.schema(
    [
        ("ranking_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", MESSAGES),
        ("responses", pa.list_(pa.string())),
        ("response_ids", pa.list_(pa.string())),
        ("ranks", pa.list_(pa.int32())),
        ("annotator", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("attributes", ATTRIBUTES),
        ("raw_file", pa.string()),
        ("raw_row", pa.int64()),
        ("ingested_at", TIMESTAMP),
    ]
)

REJECTS = pa.schema(
    [
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("format", pa.string()),
        ("raw_file", pa.string()),
        ("raw_row", pa.int64()),
        ("raw_text", pa.string()),
        ("ingested_at", TIMESTAMP),
    ]
)

PAIRS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", MESSAGES),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("chosen_turns", MESSAGES),
        ("rejected_turns", MESSAGES),
        ("p_chosen", pa.float64()),
        ("p_votes", pa.float64()),
        ("n_votes", pa.int64()),
        ("ties", pa.int64()),
        ("margin", pa.float64()),
        ("conflict", pa.bool_()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("split", pa.string()),
    ]
)

FILES = pa.schema(
    [
        ("content_hash", pa.string()),
        ("path", pa.string()),
        ("format", pa.string()),
        ("source", pa.string()),
        ("rows_read", pa.int64()),
        ("accepted", pa.int64()),
        ("rejected", pa.map_(pa.string(), pa.int64())),
        ("new_comparisons", pa.int64()),
        ("duplicates", pa.int64()),
        ("new_rankings", pa.int64()),
        ("ingested_at", TIMESTAMP),
        ("comparisons_version", pa.int64()),
        ("rankings_version", pa.int64()),
        ("rejects_version", pa.int64()),
    ]
)
"""One row per ingested file: what it contributed, and the data tables' versions once it was committed."""

Messages = list[dict[str, str]]


class ComparisonRow(NamedTuple):
    """A row of COMPARISONS, built by column name; its fields are the schema's, in its order."""

    comparison_id: str
    pair_id: str
    prompt_id: str
    prompt: Messages
    response_a: str
    response_b: str
    response_a_id: str
    response_b_id: str
    response_a_turns: Messages
    response_b_turns: Messages
    label: str
    strength: float | None
    annotator: str | None
    source: str
    category: str | None
    attributes: dict[str, str]
    ranking_id: str | None
    raw_file: str
    raw_row: int
    ingested_at: datetime


class RankingRow(NamedTuple):
    """A row of RANKINGS, built by column name; its fields are the schema's, in its order."""

    ranking_id: str
    prompt_id: str
    prompt: Messages
    responses: list[str]
    response_ids: list[str]
    ranks: list[int]
    annotator: str | None
    source: str
    category: str | None
    attributes: dict[str, str]
    raw_file: str
    raw_row: int
    ingested_at: datetime


class RejectRow(NamedTuple):
    """A row of REJECTS, built by column name; its fields are the schema's, in its order."""

    reason: str
    detail: str
    format: str
    raw_file: str
    raw_row: int
    raw_text: str
    ingested_at: datetime


ROWS: dict[str, tuple[type[tuple[object, ...]], pa.Schema]] = {
    "comparisons": (ComparisonRow, COMPARISONS),
    "rankings": (RankingRow, RANKINGS),
    "rejects": (RejectRow, REJECTS),
}
"""The staged tables, each with its row type and schema (a test holds their columns equal)."""

LINEAGE = ("raw_file", "raw_row", "ingested_at")
"""Where and when a lake row came from: kept in the lake, left out of the files training reads."""

SPLIT_RANKINGS = pa.schema([f for f in RANKINGS if f.name not in LINEAGE]).append(
    pa.field("split", pa.string())
)
"""A split's ranking file: the lake's rankings without their lineage, so the file's bytes (and the
training cache key hashed from them) depend on the data only, not on where or when it was ingested."""

LAKE: dict[str, pa.Schema] = {
    "comparisons": COMPARISONS,
    "rankings": RANKINGS,
    "rejects": REJECTS,
    "files": FILES,
    "pairs": PAIRS,
    "pair_rankings": SPLIT_RANKINGS,
}
"""Every table of the lake by name."""
