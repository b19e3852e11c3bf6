"""Votes weighed by reliability: each pair's Dawid-Skene posterior, fitted per source.

rmcore build-pairs --aggregate dawid-skene --lake data/lake

Dawid and Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm": each annotator w has a confusion matrix e_w[k, c] = P(w votes k | the truth is c) and
the labels a prior p[c], over c, k in {first, second, tie}. EM fits them to all of a source's
judgments; a pair's posterior is
    P(c | its votes) proportional to p[c] * prod over its judgments (w, k) of e_w[k, c].
crowd-kit's `DawidSkene` runs the EM (started from majority vote, so it is deterministic given
its input, which is sorted here).

Left out of a fit, so that their pairs keep their vote shares: the judgments of annotators who never
judged a pair that another annotator judged too (nothing measures their reliability: the fit would
read it off its own guesses, and its verdict on their pairs moved with the stopping tolerance, 38 to
94 winners changed on Tulu), and whole sources with fewer than two annotators left (nothing to
weigh). That covers a single vote by an annotator with no other judgments.

Which response of a pair is "first" is arbitrary (the one with the smaller content hash), so each pair
is fitted in both orientations: with a mirrored copy whose first and second are swapped, every
confusion matrix and the prior come out symmetric, and a pair's p_first is the mean of its copy's and
one minus its mirror's. Without it, a lone tie vote was read as evidence for one side by an
asymmetry the orientation cannot carry (Tulu: 268 all-tie pairs got a winner).

Posteriors are rounded to 6 decimals: EM stops at a tolerance, so finer digits are noise, and a pair
the votes leave undecided (all ties) stays an exact conflict, p = 1/2.
"""

import pandas as pd
import pyarrow as pa

from rmcore.data.pairs.votes import COLUMNS, VOTES

ITERATIONS = 1000
"""Most EM iterations per source: a bound, not the stopping rule (PandaLM stops after 5, Tulu after 123)."""
TOLERANCE = 1e-5
"""EM stops once the evidence lower bound per judgment rises by less than this (crowd-kit's default)."""

DECIMALS = 6
"""Digits a posterior keeps (see the module)."""
MIRROR = "~mirrored"
"""Suffix of the task id of a pair's mirrored copy (pair ids are hex, so it never names a real pair)."""
SWAPPED = {"first": "second", "second": "first", "tie": "tie"}

POSTERIORS = pa.schema([("source", pa.string()), ("pair_id", pa.string()), ("p_first", pa.float64())])
"""A pair's posterior probability, in its source's fit, that its first response is better (a tie
counting half). A pair judged in two sources has a posterior in each."""


def fitted_judgments(votes: pd.DataFrame) -> pd.DataFrame:
    """One source's judgments (pair_id, annotator, vote) by annotators who judged at least one pair
    that another annotator judged too."""
    annotators_per_pair = votes.groupby("pair_id")["annotator"].transform("nunique")
    shared = set(votes.loc[annotators_per_pair > 1, "annotator"])
    return votes[votes["annotator"].isin(shared)]


def p_first(posterior: pd.DataFrame) -> "pd.Series[float]":
    """P(first) + P(tie) / 2 of each row of a posterior over VOTES (a label absent from the columns,
    one no judgment used, has probability 0): a tie is half a win for each side."""
    complete = posterior.reindex(columns=list(VOTES), fill_value=0.0)
    return complete["first"] + complete["tie"] / 2


def source_posteriors(votes: pd.DataFrame) -> pd.DataFrame:
    """(pair_id, p_first) of one source's fitted pairs, p_first = P(first) + P(tie) / 2; no rows
    when fewer than two annotators remain to fit."""
    judgments = fitted_judgments(votes)
    if judgments["annotator"].nunique() < 2:
        return pd.DataFrame({"pair_id": pd.Series(dtype=str), "p_first": pd.Series(dtype=float)})
    data = judgments.rename(columns={"pair_id": "task", "annotator": "worker", "vote": "label"})
    # crowd-kit, with SciPy under it, takes a second to import: only this aggregation needs it, not
    # every `rmcore` command that imports the pairing module
    from crowdkit.aggregation import DawidSkene

    mirrored = data.assign(task=data["task"] + MIRROR, label=data["label"].map(SWAPPED))
    model = DawidSkene(n_iter=ITERATIONS, tol=TOLERANCE)
    posterior = model.fit_predict_proba(pd.concat([data, mirrored])[["task", "worker", "label"]])
    both = p_first(posterior)
    pairs = sorted(data["task"].unique())
    averaged = (both.loc[pairs].to_numpy() + 1 - both.loc[[t + MIRROR for t in pairs]].to_numpy()) / 2
    return pd.DataFrame({"pair_id": pairs, "p_first": averaged.round(DECIMALS)})


def dawid_skene_posteriors(votes: pa.Table) -> pa.Table:
    """POSTERIORS of every pair a source's fit covers, from annotated_votes' (source, pair_id,
    annotator, vote); each source fitted on its own, over its judgments in sorted order."""
    ordered = votes.sort_by([(column, "ascending") for column in COLUMNS])
    frame = ordered.to_pandas()
    parts = [
        source_posteriors(group.reset_index(drop=True)).assign(source=source)
        for source, group in frame.groupby("source", sort=True)
    ]
    if not parts:
        return POSTERIORS.empty_table()
    return pa.Table.from_pandas(pd.concat(parts, ignore_index=True), schema=POSTERIORS, preserve_index=False)
