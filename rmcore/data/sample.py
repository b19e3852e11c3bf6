"""python -m rmcore.data.sample OUT_DIR [--seed N] [--prompts N]

A built-in sample of raw human-preference label files, generated deterministically.

The sample is the project's own data: prompts come from question templates over a bank of
topics, the chosen response answers on topic with facts from that topic's bank, and the
rejected one is off-topic, evasive, confidently wrong or rude. About a third of rejected
responses are longer than the chosen one, so "the longer response wins" is a weak baseline.
The topics and every phrase list (question templates, openers, evasive and rude replies)
live in `sample_bank.json` next to this module, shipped as package data and read on import.

Four files are written, in the formats the ingester reads:

- `pairs_trl.jsonl`: TRL's standard format {prompt, chosen, rejected, category}; a few rows
  give message lists, and some rows repeat an earlier row verbatim, with irregular whitespace,
  or in decomposed Unicode (NFD), so that deduplication on normalized text matters.
- `votes_labelled.csv.gz`: per-annotator votes {prompt, response_a, response_b, label,
  annotator, category}; pairs get one vote, three votes (unanimous or 2-1), a 1-1 split, or a
  tie, and some votes arrive twice with the responses swapped and the label flipped.
  Cells may hold quoted newlines (numbered lists).
- `rankings.jsonl`: {prompt, responses, ranks, category}, K = 3..5, rank 0 best, no ties.
- `hh_transcripts.jsonl.gz`: Anthropic HH-RLHF transcripts {chosen, rejected}, some multi-turn.

Bad rows are planted in every file; the manifest gives each one's file, 1-based row (JSONL:
line number; CSV: record number after the header) and the ingester's reason code, with the
counts of duplicates, vote patterns and multi-turn transcripts. The same seed writes the same
bytes.
"""

import argparse
import csv
import dataclasses
import gzip
import io
import json
import random
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from rmcore.data.atomic import replacing
from rmcore.data.normalize import normalized_text
from rmcore.data.records import Reason

T = TypeVar("T")

TRL_FILE = "pairs_trl.jsonl"
VOTES_FILE = "votes_labelled.csv.gz"
RANKINGS_FILE = "rankings.jsonl"
HH_FILE = "hh_transcripts.jsonl.gz"
VOTES_HEADER = ("prompt", "response_a", "response_b", "label", "annotator", "category")
ANNOTATORS = ("ann1", "ann2", "ann3", "ann4", "ann5")

REJECTED_LONGER_SHARE = 0.35
"""Share of pairs whose rejected response is longer than the chosen one."""
TRL_MESSAGE_SHARE = 0.04
"""Share of TRL rows whose prompt and responses are message lists."""
TRL_DUPLICATE_SHARE = 0.08
"""Share of TRL lines that repeat an earlier line (verbatim, whitespace or NFD variant)."""
VOTE_FLIP_SHARE = 0.06
"""Share of a/b votes that arrive a second time with the responses swapped."""
HH_MULTI_TURN_SHARE = 0.3
"""Share of HH conversations with an earlier Human/Assistant exchange."""
FILE_SHARES = {TRL_FILE: 0.38, VOTES_FILE: 0.28, RANKINGS_FILE: 0.14, HH_FILE: 0.20}
"""How the prompts (after those reserved for bad rows) are divided among the files."""
VOTE_KINDS = {"single": 0.6, "unanimous": 0.1, "majority": 0.1, "conflict": 0.1, "tie": 0.1}
"""How often a voted pair gets each voting pattern."""

