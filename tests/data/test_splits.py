"""Splits: a prompt's split is a pure function of its hash, in Python and in DuckDB alike."""

import random
from collections import Counter

import duckdb
import pytest

from rmcore.config import SplitConfig
from rmcore.data.pairs.splits import SPLITS, split_of, split_sql, unit_of

DEFAULT = SplitConfig()
HALVES = SplitConfig(train=0.5, validation=0.25, test=0.25)
UNEVEN = SplitConfig(train=0.7, validation=0.2, test=0.1)


def random_ids(n: int, seed: int) -> list[str]:
    """n random 128-bit ids as 32 hex digits, like prompt ids."""
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


def id_at(unit_numerator: int) -> str:
    """An id whose first 32 bits are `unit_numerator` (so unit_of = numerator / 2**32)."""
    return f"{unit_numerator:08x}" + "0" * 24


def boundary_ids(fractions: SplitConfig) -> list[str]:
    """Ids at, just below and just above each split boundary, plus the extremes."""
    ids = [id_at(0), id_at(2**32 - 1)]
    for edge in (fractions.train, fractions.train + fractions.validation):
        k = int(edge * 2**32)
        ids += [id_at(max(0, min(2**32 - 1, k + d))) for d in (-1, 0, 1)]
    return ids


def test_unit_is_the_first_32_bits() -> None:
    # given ids with known leading bits, then unit_of maps them into [0, 1)
    assert unit_of(id_at(0)) == 0.0
    assert unit_of(id_at(2**31)) == 0.5
    assert unit_of("ffffffff" + "f" * 24) == (2**32 - 1) / 2**32


def test_split_of_is_deterministic_and_depends_only_on_the_id() -> None:
    # given ids, when split twice (with equal but distinct configs), then the answers agree
    for prompt_id in random_ids(200, seed=1):
        assert split_of(prompt_id, DEFAULT) == split_of(prompt_id, SplitConfig())


@pytest.mark.parametrize(
    ("numerator", "split"),
    [
        (0, "train"),
        (2**31 - 1, "train"),
        (2**31, "validation"),  # u = 0.5 exactly: not < train
        (3 * 2**30 - 1, "validation"),
        (3 * 2**30, "test"),  # u = 0.75 exactly
        (2**32 - 1, "test"),
    ],
)
def test_boundaries_are_half_open(numerator: int, split: str) -> None:
    # given fractions 0.5 / 0.25 / 0.25 and ids on both sides of each boundary
    # then train is [0, 0.5), validation [0.5, 0.75), test [0.75, 1)
    assert split_of(id_at(numerator), HALVES) == split


@pytest.mark.parametrize("fractions", [DEFAULT, UNEVEN, HALVES])
def test_fractions_are_respected_within_one_and_a_half_points(fractions: SplitConfig) -> None:
    # given 20,000 random ids
    ids = random_ids(20_000, seed=7)
    # when split
    shares = Counter(split_of(i, fractions) for i in ids)
    # then each split's share is within 1.5 points of its fraction
    for split in SPLITS:
        assert shares[split] / len(ids) == pytest.approx(getattr(fractions, split), abs=0.015)


def test_an_empty_split_gets_nothing() -> None:
    # given no test fraction, then no id lands in test
    fractions = SplitConfig(train=0.9, validation=0.1, test=0.0)
    assert "test" not in {split_of(i, fractions) for i in [*random_ids(2_000, seed=3), id_at(2**32 - 1)]}
    everything = SplitConfig(train=1.0, validation=0.0, test=0.0)
    assert {split_of(i, everything) for i in random_ids(500, seed=4)} == {"train"}


@pytest.mark.parametrize("fractions", [DEFAULT, UNEVEN, HALVES])
def test_duckdb_expression_agrees_with_split_of(fractions: SplitConfig) -> None:
    # given 1,000 random ids plus ids on every boundary
    ids = random_ids(1_000, seed=11) + boundary_ids(fractions)
    # when split by the SQL expression
    db = duckdb.connect()
    rows = db.execute(
        f"SELECT prompt_id, {split_sql('prompt_id', fractions)} FROM (SELECT unnest(?) AS prompt_id)",
        [ids],
    ).fetchall()
    db.close()
    # then every id gets the same split as in Python
    assert len(rows) == len(ids)
    disagreements = [(i, s, split_of(i, fractions)) for i, s in rows if s != split_of(i, fractions)]
    assert disagreements == []
