"""Source formats: each parser on a valid record and on its failure modes; detection picks the format."""

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rmcore.config import IngestConfig
from rmcore.data.formats import (
    FORMAT_NAMES,
    detected,
    formats,
    hh,
    llmbar,
    oasst,
    pairwise,
    pandalm,
    prometheus,
    ranking,
    tulu,
)
from rmcore.data.records import Judgment, Message, Ranking, Reason, RowRejected

Record = dict[str, Any]


def reason_of(parse: Callable[[Mapping[str, Any]], object], record: Record) -> Reason:
    """The reason `parse` rejects `record` with (fails the test when it accepts it)."""
    with pytest.raises(RowRejected) as info:
        parse(record)
    return info.value.reason


def user(text: str) -> tuple[Message, ...]:
    return (Message("user", text),)


# ---------------------------------------------------------------- labelled


def labelled(**changes: Any) -> Record:
    record: Record = {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5", "label": "a"}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_labelled_valid_with_optional_fields() -> None:
    # given a labelled row with annotator (a number), margin, category and source
    record = labelled(label=" B ", annotator=7, margin="2", category="math", source="team-x")
    # when parsed
    parsed = pairwise.parse_labelled(record)
    # then one judgment carries every field, label and annotator normalized
    assert parsed == [Judgment(user("What is 2+2?"), "4", "5", "b", 2.0, "7", "math", "team-x")]


@pytest.mark.parametrize(("value", "label"), [("a", "a"), ("B", "b"), ("Tie", "tie"), (" tie ", "tie")])
def test_labelled_labels(value: str, label: str) -> None:
    # given each accepted spelling of a label, when parsed, then it maps to a, b or tie
    assert pairwise.parse_labelled(labelled(label=value))[0].label == label


def test_labelled_optional_fields_absent_or_blank_are_none() -> None:
    # given blank optional fields, when parsed, then they are None
    (judgment,) = pairwise.parse_labelled(labelled(annotator="  ", margin="", category=None))
    assert (judgment.annotator, judgment.strength, judgment.category, judgment.source) == (None,) * 4


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (labelled(response_b=...), Reason.MISSING_FIELD),
        (labelled(label=...), Reason.MISSING_FIELD),
        (labelled(response_a=None), Reason.NULL_FIELD),
        (labelled(label=None), Reason.NULL_FIELD),
        (labelled(response_a=5), Reason.NON_STRING),
        (labelled(response_b=["5"]), Reason.NON_STRING),
        (labelled(response_a=""), Reason.EMPTY_TEXT),
        (labelled(response_b=" \n\t "), Reason.EMPTY_TEXT),
        (labelled(prompt="   "), Reason.EMPTY_TEXT),
        (labelled(label="c"), Reason.UNKNOWN_LABEL),
        (labelled(label="a>b"), Reason.UNKNOWN_LABEL),
        (labelled(label=1), Reason.UNKNOWN_LABEL),
        (labelled(margin="lots"), Reason.NON_STRING),
        (labelled(margin=True), Reason.NON_STRING),
        (labelled(margin="nan"), Reason.NON_STRING),
        (labelled(margin=float("inf")), Reason.NON_STRING),
        (labelled(annotator={"id": 1}), Reason.NON_STRING),
        (labelled(prompt=[]), Reason.NON_STRING),
        (labelled(prompt=["hi"]), Reason.NON_STRING),
        (labelled(prompt=[{"role": "user"}]), Reason.MISSING_FIELD),
        (labelled(prompt=[{"role": "user", "content": None}]), Reason.NULL_FIELD),
        (labelled(prompt=[{"role": "robot", "content": "hi"}]), Reason.UNKNOWN_ROLE),
        (labelled(prompt=[{"role": 1, "content": "hi"}]), Reason.NON_STRING),
    ],
)
def test_labelled_failure_modes(record: Record, reason: Reason) -> None:
    # given a labelled row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(pairwise.parse_labelled, record) == reason


