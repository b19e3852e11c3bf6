"""Interrupted ingest: `rmcore ingest` killed with SIGKILL leaves every table at a whole commit; a
rerun finishes it.

.venv/bin/pytest tests/data/test_interrupted.py

An ingest commits each data table once (rankings, comparisons, rejects), then `files`, whose version
is the lake's. A kill can fall between any two of those commits, so a killed lake may hold some tables
as the finished ingest leaves them and others as they were: each table is either, never half, and
readers of the lake version (build-pairs) see the lake as it was until `files` is committed. A rerun
skips what a table already holds (its `rmcore.file:<hash>` transactions), so it ends with exactly
the rows, rejects and `files` entries of an uninterrupted ingest.

Two ways to kill: at wall-clock times or when a file appears, on inputs large enough that ingest
takes seconds; and deterministically, through a wrapper around `rmcore.cli.main` that SIGKILLs
itself just before or just after its k-th write, for every k: an atomic file publish (staging), a
data file placed into a table's folder, or a Delta commit.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.identity import normalized_text
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import DATA_TABLES, PAIR_TABLES, TABLES, Lake, Snapshot
from rmcore.data.lake.maintain import vacuum
from rmcore.data.pairs import build_pairs, read_split
from rmcore.data.pairs.splits import SPLITS

CONFIG = IngestConfig()
KILLED = -signal.SIGKILL
TIMEOUT_S = 120

COMMIT_ORDER = ("rankings", "comparisons", "rejects", "files")
"""The order of an ingest's table commits."""

