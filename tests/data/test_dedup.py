"""Deduplication through the real ingest(): the same judgment is stored once, whatever its route in.

Every expected count below is written out by hand from the rows of each test.
"""

import shutil
from pathlib import Path
from typing import Any

from lake_rows import comparisons, counts, write_jsonl

from rmcore.config import IngestConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake


def vote(prompt: str, a: str, b: str, label: str, annotator: str | None = None, **extra: Any) -> dict:
    row = {"prompt": prompt, "response_a": a, "response_b": b, "label": label, **extra}
    if annotator is not None:
        row["annotator"] = annotator
    return row


def test_duplicates_within_one_file(tmp_path: Path) -> None:
    # given one file of 11 lines
    path = write_jsonl(
        tmp_path / "raw" / "votes.jsonl",
        [
            vote("Capital of France?", "Paris", "Lyon", "a", "u1"),  # 1 new
            vote("Capital of France?", "Paris", "Lyon", "a", "u1"),  # 2 exact duplicate of 1
            vote("Capital of France?", "Lyon", "Paris", "b", "u1"),  # 3 swapped + flipped: duplicate of 1
            vote("Capital  of France?\n", "Paris ", "Lyon", "A", "u1"),  # 4 whitespace/case variant of 1
            vote("Capital of France?", "Paris", "Lyon", "a", "u2"),  # 5 new: second annotator
            vote("Capital of France?", "Lyon", "Paris", "a", "u3"),  # 6 new: third annotator, other way
            vote("Capital of France?", "Paris", "Lyon", "maybe", "u4"),  # 7 rejected: unknown_label
            b'{"prompt": "Capital',  # 8 rejected: malformed
            vote("2+2?", "4", "5", "a"),  # 9 new: no annotator
            vote("2+2?", "5", "4", "b"),  # 10 swapped + flipped: duplicate of 9
            vote("2+2?", "5", "4", "a"),  # 11 new: the opposite judgment
        ],
    )
    lake = Lake(tmp_path / "lake")
    # when ingested
    result = ingest(lake, [path], IngestConfig())
    # then 9 rows are accepted, 2 rejected; 5 comparisons are new and 4 are duplicates
    assert counts(result) == {
        "rows_read": 11,
        "accepted": 9,
        "rejected": {"unknown_label": 1, "malformed": 1},
        "new_comparisons": 5,
        "duplicates": 4,
    }
    stored = comparisons(lake)
    assert sorted(c["raw_row"] for c in stored) == [1, 5, 6, 9, 11]
    # and the three annotators on the France pair are three comparisons of one pair
    france = [c for c in stored if c["raw_row"] in (1, 5, 6)]
    assert len({c["pair_id"] for c in france}) == 1
    assert sorted(c["annotator"] for c in france) == ["u1", "u2", "u3"]
    assert len({c["comparison_id"] for c in stored}) == 5


def test_same_pair_by_three_annotators_is_three_comparisons(tmp_path: Path) -> None:
    # given one pair judged by three annotators (two agree)
    path = write_jsonl(
        tmp_path / "raw" / "votes.jsonl",
        [
            vote("Best pet?", "cat", "dog", "a", "ann1"),
            vote("Best pet?", "cat", "dog", "a", "ann2"),
            vote("Best pet?", "cat", "dog", "b", "ann3"),
        ],
    )
    lake = Lake(tmp_path / "lake")
    # when ingested, then three comparisons, no duplicates, one pair
    result = ingest(lake, [path], IngestConfig())
    assert counts(result) == {
        "rows_read": 3,
        "accepted": 3,
        "rejected": {},
        "new_comparisons": 3,
        "duplicates": 0,
    }
    assert len({c["pair_id"] for c in comparisons(lake)}) == 1


def test_graded_strength_is_part_of_the_judgment(tmp_path: Path) -> None:
    # given one annotator's vote twice with different margins, and once more with the first margin
    path = write_jsonl(
        tmp_path / "raw" / "votes.jsonl",
        [
            vote("Q", "x", "y", "a", "u1", margin=2),
            vote("Q", "x", "y", "a", "u1", margin=1),
            vote("Q", "y", "x", "b", "u1", margin=2.0),
        ],
    )
    # when ingested, then the two margins are two judgments; the flipped repeat is a duplicate
    result = ingest(Lake(tmp_path / "lake"), [path], IngestConfig())
    assert (result.new_comparisons, result.duplicates) == (2, 1)


FILE_ONE = [
    vote("Capital of France?", "Paris", "Lyon", "a", "u1"),
    vote("2+2?", "4", "5", "a", "u1"),
]
FILE_TWO = [
    vote("Capital of France?", "Lyon", "Paris", "b", "u1"),  # flipped duplicate of FILE_ONE[0]
    vote("Colour of the sky?", "blue", "green", "a", "u1"),  # new
]


