"""Pair datasets: every committed comparison aggregated into one row per unique pair, per split.

For a pair with n votes, each vote for response x counts 1, a tie 1/2:
    p_x = (votes for x + ties / 2) / n
That is the pair's vote share (aggregate `votes`, the default). With aggregate `dawid-skene`
(see rmcore.data.pairs.dawid_skene), a Dawid-Skene model fitted per source over all of its annotated
judgments weighs each vote by its annotator's estimated reliability, and a pair's share becomes
the posterior
    p_first = P(truth = first | votes) + P(truth = tie | votes) / 2.
A pair keeps its vote share when its source has no annotator ids or fewer than two annotators,
when none of its judgments names an annotator, or when its annotated judgments all come from
annotators who never judged a pair together with another annotator (left out of the fit: nothing
measures their reliability; that includes a single vote by an annotator with no other judgments).
Only annotated judgments enter a posterior; a pair judged in several sources takes the posterior of
its source (the first by name).

chosen is the response with p >= 1/2 and p_chosen its share (the soft label); p_chosen = 1/2 is a
conflict, flagged (and kept unless drop_conflicts). p_votes is chosen's plain vote share (equal to
p_chosen under `votes`; below 1/2 where the posterior overturned a strict vote majority). The vote
sums are multiples of 1/2, so vote shares are computed as one exact division. n_votes and ties
count the raw judgments. margin is the mean graded strength toward chosen over graded votes (ties
count 0), or null when no vote is graded.
Texts come from the pair's comparison with the smallest id, so the result does not depend on
ingestion order. Rankings of K > 2 responses are written per split beside the pairs.
"""

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable

from rmcore.config import Aggregate, PairsConfig, SplitConfig
from rmcore.data.lake import Lake, schemas
from rmcore.data.lake.duck import connect
from rmcore.data.lake.lake import DESCRIPTION
from rmcore.data.lake.placing import commit_placed, place
from rmcore.data.pairs.dawid_skene import POSTERIORS, dawid_skene_posteriors
from rmcore.data.pairs.splits import SPLITS, split_sql
from rmcore.data.pairs.votes import annotated_votes

LAKE_VERSION = "rmcore.lake_version"
"""Commit metadata of the pair tables: the lake version their pairs were built from."""

_VOTES = """
CREATE TEMP TABLE aggregated AS
WITH votes AS (
    SELECT
        pair_id, prompt_id, comparison_id, source, category, strength, label,
        CASE WHEN label = 'tie' THEN 0.5
             WHEN (label = 'a') = (response_a_id <= response_b_id) THEN 1.0 ELSE 0.0 END AS vote_first,
        CASE WHEN label = 'tie' THEN 0.0
             WHEN (label = 'a') = (response_a_id <= response_b_id) THEN strength
             ELSE -strength END AS strength_first
    FROM comparisons
)
SELECT
    pair_id,
    any_value(prompt_id) AS prompt_id,
    min(comparison_id) AS representative,
    sum(vote_first) AS votes_first,
    count(*)::BIGINT AS n_votes,
    count_if(label = 'tie')::BIGINT AS ties,
    CASE WHEN count(strength) = 0 THEN NULL
         ELSE avg(CASE WHEN strength IS NULL AND label <> 'tie' THEN NULL ELSE strength_first END)
    END AS margin_first,
    min(source) AS source,
    min(category) AS category
FROM votes GROUP BY pair_id
"""

_LABELLED = """
CREATE TEMP TABLE labelled AS
SELECT
    a.*,
    coalesce(d.p_first >= 0.5, 2 * a.votes_first >= a.n_votes) AS first_chosen,
    coalesce(greatest(d.p_first, 1 - d.p_first),
             greatest(a.votes_first, a.n_votes - a.votes_first) / a.n_votes) AS p_chosen,
    CASE WHEN first_chosen THEN a.votes_first ELSE a.n_votes - a.votes_first END / a.n_votes AS p_votes
FROM aggregated a LEFT JOIN posteriors d USING (pair_id, source)
"""

_A_CHOSEN = "a.first_chosen = (c.response_a_id <= c.response_b_id)"

_PAIRS = f"""
SELECT
    a.pair_id, a.prompt_id, c.prompt,
    CASE WHEN {_A_CHOSEN} THEN c.response_a ELSE c.response_b END AS chosen,
    CASE WHEN {_A_CHOSEN} THEN c.response_b ELSE c.response_a END AS rejected,
    CASE WHEN {_A_CHOSEN} THEN c.response_a_turns ELSE c.response_b_turns END AS chosen_turns,
    CASE WHEN {_A_CHOSEN} THEN c.response_b_turns ELSE c.response_a_turns END AS rejected_turns,
    a.p_chosen, a.p_votes, a.n_votes, a.ties,
    CASE WHEN a.first_chosen THEN a.margin_first ELSE -a.margin_first END AS margin,
    a.p_chosen = 0.5 AS conflict,
    a.source, a.category,
    {{split_of}} AS split
FROM labelled a JOIN comparisons c ON c.comparison_id = a.representative
WHERE {{keep}}
"""


class PairsRecord(TypedDict):
    """`PairsSummary` as it crosses a JSON edge (`rmcore build-pairs --json`, the flows' tasks)."""

    aggregate: Aggregate
    pairs: dict[str, int]
    """Pairs per split."""
    rankings: dict[str, int]
    conflicts: int
    conflicts_dropped: int
    changed_winner: dict[str, int]
    conflicts_resolved: int
    comparisons: int
    lake_version: int
    tables: dict[str, str]


