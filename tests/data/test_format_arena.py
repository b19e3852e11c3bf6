"""Chatbot Arena and MT-Bench battles: parsed judgments, the turn cut, failure modes, detection, ingest."""

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import arena, detected, formats
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import PairsSummary, build_pairs, read_split
from rmcore.data.pairs.splits import SPLITS
from rmcore.data.records import MODEL_LABELLED, Judgment, Message, Reason, RowRejected

Record = dict[str, Any]


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def chat(*texts: str) -> list[dict[str, str]]:
    """A conversation of alternating user and assistant messages, user first."""
    return [msg("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(texts)]


def reason_of(record: Record) -> Reason:
    with pytest.raises(RowRejected) as info:
        arena.parse(record)
    return info.value.reason


# ---------------------------------------------------------------- Chatbot Arena


def arena_row(**changes: Any) -> Record:
    """A battle in the shape of lmsys/chatbot_arena_conversations, extra fields included."""
    record: Record = {
        "question_id": "58210e39b3fd4441a2bd4a518bb44c2d",
        "model_a": "chatglm-6b",
        "model_b": "koala-13b",
        "winner": "model_b",
        "judge": "arena_user_973",
        "conversation_a": chat("What is the capital of France?", "It is Lyon."),
        "conversation_b": chat("What is the capital of France?", "The capital of France is Paris."),
        "turn": 1,
        "anony": True,
        "language": "English",
        "tstamp": 1682351591.1322,
        "openai_moderation": {
            "categories": {"harassment": False, "hate": False, "sexual": False, "violence": False},
            "category_scores": {
                "harassment": 1.2e-06,
                "hate": 3.1e-07,
                "sexual": 2.0e-06,
                "violence": 5.5e-07,
            },
            "flagged": False,
        },
        "toxic_chat_tag": {
            "roberta-large": {"flagged": False, "probability": 0.0083},
            "t5-large": {"flagged": False, "score": 9.1e-05},
        },
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


ARENA_ATTRIBUTES = {
    "model_a": "chatglm-6b",
    "model_b": "koala-13b",
    "winner": "model_b",
    "turn": "1",
    "question_id": "58210e39b3fd4441a2bd4a518bb44c2d",
    "language": "English",
    "anony": "true",
    "openai_flagged": "false",
    "toxic_chat_flagged": "false",
}


def test_arena_single_turn_battle() -> None:
    # given a one-turn battle won by model_b
    # when parsed
    parsed = arena.parse(arena_row())
    # then one judgment: label b, the voter as annotator, models and metadata as attributes
    assert parsed == [
        Judgment(
            prompt=(Message("user", "What is the capital of France?"),),
            response_a="It is Lyon.",
            response_b="The capital of France is Paris.",
            label="b",
            annotator="arena_user_973",
            attributes=ARENA_ATTRIBUTES,
        )
    ]


@pytest.mark.parametrize(
    ("winner", "label"), [("model_a", "a"), ("model_b", "b"), ("tie", "tie"), ("tie (bothbad)", "tie")]
)
def test_arena_winners_and_both_ties(winner: str, label: str) -> None:
    # given each winner value, when parsed, then its label, and the raw winner kept in attributes
    (judgment,) = arena.parse(arena_row(winner=winner))
    assert (judgment.label, judgment.attributes["winner"]) == (label, winner)


def test_arena_multi_turn_battle_differing_in_the_first_reply() -> None:
    # given a two-turn battle whose first replies already differ
    record = arena_row(
        conversation_a=chat("Plan a trip", "Where to?", "Rome", "Day 1: the Forum."),
        conversation_b=chat("Plan a trip", "How long?", "Rome", "Go in spring."),
        turn=2,
    )
    # when parsed
    (judgment,) = arena.parse(record)
    # then the prompt is the first user turn and each side keeps its first reply and the follow-up
    assert judgment.prompt == (Message("user", "Plan a trip"),)
    assert judgment.response_a_turns == (Message("assistant", "Where to?"), Message("user", "Rome"))
    assert judgment.response_b_turns == (Message("assistant", "How long?"), Message("user", "Rome"))
    assert (judgment.response_a, judgment.response_b) == ("Day 1: the Forum.", "Go in spring.")
    assert judgment.attributes["turn"] == "2"


def test_arena_later_release_judge_hash_and_json_text_conversations() -> None:
    # given a later release's row: judge_hash instead of judge, conversations as JSON text, no safety tags
    record = arena_row(
        judge=...,
        judge_hash="1f3c9a0e77b2",
        conversation_a=orjson.dumps(chat("Hi", "Hello!")).decode(),
        conversation_b=orjson.dumps(chat("Hi", "Go away.")).decode(),
        openai_moderation=...,
        toxic_chat_tag=...,
    )
    # when parsed, then the hash is the annotator and the texts are read as message lists
    (judgment,) = arena.parse(record)
    assert (judgment.prompt, judgment.response_a, judgment.response_b) == (
        (Message("user", "Hi"),),
        "Hello!",
        "Go away.",
    )
    assert judgment.annotator == "1f3c9a0e77b2"
    assert "openai_flagged" not in judgment.attributes


def test_arena_safety_flags_any_toxic_chat_tagger() -> None:
    # given a conversation OpenAI's moderation flagged and one ToxicChat tagger of two flagged
    record = arena_row()
    record["openai_moderation"]["flagged"] = True
    record["toxic_chat_tag"]["t5-large"]["flagged"] = True
    # when parsed, then both flags are true
    (judgment,) = arena.parse(record)
    assert (judgment.attributes["openai_flagged"], judgment.attributes["toxic_chat_flagged"]) == (
        "true",
        "true",
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"winner": "model_c"}, Reason.UNKNOWN_LABEL),
        ({"winner": "bothbad"}, Reason.UNKNOWN_LABEL),
        ({"winner": 1}, Reason.UNKNOWN_LABEL),
        ({"winner": ["model_a"]}, Reason.UNKNOWN_LABEL),
        ({"winner": None}, Reason.NULL_FIELD),
        ({"turn": 2}, Reason.MISSING_FIELD),  # the conversation has one user turn
        ({"turn": 0}, Reason.MALFORMED),
        ({"turn": "two"}, Reason.MALFORMED),
        ({"turn": ...}, Reason.MISSING_FIELD),
        ({"conversation_a": "[{'role': 'user'"}, Reason.MALFORMED),
        ({"conversation_a": '{"role": "user", "content": "Hi"}'}, Reason.MALFORMED),
        ({"conversation_b": chat("What is the capital of Spain?", "Madrid.")}, Reason.PROMPT_MISMATCH),
        ({"conversation_b": chat("What is the capital of France?", " ")}, Reason.EMPTY_TEXT),
        ({"conversation_b": chat("What is the capital of France?")}, Reason.MISSING_FIELD),
        (
            {"conversation_b": [msg("user", "What is the capital of France?"), msg("robot", "Paris")]},
            Reason.UNKNOWN_ROLE,
        ),
        ({"conversation_b": None}, Reason.NULL_FIELD),
        ({"model_a": ...}, Reason.MISSING_FIELD),
        ({"judge": ["arena_user", 7]}, Reason.NON_STRING),
    ],
)
def test_arena_failure_modes(changes: Record, reason: Reason) -> None:
    # given a battle with one defect, when parsed, then it is rejected with that reason
    assert reason_of(arena_row(**changes)) == reason


