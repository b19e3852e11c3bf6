"""SHP reader: a post's two comments, the one the upvotes prefer; hand-written rows in SHP's shape."""

from collections.abc import Callable
from typing import Any

import pytest

from rmcore.data.formats import shp
from rmcore.data.records import Judgment, Message, Reason

Record = dict[str, Any]
BREAD = "Why is my bread so dense? I knead it for ten minutes and let it rise overnight."


def shp_row(**changes: Any) -> Record:
    """One SHP comparison with every field of the real data; `...` removes a field."""
    record: Record = {
        "post_id": "q1bread",
        "domain": "askculinary_train",
        "upvote_ratio": 0.97,
        "history": BREAD,
        "c_root_id_A": "hk1aaaa",
        "c_root_id_B": "hk1bbbb",
        "created_at_utc_A": 1636822112,
        "created_at_utc_B": 1636822010,
        "score_A": 52,
        "score_B": 8,
        "human_ref_A": "Your yeast may be old: proof it in warm water first.",
        "human_ref_B": "Add more flour.",
        "labels": 1,
        "seconds_difference": 102.0,
        "score_ratio": 6.5,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_a_row_is_one_judgment_with_its_domain_scores_and_ratio() -> None:
    # given a row whose comment A is preferred (labels 1)
    # when parsed
    parsed = shp.parse(shp_row())
    # then the post is the prompt, A wins by the score ratio, and the domain and scores are kept
    assert parsed == [
        Judgment(
            prompt=(Message("user", BREAD),),
            response_a="Your yeast may be old: proof it in warm water first.",
            response_b="Add more flour.",
            label="a",
            strength=6.5,
            category="askculinary_train",
            attributes={"post_id": "q1bread", "score_A": "52", "score_B": "8"},
        )
    ]


@pytest.mark.parametrize(("labels", "label"), [(1, "a"), (0, "b"), (1.0, "a"), ("0", "b")])
def test_labels_one_prefers_a_and_zero_b(labels: Any, label: str) -> None:
    # given each spelling of the label, when parsed, then 1 is a and 0 is b
    assert shp.parse(shp_row(labels=labels))[0].label == label


def test_absent_optional_fields_leave_no_strength_category_or_attributes() -> None:
    # given a row without score_ratio, domain and scores
    (judgment,) = shp.parse(shp_row(score_ratio=..., domain=None, score_A=..., score_B=...))
    # then there is no strength or category, and only the post id is kept
    assert (judgment.strength, judgment.category, judgment.attributes) == (None, None, {"post_id": "q1bread"})


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (shp_row(labels=2), Reason.UNKNOWN_LABEL),
        (shp_row(labels=-1), Reason.UNKNOWN_LABEL),
        (shp_row(labels="A"), Reason.UNKNOWN_LABEL),
        (shp_row(labels=True), Reason.UNKNOWN_LABEL),
        (shp_row(labels=None), Reason.NULL_FIELD),
        (shp_row(labels=...), Reason.MISSING_FIELD),
        (shp_row(history=""), Reason.EMPTY_TEXT),
        (shp_row(history=...), Reason.MISSING_FIELD),
        (shp_row(human_ref_A=" \n"), Reason.EMPTY_TEXT),
        (shp_row(human_ref_B=None), Reason.NULL_FIELD),
        (shp_row(human_ref_B=12), Reason.NON_STRING),
        (shp_row(score_ratio="lots"), Reason.NON_STRING),
        (shp_row(post_id={"id": 1}), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason, rejection_reason: Callable[..., Reason]) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert rejection_reason(shp.parse, record) == reason


def test_detection_picks_shp(claimants: Callable[..., Any]) -> None:
    # given an SHP row, when every recogniser and detection look at it
    # then its recogniser is the only one that claims it, and detection picks it
    assert claimants(shp_row()) == (["shp"], "shp")


def test_ingest_counts_winners_and_a_second_ingest_adds_nothing(ingested: Callable[..., Any]) -> None:
    # given 7 lines: 3 comparisons (two on one post), a repeat of the first, and 3 bad rows
    other = "Is it safe to eat raw cookie dough?"
    rows: list[Record | bytes] = [
        shp_row(),  # 1 yeast beats flour by 6.5
        shp_row(human_ref_B="Bake it longer.", score_B=60, labels=0, score_ratio=1.2),  # 2 longer wins
        shp_row(
            post_id="q2dough",
            history=other,
            human_ref_A="Raw flour can carry E. coli.",
            human_ref_B="It's fine.",
            labels=1,
            score_ratio=3.0,
        ),  # 3
        shp_row(),  # 4 the same judgment as 1: a duplicate
        shp_row(labels=2),  # 5 unknown_label
        shp_row(human_ref_B=""),  # 6 empty_text
        b'{"post_id": "q3", "history": ',  # 7 malformed
    ]
    # when ingested and paired
    result = ingested("askculinary/train.json", rows)
    # then 4 rows are accepted and 3 rejected by their reasons; 3 comparisons are new, 1 a duplicate
    assert result.counts() == {
        "rows_read": 7,
        "accepted": 4,
        "rejected": {"unknown_label": 1, "empty_text": 1, "malformed": 1},
        "new_comparisons": 3,
        "duplicates": 1,
    }
    assert result.pairs.comparisons == 3
    # and each comparison is one pair with one vote, its margin the score ratio (sorted by prompt, chosen)
    assert result.pair_rows() == [
        {
            "prompt": other,
            "chosen": "Raw flour can carry E. coli.",
            "rejected": "It's fine.",
            "p_chosen": 1.0,
            "n_votes": 1,
            "ties": 0,
            "margin": 3.0,
            "category": "askculinary_train",
        },
        {
            "prompt": BREAD,
            "chosen": "Bake it longer.",
            "rejected": "Your yeast may be old: proof it in warm water first.",
            "p_chosen": 1.0,
            "n_votes": 1,
            "ties": 0,
            "margin": 1.2,
            "category": "askculinary_train",
        },
        {
            "prompt": BREAD,
            "chosen": "Your yeast may be old: proof it in warm water first.",
            "rejected": "Add more flour.",
            "p_chosen": 1.0,
            "n_votes": 1,
            "ties": 0,
            "margin": 6.5,
            "category": "askculinary_train",
        },
    ]
    # and the attributes reach the lake
    assert [dict(c["attributes"]) for c in result.comparisons()] == [
        {"post_id": "q1bread", "score_A": "52", "score_B": "8"},
        {"post_id": "q1bread", "score_A": "52", "score_B": "60"},
        {"post_id": "q2dough", "score_A": "52", "score_B": "8"},
    ]
    # when the same file is ingested again, then it is skipped and adds nothing
    result.assert_again_adds_nothing()
