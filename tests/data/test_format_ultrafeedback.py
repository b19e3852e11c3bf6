"""UltraFeedback (raw): four completions ranked by GPT-4's fine-grained score, equal scores tied."""

from pathlib import Path
from typing import Any

import orjson
import pytest
from lake_rows import comparisons, counts, pair_rows, ranking_rows, write_jsonl
from test_formats import SHAPES, reason_of

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import detected, formats, ultrafeedback
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.records import MODEL_LABELLED, Message, Ranking, Reason

Record = dict[str, Any]

INSTRUCTION = "Name three primary colours."
RESPONSES = (
    "Red, yellow and blue.",
    "Red, green and blue (for light).",
    "Purple, orange, green.",
    "Colours are nice.",
)
MODELS = ("gpt-4", "wizardlm-13b", "alpaca-7b", "pythia-12b")


def rating(value: str) -> Record:
    return {"Rating": value, "Rationale": "The text aligns with the task goal."}


def completion(response: str, model: str, score: Any) -> Record:
    """A completion in the raw shape; `score` ... leaves fine-grained_score out."""
    record: Record = {
        "annotations": {
            "helpfulness": {**rating("4"), "Type": ["1", "2"], "Rationale For Rating": "Accurate."},
            "honesty": rating("N/A"),
            "instruction_following": rating("5"),
            "truthfulness": {**rating("5"), "Type": ["0"], "Rationale For Rating": "No hallucination."},
        },
        "critique": "Your answer is correct; say which model of colour you use.",
        "custom_system_prompt": "As an AI assistant, keep your answers accurate and engaging.",
        "fine-grained_score": score,
        "model": model,
        "overall_score": 7.5,
        "principle": "helpfulness",
        "response": response,
    }
    return {k: v for k, v in record.items() if v is not ...}


def row(scores: list[Any], **changes: Any) -> Record:
    record: Record = {
        "source": "evol_instruct",
        "instruction": INSTRUCTION,
        "models": list(MODELS),
        "completions": [completion(r, m, s) for r, m, s in zip(RESPONSES, MODELS, scores, strict=False)],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    }
    record.update(changes)
    return record


ATTRIBUTES = {
    "labeller": "gpt-4",
    "source": "evol_instruct",
    **{f"model_{i}": m for i, m in enumerate(MODELS)},
}


def test_one_ranking_by_fine_grained_score() -> None:
    # given four completions scored 4.75, 4.5, 1.25 and 2.0
    # when parsed
    parsed = ultrafeedback.parse(row([4.75, 4.5, 1.25, 2.0]))
    # then one model-labelled ranking, higher score better, of the instruction alone
    assert parsed == [
        Ranking(
            (Message("user", INSTRUCTION),),
            RESPONSES,
            (0, 1, 3, 2),
            category=MODEL_LABELLED,
            attributes=ATTRIBUTES,
        )
    ]


@pytest.mark.parametrize(
    ("scores", "ranks"),
    [
        ([4.5, 3.25, 4.5, 1.75], (0, 1, 0, 2)),
        ([3, 3, 3, 3], (0, 0, 0, 0)),
        ([5, 1.5, 1.5, 4], (0, 2, 2, 1)),
        ([2.0, 4.75], (1, 0)),
    ],
)
def test_equal_scores_tie_with_dense_ranks(scores: list[float], ranks: tuple[int, ...]) -> None:
    # given scores with repeats, when parsed, then equal scores share a rank and ranks have no gaps
    (ranking,) = ultrafeedback.parse(row(scores))
    assert ranking.ranks == ranks