def test_arena_turn_beyond_the_conversation_names_it() -> None:
    # given a judgment of turn 2 on a one-turn conversation, when parsed, then the detail says so
    with pytest.raises(
        RowRejected, match=r"'conversation_a' has 1 user turn\(s\); the judgment is of turn 2"
    ):
        arena.parse(arena_row(turn=2))


# ---------------------------------------------------------------- MT-Bench

Q1, Q2 = "Compose a travel blog post about Hawaii.", "Rewrite it starting every sentence with A."
A1, A2 = "Aloha! My trip to Hawaii was...", "A trip to Hawaii is..."
B1, B2 = "Hawaii is a US state.", "A state it is."


def mt_row(turn: int, winner: str, judge: Any = "author_0", **changes: Any) -> Record:
    """A judgment in the shape of lmsys/mt_bench_human_judgments (split human, or gpt4_pair)."""
    record: Record = {
        "question_id": 81,
        "model_a": "alpaca-13b",
        "model_b": "gpt-3.5-turbo",
        "winner": winner,
        "judge": judge,
        "conversation_a": chat(Q1, A1, Q2, A2),
        "conversation_b": chat(Q1, B1, Q2, B2),
        "turn": turn,
    }
    record.update(changes)
    return record


def mt_attributes(turn: int, winner: str) -> dict[str, str]:
    return {
        "model_a": "alpaca-13b",
        "model_b": "gpt-3.5-turbo",
        "winner": winner,
        "turn": str(turn),
        "question_id": "81",
    }


