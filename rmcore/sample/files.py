"""The sample's four files, row by row: good rows, planted duplicates and bad rows.

Each builder draws its pairs, votes, rankings or transcripts from the sample's text and
returns the file's bytes with its manifest entry and the counts of what it planted.
"""

import csv
import io
import json
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rmcore.data.records import Reason
from rmcore.sample.layout import gzipped, interleave, json_line, jsonl_bytes
from rmcore.sample.manifest import (
    BAD_ROWS,
    HH_FILE,
    RANKINGS_FILE,
    TRL_FILE,
    VOTES_FILE,
    SampleFile,
    TrlCounts,
    VoteCounts,
    sample_file,
)
from rmcore.sample.text import (
    FOLLOW_UPS,
    Prompt,
    answer,
    close_pair,
    make_pair,
    ranked_responses,
)

VOTES_HEADER = ("prompt", "response_a", "response_b", "label", "annotator", "category")
ANNOTATORS = ("ann1", "ann2", "ann3", "ann4", "ann5")
CARELESS = "ann5"
"""The annotator who casts every dissenting vote (the minority of a 2-1 majority, one side of each 1-1
conflict), so that the data report ranks one annotator last and Dawid-Skene learns to weigh it down."""

TRL_MESSAGE_SHARE = 0.04
"""Share of TRL rows whose prompt and responses are message lists."""
TRL_DUPLICATE_SHARE = 0.08
"""Share of TRL lines that repeat an earlier line (verbatim, whitespace or NFD variant)."""
VOTE_FLIP_SHARE = 0.06
"""Share of a/b votes that arrive a second time with the responses swapped."""
HH_MULTI_TURN_SHARE = 0.3
"""Share of HH conversations with an earlier Human/Assistant exchange."""
VOTE_KINDS = {"single": 0.6, "unanimous": 0.1, "majority": 0.1, "conflict": 0.1, "tie": 0.1}
"""How often a voted pair gets each voting pattern."""

SYSTEM_PROMPT = "You are a helpful assistant."
NAIVE_NOTE = "It is naïve to think there is only one right way."
"""Appended to the invalid-UTF-8 row so that it holds a character to mis-encode."""


@dataclass(frozen=True)
class Built:
    """A file's bytes and its manifest entry."""

    data: bytes
    file: SampleFile


def messages(role: str, content: str) -> list[dict[str, str]]:
    """A one-message list."""
    return [{"role": role, "content": content}]


def trl_row(prompt: Prompt, chosen: str, rejected: str) -> dict[str, Any]:
    """A TRL row with plain-text fields."""
    return {
        "prompt": prompt.text,
        "chosen": chosen,
        "rejected": rejected,
        "category": prompt.topic.name,
    }


def trl_message_row(rng: random.Random, prompt: Prompt, chosen: str, rejected: str) -> dict[str, Any]:
    """A TRL row whose prompt (sometimes after a system message) and responses are messages."""
    system = messages("system", SYSTEM_PROMPT) if rng.random() < 0.3 else []
    return {
        "prompt": system + messages("user", prompt.text),
        "chosen": messages("assistant", chosen),
        "rejected": messages("assistant", rejected),
        "category": prompt.topic.name,
    }


def with_irregular_whitespace(row: dict[str, Any]) -> dict[str, Any]:
    """The row with a trailing space on the prompt and a doubled and trailing space in chosen."""
    chosen = row["chosen"].replace(" ", "  ", 1) + " "
    return row | {"prompt": row["prompt"] + " ", "chosen": chosen}


