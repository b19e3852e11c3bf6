"""summarize-from-feedback reader: a labeller's choice between two summaries of a post or article.

Hand-written rows in the shape of OpenAI's comparisons files (never copies of the data).
"""

from collections.abc import Callable
from typing import Any

import pytest

from rmcore.data.formats import summarize
from rmcore.data.records import Judgment, Message, Reason

Record = dict[str, Any]
POST = "Every time I come back from a trip my cat hides under the bed for a day. Is she angry?"
TITLE = "My cat ignores me after holidays"
TLDR_PROMPT = f"SUBREDDIT: r/cats\nTITLE: {TITLE}\nPOST: {POST}"
SULKS = " cat hides for a day after i travel, is she upset with me?"
TRIP = " i went on a trip."
ARTICLE = "The council approved the new bridge on Monday after a two-year dispute over its cost."
HEADLINE = "Council approves bridge"
APPROVED = " Council approves bridge after two years of dispute."
MONDAY = " Something happened on Monday."


def summary(text: str, policy: str, note: str | None = None) -> Record:
    return {"text": text, "policy": policy, "note": note}


def tldr_row(**changes: Any) -> Record:
    """A Reddit TL;DR comparison as OpenAI's files write it; `...` removes a field."""
    record: Record = {
        "info": {"id": "t3_1cat", "post": POST, "title": TITLE, "subreddit": "cats"},
        "summaries": [summary(SULKS, "sup2", "Asks if the cat is upset."), summary(TRIP, "ref")],
        "choice": 0,
        "worker": "w8KfQ2mZ",
        "batch": "batch5",
        "split": "train",
        "extra": {"confidence": 7},
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def cnndm_row(**info: Any) -> Record:
    """A CNN/DailyMail comparison as the Hugging Face copy writes it: every info field, null where absent."""
    fields = {"id": "9f2c", "post": None, "title": HEADLINE, "subreddit": None, "site": "dailymail"}
    return tldr_row(
        info={**fields, "article": ARTICLE, **info},
        summaries=[summary(APPROVED, "sup4_ppo_rm4"), summary(MONDAY, "pretrain")],
        choice=1,
        worker="q7Hs3dPx",
        batch="cnndm1",
        split="valid2",
        extra={"confidence": None},
    )


def test_a_reddit_comparison_is_one_judgment_in_the_papers_prompt_format() -> None:
    # given a TL;DR comparison preferring summary 0 with confidence 7
    # when parsed
    parsed = summarize.parse(tldr_row())
    # then the prompt is SUBREDDIT / TITLE / POST, the texts keep their leading space, and the
    # worker, confidence, subreddit, policies, note and ids are kept
    assert parsed == [
        Judgment(
            prompt=(Message("user", TLDR_PROMPT),),
            response_a=SULKS,
            response_b=TRIP,
            label="a",
            strength=7.0,
            annotator="w8KfQ2mZ",
            category="cats",
            attributes={
                "model_a": "sup2",
                "model_b": "ref",
                "note_a": "Asks if the cat is upset.",
                "id": "t3_1cat",
                "batch": "batch5",
                "source_split": "train",
            },
        )
    ]


def test_null_info_fields_of_the_hugging_face_copy_are_absent_ones() -> None:
    # given the same post with the article fields written as null
    info = {"id": "t3_1cat", "post": POST, "title": TITLE, "subreddit": "cats", "site": None, "article": None}
    # when parsed, then it reads as the row without them
    assert summarize.parse(tldr_row(info=info)) == summarize.parse(tldr_row())


def test_a_news_article_is_titled_and_its_site_is_the_category() -> None:
    # given a CNN/DailyMail comparison preferring summary 1, confidence null
    (judgment,) = summarize.parse(cnndm_row())
    # then the prompt is TITLE / ARTICLE, b wins ungraded, and the site is the category
    assert judgment == Judgment(
        prompt=(Message("user", f"TITLE: {HEADLINE}\nARTICLE: {ARTICLE}"),),
        response_a=APPROVED,
        response_b=MONDAY,
        label="b",
        annotator="q7Hs3dPx",
        category="dailymail",
        attributes={
            "model_a": "sup4_ppo_rm4",
            "model_b": "pretrain",
            "id": "9f2c",
            "batch": "cnndm1",
            "source_split": "valid2",
        },
    )


def test_absent_parts_are_left_out_of_the_prompt() -> None:
    # given an article with no title, and a post with no subreddit
    article = summarize.parse(cnndm_row(title=None))[0].prompt
    post = summarize.parse(tldr_row(info={"id": "t3_1cat", "post": POST, "title": TITLE}))[0].prompt
    # then only the parts present are written
    assert article == (Message("user", f"ARTICLE: {ARTICLE}"),)
    assert post == (Message("user", f"TITLE: {TITLE}\nPOST: {POST}"),)


@pytest.mark.parametrize("extra", [..., None, {}, {"confidence": None}])
def test_no_confidence_is_no_strength(extra: Any) -> None:
    # given a row without a confidence, when parsed, then the judgment is ungraded
    assert summarize.parse(tldr_row(extra=extra))[0].strength is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (tldr_row(info="t3_1cat"), Reason.NOT_AN_OBJECT),
        (tldr_row(info=None), Reason.NULL_FIELD),
        (tldr_row(info={"id": "t3_1cat", "title": TITLE}), Reason.MISSING_FIELD),
        (tldr_row(info={"id": "t3_1cat", "post": " "}), Reason.EMPTY_TEXT),
        (tldr_row(info={"id": "t3_1cat", "post": 7}), Reason.NON_STRING),
        (cnndm_row(article=""), Reason.EMPTY_TEXT),
        (tldr_row(summaries=[summary(SULKS, "sup2")]), Reason.MALFORMED),
        (tldr_row(summaries=[summary(SULKS, "a"), summary(TRIP, "b"), summary(" x", "c")]), Reason.MALFORMED),
        (tldr_row(summaries={"0": summary(SULKS, "sup2")}), Reason.MALFORMED),
        (tldr_row(summaries=[SULKS, TRIP]), Reason.NOT_AN_OBJECT),
        (tldr_row(summaries=[summary(SULKS, "sup2"), summary("  ", "ref")]), Reason.EMPTY_TEXT),
        (tldr_row(summaries=[{"policy": "sup2"}, summary(TRIP, "ref")]), Reason.MISSING_FIELD),
        (tldr_row(summaries=...), Reason.MISSING_FIELD),
        (tldr_row(choice=2), Reason.UNKNOWN_LABEL),
        (tldr_row(choice="first"), Reason.UNKNOWN_LABEL),
        (tldr_row(choice=None), Reason.NULL_FIELD),
        (tldr_row(extra="sure"), Reason.NOT_AN_OBJECT),
        (tldr_row(extra={"confidence": "very"}), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason, rejection_reason: Callable[..., Reason]) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert rejection_reason(summarize.parse, record) == reason


@pytest.mark.parametrize("record", [tldr_row(), cnndm_row()])
def test_detection_picks_summarize(record: Record, claimants: Callable[..., Any]) -> None:
    # given a post or an article comparison, when every recogniser and detection look at it
    # then its recogniser is the only one that claims it, and detection picks it
    assert claimants(record) == (["summarize"], "summarize")


def test_an_axis_evaluation_is_not_a_comparison() -> None:
    # given a row of the dataset's other part (one summary rated along axes), then it is not claimed
    row = {"info": {"id": "t3_1cat", "post": POST}, "summary": {"text": SULKS, "axes": {"overall": 5}}}
    assert not summarize.is_summarize(row)


def test_ingest_aggregates_workers_and_a_second_ingest_adds_nothing(ingested: Callable[..., Any]) -> None:
    # given 8 lines: three workers on one pair of summaries (one shown swapped), an article judged
    # once, a repeat of the first line, and 3 bad rows
    swapped = [summary(TRIP, "ref"), summary(SULKS, "sup2")]
    rows: list[Record | bytes] = [
        tldr_row(worker="w1", extra={"confidence": 8}),  # 1 SULKS by 8
        tldr_row(worker="w2", summaries=swapped, choice=1, extra={"confidence": 6}),  # 2 SULKS by 6
        tldr_row(worker="w3", choice=1, extra={"confidence": 2}),  # 3 TRIP by 2
        cnndm_row(),  # 4 MONDAY, ungraded
        tldr_row(worker="w1", extra={"confidence": 8}),  # 5 the same judgment as 1: a duplicate
        tldr_row(summaries=[summary(SULKS, "sup2")]),  # 6 malformed
        tldr_row(choice=2),  # 7 unknown_label
        cnndm_row(article=" "),  # 8 empty_text
    ]
    # when ingested and paired
    result = ingested("comparisons/batch5.json", rows)
    # then 5 rows are accepted and 3 rejected by their reasons; 4 comparisons are new, 1 a duplicate
    assert result.counts() == {
        "rows_read": 8,
        "accepted": 5,
        "rejected": {"malformed": 1, "unknown_label": 1, "empty_text": 1},
        "new_comparisons": 4,
        "duplicates": 1,
    }
    # and the workers' votes make one pair, SULKS chosen 2 to 1 with margin (8 + 6 - 2) / 3;
    # the article's pair has one ungraded vote for summary b (sorted by prompt)
    assert result.pair_rows() == [
        {
            "prompt": f"SUBREDDIT: r/cats\nTITLE: {TITLE}\nPOST: {POST}",
            "chosen": SULKS,
            "rejected": TRIP,
            "p_chosen": pytest.approx(2 / 3),
            "n_votes": 3,
            "ties": 0,
            "margin": pytest.approx(4.0),
            "category": "cats",
        },
        {
            "prompt": f"TITLE: {HEADLINE}\nARTICLE: {ARTICLE}",
            "chosen": MONDAY,
            "rejected": APPROVED,
            "p_chosen": 1.0,
            "n_votes": 1,
            "ties": 0,
            "margin": None,
            "category": "dailymail",
        },
    ]
    assert [c["annotator"] for c in result.comparisons()] == ["w1", "w2", "w3", "q7Hs3dPx"]
    # when the same file is ingested again, then it is skipped and adds nothing
    result.assert_again_adds_nothing()
