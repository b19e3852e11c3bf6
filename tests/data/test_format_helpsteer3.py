"""HelpSteer3 preference: one judgment per annotator's graded vote, each annotator distinct per row."""

import gzip
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from lake_rows import comparisons, counts, pair_rows
from test_formats import SHAPES, reason_of

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import detected, formats, helpsteer3
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.records import Judgment, Message, Reason

Record = dict[str, Any]

CONTEXT = [
    {"role": "user", "content": "How do I reverse a list in Python?"},
    {"role": "assistant", "content": "Slice it: `xs[::-1]` returns a reversed copy."},
    {"role": "user", "content": "And in place?"},
]
PROMPT = (
    Message("user", "How do I reverse a list in Python?"),
    Message("assistant", "Slice it: `xs[::-1]` returns a reversed copy."),
    Message("user", "And in place?"),
)
IN_PLACE = "Call `xs.reverse()`: it reverses the list in place and returns None."
COPY = "Use `reversed(xs)`, which gives an iterator."


def vote(value: Any, reasoning: str = "@Response 1 answers the question asked.") -> Record:
    return {
        "score": value,
        "reasoning": reasoning,
        "feedback1": "The response is correct and concise.",
        "feedback2": "The response does not reverse the list in place.",
    }


def row(**changes: Any) -> Record:
    """A code-domain row with three annotators (two say response 1 is better, one slightly)."""
    record: Record = {
        "domain": "code",
        "language": "python",
        "context": CONTEXT,
        "response1": IN_PLACE,
        "response2": COPY,
        "overall_preference": -2,
        "individual_preference": [
            vote(-2),
            vote(-2, "@Response 1 is better: @Response 2 makes a new iterator."),
            vote(-1, "@Response 1 is slightly better."),
        ],
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


# The row's content digest, written out: it must not change, or re-ingesting the row would add votes.
ROW = "ee0196262474effa"


def test_each_individual_vote_is_one_judgment() -> None:
    # given a row with three annotators' votes -2, -2 and -1
    # when parsed
    parsed = helpsteer3.parse(row())
    # then three judgments for response1 (a), graded 2, 2 and 1, each by its own annotator
    judgment = Judgment(PROMPT, IN_PLACE, COPY, "a", category="code", attributes={"language": "python"})
    assert parsed == [
        replace(judgment, strength=2.0, annotator=f"helpsteer3-{ROW}-0"),
        replace(judgment, strength=2.0, annotator=f"helpsteer3-{ROW}-1"),
        replace(judgment, strength=1.0, annotator=f"helpsteer3-{ROW}-2"),
    ]


@pytest.mark.parametrize(
    ("value", "label", "strength"),
    [
        (-3, "a", 3.0),
        (-2, "a", 2.0),
        (-1, "a", 1.0),
        (0, "tie", None),
        (1, "b", 1.0),
        (2, "b", 2.0),
        (3, "b", 3.0),
    ],
)
def test_score_sign_is_the_label_and_magnitude_the_strength(
    value: int, label: str, strength: float | None
) -> None:
    # given a single vote of each score, when parsed, then the sign picks the side and |score| grades it
    (judgment,) = helpsteer3.parse(row(individual_preference=[vote(value)]))
    assert (judgment.label, judgment.strength) == (label, strength)


@pytest.mark.parametrize("votes", [..., None, []])
def test_without_individual_votes_the_overall_preference_is_one_judgment(votes: Any) -> None:
    # given a row whose individual votes are absent, null or empty, and overall preference +3
    # when parsed
    parsed = helpsteer3.parse(row(individual_preference=votes, overall_preference=3))
    # then one judgment for response2, strength 3, with no annotator (it is no one person's vote)
    assert parsed == [
        Judgment(PROMPT, IN_PLACE, COPY, "b", 3.0, None, "code", attributes={"language": "python"})
    ]


def test_a_single_turn_context_is_the_prompt_and_language_is_optional() -> None:
    # given a one-message context and no language
    (judgment,) = helpsteer3.parse(row(context=CONTEXT[:1], language=..., individual_preference=...))
    # then the prompt is that message and there are no attributes
    assert (judgment.prompt, judgment.attributes) == (PROMPT[:1], {})


def test_annotators_are_distinct_per_row_and_entry_and_stable() -> None:
    # given a row whose two annotators gave the same score
    same = row(individual_preference=[vote(1), vote(1)])
    # when parsed twice, and after a JSON round trip
    first, again = helpsteer3.parse(same), helpsteer3.parse(orjson.loads(orjson.dumps(same)))
    # then the two votes have two annotators, the same each time
    assert len({j.annotator for j in first}) == 2
    assert [j.annotator for j in first] == [j.annotator for j in again]
    # and rows that differ anywhere (a response, a vote's reasoning) share no annotator with it
    other_response = helpsteer3.parse({**same, "response2": "Use `list(reversed(xs))`."})
    other_reasoning = helpsteer3.parse(row(individual_preference=[vote(1), vote(1, "Both are fine.")]))
    for other in (other_response, other_reasoning):
        assert not {j.annotator for j in first} & {j.annotator for j in other}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (row(individual_preference=[vote(-2), vote(4)]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote(-4)]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote(1.5)]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote("2")]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote(True)]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote(float("nan"))]), Reason.UNKNOWN_LABEL),
        (row(individual_preference=[vote(None)]), Reason.NULL_FIELD),
        (row(individual_preference=[{"reasoning": "no score"}]), Reason.MISSING_FIELD),
        (row(individual_preference=["-2"]), Reason.NOT_AN_OBJECT),
        (row(individual_preference={"score": -2}), Reason.NOT_AN_OBJECT),
        (row(individual_preference=[{**vote(1), "reasoning": ["a"]}]), Reason.NON_STRING),
        (row(overall_preference=7), Reason.UNKNOWN_LABEL),
        (row(overall_preference=None), Reason.NULL_FIELD),
        (row(context=[*CONTEXT, {"role": "assistant", "content": "Done."}]), Reason.MISSING_FIELD),
        (row(context=[]), Reason.NON_STRING),
        (row(context=[{"role": "narrator", "content": "Hi"}]), Reason.UNKNOWN_ROLE),
        (row(context=[{"role": "user", "content": " "}]), Reason.EMPTY_TEXT),
        (row(response1=""), Reason.EMPTY_TEXT),
        (row(response2=...), Reason.MISSING_FIELD),
        (row(response2=3), Reason.NON_STRING),
        (row(domain=["code"]), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason) -> None:
    # given a row with one defect, when parsed, then the whole row is rejected with that reason
    assert reason_of(helpsteer3.parse, record) == reason