# `rmcore ingest` that SIGKILLs itself at RMCORE_TEST_KILL_AT ("before:K" / "after:K": around its
# K-th write) and logs each finished write to RMCORE_TEST_WRITE_LOG as "kind<TAB>what": `publish`
# (an atomic file, its path), `place` (a data file put into a table's folder, the table) and
# `commit` (a Delta commit, the table).
KILLER = """
import importlib, os, signal, sys
from pathlib import Path
import rmcore.atomic as atomic
import rmcore.data.lake.lake as lake_module
# by name: the package's `commit` attribute is the function, not this module
commit_module = importlib.import_module("rmcore.data.ingest.commit")
from rmcore.cli import main

kill_at = os.environ.get("RMCORE_TEST_KILL_AT", "")
log = os.environ["RMCORE_TEST_WRITE_LOG"]
count = 0

def table_name(table):
    return Path(str(table)).name if isinstance(table, (str, Path)) else table.metadata().name

def logged(kind, write, what):
    def wrapper(*args, **kwargs):
        global count
        count += 1
        if kill_at == f"before:{count}":
            os.kill(os.getpid(), signal.SIGKILL)
        result = write(*args, **kwargs)
        with open(log, "a") as f:
            f.write(f"{kind}\\t{what(*args)}\\n")
        if kill_at == f"after:{count}":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

atomic.publish = logged("publish", atomic.publish, lambda tmp, path: path)
commit_module.place = logged("place", commit_module.place, lambda lake, table, *rest: table)
commit_module.commit_placed = logged("commit", commit_module.commit_placed, lambda t, *rest: table_name(t))
lake_module.write_deltalake = logged("commit", lake_module.write_deltalake, lambda t, *rest: table_name(t))
sys.exit(main(sys.argv[1:]))
"""


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def labelled_lines(n: int, seed: int, bad_every: int) -> Iterator[str]:
    """Labelled JSONL lines: mostly new judgments, with exact and A/B-flipped repeats and bad rows."""
    rng = random.Random(seed)
    recent: list[dict[str, Any]] = []
    for i in range(n):
        if i % bad_every == bad_every - 1:
            yield (
                '{"prompt": "cut off'
                if (i // bad_every) % 2
                else json.dumps({"prompt": "p", "response_a": "", "response_b": "b", "label": "a"})
            )
            continue
        if recent and i % 50 == 0:
            yield json.dumps(rng.choice(recent))
            continue
        if recent and i % 97 == 0:
            row = rng.choice(recent)
            flipped = {"a": "b", "b": "a", "tie": "tie"}[row["label"]]
            yield json.dumps(
                {**row, "response_a": row["response_b"], "response_b": row["response_a"], "label": flipped}
            )
            continue
        row = {
            "prompt": f"Question {rng.randrange(max(n // 4, 1))} ({seed}): how would you explain this?",
            "response_a": f"Answer {i}-{seed} a: " + "some words " * rng.randrange(1, 8),
            "response_b": f"Answer {i}-{seed} b: " + "other words " * rng.randrange(1, 8),
            "label": rng.choice(["a", "b", "b", "tie"]),
        }
        if rng.random() < 0.5:
            row["annotator"] = rng.choice(["w1", "w2", "w3"])
        recent = [*recent[-999:], row]
        yield json.dumps(row)


def write_lines(path: Path, lines: Iterator[str] | list[str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines)
    return path


@dataclass
class World:
    """A lake with one file committed (`base`), new files, and `reference`: base + new, uninterrupted
    (`summary`: what that ingest reported)."""

    base: Path
    new: list[Path]
    reference: Lake
    summary: IngestSummary


def make_world(root: Path, rows: int, bad_every: int) -> World:
    raw = root / "raw"
    raw.mkdir(parents=True)
    lines = list(labelled_lines(rows, seed=1, bad_every=bad_every))
    half = len(lines) // 2
    committed = write_lines(raw / "committed.jsonl", lines[: max(rows // 100, 20)])
    new = [
        write_lines(raw / "new1.jsonl", lines[:half]),
        write_lines(raw / "new2.jsonl", [*lines[half:], *lines[0:half:37]]),  # some rows of new1 again
    ]
    base = root / "base"
    ingest(Lake(base), [str(committed)], CONFIG)
    reference = copy_lake(base, root / "reference")
    summary = ingest(reference, [str(p) for p in new], CONFIG)
    return World(base, new, reference, summary)


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> World:
    """200k rows in two files of ~20 MB: staging them takes seconds."""
    return make_world(tmp_path_factory.mktemp("large"), rows=200_000, bad_every=1000)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> World:
    """A few hundred rows with duplicates, flipped duplicates and bad rows."""
    return make_world(tmp_path_factory.mktemp("small"), rows=400, bad_every=40)


# ---------------------------------------------------------------------------------------------
# Running and killing `rmcore ingest`
# ---------------------------------------------------------------------------------------------


def copy_lake(source: Path, target: Path) -> Lake:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".duckdb", *PAIR_TABLES))
    return Lake(target)


def ingest_command(lake: Path | str, inputs: list[Path]) -> list[str]:
    return ["ingest", *(str(p) for p in inputs), "--lake", str(lake), "--json"]


def start(args: list[str], out: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Start `python <args>` with stdout and stderr into files (no pipe to fill up)."""
    with (out / "stdout").open("ab") as stdout, (out / "stderr").open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, *args], stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})}, cwd=cwd
        )


def finish(proc: subprocess.Popen) -> int:
    proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode


def kill(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGKILL)
    return finish(proc)


def kill_when(proc: subprocess.Popen, out: Path, condition: Callable[[], bool]) -> bool:
    """SIGKILL the process as soon as `condition` holds; False when it finished first."""
    deadline = time.monotonic() + TIMEOUT_S
    while proc.poll() is None:
        if condition():
            assert kill(proc) == KILLED
            return True
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)
    assert finish(proc) == 0, (out / "stderr").read_text()
    return False


def run_killer(
    lake: Path | str, inputs: list[Path], out: Path, kill_at: str = "", cwd: Path | None = None
) -> tuple[int, list[tuple[str, str]]]:
    """Run `rmcore ingest` under KILLER; its exit status and the writes it finished, in order, as
    (kind, what) pairs."""
    log = out / f"written-{kill_at or 'all'}.txt"
    log.unlink(missing_ok=True)
    env = {"RMCORE_TEST_KILL_AT": kill_at, "RMCORE_TEST_WRITE_LOG": str(log)}
    proc = start(["-c", KILLER, *ingest_command(lake, inputs)], out, env, cwd)
    rc = finish(proc)
    lines = log.read_text().splitlines() if log.exists() else []
    return rc, [(kind, what) for kind, what in (line.split("\t", 1) for line in lines)]


# ---------------------------------------------------------------------------------------------
# What a lake holds
# ---------------------------------------------------------------------------------------------


def pair_view(lake: Lake) -> list[tuple[Any, ...]]:
    build_pairs(lake, SplitConfig(), PairsConfig())
    rows = read_split(lake, "pairs", SPLITS).to_pylist()
    keys = ("pair_id", "prompt_id", "p_chosen", "n_votes", "ties", "conflict", "split")
    return sorted(
        (*(r[k] for k in keys), normalized_text(r["chosen"]), normalized_text(r["rejected"])) for r in rows
    )


def table_rows(lake: Lake, name: str) -> list[Any]:
    """A table's rows as comparable values, sorted, repeats kept: the ids of judgments and rankings,
    (file, row, reason) of rejects, and `files` entries without their time."""
    if name == "files":
        entries = [e.model_dump(mode="json", exclude={"ingested_at"}) for e in lake.files()]
        return sorted(json.dumps(e, sort_keys=True) for e in entries)
    if name == "rejects":
        rows = lake.read(name, columns=["raw_file", "raw_row", "reason"]).to_pylist()
        return sorted((r["raw_file"], r["raw_row"], r["reason"]) for r in rows)
    key = {"comparisons": "comparison_id", "rankings": "ranking_id"}[name]
    return sorted(lake.read(name, columns=[key]).column(0).to_pylist())


def table_version(lake: Lake, name: str) -> int:
    table = lake.table(name)
    assert table is not None
    return table.version()


@dataclass
class Committed:
    """What readers of a lake see: each table's version and rows, the lake version (the snapshot
    build-pairs reads), and the pairs built from it."""

    tables: dict[str, tuple[int, list[Any]]]
    snapshot: Snapshot | None
    pairs: list[tuple[Any, ...]]

    @classmethod
    def of(cls, lake: Lake) -> "Committed":
        tables = {name: (table_version(lake, name), table_rows(lake, name)) for name in TABLES}
        return cls(tables, lake.snapshot(), pair_view(lake))


def assert_whole_commits(lake: Lake, before: Committed, after: Committed, point: str) -> bool:
    """Check that every table of a killed lake is as it was `before` or as the finished ingest left it
    (`after`), that the tables changed are the first ones the ingest commits, and that the lake version
    and its pairs are `before`'s until `files` is committed; whether `files` was committed."""
    now = Committed.of(lake)
    for name in TABLES:
        assert now.tables[name] in (before.tables[name], after.tables[name]), f"{point}: {name}"
    changing = [name for name in COMMIT_ORDER if after.tables[name] != before.tables[name]]
    changed = [name for name in COMMIT_ORDER if now.tables[name] != before.tables[name]]
    assert changing[-1] == "files" and changed == changing[: len(changed)], point
    if "files" in changed:
        assert now == after, point
        return True
    assert (now.snapshot, now.pairs) == (before.snapshot, before.pairs), point
    return False


def leftovers(lake: Lake) -> list[str]:
    """Files under the lake that no table's latest version names, outside the tables' logs, DuckDB's
    spill and the pair tables: staging, temporaries, data files placed by a killed commit."""
    root = lake.work
    named = {Path(uri) for name in TABLES for uri in lake.table(name).file_uris()}  # type: ignore[union-attr]
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file()
        and p not in named
        and not {".duckdb", "_delta_log", *PAIR_TABLES} & set(p.relative_to(root).parts)
    )


def assert_only_orphans_then_vacuumed(lake: Lake, point: str) -> None:
    """Check that what a finished rerun left behind is only data files no commit names (invisible to
    readers), and that `rmcore lake vacuum` (retention 0) deletes them and no row readers see (its
    own commits move the tables' versions on, so versions are not compared)."""
    held = Committed.of(lake)
    assert all(p.split("/")[0] in DATA_TABLES and p.endswith(".parquet") for p in leftovers(lake)), point
    vacuum(lake, retention_hours=0)
    assert leftovers(lake) == [], point
    kept = Committed.of(lake)
    assert kept.pairs == held.pairs, point
    assert {name: rows for name, (_, rows) in kept.tables.items()} == {
        name: rows for name, (_, rows) in held.tables.items()
    }, point


def staged(lake: Lake, count: int) -> Callable[[], bool]:
    return lambda: len(list((lake.work / "staging").glob("*/staged.json"))) >= count


def placed(lake: Lake, table: str) -> Callable[[], bool]:
    """Whether a data file that the table's latest version does not name has appeared in its folder."""
    folder = Path(lake.table_uri(table))
    known = set(folder.glob("*.parquet"))
    return lambda: any(p not in known for p in folder.glob("*.parquet"))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_killed_while_staging_or_committing_leaves_whole_commits_and_a_rerun_finishes(large, tmp_path):
    # given a lake holding one committed file, and two large new files
    lake = copy_lake(large.base, tmp_path / "lake")
    before, after = Committed.of(lake), Committed.of(large.reference)
    command = ["-m", "rmcore.cli", *ingest_command(lake.uri, large.new)]
    # when ingest is killed at fixed times, while it starts and while it stages
    for delay in (0.3, 1.0, 2.0):
        proc = start(command, tmp_path)
        time.sleep(delay)
        assert proc.poll() is None, f"ingest ended within {delay} s: {(tmp_path / 'stderr').read_text()}"
        assert kill(proc) == KILLED
        # then the lake is as it was
        assert Committed.of(lake) == before, f"killed after {delay} s"
    # when it is killed once both files are staged (the commit begins), and once a data file is
    # placed into the comparisons table but not yet committed
    for condition in (staged(lake, 2), placed(lake, "comparisons")):
        if kill_when(start(command, tmp_path), tmp_path, condition):
            # then every table is at a whole commit, and the lake version as it was until `files` is
            assert_whole_commits(lake, before, after, "killed while committing")
        else:  # it finished in the blink between two polls: then it committed everything
            assert Committed.of(lake) == after
    # when, with a half-written data file and a half-written commit of a killed writer lying in the
    # comparisons table, it is rerun to the end
    comparisons = Path(lake.table_uri("comparisons"))
    (comparisons / f"part-{uuid.uuid4().hex}.zstd.parquet").write_bytes(b"PAR1 half a part")
    (comparisons / "_delta_log" / f"_commit_{uuid.uuid4()}.json.tmp").write_text("{half a commit")
    proc = start(command, tmp_path)
    assert finish(proc) == 0, (tmp_path / "stderr").read_text()
    # then the lake is the one an uninterrupted ingest makes, table versions included, and what is left
    # behind is only data files no commit names, which vacuum deletes
    assert Committed.of(lake) == after
    assert_only_orphans_then_vacuumed(lake, "rerun")


def test_the_killer_sees_every_kind_of_write(small, tmp_path):
    # given one ingest of the two new files run to the end under the killer (so that killing at
    # every write below reaches every point between two writes)
    rc, writes = run_killer(copy_lake(small.base, tmp_path / "count").uri, small.new, tmp_path)
    assert rc == 0, (tmp_path / "stderr").read_text()
    # then it logged each file's staging (a chunk per table, then staged.json) before any data file
    # was placed, then per data table with new rows its placed files and one commit, `files` last
    first_place = writes.index(("place", "comparisons"))
    assert [Path(what).name for kind, what in writes[:first_place] if kind == "publish"][:6] == [
        "comparisons-0000.parquet",
        "rejects-0000.parquet",
        "staged.json",
    ] * 2
    assert [write for write in writes if write[0] != "publish"] == [
        ("place", "comparisons"),
        ("place", "comparisons"),
        ("commit", "comparisons"),
        ("place", "rejects"),
        ("place", "rejects"),
        ("commit", "rejects"),
        ("commit", "files"),
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ingest_killed_at_any_write_leaves_whole_commits_and_a_rerun_finishes(small, tmp_path):
    # given every write one ingest makes, in order
    rc, writes = run_killer(copy_lake(small.base, tmp_path / "count").uri, small.new, tmp_path)
    assert rc == 0, (tmp_path / "stderr").read_text()
    before = Committed.of(copy_lake(small.base, tmp_path / "before"))
    after = Committed.of(small.reference)
    for k, write in enumerate(writes, start=1):
        for when in ("before", "after"):
            point = f"{when}:{k} {write}"
            lake = copy_lake(small.base, tmp_path / f"{when}-{k}")
            # when ingest is killed just before or just after its k-th write
            rc, _ = run_killer(lake.uri, small.new, tmp_path, kill_at=f"{when}:{k}")
            assert rc == KILLED, point
            # then every table is at a whole commit: as it was, or as the finished ingest leaves it,
            # and the lake version is as it was unless `files` was committed
            files_committed = assert_whole_commits(lake, before, after, point)
            assert files_committed == (write == ("commit", "files") and when == "after"), point
            # and a rerun reports what an uninterrupted ingest reports, counts and lake version (or,
            # after `files`, skips every file and commits nothing)
            again = ingest(lake, [str(p) for p in small.new], CONFIG)
            if files_committed:
                assert again.files_skipped == [str(p) for p in small.new], point
                assert (again.rows_read, again.new_comparisons, again.duplicates) == (0, 0, 0), point
                assert again.lake_version is None, point
            else:
                assert again.as_dict() | {"lake": ""} == small.summary.as_dict() | {"lake": ""}, point
            # and leaves the lake an uninterrupted ingest leaves: the same rows, no row or reject twice,
            # the same `files` entries and table versions
            assert Committed.of(lake) == after, point
            # with nothing left behind but placed files no commit names, which vacuum deletes
            assert_only_orphans_then_vacuumed(lake, point)


@pytest.mark.slow
def test_staging_of_a_committed_run_is_cleaned(small, tmp_path):
    # given an ingest killed right after its `files` commit, before it removed its staging
    lake = copy_lake(small.base, tmp_path / "lake")
    _, writes = run_killer(copy_lake(small.base, tmp_path / "count").uri, small.new, tmp_path)
    rc, _ = run_killer(lake.uri, small.new, tmp_path, kill_at=f"after:{len(writes)}")
    assert rc == KILLED
    assert any(p.startswith("staging/") for p in leftovers(lake))
    # when it is rerun
    again = ingest(lake, [str(p) for p in small.new], CONFIG)
    # then the files are skipped and the staged copies of their rows are gone
    assert len(again.files_skipped) == len(small.new)
    assert leftovers(lake) == []


@pytest.mark.slow
def test_rerun_from_another_directory_finishes_an_interrupted_ingest(small, tmp_path):
    # given an ingest into a relative --lake, killed after staging every file, before commit
    work = tmp_path / "work"
    work.mkdir()
    copy_lake(small.base, work / "lake")
    _, writes = run_killer(copy_lake(small.base, tmp_path / "count").uri, small.new, tmp_path)
    last_staged = max(k for k, (_, what) in enumerate(writes, start=1) if Path(what).name == "staged.json")
    rc, _ = run_killer("lake", small.new, tmp_path, kill_at=f"after:{last_staged}", cwd=work)
    assert rc == KILLED
    # when it is rerun from the parent directory, naming the same lake
    rc, _ = run_killer("work/lake", small.new, tmp_path, cwd=tmp_path)
    assert rc == 0, (tmp_path / "stderr").read_text()
    # then the lake holds every judgment, as after an uninterrupted ingest
    assert Committed.of(Lake(work / "lake")) == Committed.of(small.reference)