def test_duplicate_across_two_files_in_one_ingest(tmp_path: Path) -> None:
    # given two files sharing one judgment (flipped in the second)
    one = write_jsonl(tmp_path / "raw" / "one.jsonl", FILE_ONE)
    two = write_jsonl(tmp_path / "raw" / "two.jsonl", FILE_TWO)
    lake = Lake(tmp_path / "lake")
    # when both are ingested in one call
    result = ingest(lake, [one, two], IngestConfig())
    # then 3 new comparisons and 1 duplicate, charged to the second file
    assert counts(result) == {
        "rows_read": 4,
        "accepted": 4,
        "rejected": {},
        "new_comparisons": 3,
        "duplicates": 1,
    }
    entries = {Path(e.path).name: (e.new_comparisons, e.duplicates) for e in lake.files()}
    assert entries == {"one.jsonl": (2, 0), "two.jsonl": (1, 1)}
    assert len(comparisons(lake)) == 3


def test_duplicate_across_two_ingest_calls(tmp_path: Path) -> None:
    # given a lake holding the first file
    lake = Lake(tmp_path / "lake")
    first = ingest(lake, [write_jsonl(tmp_path / "raw" / "one.jsonl", FILE_ONE)], IngestConfig())
    assert (first.new_comparisons, first.duplicates) == (2, 0)
    # when the second file is ingested later
    second = ingest(lake, [write_jsonl(tmp_path / "raw" / "two.jsonl", FILE_TWO)], IngestConfig())
    # then only its new judgment is added
    assert counts(second) == {
        "rows_read": 2,
        "accepted": 2,
        "rejected": {},
        "new_comparisons": 1,
        "duplicates": 1,
    }
    assert len(comparisons(lake)) == 3
    assert len(lake.files()) == 2


def test_the_same_file_twice_is_skipped(tmp_path: Path) -> None:
    # given a lake that has ingested a file
    lake = Lake(tmp_path / "lake")
    path = write_jsonl(tmp_path / "raw" / "one.jsonl", FILE_ONE)
    ingest(lake, [path], IngestConfig())
    copy = tmp_path / "elsewhere" / "renamed.jsonl"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    # when the same file, and a copy of its bytes under another name, are ingested again
    again = ingest(lake, [path, copy], IngestConfig())
    # then both are skipped and nothing is read or added
    assert again.files_skipped == [str(path), str(copy)]
    assert again.as_dict()["files_skipped"] == 2
    assert again.files_ingested == []
    assert counts(again) == {
        "rows_read": 0,
        "accepted": 0,
        "rejected": {},
        "new_comparisons": 0,
        "duplicates": 0,
    }
    assert len(lake.files()) == 1
    assert len(comparisons(lake)) == 2


def test_one_file_named_twice_in_one_call_is_ingested_once(tmp_path: Path) -> None:
    # given a file named twice (directly and through its folder)
    path = write_jsonl(tmp_path / "raw" / "one.jsonl", FILE_ONE)
    lake = Lake(tmp_path / "lake")
    # when ingested, then it is read once and skipped once
    result = ingest(lake, [path, path.parent], IngestConfig())
    assert result.files_ingested == [str(path)]
    assert result.files_skipped == [str(path)]
    assert (result.rows_read, result.new_comparisons, result.duplicates) == (2, 2, 0)


def test_same_content_in_another_format_is_a_duplicate(tmp_path: Path) -> None:
    # given a TRL row and a labelled CSV row with the same prompt, texts and preference, no annotator
    trl = write_jsonl(tmp_path / "raw" / "trl.jsonl", [{"prompt": "2+2?", "chosen": "4", "rejected": "5"}])
    csv = tmp_path / "raw" / "votes.csv"
    csv.write_text("prompt,response_a,response_b,label\n2+2?,5,4,b\n")
    # when both are ingested
    result = ingest(Lake(tmp_path / "lake"), [trl, csv], IngestConfig())
    # then they are one judgment (identity is content, not source)
    assert (result.rows_read, result.new_comparisons, result.duplicates) == (2, 1, 1)


def test_the_same_ranking_listed_in_another_order_is_a_duplicate(tmp_path: Path) -> None:
    # given a ranking of 3 (3 implied pairs) and the same ranking again in a second file
    row = {"prompt": "Colour?", "responses": ["red", "blue", "green"], "ranks": [0, 1, 2], "annotator": "r1"}
    one = write_jsonl(tmp_path / "raw" / "one.jsonl", [row])
    two = write_jsonl(
        tmp_path / "raw" / "two.jsonl", [{**row, "responses": ["green", "blue", "red"], "ranks": [2, 1, 0]}]
    )
    lake = Lake(tmp_path / "lake")
    # when both are ingested
    result = ingest(lake, [one, two], IngestConfig())
    # then the second (same ranking, listed in another order) adds nothing
    assert (result.accepted, result.new_comparisons, result.duplicates, result.new_rankings) == (2, 3, 3, 1)