BAD_ROWS: dict[str, tuple[Reason, ...]] = {
    TRL_FILE: (
        Reason.MALFORMED,
        Reason.INVALID_UTF8,
        Reason.MISSING_FIELD,
        Reason.NULL_FIELD,
        Reason.NON_STRING,
        Reason.NON_STRING,
        Reason.EMPTY_TEXT,
        Reason.EMPTY_TEXT,
        Reason.IDENTICAL_RESPONSES,
        Reason.UNKNOWN_ROLE,
    ),
    VOTES_FILE: (
        Reason.UNKNOWN_LABEL,
        Reason.UNKNOWN_LABEL,
        Reason.EMPTY_TEXT,
        Reason.IDENTICAL_RESPONSES,
    ),
    RANKINGS_FILE: (Reason.MALFORMED, Reason.NON_STRING, Reason.INVALID_RANKS),
    HH_FILE: (Reason.PROMPT_MISMATCH, Reason.MISSING_FIELD, Reason.EMPTY_TEXT),
}
"""The bad rows planted in each file, one prompt of their own each."""
N_BAD_ROWS = sum(len(reasons) for reasons in BAD_ROWS.values())
MIN_PROMPTS = N_BAD_ROWS + 20
MAX_TRIES = 1000


@dataclass(frozen=True)
class Topic:
    """A subject: slot fillers for question templates, a fact bank and common myths."""

    name: str
    entities: tuple[str, ...]
    facts: tuple[str, ...]
    myths: tuple[str, ...]


# ---- the bank --------------------------------------------------------------------------

BANK_FILE = "sample_bank.json"
# The bank is data, so it lives in a package-data file rather than in code. The generator draws
# from these tuples by position: any edit to the bank, even reordering it, changes the sample.


def bank() -> dict[str, Any]:
    """The parsed bank file shipped with this package."""
    return json.loads((files("rmcore.data") / BANK_FILE).read_text(encoding="utf-8"))


def bank_strings(value: object, where: str) -> tuple[str, ...]:
    """A list of strings from the bank as a tuple; `where` names it if it is something else."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{BANK_FILE}: {where} must be a list of strings")
    return tuple(value)


def bank_topic(entry: dict[str, Any]) -> Topic:
    """A topic from its entry in the bank."""
    name = entry["name"]
    return Topic(
        name,
        bank_strings(entry["entities"], f"{name}.entities"),
        bank_strings(entry["facts"], f"{name}.facts"),
        bank_strings(entry["myths"], f"{name}.myths"),
    )


BANK = bank()
TOPICS = tuple(bank_topic(entry) for entry in BANK["topics"])
TEMPLATES = bank_strings(BANK["templates"], "templates")
FOLLOW_UPS = bank_strings(BANK["follow_ups"], "follow_ups")
OPENERS = bank_strings(BANK["openers"], "openers")
LIST_INTROS = bank_strings(BANK["list_intros"], "list_intros")
CLOSERS = bank_strings(BANK["closers"], "closers")
EVASIVE = bank_strings(BANK["evasive"], "evasive")
RUDE = bank_strings(BANK["rude"], "rude")
WRONG_OPENERS = bank_strings(BANK["wrong_openers"], "wrong_openers")
BLUSTER = bank_strings(BANK["bluster"], "bluster")

SYSTEM_PROMPT = "You are a helpful assistant."
NAIVE_NOTE = "It is naïve to think there is only one right way."
"""Appended to the invalid-UTF-8 row so that it holds a character to mis-encode."""


@dataclass(frozen=True)
class Prompt:
    """A question about one entity of one topic."""

    topic: Topic
    entity: str
    text: str


@dataclass(frozen=True)
class BadRow:
    """A planted bad row: its file, 1-based row number and the ingester's reason code."""

    file: str
    row: int
    reason: Reason


@dataclass(frozen=True)
class SampleFile:
    """One written file and what an ingester should make of it."""

    name: str
    """File name inside the output folder."""
    rows: int
    """Data rows: JSONL lines, or CSV records after the header."""
    bad_rows: tuple[BadRow, ...]
    """The planted bad rows, in file order."""
    duplicates: int
    """Good rows repeating an earlier judgment (normalized text, either A/B orientation)."""
    comparisons: int
    """Distinct pairwise judgments in the good rows (a ranking of K gives K(K-1)/2)."""


@dataclass(frozen=True)
class TrlCounts:
    """What was planted in the TRL file."""

    message_list_rows: int
    """Rows whose prompt and responses are message lists (none of them duplicated)."""
    duplicates_verbatim: int
    """Lines repeating an earlier line byte for byte."""
    duplicates_whitespace: int
    """Lines repeating an earlier row with doubled and trailing spaces."""
    duplicates_unicode: int
    """Lines repeating an earlier row in decomposed Unicode (NFD)."""


