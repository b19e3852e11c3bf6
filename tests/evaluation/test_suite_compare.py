"""The new model against the champion on benchmark suites: the promotion gate's decision and the
side-by-side table, on made-up scores with the expected numbers worked out by hand.

python -m pytest tests/evaluation/test_suite_compare.py
"""

import pytest

from rmcore.evaluation.suites.compare import (
    comparison_markdown,
    difference,
    section_scores,
    suite_refusals,
)
from rmcore.evaluation.suites.results import SubsetScore, SuiteResult


def rewardbench(chat: float, chat_hard: float, overlap: int = 0) -> SuiteResult:
    """A made-up RewardBench result with two sections; overall is their mean."""
    return SuiteResult(
        suite="rewardbench",
        source="made-up.jsonl",
        subsets={"alpacaeval-easy": SubsetScore(chat, 10), "mt-bench-hard": SubsetScore(chat_hard, 10)},
        sections={"Chat": chat, "Chat Hard": chat_hard},
        overall=(chat + chat_hard) / 2,
        overlap=overlap,
    )


REFUSED = "suite.rewardbench.chat 74.0% is 6.0 points below the champion's 80.0% (suite_floor 5.0 points)"


@pytest.mark.parametrize(
    ("new", "refused"),
    [
        (0.74, [REFUSED]),  # 0.80 - 0.74 = 0.06 > 0.05
        (0.76, []),  # 4 points below: within the floor
        (0.75, []),  # 5 points below: not more than the floor
        (0.90, []),  # above the champion
    ],
)
def test_a_section_more_than_the_floor_below_the_champion_refuses(new: float, refused: list[str]) -> None:
    # given the champion at 0.80 on Chat and a floor of 0.05 (five points)
    champion = {"suite.rewardbench.chat": 0.80}
    # when the new model scores `new` / then it is refused only when 0.80 - new > 0.05, naming the section
    assert suite_refusals({"suite.rewardbench.chat": new}, champion, 0.05) == refused


def test_every_section_is_checked_and_only_shared_ones() -> None:
    # given two sections below the champion by 0.10 and 0.02, one above, and one the champion lacks
    new = {"suite.a.x": 0.70, "suite.a.y": 0.88, "suite.a.z": 0.95, "suite.b.w": 0.10}
    champion = {"suite.a.x": 0.80, "suite.a.y": 0.90, "suite.a.z": 0.90}
    # when gated with a floor of 0.05 / then only x (0.10 > 0.05) refuses
    assert [reason.split()[0] for reason in suite_refusals(new, champion, 0.05)] == ["suite.a.x"]
    # and with floor 0.01 y refuses too (0.02 > 0.01); without a floor nothing does
    assert [reason.split()[0] for reason in suite_refusals(new, champion, 0.01)] == ["suite.a.x", "suite.a.y"]
    assert suite_refusals(new, champion, None) == []


def test_section_scores_are_the_metrics_without_overall() -> None:
    assert section_scores(rewardbench(0.8, 0.6)) == {
        "suite.rewardbench.chat": 0.8,
        "suite.rewardbench.chat_hard": 0.6,
    }


def test_the_table_shows_both_models_and_the_difference_in_points() -> None:
    # given the new model at Chat 0.75, Chat Hard 0.50 (overall 0.625) and the champion at 0.80, 0.40
    # (overall 0.60), with 3 suite prompts in the training lake
    table = comparison_markdown(rewardbench(0.75, 0.50, overlap=3), rewardbench(0.80, 0.40))
    # then each section reads new | champion | new - champion in points
    assert "| Chat | 75.0% | 80.0% | -5.0 |" in table
    assert "| Chat Hard | 50.0% | 40.0% | +10.0 |" in table
    assert "| overall | 62.5% | 60.0% | +2.5 |" in table
    assert "3 items share a prompt with the training lake" in table
    # and without a champion the champion column says so
    alone = comparison_markdown(rewardbench(0.75, 0.50), None)
    assert "| Chat | 75.0% | none yet | n/a |" in alone and "training lake" not in alone
    assert difference(0.5, None) == "n/a"