def test_labelled_prompt_as_messages_with_role_aliases() -> None:
    # given a message-list prompt using the aliases human / gpt / prompter
    prompt = [
        {"role": "System", "content": "Be brief."},
        {"role": "human", "content": "Hi"},
        {"role": "gpt", "content": "Hello"},
        {"role": "prompter", "content": "2+2?"},
    ]
    # when parsed
    (judgment,) = pairwise.parse_labelled(labelled(prompt=prompt))
    # then roles are the standard ones
    assert judgment.prompt == (
        Message("system", "Be brief."),
        Message("user", "Hi"),
        Message("assistant", "Hello"),
        Message("user", "2+2?"),
    )


# ---------------------------------------------------------------- TRL


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def test_trl_explicit_text() -> None:
    # given TRL's explicit form with plain text, when parsed, then chosen is response a, label a
    parsed = pairwise.parse_trl({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "margin": 1})
    assert parsed == [Judgment(user("Hi"), "Hello!", "Go away.", "a", 1.0)]


def test_trl_explicit_message_lists() -> None:
    # given a message-list prompt and single assistant replies
    record = {
        "prompt": [msg("system", "Be kind."), msg("user", "Hi")],
        "chosen": [msg("assistant", "Hello!")],
        "rejected": [msg("assistant", "Go away.")],
    }
    # when parsed, then the prompt keeps both messages and the replies are the texts
    (judgment,) = pairwise.parse_trl(record)
    assert judgment.prompt == (Message("system", "Be kind."), Message("user", "Hi"))
    assert (judgment.response_a, judgment.response_b, judgment.label) == ("Hello!", "Go away.", "a")


def test_trl_explicit_continuations_extend_the_prompt() -> None:
    # given chosen and rejected that both continue the prompt with the same extra turns
    extra = [msg("assistant", "Which city?"), msg("user", "Paris")]
    record = {
        "prompt": "Weather?",
        "chosen": [*extra, msg("assistant", "Sunny.")],
        "rejected": [*extra, msg("assistant", "No idea.")],
    }
    # when parsed, then the shared turns join the prompt
    (judgment,) = pairwise.parse_trl(record)
    assert judgment.prompt == (
        Message("user", "Weather?"),
        Message("assistant", "Which city?"),
        Message("user", "Paris"),
    )
    assert (judgment.response_a, judgment.response_b) == ("Sunny.", "No idea.")


