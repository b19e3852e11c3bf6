"""Judgments as votes on a pair in one orientation: what agreement and aggregation count.

A pair's two responses are ordered by id (the "first" has the smaller response id), so a judgment
shown A-vs-B and one shown B-vs-A are votes on the same question: `first`, `second` or `tie`.
"""

import duckdb
import pyarrow as pa

from rmcore.data.lake import Lake
from rmcore.data.lake.duck import connect

VOTES = ("first", "second", "tie")
COLUMNS = ("source", "pair_id", "annotator", "vote")

VOTE_SQL = (
    "CASE WHEN label = 'tie' THEN 'tie' "
    "WHEN (label = 'a') = (response_a_id <= response_b_id) THEN 'first' ELSE 'second' END"
)
"""A comparison's label as a vote on its pair in the pair's own orientation (SQL over `comparisons`)."""


def annotated_votes(db: duckdb.DuckDBPyConnection) -> pa.Table:
    """Every judgment that names its annotator, as (source, pair_id, annotator, vote), from the
    connection's `comparisons` view; sorted, so that what is computed from it is reproducible."""
    query = (
        f"SELECT source, pair_id, annotator, {VOTE_SQL} AS vote FROM comparisons "
        "WHERE annotator IS NOT NULL ORDER BY source, pair_id, annotator, vote"
    )
    table: pa.Table = db.sql(query).to_arrow_table()
    return table


def lake_votes(lake: Lake) -> pa.Table:
    """`annotated_votes` of every comparison in the lake's latest version (none for an empty lake)."""
    db = connect(lake.work / ".duckdb")
    try:
        with lake.reading():
            lake.view(db, "comparisons", lake.at(lake.snapshot(), "comparisons"), "comparisons")
            return annotated_votes(db)
    finally:
        db.close()


def no_votes() -> pa.Table:
    """An empty votes table (its columns as `annotated_votes` gives them)."""
    return pa.table({name: pa.array([], pa.string()) for name in COLUMNS})
