"""build_pairs: votes aggregate into one row per pair; the numbers are recomputed by hand.

p_chosen = (votes for chosen + ties / 2) / n_votes; margin = mean graded strength toward chosen
over graded votes (ties count 0); conflict = (p_chosen == 0.5).
"""

from pathlib import Path
from typing import Any

import orjson
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import PairsSummary, build_pairs, lake_pairs_hash, read_split
from rmcore.data.pairs.splits import SPLITS, split_of


def vote(prompt: str, a: str, b: str, label: str, annotator: str, margin: float | None = None) -> dict:
    row: dict[str, Any] = {"prompt": prompt, "response_a": a, "response_b": b, "label": label}
    row["annotator"] = annotator
    if margin is not None:
        row["margin"] = margin
    return row


VOTES = [
    # two votes for cat, one for dog: p_chosen 2/3
    vote("Best pet?", "cat", "dog", "a", "u1"),
    vote("Best pet?", "cat", "dog", "a", "u2"),
    vote("Best pet?", "dog", "cat", "a", "u3"),
    # two votes for the second response (one shown swapped): chosen is "tea"
    vote("Morning drink?", "coffee", "tea", "b", "u1"),
    vote("Morning drink?", "tea", "coffee", "a", "u2"),
    vote("Morning drink?", "coffee", "tea", "a", "u3"),
    # one each way: a conflict at 0.5
    vote("Tabs or spaces?", "tabs", "spaces", "a", "u1"),
    vote("Tabs or spaces?", "tabs", "spaces", "b", "u2"),
    # a vote and a tie: 0.75
    vote("Summer or winter?", "summer", "winter", "a", "u1"),
    vote("Summer or winter?", "summer", "winter", "tie", "u2"),
    # graded: +2 and +1 toward chosen, 1 against: margin (2 + 1 - 1) / 3
    vote("Rate the poem", "sonnet", "limerick", "a", "u1", margin=2),
    vote("Rate the poem", "limerick", "sonnet", "b", "u2", margin=1),
    vote("Rate the poem", "sonnet", "limerick", "b", "u3", margin=1),
    # graded and ungraded votes mixed: the ungraded one has no margin to average
    vote("Pick a number", "seven", "three", "a", "u1", margin=2),
    vote("Pick a number", "seven", "three", "a", "u2"),
    # graded with a tie: the tie counts 0 toward the margin, (2 + 0) / 2
    vote("Pick a city", "Rome", "Oslo", "a", "u1", margin=2),
    vote("Pick a city", "Rome", "Oslo", "tie", "u2"),
    # one vote
    vote("Say hi", "  Hello!\n", "Go away.", "a", "u1"),
]
RANKINGS = [
    {"prompt": "Order these", "responses": ["first", "second", "third"], "ranks": [0, 1, 2]},
    {"prompt": "Two only", "responses": ["left", "right"], "ranks": [1, 0]},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def built(root: Path, options: PairsConfig | None = None) -> tuple[Lake, PairsSummary]:
    """A lake holding VOTES and RANKINGS, with pairs built."""
    lake = Lake(root / "lake")
    result = ingest(
        lake,
        [
            write_jsonl(root / "raw" / "votes.jsonl", VOTES),
            write_jsonl(root / "raw" / "ranks.jsonl", RANKINGS),
        ],
        IngestConfig(),
    )
    assert (result.rows_read, result.accepted, result.new_comparisons) == (20, 20, 22)
    return lake, build_pairs(lake, SplitConfig(), options or PairsConfig())


def read_pairs(lake: Lake) -> dict[str, dict[str, Any]]:
    """Every pair row by the text of its prompt's last message."""
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    by_prompt: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt"][-1]["content"], row)
    assert len(by_prompt) == len(rows) - 2, "only 'Order these' has several pairs"
    return by_prompt


@pytest.fixture(scope="module")
def lake_and_summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, PairsSummary]:
    return built(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def pairs(lake_and_summary: tuple[Lake, PairsSummary]) -> dict[str, dict[str, Any]]:
    return read_pairs(lake_and_summary[0])


def fields(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("chosen", "rejected", "p_chosen", "n_votes", "ties", "margin", "conflict")
    return {k: row[k] for k in keys}


def test_summary_counts(lake_and_summary: tuple[Lake, PairsSummary]) -> None:
    # given 18 votes on 8 prompts and rankings giving 3 + 1 pairs
    _, summary = lake_and_summary
    # then 22 comparisons became 8 + 3 + 1 = 12 pairs, one of them a conflict
    assert summary.comparisons == 22
    assert sum(summary.pairs.values()) == 12
    assert (summary.conflicts, summary.conflicts_dropped) == (1, 0)


def test_two_votes_against_one(pairs: dict[str, dict[str, Any]]) -> None:
    # given cat, cat, dog: then cat is chosen with p 2/3
    assert fields(pairs["Best pet?"]) == {
        "chosen": "cat",
        "rejected": "dog",
        "p_chosen": pytest.approx(2 / 3),
        "n_votes": 3,
        "ties": 0,
        "margin": None,
        "conflict": False,
    }


def test_majority_for_the_second_response_orients_the_pair(pairs: dict[str, dict[str, Any]]) -> None:
    # given tea (as b), tea (as a, swapped), coffee: then tea is chosen with p 2/3
    row = pairs["Morning drink?"]
    assert (row["chosen"], row["rejected"]) == ("tea", "coffee")
    assert row["p_chosen"] == pytest.approx(2 / 3)
    assert row["n_votes"] == 3


def test_even_split_is_a_conflict_kept_by_default(pairs: dict[str, dict[str, Any]]) -> None:
    # given one vote each way: then p 0.5, flagged, still in the pair table
    row = pairs["Tabs or spaces?"]
    assert (row["p_chosen"], row["n_votes"], row["ties"], row["conflict"]) == (0.5, 2, 0, True)
    assert {row["chosen"], row["rejected"]} == {"tabs", "spaces"}


def test_a_vote_and_a_tie(pairs: dict[str, dict[str, Any]]) -> None:
    # given summer, tie: then p = (1 + 0.5) / 2 = 0.75
    assert fields(pairs["Summer or winter?"]) == {
        "chosen": "summer",
        "rejected": "winter",
        "p_chosen": 0.75,
        "n_votes": 2,
        "ties": 1,
        "margin": None,
        "conflict": False,
    }


def test_graded_margin(pairs: dict[str, dict[str, Any]]) -> None:
    # given sonnet by 2, sonnet by 1 (swapped), limerick by 1: p 2/3, margin (2 + 1 - 1) / 3
    row = pairs["Rate the poem"]
    assert (row["chosen"], row["rejected"]) == ("sonnet", "limerick")
    assert row["p_chosen"] == pytest.approx(2 / 3)
    assert row["margin"] == pytest.approx(2 / 3)


def test_margin_averages_graded_votes_only(pairs: dict[str, dict[str, Any]]) -> None:
    # given seven by 2 and seven ungraded: margin 2 (the ungraded vote has none), p 1
    row = pairs["Pick a number"]
    assert (row["chosen"], row["p_chosen"], row["n_votes"], row["margin"]) == ("seven", 1.0, 2, 2.0)


def test_a_tie_counts_zero_toward_the_margin(pairs: dict[str, dict[str, Any]]) -> None:
    # given Rome by 2 and a tie: margin (2 + 0) / 2 = 1, p 0.75
    row = pairs["Pick a city"]
    assert (row["chosen"], row["p_chosen"], row["ties"], row["margin"]) == ("Rome", 0.75, 1, 1.0)


def test_single_vote_keeps_the_original_text(pairs: dict[str, dict[str, Any]]) -> None:
    # given one vote whose chosen text has surrounding whitespace: then it is stored as it arrived
    assert fields(pairs["Say hi"]) == {
        "chosen": "  Hello!\n",
        "rejected": "Go away.",
        "p_chosen": 1.0,
        "n_votes": 1,
        "ties": 0,
        "margin": None,
        "conflict": False,
    }


def test_ranking_of_three_gives_three_pairs_and_one_ranking_row(
    lake_and_summary: tuple[Lake, PairsSummary],
) -> None:
    # given the ranking first > second > third
    lake, summary = lake_and_summary
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    ranked = sorted(
        (r["chosen"], r["rejected"], r["p_chosen"], r["n_votes"])
        for r in rows
        if r["prompt"][-1]["content"] == "Order these"
    )
    # then its three implied pairs each have one unanimous vote
    assert ranked == [
        ("first", "second", 1.0, 1),
        ("first", "third", 1.0, 1),
        ("second", "third", 1.0, 1),
    ]
    # and the K = 3 ranking (not the K = 2 one) is in the rankings table, in its split only
    assert sum(summary.rankings.values()) == 1
    (split,) = [s for s, n in summary.rankings.items() if n]
    assert [read_split(lake, "pair_rankings", (s,)).num_rows for s in SPLITS] == [
        int(s == split) for s in SPLITS
    ]
    (ranking,) = read_split(lake, "pair_rankings", (split,)).to_pylist()
    assert (ranking["responses"], ranking["ranks"], ranking["split"]) == (
        ["first", "second", "third"],
        [0, 1, 2],
        split,
    )
    assert ranking["split"] == split_of(ranking["prompt_id"], SplitConfig())


def test_two_response_ranking_is_a_pair(pairs: dict[str, dict[str, Any]]) -> None:
    # given left ranked 1 and right ranked 0: then right is chosen
    row = pairs["Two only"]
    assert (row["chosen"], row["rejected"], row["p_chosen"]) == ("right", "left", 1.0)


def test_every_pair_sits_in_the_split_of_its_prompt(lake_and_summary: tuple[Lake, PairsSummary]) -> None:
    # given the pair table, partitioned by split
    lake, summary = lake_and_summary
    table = lake.table("pairs")
    assert table is not None and table.metadata().partition_columns == ["split"]
    # then each row read from a split's partition has that split, split_of(prompt_id), and the
    # summary counts each split's rows
    assert set(summary.pairs) == set(SPLITS)
    for split in SPLITS:
        rows = read_split(lake, "pairs", (split,)).to_pylist()
        assert len(rows) == summary.pairs[split]
        for row in rows:
            assert row["split"] == split == split_of(row["prompt_id"], SplitConfig())


def test_drop_conflicts_leaves_them_out(tmp_path: Path) -> None:
    # given the same lake built with drop_conflicts
    lake, summary = built(tmp_path, PairsConfig(drop_conflicts=True))
    # then the one conflict is counted, dropped, and absent from the pair table
    assert (summary.conflicts, summary.conflicts_dropped) == (1, 1)
    assert sum(summary.pairs.values()) == 11
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    assert len(rows) == 11
    assert all(not r["conflict"] for r in rows)
    assert "Tabs or spaces?" not in {r["prompt"][-1]["content"] for r in rows}


def test_build_pairs_on_an_empty_lake_says_what_to_run(tmp_path: Path) -> None:
    # given a lake with nothing ingested, when pairs are built, then the error names the fix
    with pytest.raises(FileNotFoundError, match="rmcore ingest"):
        build_pairs(Lake(tmp_path / "lake"), SplitConfig(), PairsConfig())


def test_the_same_labels_ingested_again_give_identical_pair_tables(
    lake_and_summary: tuple[Lake, PairsSummary], tmp_path: Path
) -> None:
    # given the same label files, copied elsewhere and ingested into a second lake, later
    first, _ = lake_and_summary
    second, _ = built(tmp_path)

    # then every pair and ranking has the same data, so the content hash the retrain flow keys its
    # training cache on depends on the data only
    assert lake_pairs_hash(second) == lake_pairs_hash(first)
