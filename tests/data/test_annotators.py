"""Label quality: each annotator's leave-one-out agreement, and Krippendorff's alpha and percent agreement
per source, checked on a crowd of known quality and on a small table worked out by hand.

A pair's votes are `first`, `second` or `tie` in the pair's own orientation: `first` is the response
whose id, the 128-bit BLAKE2b of its (normalized) text, is the smaller. Agreement does not depend on
the orientation, alpha does (its expected disagreement pools the labels over pairs), so the hand
computation orients each pair itself.
"""

import hashlib
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from lake_rows import write_jsonl

from rmcore.cli import main
from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.quality.report import markdown, write_report

Rows = list[dict[str, Any]]


def reported(tmp_path: Path, rows: Rows) -> dict[str, Any]:
    """`rows` written as raw/votes.jsonl, ingested, paired, and the data report written for that lake."""
    lake = Lake(tmp_path / "lake")
    summary = ingest(lake, [write_jsonl(tmp_path / "raw" / "votes.jsonl", rows)], IngestConfig())
    assert summary.accepted == len(rows)
    build_pairs(lake, SplitConfig(), PairsConfig())
    report, _ = write_report(lake)
    return report


def judgment(prompt: str, x: str, y: str, pick: str, annotator: str, swapped: bool) -> dict[str, Any]:
    """A `labelled` row of x against y, shown A/B or swapped (y as A), preferring `pick`: x, y or tie."""
    a, b = (y, x) if swapped else (x, y)
    label = "tie" if pick == "tie" else "a" if (pick == "x") != swapped else "b"
    return {"prompt": prompt, "response_a": a, "response_b": b, "label": label, "annotator": annotator}


# ---------------------------------------------------------------------------------------------
# A crowd of known quality: careful annotators, a coin-flipper and a contrarian


CAREFUL = ("careful-1", "careful-2", "careful-3", "careful-4")


def noisy_pick(rng: random.Random, right: float, tie: float) -> str:
    """x (the right answer) with probability `right`, a tie with `tie`, else y."""
    draw = rng.random()
    return "x" if draw < right else "tie" if draw < right + tie else "y"


def crowd(pairs: int = 100, seed: int = 7) -> Rows:
    """Every annotator judges every pair; the truth is x ("good") over y ("bad"). Careful ones pick it
    93% of the time (else y or, about as often, a tie), the coin-flipper picks a side at random, the
    contrarian picks the wrong side 85% of the time. About half of the rows are shown swapped."""
    rng = random.Random(seed)
    quality = {
        **{name: (0.93, 0.035) for name in CAREFUL},
        "coin-flipper": (0.5, 0.0),
        "contrarian": (0.15, 0.0),
    }
    return [
        judgment(
            f"Question {i}?",
            f"A good answer to {i}.",
            f"A bad answer to {i}.",
            noisy_pick(rng, right, tie),
            annotator,
            swapped=rng.random() < 0.5,
        )
        for i in range(pairs)
        for annotator, (right, tie) in quality.items()
    ]


@pytest.fixture(scope="module")
def crowd_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return reported(tmp_path_factory.mktemp("crowd"), crowd())


def test_the_coin_flipper_and_the_contrarian_rank_last(crowd_report: dict[str, Any]) -> None:
    # given 100 pairs, each judged once by all six annotators
    entries = crowd_report["annotators"]
    assert {e["source"] for e in entries} == {"raw/votes"}
    assert all((e["judgments"], e["shared"]) == (100, 100) for e in entries)
    # then the contrarian has the lowest agreement, the coin-flipper the next
    ranked = [e["annotator"] for e in entries]
    assert ranked[:2] == ["contrarian", "coin-flipper"]
    assert sorted(ranked[2:]) == list(CAREFUL)
    agreement = {e["annotator"]: e["agreement"] for e in entries}
    assert agreement["contrarian"] < 0.3 < agreement["coin-flipper"] < 0.7
    # and every careful annotator agrees with the others' majority on more than 80% of scored votes
    assert all(agreement[name] > 0.8 for name in CAREFUL)
    assert all(e["scored"] <= e["shared"] for e in entries)


def test_the_crowd_has_one_source_of_agreement(crowd_report: dict[str, Any]) -> None:
    # given six votes on each of 100 pairs, then 100 items; the two poor annotators pull alpha down
    # to little above chance (0), below the plain share of agreeing vote pairs
    found = crowd_report["agreement"]["raw/votes"]
    assert found["items"] == 100
    assert 0 < found["krippendorff_alpha"] < 0.5 < found["percent_agreement"] < 1


