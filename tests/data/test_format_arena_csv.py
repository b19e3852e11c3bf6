"""The Arena CSV release (arena-human-preference-55k): JSON lists of turns, one-hot winners, CSV ingest."""

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import arena_csv, detected, formats
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs, read_split
from rmcore.data.pairs.splits import SPLITS
from rmcore.data.records import Judgment, Message, Reason, RowRejected

Record = dict[str, Any]
COLUMNS = ("id", "model_a", "model_b", "prompt", "response_a", "response_b")
WINNERS = ("winner_model_a", "winner_model_b", "winner_tie")


def turns(*texts: str | None) -> str:
    """A JSON list of turns, as the release writes them in one CSV cell."""
    return orjson.dumps(list(texts)).decode()


def csv_row(winner: str = "winner_model_a", **changes: Any) -> Record:
    """A row as the CSV reader gives it: every value text, one-hot winners "0" / "1"."""
    record: Record = {
        "id": "30192",
        "model_a": "gpt-4-1106-preview",
        "model_b": "gpt-4-0613",
        "prompt": turns("What is 2+2?"),
        "response_a": turns("4"),
        "response_b": turns("5"),
        **{name: "1" if name == winner else "0" for name in WINNERS},
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def reason_of(record: Record) -> Reason:
    with pytest.raises(RowRejected) as info:
        arena_csv.parse(record)
    return info.value.reason


ATTRIBUTES = {"id": "30192", "model_a": "gpt-4-1106-preview", "model_b": "gpt-4-0613"}


def test_single_turn_row() -> None:
    # given a one-turn row won by model a, when parsed
    parsed = arena_csv.parse(csv_row())
    # then one judgment, label a, the id and models as attributes
    assert parsed == [
        Judgment(
            prompt=(Message("user", "What is 2+2?"),),
            response_a="4",
            response_b="5",
            label="a",
            attributes=ATTRIBUTES,
        )
    ]


@pytest.mark.parametrize(
    ("winner", "values", "label"),
    [
        ("winner_model_a", ("1", "0", "0"), "a"),
        ("winner_model_b", ("0", "1", "0"), "b"),
        ("winner_tie", ("0", "0", "1"), "tie"),
        ("winner_model_b", (0, 1, 0), "b"),  # as numbers (Parquet, JSONL)
        ("winner_tie", (0.0, 0.0, 1.0), "tie"),
    ],
)
def test_one_hot_winners(winner: str, values: tuple[Any, ...], label: str) -> None:
    # given the winner columns as text or numbers, when parsed, then the label of the one that is 1
    (judgment,) = arena_csv.parse(csv_row(**dict(zip(WINNERS, values, strict=True))))
    assert judgment.label == label


def test_multi_turn_row_differing_in_the_first_reply() -> None:
    # given two turns whose first replies differ, won by model b
    record = csv_row(
        "winner_model_b",
        prompt=turns("What is 2+2?", "And 3+3?"),
        response_a=turns("4", "6"),
        response_b=turns("Four.", "Six."),
    )
    # when parsed
    (judgment,) = arena_csv.parse(record)
    # then the prompt is the first user turn, each side leads with its first reply and the second prompt
    assert judgment == Judgment(
        prompt=(Message("user", "What is 2+2?"),),
        response_a="6",
        response_b="Six.",
        label="b",
        response_a_turns=(Message("assistant", "4"), Message("user", "And 3+3?")),
        response_b_turns=(Message("assistant", "Four."), Message("user", "And 3+3?")),
        attributes=ATTRIBUTES,
    )


def test_multi_turn_row_with_equal_first_replies_keeps_them_in_the_prompt() -> None:
    # given two turns whose first replies are the same
    record = csv_row(
        prompt=turns("Hi", "A joke?"),
        response_a=turns("Hello!", "Knock knock."),
        response_b=turns("Hello!", "No."),
    )
    # when parsed, then the shared exchange is part of the prompt and there are no leading turns
    (judgment,) = arena_csv.parse(record)
    assert judgment.prompt == (
        Message("user", "Hi"),
        Message("assistant", "Hello!"),
        Message("user", "A joke?"),
    )
    assert (judgment.response_a_turns, judgment.response_b_turns) == ((), ())


def test_rows_without_models_or_id_have_fewer_attributes() -> None:
    # given a row without id and model columns, when parsed, then no attributes
    (judgment,) = arena_csv.parse(csv_row(id=..., model_a=..., model_b=None))
    assert judgment.attributes == {}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (csv_row(winner_model_b="1"), Reason.UNKNOWN_LABEL),  # two winners
        (csv_row(winner_model_a="0"), Reason.UNKNOWN_LABEL),  # none
        (csv_row(winner_tie="2"), Reason.UNKNOWN_LABEL),
        (csv_row(winner_tie="yes"), Reason.UNKNOWN_LABEL),
        (csv_row(winner_model_a=True), Reason.UNKNOWN_LABEL),
        (csv_row(winner_tie=None), Reason.NULL_FIELD),  # an empty CSV cell
        (csv_row(prompt=turns("What is 2+2?", "And 3+3?"), response_a=turns("4", None)), Reason.NULL_FIELD),
        (csv_row(prompt=turns("What is 2+2?", "And 3+3?")), Reason.MALFORMED),  # 2 prompts, 1 reply each
        (csv_row(response_b=turns()), Reason.MALFORMED),
        (csv_row(response_b='["5"'), Reason.MALFORMED),
        (csv_row(response_b='"5"'), Reason.MALFORMED),
        (csv_row(response_b="5"), Reason.MALFORMED),
        (csv_row(response_b=turns(" ")), Reason.EMPTY_TEXT),
        (csv_row(response_b="[5]"), Reason.NON_STRING),
        (csv_row(prompt=...), Reason.MISSING_FIELD),
    ],
)
def test_failure_modes(record: Record, reason: Reason) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(record) == reason


