"""Every real dataset in ../shared/data through ingest and build_pairs, into one lake per module.

Each expected figure is derived here, independently of rmcore, from the raw files with small
readers of our own (json, gzip, openpyxl) that follow the documented rules: identity is text
after NFC, trimming and whitespace folding; a comparison is (pair, vote, strength, annotator);
a pair's p_chosen is the share of its votes for chosen, ties counting half.
"""

import gzip
import hashlib
import json
import re
import shutil
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import PAIR_TABLES, TABLES, Lake
from rmcore.data.pairs import PairsSummary, build_pairs, read_split
from rmcore.data.quality.report import data_report

pytestmark = pytest.mark.shared_data

MAX_CHARS = IngestConfig().max_chars
SPLITS = ("train", "validation", "test")
HH = "hh-rlhf/harmless-base/test.jsonl.gz"
HHH_PROMETHEUS = "hhh-alignment/hhh_alignment_eval.prometheus_format.json"
HHH_PAIRS = "hhh-alignment/hhh_alignment_pairs.jsonl"
LLMBAR_NATURAL = "llmbar/LLMBar_Natural/dataset.json"
LLMBAR_FAIREVAL = "llmbar/Processed_FairEval/dataset.json"
LLMBAR_MTBENCH = "llmbar/Processed_MT-Bench/dataset.json"
OASST = "oasst-en100/en_100_tree.jsonl"
PANDALM = "pandalm/testset-v1.json"
TULU = "tulu1-human-eval/eval_annotations_tulu_1.xlsx"


# ---------------------------------------------------------------------------------------------
# Independent readers: raw file -> rows read, rejects, and normalized votes (no rmcore code)
# ---------------------------------------------------------------------------------------------

Prompt = tuple[tuple[str, str], ...]
"""A prompt as normalized (role, text) messages."""


