"""Splits: a pure function of the prompt's hash, so a prompt never sits in two splits and never
moves when data grows.

    u = int(prompt_id[:8], 16) / 2**32            uniform in [0, 1)
    split = train       if u < f_train
            validation  if u < f_train + f_validation
            test        otherwise
"""

from rmcore.config import SplitConfig

SPLITS = ("train", "validation", "test")
_SCALE = float(1 << 32)


def unit_of(prompt_id: str) -> float:
    """The prompt's position in [0, 1), from the first 32 bits of its hash."""
    return int(prompt_id[:8], 16) / _SCALE


def split_of(prompt_id: str, fractions: SplitConfig) -> str:
    """The split a prompt belongs to."""
    u = unit_of(prompt_id)
    if u < fractions.train:
        return "train"
    if u < fractions.train + fractions.validation:
        return "validation"
    return "test"


def split_sql(column: str, fractions: SplitConfig) -> str:
    """The same function as a DuckDB SQL expression over a prompt-id column."""
    unit = f"(('0x' || substr({column}, 1, 8))::UBIGINT / {_SCALE!r})"
    return (
        f"CASE WHEN {unit} < {fractions.train!r} THEN 'train' "
        f"WHEN {unit} < {fractions.train + fractions.validation!r} THEN 'validation' "
        "ELSE 'test' END"
    )