def test_trl_implicit_conversations_split_into_prompt_and_last_reply() -> None:
    # given TRL's implicit form: two full conversations with one shared context
    context = [msg("user", "Hi"), msg("assistant", "Hello"), msg("user", "Tell a joke")]
    record = {
        "chosen": [*context, msg("assistant", "Why did the chicken...")],
        "rejected": [*context, msg("assistant", "No.")],
    }
    # when parsed
    (judgment,) = pairwise.parse_trl(record)
    # then the prompt is the shared context and the replies are the last assistant turns
    assert judgment.prompt == (
        Message("user", "Hi"),
        Message("assistant", "Hello"),
        Message("user", "Tell a joke"),
    )
    assert (judgment.response_a, judgment.response_b, judgment.label) == (
        "Why did the chicken...",
        "No.",
        "a",
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"prompt": "Hi", "chosen": "Hello"}, Reason.MISSING_FIELD),
        ({"prompt": "Hi", "chosen": None, "rejected": "x"}, Reason.NULL_FIELD),
        ({"prompt": None, "chosen": "a", "rejected": "x"}, Reason.NULL_FIELD),
        ({"prompt": "Hi", "chosen": 3, "rejected": "x"}, Reason.NON_STRING),
        ({"prompt": "Hi", "chosen": "  ", "rejected": "x"}, Reason.EMPTY_TEXT),
        # explicit: chosen list ends with a user turn
        ({"prompt": "Hi", "chosen": [msg("user", "a")], "rejected": [msg("assistant", "b")]}, None),
        # explicit: the two continuations differ before the reply
        (
            {
                "prompt": "Hi",
                "chosen": [msg("user", "x"), msg("assistant", "a")],
                "rejected": [msg("user", "y"), msg("assistant", "b")],
            },
            Reason.PROMPT_MISMATCH,
        ),
        # implicit: different contexts
        (
            {
                "chosen": [msg("user", "Hi"), msg("assistant", "a")],
                "rejected": [msg("user", "Yo"), msg("assistant", "b")],
            },
            Reason.PROMPT_MISMATCH,
        ),
        # implicit: no prompt before the reply
        ({"chosen": [msg("assistant", "a")], "rejected": [msg("assistant", "b")]}, Reason.MISSING_FIELD),
        # implicit: plain text is one user message, so there is no assistant reply
        ({"chosen": "a", "rejected": "b"}, Reason.MISSING_FIELD),
        (
            {
                "chosen": [msg("user", "Hi"), msg("wizard", "a")],
                "rejected": [msg("user", "Hi"), msg("assistant", "b")],
            },
            Reason.UNKNOWN_ROLE,
        ),
        (
            {
                "chosen": [msg("user", "Hi"), msg("assistant", "")],
                "rejected": [msg("user", "Hi"), msg("assistant", "b")],
            },
            Reason.EMPTY_TEXT,
        ),
    ],
)
def test_trl_failure_modes(record: Record, reason: Reason | None) -> None:
    # given a TRL row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(pairwise.parse_trl, record) == (reason or Reason.MISSING_FIELD)


# ---------------------------------------------------------------- HH

HH_CHOSEN = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?"
HH_REJECTED = "\n\nHuman: Hi there\n\nAssistant: Go away."


def test_hh_single_turn() -> None:
    # given one HH transcript pair, when parsed, then the prompt is the Human turn
    parsed = hh.parse({"chosen": HH_CHOSEN, "rejected": HH_REJECTED})
    assert parsed == [Judgment(user("Hi there"), "Hello! How can I help?", "Go away.", "a")]


def test_hh_multi_turn_prompt_is_the_shared_prefix() -> None:
    # given a multi-turn transcript pair that differs only in the last Assistant turn
    prefix = "\n\nHuman: Recipe?\n\nAssistant: For what?\n\nHuman: Pancakes"
    record = {
        "chosen": prefix + "\n\nAssistant: Flour, eggs, milk.",
        "rejected": prefix + "\n\nAssistant: No.",
    }
    # when parsed
    (judgment,) = hh.parse(record)
    # then the prompt holds the three earlier turns
    assert judgment.prompt == (
        Message("user", "Recipe?"),
        Message("assistant", "For what?"),
        Message("user", "Pancakes"),
    )
    assert (judgment.response_a, judgment.response_b) == ("Flour, eggs, milk.", "No.")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        # the transcripts differ before the last Assistant turn
        (
            {"chosen": HH_CHOSEN, "rejected": "\n\nHuman: Bye\n\nAssistant: Go away."},
            Reason.PROMPT_MISMATCH,
        ),
        # the final reply is empty or whitespace
        ({"chosen": "\n\nHuman: Hi there\n\nAssistant:", "rejected": HH_REJECTED}, Reason.EMPTY_TEXT),
        ({"chosen": HH_CHOSEN, "rejected": "\n\nHuman: Hi there\n\nAssistant:   "}, Reason.EMPTY_TEXT),
        # an empty Human turn in the prompt
        (
            {"chosen": "\n\nHuman: \n\nAssistant: a", "rejected": "\n\nHuman: \n\nAssistant: b"},
            Reason.EMPTY_TEXT,
        ),
        ({"chosen": "Preamble" + HH_CHOSEN, "rejected": HH_REJECTED}, Reason.MALFORMED),
        # the transcript ends with a Human turn
        ({"chosen": HH_CHOSEN + "\n\nHuman: Thanks", "rejected": HH_REJECTED}, Reason.MISSING_FIELD),
        ({"chosen": HH_CHOSEN, "rejected": None}, Reason.NULL_FIELD),
        ({"chosen": HH_CHOSEN}, Reason.MISSING_FIELD),
        ({"chosen": HH_CHOSEN, "rejected": 1}, Reason.NON_STRING),
    ],
)
def test_hh_failure_modes(record: Record, reason: Reason) -> None:
    # given an HH row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(hh.parse, record) == reason