# ---------------------------------------------------------------------------------------------
# A small table by hand
#
# Each pair's responses are x and y; a vote is for x, for y, or a tie. u3 votes twice on P6 (two
# distinct comparisons), P4 lacks u3's vote, P7 has one vote only.
#
#        u1    u2    u3
#   P1   x     x     x
#   P2   x     y     tie
#   P3   tie   x     x
#   P4   x     y     -
#   P5   y     y     x
#   P6   x     x     y, tie
#   P7   -     x     -
#
# Leave-one-out (the others' most frequent vote; an even split leaves the pair out, "split"):
#   u1  P1 others x,x -> x agree | P2 y,tie split | P3 x,x -> x disagree | P4 y disagree |
#       P5 y,x split | P6 x,y,tie split                  -> judgments 6, shared 6, scored 3, agreed 1
#   u2  P1 agree | P2 x,tie split | P3 tie,x split | P4 x disagree | P5 y,x split |
#       P6 x,y,tie split | P7 no others                  -> judgments 7, shared 6, scored 2, agreed 1
#   u3  P1 agree | P2 x,y split | P3 tie,x split | P5 y,y -> y disagree |
#       P6 x,x -> x: both votes disagree                 -> judgments 6, shared 6, scored 4, agreed 1
# ---------------------------------------------------------------------------------------------

HAND = {
    "P1": {"u1": ["x"], "u2": ["x"], "u3": ["x"]},
    "P2": {"u1": ["x"], "u2": ["y"], "u3": ["tie"]},
    "P3": {"u1": ["tie"], "u2": ["x"], "u3": ["x"]},
    "P4": {"u1": ["x"], "u2": ["y"]},
    "P5": {"u1": ["y"], "u2": ["y"], "u3": ["x"]},
    "P6": {"u1": ["x"], "u2": ["x"], "u3": ["y", "tie"]},
    "P7": {"u2": ["x"]},
}
"""Votes by pair and annotator, each for x, for y or a tie."""


def texts(pair: str) -> tuple[str, str]:
    return f"x answers {pair}", f"y answers {pair}"


def hand_rows() -> Rows:
    """HAND as `labelled` rows; every other row is shown swapped (y as A)."""
    rows = []
    for pair, by_annotator in HAND.items():
        x, y = texts(pair)
        for annotator, picks in by_annotator.items():
            for pick in picks:
                rows.append(judgment(f"Question {pair}?", x, y, pick, annotator, swapped=len(rows) % 2 == 1))
    return rows


def x_is_first(pair: str) -> bool:
    """Whether x is the pair's `first` response: its BLAKE2b-128 digest is the smaller."""
    x, y = (hashlib.blake2b(t.encode(), digest_size=16).hexdigest() for t in texts(pair))
    return x <= y


def count_matrix() -> list[list[int]]:
    """n_uc: per pair with 2+ votes, its votes for (first, second, tie)."""
    matrix = []
    for pair, by_annotator in HAND.items():
        picks = [p for votes in by_annotator.values() for p in votes]
        if len(picks) < 2:
            continue
        first, second = ("x", "y") if x_is_first(pair) else ("y", "x")
        matrix.append([picks.count(first), picks.count(second), picks.count("tie")])
    return matrix


def alpha_by_hand(n_uc: list[list[int]]) -> float:
    """Nominal alpha from the coincidence matrix o_ck = sum_u n_uc n_uk / (n_u - 1) (c != k):
    D_o = sum_{c != k} o_ck / n, D_e = sum_{c != k} n_c n_k / (n (n - 1)), alpha = 1 - D_o / D_e."""
    labels = range(3)
    o = [[sum(u[c] * u[k] / (sum(u) - 1) for u in n_uc) if c != k else 0.0 for k in labels] for c in labels]
    n_c = [sum(u[c] for u in n_uc) for c in labels]
    n = sum(n_c)
    d_o = sum(o[c][k] for c in labels for k in labels) / n
    d_e = sum(n_c[c] * n_c[k] for c in labels for k in labels if c != k) / (n * (n - 1))
    return 1 - d_o / d_e


@pytest.fixture(scope="module")
def hand_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return reported(tmp_path_factory.mktemp("hand"), hand_rows())


def test_agreement_per_annotator_by_hand(hand_report: dict[str, Any]) -> None:
    # given the table above, then each annotator's counts and agreed / scored, lowest first
    assert hand_report["annotators"] == [
        {
            "source": "raw/votes",
            "annotator": "u3",
            "judgments": 6,
            "shared": 6,
            "scored": 4,
            "agreement": 1 / 4,
        },
        {
            "source": "raw/votes",
            "annotator": "u1",
            "judgments": 6,
            "shared": 6,
            "scored": 3,
            "agreement": 1 / 3,
        },
        {
            "source": "raw/votes",
            "annotator": "u2",
            "judgments": 7,
            "shared": 6,
            "scored": 2,
            "agreement": 1 / 2,
        },
    ]