def test_mt_bench_turn_1_compares_the_first_exchange() -> None:
    # given a turn-1 judgment on four-message conversations
    # when parsed
    parsed = arena.parse(mt_row(1, "model_a"))
    # then only the first question and the first replies are compared
    assert parsed == [
        Judgment(
            prompt=(Message("user", Q1),),
            response_a=A1,
            response_b=B1,
            label="a",
            annotator="author_0",
            attributes=mt_attributes(1, "model_a"),
        )
    ]


def test_mt_bench_turn_1_does_not_read_the_second_exchange() -> None:
    # given a turn-1 judgment whose conversations differ in the second question
    record = mt_row(1, "model_a", conversation_b=chat(Q1, B1, "Another question?", B2))
    # when parsed, then the second exchange was cut away before the conversations were compared
    (judgment,) = arena.parse(record)
    assert (judgment.prompt, judgment.response_a, judgment.response_b) == ((Message("user", Q1),), A1, B1)


def test_mt_bench_turn_2_compares_the_whole_conversation() -> None:
    # given a turn-2 judgment by an expert
    # when parsed
    parsed = arena.parse(mt_row(2, "model_b", "expert_12"))
    # then the prompt is q1, each side leads with its first reply and q2, and ends with its second reply
    assert parsed == [
        Judgment(
            prompt=(Message("user", Q1),),
            response_a=A2,
            response_b=B2,
            label="b",
            annotator="expert_12",
            response_a_turns=(Message("assistant", A1), Message("user", Q2)),
            response_b_turns=(Message("assistant", B1), Message("user", Q2)),
            attributes=mt_attributes(2, "model_b"),
        )
    ]


@pytest.mark.parametrize("judge", [["gpt-4", "pair-v2"], ("gpt-4", "pair-v2")])
def test_mt_bench_gpt4_pair_judge_is_joined_and_model_labelled(judge: Any) -> None:
    # given the gpt4_pair split's judge, a list (or a tuple), when parsed
    (judgment,) = arena.parse(mt_row(1, "tie", judge))
    # then the annotator is its parts joined with "/" and the judgment is marked model-labelled
    assert (judgment.annotator, judgment.category, judgment.label) == ("gpt-4/pair-v2", MODEL_LABELLED, "tie")


def test_mt_bench_human_judges_are_not_model_labelled() -> None:
    # given an author and an expert, when parsed, then neither has a category
    assert [arena.parse(mt_row(1, "model_a", j))[0].category for j in ("author_3", "expert_0")] == [
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (mt_row(3, "model_a"), Reason.MISSING_FIELD),
        (
            mt_row(2, "tie (bothbad)", conversation_b=chat(Q1, B1, "Another question?", B2)),
            Reason.PROMPT_MISMATCH,
        ),
        (mt_row(2, "model_a", conversation_a=chat(Q1, A1, Q2)), Reason.MISSING_FIELD),
        (mt_row(1, "model_a", conversation_a=chat(Q1, A1, Q2, "")), Reason.EMPTY_TEXT),
        (mt_row(2, "a"), Reason.UNKNOWN_LABEL),
        (mt_row(1, "model_a", judge=["gpt-4", None]), Reason.NON_STRING),
    ],
)
def test_mt_bench_failure_modes(record: Record, reason: Reason) -> None:
    # given an MT-Bench row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(record) == reason


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("record", "name"),
    [
        (arena_row(), "arena"),
        (arena_row(judge=..., judge_hash="1f3c", openai_moderation=..., toxic_chat_tag=...), "arena"),
        # an Arena row with a numeric id is still the Arena: it has language and tstamp
        (arena_row(question_id=42), "arena"),
        (mt_row(1, "model_a"), "mt_bench"),
        (mt_row(2, "tie", ["gpt-4", "pair-v2"]), "mt_bench"),
        # MT-Bench read from CSV: the question id is a digit string
        (mt_row(1, "model_a", question_id="81"), "mt_bench"),
    ],
)
def test_detection_of_arena_and_mt_bench(record: Record, name: str) -> None:
    # given a battle of either release, when detected, then the right format wins
    fmt = detected(record, formats())
    assert fmt is not None and fmt.name == name


