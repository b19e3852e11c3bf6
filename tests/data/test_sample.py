"""The built-in sample: deterministic bytes, readable files, and a manifest that tells the truth.

The files are re-read here with a small reader of the test's own (stdlib only), so the
manifest is checked against the bytes written, not against the generator's bookkeeping.
"""

import csv
import gzip
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.quality.report import data_report
from rmcore.sample.manifest import HH_FILE, RANKINGS_FILE, TRL_FILE, VOTES_FILE, SampleManifest
from rmcore.sample.text import TOPICS, bank
from rmcore.sample.write import main, write_sample

FILES = (TRL_FILE, VOTES_FILE, RANKINGS_FILE, HH_FILE)
ROLES = {"system", "user", "assistant"}
LABELS = {"a", "b", "tie"}
ASSISTANT = "\n\nAssistant:"

Sample = tuple[Path, SampleManifest]


@pytest.fixture(scope="module", params=[0, 7], ids=["seed0", "seed7"])
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """The default-size sample for two seeds, written once per module."""
    out = tmp_path_factory.mktemp(f"sample{request.param}")
    return out, write_sample(out, seed=request.param)


# ---- an independent reader --------------------------------------------------------------


def norm(text: str) -> str:
    """NFC, trimmed, whitespace runs folded."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def raw_lines(path: Path) -> list[bytes]:
    """The lines of a (possibly gzipped) JSONL file."""
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).splitlines()


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The records of a gzipped CSV file."""
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode("utf-8"))))


def decoded(line: bytes) -> dict[str, Any] | str:
    """The JSON object on a line, or why there is none."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return "malformed"


def reply(value: str | list[dict[str, str]]) -> str:
    """A response given as text or as a message list ending in the reply."""
    return value if isinstance(value, str) else value[-1]["content"]


def prompt_key(value: str | list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    """A prompt's identity; a plain-text prompt is one user message."""
    messages = [{"role": "user", "content": value}] if isinstance(value, str) else value
    return tuple((m["role"], norm(m["content"])) for m in messages)


def trl_problem(line: bytes) -> str | None:
    """Why a TRL line is bad, or None."""
    row = decoded(line)
    if isinstance(row, str):
        return row
    names = ("prompt", "chosen", "rejected")
    if any(name not in row for name in names):
        return "missing_field"
    values = [row[name] for name in names]
    if any(value is None for value in values):
        return "null_field"
    if any(not isinstance(value, str | list) for value in values):
        return "non_string"
    if any(m["role"] not in ROLES for v in values if isinstance(v, list) for m in v):
        return "unknown_role"
    chosen, rejected = reply(row["chosen"]), reply(row["rejected"])
    if not chosen.strip() or not rejected.strip():
        return "empty_text"
    return "identical_responses" if norm(chosen) == norm(rejected) else None


def vote_problem(row: dict[str, str]) -> str | None:
    """Why a CSV vote is bad, or None."""
    if row["label"] not in LABELS:
        return "unknown_label"
    if not row["response_a"].strip() or not row["response_b"].strip():
        return "empty_text"
    return "identical_responses" if norm(row["response_a"]) == norm(row["response_b"]) else None


def ranking_problem(line: bytes) -> str | None:
    """Why a rankings line is bad, or None."""
    row = decoded(line)
    if isinstance(row, str):
        return row
    if not all(isinstance(r, str) for r in row["responses"]):
        return "non_string"
    return None if sorted(row["ranks"]) == list(range(len(row["responses"]))) else "invalid_ranks"


def hh_problem(line: bytes) -> str | None:
    """Why an HH line is bad, or None."""
    row = decoded(line)
    if isinstance(row, str):
        return row
    if "chosen" not in row or "rejected" not in row:
        return "missing_field"
    (chosen_prompt, _, chosen), (rejected_prompt, _, rejected) = (
        row["chosen"].rpartition(ASSISTANT),
        row["rejected"].rpartition(ASSISTANT),
    )
    if chosen_prompt != rejected_prompt:
        return "prompt_mismatch"
    return None if chosen.strip() and rejected.strip() else "empty_text"


def problems(rows: list[Any], problem: Callable[[Any], str | None]) -> dict[int, str]:
    """1-based row number -> reason, for the bad rows."""
    found = {i: problem(row) for i, row in enumerate(rows, start=1)}
    return {i: reason for i, reason in found.items() if reason is not None}


def good(rows: list[Any], bad: dict[int, str]) -> list[Any]:
    """The rows that are not bad."""
    return [row for i, row in enumerate(rows, start=1) if i not in bad]


