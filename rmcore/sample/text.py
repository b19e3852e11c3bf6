"""The sample's text: the topic and phrase banks, and the prompts and responses drawn from them.

The banks are read once on import from `bank.json`, package data of this package.
The chosen response is a helpful answer on topic; rejected ones are off-topic, evasive,
confidently wrong or rude. No pair or ranking holds two responses with the same normalized
text, and a prompt's pairs are all different.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from rmcore.data.identity import normalized_text

REJECTED_LONGER_SHARE = 0.35
"""Share of pairs whose rejected response is longer than the chosen one."""
MAX_TRIES = 1000
"""Draws before giving up on a new pair or on distinct responses for a ranking."""


@dataclass(frozen=True)
class Topic:
    """A subject: slot fillers for question templates, a fact bank and common myths."""

    name: str
    entities: tuple[str, ...]
    facts: tuple[str, ...]
    myths: tuple[str, ...]


# ---- the bank --------------------------------------------------------------------------

BANK_FILE = "bank.json"
# The bank is data, so it lives in a package-data file rather than in code. The generator draws
# from these tuples by position: any edit to the bank, even reordering it, changes the sample.


def bank() -> dict[str, Any]:
    """The parsed bank file shipped with this package."""
    return json.loads((files("rmcore.sample") / BANK_FILE).read_text(encoding="utf-8"))


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


@dataclass(frozen=True)
class Prompt:
    """A question about one entity of one topic."""

    topic: Topic
    entity: str
    text: str


# ---- text ------------------------------------------------------------------------------


def capitalized(text: str) -> str:
    """`text` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def every_prompt() -> list[Prompt]:
    """Every (topic, entity, template) question, in bank order."""
    return [
        Prompt(topic, entity, template.format(entity=entity, topic=topic.name))
        for topic in TOPICS
        for entity in topic.entities
        for template in TEMPLATES
    ]


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