def test_percent_agreement_by_hand(hand_report: dict[str, Any]) -> None:
    # given P1..P6 (P7 has one vote): agreeing vote pairs / vote pairs per pair
    #   P1 3/3, P2 0/3, P3 1/3, P4 0/1, P5 1/3, P6 (x, x, y, tie) 1/6
    found = hand_report["agreement"]["raw/votes"]
    assert found["items"] == 6
    assert found["percent_agreement"] == pytest.approx((3 + 0 + 1 + 0 + 1 + 1) / (3 + 3 + 3 + 1 + 3 + 6))


def test_alpha_by_the_coincidence_matrix(hand_report: dict[str, Any]) -> None:
    # given the pairs' votes as (first, second, tie) counts, oriented by the responses' ids
    # (x is first in P3 and P6 only)
    n_uc = count_matrix()
    assert n_uc == [[0, 3, 0], [1, 1, 1], [2, 0, 1], [1, 1, 0], [2, 1, 0], [2, 1, 1]]
    # when worked out: o_first,second = 1/2 + 1 + 1 + 2/3 = 19/6, o_first,tie = 1/2 + 1 + 2/3 = 13/6,
    # o_second,tie = 1/2 + 1/3 = 5/6; n_c = (8, 7, 3), n = 18; D_o = 2 (19 + 13 + 5) / 6 / 18 = 37/54,
    # D_e = 2 (8*7 + 8*3 + 7*3) / (18*17) = 101/153
    alpha = alpha_by_hand(n_uc)
    assert alpha == pytest.approx(1 - (37 / 54) / (101 / 153)) == pytest.approx(-23 / 606)
    # then the report's alpha is that: these annotators agree a little less than chance
    assert hand_report["agreement"]["raw/votes"]["krippendorff_alpha"] == pytest.approx(alpha)


def test_a_source_without_annotators_has_no_entries(tmp_path: Path) -> None:
    # given votes without annotator ids, then no annotators and no agreement are reported
    rows = [{k: v for k, v in row.items() if k != "annotator"} for row in hand_rows()]
    report = reported(tmp_path, rows)
    assert (report["annotators"], report["agreement"]) == ([], {})
    assert "## Annotators" not in markdown(report)


def test_markdown_section_lists_the_lowest_agreement_first(hand_report: dict[str, Any]) -> None:
    # given the hand table's report, then its section gives alpha, items and u3, u1, u2 in that order
    text = markdown(hand_report)
    section = text[text.index("## Annotators: raw/votes") :]
    alpha = hand_report["agreement"]["raw/votes"]["krippendorff_alpha"]
    assert f"Krippendorff's alpha (nominal; first / second / tie) {alpha:.3f}" in section
    assert "over 6 pairs" in section
    assert "| u3 | 6 | 6 | 4 | 0.250 |" in section
    assert section.index("| u3 |") < section.index("| u1 |") < section.index("| u2 |")


def test_a_big_crowd_shows_its_20_lowest(tmp_path: Path) -> None:
    # given 25 annotators who each vote on one pair with one other annotator (but the last)
    rows = [
        judgment(f"Question {i // 2}?", f"x {i // 2}", f"y {i // 2}", "x", f"a{i:02d}", swapped=False)
        for i in range(25)
    ]
    text = markdown(reported(tmp_path, rows))
    # then the section shows 20 of them and says how many more there are
    assert "25 annotators; the 20 lowest shown, 5 more." in text
    assert sum(re.match(r"\| a\d\d \|", line) is not None for line in text.splitlines()) == 20
    # and the plot, which draws the 20 lowest of 24 scored, is written
    assert (tmp_path / "lake" / "reports" / "annotators.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------------
# The command line


def test_data_report_json_has_annotators_and_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a lake holding the hand table, with pairs built
    lake = str(tmp_path / "lake")
    assert (
        main(["ingest", str(write_jsonl(tmp_path / "raw" / "votes.jsonl", hand_rows())), "--lake", lake]) == 0
    )
    assert main(["build-pairs", "--lake", lake]) == 0
    capsys.readouterr()
    # when the report is written with --json
    assert main(["data-report", "--lake", lake, "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then its last line holds the annotators, the agreement and the plot's path, a PNG file
    assert [e["annotator"] for e in result["annotators"]] == ["u3", "u1", "u2"]
    assert result["agreement"]["raw/votes"]["items"] == 6
    plot = Path(result["paths"]["annotators_plot"])
    assert plot == tmp_path / "lake" / "reports" / "annotators.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