# ---------------------------------------------------------------- detection


def test_detection_both_ways() -> None:
    # given a row of this format, when detected, then it is helpsteer3, and no other recogniser claims it
    record = row()
    assert detected(record, formats()) == formats()["helpsteer3"]
    assert [f.name for f in formats().values() if f.matches(record)] == ["helpsteer3"]
    # and the is_helpsteer3 recogniser claims no other format's row
    assert [other for other, shape in SHAPES.items() if helpsteer3.is_helpsteer3(shape)] == ["helpsteer3"]


# ---------------------------------------------------------------- ingest

SUMMER = {"role": "user", "content": "Write a haiku about summer."}
HAIKU, LIMERICK = (
    "Cicadas buzzing\nheat shimmers over the road\nthe ice cream melting",
    "There once was a sun",
)
WATER = [{"role": "user", "content": "Why does ice float on water?"}]
DENSITY, MAGIC = "Ice is less dense than liquid water, so it floats.", "Because ice is magic."
BEIJING = [{"role": "user", "content": "用一句话介绍北京。"}]
CAPITAL, CITY = "北京是中国的首都。", "北京是一座城市。"

ROWS = [
    # 1: three votes for response1 (-2, -2, -1)
    row(),
    # 2: no individual votes; overall 0, a tie
    {
        "domain": "general",
        "language": "english",
        "context": [SUMMER],
        "response1": HAIKU,
        "response2": LIMERICK,
        "overall_preference": 0,
    },
    # 3: two votes for response2 (+3, +2) and a tie
    row(
        domain="stem",
        language="english",
        context=WATER,
        response1=MAGIC,
        response2=DENSITY,
        overall_preference=2,
        individual_preference=[vote(3), vote(2), vote(0)],
    ),
    # 4: two annotators with the same vote, +1: two votes
    row(
        domain="multilingual",
        language="chinese",
        context=BEIJING,
        response1=CITY,
        response2=CAPITAL,
        overall_preference=1,
        individual_preference=[vote(1, "@Response 2 更完整。"), vote(1, "@Response 2 稍好。")],
    ),
    # 5: a score out of range
    row(individual_preference=[vote(-2), vote(5)]),
    # 6: a context that ends with an assistant turn
    row(context=[*CONTEXT, {"role": "assistant", "content": "Use `xs.reverse()`."}]),
    # 7: the same text twice
    row(response2=IN_PLACE),
    # 8: row 1 again
    row(),
]