@dataclass(frozen=True)
class VoteCounts:
    """The voting patterns planted in the votes file; every pair has exactly one."""

    single_vote_pairs: int
    """Pairs with one a/b vote."""
    unanimous_pairs: int
    """Pairs with three votes for the same response."""
    majority_pairs: int
    """Pairs with three votes split 2-1."""
    conflict_pairs: int
    """Pairs with two votes split 1-1 (p_chosen = 0.5)."""
    tie_pairs: int
    """Pairs with one vote, a tie."""
    flipped_duplicates: int
    """Votes repeated by the same annotator with the responses swapped and the label flipped."""


@dataclass(frozen=True)
class SampleManifest:
    """The files written by `write_sample` and everything planted in them."""

    seed: int
    n_prompts: int
    files: tuple[Path, ...]
    """The paths written."""
    contents: tuple[SampleFile, ...]
    """What each file holds, in the order of `files`."""
    trl: TrlCounts
    votes: VoteCounts
    multi_turn_transcripts: int
    """HH records whose prompt holds an earlier Human/Assistant exchange."""

    def file(self, name: str) -> SampleFile:
        """What the file called `name` holds."""
        return next(f for f in self.contents if f.name == name)

    def bad_row_counts(self) -> dict[str, int]:
        """Planted bad rows per reason code, over all files."""
        counts: dict[str, int] = {}
        for bad in (b for f in self.contents for b in f.bad_rows):
            counts[bad.reason.value] = counts.get(bad.reason.value, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        as_dict = dataclasses.asdict(self) | {"bad_row_counts": self.bad_row_counts()}
        return as_dict | {"files": [str(path) for path in self.files]}


@dataclass(frozen=True)
class Built:
    """A file's bytes and its manifest entry."""

    data: bytes
    file: SampleFile


# ---- text ------------------------------------------------------------------------------


def capitalized(text: str) -> str:
    """`text` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def build_prompts(rng: random.Random, n: int) -> list[Prompt]:
    """`n` distinct prompts drawn from every (topic, entity, template) combination."""
    every = [
        Prompt(topic, entity, template.format(entity=entity, topic=topic.name))
        for topic in TOPICS
        for entity in topic.entities
        for template in TEMPLATES
    ]
    if not MIN_PROMPTS <= n <= len(every):
        raise ValueError(f"n_prompts must be between {MIN_PROMPTS} and {len(every)}, got {n}")
    return rng.sample(every, n)


def answer(rng: random.Random, topic: Topic, entity: str, n_facts: int) -> str:
    """A helpful on-topic answer: an opener, `n_facts` facts (sometimes a numbered list)."""
    facts = rng.sample(topic.facts, n_facts)
    if n_facts >= 3 and rng.random() < 0.35:
        steps = "\n".join(f"{i}. {fact}" for i, fact in enumerate(facts, start=1))
        text = f"{rng.choice(LIST_INTROS).format(entity=entity)}\n{steps}"
    else:
        opener = rng.choice(OPENERS).format(entity=entity, Entity=capitalized(entity))
        text = " ".join([opener, *facts])
    if rng.random() < 0.5:
        text += " " + rng.choice(CLOSERS).format(topic=topic.name)
    return text


def off_topic(rng: random.Random, topic: Topic, n_facts: int) -> str:
    """A good answer to a question about some other topic."""
    other = rng.choice([t for t in TOPICS if t is not topic])
    return answer(rng, other, rng.choice(other.entities), n_facts)


def evasive(rng: random.Random, topic: Topic, entity: str) -> str:
    """A reply that avoids the question."""
    return rng.choice(EVASIVE).format(entity=entity, topic=topic.name)


def wrong(rng: random.Random, topic: Topic, entity: str, n_bluster: int) -> str:
    """A confident reply built on the topic's myths."""
    myths = rng.sample(topic.myths, rng.randint(1, len(topic.myths)))
    bluster = [b.format(topic=topic.name) for b in rng.sample(BLUSTER, n_bluster)]
    return " ".join([rng.choice(WRONG_OPENERS).format(entity=entity), *myths, *bluster])


def rude(rng: random.Random, topic: Topic, entity: str) -> str:
    """A dismissive reply, sometimes with a myth thrown in."""
    text = rng.choice(RUDE).format(entity=entity)
    return f"{text} {rng.choice(topic.myths)}" if rng.random() < 0.3 else text


def draw_pair(rng: random.Random, topic: Topic, entity: str, longer: bool) -> tuple[str, str]:
    """One (chosen, rejected) draw; `longer` favours a rejected response longer than chosen."""
    if longer:
        chosen = answer(rng, topic, entity, rng.randint(1, 2))
        if rng.random() < 0.6:
            return chosen, off_topic(rng, topic, rng.randint(2, 4))
        return chosen, wrong(rng, topic, entity, rng.randint(1, 3))
    chosen = answer(rng, topic, entity, rng.randint(2, 4))
    styles: dict[str, Callable[[], str]] = {
        "off_topic": lambda: off_topic(rng, topic, rng.randint(1, 2)),
        "evasive": lambda: evasive(rng, topic, entity),
        "wrong": lambda: wrong(rng, topic, entity, rng.randint(0, 1)),
        "rude": lambda: rude(rng, topic, entity),
    }
    style = rng.choices(list(styles), weights=(0.35, 0.3, 0.15, 0.2))[0]
    return chosen, styles[style]()


def pair_key(x: str, y: str) -> frozenset[str]:
    """Identity of an unordered pair of responses."""
    return frozenset((normalized_text(x), normalized_text(y)))


def make_pair(rng: random.Random, topic: Topic, entity: str, seen: set[frozenset[str]]) -> tuple[str, str]:
    """A (chosen, rejected) pair not in `seen` (which it joins); rejected is longer by chance."""
    longer = rng.random() < REJECTED_LONGER_SHARE
    for _ in range(MAX_TRIES):
        chosen, rejected = draw_pair(rng, topic, entity, longer)
        key = pair_key(chosen, rejected)
        if (len(rejected) > len(chosen)) == longer and len(key) == 2 and key not in seen:
            seen.add(key)
            return chosen, rejected
    raise RuntimeError(f"no new pair for {entity!r} after {MAX_TRIES} draws")


def close_pair(rng: random.Random, topic: Topic, entity: str, seen: set[frozenset[str]]) -> tuple[str, str]:
    """Two different good answers: the pairs annotators tie on or disagree about."""
    for _ in range(MAX_TRIES):
        x, y = answer(rng, topic, entity, rng.randint(2, 3)), answer(rng, topic, entity, 2)
        key = pair_key(x, y)
        if len(key) == 2 and key not in seen:
            seen.add(key)
            return x, y
    raise RuntimeError(f"no new close pair for {entity!r} after {MAX_TRIES} draws")


def ranked_responses(rng: random.Random, prompt: Prompt, k: int) -> tuple[list[str], list[int]]:
    """`k` distinct responses of decreasing quality, shuffled, and their ranks (0 best)."""
    topic, entity = prompt.topic, prompt.entity
    tiers: tuple[Callable[[], str], ...] = (
        lambda: answer(rng, topic, entity, rng.randint(3, 4)),
        lambda: answer(rng, topic, entity, 1),
        lambda: evasive(rng, topic, entity),
        lambda: off_topic(rng, topic, rng.randint(1, 3)),
        lambda: wrong(rng, topic, entity, rng.randint(0, 2)),
        lambda: rude(rng, topic, entity),
    )
    for _ in range(MAX_TRIES):
        best_first = [tiers[t]() for t in sorted(rng.sample(range(len(tiers)), k))]
        if len({normalized_text(r) for r in best_first}) == k:
            order = rng.sample(range(k), k)
            return [best_first[i] for i in order], order
    raise RuntimeError(f"no {k} distinct responses for {entity!r} after {MAX_TRIES} draws")


# ---- rows and files ----------------------------------------------------------------------


def json_line(value: dict[str, Any]) -> bytes:
    """One JSONL line (without the newline), UTF-8, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def interleave(
    rng: random.Random,
    base: Sequence[T],
    copies: Sequence[tuple[int, T]],
    bad: Sequence[tuple[Reason, T]],
) -> tuple[list[T], list[tuple[int, Reason]]]:
    """Rows in file order and the 1-based rows of the bad ones.

    Base rows keep their order; each copy lands after its source row; bad rows land anywhere
    but first, so that format detection sees a good row.
    """
    n = len(base)
    keyed: list[tuple[tuple[float, int], T, Reason | None]] = [
        ((float(i), 0), row, None) for i, row in enumerate(base)
    ]
    keyed += [((rng.uniform(src, n), 1), row, None) for src, row in copies]
    keyed += [((rng.uniform(0.5, n), 2), row, reason) for reason, row in bad]
    keyed.sort(key=lambda entry: entry[0])
    rows = [row for _, row, _ in keyed]
    bad_rows = [(i, reason) for i, (_, _, reason) in enumerate(keyed, 1) if reason is not None]
    return rows, bad_rows


def jsonl_bytes(lines: Sequence[bytes]) -> bytes:
    """A JSONL file's bytes."""
    return b"".join(line + b"\n" for line in lines)


def gzipped(data: bytes) -> bytes:
    """gzip with no time stamp or file name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def sample_file(
    name: str, rows: int, bad: Sequence[tuple[int, Reason]], duplicates: int, comparisons: int
) -> SampleFile:
    """A manifest entry."""
    bad_rows = tuple(BadRow(name, row, reason) for row, reason in bad)
    return SampleFile(name, rows, bad_rows, duplicates, comparisons)


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
    return [vote(rng, prompt, x, y, w, ann) for w, ann in zip(winners, annotators, strict=True)]


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


def split_prompts(prompts: Sequence[Prompt]) -> dict[str, list[Prompt]]:
    """The prompts divided among the files in the proportions of FILE_SHARES."""
    bounds = [0.0]
    for share in FILE_SHARES.values():
        bounds.append(bounds[-1] + share)
    cuts = [round(b * len(prompts)) for b in bounds]
    return {name: list(prompts[lo:hi]) for name, lo, hi in zip(FILE_SHARES, cuts[:-1], cuts[1:], strict=True)}


def write_sample(out_dir: Path, *, seed: int = 0, n_prompts: int = 400) -> SampleManifest:
    """Write the four sample files under `out_dir` (atomically) and return what they hold."""
    rng = random.Random(seed)
    prompts = build_prompts(rng, n_prompts)
    bad_iter = iter(prompts[:N_BAD_ROWS])
    bad = {name: [next(bad_iter) for _ in reasons] for name, reasons in BAD_ROWS.items()}
    good = split_prompts(prompts[N_BAD_ROWS:])
    trl, trl_counts = build_trl(rng, good[TRL_FILE], bad[TRL_FILE])
    votes, vote_counts = build_votes(rng, good[VOTES_FILE], bad[VOTES_FILE])
    rankings = build_rankings(rng, good[RANKINGS_FILE], bad[RANKINGS_FILE])
    hh, multi_turn = build_hh(rng, good[HH_FILE], bad[HH_FILE])
    built = (trl, votes, rankings, hh)
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in built:
        with replacing(out_dir / item.file.name) as tmp:
            tmp.write_bytes(item.data)
    return SampleManifest(
        seed=seed,
        n_prompts=n_prompts,
        files=tuple(out_dir / item.file.name for item in built),
        contents=tuple(item.file for item in built),
        trl=trl_counts,
        votes=vote_counts,
        multi_turn_transcripts=multi_turn,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the sample and print its manifest as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m rmcore.data.sample", description="Write the built-in sample of raw label files."
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the sample files into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--prompts", type=int, default=400, help="distinct prompts (default 400)")
    args = parser.parse_args(argv)
    manifest = write_sample(args.out_dir, seed=args.seed, n_prompts=args.prompts)
    json.dump(manifest.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