# ---------------------------------------------------------------- ranking


def ranked(**changes: Any) -> Record:
    record: Record = {"prompt": "Name a colour", "responses": ["red", "blue", "green"], "ranks": [0, 2, 1]}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_ranking_valid() -> None:
    # given K = 3 responses with ranks and an annotator, when parsed, then one ranking
    parsed = ranking.parse(ranked(annotator="u1", category="colours"))
    assert parsed == [Ranking(user("Name a colour"), ("red", "blue", "green"), (0, 2, 1), "u1", "colours")]


def test_ranking_equal_ranks_are_allowed() -> None:
    # given a tie in the ranks, when parsed, then it is kept as is
    assert ranking.parse(ranked(ranks=[0, 0, 1]))[0].ranks == (0, 0, 1)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (ranked(ranks=[0, 1]), Reason.INVALID_RANKS),
        (ranked(ranks=[0, 1, 2, 3]), Reason.INVALID_RANKS),
        (ranked(ranks=[0, 1.5, 2]), Reason.INVALID_RANKS),
        (ranked(ranks=[0, "1", 2]), Reason.INVALID_RANKS),
        (ranked(ranks=[True, False, 0]), Reason.INVALID_RANKS),
        (ranked(ranks="021"), Reason.INVALID_RANKS),
        (ranked(ranks=None), Reason.NULL_FIELD),
        (ranked(ranks=...), Reason.MISSING_FIELD),
        (ranked(responses=["red"], ranks=[0]), Reason.INVALID_RANKS),
        (ranked(responses="red, blue"), Reason.INVALID_RANKS),
        (ranked(responses=["red", "", "green"]), Reason.EMPTY_TEXT),
        (ranked(responses=["red", 2, "green"]), Reason.NON_STRING),
        (ranked(prompt=...), Reason.MISSING_FIELD),
    ],
)
def test_ranking_failure_modes(record: Record, reason: Reason) -> None:
    # given a ranking row with one defect, when parsed, then it is rejected with that reason
    assert reason_of(ranking.parse, record) == reason


# ---------------------------------------------------------------- OASST


def node(role: str, text: str, rank: int | None = None, replies: list[Record] | None = None, **extra: Any):
    return {"role": role, "text": text, "rank": rank, "replies": replies or [], **extra}


def oasst_tree(synthetic: bool = False) -> Record:
    """A tree with two ranked groups: the root's replies, and replies to a follow-up question."""
    follow_up = node(
        "prompter",
        "And in winter?",
        rank=0,
        replies=[node("assistant", "Cold.", rank=1), node("assistant", "Snowy and cold.", rank=0)],
    )
    return {
        "message_tree_id": "t1",
        "prompt": node(
            "prompter",
            "What is the weather like in Oslo?",
            lang="en",
            synthetic=synthetic,
            replies=[
                node("assistant", "Mild in summer.", rank=0, replies=[follow_up]),
                node("assistant", "It rains.", rank=1),
                node("assistant", "Unranked reply."),
                node("assistant", "Deleted reply.", rank=2, deleted=True),
            ],
        ),
    }