def decomposed(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every text in Unicode NFD."""
    return {key: unicodedata.normalize("NFD", value) for key, value in row.items()}


def bad_trl_row(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One TRL line that the ingester must quarantine for `reason`."""
    chosen, rejected = make_pair(rng, prompt.topic, prompt.entity, set())
    row = trl_row(prompt, chosen, rejected)
    response = rng.choice(["chosen", "rejected"])
    match reason:
        case Reason.MALFORMED:
            text = json.dumps(row, ensure_ascii=False)
            return text[: len(text) // 2].encode("utf-8")
        case Reason.INVALID_UTF8:
            row["chosen"] = f"{chosen} {NAIVE_NOTE}"
            return json_line(row).replace("ï".encode(), "ï".encode("latin-1"), 1)
        case Reason.MISSING_FIELD:
            del row[response]
        case Reason.NULL_FIELD:
            row[rng.choice(["prompt", "chosen", "rejected"])] = None
        case Reason.NON_STRING:
            row[response] = rng.choice([42, True, 3.5])
        case Reason.EMPTY_TEXT:
            row[response] = rng.choice(["", "   ", " \t "])
        case Reason.IDENTICAL_RESPONSES:
            row["rejected"] = rng.choice([chosen, chosen + "  "])
        case Reason.UNKNOWN_ROLE:
            row["prompt"] = messages("wizard", prompt.text)
        case _:
            raise ValueError(f"no TRL bad row for {reason}")
    return json_line(row)


def build_trl(
    rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]
) -> tuple[Built, TrlCounts]:
    """The TRL file: 5-7 pairs per prompt, a few as messages, ~8% duplicate lines, bad rows."""
    pairs = []
    for prompt in prompts:
        seen: set[frozenset[str]] = set()
        pairs += [
            (prompt, *make_pair(rng, prompt.topic, prompt.entity, seen)) for _ in range(rng.randint(5, 7))
        ]
    n_messages = max(1, round(TRL_MESSAGE_SHARE * len(pairs)))
    as_messages = set(rng.sample(range(len(pairs)), n_messages))
    rows = [
        trl_message_row(rng, p, c, r) if i in as_messages else trl_row(p, c, r)
        for i, (p, c, r) in enumerate(pairs)
    ]
    plain = [i for i in range(len(rows)) if i not in as_messages]
    accented = [i for i in plain if decomposed(rows[i]) != rows[i]]
    n_copies = round(len(rows) * TRL_DUPLICATE_SHARE / (1 - TRL_DUPLICATE_SHARE))
    unicode_src = rng.sample(accented, min(len(accented), max(1, round(0.2 * n_copies))))
    rest = [i for i in plain if i not in unicode_src]
    n_whitespace = round(0.3 * n_copies)
    other_src = rng.sample(rest, min(len(rest), n_copies - len(unicode_src)))
    whitespace_src, verbatim_src = other_src[:n_whitespace], other_src[n_whitespace:]
    lines = [json_line(row) for row in rows]
    copies = (
        [(i, lines[i]) for i in verbatim_src]
        + [(i, json_line(with_irregular_whitespace(rows[i]))) for i in whitespace_src]
        + [(i, json_line(decomposed(rows[i]))) for i in unicode_src]
    )
    bad_lines = [
        (reason, bad_trl_row(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[TRL_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, lines, copies, bad_lines)
    counts = TrlCounts(n_messages, len(verbatim_src), len(whitespace_src), len(unicode_src))
    entry = sample_file(TRL_FILE, len(ordered), bad_at, len(copies), len(rows))
    return Built(jsonl_bytes(ordered), entry), counts


def vote(rng: random.Random, prompt: Prompt, x: str, y: str, winner: str | None, annotator: str) -> list[str]:
    """One CSV vote on {x, y} in random order; `winner` None is a tie."""
    a, b = (x, y) if rng.random() < 0.5 else (y, x)
    label = "tie" if winner is None else "a" if winner == a else "b"
    return [prompt.text, a, b, label, annotator, prompt.topic.name]


def votes_for_pair(
    rng: random.Random, prompt: Prompt, kind: str, seen: set[frozenset[str]]
) -> list[list[str]]:
    """The votes of one pair with the given voting pattern."""
    topic, entity = prompt.topic, prompt.entity
    winners: Sequence[str | None]
    if kind in ("conflict", "tie"):
        x, y = close_pair(rng, topic, entity, seen)
        winners = (x, y) if kind == "conflict" else (None,)
    else:
        x, y = make_pair(rng, topic, entity, seen)
        winners = {"single": (x,), "unanimous": (x, x, x), "majority": (x, x, y)}[kind]
    annotators = rng.sample(ANNOTATORS, len(winners))
    if kind in ("majority", "conflict"):
        annotators = careless_last(annotators)
    return [vote(rng, prompt, x, y, w, ann) for w, ann in zip(winners, annotators, strict=True)]


def careless_last(annotators: list[str]) -> list[str]:
    """The voters with CARELESS casting the last vote (the dissenting one): moved there, or put there
    in place of whoever drew it (drawing no more random numbers, so the rest of the sample stays)."""
    others = [a for a in annotators[:-1] if a != CARELESS]
    if len(others) < len(annotators) - 1:
        others.append(annotators[-1])
    return [*others, CARELESS]


def flipped(row: list[str]) -> list[str]:
    """The same vote with the responses swapped and the label flipped."""
    prompt, a, b, label, annotator, category = row
    return [prompt, b, a, {"a": "b", "b": "a"}[label], annotator, category]


def bad_vote(rng: random.Random, prompt: Prompt, reason: Reason) -> list[str]:
    """One CSV vote that the ingester must quarantine for `reason`."""
    chosen, rejected = make_pair(rng, prompt.topic, prompt.entity, set())
    row = vote(rng, prompt, chosen, rejected, chosen, rng.choice(ANNOTATORS))
    match reason:
        case Reason.UNKNOWN_LABEL:
            row[3] = rng.choice(["c", "?", "both"])
        case Reason.EMPTY_TEXT:
            row[rng.choice([1, 2])] = rng.choice(["   ", " \t"])
        case Reason.IDENTICAL_RESPONSES:
            row[2] = row[1]
        case _:
            raise ValueError(f"no votes bad row for {reason}")
    return row


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    """A CSV file's bytes: the votes header, then `rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(VOTES_HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build_votes(
    rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]
) -> tuple[Built, VoteCounts]:
    """The votes file: 3-4 voted pairs per prompt, flipped duplicate votes, bad rows."""
    kinds = {kind: 0 for kind in VOTE_KINDS}
    rows: list[list[str]] = []
    for prompt in prompts:
        seen: set[frozenset[str]] = set()
        for kind in rng.choices(list(VOTE_KINDS), weights=list(VOTE_KINDS.values()), k=rng.randint(3, 4)):
            kinds[kind] += 1
            rows += votes_for_pair(rng, prompt, kind, seen)
    rng.shuffle(rows)
    decided = [i for i, row in enumerate(rows) if row[3] != "tie"]
    flip_src = rng.sample(decided, min(len(decided), max(1, round(VOTE_FLIP_SHARE * len(decided)))))
    copies = [(i, flipped(rows[i])) for i in flip_src]
    bad_rows = [
        (reason, bad_vote(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[VOTES_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, rows, copies, bad_rows)
    counts = VoteCounts(
        single_vote_pairs=kinds["single"],
        unanimous_pairs=kinds["unanimous"],
        majority_pairs=kinds["majority"],
        conflict_pairs=kinds["conflict"],
        tie_pairs=kinds["tie"],
        flipped_duplicates=len(copies),
    )
    entry = sample_file(VOTES_FILE, len(ordered), bad_at, len(copies), len(rows))
    return Built(gzipped(csv_bytes(ordered)), entry), counts


def ranking_row(rng: random.Random, prompt: Prompt) -> dict[str, Any]:
    """A ranking of 3 to 5 responses to `prompt`."""
    responses, ranks = ranked_responses(rng, prompt, rng.randint(3, 5))
    return {"prompt": prompt.text, "responses": responses, "ranks": ranks, "category": prompt.topic.name}


def bad_ranking(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One rankings line that the ingester must quarantine for `reason`."""
    row = ranking_row(rng, prompt)
    match reason:
        case Reason.MALFORMED:
            text = json.dumps(row, ensure_ascii=False)
            return text[: len(text) // 2].encode("utf-8")
        case Reason.NON_STRING:
            row["responses"][rng.randrange(len(row["responses"]))] = 42
        case Reason.INVALID_RANKS:
            row["ranks"] = row["ranks"][:-1]
        case _:
            raise ValueError(f"no rankings bad row for {reason}")
    return json_line(row)


def build_rankings(rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]) -> Built:
    """The rankings file: one ranking per prompt, bad rows."""
    rows = [ranking_row(rng, prompt) for prompt in prompts]
    bad_lines = [
        (reason, bad_ranking(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[RANKINGS_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, [json_line(row) for row in rows], [], bad_lines)
    comparisons = sum(len(row["ranks"]) * (len(row["ranks"]) - 1) // 2 for row in rows)
    return Built(jsonl_bytes(ordered), sample_file(RANKINGS_FILE, len(ordered), bad_at, 0, comparisons))


def conversation(rng: random.Random, prompt: Prompt) -> tuple[str, Prompt]:
    """An HH transcript prefix ending in "\\n\\nAssistant:" and the question it ends with.

    A multi-turn prefix answers the prompt first, then asks about another entity.
    """
    if rng.random() >= HH_MULTI_TURN_SHARE:
        return f"\n\nHuman: {prompt.text}\n\nAssistant:", prompt
    topic = prompt.topic
    entity = rng.choice([e for e in topic.entities if e != prompt.entity])
    follow_up = Prompt(topic, entity, rng.choice(FOLLOW_UPS).format(entity=entity))
    first = answer(rng, topic, prompt.entity, rng.randint(1, 2))
    return (
        f"\n\nHuman: {prompt.text}\n\nAssistant: {first}\n\nHuman: {follow_up.text}\n\nAssistant:",
        follow_up,
    )


def bad_transcript(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One HH line that the ingester must quarantine for `reason`."""
    prefix, last = conversation(rng, prompt)
    chosen, rejected = make_pair(rng, last.topic, last.entity, set())
    row = {"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"}
    match reason:
        case Reason.PROMPT_MISMATCH:
            row["rejected"] = f"\n\nHuman: {last.text} Keep it short.\n\nAssistant: {rejected}"
        case Reason.MISSING_FIELD:
            del row["rejected"]
        case Reason.EMPTY_TEXT:
            row["rejected"] = prefix + rng.choice(["", " "])
        case _:
            raise ValueError(f"no HH bad row for {reason}")
    return json_line(row)


def build_hh(rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]) -> tuple[Built, int]:
    """The HH file: 2-4 records per conversation, some multi-turn; and its multi-turn count."""
    lines: list[bytes] = []
    multi_turn = 0
    for prompt in prompts:
        prefix, last = conversation(rng, prompt)
        seen: set[frozenset[str]] = set()
        n = rng.randint(2, 4)
        multi_turn += n if last is not prompt else 0
        for _ in range(n):
            chosen, rejected = make_pair(rng, last.topic, last.entity, seen)
            lines.append(json_line({"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"}))
    bad_lines = [
        (reason, bad_transcript(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[HH_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, lines, [], bad_lines)
    entry = sample_file(HH_FILE, len(ordered), bad_at, 0, len(lines))
    return Built(gzipped(jsonl_bytes(ordered)), entry), multi_turn
