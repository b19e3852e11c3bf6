"""WebGPT comparisons reader: two answers to a question, the higher score preferred by the score gap.

Hand-written rows in the shape of the Hugging Face copy (never copies of the data).
"""

from collections.abc import Callable
from typing import Any

import pytest

from rmcore.data.formats import webgpt
from rmcore.data.records import Judgment, Message, Reason

Record = dict[str, Any]
PURR = "Why do cats purr?"
LARYNX = "Cats purr by twitching the muscles of their larynx as they breathe [1]."
HAPPY = "Because they are happy."


def quotes(*titles: str) -> dict[str, list[str]]:
    return {"title": list(titles), "extract": [f"Extract from {t}." for t in titles]}


def webgpt_row(**changes: Any) -> Record:
    """One comparison with every field of the Hugging Face copy; `...` removes a field."""
    record: Record = {
        "question": {"dataset": "eli5", "id": "eli5_q1", "full_text": PURR},
        "quotes_0": quotes("Purr - Wikipedia (en.wikipedia.org)"),
        "answer_0": LARYNX,
        "tokens_0": {"prefix": ["Question", ":"], "completion": ["Cats", " purr"]},
        "score_0": 0.5,
        "quotes_1": quotes(),
        "answer_1": HAPPY,
        "tokens_1": {"prefix": ["Question", ":"], "completion": ["Because"]},
        "score_1": -0.5,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_the_higher_score_wins_by_the_gap() -> None:
    # given answer 0 scored 0.5 and answer 1 -0.5
    # when parsed
    parsed = webgpt.parse(webgpt_row())
    # then a wins with strength 1, the question's dataset is the category and its id an attribute
    assert parsed == [
        Judgment(
            prompt=(Message("user", PURR),),
            response_a=LARYNX,
            response_b=HAPPY,
            label="a",
            strength=1.0,
            category="eli5",
            attributes={"question_id": "eli5_q1"},
        )
    ]


@pytest.mark.parametrize(
    ("scores", "label", "strength"),
    [
        ((-1, 1), "b", 2.0),
        ((1.0, -1.0), "a", 2.0),
        ((0.0, 0.0), "tie", None),
        ((0, 0), "tie", None),
        ((0.5, 0.0), "a", 0.5),
        (("-0.25", "0.25"), "b", 0.5),
    ],
)
def test_labels_and_strengths_from_the_scores(
    scores: tuple[Any, Any], label: str, strength: float | None
) -> None:
    # given a pair of scores, when parsed, then the higher wins by the gap and equal scores tie ungraded
    (judgment,) = webgpt.parse(webgpt_row(score_0=scores[0], score_1=scores[1]))
    assert (judgment.label, judgment.strength) == (label, strength)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (webgpt_row(answer_1=""), Reason.EMPTY_TEXT),
        (webgpt_row(answer_0="  \n"), Reason.EMPTY_TEXT),
        (webgpt_row(answer_0=None), Reason.NULL_FIELD),
        (webgpt_row(answer_1=["Because"]), Reason.NON_STRING),
        (webgpt_row(question=PURR), Reason.NOT_AN_OBJECT),
        (webgpt_row(question=...), Reason.MISSING_FIELD),
        (webgpt_row(question={"dataset": "eli5", "id": "eli5_q1"}), Reason.MISSING_FIELD),
        (webgpt_row(question={"dataset": "eli5", "full_text": ""}), Reason.EMPTY_TEXT),
        (webgpt_row(score_0=None), Reason.NULL_FIELD),
        (webgpt_row(score_1=...), Reason.MISSING_FIELD),
        (webgpt_row(score_1="high"), Reason.NON_STRING),
        (webgpt_row(score_0=""), Reason.EMPTY_TEXT),
        (webgpt_row(score_0=True), Reason.NON_STRING),
        (webgpt_row(score_1=float("nan")), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason, rejection_reason: Callable[..., Reason]) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert rejection_reason(webgpt.parse, record) == reason


def test_detection_picks_webgpt(claimants: Callable[..., Any]) -> None:
    # given a WebGPT row, when every recogniser and detection look at it
    # then its recogniser is the only one that claims it, and detection picks it
    assert claimants(webgpt_row()) == (["webgpt"], "webgpt")


def test_ingest_counts_winners_ties_and_a_second_ingest_adds_nothing(ingested: Callable[..., Any]) -> None:
    # given 7 lines: two judgments of one pair (the second shown swapped, scored more strongly),
    # a tie, a repeat of the first, and 3 bad rows (one an empty answer, as in the real data)
    sky = {"dataset": "eli5", "id": "eli5_q2", "full_text": "Why is the sky blue?"}
    scatter, shrug = "Air scatters blue light more than red [1].", "It reflects the sea."
    rows: list[Record | bytes] = [
        webgpt_row(),  # 1 LARYNX by 1
        webgpt_row(answer_0=HAPPY, answer_1=LARYNX, score_0=-1.0, score_1=1.0),  # 2 LARYNX by 2
        webgpt_row(question=sky, answer_0=scatter, answer_1=shrug, score_0=0.0, score_1=0.0),  # 3 a tie
        webgpt_row(),  # 4 the same judgment as 1: a duplicate
        webgpt_row(answer_1=""),  # 5 empty_text
        webgpt_row(question=PURR),  # 6 not_an_object
        webgpt_row(score_1=None),  # 7 null_field
    ]
    # when ingested and paired
    result = ingested("webgpt/comparisons.jsonl", rows)
    # then 4 rows are accepted and 3 rejected by their reasons; 3 comparisons are new, 1 a duplicate
    assert result.counts() == {
        "rows_read": 7,
        "accepted": 4,
        "rejected": {"empty_text": 1, "not_an_object": 1, "null_field": 1},
        "new_comparisons": 3,
        "duplicates": 1,
    }
    purr, tie = result.pair_rows()
    # and the purr pair has two votes for LARYNX, its margin the mean gap (1 + 2) / 2
    assert purr == {
        "prompt": PURR,
        "chosen": LARYNX,
        "rejected": HAPPY,
        "p_chosen": 1.0,
        "n_votes": 2,
        "ties": 0,
        "margin": 1.5,
        "category": "eli5",
    }
    # and the tie is one vote at 0.5, ungraded, an even split either way round
    assert {tie["chosen"], tie["rejected"]} == {scatter, shrug}
    assert (tie["prompt"], tie["p_chosen"], tie["n_votes"], tie["ties"], tie["margin"]) == (
        "Why is the sky blue?",
        0.5,
        1,
        1,
        None,
    )
    # when the same file is ingested again, then it is skipped and adds nothing
    result.assert_again_adds_nothing()
