"""Nectar: seven answers ranked by GPT-4, one model-labelled ranking per row."""

from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_rows import comparisons, counts, pair_rows, ranking_rows
from test_formats import SHAPES, reason_of

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import detected, formats, nectar
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.records import MODEL_LABELLED, Message, Ranking, Reason

Record = dict[str, Any]

MODELS = (
    "gpt-4",
    "gpt-3.5-turbo",
    "claude-2",
    "llama-2-70b-chat",
    "vicuna-33b",
    "mpt-30b-chat",
    "alpaca-13b",
)
BOILING = (
    "At sea level water boils at 100 °C (212 °F).",
    "100 degrees Celsius at standard atmospheric pressure.",
    "Water boils at 100 °C; the point drops as altitude rises.",
    "It boils at about 100 degrees.",
    "Around 90 °C, depending on the pot.",
    "Water boils when it is hot enough.",
    "I am not sure.",
)


def answers(texts: tuple[str, ...], ranks: list[Any] | None = None) -> list[Record]:
    """Answers in the given order, ranked 1.0, 2.0, ... unless told (Nectar stores ranks as floats)."""
    ranks = ranks or [float(r) for r in range(1, len(texts) + 1)]
    return [{"answer": t, "model": m, "rank": r} for t, m, r in zip(texts, MODELS, ranks, strict=False)]


def row(**changes: Any) -> Record:
    record: Record = {
        "prompt": "\n\nHuman: What is the boiling point of water at sea level?\n\nAssistant:",
        "answers": answers(BOILING),
        "turns": 1,
        "num_responses": 7,
        "source": ["sharegpt", "lmsys-chat-1m"],
        "good_natured": True,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


ATTRIBUTES = {
    "labeller": "gpt-4",
    **{f"model_{i}": m for i, m in enumerate(MODELS)},
    "source": "sharegpt, lmsys-chat-1m",
    "good_natured": "true",
}


def test_one_ranking_rank_one_best() -> None:
    # given a row of seven answers ranked 1..7
    # when parsed
    parsed = nectar.parse(row())
    # then one model-labelled ranking, ranks 0..6, the models, sources and flag as attributes
    assert parsed == [
        Ranking(
            (Message("user", "What is the boiling point of water at sea level?"),),
            BOILING,
            (0, 1, 2, 3, 4, 5, 6),
            category=MODEL_LABELLED,
            attributes=ATTRIBUTES,
        )
    ]


def test_ranks_follow_the_answers_not_their_order() -> None:
    # given answers listed out of rank order (integer ranks), when parsed, then each keeps its rank
    (ranking,) = nectar.parse(row(answers=answers(BOILING[:3], [2, 3, 1])))
    assert (ranking.responses, ranking.ranks) == (BOILING[:3], (1, 2, 0))
    assert ranking.attributes == {
        "labeller": "gpt-4",
        "model_0": "gpt-4",
        "model_1": "gpt-3.5-turbo",
        "model_2": "claude-2",
        "source": "sharegpt, lmsys-chat-1m",
        "good_natured": "true",
    }


def test_multi_turn_prompt_drops_the_final_empty_assistant_turn() -> None:
    # given a two-turn transcript ending with an empty Assistant turn, flagged not good-natured
    prompt = (
        "\n\nHuman: Tell me a joke about cats.\n\nAssistant: Why did the cat sit on the computer?"
        " To keep an eye on the mouse.\n\nHuman: Another one, darker.\n\nAssistant: "
    )
    (ranking,) = nectar.parse(row(prompt=prompt, good_natured=False, source=["anthropic-hh"]))
    # then the prompt is the three turns before it
    assert ranking.prompt == (
        Message("user", "Tell me a joke about cats."),
        Message("assistant", "Why did the cat sit on the computer? To keep an eye on the mouse."),
        Message("user", "Another one, darker."),
    )
    assert (ranking.attributes["good_natured"], ranking.attributes["source"]) == ("false", "anthropic-hh")


def test_optional_fields_absent() -> None:
    # given no source, no flag, a prompt without the leading blank lines and an answer without a model
    record = row(source=..., good_natured=..., prompt="Human: Hi\n\nAssistant:")
    record["answers"] = [{"answer": "Hello!", "rank": 1}, {"answer": "Go away.", "model": "", "rank": 2}]
    # when parsed, then only the labeller is an attribute
    (ranking,) = nectar.parse(record)
    assert (ranking.prompt, ranking.responses, ranking.ranks) == (
        (Message("user", "Hi"),),
        ("Hello!", "Go away."),
        (0, 1),
    )
    assert ranking.attributes == {"labeller": "gpt-4"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (row(answers=answers(BOILING[:3], [1, 2, 2])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:3], [0, 1, 2])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:3], [1, 2, 4])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:3], [1, 2.5, 3])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:3], [1, True, 3])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:3], [1, None, 3])), Reason.INVALID_RANKS),
        (row(answers=answers(BOILING[:1])), Reason.INVALID_RANKS),
        (row(answers=[]), Reason.INVALID_RANKS),
        (row(answers="Hello!"), Reason.INVALID_RANKS),
        (row(answers=[*answers(BOILING[:1]), "Go away."]), Reason.NOT_AN_OBJECT),
        (row(answers=None), Reason.NULL_FIELD),
        (row(answers=answers(("Hello!", " "))), Reason.EMPTY_TEXT),
        (row(answers=[{"model": "gpt-4", "rank": 1}, {"answer": "b", "rank": 2}]), Reason.MISSING_FIELD),
        (row(prompt="What is the boiling point?"), Reason.MALFORMED),
        (row(prompt="\n\nAssistant:"), Reason.MALFORMED),
        (row(prompt="\n\nHuman: \n\nAssistant:"), Reason.EMPTY_TEXT),
        (row(prompt="\n\nHuman: Hi\n\nAssistant: Hello!"), Reason.MISSING_FIELD),
        (row(prompt=...), Reason.MISSING_FIELD),
        (row(source=["sharegpt", 3]), Reason.NON_STRING),
        (row(good_natured="yes"), Reason.NON_STRING),
    ],
)
def test_failure_modes(record: Record, reason: Reason) -> None:
    # given a row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(nectar.parse, record) == reason