def test_oasst_nested_ranked_groups() -> None:
    # given a tree whose root and a follow-up each have two ranked replies (plus unranked/deleted)
    # when parsed
    parsed = oasst.parse(oasst_tree())
    # then one ranking per group, the nested one with the conversation down to the follow-up
    assert parsed == [
        Ranking(
            user("What is the weather like in Oslo?"),
            ("Mild in summer.", "It rains."),
            (0, 1),
            category="en",
        ),
        Ranking(
            (
                Message("user", "What is the weather like in Oslo?"),
                Message("assistant", "Mild in summer."),
                Message("user", "And in winter?"),
            ),
            ("Cold.", "Snowy and cold."),
            (1, 0),
        ),
    ]


def test_oasst_synthetic_tree_is_quarantined_unless_asked_for() -> None:
    # given a synthetic tree
    tree = oasst_tree(synthetic=True)
    # when parsed by default, then it is quarantined as synthetic_skipped
    assert reason_of(oasst.parse, tree) == Reason.SYNTHETIC
    assert reason_of(formats()["oasst"].parse, tree) == Reason.SYNTHETIC
    # when synthetic trees are included, then its two rankings come out
    assert len(formats(IngestConfig(include_synthetic=True))["oasst"].parse(tree)) == 2


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"prompt": node("prompter", "Q", replies=[node("assistant", "A", rank=0)])}, Reason.NO_JUDGMENT),
        ({"prompt": node("prompter", "Q")}, Reason.NO_JUDGMENT),
        ({"prompt": "Q"}, Reason.NOT_AN_OBJECT),
        ({"prompt": None}, Reason.NULL_FIELD),
        (
            {"prompt": node("alien", "Q", replies=[node("assistant", "A", 0), node("assistant", "B", 1)])},
            Reason.UNKNOWN_ROLE,
        ),
        (
            {"prompt": node("prompter", "Q", replies=[node("assistant", " ", 0), node("assistant", "B", 1)])},
            Reason.EMPTY_TEXT,
        ),
    ],
)
def test_oasst_failure_modes(record: Record, reason: Reason) -> None:
    # given a tree with one defect, when parsed, then it is rejected with that reason
    assert reason_of(oasst.parse, record) == reason


def test_oasst_non_integer_rank_is_rejected() -> None:
    # given a reply whose rank is not an integer
    tree = {"prompt": node("prompter", "Q", replies=[node("assistant", "A", "x"), node("assistant", "B", 0)])}
    # when parsed, then the row is rejected (invalid_ranks), not an uncaught ValueError
    assert reason_of(oasst.parse, tree) == Reason.INVALID_RANKS


def test_oasst_reply_that_is_not_an_object_is_rejected() -> None:
    # given a reply that is a bare string
    tree = {"prompt": node("prompter", "Q", replies=["junk", node("assistant", "B", 0)])}
    # when parsed, then the row is rejected (not_an_object), not an uncaught AttributeError
    assert reason_of(oasst.parse, tree) == Reason.NOT_AN_OBJECT


# ---------------------------------------------------------------- PandaLM


def panda_row(**changes: Any) -> Record:
    record: Record = {
        "instruction": "Translate to English.",
        "input": "bonjour",
        "response1": "hello",
        "response2": "goodbye",
        "annotator1": 1,
        "annotator2": 2,
        "annotator3": 0,
        "motivation_app": "translation",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_pandalm_votes_one_judgment_per_annotator() -> None:
    # given votes 1, 2 and 0 from three annotators
    # when parsed
    parsed = pandalm.parse(panda_row())
    # then three judgments: a, b and tie, annotated by column name, prompt = instruction + input
    prompt = user("Translate to English.\n\nbonjour")
    assert parsed == [
        Judgment(prompt, "hello", "goodbye", "a", None, "annotator1", "translation"),
        Judgment(prompt, "hello", "goodbye", "b", None, "annotator2", "translation"),
        Judgment(prompt, "hello", "goodbye", "tie", None, "annotator3", "translation"),
    ]


def test_pandalm_empty_input_and_missing_annotator_column() -> None:
    # given no input text and only two annotator columns
    parsed = pandalm.parse(panda_row(input="", annotator3=...))
    # then the prompt is the instruction alone and there are two judgments
    assert [j.prompt for j in parsed] == [user("Translate to English.")] * 2
    assert [j.label for j in parsed] == ["a", "b"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (panda_row(annotator2=3), Reason.UNKNOWN_LABEL),
        (panda_row(annotator2=-1), Reason.UNKNOWN_LABEL),
        (panda_row(annotator1="one"), Reason.UNKNOWN_LABEL),
        (panda_row(annotator1=True), Reason.UNKNOWN_LABEL),
        (panda_row(annotator3=None), Reason.NULL_FIELD),
        (panda_row(response2=...), Reason.MISSING_FIELD),
        (panda_row(instruction=" "), Reason.EMPTY_TEXT),
    ],
)
def test_pandalm_failure_modes(record: Record, reason: Reason) -> None:
    # given a PandaLM row with one defect, when parsed, then the whole row is rejected
    assert reason_of(pandalm.parse, record) == reason


