"""What the built-in sample holds: its files, the bad rows planted in them, and the manifest."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmcore.data.records import Reason

TRL_FILE = "pairs_trl.jsonl"
VOTES_FILE = "votes_labelled.csv.gz"
RANKINGS_FILE = "rankings.jsonl"
HH_FILE = "hh_transcripts.jsonl.gz"

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


def sample_file(
    name: str, rows: int, bad: Sequence[tuple[int, Reason]], duplicates: int, comparisons: int
) -> SampleFile:
    """A manifest entry."""
    bad_rows = tuple(BadRow(name, row, reason) for row, reason in bad)
    return SampleFile(name, rows, bad_rows, duplicates, comparisons)