# ---------------------------------------------------------------- detection


def test_detection_both_ways() -> None:
    # given a row of this format, when detected, then it is nectar, and no other recogniser claims it
    record = row()
    assert detected(record, formats()) == formats()["nectar"]
    assert [f.name for f in formats().values() if f.matches(record)] == ["nectar"]
    # and the is_nectar recogniser claims no other format's row
    assert [other for other, shape in SHAPES.items() if nectar.is_nectar(shape)] == ["nectar"]


# ---------------------------------------------------------------- ingest

JOKE_PROMPT = "\n\nHuman: Tell me a joke.\n\nAssistant: What kind?\n\nHuman: About cats.\n\nAssistant:"
JOKES = (
    "Why was the cat afraid of the tree? Because of its bark.",
    "What do cats eat for breakfast? Mice Krispies.",
    "Cats sleep a lot. That is the joke.",
    "Cat.",
)
ROWS = [
    # 1: seven answers, ranks 1..7 in order: 21 pairs
    row(),
    # 2: a multi-turn prompt, four answers listed out of rank order: 6 pairs
    row(prompt=JOKE_PROMPT, answers=answers(JOKES, [2.0, 1.0, 3.0, 4.0]), turns=2, num_responses=4),
    # 3: two answers share rank 2
    row(answers=answers(BOILING, [1.0, 2.0, 2.0, 4.0, 5.0, 6.0, 7.0])),
    # 4: one answer
    row(answers=answers(BOILING[:1]), num_responses=1),
    # 5: not a transcript
    row(prompt="What is the boiling point of water?"),
    # 6: the same answer text twice
    row(answers=answers((*BOILING[:6], BOILING[0]))),
    # 7: an empty answer
    row(answers=answers((*BOILING[:6], ""))),
]


def write_parquet(path: Path, rows: list[Record]) -> Path:
    """Rows as Parquet, as Nectar ships (data/rlaif.parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_ingest_counts_rankings_pairs_and_reingest_adds_nothing(tmp_path: Path) -> None:
    # given 7 rows: a ranking of 7 and one of 4, then 5 bad rows
    path = write_parquet(tmp_path / "raw" / "rlaif.parquet", ROWS)
    lake = Lake(tmp_path / "lake")
    # when ingested
    result = ingest(lake, [path], IngestConfig())
    # then 2 rows are accepted with 7 * 6 / 2 + 4 * 3 / 2 = 21 + 6 comparisons and 2 rankings
    assert counts(result) == {
        "rows_read": 7,
        "accepted": 2,
        "rejected": {"invalid_ranks": 2, "malformed": 1, "identical_responses": 1, "empty_text": 1},
        "new_comparisons": 27,
        "duplicates": 0,
    }
    assert result.new_rankings == 2
    stored = comparisons(lake)
    assert sorted(c["raw_row"] for c in stored) == [1] * 21 + [2] * 6
    assert {(c["category"], c["annotator"], dict(c["attributes"])["labeller"]) for c in stored} == {
        (MODEL_LABELLED, None, "gpt-4")
    }

    # when pairs are built
    summary = build_pairs(lake, SplitConfig(), PairsConfig())
    # then 27 pairs of one vote each, the better-ranked answer chosen; both rankings are kept
    assert (summary.comparisons, sum(summary.pairs.values()), summary.conflicts) == (27, 27, 0)
    assert sum(summary.rankings.values()) == 2
    rows = pair_rows(lake)
    assert {(r["p_chosen"], r["n_votes"], r["ties"], r["margin"]) for r in rows} == {(1.0, 1, 0, None)}
    won = {(r["prompt"][-1]["content"], r["chosen"], r["rejected"]) for r in rows}
    jokes_by_rank = (JOKES[1], JOKES[0], JOKES[2], JOKES[3])
    assert won == {
        *(("What is the boiling point of water at sea level?", *p) for p in combinations(BOILING, 2)),
        *(("About cats.", *p) for p in combinations(jokes_by_rank, 2)),
    }
    rankings = ranking_rows(lake)
    assert sorted(r["ranks"] for r in rankings) == [[0, 1, 2, 3, 4, 5, 6], [1, 0, 2, 3]]

    # when the same file is ingested again, then it is skipped and adds nothing
    again = ingest(lake, [path], IngestConfig())
    assert again.files_skipped == [str(path)]
    assert (again.rows_read, again.new_comparisons, again.new_rankings) == (0, 0, 0)
    # and the same rows in another order, in another file, are all duplicates
    reordered = write_parquet(tmp_path / "raw" / "reordered.parquet", ROWS[::-1])
    result = ingest(lake, [reordered], IngestConfig())
    assert (result.accepted, result.new_comparisons, result.duplicates, result.new_rankings) == (2, 0, 27, 0)