def norm(text: str) -> str:
    """Identity text: NFC, trimmed, whitespace runs folded."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def text_field(value: Any) -> str:
    """A required text: None, non-string and blank values are rejects."""
    if value is None:
        raise Reject("null_field")
    if not isinstance(value, str):
        raise Reject("non_string")
    if not value.strip():
        raise Reject("empty_text")
    return value


@dataclass(frozen=True)
class Vote:
    """One judgment in canonical orientation: `first` is the smaller normalized response."""

    prompt: Prompt
    first: str
    second: str
    vote_first: float  # 1 first wins, 0 second wins, 0.5 tie
    strength: float | None
    annotator: str

    @property
    def pair(self) -> tuple[Prompt, str, str]:
        return (self.prompt, self.first, self.second)


def vote(
    prompt: Prompt,
    a: str,
    b: str,
    label: str,
    strength: float | None = None,
    annotator: str | None = None,
) -> Vote:
    """A judgment of raw responses a and b (label a / b / tie), canonically oriented."""
    na, nb = norm(a), norm(b)
    a_wins = {"a": 1.0, "b": 0.0, "tie": 0.5}[label]
    if na <= nb:
        return Vote(prompt, na, nb, a_wins, strength, annotator or "")
    return Vote(prompt, nb, na, 1.0 - a_wins, strength, annotator or "")


def checked(prompt_texts: list[str], responses: list[str]) -> None:
    """The checks every format shares: length limit, then no two identical responses."""
    if len("".join(prompt_texts)) > MAX_CHARS or any(len(r) > MAX_CHARS for r in responses):
        raise Reject("text_too_long")
    if len({norm(r) for r in responses}) < len(responses):
        raise Reject("identical_responses")


@dataclass
class RawFile:
    """What the raw file holds, by our own reading."""

    rows: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_rows: set[tuple[str, int]] = field(default_factory=set)
    votes: list[Vote] = field(default_factory=list)
    votes_per_row: dict[int, list[Vote]] = field(default_factory=dict)
    rankings: list[tuple[Prompt, tuple[str, ...]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.rows - sum(self.rejected.values())

    def read(self, rows: Iterator[tuple[int, Any]], parse: Callable[[Any], list[Vote]]) -> "RawFile":
        for row, value in rows:
            self.rows += 1
            try:
                votes = parse(value)
            except Reject as why:
                self.rejected[why.reason] += 1
                self.rejected_rows.add((why.reason, row))
                continue
            self.votes_per_row[row] = votes
            self.votes.extend(votes)
        return self


def json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    return enumerate(json.loads(path.read_bytes()), start=1)


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for row, line in enumerate(f, start=1):
            if line.strip():
                yield row, json.loads(line)


def xlsx_rows(path: Path) -> Iterator[tuple[int, Any]]:
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    cells = workbook.worksheets[0].iter_rows(values_only=True)
    header = next(cells)
    rows = [(row, dict(zip(header, values, strict=False))) for row, values in enumerate(cells, start=1)]
    workbook.close()
    return iter([(row, value) for row, value in rows if any(v is not None for v in value.values())])


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}


def hh_turns(transcript: str) -> list[tuple[str, str]]:
    pieces = _HH_TURN.split(transcript)
    return [(_HH_ROLE[who], said) for who, said in zip(pieces[1::2], pieces[2::2], strict=True)]


def read_hh(path: Path) -> RawFile:
    def parse(record: dict) -> list[Vote]:
        chosen, rejected = hh_turns(record["chosen"]), hh_turns(record["rejected"])
        for turns in (chosen, rejected):
            if not turns[-1][1].strip():
                raise Reject("empty_text")
        prompt = [(role, norm(said)) for role, said in chosen[:-1]]
        if prompt != [(role, norm(said)) for role, said in rejected[:-1]]:
            raise Reject("prompt_mismatch")
        if any(not said for _, said in prompt):
            raise Reject("empty_text")
        checked([said for _, said in chosen[:-1]], [chosen[-1][1], rejected[-1][1]])
        return [vote(tuple(prompt), chosen[-1][1], rejected[-1][1], "a")]

    return RawFile().read(jsonl_rows(path), parse)


def read_pandalm(path: Path) -> RawFile:
    def parse(record: dict) -> list[Vote]:
        instruction = text_field(record["instruction"])
        a, b = text_field(record["response1"]), text_field(record["response2"])
        extra = record.get("input")
        text = f"{instruction}\n\n{extra}" if isinstance(extra, str) and extra.strip() else instruction
        checked([text], [a, b])
        labels = {1: "a", 2: "b", 0: "tie"}
        prompt = (("user", norm(text)),)
        return [
            vote(prompt, a, b, labels[record[n]], None, n) for n in ("annotator1", "annotator2", "annotator3")
        ]

    return RawFile().read(json_rows(path), parse)


def oasst_groups(node: dict, path: Prompt) -> Iterator[tuple[Prompt, list[dict]]]:
    """Every (conversation so far, ranked sibling replies) with K >= 2, depth first."""
    role = {"prompter": "user", "assistant": "assistant"}[node["role"]]
    conversation = (*path, (role, norm(text_field(node["text"]))))
    replies = node.get("replies") or []
    ranked = [r for r in replies if r.get("rank") is not None and not r.get("deleted")]
    if len(ranked) >= 2:
        yield conversation, ranked
    for reply in replies:
        yield from oasst_groups(reply, conversation)


def read_oasst(path: Path, include_synthetic: bool = False) -> RawFile:
    raw = RawFile()

    def parse(tree: dict) -> list[Vote]:
        if tree["prompt"].get("synthetic") and not include_synthetic:
            raise Reject("synthetic_skipped")
        groups = list(oasst_groups(tree["prompt"], ()))
        if not groups:
            raise Reject("no_judgment")
        votes = []
        for conversation, ranked in groups:
            texts = [r["text"] for r in ranked]
            checked([t for _, t in conversation], texts)
            ranks = [r["rank"] for r in ranked]
            for i in range(len(ranked)):
                for j in range(i + 1, len(ranked)):
                    label = "a" if ranks[i] < ranks[j] else "b" if ranks[i] > ranks[j] else "tie"
                    votes.append(vote(conversation, texts[i], texts[j], label))
        raw.rankings.extend(
            (conversation, tuple(r["text"] for r in ranked)) for conversation, ranked in groups
        )
        return votes

    return raw.read(jsonl_rows(path), parse)


TULU_PREFERENCES = {
    "a-is-better": ("a", 2.0),
    "a-is-slightly-better": ("a", 1.0),
    "tie": ("tie", None),
    "b-is-slightly-better": ("b", 1.0),
    "b-is-better": ("b", 2.0),
}


def read_tulu(path: Path) -> RawFile:
    raw = RawFile()

    def parse(record: dict) -> list[Vote]:
        prompt = text_field(record["prompt"])
        a, b = text_field(record["completion_a"]), text_field(record["completion_b"])
        checked([prompt], [a, b])
        label, strength = TULU_PREFERENCES[record["preference"]]
        return [vote((("user", norm(prompt)),), a, b, label, strength, record["evaluator"].strip())]

    rows = list(xlsx_rows(path))
    raw.extra["records"] = dict(rows)
    return raw.read(iter(rows), parse)


_PROMETHEUS = re.compile(
    r"###The instruction to evaluate:(.*?)###Response to evaluate:(.*?)###Score Rubrics:", re.DOTALL
)


def read_prometheus(path: Path) -> RawFile:
    def parse(record: dict) -> list[Vote]:
        task, chosen = (s.strip() for s in _PROMETHEUS.search(record["chosen_instruction"]).groups())
        other, rejected = (s.strip() for s in _PROMETHEUS.search(record["rejected_instruction"]).groups())
        if task != other:
            raise Reject("prompt_mismatch")
        checked([task], [chosen, rejected])
        return [vote((("user", norm(task)),), chosen, rejected, "a")]

    return RawFile().read(json_rows(path), parse)


def read_trl_pairs(path: Path) -> RawFile:
    def parse(record: dict) -> list[Vote]:
        prompt, chosen, rejected = (text_field(record[k]) for k in ("prompt", "chosen", "rejected"))
        checked([prompt], [chosen, rejected])
        return [vote((("user", norm(prompt)),), chosen, rejected, "a")]

    return RawFile().read(jsonl_rows(path), parse)


def read_llmbar(path: Path) -> RawFile:
    def parse(record: dict) -> list[Vote]:
        prompt, a, b = (text_field(record[k]) for k in ("input", "output_1", "output_2"))
        checked([prompt], [a, b])
        return [vote((("user", norm(prompt)),), a, b, {1: "a", 2: "b"}[record["label"]])]

    return RawFile().read(json_rows(path), parse)


READERS: dict[str, tuple[str, Callable[[Path], RawFile]]] = {
    HH: ("hh", read_hh),
    HHH_PROMETHEUS: ("prometheus", read_prometheus),
    HHH_PAIRS: ("trl", read_trl_pairs),
    LLMBAR_NATURAL: ("llmbar", read_llmbar),
    LLMBAR_FAIREVAL: ("llmbar", read_llmbar),
    LLMBAR_MTBENCH: ("llmbar", read_llmbar),
    OASST: ("oasst", read_oasst),
    PANDALM: ("pandalm", read_pandalm),
    TULU: ("tulu", read_tulu),
}


def identity(v: Vote) -> tuple:
    """What makes two judgments the same comparison."""
    return (v.pair, v.vote_first, v.strength, v.annotator)


def distinct(votes: list[Vote]) -> list[Vote]:
    """Votes with repeated comparisons dropped, first kept."""
    seen: dict[tuple, Vote] = {}
    for v in votes:
        seen.setdefault(identity(v), v)
    return list(seen.values())


@dataclass(frozen=True)
class Aggregate:
    n_votes: int
    ties: int
    p_first: float
    margin_first: float | None

    @property
    def p_chosen(self) -> float:
        return max(self.p_first, 1 - self.p_first)


def aggregate(votes: list[Vote]) -> dict[tuple, Aggregate]:
    """Distinct comparisons grouped by pair: vote counts, share for `first`, graded margin."""
    groups: dict[tuple, list[Vote]] = defaultdict(list)
    for v in distinct(votes):
        groups[v.pair].append(v)
    result = {}
    for pair, group in groups.items():
        graded = [
            0.0 if v.vote_first == 0.5 else (v.strength if v.vote_first == 1.0 else -v.strength)
            for v in group
            if v.strength is not None or v.vote_first == 0.5
        ]
        has_strength = any(v.strength is not None for v in group)
        result[pair] = Aggregate(
            n_votes=len(group),
            ties=sum(v.vote_first == 0.5 for v in group),
            p_first=sum(v.vote_first for v in group) / len(group),
            margin_first=sum(graded) / len(graded) if has_strength and graded else None,
        )
    return result


# ---------------------------------------------------------------------------------------------
# Fixtures: the raw files read once, the lake ingested once (twice, to check idempotence)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(shared_data: Path) -> dict[str, RawFile]:
    """Every shared file by its path under shared/data, read by the readers above."""
    return {name: reader(shared_data / name) for name, (_, reader) in READERS.items()}


@dataclass
class Ingested:
    lake: Lake
    first: IngestSummary
    second: IngestSummary
    versions_before: dict[str, int]
    versions_after: dict[str, int]
    pairs: PairsSummary
    pair_rows: list[dict]
    ranking_rows: list[dict]
    comparisons: list[dict]


def versions(lake: Lake) -> dict[str, int]:
    """The version of each of the lake's ingest tables: a commit to any of them moves it on."""
    return {name: table.version() for name in TABLES if (table := lake.table(name)) is not None}


