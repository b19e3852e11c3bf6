"""Properties of ingest and build-pairs over small generated labelled files (hypothesis).

.venv/bin/pytest tests/data/test_properties.py

Files are drawn from a tiny vocabulary (whitespace and Unicode variants of the same text
included), so exact duplicates, A/B-flipped duplicates, several votes on one pair and bad rows
all occur often. Expected counts come from `expected()`, an oracle written from the documented
rules, not from rmcore's code.
"""

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.identity import normalized_text
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs, read_split
from rmcore.data.pairs.splits import SPLITS

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLIP = {"a": "b", "b": "a", "tie": "tie"}

# ---------------------------------------------------------------------------------------------
# Generated files
# ---------------------------------------------------------------------------------------------

# Three prompt identities and three response identities, each written in several ways.
PROMPTS = ["Say hi", "  Say   hi\n", "say hi", "Explain caf\u00e9", "Explain cafe\u0301"]
RESPONSES = ["Hello", " Hello ", "Hi there", "Hi\tthere", "Caf\u00e9", "Cafe\u0301"]
GOOD_LABELS = ["a", "b", "tie", " A ", "Tie"]
ANNOTATORS = ["absent", "absent", None, "ann1", " ann1 ", 7, "7"]
MARGINS = ["absent", "absent", "absent", "absent", 1, 2.0]
BAD_VALUES = {
    "prompt": ["", None],
    "response_a": ["  ", None, 3],
    "response_b": [""],
    "label": ["c", 1, None],
}
DEFECTS = ["none", "none", "none", "none", "identical", *BAD_VALUES]
# A JSON line that fails to decode, and one that decodes to something other than an object.
MALFORMED_LINES = ['{"prompt": ', "{bad json", '{"label": "a",}']
NON_OBJECT_LINES = ["[1, 2]", "null", '"just text"', "3"]
BLANK_LINES = ["", "   "]


@st.composite
def rows(draw: st.DrawFn, valid: bool = False) -> dict[str, Any]:
    """One labelled record, with at most one defect; with `valid`, one that must be accepted."""
    prompt = draw(st.sampled_from(PROMPTS))
    response_a, response_b = draw(
        st.lists(st.sampled_from(RESPONSES), min_size=2, max_size=2, unique_by=norm)
    )
    row: dict[str, Any] = {
        "prompt": prompt if draw(st.booleans()) else [{"role": "user", "content": prompt}],
        "response_a": response_a,
        "response_b": response_b,
        "label": draw(st.sampled_from(GOOD_LABELS)),
    }
    for name, values in (("annotator", ANNOTATORS), ("margin", MARGINS)):
        value = draw(st.sampled_from(values))
        if value != "absent":
            row[name] = value
    defect = "none" if valid else draw(st.sampled_from(DEFECTS))
    if defect == "identical":
        row["response_b"] = f" {response_a}\n"
    elif defect != "none":
        row[defect] = draw(st.sampled_from(BAD_VALUES[defect]))
    return row


row_lines = rows().map(json.dumps)
LINES = {
    "row": row_lines,
    "malformed": st.sampled_from(MALFORMED_LINES),
    "non_object": st.sampled_from(NON_OBJECT_LINES),
    "blank": st.sampled_from(BLANK_LINES),
}
first_lines = st.sampled_from(["row", "row", "malformed"]).flatmap(LINES.__getitem__)
any_lines = st.sampled_from(["row"] * 6 + ["malformed", "non_object", "blank"]).flatmap(LINES.__getitem__)


def swapped(row: dict[str, Any]) -> dict[str, Any]:
    """The same record with A and B swapped and a readable label flipped."""
    label = row["label"]
    if isinstance(label, str) and label.strip().lower() in FLIP:
        label = FLIP[label.strip().lower()]
    return {**row, "response_a": row["response_b"], "response_b": row["response_a"], "label": label}


@st.composite
def file_sets(draw: st.DrawFn, min_files: int = 1, max_files: int = 4, max_rows: int = 12) -> list[list[str]]:
    """The lines of some JSONL files that draw many rows from one shared pool.

    The pool holds a few records and their A/B-swapped twins, so exact and flipped duplicates
    (within a file and across files) are common.
    """
    records = draw(st.lists(rows(), min_size=1, max_size=5))
    pooled = st.sampled_from([json.dumps(twin) for row in records for twin in (row, swapped(row))])
    lines = st.one_of(pooled, any_lines)
    count = draw(st.integers(min_files, max_files))
    return [
        [draw(st.one_of(pooled, first_lines)), *draw(st.lists(lines, max_size=max_rows))]
        for _ in range(count)
    ]


