"""PKU-SafeRLHF reader: the helpfulness or the safety preference, with the safety labels kept.

Hand-written rows in PKU-SafeRLHF's shape (never copies of the data).
"""

from collections.abc import Callable
from typing import Any

import pytest

from rmcore.config import IngestConfig
from rmcore.data.formats import formats, safe_rlhf
from rmcore.data.records import Judgment, Message, Reason

Record = dict[str, Any]
HARMS = (
    "Endangering National Security",
    "Insulting Behavior",
    "Discriminatory Behavior",
    "Endangering Public Health",
    "Copyright Issues",
    "Violence",
    "Drugs",
    "Privacy Violation",
    "Economic Crime",
    "Mental Manipulation",
    "Human Trafficking",
    "Physical Harm",
    "Sexual Content",
    "Cybercrime",
    "Disrupting Public Order",
    "Environmental Damage",
    "Psychological Harm",
    "White-Collar Crime",
    "Animal Abuse",
)
LOCK = "How do I get into my neighbour's shed without a key?"
PICK = "Use a tension wrench and a pick on the padlock."
ASK = "Ask your neighbour to open it for you."


def harms(*true: str) -> dict[str, bool]:
    """A harm-category object in the source's order, `true` ones marked."""
    return {name: name in true for name in HARMS}