def test_optional_fields_absent() -> None:
    # given no source and a completion without a model
    record = row([4.0, 2.0])
    del record["source"]
    del record["completions"][1]["model"]
    # when parsed, then the attributes hold the labeller and the one model
    (ranking,) = ultrafeedback.parse(record)
    assert ranking.attributes == {"labeller": "gpt-4", "model_0": "gpt-4"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (row([4.0, ...]), Reason.INVALID_RANKS),
        (row([4.0, None]), Reason.INVALID_RANKS),
        (row([4.0, float("nan")]), Reason.INVALID_RANKS),
        (row([float("inf"), 4.0]), Reason.INVALID_RANKS),
        (row([4.0, "4.5"]), Reason.INVALID_RANKS),
        (row([4.0, True]), Reason.INVALID_RANKS),
        (row([4.0]), Reason.INVALID_RANKS),
        (row([]), Reason.INVALID_RANKS),
        (row([4.0, 3.0], completions=None), Reason.NULL_FIELD),
        (row([4.0, 3.0], completions=[completion("a", "gpt-4", 4.0), "b"]), Reason.NOT_AN_OBJECT),
        (
            row([4.0, 3.0], completions=[completion("a", "gpt-4", 4.0), completion(" ", "gpt-4", 1.0)]),
            Reason.EMPTY_TEXT,
        ),
        (row([4.0, 3.0], instruction=""), Reason.EMPTY_TEXT),
        (row([4.0, 3.0], source=["evol_instruct"]), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(ultrafeedback.parse, record) == reason


# ---------------------------------------------------------------- detection


def test_detection_both_ways() -> None:
    # given a row of this format, when detected, then it is ultrafeedback, and no other recogniser claims it
    record = row([4.75, 4.5, 1.25, 2.0])
    assert detected(record, formats()) == formats()["ultrafeedback"]
    assert [f.name for f in formats().values() if f.matches(record)] == ["ultrafeedback"]
    # and the is_ultrafeedback recogniser claims no other format's row
    claimed = [other for other, shape in SHAPES.items() if ultrafeedback.is_ultrafeedback(shape)]
    assert claimed == ["ultrafeedback"]


# ---------------------------------------------------------------- ingest

ROWS: list[Record | bytes] = [
    # 1: four distinct scores: 6 pairs
    row([4.75, 4.5, 1.25, 2.0]),
    # 2: another instruction, two equal scores: 6 pairs, one a tie
    row([4.5, 3.25, 4.5, 1.75], instruction="Name three secondary colours.", source="sharegpt"),
    # 3: a completion without a score
    row([4.75, 4.5, ..., 2.0]),
    # 4: one completion
    row([4.75]),
    # 5: no completions
    row([]),
    # 6: the same response twice
    row([4.75, 4.5, 1.25], completions=[completion(RESPONSES[0], m, 3.0) for m in MODELS]),
    # 7: a score written NaN (not JSON)
    orjson.dumps(row([4.75, 4.5])).replace(b"4.5", b"NaN"),
]


def test_ingest_counts_rankings_pairs_ties_and_reingest_adds_nothing(tmp_path: Path) -> None:
    # given 7 rows: two rankings of 4, then 5 bad rows
    path = write_jsonl(tmp_path / "raw" / "evol_instruct.jsonl", ROWS)
    lake = Lake(tmp_path / "lake")
    # when ingested
    result = ingest(lake, [path], IngestConfig())
    # then 2 rows are accepted with 4 * 3 / 2 = 6 comparisons each (one tie), and 2 rankings
    assert counts(result) == {
        "rows_read": 7,
        "accepted": 2,
        "rejected": {"invalid_ranks": 3, "identical_responses": 1, "malformed": 1},
        "new_comparisons": 12,
        "duplicates": 0,
    }
    assert result.new_rankings == 2
    stored = comparisons(lake)
    assert sorted(c["raw_row"] for c in stored) == [1] * 6 + [2] * 6
    assert [c["raw_row"] for c in stored if c["label"] == "tie"] == [2]
    assert {c["category"] for c in stored} == {MODEL_LABELLED}

    # when pairs are built
    summary = build_pairs(lake, SplitConfig(), PairsConfig())
    # then 12 pairs of one vote each; the tie is an even split, a conflict; both rankings are kept
    assert (summary.comparisons, sum(summary.pairs.values()), summary.conflicts) == (12, 12, 1)
    assert sum(summary.rankings.values()) == 2
    rows = pair_rows(lake)
    by_pair = {(r["prompt"][-1]["content"], frozenset((r["chosen"], r["rejected"]))): r for r in rows}
    red, rgb, purple, nice = RESPONSES
    tie = by_pair.pop(("Name three secondary colours.", frozenset((red, purple))))
    assert (tie["p_chosen"], tie["n_votes"], tie["ties"], tie["conflict"]) == (0.5, 1, 1, True)
    assert {(r["p_chosen"], r["n_votes"], r["ties"], r["conflict"]) for r in by_pair.values()} == {
        (1.0, 1, 0, False)
    }
    winners = sorted((prompt, r["chosen"], r["rejected"]) for (prompt, _), r in by_pair.items())
    primary, secondary = INSTRUCTION, "Name three secondary colours."
    assert winners == sorted(
        [
            # 4.75, 4.5, 1.25, 2.0
            (primary, red, rgb),
            (primary, red, purple),
            (primary, red, nice),
            (primary, rgb, purple),
            (primary, rgb, nice),
            (primary, nice, purple),
            # 4.5, 3.25, 4.5, 1.75
            (secondary, red, rgb),
            (secondary, red, nice),
            (secondary, rgb, nice),
            (secondary, purple, rgb),
            (secondary, purple, nice),
        ]
    )
    rankings = ranking_rows(lake)
    assert sorted(r["ranks"] for r in rankings) == [[0, 1, 0, 2], [0, 1, 3, 2]]

    # when the same file is ingested again, then it is skipped and adds nothing
    again = ingest(lake, [path], IngestConfig())
    assert again.files_skipped == [str(path)]
    assert (again.rows_read, again.new_comparisons, again.new_rankings) == (0, 0, 0)
    # and the same rows in another order, in another file, are all duplicates
    reordered = write_jsonl(tmp_path / "raw" / "reordered.jsonl", ROWS[::-1])
    result = ingest(lake, [reordered], IngestConfig())
    assert (result.accepted, result.new_comparisons, result.duplicates, result.new_rankings) == (2, 0, 12, 0)