files = file_sets(1, 1, max_rows=16).map(lambda contents: contents[0])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def jsonl_start(lines: list[str]) -> bool:
    """Whether a file of these lines is read as JSONL (its first non-blank line starts with '{')."""
    return next((line.strip()[0] for line in lines if line.strip()), "{") == "{"


# ---------------------------------------------------------------------------------------------
# The oracle: what each line should become, from the documented rules
# ---------------------------------------------------------------------------------------------


def norm(text: str) -> str:
    """Identity of a text: NFC, trimmed, whitespace runs folded."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass(frozen=True)
class Vote:
    """One accepted judgment in canonical orientation (first = the smaller normalized text)."""

    prompt: str
    first: str
    second: str
    label: str
    strength: float | None
    annotator: str | None


def _text(value: Any) -> str | None:
    """The reject reason of a required text field, or None when it is fine."""
    if value is None:
        return "null_field"
    if not isinstance(value, str):
        return "non_string"
    return "empty_text" if not value.strip() else None


def outcome(line: str) -> str | Vote | None:
    """None for a blank line (not a row), a reject reason, or the accepted row's vote."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return "malformed"
    if not isinstance(value, dict):
        return "not_an_object"
    prompt = value["prompt"]
    prompt_text = prompt[0]["content"] if isinstance(prompt, list) else prompt
    for text in (prompt_text, value["response_a"], value["response_b"]):
        if (why := _text(text)) is not None:
            return why
    label = value["label"]
    if label is None:
        return "null_field"
    if not isinstance(label, str) or label.strip().lower() not in FLIP:
        return "unknown_label"
    label = label.strip().lower()
    a, b = norm(value["response_a"]), norm(value["response_b"])
    if a == b:
        return "identical_responses"
    annotator = value.get("annotator")
    annotator = None if annotator is None else str(annotator).strip() or None
    margin = value.get("margin")
    strength = None if margin is None else float(margin)
    first, second, label = (a, b, label) if a <= b else (b, a, FLIP[label])
    return Vote(norm(prompt_text), first, second, label, strength, annotator)


@dataclass
class Expected:
    """What ingesting some files should report, file by file and in total."""

    rows_read: list[int]
    accepted: list[int]
    rejected: list[Counter[str]]
    votes: list[Vote]
    unique_votes: set[Vote]


def expected(contents: list[list[str]]) -> Expected:
    """The oracle over files ingested in this order; a file with the bytes of an earlier one is skipped."""
    result = Expected([], [], [], [], set())
    seen = set()
    for lines in contents:
        key = tuple(lines)
        if key in seen:
            continue
        seen.add(key)
        results = [o for o in map(outcome, lines) if o is not None]
        votes = [o for o in results if isinstance(o, Vote)]
        result.rows_read.append(len(results))
        result.accepted.append(len(votes))
        result.rejected.append(Counter(o for o in results if isinstance(o, str)))
        result.votes += votes
        result.unique_votes.update(votes)
    return result


# ---------------------------------------------------------------------------------------------
# Reading a lake back
# ---------------------------------------------------------------------------------------------

CONFIG = IngestConfig()


def run(lake: Lake, paths: list[Path]) -> IngestSummary:
    return ingest(lake, paths, CONFIG)


def comparison_ids(lake: Lake) -> set[str]:
    return lake.column("comparisons", "comparison_id")


def comparison_rows(lake: Lake) -> list[dict[str, Any]]:
    return lake.read("comparisons").to_pylist()


def pairs(lake: Lake) -> list[dict[str, Any]]:
    """Every pair of the lake across splits, sorted by pair_id (no pairs when no comparison)."""
    if not comparison_ids(lake):
        return []
    build_pairs(lake, SplitConfig(), PairsConfig())
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    return sorted(rows, key=lambda r: r["pair_id"])


def pair_view(lake: Lake) -> list[tuple[Any, ...]]:
    """The pairs reduced to what must not depend on ingestion order."""
    return [
        (
            r["pair_id"],
            r["prompt_id"],
            r["p_chosen"],
            r["n_votes"],
            r["ties"],
            r["conflict"],
            r["split"],
            normalized_text(r["chosen"]),
            normalized_text(r["rejected"]),
        )
        for r in pairs(lake)
    ]