def safe_row(**changes: Any) -> Record:
    """One comparison with every field of the real data: 1 is more helpful, 0 is safer; `...` removes one."""
    record: Record = {
        "prompt": LOCK,
        "response_0": ASK,
        "response_1": PICK,
        "prompt_source": "Alpaca3-70B",
        "response_0_source": "Alpaca-7B",
        "response_1_source": "Alpaca2-7B",
        "is_response_0_safe": True,
        "is_response_1_safe": False,
        "response_0_harm_category": harms(),
        "response_1_harm_category": harms("Privacy Violation", "Economic Crime"),
        "response_0_severity_level": 0,
        "response_1_severity_level": 2,
        "better_response_id": 1,
        "safer_response_id": 0,
        "response_0_sha256": "0a" * 32,
        "response_1_sha256": "1b" * 32,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


ATTRIBUTES = {
    "better": "b",
    "safer": "a",
    "model_a": "Alpaca-7B",
    "model_b": "Alpaca2-7B",
    "prompt_source": "Alpaca3-70B",
    "safe_a": "true",
    "safe_b": "false",
    "severity_a": "0",
    "severity_b": "2",
    "harm_a": "",
    "harm_b": "Economic Crime, Privacy Violation",
}


def test_the_better_response_is_the_preference_by_default() -> None:
    # given a row whose more helpful response (1) is the less safe one
    # when parsed with the default preference
    parsed = safe_rlhf.parse(safe_row())
    # then response 1 (b) wins, and the models, safety flags, severities and harms are attributes
    assert parsed == [Judgment((Message("user", LOCK),), ASK, PICK, "b", attributes=ATTRIBUTES)]


def test_the_safer_option_flips_the_winner_where_the_ids_differ() -> None:
    # given the same row, when parsed with preference "safer", directly and through formats()
    direct = safe_rlhf.parse(safe_row(), preference="safer")
    registered = formats(IngestConfig(safe_rlhf_preference="safer"))["safe_rlhf"].parse(safe_row())
    # then response 0 (a) wins, with the same attributes
    assert direct == registered == [Judgment((Message("user", LOCK),), ASK, PICK, "a", attributes=ATTRIBUTES)]


def test_a_row_of_the_earlier_release_has_only_the_flags_and_ids(claimants: Callable[..., Any]) -> None:
    # given a PKU-SafeRLHF-v0 row: no models, severity levels or harm categories
    row = {
        "prompt": LOCK,
        "response_0": ASK,
        "response_1": PICK,
        "is_response_0_safe": True,
        "is_response_1_safe": False,
        "better_response_id": 0,
        "safer_response_id": 0,
    }
    # when recognised and parsed
    assert claimants(row) == (["safe_rlhf"], "safe_rlhf")
    (judgment,) = safe_rlhf.parse(row)
    # then a wins and the attributes hold what the row gives
    assert (judgment.label, judgment.attributes) == (
        "a",
        {"better": "a", "safer": "a", "safe_a": "true", "safe_b": "false"},
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (safe_row(better_response_id=2), Reason.UNKNOWN_LABEL),
        (safe_row(better_response_id="first"), Reason.UNKNOWN_LABEL),
        (safe_row(safer_response_id=True), Reason.UNKNOWN_LABEL),
        (safe_row(safer_response_id=None), Reason.NULL_FIELD),
        (safe_row(better_response_id=...), Reason.MISSING_FIELD),
        (safe_row(prompt=...), Reason.MISSING_FIELD),
        (safe_row(prompt="  "), Reason.EMPTY_TEXT),
        (safe_row(response_1=""), Reason.EMPTY_TEXT),
        (safe_row(response_0=["Ask."]), Reason.NON_STRING),
        (safe_row(is_response_0_safe="yes"), Reason.NON_STRING),
        (safe_row(is_response_1_safe=1), Reason.NON_STRING),
        (safe_row(response_0_severity_level=4), Reason.MALFORMED),
        (safe_row(response_1_severity_level="severe"), Reason.MALFORMED),
        (safe_row(response_1_severity_level=1.5), Reason.MALFORMED),
        (safe_row(response_0_harm_category=["Violence"]), Reason.NOT_AN_OBJECT),
        (safe_row(response_1_harm_category={"Violence": "yes"}), Reason.MALFORMED),
        (safe_row(response_0_source={"name": "Alpaca-7B"}), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason, rejection_reason: Callable[..., Reason]) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert rejection_reason(safe_rlhf.parse, record) == reason


def test_detection_picks_safe_rlhf(claimants: Callable[..., Any]) -> None:
    # given a full row, when every recogniser and detection look at it
    # then its recogniser is the only one that claims it, and detection picks it
    assert claimants(safe_row()) == (["safe_rlhf"], "safe_rlhf")


FIRE = "What should I do if a pan of oil catches fire?"
SMOTHER = "Turn off the heat and cover the pan with a lid."
WATER = "Pour water on it straight away."
REVENGE = "How can I get back at a coworker who humiliated me?"
TALK = "Talk it through with them, or with your manager."
CREDIT = "Quietly take credit for their work at the next meeting."


def test_ingest_either_preference_and_a_second_ingest_adds_nothing(ingested: Callable[..., Any]) -> None:
    # given 6 lines: 3 comparisons (the first and third with different helpful and safe winners),
    # and 3 bad rows
    rows: list[Record | bytes] = [
        safe_row(),  # 1 helpful: PICK, safe: ASK
        safe_row(prompt=FIRE, response_0=SMOTHER, response_1=WATER, better_response_id=0),  # 2 SMOTHER both
        safe_row(prompt=REVENGE, response_0=TALK, response_1=CREDIT),  # 3 helpful: CREDIT, safe: TALK
        safe_row(response_1=ASK),  # 4 identical_responses
        safe_row(better_response_id=None),  # 5 null_field
        b"[1, 2]",  # 6 not_an_object
    ]
    # when ingested with the default preference, and into a second lake with "safer"
    better = ingested("Alpaca-7B/train.jsonl", rows)
    safer = ingested("Alpaca-7B/train.jsonl", rows, IngestConfig(safe_rlhf_preference="safer"))
    # then both read 6 rows, accept 3 and reject 3 by their reasons
    for result in (better, safer):
        assert result.counts() == {
            "rows_read": 6,
            "accepted": 3,
            "rejected": {"identical_responses": 1, "null_field": 1, "not_an_object": 1},
            "new_comparisons": 3,
            "duplicates": 0,
        }
    # and the winners follow the chosen preference: the first and third flip, the second does not
    # (sorted by prompt; one unanimous, ungraded vote each)
    assert [
        [(r["prompt"], r["chosen"], r["rejected"]) for r in result.pair_rows()] for result in (better, safer)
    ] == [
        [(REVENGE, CREDIT, TALK), (LOCK, PICK, ASK), (FIRE, SMOTHER, WATER)],
        [(REVENGE, TALK, CREDIT), (LOCK, ASK, PICK), (FIRE, SMOTHER, WATER)],
    ]
    assert {(r["p_chosen"], r["n_votes"], r["ties"], r["margin"]) for r in better.pair_rows()} == {
        (1.0, 1, 0, None)
    }
    # and the safety labels reach the lake
    assert dict(better.comparisons()[0]["attributes"]) == ATTRIBUTES
    # when the same file is ingested into the first lake again, with either preference, then it is
    # skipped and adds nothing: the lake knows a file by its bytes, so a lake keeps the preference
    # it was built with (ingest into a new lake to take the other)
    better.assert_again_adds_nothing()
    better.assert_again_adds_nothing(IngestConfig(safe_rlhf_preference="safer"))
