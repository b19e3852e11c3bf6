"""Multi-turn comparisons: two conversations split into a shared prompt and two continuations, transcripts
with role markers read into messages, and the lake storing, naming and pairing such responses."""

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.formats import hh, pairwise
from rmcore.data.formats.conversations import prompt_and_responses, split_shared, transcript
from rmcore.data.identity import response_id, text_id
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake, OldLake, schemas
from rmcore.data.pairs import build_pairs, read_split
from rmcore.data.quality.report import data_report
from rmcore.data.records import Message, Reason, RowRejected


def user(text: str) -> Message:
    return Message("user", text)


def bot(text: str) -> Message:
    return Message("assistant", text)


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


# ---------------------------------------------------------------- split_shared


def test_conversations_differing_from_an_earlier_assistant_turn_split_there() -> None:
    # given two conversations with the same user turns whose first replies already differ
    a = (user("Plan a trip"), bot("Where to?"), user("Rome"), bot("Day 1: the Forum."))
    b = (user("Plan a trip"), bot("How long?"), user("Rome"), bot("Go in spring."))
    # when split
    pair = split_shared(a, b)
    # then the prompt is the first user turn and each side keeps its first reply and the follow-up
    assert pair.prompt == (user("Plan a trip"),)
    assert pair.turns_a == (bot("Where to?"), user("Rome"))
    assert pair.turns_b == (bot("How long?"), user("Rome"))
    assert (pair.reply_a, pair.reply_b) == ("Day 1: the Forum.", "Go in spring.")


def test_conversations_differing_only_in_the_last_reply_have_no_leading_turns() -> None:
    # given conversations that share all but the final reply (whitespace aside)
    a = (user("Hi"), bot("Hello"), user("A joke?"), bot("Knock knock."))
    b = (user("Hi "), bot("Hello"), user("A  joke?"), bot("No."))
    # when split, then the prompt is everything before the final reply (side a's text)
    pair = split_shared(a, b)
    assert pair.prompt == a[:3] and pair.turns_a == pair.turns_b == ()


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        # a user turn differs: two prompts, not two answers to one
        (
            (user("Hi"), bot("x"), user("Rome"), bot("y")),
            (user("Hi"), bot("x"), user("Oslo"), bot("z")),
            "pm",
        ),
        # one conversation is longer
        ((user("Hi"), bot("x")), (user("Hi"), bot("x"), user("More"), bot("y")), "pm"),
        # a conversation ends with the user
        ((user("Hi"), bot("x"), user("Thanks")), (user("Hi"), bot("y"), user("Thanks")), "mf"),
        # no prompt before the replies
        ((bot("x"),), (bot("y"),), "mf"),
    ],
)
def test_conversations_that_are_not_two_answers_to_one_prompt_are_rejected(
    a: tuple[Message, ...], b: tuple[Message, ...], reason: str
) -> None:
    with pytest.raises(RowRejected) as info:
        split_shared(a, b)
    assert info.value.reason == {"pm": Reason.PROMPT_MISMATCH, "mf": Reason.MISSING_FIELD}[reason]


# ---------------------------------------------------------------- transcripts


@pytest.mark.parametrize(
    "text",
    [
        "user: What is 2+2?\nassistant: 4\nuser: And 3+3?\nassistant: 6",
        "Human: What is 2+2?\n\nAssistant: 4\n\nHuman: And 3+3?\n\nAssistant: 6",
        "USER: What is 2+2?\nASSISTANT: 4\nUSER: And 3+3?\nASSISTANT: 6",
        "### Human: What is 2+2?\n### Assistant: 4\n### Human\nAnd 3+3?\n### Assistant\n6",
    ],
)
def test_each_marker_style_reads_as_the_same_messages(text: str) -> None:
    assert transcript(text) == (user("What is 2+2?"), bot("4"), user("And 3+3?"), bot("6"))


@pytest.mark.parametrize(
    "text",
    [
        "The user: asked something",  # text before the first marker
        "Assistant: only a reply",  # no user turn
        "Just an answer.",
    ],
)
def test_text_without_a_transcripts_structure_is_not_one(text: str) -> None:
    assert transcript(text) is None