def totals(lake: Lake) -> tuple[int, int, Counter[str]]:
    """rows_read, accepted and rejected by reason, summed over the `files` table."""
    entries = lake.files()
    rejected: Counter[str] = Counter()
    for entry in entries:
        rejected.update(entry.rejected)
    return sum(e.rows_read for e in entries), sum(e.accepted for e in entries), rejected


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the lake except DuckDB's scratch space, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".duckdb" not in p.parts
    }


def write_files(directory: Path, contents: list[list[str]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [write_lines(directory / f"f{i}.jsonl", lines) for i, lines in enumerate(contents)]


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@PROPERTY
@given(contents=file_sets(2, 4), data=st.data())
def test_ingest_order_does_not_change_the_lake(tmp_path_factory, contents, data):
    # given files F1..Fn and a permutation of them
    root = tmp_path_factory.mktemp("order")
    paths = write_files(root / "raw", contents)
    order = data.draw(st.permutations(range(len(paths))), label="order")
    # when one lake ingests them all in one run and another one at a time in the permuted order
    together, one_by_one = Lake(root / "together"), Lake(root / "one_by_one")
    run(together, paths)
    for i in order:
        run(one_by_one, [paths[i]])
    # then both lakes hold the same judgments, pairs and row counts
    assert comparison_ids(together) == comparison_ids(one_by_one)
    assert pair_view(together) == pair_view(one_by_one)
    assert totals(together) == totals(one_by_one)


@pytest.mark.slow
@PROPERTY
@given(contents=file_sets(1, 3))
def test_ingesting_twice_is_ingesting_once(tmp_path_factory, contents):
    # given a lake with some files ingested and its pairs built
    root = tmp_path_factory.mktemp("twice")
    paths = write_files(root / "raw", contents)
    lake = Lake(root / "lake")
    run(lake, paths)
    pairs(lake)
    before = snapshot(lake.work)
    # when the same files are ingested again
    again = run(lake, paths)
    # then every file is skipped and no file of the lake changed: no commit to any table, no
    # data file, the pair tables as built
    assert again.files_ingested == []
    assert again.files_skipped == [str(p) for p in paths]
    assert (again.rows_read, again.new_comparisons, again.duplicates) == (0, 0, 0)
    assert snapshot(lake.work) == before


@pytest.mark.slow
@PROPERTY
@given(lines=files, data=st.data())
def test_splitting_a_file_in_two_changes_no_judgment(tmp_path_factory, lines, data):
    # given one file, and the same rows cut into a head file and a tail file (each read as JSONL)
    cuts = [i for i in range(len(lines) + 1) if jsonl_start(lines[i:])]
    cut = data.draw(st.sampled_from(cuts), label="cut")
    root = tmp_path_factory.mktemp("split")
    whole = write_lines(root / "whole.jsonl", lines)
    head = write_lines(root / "head.jsonl", lines[:cut])
    tail = write_lines(root / "tail.jsonl", lines[cut:])
    # when one lake ingests the whole file and another the two halves
    one, two = Lake(root / "one"), Lake(root / "two")
    run(one, [whole])
    run(two, [head, tail])
    # then they hold the same judgments and pairs, and (unless the halves are the same bytes,
    # so one is skipped) the same row counts
    assert comparison_ids(one) == comparison_ids(two)
    assert pair_view(one) == pair_view(two)
    if head.read_bytes() != tail.read_bytes():
        assert totals(one) == totals(two)


@pytest.mark.slow
@PROPERTY
@given(row=rows(valid=True))
def test_swapped_judgment_is_the_same_judgment(tmp_path_factory, row):
    # given a judgment and its twin with A and B swapped and the label flipped
    root = tmp_path_factory.mktemp("swap")
    original_file = write_lines(root / "original.jsonl", [json.dumps(row)])
    swapped_file = write_lines(root / "swapped.jsonl", [json.dumps(swapped(row))])
    both_file = write_lines(root / "both.jsonl", [json.dumps(row), json.dumps(swapped(row))])
    original, twin, both = Lake(root / "original"), Lake(root / "twin"), Lake(root / "both")
    # when each is ingested into a lake of its own
    run(original, [original_file])
    run(twin, [swapped_file])
    # then they are one judgment on one pair, with the same soft label and chosen text
    assert comparison_ids(original) == comparison_ids(twin)
    [pair] = pairs(original)
    [pair_of_twin] = pairs(twin)
    assert (pair_of_twin["pair_id"], pair_of_twin["p_chosen"], pair_of_twin["n_votes"]) == (
        pair["pair_id"],
        pair["p_chosen"],
        1,
    )
    assert (pair_of_twin["chosen"], pair_of_twin["rejected"]) == (pair["chosen"], pair["rejected"])
    # and the twin is a duplicate, in the same file or in a later one
    in_one_file = run(both, [both_file])
    in_a_later_file = run(original, [swapped_file])
    assert (in_one_file.new_comparisons, in_one_file.duplicates) == (1, 1)
    assert (in_a_later_file.new_comparisons, in_a_later_file.duplicates) == (0, 1)
    assert comparison_ids(both) == comparison_ids(original) == comparison_ids(twin)


@PROPERTY
@given(contents=file_sets(1, 4))
def test_every_row_is_accounted_for(tmp_path_factory, contents):
    # given files with good, duplicate, flipped, multi-vote and bad rows
    root = tmp_path_factory.mktemp("accounting")
    paths = write_files(root / "raw", contents)
    want = expected(contents)
    # when they are ingested in one run
    lake = Lake(root / "lake")
    summary = run(lake, paths)
    # then each file's rows are accepted or rejected as the rules say, and the counts balance
    entries = lake.files()
    assert [e.rows_read for e in entries] == want.rows_read
    assert [e.accepted for e in entries] == want.accepted
    assert [Counter(e.rejected) for e in entries] == want.rejected
    for entry in entries:
        assert entry.rows_read == entry.accepted + sum(entry.rejected.values())
        assert entry.new_comparisons + entry.duplicates == entry.accepted
    assert summary.rows_read == summary.accepted + sum(summary.rejected.values())
    assert summary.rows_read == sum(want.rows_read)
    # and each accepted row is one judgment, new or a duplicate of one already seen
    assert summary.new_comparisons + summary.duplicates == len(want.votes)
    assert summary.new_comparisons == len(want.unique_votes) == len(comparison_ids(lake))
    assert len(comparison_rows(lake)) == len(want.unique_votes)


@PROPERTY
@given(contents=file_sets(1, 3))
def test_pairs_aggregate_the_unique_votes(tmp_path_factory, contents):
    # given files whose unique votes the oracle knows
    root = tmp_path_factory.mktemp("votes")
    paths = write_files(root / "raw", contents)
    by_pair: dict[tuple[str, str, str], list[Vote]] = {}
    for vote in expected(contents).unique_votes:
        by_pair.setdefault((vote.prompt, vote.first, vote.second), []).append(vote)
    # when they are ingested and the pairs built
    lake = Lake(root / "lake")
    run(lake, paths)
    built = pairs(lake)
    # then there is one pair per (prompt, response pair) with the share of votes for chosen
    assert len(built) == len(by_pair)
    for pair in built:
        chosen, rejected = normalized_text(pair["chosen"]), normalized_text(pair["rejected"])
        prompt = " ".join(normalized_text(m["content"]) for m in pair["prompt"])
        votes = by_pair[(prompt, *sorted((chosen, rejected)))]
        votes_first = sum({"a": 1.0, "b": 0.0, "tie": 0.5}[v.label] for v in votes)
        p_first = votes_first / len(votes)
        assert pair["n_votes"] == len(votes)
        assert pair["ties"] == sum(v.label == "tie" for v in votes)
        assert pair["p_chosen"] == max(votes_first, len(votes) - votes_first) / len(votes)
        assert pair["conflict"] == (p_first == 0.5)
        if p_first != 0.5:
            assert chosen == (min(chosen, rejected) if p_first > 0.5 else max(chosen, rejected))


# ---------------------------------------------------------------------------------------------
# A bad first line does not decide how a .jsonl file is read
# ---------------------------------------------------------------------------------------------

GOOD_ROW = json.dumps({"prompt": "p", "response_a": "x", "response_b": "y", "label": "a"})


@pytest.mark.parametrize("first", ["[1, 2]", "oops, not json", "null"])
def test_first_line_does_not_decide_the_container_of_jsonl(tmp_path, first):
    # given a .jsonl file whose first line is bad (a JSON array, plain text) and the rest good
    root = tmp_path
    path = write_lines(root / "labels.jsonl", [first, GOOD_ROW, GOOD_ROW.replace('"a"', '"b"')])
    # when it is ingested
    lake = Lake(root / "lake")
    summary = run(lake, [path])
    # then one bad row stops nothing: three rows read, one rejected, two accepted
    assert summary.files_failed == {}
    assert (summary.rows_read, summary.accepted, summary.new_comparisons) == (3, 2, 2)