def ingested_lake(
    lake: Lake, first: IngestSummary, second: IngestSummary, before: dict[str, int]
) -> Ingested:
    """The lake with its pairs built (default splits), and what the tests read from it."""
    after = versions(lake)
    pairs = build_pairs(lake, SplitConfig(), PairsConfig())
    return Ingested(
        lake=lake,
        first=first,
        second=second,
        versions_before=before,
        versions_after=after,
        pairs=pairs,
        pair_rows=read_split(lake, "pairs", SPLITS).to_pylist(),
        ranking_rows=read_split(lake, "pair_rankings", SPLITS).to_pylist(),
        comparisons=lake.read("comparisons").to_pylist(),
    )


def copy_lake(source: Lake, target: Path) -> Lake:
    """A copy of a lake's ingest tables (not its pairs): Delta tables name their files relatively."""
    shutil.copytree(source.work, target, ignore=shutil.ignore_patterns(*PAIR_TABLES, ".duckdb"))
    return Lake(target)


@pytest.fixture(scope="module")
def lake(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """The whole folder ingested, ingested again, then paired with the default splits."""
    lake = Lake(tmp_path_factory.mktemp("shared") / "lake")
    first = ingest(lake, [shared_data], IngestConfig())
    before = versions(lake)
    second = ingest(lake, [shared_data], IngestConfig())
    return ingested_lake(lake, first, second, before)


def entry(ingested: Ingested, name: str):
    return next(e for e in ingested.lake.files() if e.path.endswith(name))


def rejects_of(ingested: Ingested, name: str) -> set[tuple[str, int]]:
    path = entry(ingested, name).path
    rows = ingested.lake.read("rejects", columns=["reason", "raw_row", "raw_file"]).to_pylist()
    return {(r["reason"], r["raw_row"]) for r in rows if r["raw_file"] == path}


def prompt_of(messages: list[dict]) -> Prompt:
    return tuple((m["role"], norm(m["content"])) for m in messages)


def pair_key(row: dict) -> tuple[Prompt, str, str]:
    low, high = sorted((norm(row["chosen"]), norm(row["rejected"])))
    return (prompt_of(row["prompt"]), low, high)


def all_votes(raw: dict[str, RawFile]) -> list[Vote]:
    """Every vote in ingest order (files sorted by path, as a folder is expanded)."""
    return [v for name in sorted(raw) for v in raw[name].votes]


# ---------------------------------------------------------------------------------------------
# Every file: formats, accounting, rejects, comparisons
# ---------------------------------------------------------------------------------------------


def test_every_file_ingests_with_its_format(lake: Ingested) -> None:
    # given the shared folder ingested
    # when the `files` table is read
    formats = {name: entry(lake, name).format for name in READERS}
    # then every file was read, each with its format detected
    assert lake.first.files_failed == {}
    assert len(lake.first.files_ingested) == len(READERS)
    assert formats == {name: fmt for name, (fmt, _) in READERS.items()}


@pytest.mark.parametrize("name", sorted(READERS))
def test_rows_and_rejects_per_file_match_the_raw_file(lake: Ingested, raw: dict, name: str) -> None:
    # given one file as the lake recorded it and as our reader sees it
    got, expected = entry(lake, name), raw[name]
    # then rows read, accepted and rejected agree, and balance
    assert got.rows_read == expected.rows
    assert got.accepted == expected.accepted
    assert got.rejected == dict(expected.rejected)
    assert got.rows_read == got.accepted + sum(got.rejected.values())
    # and the rejects table names the same rows with the same reasons
    assert rejects_of(lake, name) == expected.rejected_rows


def test_totals_balance_over_the_folder(lake: Ingested, raw: dict) -> None:
    # given the summary of the whole folder
    summary = lake.first.as_dict()
    # then its totals are the sums over files and over our readings, and they balance
    assert summary["rows_read"] == sum(r.rows for r in raw.values()) == 5369
    assert summary["accepted"] == sum(r.accepted for r in raw.values()) == 5254
    assert summary["rejected"] == dict(sum((r.rejected for r in raw.values()), Counter()))
    assert summary["rows_read"] == summary["accepted"] + summary["rejected_total"]
    entries = lake.lake.files()
    assert summary["rows_read"] == sum(e.rows_read for e in entries)
    assert summary["new_comparisons"] == sum(e.new_comparisons for e in entries)
    assert summary["duplicates"] == sum(e.duplicates for e in entries)


def test_new_comparisons_and_duplicates_per_file(lake: Ingested, raw: dict) -> None:
    # given every vote in ingest order, and the comparisons already seen before each file
    seen: set[tuple] = set()
    for name in sorted(raw):
        votes = raw[name].votes
        new = {identity(v) for v in votes} - seen
        seen |= new
        # then each file adds the votes not seen before and counts the rest as duplicates
        got = entry(lake, name)
        assert (name, got.new_comparisons, got.duplicates) == (name, len(new), len(votes) - len(new))
    # and the lake stores each distinct comparison once
    assert len(lake.comparisons) == len(seen) == 7231
    assert len({r["comparison_id"] for r in lake.comparisons}) == len(seen)


def test_a_second_ingest_adds_nothing(lake: Ingested) -> None:
    # given the folder ingested a second time into the same lake
    second = lake.second.as_dict()
    # then every file is skipped, nothing is counted and no table was committed to
    assert second["files_skipped"] == len(READERS)
    assert second["files_ingested"] == []
    assert (second["rows_read"], second["new_comparisons"], second["duplicates"]) == (0, 0, 0)
    assert lake.versions_after == lake.versions_before
    assert lake.second.lake_version is None


# ---------------------------------------------------------------------------------------------
# HH-RLHF harmless-base
# ---------------------------------------------------------------------------------------------


def test_hh_rejects_mismatched_prefixes_and_empty_replies(lake: Ingested, raw: dict) -> None:
    # given the 2,312 HH transcripts: 5 whose prompts differ, 4 with an empty last reply
    hh = raw[HH]
    assert hh.rows == 2312
    assert {r for reason, r in hh.rejected_rows if reason == "prompt_mismatch"} == {
        1255,
        1689,
        1951,
        1953,
        2037,
    }
    assert {r for reason, r in hh.rejected_rows if reason == "empty_text"} == {87, 517, 926, 1104}
    # then the lake rejects exactly those rows and accepts every other one
    assert entry(lake, HH).rejected == {"prompt_mismatch": 5, "empty_text": 4}
    assert entry(lake, HH).accepted == 2303


def test_hh_prompts_keep_every_turn(lake: Ingested, shared_data: Path) -> None:
    # given each accepted HH record's chosen transcript, split into turns by our own reader
    transcripts = {row: record["chosen"] for row, record in jsonl_rows(shared_data / HH)}
    stored = [c for c in lake.comparisons if c["raw_file"].endswith(HH)]
    assert len(stored) == 2303
    not_alternating = set()
    for c in stored:
        transcript = transcripts[c["raw_row"]]
        turns = hh_turns(transcript)[:-1]
        # then the prompt holds every turn before the last reply, one user message per Human turn
        assert prompt_of(c["prompt"]) == tuple((role, norm(said)) for role, said in turns), c["raw_row"]
        humans = transcript.count("\n\nHuman:")
        assert sum(m["role"] == "user" for m in c["prompt"]) == humans
        if [m["role"] for m in c["prompt"]] != ["user", "assistant"] * (humans - 1) + ["user"]:
            not_alternating.add(c["raw_row"])
    # and the turns alternate, but in 4 records where an inline "Human:" lacks its blank line
    assert not_alternating == {668, 764, 1320, 1850}
    # and the longest conversation (18 Human turns) keeps all 35 prompt messages
    longest = max(stored, key=lambda c: len(c["prompt"]))
    assert transcripts[longest["raw_row"]].count("\n\nHuman:") == 18
    assert [m["role"] for m in longest["prompt"]] == ["user", "assistant"] * 17 + ["user"]


# ---------------------------------------------------------------------------------------------
# PandaLM
# ---------------------------------------------------------------------------------------------


def test_pandalm_rejects_non_text_and_empty_fields(lake: Ingested, raw: dict, shared_data: Path) -> None:
    # given the 999 PandaLM rows: 6 responses are JSON true, 54 responses are "", and row 467
    # has a blank instruction (" ") before its input "Truthfulness"
    rows = dict(json_rows(shared_data / PANDALM))
    panda = raw[PANDALM]
    non_string = {r for reason, r in panda.rejected_rows if reason == "non_string"}
    empty = {r for reason, r in panda.rejected_rows if reason == "empty_text"}
    assert non_string == {158, 159, 160, 162, 163, 165}
    assert all(True in (rows[r]["response1"], rows[r]["response2"]) for r in non_string)
    assert sum(rows[r][k] == "" for r in empty for k in ("response1", "response2")) == 54
    assert [r for r in empty if "" not in (rows[r]["response1"], rows[r]["response2"])] == [467]
    # then the lake quarantines the same rows for the same reasons
    got = entry(lake, PANDALM)
    assert (got.rows_read, got.accepted) == (999, 938)
    assert got.rejected == {"non_string": 6, "empty_text": 55}


def test_pandalm_gives_three_judgments_per_row_and_one_pair_per_distinct_comparison(
    lake: Ingested, raw: dict
) -> None:
    # given three annotator votes per accepted row, and the distinct (prompt, response pair)s
    panda = raw[PANDALM]
    assert all(len(votes) == 3 for votes in panda.votes_per_row.values())
    assert len(panda.votes) == 3 * 938 == 2814
    # (identical texts from different systems make 102 rows repeat an earlier row's pair)
    groups = aggregate(panda.votes)
    assert len(groups) == 836
    # then the file's judgments are its votes, split into new ones and repeats
    got = entry(lake, PANDALM)
    assert got.new_comparisons + got.duplicates == 2814
    assert got.new_comparisons == len(distinct(panda.votes)) == 2510
    # and build-pairs makes one pair per distinct (prompt, response pair)
    pandalm_pairs = [p for p in lake.pair_rows if p["source"] == "pandalm/testset-v1"]
    assert {pair_key(p) for p in pandalm_pairs} == set(groups)


def test_pandalm_unanimous_votes(lake: Ingested, raw: dict, shared_data: Path) -> None:
    # given the 879 raw rows whose three annotators agree (85 of them on a tie)
    rows = dict(json_rows(shared_data / PANDALM))
    unanimous = {r for r, v in rows.items() if v["annotator1"] == v["annotator2"] == v["annotator3"]}
    assert len(unanimous) == 879
    assert sum(rows[r]["annotator1"] == 0 for r in unanimous) == 85
    # when rejects leave 825 of them, 741 not ties ...
    panda = raw[PANDALM]
    kept = unanimous & set(panda.votes_per_row)
    decisive = {r for r in kept if rows[r]["annotator1"] != 0}
    assert (len(kept), len(decisive)) == (825, 741)
    # ... and rows repeating a (prompt, response pair) collapse into one pair
    groups = aggregate(panda.votes)
    expected = sum(g.n_votes == 3 and g.p_chosen == 1.0 for g in groups.values())
    assert expected == 673
    # then that many PandaLM pairs have three agreeing, decisive votes
    pandalm_pairs = [p for p in lake.pair_rows if p["source"] == "pandalm/testset-v1"]
    assert sum(p["n_votes"] == 3 and p["p_chosen"] == 1.0 for p in pandalm_pairs) == expected


# ---------------------------------------------------------------------------------------------
# OpenAssistant trees
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oasst_with_synthetic(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """The OASST file alone, synthetic trees included, paired."""
    lake = Lake(tmp_path_factory.mktemp("oasst") / "lake")
    first = ingest(lake, [shared_data / OASST], IngestConfig(include_synthetic=True))
    return ingested_lake(lake, first, first, versions(lake))


def ranked_group_sizes(path: Path, synthetic: bool | None) -> list[int]:
    """K of every ranked sibling group, in trees whose synthetic flag is `synthetic` (None: all)."""
    sizes = []
    for _, tree in jsonl_rows(path):
        if synthetic is None or bool(tree["prompt"].get("synthetic")) == synthetic:
            sizes += [len(ranked) for _, ranked in oasst_groups(tree["prompt"], ())]
    return sizes


def partly_ranked_groups(path: Path) -> list[tuple[str, int]]:
    """(tree id, K) of every ranked group that has unranked siblings beside its K ranked replies."""
    found = []

    def walk(node: dict, tree: str) -> None:
        replies = node.get("replies") or []
        ranked = [r for r in replies if r.get("rank") is not None and not r.get("deleted")]
        if len(ranked) >= 2 and len(ranked) < len(replies):
            found.append((tree, len(ranked)))
        for reply in replies:
            walk(reply, tree)

    for _, tree in jsonl_rows(path):
        walk(tree["prompt"], tree["message_tree_id"])
    return found


def test_oasst_quarantines_synthetic_trees_by_default(lake: Ingested, raw: dict, shared_data: Path) -> None:
    # given 100 trees, 5 synthetic; the 95 others hold 207 ranked groups (K = 2..9)
    sizes = ranked_group_sizes(shared_data / OASST, synthetic=False)
    assert (len(sizes), min(sizes), max(sizes)) == (207, 2, 9)
    assert sum(k * (k - 1) // 2 for k in sizes) == 732
    assert {r for reason, r in raw[OASST].rejected_rows if reason == "synthetic_skipped"} == {
        r for r, tree in jsonl_rows(shared_data / OASST) if tree["prompt"].get("synthetic")
    }
    # then the 5 synthetic trees are quarantined and each group gives a ranking and its pairs
    got = entry(lake, OASST)
    assert (got.rows_read, got.accepted, got.rejected) == (100, 95, {"synthetic_skipped": 5})
    assert (got.new_rankings, got.new_comparisons, got.duplicates) == (207, 732, 0)
    # and the 151 rankings of K > 2 land in the pair_rankings table
    assert sum(k > 2 for k in sizes) == 151
    assert sum(lake.pairs.rankings.values()) == len(lake.ranking_rows) == 151
    assert all(len(r["responses"]) > 2 for r in lake.ranking_rows)


def test_oasst_includes_synthetic_trees_when_asked(oasst_with_synthetic: Ingested, shared_data: Path) -> None:
    # given every tree: 212 ranked groups, 754 implied pairs, 155 groups with K > 2
    sizes = ranked_group_sizes(shared_data / OASST, synthetic=None)
    assert (len(sizes), sum(k * (k - 1) // 2 for k in sizes), sum(k > 2 for k in sizes)) == (212, 754, 155)
    expected = read_oasst(shared_data / OASST, include_synthetic=True)
    assert (expected.accepted, len(expected.rankings), len(expected.votes)) == (100, 212, 754)
    # then with include_synthetic every tree is accepted with all of its groups
    summary = oasst_with_synthetic.first
    assert (summary.rows_read, summary.accepted, summary.rejected) == (100, 100, {})
    assert (summary.new_rankings, summary.new_comparisons) == (212, 754)
    assert len(oasst_with_synthetic.ranking_rows) == 155
    # (the data README's 211 groups / 751 pairs leave out the one group of 3 ranked replies
    # beside an unranked one; its 3 ranks still make a ranking)
    assert [k for _, k in partly_ranked_groups(shared_data / OASST)] == [3]


def test_oasst_rankings_keep_their_responses_in_order(lake: Ingested, raw: dict) -> None:
    # given our ranked groups of K > 2, by (conversation, responses)
    expected = Counter(
        (conversation, tuple(norm(t) for t in texts))
        for conversation, texts in raw[OASST].rankings
        if len(texts) > 2
    )
    # then the pair_rankings table holds the same groups
    got = Counter((prompt_of(r["prompt"]), tuple(norm(t) for t in r["responses"])) for r in lake.ranking_rows)
    assert got == expected


# ---------------------------------------------------------------------------------------------
# Tulu human evaluation (XLSX)
# ---------------------------------------------------------------------------------------------


def test_tulu_rejects_identical_completions(lake: Ingested, raw: dict) -> None:
    # given 1,150 annotations, 40 with identical completions
    tulu = raw[TULU]
    records = tulu.extra["records"]
    identical = {r for r, v in records.items() if v["completion_a"] == v["completion_b"]}
    assert (tulu.rows, len(identical)) == (1150, 40)
    assert {r for _, r in tulu.rejected_rows} == identical
    # then exactly those are quarantined
    got = entry(lake, TULU)
    assert (got.rows_read, got.accepted, got.rejected) == (1150, 1110, {"identical_responses": 40})


@pytest.mark.parametrize(
    ("row", "preference", "label", "strength"),
    [
        (1, "a-is-better", "a", 2.0),
        (2, "tie", "tie", None),
        (4, "a-is-slightly-better", "a", 1.0),
        (9, "b-is-slightly-better", "b", 1.0),
        (17, "b-is-better", "b", 2.0),
    ],
)
def test_tulu_label_and_strength_by_hand(
    lake: Ingested, raw: dict, row: int, preference: str, label: str, strength: float | None
) -> None:
    # given one spreadsheet row with its graded preference
    record = raw[TULU].extra["records"][row]
    assert record["preference"] == preference
    # then its stored comparison keeps A/B as written, with the label and strength of the grade
    stored = next(c for c in lake.comparisons if c["raw_file"].endswith(TULU) and c["raw_row"] == row)
    assert (stored["response_a"], stored["response_b"]) == (record["completion_a"], record["completion_b"])
    assert (stored["label"], stored["strength"], stored["annotator"]) == (
        label,
        strength,
        record["evaluator"],
    )


def test_tulu_every_stored_label_follows_the_preference(lake: Ingested, raw: dict) -> None:
    # given every stored Tulu comparison and the spreadsheet row it came from
    records = raw[TULU].extra["records"]
    stored = [c for c in lake.comparisons if c["raw_file"].endswith(TULU)]
    assert len(stored) == 1104
    for c in stored:
        # then its label and strength are the row's graded preference
        assert (c["label"], c["strength"]) == TULU_PREFERENCES[records[c["raw_row"]]["preference"]]


def test_tulu_annotators_on_one_pair_aggregate(lake: Ingested, raw: dict) -> None:
    # given 1,110 accepted rows, of which 6 repeat an evaluator's own judgment (some A/B-swapped)
    tulu = raw[TULU]
    records = tulu.extra["records"]
    assert len(tulu.votes) - len(distinct(tulu.votes)) == 6
    got = entry(lake, TULU)
    assert (got.new_comparisons, got.duplicates) == (1104, 6)
    # and 955 distinct pairs by content, 126 of them with 2-3 distinct judgments (the README's
    # 127 groups of 2-4 count rows by instance and model pair, identical completions included)
    groups = aggregate(tulu.votes)
    sizes = Counter(g.n_votes for g in groups.values())
    assert (len(groups), sizes) == (955, Counter({1: 829, 2: 103, 3: 23}))
    by_models = Counter((v["instance_id"], frozenset((v["model_a"], v["model_b"]))) for v in records.values())
    assert Counter(n for n in by_models.values() if n > 1) == Counter({2: 101, 3: 25, 4: 1})
    # then build-pairs aggregates each group into one pair with that many votes
    tulu_pairs = {
        pair_key(p): p for p in lake.pair_rows if p["source"] == "tulu1-human-eval/eval_annotations_tulu_1"
    }
    assert set(tulu_pairs) == set(groups)
    assert Counter(p["n_votes"] for p in tulu_pairs.values()) == sizes


# ---------------------------------------------------------------------------------------------
# HHH alignment, LLMBar
# ---------------------------------------------------------------------------------------------


def test_hhh_prometheus_and_pairs_files_are_the_same_judgments(lake: Ingested, raw: dict) -> None:
    # given the prometheus JSON and the parsed pairs JSONL, read independently
    prometheus, pairs = raw[HHH_PROMETHEUS], raw[HHH_PAIRS]
    assert prometheus.rows == pairs.rows == 221
    assert set(prometheus.votes) == set(pairs.votes)
    assert len(set(prometheus.votes)) == 221
    assert len({v.prompt for v in pairs.votes}) == 102
    # then the first adds 221 comparisons and the second is all duplicates
    assert (entry(lake, HHH_PROMETHEUS).new_comparisons, entry(lake, HHH_PROMETHEUS).duplicates) == (221, 0)
    assert (entry(lake, HHH_PAIRS).new_comparisons, entry(lake, HHH_PAIRS).duplicates) == (0, 221)


@pytest.mark.parametrize(
    ("name", "rows", "pairs", "prompts"),
    [(LLMBAR_NATURAL, 100, 100, 100), (LLMBAR_FAIREVAL, 66, 66, 66), (LLMBAR_MTBENCH, 200, 195, 75)],
)
def test_llmbar_rows(lake: Ingested, raw: dict, name: str, rows: int, pairs: int, prompts: int) -> None:
    # given one LLMBar set: MT-Bench repeats 5 rows exactly, over 75 distinct questions
    llmbar = raw[name]
    assert (llmbar.rows, len(aggregate(llmbar.votes)), len({v.prompt for v in llmbar.votes})) == (
        rows,
        pairs,
        prompts,
    )
    # then every row is accepted and the repeats are duplicates
    got = entry(lake, name)
    assert (got.rows_read, got.accepted, got.rejected) == (rows, rows, {})
    assert (got.new_comparisons, got.duplicates) == (pairs, rows - pairs)


# ---------------------------------------------------------------------------------------------
# Pairs and splits over the whole lake
# ---------------------------------------------------------------------------------------------


def test_pair_files_hold_one_row_per_distinct_pair(lake: Ingested, raw: dict) -> None:
    # given every distinct pair among the comparisons, by the lake and by our reading
    expected = aggregate(all_votes(raw))
    pair_ids = {c["pair_id"] for c in lake.comparisons}
    # then the pair table holds each exactly once
    assert len(pair_ids) == len(expected) == 5408
    assert sum(lake.pairs.pairs.values()) == len(lake.pair_rows) == len(pair_ids)
    assert {p["pair_id"] for p in lake.pair_rows} == pair_ids
    assert {pair_key(p) for p in lake.pair_rows} == set(expected)


def test_pair_votes_match_an_independent_aggregation(lake: Ingested, raw: dict) -> None:
    # given our own aggregation of every distinct vote
    expected = aggregate(all_votes(raw))
    conflicts = 0
    for p in lake.pair_rows:
        want = expected[pair_key(p)]
        # then each pair has the same votes, ties and soft label
        assert (p["n_votes"], p["ties"]) == (want.n_votes, want.ties)
        assert p["p_chosen"] == pytest.approx(want.p_chosen)
        assert p["conflict"] == (want.p_first == 0.5)
        conflicts += p["conflict"]
        if want.p_first == 0.5:
            # (an even split has no favoured side, so only the margin's size is fixed)
            if want.margin_first is None:
                assert p["margin"] is None
            else:
                assert abs(p["margin"]) == pytest.approx(abs(want.margin_first))
            continue
        # and chosen is the response the votes favour, its margin signed toward it
        chosen_first = want.p_first > 0.5
        assert (norm(p["chosen"]) == pair_key(p)[1]) == chosen_first
        if want.margin_first is None:
            assert p["margin"] is None
        else:
            assert p["margin"] == pytest.approx(want.margin_first if chosen_first else -want.margin_first)
    assert conflicts == lake.pairs.conflicts == 348


def test_no_prompt_sits_in_two_splits(lake: Ingested) -> None:
    # given every pair and every ranking with its split
    split_of_prompt: dict[str, set[str]] = defaultdict(set)
    ids_of_prompt: dict[Prompt, set[str]] = defaultdict(set)
    for row in [*lake.pair_rows, *lake.ranking_rows]:
        split_of_prompt[row["prompt_id"]].add(row["split"])
        ids_of_prompt[prompt_of(row["prompt"])].add(row["prompt_id"])
    # then each prompt has one id and one split, the one its hash gives
    assert all(len(ids) == 1 for ids in ids_of_prompt.values())
    assert all(len(splits) == 1 for splits in split_of_prompt.values())
    for prompt_id, (split,) in split_of_prompt.items():
        u = int(prompt_id[:8], 16) / 2**32
        assert split == ("train" if u < 0.8 else "validation" if u < 0.9 else "test")
    assert set(lake.pairs.pairs) == set(SPLITS)


def test_drop_conflicts_leaves_out_even_splits(lake: Ingested, tmp_path: Path) -> None:
    # given a copy of the lake, paired again with drop_conflicts
    copy = copy_lake(lake.lake, tmp_path / "lake")
    summary = build_pairs(copy, SplitConfig(), PairsConfig(drop_conflicts=True))
    rows = read_split(copy, "pairs", SPLITS).select(["pair_id", "conflict"]).to_pylist()
    # then the pair table holds every distinct pair but the conflicts
    distinct_pairs = len({c["pair_id"] for c in lake.comparisons})
    assert summary.conflicts_dropped == summary.conflicts == lake.pairs.conflicts
    assert sum(summary.pairs.values()) == len(rows) == distinct_pairs - summary.conflicts
    assert not any(r["conflict"] for r in rows)


# ---------------------------------------------------------------------------------------------
# Label quality: annotators' judgments and Krippendorff's alpha, from the raw annotator columns
# ---------------------------------------------------------------------------------------------

ANNOTATED = {PANDALM: "pandalm/testset-v1", TULU: "tulu1-human-eval/eval_annotations_tulu_1"}
"""The files whose rows name their annotators (PandaLM's annotator1..3 columns, Tulu's evaluator),
and the source each lands in."""


@pytest.fixture(scope="module")
def report(lake: Ingested) -> dict[str, Any]:
    return data_report(lake.lake)


def text_digest(text: str) -> str:
    """A response's id: BLAKE2b-128 of its normalized text; the smaller one is the pair's `first`."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def units(votes: list[Vote]) -> list[Counter]:
    """Per pair with 2+ distinct votes, its counts of first / second / tie, `first` being the response
    of the smaller digest (a Vote's `first` is the smaller text)."""
    by_pair: dict[tuple, Counter] = defaultdict(Counter)
    for v in distinct(votes):
        smaller_text_is_first = text_digest(v.first) <= text_digest(v.second)
        if v.vote_first == 0.5:
            by_pair[v.pair]["tie"] += 1
        else:
            by_pair[v.pair]["first" if (v.vote_first == 1.0) == smaller_text_is_first else "second"] += 1
    return [counts for counts in by_pair.values() if counts.total() >= 2]


def nominal_alpha(counted: list[Counter]) -> float:
    """alpha = 1 - (n - 1) sum_u (n_u^2 - sum_c n_uc^2) / (n_u - 1) / (n^2 - sum_c n_c^2): the
    coincidence-matrix definition with the off-diagonal sums written as squares."""
    pooled: Counter = sum(counted, Counter())
    n = pooled.total()
    within = sum((u.total() ** 2 - sum(c * c for c in u.values())) / (u.total() - 1) for u in counted)
    return 1 - (n - 1) * within / (n * n - sum(c * c for c in pooled.values()))


@pytest.mark.parametrize("name", sorted(ANNOTATED))
def test_annotator_judgments_and_alpha_match_the_raw_columns(report: dict, raw: dict, name: str) -> None:
    # given the file's accepted rows as distinct votes by annotator, read from its own columns
    votes = raw[name].votes
    source = ANNOTATED[name]
    judgments = Counter(v.annotator for v in distinct(votes))
    counted = units(votes)
    # then the report counts the same judgments per annotator
    entries = [e for e in report["annotators"] if e["source"] == source]
    assert {e["annotator"]: e["judgments"] for e in entries} == judgments
    # and the same pairs with two or more votes, their percent agreement and alpha
    pairs_of_votes = sum(u.total() * (u.total() - 1) for u in counted)
    agreeing = sum(c * (c - 1) for u in counted for c in u.values())
    assert report["agreement"][source] == {
        "items": len(counted),
        "percent_agreement": pytest.approx(agreeing / pairs_of_votes),
        "krippendorff_alpha": pytest.approx(nominal_alpha(counted)),
    }


# ---------------------------------------------------------------------------------------------
# Votes weighed by reliability: Dawid-Skene on the sources with annotator ids (PandaLM, Tulu)
# ---------------------------------------------------------------------------------------------

PANDALM_SOURCE, TULU_SOURCE = ANNOTATED[PANDALM], ANNOTATED[TULU]


@pytest.fixture(scope="module")
def weighed(lake: Ingested, tmp_path_factory: pytest.TempPathFactory) -> tuple[PairsSummary, list[dict]]:
    """A copy of the lake paired again with aggregate dawid-skene: the summary and every pair row."""
    copy = copy_lake(lake.lake, tmp_path_factory.mktemp("weighed") / "lake")
    summary = build_pairs(copy, SplitConfig(), PairsConfig(aggregate="dawid-skene"))
    return summary, read_split(copy, "pairs", SPLITS).to_pylist()


def test_dawid_skene_changes_few_winners_and_decides_only_real_disagreements(
    weighed: tuple[PairsSummary, list[dict]],
) -> None:
    # given the lake paired by Dawid-Skene, each source with annotator ids fitted on its own
    summary, rows = weighed
    # then (measured) the posterior overturns 6 of Tulu's 955 majorities (3 of them single votes by
    # evaluators whose estimated confusion matrix makes their vote count against its side) and none of
    # PandaLM's 836, whose three annotators agree on 92% of their vote pairs
    assert summary.changed_winner == {TULU_SOURCE: 6}
    assert Counter(r["source"] for r in rows if r["p_votes"] < 0.5) == summary.changed_winner
    tulu_changed = [r for r in rows if r["source"] == TULU_SOURCE and r["p_votes"] < 0.5]
    assert Counter(r["n_votes"] for r in tulu_changed) == {1: 3, 2: 2, 3: 1}
    assert Counter(r["source"] for r in rows if r["source"] in ANNOTATED.values()) == {
        PANDALM_SOURCE: 836,
        TULU_SOURCE: 955,
    }
    # and it decides 17 of Tulu's even splits, each two evaluators who disagree (15) or a 1-1 with a tie
    # (2), for the one it finds more reliable; an even split of ties alone (every one of PandaLM's 62,
    # and 269 of Tulu's) stays an exact conflict, since a tie says nothing about either side
    decided = [r for r in rows if r["p_votes"] == 0.5 and r["p_chosen"] > 0.5]
    assert Counter((r["source"], r["n_votes"], r["ties"]) for r in decided) == {
        (TULU_SOURCE, 2, 0): 15,
        (TULU_SOURCE, 3, 1): 2,
    }
    assert all(r["p_chosen"] > 0.6 for r in decided)
    undecided = Counter(r["source"] for r in rows if r["p_votes"] == 0.5 and r["p_chosen"] == 0.5)
    assert (undecided[PANDALM_SOURCE], undecided[TULU_SOURCE]) == (62, 269)
    assert summary.conflicts_resolved == 17


def test_dawid_skene_keeps_the_votes_and_weighs_only_sources_with_annotators(
    weighed: tuple[PairsSummary, list[dict]], raw: dict
) -> None:
    # given our own vote shares of every distinct pair
    expected = aggregate(all_votes(raw))
    _, rows = weighed
    for p in rows:
        want = expected[pair_key(p)]
        chosen_first = norm(p["chosen"]) == pair_key(p)[1]
        # then n_votes and ties count the raw judgments, p_votes is chosen's plain vote share and
        # p_chosen the posterior's, never below 1/2
        assert (p["n_votes"], p["ties"]) == (want.n_votes, want.ties)
        assert p["p_votes"] == pytest.approx(want.p_first if chosen_first else 1 - want.p_first)
        assert p["p_chosen"] >= 0.5
        # and a pair changed winner exactly where the votes had a strict majority for the other side
        assert (p["p_votes"] < 0.5) == (want.p_first != 0.5 and (want.p_first > 0.5) != chosen_first)
        # and the sources without annotator ids keep their vote shares exactly
        if p["source"] not in ANNOTATED.values():
            assert p["p_chosen"] == p["p_votes"]