def planted(manifest: SampleManifest, name: str) -> dict[int, str]:
    """The manifest's bad rows of one file: row -> reason."""
    return {b.row: b.reason.value for b in manifest.file(name).bad_rows}


def good_objects(out: Path, manifest: SampleManifest, name: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file's good lines."""
    return [json.loads(line) for line in good(raw_lines(out / name), planted(manifest, name))]


def longer_share(pairs: list[tuple[str, str]]) -> float:
    """Share of (chosen, rejected) pairs whose rejected response is longer."""
    return sum(len(rejected) > len(chosen) for chosen, rejected in pairs) / len(pairs)


# ---- tests ------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    # Given two output folders
    first, second = tmp_path / "first", tmp_path / "second"
    # When the same seed is written to both
    write_sample(first, seed=3, n_prompts=120)
    write_sample(second, seed=3, n_prompts=120)
    # Then every file is byte-identical
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_different_seeds_write_different_files(tmp_path: Path) -> None:
    # Given two output folders
    first, second = tmp_path / "first", tmp_path / "second"
    # When two seeds are written
    write_sample(first, seed=3, n_prompts=120)
    write_sample(second, seed=4, n_prompts=120)
    # Then every file differs
    for name in FILES:
        assert (first / name).read_bytes() != (second / name).read_bytes(), name


def test_writes_the_four_files_and_nothing_else(sample: Sample) -> None:
    # Given a written sample
    out, manifest = sample
    # Then exactly the four files exist (no temporary file left), as the manifest lists them
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert manifest.files == tuple(out / name for name in FILES)
    assert [f.name for f in manifest.contents] == list(FILES)


def test_every_jsonl_line_but_the_planted_ones_parses(sample: Sample) -> None:
    # Given a written sample and its planted bad rows
    out, manifest = sample
    expected_keys = {
        TRL_FILE: {"prompt", "chosen", "rejected", "category"},
        RANKINGS_FILE: {"prompt", "responses", "ranks", "category"},
        HH_FILE: {"chosen", "rejected"},
    }
    for name, keys in expected_keys.items():
        # When its lines are read, the planted ones aside
        lines = good(raw_lines(out / name), planted(manifest, name))
        # Then each is a JSON object with the format's fields
        for line in lines:
            row = json.loads(line.decode("utf-8"))
            assert set(row) == keys, (name, line[:80])


def test_row_counts_match_the_manifest(sample: Sample) -> None:
    # Given a written sample
    out, manifest = sample
    # When the files are read back
    rows = {name: len(raw_lines(out / name)) for name in (TRL_FILE, RANKINGS_FILE, HH_FILE)}
    rows[VOTES_FILE] = len(csv_rows(out / VOTES_FILE))
    # Then the row counts match, and the default size is 1,500 to 2,500 rows in all
    assert rows == {f.name: f.rows for f in manifest.contents}
    assert 1500 <= sum(rows.values()) <= 2500


def test_bad_rows_are_where_the_manifest_says(sample: Sample) -> None:
    # Given a written sample
    out, manifest = sample
    # When each row is checked by this test's own reader
    found = {
        TRL_FILE: problems(raw_lines(out / TRL_FILE), trl_problem),
        VOTES_FILE: problems(csv_rows(out / VOTES_FILE), vote_problem),
        RANKINGS_FILE: problems(raw_lines(out / RANKINGS_FILE), ranking_problem),
        HH_FILE: problems(raw_lines(out / HH_FILE), hh_problem),
    }
    # Then the bad rows and their reasons are exactly the planted ones, every kind present
    assert found == {name: planted(manifest, name) for name in FILES}
    assert set(manifest.bad_row_counts()) == {
        "malformed",
        "invalid_utf8",
        "missing_field",
        "null_field",
        "non_string",
        "empty_text",
        "identical_responses",
        "unknown_label",
        "unknown_role",
        "prompt_mismatch",
        "invalid_ranks",
    }


def test_trl_duplicates_and_message_rows_match_the_manifest(sample: Sample) -> None:
    # Given the good rows of the TRL file
    out, manifest = sample
    lines = good(raw_lines(out / TRL_FILE), planted(manifest, TRL_FILE))
    # When rows are keyed by normalized content and each repeat compared with its first line
    first: dict[tuple[Any, ...], bytes] = {}
    variants: Counter[str] = Counter()
    message_rows = 0
    for line in lines:
        row = json.loads(line)
        message_rows += isinstance(row["prompt"], list)
        key = (prompt_key(row["prompt"]), norm(reply(row["chosen"])), norm(reply(row["rejected"])))
        if key not in first:
            first[key] = line
        elif line == first[key]:
            variants["verbatim"] += 1
        elif unicodedata.normalize("NFC", line.decode()) == first[key].decode():
            variants["unicode"] += 1
        else:
            variants["whitespace"] += 1
    # Then every kind of duplicate is present and counted as planted
    counts = manifest.trl
    assert variants == {
        "verbatim": counts.duplicates_verbatim,
        "whitespace": counts.duplicates_whitespace,
        "unicode": counts.duplicates_unicode,
    }
    assert min(variants.values()) > 0
    assert message_rows == counts.message_list_rows > 0
    entry = manifest.file(TRL_FILE)
    assert sum(variants.values()) == entry.duplicates
    assert len(first) == entry.comparisons
    assert 0.05 <= entry.duplicates / entry.rows <= 0.11


def test_vote_patterns_match_the_manifest(sample: Sample) -> None:
    # Given the good votes
    out, manifest = sample
    votes = good(csv_rows(out / VOTES_FILE), planted(manifest, VOTES_FILE))
    # When votes are grouped by unordered pair and repeated judgments set aside as flips
    judgments: dict[tuple[str, frozenset[str]], dict[tuple[str, str], str]] = {}
    flips = 0
    for vote in votes:
        a, b = norm(vote["response_a"]), norm(vote["response_b"])
        winner = {"a": a, "b": b, "tie": "tie"}[vote["label"]]
        pair = judgments.setdefault((norm(vote["prompt"]), frozenset((a, b))), {})
        judgment = (vote["annotator"], winner)
        if judgment in pair:
            assert pair[judgment] == b, "a repeated vote must come with the responses swapped"
            flips += 1
        else:
            pair[judgment] = a
    patterns: Counter[str] = Counter()
    for pair in judgments.values():
        winners = Counter(winner for _, winner in pair)
        votes_for_top = winners.most_common(1)[0][1]
        if "tie" in winners:
            patterns["tie"] += 1
        elif len(pair) == 1:
            patterns["single"] += 1
        elif len(pair) == 2 and votes_for_top == 1:
            patterns["conflict"] += 1
        elif len(pair) == 3:
            patterns["unanimous" if votes_for_top == 3 else "majority"] += 1
    # Then each pattern is planted, counted as in the manifest, and single votes are the most
    counts = manifest.votes
    assert patterns == {
        "single": counts.single_vote_pairs,
        "unanimous": counts.unanimous_pairs,
        "majority": counts.majority_pairs,
        "conflict": counts.conflict_pairs,
        "tie": counts.tie_pairs,
    }
    assert sum(patterns.values()) == len(judgments)
    assert min(patterns.values()) > 0
    assert patterns.most_common(1)[0][0] == "single"
    assert flips == counts.flipped_duplicates == manifest.file(VOTES_FILE).duplicates > 0
    assert sum(len(pair) for pair in judgments.values()) == manifest.file(VOTES_FILE).comparisons


def test_rankings_are_strict_orders_of_three_to_five(sample: Sample) -> None:
    # Given the good rankings
    out, manifest = sample
    rows = good_objects(out, manifest, RANKINGS_FILE)
    # Then each ranks 3 to 5 distinct responses with no tie, and the pair count matches
    for row in rows:
        k = len(row["responses"])
        assert 3 <= k <= 5
        assert sorted(row["ranks"]) == list(range(k))
        assert len({norm(r) for r in row["responses"]}) == k
    assert (
        sum(len(r["ranks"]) * (len(r["ranks"]) - 1) // 2 for r in rows)
        == manifest.file(RANKINGS_FILE).comparisons
    )


def test_hh_transcripts_share_their_prompt_and_some_are_multi_turn(sample: Sample) -> None:
    # Given the good HH records
    out, manifest = sample
    rows = good_objects(out, manifest, HH_FILE)
    # When their prompts are split off at the last Assistant turn
    prompts = [row["chosen"].rpartition(ASSISTANT)[0] for row in rows]
    multi_turn = sum(prompt.count("\n\nHuman:") > 1 for prompt in prompts)
    # Then every record starts with a Human turn, and multi-turn ones are counted as planted
    assert all(prompt.startswith("\n\nHuman: ") for prompt in prompts)
    assert multi_turn == manifest.multi_turn_transcripts > 0
    assert len(rows) == manifest.file(HH_FILE).comparisons


def test_longer_response_is_not_a_perfect_predictor(sample: Sample) -> None:
    # Given the good TRL and HH pairs
    out, manifest = sample
    trl = good_objects(out, manifest, TRL_FILE)
    hh = good_objects(out, manifest, HH_FILE)
    # When chosen and rejected lengths are compared
    trl_pairs = [(reply(row["chosen"]), reply(row["rejected"])) for row in trl]
    hh_pairs = [
        (row["chosen"].rpartition(ASSISTANT)[2], row["rejected"].rpartition(ASSISTANT)[2]) for row in hh
    ]
    # Then the rejected response is the longer one in 25-50% of pairs
    assert 0.25 <= longer_share(trl_pairs) <= 0.5
    assert 0.25 <= longer_share(hh_pairs) <= 0.5


def test_text_has_non_ascii_and_many_distinct_prompts(sample: Sample) -> None:
    # Given the TRL file
    out, manifest = sample
    text = (out / TRL_FILE).read_bytes().decode("utf-8", errors="replace")
    rows = good_objects(out, manifest, TRL_FILE)
    # Then it holds accented letters, an em dash and combining marks, over many prompts and topics
    assert {"é", "—", "\u0301"} <= set(text)
    assert len({prompt_key(row["prompt"]) for row in rows}) >= 100
    assert len({row["category"] for row in rows}) >= 20


def test_the_bank_loads_and_is_well_formed() -> None:
    # When the bank shipped with the package is loaded
    loaded = bank()
    phrase_lists = [loaded[key] for key in loaded if key != "topics"]
    texts = [text for t in TOPICS for text in (t.name, *t.entities, *t.facts, *t.myths)]
    texts += [text for phrases in phrase_lists for text in phrases]
    # Then it holds the topics and every phrase list the generator draws from, none empty
    assert set(loaded) == {
        "topics",
        "templates",
        "follow_ups",
        "openers",
        "list_intros",
        "closers",
        "evasive",
        "rude",
        "wrong_openers",
        "bluster",
    }
    assert all(phrase_lists)
    # and topics are distinct, with another entity to follow up on, facts for a four-fact
    # answer and a myth for a wrong one
    assert len({t.name for t in TOPICS}) == len(TOPICS) == len(loaded["topics"]) >= 2
    for topic in TOPICS:
        assert len(topic.entities) >= 2 and len(topic.facts) >= 4 and topic.myths, topic.name
    # and no text is empty, padded, or already decomposed (the NFD duplicates must differ)
    for text in texts:
        assert text and text == text.strip(), repr(text)
        assert unicodedata.is_normalized("NFC", text), repr(text)


def test_too_few_prompts_is_refused(tmp_path: Path) -> None:
    # When a sample too small to hold every planted row is asked for
    # Then it is refused before anything is written
    with pytest.raises(ValueError, match="n_prompts"):
        write_sample(tmp_path / "out", n_prompts=5)
    assert not (tmp_path / "out").exists()


def test_command_line_prints_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When the module's command line runs
    code = main([str(tmp_path), "--seed", "2", "--prompts", "80"])
    # Then it writes the files and prints the manifest as JSON
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["seed"] == 2
    assert printed["n_prompts"] == 80
    assert printed["files"] == [str(tmp_path / name) for name in FILES]
    assert sum(printed["bad_row_counts"].values()) == sum(len(f["bad_rows"]) for f in printed["contents"])


def test_one_annotator_casts_every_dissenting_vote_and_the_report_ranks_it_last(
    sample: Sample, tmp_path: Path
) -> None:
    # given the sample's good votes, grouped by pair
    out, manifest = sample
    votes = good(csv_rows(out / VOTES_FILE), planted(manifest, VOTES_FILE))
    by_pair: dict[tuple[str, frozenset[str]], dict[str, str]] = {}
    for vote in votes:
        a, b = norm(vote["response_a"]), norm(vote["response_b"])
        winner = {"a": a, "b": b, "tie": "tie"}[vote["label"]]
        by_pair.setdefault((norm(vote["prompt"]), frozenset((a, b))), {})[vote["annotator"]] = winner
    # then in every 2-1 majority the one against the others is ann5, and ann5 is in every 1-1 conflict
    for voters in by_pair.values():
        counts = Counter(voters.values())
        if len(voters) == 3 and len(counts) == 2:
            assert {annotator for annotator, w in voters.items() if counts[w] == 1} == {"ann5"}
        if len(voters) == 2 and len(counts) == 2 and "tie" not in counts:
            assert "ann5" in voters
    # and once ingested, the data report ranks ann5 last
    lake = Lake(tmp_path / "lake")
    ingest(lake, [out], IngestConfig())
    build_pairs(lake, SplitConfig(), PairsConfig())
    report = data_report(lake)["annotators"]
    ranked = [a["annotator"] for a in report if a["source"].endswith("/votes_labelled")]
    assert ranked[0] == "ann5"