@pytest.mark.parametrize(
    "record",
    [
        {"prompt": "Hi", "response_a": "a", "response_b": "b", "label": "a", "model_a": "x", "model_b": "y"},
        {"prompt": "Hi", "chosen": "a", "rejected": "b"},
        {"chosen": chat("Hi", "a"), "rejected": chat("Hi", "b")},
        {"prompt": "Hi", "responses": ["a", "b"], "ranks": [0, 1]},
        {"input": "Hi", "output_1": "a", "output_2": "b", "label": 1},
        # the Arena CSV release has model and winner columns but no conversations
        {"prompt": '["Hi"]', "response_a": '["a"]', "response_b": '["b"]', "model_a": "x", "model_b": "y"}
        | {"winner_model_a": "1", "winner_model_b": "0", "winner_tie": "0"},
    ],
)
def test_other_formats_are_not_battles(record: Record) -> None:
    # given a record of another format, when recognised, then neither battle format claims it
    assert not arena.is_arena(record) and not arena.is_mt_bench(record)


# ---------------------------------------------------------------- ingest


def write_jsonl(path: Path, rows: list[Record]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def pair_rows(lake: Lake) -> dict[frozenset[str], dict[str, Any]]:
    """Every pair row of every split, by its two final replies."""
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    by_replies = {frozenset((row["chosen"], row["rejected"])): row for row in rows}
    assert len(by_replies) == len(rows)
    return by_replies


def ingested(tmp_path: Path, path: Path) -> tuple[Lake, IngestSummary, PairsSummary]:
    """`path` ingested into a new lake and paired (that lake, the summaries); ingesting it again adds
    nothing."""
    lake = Lake(tmp_path / "lake")
    result = ingest(lake, [path], IngestConfig())
    assert result.rows_read == result.accepted + sum(result.rejected.values())
    summary = build_pairs(lake, SplitConfig(), PairsConfig())
    again = ingest(lake, [path], IngestConfig())
    assert again.files_skipped == [str(path)]
    assert (again.rows_read, again.new_comparisons) == (0, 0)
    return lake, result, summary


def swapped(record: Record, winner: str, judge: str) -> Record:
    """The same battle with the sides shown the other way round, judged by another voter."""
    row = copy.deepcopy(record)
    row["model_a"], row["model_b"] = record["model_b"], record["model_a"]
    row["conversation_a"], row["conversation_b"] = record["conversation_b"], record["conversation_a"]
    return row | {"winner": winner, "judge": judge}


def test_arena_ingest_and_pairs(tmp_path: Path) -> None:
    # given 7 Arena rows: a battle, a second voter on it with the sides swapped, a two-turn battle whose
    # first replies differ, a both-bad tie, and 3 bad rows
    france = arena_row()
    rome = arena_row(
        question_id="a1b2c3",
        winner="model_b",
        judge="arena_user_2",
        conversation_a=chat("Plan a trip", "Where to?", "Rome", "Day 1: the Forum."),
        conversation_b=chat("Plan a trip", "How long?", "Rome", "Go in spring."),
        turn=2,
    )
    rows = [
        france,
        swapped(france, "model_a", "arena_user_5"),
        rome,
        arena_row(
            question_id="d4e5f6",
            winner="tie (bothbad)",
            conversation_a=chat("Tell me a joke", "No."),
            conversation_b=chat("Tell me a joke", "I can't."),
        ),
        arena_row(winner="model_c"),  # unknown_label
        arena_row(turn=2),  # missing_field: one user turn only
        arena_row(conversation_b=chat("What is the capital of Spain?", "Madrid.")),  # prompt_mismatch
    ]
    # when ingested and paired (and ingested again: that adds nothing)
    lake, result, summary = ingested(tmp_path, write_jsonl(tmp_path / "raw" / "arena.jsonl", rows))
    # then 4 rows are accepted (4 comparisons), 3 rejected by reason
    assert (result.rows_read, result.accepted, result.new_comparisons, result.duplicates) == (7, 4, 4, 0)
    assert result.rejected == {"unknown_label": 1, "missing_field": 1, "prompt_mismatch": 1}
    # and 3 pairs: Paris with two votes, the trip with its turns, the tie
    assert summary.comparisons == 4
    paris, trip, joke = (
        frozenset(("The capital of France is Paris.", "It is Lyon.")),
        frozenset(("Go in spring.", "Day 1: the Forum.")),
        frozenset(("No.", "I can't.")),
    )
    pairs = pair_rows(lake)
    assert set(pairs) == {paris, trip, joke}
    paris_pair = pairs[paris]
    assert (paris_pair["chosen"], paris_pair["n_votes"], paris_pair["p_chosen"]) == (
        "The capital of France is Paris.",
        2,
        1.0,
    )
    assert (paris_pair["chosen_turns"], paris_pair["rejected_turns"]) == ([], [])
    trip_pair = pairs[trip]
    assert trip_pair["prompt"] == [msg("user", "Plan a trip")]
    assert trip_pair["chosen"] == "Go in spring."
    assert trip_pair["chosen_turns"] == [msg("assistant", "How long?"), msg("user", "Rome")]
    assert trip_pair["rejected_turns"] == [msg("assistant", "Where to?"), msg("user", "Rome")]
    assert (trip_pair["n_votes"], trip_pair["ties"], trip_pair["p_chosen"]) == (1, 0, 1.0)
    assert (pairs[joke]["n_votes"], pairs[joke]["ties"], pairs[joke]["p_chosen"]) == (1, 1, 0.5)


def test_mt_bench_ingest_turns_and_judges(tmp_path: Path) -> None:
    # given 6 MT-Bench rows on one question: two judges on turn 1 (same pair), two on turn 2 (another
    # pair), a turn the conversations do not reach, and an empty reply
    rows = [
        mt_row(1, "model_a", "author_0"),
        mt_row(1, "model_a", "expert_12"),
        mt_row(2, "model_b", "author_0"),
        mt_row(2, "tie", "expert_3"),
        mt_row(3, "model_a", "author_1"),  # missing_field
        mt_row(1, "model_b", "author_2", conversation_b=chat(Q1, "", Q2, B2)),  # empty_text
    ]
    # when ingested and paired (and ingested again: that adds nothing)
    lake, result, _ = ingested(tmp_path, write_jsonl(tmp_path / "raw" / "mt_bench_human.jsonl", rows))
    # then 4 accepted, 2 rejected; 4 comparisons on 2 pairs
    assert (result.rows_read, result.accepted, result.new_comparisons, result.duplicates) == (6, 4, 4, 0)
    assert result.rejected == {"missing_field": 1, "empty_text": 1}
    pairs = pair_rows(lake)
    assert set(pairs) == {frozenset((A1, B1)), frozenset((A2, B2))}
    # and the turn-1 pair has two votes for the first replies, no turns
    turn1 = pairs[frozenset((A1, B1))]
    assert (turn1["chosen"], turn1["n_votes"], turn1["ties"], turn1["p_chosen"]) == (A1, 2, 0, 1.0)
    assert (turn1["prompt"], turn1["chosen_turns"], turn1["rejected_turns"]) == ([msg("user", Q1)], [], [])
    # and the turn-2 pair is another pair on the same prompt: a vote for b and a tie, p 0.75
    turn2 = pairs[frozenset((A2, B2))]
    assert (turn2["chosen"], turn2["n_votes"], turn2["ties"], turn2["p_chosen"]) == (B2, 2, 1, 0.75)
    assert turn2["prompt_id"] == turn1["prompt_id"] and turn2["pair_id"] != turn1["pair_id"]
    assert turn2["chosen_turns"] == [msg("assistant", B1), msg("user", Q2)]
    assert turn2["rejected_turns"] == [msg("assistant", A1), msg("user", Q2)]