@dataclass
class PairsSummary:
    """What build-pairs wrote."""

    aggregate: Aggregate = "votes"
    pairs: dict[str, int] = field(default_factory=dict)
    rankings: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    conflicts_dropped: int = 0
    changed_winner: dict[str, int] = field(default_factory=dict)
    """Per source, pairs with a strict vote majority whose side the posterior flipped (p_votes < 1/2)."""
    conflicts_resolved: int = 0
    """Pairs with evenly split votes that the posterior decided (p_chosen != 1/2)."""
    comparisons: int = 0
    lake_version: int = 0
    """The version of the lake the pairs were built from (`--as-of` rebuilds them)."""
    tables: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> PairsRecord:
        """JSON-ready summary."""
        return {
            "aggregate": self.aggregate,
            "pairs": self.pairs,
            "rankings": self.rankings,
            "conflicts": self.conflicts,
            "conflicts_dropped": self.conflicts_dropped,
            "changed_winner": self.changed_winner,
            "conflicts_resolved": self.conflicts_resolved,
            "comparisons": self.comparisons,
            "lake_version": self.lake_version,
            "tables": self.tables,
        }


def _count(db: duckdb.DuckDBPyConnection, query: str) -> int:
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def posteriors(db: duckdb.DuckDBPyConnection, aggregate: Aggregate) -> pa.Table:
    """The posteriors that replace vote shares (POSTERIORS): none for `votes`, else Dawid-Skene's fit
    of the connection's `comparisons`."""
    if aggregate == "votes":
        return POSTERIORS.empty_table()
    return dawid_skene_posteriors(annotated_votes(db))


def _replace(
    lake: Lake, name: str, db: duckdb.DuckDBPyConnection, query: str, key: str, lake_version: int
) -> dict[str, int]:
    """Replace a pair table with the rows of `query` (which has a `split` column), one file per split
    written by DuckDB in `key` order, in one commit; its rows per split."""
    uri = lake.table_uri(name)
    DeltaTable.create(
        uri, schemas.LAKE[name], mode="ignore", partition_by=["split"], name=name, description=DESCRIPTION
    )
    table = lake.table(name)
    assert table is not None
    counts, actions = {}, []
    with tempfile.TemporaryDirectory(dir=lake.work, prefix=".pairs-") as scratch:
        for split in SPLITS:
            path = Path(scratch) / f"{split}.parquet"
            db.execute(
                f"COPY (SELECT * EXCLUDE (split) FROM ({query}) WHERE split = '{split}' ORDER BY {key}) "
                f"TO '{path}' "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)"
            )
            counts[split] = pq.ParquetFile(path).metadata.num_rows
            if counts[split]:
                actions.append(place(lake, name, path, split))
        properties = CommitProperties(custom_metadata={LAKE_VERSION: json.dumps(lake_version)})
        commit_placed(table, actions, "overwrite", properties)
    return counts


def build_pairs(
    lake: Lake, splits: SplitConfig, options: PairsConfig, as_of: int | None = None
) -> PairsSummary:
    """Aggregate the lake's comparisons (at version `as_of`; the latest by default) into the pair
    tables, split by prompt (with rankings of K > 2)."""
    snapshot = lake.snapshot(as_of)
    comparisons = lake.at(snapshot, "comparisons")
    if snapshot is None or comparisons is None or comparisons.count() == 0:
        raise FileNotFoundError(
            f"{lake.uri}: the lake holds no comparisons; run `rmcore ingest PATH --lake {lake.uri}`"
        )
    summary = PairsSummary(aggregate=options.aggregate, lake_version=snapshot.version)
    db = connect(lake.work / ".duckdb")
    try:
        with lake.reading():
            lake.view(db, "comparisons", comparisons, "comparisons")
            lake.view(db, "rankings", lake.at(snapshot, "rankings"), "rankings")
            db.execute(_VOTES)
            db.register("posteriors", posteriors(db, options.aggregate))
            db.execute(_LABELLED)
        summary.comparisons = _count(db, "SELECT count(*) FROM comparisons")
        summary.conflicts = _count(db, "SELECT count(*) FROM labelled WHERE p_chosen = 0.5")
        summary.conflicts_resolved = _count(
            db, "SELECT count(*) FROM labelled WHERE 2 * votes_first = n_votes AND p_chosen <> 0.5"
        )
        summary.changed_winner = dict(
            db.execute(
                "SELECT source, count(*) FROM labelled WHERE p_votes < 0.5 GROUP BY source ORDER BY source"
            ).fetchall()
        )
        keep = "a.p_chosen <> 0.5" if options.drop_conflicts else "true"
        summary.conflicts_dropped = summary.conflicts if options.drop_conflicts else 0
        rankings = (
            f"SELECT * EXCLUDE ({', '.join(schemas.LINEAGE)}) FROM "
            f"(SELECT *, {split_sql('prompt_id', splits)} AS split FROM rankings) "
            "WHERE len(responses) > 2"
        )
        pairs = _PAIRS.format(split_of=split_sql("a.prompt_id", splits), keep=keep)
        with lake.reading():
            summary.rankings = _replace(lake, "pair_rankings", db, rankings, "ranking_id", snapshot.version)
            summary.pairs = _replace(lake, "pairs", db, pairs, "pair_id", snapshot.version)
    finally:
        db.close()
    summary.tables = {name: lake.table_uri(name) for name in ("pairs", "pair_rankings")}
    return summary