def test_an_empty_prompt_takes_the_conversation_carried_in_the_responses() -> None:
    # given a labelled row with an empty prompt whose responses are whole conversations
    record = {
        "prompt": "",
        "response_a": "User: Name a fruit\nAssistant: Apple\nUser: Another?\nAssistant: Pear",
        "response_b": "User: Name a fruit\nAssistant: Apple\nUser: Another?\nAssistant: Carrot",
        "label": "a",
    }
    # when parsed, then the shared prefix is the prompt and the final replies the responses
    (judgment,) = pairwise.parse_labelled(record)
    assert judgment.prompt == (user("Name a fruit"), bot("Apple"), user("Another?"))
    assert (judgment.response_a, judgment.response_b) == ("Pear", "Carrot")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Pear", "Carrot"),  # no role markers: an empty prompt and nothing to take it from
        ("User: Name a fruit\nAssistant: Pear", "Carrot"),  # only one side is a conversation
        ("User: \nAssistant: Pear", "User: \nAssistant: Carrot"),  # an empty user turn
    ],
)
def test_an_empty_prompt_without_conversations_is_empty_text(a: str, b: str) -> None:
    with pytest.raises(RowRejected) as info:
        prompt_and_responses({"prompt": " ", "a": a, "b": b}, "prompt", "a", "b")
    assert info.value.reason == Reason.EMPTY_TEXT


# ---------------------------------------------------------------- readers


def test_trl_multi_turn_chosen_and_rejected_are_a_judgment_not_a_prompt_mismatch() -> None:
    # given TRL conversational rows whose conversations differ in their first assistant reply
    chosen = [msg("user", "Plan a trip"), msg("assistant", "Where to?"), msg("user", "Rome")]
    rejected = [msg("user", "Plan a trip"), msg("assistant", "How long?"), msg("user", "Rome")]
    implicit = {
        "chosen": [*chosen, msg("assistant", "Day 1: the Forum.")],
        "rejected": [*rejected, msg("assistant", "Go in spring.")],
    }
    explicit = {"prompt": chosen[:1], "chosen": implicit["chosen"][1:], "rejected": implicit["rejected"][1:]}
    # when parsed, in TRL's implicit and explicit forms
    for record in (implicit, explicit):
        (judgment,) = pairwise.parse_trl(record)
        # then each side's first reply and the follow-up lead to its final reply
        assert judgment.prompt == (user("Plan a trip"),)
        assert judgment.response_a_turns == (bot("Where to?"), user("Rome"))
        assert judgment.response_b_turns == (bot("How long?"), user("Rome"))
        assert (judgment.response_a, judgment.response_b) == ("Day 1: the Forum.", "Go in spring.")


def test_hh_transcripts_differing_in_an_earlier_assistant_turn_are_multi_turn() -> None:
    record = {
        "chosen": "\n\nHuman: Recipe?\n\nAssistant: For what?\n\nHuman: Pancakes\n\nAssistant: Flour.",
        "rejected": "\n\nHuman: Recipe?\n\nAssistant: No.\n\nHuman: Pancakes\n\nAssistant: Still no.",
    }
    (judgment,) = hh.parse(record)
    assert judgment.prompt == (user("Recipe?"),)
    assert judgment.response_a_turns == (bot("For what?"), user("Pancakes"))
    assert judgment.response_b_turns == (bot("No."), user("Pancakes"))


# ---------------------------------------------------------------- identity and the lake


def test_a_response_with_leading_turns_is_named_by_them_and_its_reply() -> None:
    # a single reply keeps its text id (lakes of single-turn data name their responses as before)
    assert response_id((), "Pear") == text_id("Pear")
    # leading turns make another response of the same reply, whitespace aside the same one
    with_turns = response_id((bot("Apple"), user("Another?")), "Pear")
    assert with_turns != text_id("Pear")
    assert with_turns == response_id((bot(" Apple"), user("Another? ")), "Pear\n")
    assert with_turns != response_id((bot("Banana"), user("Another?")), "Pear")