def test_a_null_turn_is_named_by_field_and_turn() -> None:
    # given a JSON null as the second reply of model b (as the real data has)
    record = csv_row(
        prompt=turns("Hi", "A joke?"), response_a=turns("Hello!", "No."), response_b=turns("Hey", None)
    )
    # when parsed, then the detail names the field and the turn
    with pytest.raises(RowRejected, match=r"turn 2 of 'response_b' is null"):
        arena_csv.parse(record)


def test_detection_both_ways() -> None:
    # given an Arena CSV row, when detected, then it is arena_csv, and no other recogniser claims it
    fmt = detected(csv_row(), formats())
    assert fmt is not None and fmt.name == "arena_csv"
    assert [name for name, fmt in formats().items() if fmt.matches(csv_row())] == ["arena_csv"]
    # and it claims no labelled row with model columns, nor a TRL row
    labelled = {
        "prompt": "Hi",
        "response_a": "a",
        "response_b": "b",
        "label": "a",
        "model_a": "x",
        "model_b": "y",
    }
    assert not arena_csv.is_arena_csv(labelled)
    assert not arena_csv.is_arena_csv({"prompt": "Hi", "chosen": "a", "rejected": "b"})


# ---------------------------------------------------------------- ingest


def write_csv(path: Path, rows: list[Record]) -> Path:
    """The rows written as the release ships them: a header, then quoted cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *WINNERS])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_ingest_a_csv_file(tmp_path: Path) -> None:
    # given a CSV of 7 rows: a single-turn vote, a two-turn vote whose first replies differ, a tie,
    # and 4 bad rows (a null turn, lists of different lengths, two winners, an empty winner cell)
    rows = [
        csv_row(id="1"),
        csv_row(
            "winner_model_b",
            id="2",
            prompt=turns("Name a prime.", "Another one?"),
            response_a=turns("4", "6"),
            response_b=turns("2", "3, and 4 is not one."),
        ),
        csv_row(
            "winner_tie",
            id="3",
            prompt=turns("Say hi, with a comma"),
            response_a=turns("Hi, there"),
            response_b=turns('"Hi"'),
        ),
        csv_row(
            id="4", prompt=turns("Hi", "Bye"), response_a=turns("Hello", "Bye"), response_b=turns("Hey", None)
        ),
        csv_row(id="5", prompt=turns("Hi", "Bye")),
        csv_row(id="6", winner_tie="1"),
        csv_row(id="7", winner_model_a=""),
    ]
    path = write_csv(tmp_path / "raw" / "train.csv", rows)
    lake = Lake(tmp_path / "lake")
    # when ingested and paired
    result = ingest(lake, [path], IngestConfig())
    summary = build_pairs(lake, SplitConfig(), PairsConfig())
    # then 3 rows are accepted, 4 rejected by reason
    assert result.rows_read == result.accepted + sum(result.rejected.values())
    assert (result.rows_read, result.accepted, result.new_comparisons, result.duplicates) == (7, 3, 3, 0)
    assert result.rejected == {"null_field": 2, "malformed": 1, "unknown_label": 1}
    # and 3 pairs with the expected winners, the two-turn one with its leading turns
    assert summary.comparisons == 3
    rows_out = read_split(lake, "pairs", SPLITS).to_pylist()
    pairs = {frozenset((row["chosen"], row["rejected"])): row for row in rows_out}
    assert set(pairs) == {
        frozenset(("4", "5")),
        frozenset(("3, and 4 is not one.", "6")),
        frozenset(("Hi, there", '"Hi"')),
    }
    assert pairs[frozenset(("4", "5"))]["chosen"] == "4"
    prime = pairs[frozenset(("3, and 4 is not one.", "6"))]
    assert (prime["chosen"], prime["prompt"]) == (
        "3, and 4 is not one.",
        [{"role": "user", "content": "Name a prime."}],
    )
    assert prime["chosen_turns"] == [
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Another one?"},
    ]
    assert prime["rejected_turns"] == [
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "Another one?"},
    ]
    tie = pairs[frozenset(("Hi, there", '"Hi"'))]
    assert (tie["n_votes"], tie["ties"], tie["p_chosen"]) == (1, 1, 0.5)
    # and the comparisons keep the row id and models
    comparisons = lake.read("comparisons").to_pylist()
    assert sorted(dict(c["attributes"])["id"] for c in comparisons) == ["1", "2", "3"]
    # and ingesting the same file again adds nothing
    again = ingest(lake, [path], IngestConfig())
    assert again.files_skipped == [str(path)]
    assert (again.rows_read, again.new_comparisons) == (0, 0)
