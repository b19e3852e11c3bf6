"""build_pairs with aggregate dawid-skene: votes weighed by each annotator's estimated reliability.

A crowd with known truth (a seeded random.Random): on each of 100 questions, three of six
annotators judge the right answer against a wrong one: four careful ones (85-90% right), a coin
flipper (50%) and a contrarian (10%). Plain majorities are often wrong; Dawid-Skene, which learns
who is reliable from all of the source's judgments, recovers the truth far more often. The
exceptions keep their vote shares exactly; p_first = P(first) + P(tie) / 2 is checked by hand.
"""

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from lake_rows import write_jsonl

from rmcore.config import Aggregate, IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import PairsSummary, build_pairs, lake_pairs_hash, read_split
from rmcore.data.pairs.dawid_skene import dawid_skene_posteriors, p_first
from rmcore.data.pairs.splits import SPLITS
from rmcore.data.pairs.votes import no_votes
from rmcore.data.quality.report import data_report, markdown

ACCURACY = {
    "careful1": 0.9,
    "careful2": 0.9,
    "careful3": 0.85,
    "careful4": 0.85,
    "coin": 0.5,
    "contrarian": 0.1,
}
"""Each annotator's chance of voting for the right answer."""
QUESTIONS = 100


def judgment(question: str, right: str, wrong: str, votes_right: bool, swapped: bool, **extra: Any) -> dict:
    """A labelled row: the right answer shown as A (or as B when swapped), the label following the vote."""
    a, b = (wrong, right) if swapped else (right, wrong)
    label = "a" if votes_right != swapped else "b"
    return {"prompt": question, "response_a": a, "response_b": b, "label": label, **extra}


def crowd(seed: int, accuracy: dict[str, float], source: str) -> list[dict]:
    """Three random annotators per question, each right with their accuracy, half the rows swapped."""
    rng = random.Random(seed)
    rows = []
    for i in range(QUESTIONS):
        for who in rng.sample(sorted(accuracy), 3):
            votes_right = rng.random() < accuracy[who]
            rows.append(
                judgment(
                    f"question {i}",
                    f"the right answer to {i}",
                    f"a wrong answer to {i}",
                    votes_right,
                    swapped=rng.random() < 0.5,
                    annotator=who,
                    source=source,
                )
            )
    return rows


def built(root: Path, rows: list[dict], aggregate: Aggregate) -> tuple[Lake, PairsSummary]:
    """`rows` written as one labelled JSONL file, ingested into a fresh lake, paired."""
    lake = Lake(root / aggregate / "lake")
    result = ingest(lake, [write_jsonl(root / aggregate / "labels.jsonl", rows)], IngestConfig())
    assert result.accepted == len(rows)
    return lake, build_pairs(lake, SplitConfig(), PairsConfig(aggregate=aggregate))


def pair_rows(lake: Lake) -> dict[str, dict[str, Any]]:
    """Every pair row by its prompt's text."""
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    return {row["prompt"][-1]["content"]: row for row in rows}


def right(row: dict[str, Any]) -> bool:
    return bool(row["chosen"].startswith("the right answer"))


@pytest.fixture(scope="module")
def crowd_rows() -> list[dict]:
    return crowd(1, ACCURACY, "crowd")


@pytest.fixture(scope="module")
def by_votes(tmp_path_factory: pytest.TempPathFactory, crowd_rows: list[dict]) -> tuple[Lake, PairsSummary]:
    return built(tmp_path_factory.mktemp("crowd"), crowd_rows, "votes")


@pytest.fixture(scope="module")
def weighed(tmp_path_factory: pytest.TempPathFactory, crowd_rows: list[dict]) -> tuple[Lake, PairsSummary]:
    return built(tmp_path_factory.mktemp("crowd"), crowd_rows, "dawid-skene")


def test_dawid_skene_picks_the_right_answer_far_more_often_than_vote_shares(
    by_votes: tuple[Lake, PairsSummary], weighed: tuple[Lake, PairsSummary]
) -> None:
    # given the crowd paired by vote shares and by Dawid-Skene
    votes, dawid_skene = pair_rows(by_votes[0]), pair_rows(weighed[0])
    assert len(votes) == len(dawid_skene) == QUESTIONS

    # then the majority is right on 78 questions, Dawid-Skene on 94: at least 90% and 10 points more
    right_by_votes = sum(right(row) for row in votes.values())
    right_by_dawid_skene = sum(right(row) for row in dawid_skene.values())
    assert (right_by_votes, right_by_dawid_skene) == (78, 94)
    assert right_by_dawid_skene >= 90 and right_by_dawid_skene >= right_by_votes + 10