# ---------------------------------------------------------------- Tulu


def tulu_row(preference: Any) -> Record:
    return {
        "prompt": "Write a limerick.",
        "completion_a": "There once was...",
        "completion_b": "Roses are red...",
        "preference": preference,
        "evaluator": "eval-3",
        "instance_id": 42,
    }


@pytest.mark.parametrize(
    ("preference", "label", "strength"),
    [
        ("a-is-better", "a", 2.0),
        ("a-is-slightly-better", "a", 1.0),
        ("tie", "tie", None),
        ("b-is-slightly-better", "b", 1.0),
        ("b-is-better", "b", 2.0),
    ],
)
def test_tulu_graded_preference(preference: str, label: str, strength: float | None) -> None:
    # given a graded preference, when parsed, then it is a label and a strength
    (judgment,) = tulu.parse(tulu_row(preference))
    assert judgment == Judgment(
        user("Write a limerick."), "There once was...", "Roses are red...", label, strength, "eval-3", "42"
    )


@pytest.mark.parametrize(
    ("preference", "reason"),
    [("a-is-much-better", Reason.UNKNOWN_LABEL), ("A", Reason.UNKNOWN_LABEL), (None, Reason.NULL_FIELD)],
)
def test_tulu_failure_modes(preference: Any, reason: Reason) -> None:
    # given an unknown or null preference, when parsed, then it is rejected
    assert reason_of(tulu.parse, tulu_row(preference)) == reason


def test_tulu_unhashable_preference_is_rejected() -> None:
    # given a preference that is a list, when parsed, then it is rejected as unknown_label
    assert reason_of(tulu.parse, tulu_row(["tie"])) == Reason.UNKNOWN_LABEL


# ---------------------------------------------------------------- LLMBar


def llmbar_row(label: Any) -> Record:
    return {"input": "Sort 3,1,2", "output_1": "1,2,3", "output_2": "3,2,1", "label": label}


@pytest.mark.parametrize(("value", "label"), [(1, "a"), (2, "b")])
def test_llmbar_labels(value: int, label: str) -> None:
    # given label 1 or 2, when parsed, then output_1 or output_2 is preferred
    assert llmbar.parse(llmbar_row(value)) == [Judgment(user("Sort 3,1,2"), "1,2,3", "3,2,1", label)]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (3, Reason.UNKNOWN_LABEL),
        (0, Reason.UNKNOWN_LABEL),
        (True, Reason.UNKNOWN_LABEL),
        (None, Reason.NULL_FIELD),
    ],
)
def test_llmbar_failure_modes(value: Any, reason: Reason) -> None:
    # given a label other than 1 or 2, when parsed, then it is rejected
    assert reason_of(llmbar.parse, llmbar_row(value)) == reason


def test_llmbar_unhashable_label_is_rejected() -> None:
    # given a label that is a list, when parsed, then it is rejected as unknown_label
    assert reason_of(llmbar.parse, llmbar_row([1])) == Reason.UNKNOWN_LABEL


# ---------------------------------------------------------------- Prometheus


