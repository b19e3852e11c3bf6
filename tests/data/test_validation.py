"""Validation: checks every parsed judgment or ranking passes, whatever its format."""

import unicodedata
from pathlib import Path

import orjson
import pytest

from rmcore.config import IngestConfig
from rmcore.data.formats.validate import check
from rmcore.data.identity import text_id
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.records import Reason, RowRejected

CAFE_NFC = unicodedata.normalize("NFC", "café au lait")
CAFE_NFD = unicodedata.normalize("NFD", "café au lait")


def reason_of(prompt: list[str], responses: list[str], max_chars: int = 100) -> Reason | None:
    """The reason `check` rejects the texts with, or None when it accepts them."""
    try:
        check(prompt, responses, [text_id(r) for r in responses], max_chars)
    except RowRejected as why:
        return why.reason
    return None


def test_texts_within_the_limit_pass() -> None:
    # given a prompt and two different responses of exactly max_chars, then no rejection
    assert reason_of(["x" * 10], ["a" * 10, "b" * 10], max_chars=10) is None


@pytest.mark.parametrize(
    ("prompt", "responses"),
    [
        (["x" * 11], ["a", "b"]),
        # the prompt's messages count together
        (["x" * 6, "y" * 5], ["a", "b"]),
        (["x"], ["a" * 11, "b"]),
        (["x"], ["a", "b" * 11]),
        (["x"], ["a", "b", "c" * 11]),
    ],
)
def test_text_over_max_chars_is_too_long(prompt: list[str], responses: list[str]) -> None:
    # given a prompt or a response over 10 characters, when checked, then text_too_long
    assert reason_of(prompt, responses, max_chars=10) == Reason.TEXT_TOO_LONG


@pytest.mark.parametrize(
    "responses",
    [
        ["Paris", "Paris"],
        ["The capital is  Paris.", "The capital is Paris."],
        ["  The capital\nis Paris.\t", "The capital is Paris."],
        [CAFE_NFC, CAFE_NFD],
        ["red", "blue", " red "],
    ],
)
def test_identical_responses_after_normalization(responses: list[str]) -> None:
    # given responses that differ only by whitespace or Unicode composition, then identical_responses
    assert reason_of(["Q?"], responses) == Reason.IDENTICAL_RESPONSES


def test_case_and_punctuation_differences_are_not_identical() -> None:
    # given responses that differ by case or punctuation, then they pass
    assert reason_of(["Q?"], ["Paris", "paris"]) is None
    assert reason_of(["Q?"], ["Paris", "Paris."]) is None


def test_ingest_quarantines_invalid_rows_with_their_reasons(tmp_path: Path) -> None:
    # given a labelled file (max_chars 20): a good row, a long prompt, a long response,
    # responses differing only by whitespace, an NFC/NFD pair, and another good row
    rows = [
        {"prompt": "Q1", "response_a": "yes", "response_b": "no", "label": "a"},
        {"prompt": "Q" * 21, "response_a": "yes", "response_b": "no", "label": "a"},
        {"prompt": "Q3", "response_a": "y" * 21, "response_b": "no", "label": "b"},
        {"prompt": "Q4", "response_a": "two  words", "response_b": " two words\n", "label": "tie"},
        {"prompt": "Q5", "response_a": CAFE_NFC, "response_b": CAFE_NFD, "label": "a"},
        {"prompt": "Q6", "response_a": "ok", "response_b": "fine", "label": "b"},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    lake = Lake(tmp_path / "lake")
    # when ingested
    result = ingest(lake, [path], IngestConfig(max_chars=20))
    # then 2 accepted, 2 too long, 2 identical; the rejects table holds each with its line number
    assert (result.rows_read, result.accepted, result.new_comparisons) == (6, 2, 2)
    assert result.rejected == {"text_too_long": 2, "identical_responses": 2}
    rejects = lake.read("rejects").sort_by("raw_row").to_pylist()
    assert [(r["raw_row"], r["reason"]) for r in rejects] == [
        (2, "text_too_long"),
        (3, "text_too_long"),
        (4, "identical_responses"),
        (5, "identical_responses"),
    ]
    assert all(r["format"] == "labelled" and r["raw_file"] == str(path) for r in rejects)


def test_a_ranking_with_two_identical_responses_is_rejected_whole(tmp_path: Path) -> None:
    # given a ranking of three responses, two equal after whitespace folding
    path = tmp_path / "rankings.jsonl"
    row = {"prompt": "Colour?", "responses": ["red", "blue", "red "], "ranks": [0, 1, 2]}
    path.write_bytes(orjson.dumps(row) + b"\n")
    # when ingested, then the row is rejected and none of its pairs are stored
    result = ingest(Lake(tmp_path / "lake"), [path], IngestConfig())
    assert result.rejected == {"identical_responses": 1}
    assert (result.accepted, result.new_comparisons, result.new_rankings) == (0, 0, 0)


def test_pandalm_row_is_accepted_or_rejected_whole(tmp_path: Path) -> None:
    # given a PandaLM row whose third vote is invalid
    path = tmp_path / "panda.json"
    row = {
        "instruction": "Add 2 and 2.",
        "input": "",
        "response1": "4",
        "response2": "5",
        "annotator1": 1,
        "annotator2": 1,
        "annotator3": 7,
    }
    path.write_bytes(orjson.dumps([row, {**row, "annotator3": 2}]))
    # when ingested, then the bad row adds no comparison; the good one adds three
    result = ingest(Lake(tmp_path / "lake"), [path], IngestConfig())
    assert (result.rows_read, result.accepted, result.rejected) == (2, 1, {"unknown_label": 1})
    assert result.new_comparisons == 3