def test_changed_winner_counts_the_pairs_whose_vote_majority_the_posterior_overturned(
    by_votes: tuple[Lake, PairsSummary], weighed: tuple[Lake, PairsSummary]
) -> None:
    # given both aggregations of the crowd (three votes a pair, so every majority is strict)
    votes, dawid_skene = pair_rows(by_votes[0]), pair_rows(weighed[0])
    summary = weighed[1]

    # then the pairs whose chosen side changed are exactly those with p_votes < 1/2, as counted
    changed = {q for q in votes if votes[q]["chosen"] != dawid_skene[q]["chosen"]}
    assert changed == {q for q, row in dawid_skene.items() if row["p_votes"] < 0.5}
    assert (summary.aggregate, summary.changed_winner) == ("dawid-skene", {"crowd": len(changed)})
    assert len(changed) == 22
    assert (summary.conflicts, summary.conflicts_resolved) == (0, 0)
    # and a changed pair's p_votes is the overturned majority's complement: 1/3 or 0
    for q in changed:
        assert dawid_skene[q]["p_votes"] == pytest.approx(1 - votes[q]["p_chosen"])
    # and every pair keeps its raw counts, with p_chosen >= 1/2
    for q, row in dawid_skene.items():
        assert (row["n_votes"], row["ties"]) == (votes[q]["n_votes"], votes[q]["ties"]) == (3, 0)
        assert row["p_chosen"] >= 0.5


def test_votes_aggregate_writes_p_votes_equal_to_p_chosen(by_votes: tuple[Lake, PairsSummary]) -> None:
    # given the crowd paired by vote shares: then p_votes is p_chosen and nothing changed winner
    lake, summary = by_votes
    assert (summary.aggregate, summary.changed_winner, summary.conflicts_resolved) == ("votes", {}, 0)
    assert all(row["p_votes"] == row["p_chosen"] for row in pair_rows(lake).values())


def test_data_report_counts_the_pairs_that_changed_winner(
    by_votes: tuple[Lake, PairsSummary], weighed: tuple[Lake, PairsSummary]
) -> None:
    # given the pair tables of each aggregation, when the data report is made
    report = data_report(weighed[0])
    # then it counts the changed pairs by source from the pair table, as build-pairs did, and says so
    assert report["changed_winner"] == weighed[1].changed_winner == {"crowd": 22}
    assert "(p_votes < 0.5): 22; crowd 22." in markdown(report)
    assert data_report(by_votes[0])["changed_winner"] == {}


def test_the_same_judgments_in_another_order_give_identical_pair_tables(
    tmp_path: Path, crowd_rows: list[dict], weighed: tuple[Lake, PairsSummary]
) -> None:
    # given the crowd's rows ingested in reverse order into another lake
    lake, _ = built(tmp_path, crowd_rows[::-1], "dawid-skene")
    # then the fit sees the same sorted judgments and writes the same pairs
    assert lake_pairs_hash(lake) == lake_pairs_hash(weighed[0])


def test_each_source_is_fitted_on_its_own(
    tmp_path: Path, crowd_rows: list[dict], weighed: tuple[Lake, PairsSummary]
) -> None:
    # given a second source whose annotators have the same names but other reliabilities (there the
    # "contrarian" is careful and "careful1" the contrarian)
    swapped = {**ACCURACY, "contrarian": ACCURACY["careful1"], "careful1": ACCURACY["contrarian"]}
    mirror = [{**row, "prompt": "mirror " + row["prompt"]} for row in crowd(2, swapped, "mirror")]
    # when both sources are paired in one lake
    lake, _ = built(tmp_path, crowd_rows + mirror, "dawid-skene")
    both = pair_rows(lake)
    # then the crowd's pairs are exactly those of the crowd alone: its fit saw none of the mirror
    alone = pair_rows(weighed[0])
    assert {q: both[q] for q in alone} == alone
    # and the mirror's own fit finds its truth as well (a joint fit would blend the two)
    assert sum(right(both["mirror " + q]) for q in alone) >= 90


# ---------------------------------------------------------------- the exceptions keep vote shares