def grading_prompt(task: str, response: str) -> str:
    return (
        "###Task Description:\nAn instruction, a response to evaluate and a score rubric.\n\n"
        f"###The instruction to evaluate:\n{task}\n\n"
        f"###Response to evaluate:\n{response}\n\n"
        "###Score Rubrics:\n[Is the response a haiku?]\n\n###Feedback: "
    )


def test_prometheus_headers_parsed() -> None:
    # given two grading prompts of one task
    record = {
        "source": "prometheus-pairs",
        "chosen_instruction": grading_prompt("Write a haiku.", "An old silent pond\nA frog jumps in"),
        "rejected_instruction": grading_prompt("Write a haiku.", "Haikus are poems."),
    }
    # when parsed, then the task is the prompt and the embedded responses are chosen / rejected
    assert prometheus.parse(record) == [
        Judgment(
            user("Write a haiku."),
            "An old silent pond\nA frog jumps in",
            "Haikus are poems.",
            "a",
            source="prometheus-pairs",
        )
    ]


@pytest.mark.parametrize(
    ("chosen", "rejected", "reason"),
    [
        (
            grading_prompt("Write a haiku.", "x"),
            grading_prompt("Write a sonnet.", "y"),
            Reason.PROMPT_MISMATCH,
        ),
        ("no headers here", grading_prompt("Write a haiku.", "y"), Reason.MALFORMED),
        (
            "###Response to evaluate:\nx\n###The instruction to evaluate:\nt\n###Score Rubrics:\n",
            grading_prompt("t", "y"),
            Reason.MALFORMED,
        ),
        (grading_prompt("Write a haiku.", "   "), grading_prompt("Write a haiku.", "y"), Reason.EMPTY_TEXT),
        (grading_prompt("", "x"), grading_prompt("", "y"), Reason.EMPTY_TEXT),
        (None, grading_prompt("t", "y"), Reason.NULL_FIELD),
    ],
)
def test_prometheus_failure_modes(chosen: Any, rejected: str, reason: Reason) -> None:
    # given a pair of grading prompts with one defect, when parsed, then it is rejected
    record = {"chosen_instruction": chosen, "rejected_instruction": rejected}
    assert reason_of(prometheus.parse, record) == reason


# ---------------------------------------------------------------- detection

BATTLE: Record = {
    "question_id": 81,
    "model_a": "alpaca-13b",
    "model_b": "gpt-3.5-turbo",
    "winner": "tie (bothbad)",
    "judge": "author_0",
    "conversation_a": [msg("user", "Hi"), msg("assistant", "Hello!")],
    "conversation_b": [msg("user", "Hi"), msg("assistant", "Go away.")],
    "turn": 1,
}
"""An MT-Bench judgment; with a hex id, a language and a time stamp it is a Chatbot Arena battle."""

