"""Label quality from annotated votes: each annotator's agreement with the others, and each source's
Krippendorff's alpha and percent agreement.

Both functions take the table `rmcore.data.pairs.votes.annotated_votes` returns, (source, pair_id,
annotator, vote), a vote being `first`, `second` or `tie`: a tie is a label of its own. Sources
without annotator ids have no rows there, so they have no entries here.
"""

from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import krippendorff
import numpy as np
import pyarrow as pa

_ANNOTATORS = """
WITH own AS (
    SELECT source, pair_id, annotator, count(*) AS n,
        count_if(vote = 'first') AS n_first, count_if(vote = 'second') AS n_second,
        count_if(vote = 'tie') AS n_tie
    FROM votes GROUP BY source, pair_id, annotator
),
others AS (
    SELECT *,
        sum(n_first) OVER pair - n_first AS others_first,
        sum(n_second) OVER pair - n_second AS others_second,
        sum(n_tie) OVER pair - n_tie AS others_tie
    FROM own WINDOW pair AS (PARTITION BY source, pair_id)
),
majority AS (
    SELECT *,
        others_first + others_second + others_tie > 0 AS shared,
        CASE WHEN others_first > greatest(others_second, others_tie) THEN n_first
             WHEN others_second > greatest(others_first, others_tie) THEN n_second
             WHEN others_tie > greatest(others_first, others_second) THEN n_tie
        END AS agreed
    FROM others
)
SELECT source, annotator,
    sum(n)::BIGINT AS judgments,
    (sum(n) FILTER (WHERE shared))::BIGINT AS shared,
    (sum(n) FILTER (WHERE agreed IS NOT NULL))::BIGINT AS scored,
    sum(agreed)::BIGINT AS agreed
FROM majority GROUP BY source, annotator
"""
"""Per (source, annotator): judgments, shared, scored and agreed. `agreed` is null on a pair whose
others have no single most frequent vote (none, or an even split), which leaves it out of scored."""

_ITEMS = """
SELECT source, count_if(vote = 'first'), count_if(vote = 'second'), count_if(vote = 'tie')
FROM votes GROUP BY source, pair_id HAVING count(*) >= 2 ORDER BY source, pair_id
"""
"""Per pair with 2+ votes, in order: its source and its counts of first, second and tie."""


def _query(votes: pa.Table, query: str) -> list[tuple[Any, ...]]:
    """The rows of `query` over the table `votes`, in an in-memory DuckDB of its own."""
    with duckdb.connect() as db:
        db.register("votes", votes)
        return db.execute(query).fetchall()


def annotator_agreement(votes: pa.Table) -> list[dict[str, Any]]:
    """Per (source, annotator): judgments, shared, scored and agreement, sorted by source, then
    agreement ascending (None last), then annotator.

    judgments  the annotator's votes
    shared     those on pairs that other annotators also voted on
    scored     those on pairs where the others' votes have one most frequent label m (leave-one-out:
               every vote of the annotator on the pair is left out; a pair whose others' top counts
               are equal, an even split, is left out)
    agreement  agreed / scored, where agreed counts the annotator's scored votes equal to m; None
               when scored = 0

    For annotator a on pair u with own counts n_auc and pair counts n_uc (c in first, second, tie):
    the others' counts are n_uc - n_auc; when one label m_u has more of them than each other label,
    a's votes on u add n_au = sum_c n_auc to scored and n_au,m_u to agreed.
    """
    rows = _query(votes, _ANNOTATORS)
    found = [
        {
            "source": source,
            "annotator": annotator,
            "judgments": judgments,
            "shared": shared or 0,
            "scored": scored or 0,
            "agreement": agreed / scored if scored else None,
        }
        for source, annotator, judgments, shared, scored, agreed in rows
    ]
    return sorted(found, key=lowest_first("agreement"))


def lowest_first(key: str) -> Callable[[Mapping[str, Any]], tuple[str, bool, float, str]]:
    """Sort key of annotator entries: source, then the figure `key` ascending with None last, then name."""

    def order(entry: Mapping[str, Any]) -> tuple[str, bool, float, str]:
        value = entry[key]
        return (entry["source"], value is None, value or 0.0, entry["annotator"])

    return order


def value_counts(votes: pa.Table) -> dict[str, np.ndarray]:
    """Per source, the units x values count matrix (n_items, 3) of its pairs with 2+ annotated votes:
    row u holds n_uc, how many votes pair u got for c in (first, second, tie); sources without such
    pairs are absent."""
    rows = _query(votes, _ITEMS)
    by_source: dict[str, list[tuple[int, ...]]] = {}
    for source, *counts in rows:
        by_source.setdefault(source, []).append(tuple(counts))
    return {source: np.array(counts, dtype=np.int64) for source, counts in by_source.items()}


def krippendorff_alpha(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha, nominal, of a units x values count matrix whose units have 2+ values,
    computed by the `krippendorff` package; None when every vote has one label (D_e = 0).

    With n_u = sum_c n_uc, n_c = sum_u n_uc and n = sum_c n_c, the coincidences are
    o_ck = sum_u n_uc n_uk / (n_u - 1) for c != k, and
        D_o = (1 / n) sum_{c != k} o_ck,   D_e = (1 / (n (n - 1))) sum_{c != k} n_c n_k,
        alpha = 1 - D_o / D_e.
    """
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return None
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def percent_agreement(counts: np.ndarray) -> float:
    """Pairwise percent agreement of a units x values count matrix whose units have 2+ values: over
    all pairs of votes on the same unit, the share that agree,
        sum_u sum_c n_uc (n_uc - 1) / 2  /  sum_u n_u (n_u - 1) / 2.
    """
    n_u = counts.sum(axis=1)
    return float((counts * (counts - 1)).sum() / (n_u * (n_u - 1)).sum())


def source_agreement(votes: pa.Table) -> dict[str, dict[str, Any]]:
    """Per source with pairs of 2+ annotated votes: krippendorff_alpha, percent_agreement and items
    (how many such pairs), by `value_counts`; sources without such pairs are absent."""
    return {
        source: {
            "krippendorff_alpha": krippendorff_alpha(counts),
            "percent_agreement": percent_agreement(counts),
            "items": len(counts),
        }
        for source, counts in value_counts(votes).items()
    }