EXCEPTIONS = [
    # a newcomer's one judgment on a pair no one else judged: left out of the fit, p 1
    judgment(
        "newcomer's question", "right", "wrong", False, swapped=False, annotator="newcomer", source="crowd"
    ),
    # the contrarian alone on a pair: weighed, since the fit knows the contrarian from other judgments
    judgment(
        "contrarian's question", "right", "wrong", False, swapped=True, annotator="contrarian", source="crowd"
    ),
    # no judgment on this pair names an annotator: right, wrong, wrong, p 2/3 (graded 1 and 2, so that
    # the two votes for wrong are two judgments, not one arriving twice)
    judgment("nobody's question", "right", "wrong", True, swapped=False, source="crowd"),
    judgment("nobody's question", "right", "wrong", False, swapped=False, source="crowd", margin=1),
    judgment("nobody's question", "right", "wrong", False, swapped=True, source="crowd", margin=2),
    # three careful annotators call it a tie: the posterior is almost all tie, split half-half
    *(
        {"prompt": "a tie", "response_a": "left", "response_b": "right", "label": "tie", "annotator": who}
        | {"source": "crowd"}
        for who in ("careful1", "careful2", "careful3")
    ),
    # a source without annotator ids: right, right, wrong, p 2/3
    judgment("anonymous question", "right", "wrong", True, swapped=False, source="anonymous", margin=1),
    judgment("anonymous question", "right", "wrong", True, swapped=True, source="anonymous", margin=2),
    judgment("anonymous question", "right", "wrong", False, swapped=False, source="anonymous"),
    # a source with one annotator (and an anonymous vote against): nothing to weigh, a conflict at 1/2
    judgment("solo question", "right", "wrong", True, swapped=False, annotator="solo", source="solo"),
    judgment("solo question", "right", "wrong", False, swapped=False, source="solo"),
    judgment("solo's other question", "right", "wrong", True, swapped=False, annotator="solo", source="solo"),
]


@pytest.fixture(scope="module")
def exceptions(tmp_path_factory: pytest.TempPathFactory, crowd_rows: list[dict]) -> dict[str, dict[str, Any]]:
    """The crowd with the exceptional pairs, paired by Dawid-Skene."""
    lake, _ = built(tmp_path_factory.mktemp("exceptions"), crowd_rows + EXCEPTIONS, "dawid-skene")
    return pair_rows(lake)


def shares(row: dict[str, Any]) -> tuple[str, float, float, int, bool]:
    return (row["chosen"], row["p_chosen"], row["p_votes"], row["n_votes"], row["conflict"])


def test_a_single_vote_pair_whose_annotator_judged_nothing_else_keeps_its_vote_share(
    exceptions: dict[str, dict[str, Any]],
) -> None:
    # given the newcomer's lone vote for the wrong answer: then it stands, at exactly 1
    assert shares(exceptions["newcomer's question"]) == ("wrong", 1.0, 1.0, 1, False)


def test_a_single_vote_by_a_known_contrarian_is_overturned(exceptions: dict[str, dict[str, Any]]) -> None:
    # given the contrarian's lone vote for the wrong answer: then the posterior picks the right one
    row = exceptions["contrarian's question"]
    assert (row["chosen"], row["p_votes"], row["n_votes"]) == ("right", 0.0, 1)
    assert row["p_chosen"] > 0.5


def test_pairs_without_annotators_keep_their_vote_shares(exceptions: dict[str, dict[str, Any]]) -> None:
    # given two votes against one, in the fitted source and in a source without annotator ids
    # then both keep p 2/3 exactly: (2 + 0) / 3 as one division
    assert shares(exceptions["nobody's question"]) == ("wrong", 2 / 3, 2 / 3, 3, False)
    assert shares(exceptions["anonymous question"]) == ("right", 2 / 3, 2 / 3, 3, False)


def test_a_source_with_one_annotator_keeps_its_vote_shares(exceptions: dict[str, dict[str, Any]]) -> None:
    # given the solo annotator's vote against an anonymous one: then the conflict stays at 1/2
    row = exceptions["solo question"]
    assert (row["p_chosen"], row["p_votes"], row["n_votes"], row["conflict"]) == (0.5, 0.5, 2, True)
    assert shares(exceptions["solo's other question"]) == ("right", 1.0, 1.0, 1, False)


def test_an_all_tie_pair_is_split_half_half(exceptions: dict[str, dict[str, Any]]) -> None:
    # given three ties by careful annotators: the posterior's tie mass counts half to each side
    row = exceptions["a tie"]
    assert (row["n_votes"], row["ties"], row["p_votes"]) == (3, 3, 0.5)
    assert row["p_chosen"] == pytest.approx(0.5, abs=1e-6)


def test_p_first_counts_a_tie_half_for_each_side() -> None:
    # given posteriors, one tie-heavy, one lacking the tie column (a source without ties)
    posterior = pd.DataFrame(
        {"first": [0.1, 0.6], "tie": [0.7, 0.0], "second": [0.2, 0.4]}, index=["tie-heavy", "decided"]
    )
    # then p_first = P(first) + P(tie) / 2: 0.1 + 0.35 = 0.45, and 0.6 + 0 = 0.6
    assert p_first(posterior).to_dict() == pytest.approx({"tie-heavy": 0.45, "decided": 0.6})
    assert p_first(posterior[["first", "second"]]).to_dict() == pytest.approx(
        {"tie-heavy": 0.1, "decided": 0.6}
    )


def test_no_annotated_judgments_give_no_posteriors() -> None:
    # given annotated_votes of a lake where no judgment names its annotator: then nothing is fitted
    assert dawid_skene_posteriors(no_votes()).num_rows == 0