def write_gzip_jsonl(path: Path, rows: list[Record]) -> Path:
    """Rows as gzipped JSONL, as HelpSteer3 ships (preference/train.jsonl.gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows), mtime=0))
    return path


def test_ingest_counts_votes_pairs_and_reingest_adds_nothing(tmp_path: Path) -> None:
    # given 8 rows: 4 good (3 + 1 + 3 + 2 votes), 3 bad, and row 1 again
    path = write_gzip_jsonl(tmp_path / "raw" / "train.jsonl.gz", ROWS)
    lake = Lake(tmp_path / "lake")
    # when ingested
    result = ingest(lake, [path], IngestConfig())
    # then 5 rows are accepted, 3 rejected by reason, 9 votes stored and row 8's 3 are duplicates
    assert counts(result) == {
        "rows_read": 8,
        "accepted": 5,
        "rejected": {"unknown_label": 1, "missing_field": 1, "identical_responses": 1},
        "new_comparisons": 9,
        "duplicates": 3,
    }
    stored = comparisons(lake)
    assert sorted(c["raw_row"] for c in stored) == [1, 1, 1, 2, 3, 3, 3, 4, 4]
    # and every vote has its own annotator, but the overall preference has none
    annotators = [c["annotator"] for c in stored]
    assert annotators.count(None) == 1
    assert len({a for a in annotators if a}) == 8
    assert {c["category"] for c in stored} == {"code", "general", "stem", "multilingual"}

    # when pairs are built
    summary = build_pairs(lake, SplitConfig(), PairsConfig())
    # then 4 pairs: the tie is the one conflict; no rankings
    assert (summary.comparisons, sum(summary.pairs.values()), summary.conflicts) == (9, 4, 1)
    assert sum(summary.rankings.values()) == 0
    keys = ("chosen", "rejected", "p_chosen", "n_votes", "ties", "margin", "conflict")
    pairs = {r["prompt"][-1]["content"]: {k: r[k] for k in keys} for r in pair_rows(lake)}
    # overall 0: one tie, ungraded, either way round
    tie = pairs.pop("Write a haiku about summer.")
    assert {tie["chosen"], tie["rejected"]} == {HAIKU, LIMERICK}
    assert [tie[k] for k in keys[2:]] == [0.5, 1, 1, None, True]
    assert pairs == {
        # -2, -2, -1: response1 by p 1, margin (2 + 2 + 1) / 3
        "And in place?": {
            "chosen": IN_PLACE,
            "rejected": COPY,
            "p_chosen": 1.0,
            "n_votes": 3,
            "ties": 0,
            "margin": pytest.approx(5 / 3),
            "conflict": False,
        },
        # +3, +2, 0: response2 by p (2 + 1/2) / 3, margin (3 + 2 + 0) / 3
        "Why does ice float on water?": {
            "chosen": DENSITY,
            "rejected": MAGIC,
            "p_chosen": pytest.approx(5 / 6),
            "n_votes": 3,
            "ties": 1,
            "margin": pytest.approx(5 / 3),
            "conflict": False,
        },
        # +1, +1 by two annotators: two votes
        "用一句话介绍北京。": {
            "chosen": CAPITAL,
            "rejected": CITY,
            "p_chosen": 1.0,
            "n_votes": 2,
            "ties": 0,
            "margin": 1.0,
            "conflict": False,
        },
    }

    # when the same file is ingested again, then it is skipped and adds nothing
    again = ingest(lake, [path], IngestConfig())
    assert again.files_skipped == [str(path)]
    assert (again.rows_read, again.new_comparisons) == (0, 0)
    # and when the same rows come again in another order, in another file, every vote is a duplicate
    reordered = write_gzip_jsonl(tmp_path / "raw" / "reordered.jsonl.gz", ROWS[::-1])
    assert counts(ingest(lake, [reordered], IngestConfig())) == {
        "rows_read": 8,
        "accepted": 5,
        "rejected": {"unknown_label": 1, "missing_field": 1, "identical_responses": 1},
        "new_comparisons": 0,
        "duplicates": 12,
    }
    assert len(comparisons(lake)) == 9