SHAPES: dict[str, Record] = {
    "oasst": oasst_tree(),
    "pandalm": panda_row(),
    "tulu": tulu_row("tie"),
    "prometheus": {
        "chosen_instruction": grading_prompt("t", "x"),
        "rejected_instruction": grading_prompt("t", "y"),
    },
    "llmbar": llmbar_row(1),
    "mt_bench": BATTLE,
    "arena": BATTLE | {"question_id": "58210e39b3fd", "language": "English", "tstamp": 1682351591.1322},
    "arena_csv": {
        "id": "30192",
        "model_a": "gpt-4-1106-preview",
        "model_b": "gpt-4-0613",
        "prompt": '["Hi"]',
        "response_a": '["Hello!"]',
        "response_b": '["Go away."]',
        "winner_model_a": "1",
        "winner_model_b": "0",
        "winner_tie": "0",
    },
    "helpsteer3": {
        "domain": "general",
        "language": "english",
        "context": [msg("user", "Hi")],
        "response1": "Hello!",
        "response2": "Go away.",
        "overall_preference": -2,
        "individual_preference": [{"score": -2, "reasoning": "@Response 1 is polite."}],
    },
    "nectar": {
        "prompt": "\n\nHuman: Hi\n\nAssistant:",
        "answers": [
            {"answer": "Hello!", "model": "gpt-4", "rank": 1.0},
            {"answer": "Go away.", "model": "llama-2-7b-chat", "rank": 2.0},
        ],
        "turns": 1,
        "num_responses": 2,
        "source": ["anthropic-hh"],
        "good_natured": True,
    },
    "ultrafeedback": {
        "source": "sharegpt",
        "instruction": "Hi",
        "models": ["gpt-4", "alpaca-7b"],
        "completions": [
            {"model": "gpt-4", "fine-grained_score": 4.75, "overall_score": 8.0, "response": "Hello!"},
            {"model": "alpaca-7b", "fine-grained_score": 1.5, "overall_score": 3.0, "response": "Go away."},
        ],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    },
    "shp": {"post_id": "p1", "history": "A post?", "human_ref_A": "x", "human_ref_B": "y", "labels": 1},
    "safe_rlhf": {
        "prompt": "Hi",
        "response_0": "x",
        "response_1": "y",
        "better_response_id": 0,
        "safer_response_id": 1,
    },
    "summarize": {"info": {"post": "A post."}, "summaries": [{"text": " x"}, {"text": " y"}], "choice": 0},
    "webgpt": {
        "question": {"full_text": "Why?"},
        "answer_0": "x",
        "answer_1": "y",
        "score_0": 1,
        "score_1": -1,
    },
    "ranking": ranked(),
    "hh": {"chosen": HH_CHOSEN, "rejected": HH_REJECTED},
    "labelled": labelled(),
    "trl": {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
}


def test_every_format_has_a_detection_case() -> None:
    # given the known formats, then each has a shape below, in detection order
    assert tuple(SHAPES) == FORMAT_NAMES


@pytest.mark.parametrize("name", list(SHAPES))
def test_detection_picks_the_format_and_its_parser_accepts_the_record(name: str) -> None:
    # given a typical record of one format
    record = SHAPES[name]
    # when detected
    fmt = detected(record, formats())
    # then it is that format, and its parser accepts the record
    assert fmt is not None
    assert fmt.name == name
    assert fmt.parse(record)


@pytest.mark.parametrize("name", list(SHAPES))
def test_no_other_recogniser_claims_a_formats_typical_record(name: str) -> None:
    # given a typical record of one format, then every other format's recogniser refuses it, so
    # detection does not depend on the order for it
    claimed = [f.name for f in formats().values() if f.name != name and f.matches(SHAPES[name])]
    assert claimed == []


@pytest.mark.parametrize(
    ("record", "name"),
    [
        # TRL implicit: message lists, no prompt
        (
            {
                "chosen": [msg("user", "Hi"), msg("assistant", "a")],
                "rejected": [msg("user", "Hi"), msg("assistant", "b")],
            },
            "trl",
        ),
        # TRL with extra columns that other formats use
        ({"prompt": "Hi", "chosen": "a", "rejected": "b", "label": "a"}, "trl"),
        # a labelled row with an extra `responses` column is still labelled (no ranks)
        ({**labelled(), "responses": ["x"]}, "labelled"),
        # a ranking whose prompt is a plain string, not an OASST tree
        (ranked(prompt="plain"), "ranking"),
        # HH text with an extra column
        ({"chosen": HH_CHOSEN, "rejected": HH_REJECTED, "id": 3}, "hh"),
    ],
)
def test_detection_edge_shapes(record: Record, name: str) -> None:
    # given a record whose shape sits between formats, when detected, then the right one wins
    fmt = detected(record, formats())
    assert fmt is not None
    assert fmt.name == name


def test_detection_of_an_unknown_shape_is_none() -> None:
    # given a record no format knows, when detected, then None
    assert detected({"question": "q", "answer": "a"}, formats()) is None