def _trl_row(first_a: str, first_b: str, final_a: str, final_b: str) -> dict[str, Any]:
    opening = msg("user", "Plan a trip")
    return {
        "chosen": [opening, msg("assistant", first_a), msg("user", "Rome"), msg("assistant", final_a)],
        "rejected": [opening, msg("assistant", first_b), msg("user", "Rome"), msg("assistant", final_b)],
    }


def test_multi_turn_pairs_are_stored_voted_and_re_ingested_as_any_other(tmp_path: Path) -> None:
    # given 4 rows: a multi-turn judgment, the same one with the sides swapped (a second vote the other way
    # round, from another annotator), a pair whose final replies are equal but whose first replies differ
    # (different responses, accepted), and two identical conversations (rejected)
    rows = [
        _trl_row("Where to?", "How long?", "Day 1: the Forum.", "Go in spring.") | {"annotator": "u1"},
        _trl_row("How long?", "Where to?", "Go in spring.", "Day 1: the Forum.") | {"annotator": "u2"},
        _trl_row("Where to?", "How long?", "Sure.", "Sure."),
        _trl_row("Where to?", "Where to?", "Sure.", "Sure."),
    ]
    path = tmp_path / "multi.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    lake = Lake(tmp_path / "lake")
    # when ingested and paired
    first = ingest(lake, [path], IngestConfig())
    assert (first.rows_read, first.accepted, first.rejected) == (4, 3, {"identical_responses": 1})
    assert (first.new_comparisons, first.duplicates) == (3, 0)
    build_pairs(lake, SplitConfig(train=1, validation=0, test=0), PairsConfig())
    stored = lake.table("pairs")
    assert stored is not None
    pairs = read_split(lake, "pairs", ("train",))
    # then the pair table has the lake's pair schema as stored, turns included
    assert stored.schema().to_arrow().names == schemas.PAIRS.names
    by_reply = {(r["chosen"], r["rejected"]): r for r in pairs.to_pylist()}
    # and the swapped row is a second vote on the first pair: one vote each way, a conflict
    voted = (
        by_reply.get(("Day 1: the Forum.", "Go in spring."))
        or by_reply[("Go in spring.", "Day 1: the Forum.")]
    )
    assert (voted["n_votes"], voted["p_chosen"], voted["conflict"]) == (2, 0.5, True)
    assert {m["content"] for m in voted["chosen_turns"] + voted["rejected_turns"]} == {
        "Where to?",
        "How long?",
        "Rome",
    }
    # and equal final replies after different turns are a pair of their own
    same_reply = by_reply[("Sure.", "Sure.")]
    assert [m["content"] for m in same_reply["chosen_turns"]] == ["Where to?", "Rome"]
    assert [m["content"] for m in same_reply["rejected_turns"]] == ["How long?", "Rome"]
    # and the data report counts the two multi-turn pairs
    assert data_report(lake)["multi_turn_pairs"] == 2
    # and ingesting the file again adds nothing
    again = ingest(lake, [path], IngestConfig())
    assert again.new_comparisons == 0 and again.files_skipped == [str(path)]


def test_a_lake_of_the_manifest_layout_is_refused_with_the_command_that_migrates_it(tmp_path: Path) -> None:
    # given a lake of Parquet parts and manifest.json (schema 2, before Delta) and a label file
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "manifest.json").write_text('{"schema_version": 2, "files": []}')
    path = tmp_path / "multi.jsonl"
    path.write_bytes(orjson.dumps(_trl_row("Where to?", "How long?", "Day 1.", "Spring.")) + b"\n")
    # when it is ingested into or paired, then both are refused with the command that migrates it
    migrate = re.escape(f"rmcore lake migrate --lake {lake.uri}")
    with pytest.raises(OldLake, match=migrate):
        ingest(lake, [path], IngestConfig())
    with pytest.raises(OldLake, match=migrate):
        build_pairs(lake, SplitConfig(), PairsConfig())
    # and nothing was written beside the manifest: no staging, no Delta table
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["manifest.json"]
