"""Interrupted ingest: `rmcore ingest` killed with SIGKILL leaves the lake as it was; a rerun finishes it.

.venv/bin/pytest tests/data/test_interrupted.py

Two ways to kill: at wall-clock times or when a file appears, on inputs large enough that ingest
takes seconds; and deterministically, through a wrapper around `rmcore.cli.main` that SIGKILLs
itself just before or just after its k-th atomic file publish, for every k.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.identity import normalized_text
from rmcore.data.ingest import ingest
from rmcore.data.ingest.plan import file_hash
from rmcore.data.lake import TABLES, Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.pairs.splits import SPLITS

CONFIG = IngestConfig()
KILLED = -signal.SIGKILL
TIMEOUT_S = 120

# `rmcore ingest` that SIGKILLs itself at RMCORE_TEST_KILL_AT ("before:K" / "after:K": around its
# K-th atomic publish) and logs each finished publish to RMCORE_TEST_PUBLISH_LOG.
KILLER = """
import os, signal, sys
import rmcore.atomic as atomic
import rmcore.data.ingest.commit as ingest_module
from rmcore.cli import main

kill_at = os.environ.get("RMCORE_TEST_KILL_AT", "")
log = os.environ["RMCORE_TEST_PUBLISH_LOG"]
real_publish = atomic.publish
count = 0

def publish(tmp, path):
    global count
    count += 1
    if kill_at == f"before:{count}":
        os.kill(os.getpid(), signal.SIGKILL)
    real_publish(tmp, path)
    with open(log, "a") as f:
        f.write(f"{path}\\n")
    if kill_at == f"after:{count}":
        os.kill(os.getpid(), signal.SIGKILL)

atomic.publish = publish
ingest_module.publish = publish
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
    """A lake with one file committed (`base`), new files, and `reference`: base + new, uninterrupted."""

    base: Path
    new: list[Path]
    reference: Lake


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
    ingest(reference, [str(p) for p in new], CONFIG)
    return World(base, new, reference)


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
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".duckdb", "pairs"))
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


def run_killer(lake: Path | str, inputs: list[Path], out: Path, kill_at: str = "", cwd: Path | None = None):
    """Run `rmcore ingest` under KILLER; its exit status and the paths it published, in order."""
    log = out / f"published-{kill_at or 'all'}.txt"
    log.unlink(missing_ok=True)
    env = {"RMCORE_TEST_KILL_AT": kill_at, "RMCORE_TEST_PUBLISH_LOG": str(log)}
    proc = start(["-c", KILLER, *ingest_command(lake, inputs)], out, env, cwd)
    rc = finish(proc)
    return rc, log.read_text().splitlines() if log.exists() else []


# ---------------------------------------------------------------------------------------------
# What a lake holds
# ---------------------------------------------------------------------------------------------


def pair_view(lake: Lake) -> list[tuple[Any, ...]]:
    build_pairs(lake, SplitConfig(), PairsConfig())
    rows = [r for s in SPLITS for r in pq.read_table(lake.root / "pairs" / f"{s}.parquet").to_pylist()]
    keys = ("pair_id", "prompt_id", "p_chosen", "n_votes", "ties", "conflict", "split")
    return sorted(
        (*(r[k] for k in keys), normalized_text(r["chosen"]), normalized_text(r["rejected"])) for r in rows
    )


@dataclass
class Committed:
    """What readers of a lake see: the manifest's bytes, its parts, and the pairs built from it."""

    manifest: bytes
    parts: dict[str, list[str]]
    pairs: list[tuple[Any, ...]]

    @classmethod
    def of(cls, lake: Lake) -> "Committed":
        parts = {table: [str(p.relative_to(lake.root)) for p in lake.parts(table)] for table in TABLES}
        return cls(lake.manifest_path.read_bytes(), parts, pair_view(lake))


def content(lake: Lake) -> tuple[set[str], list[dict[str, Any]]]:
    """Comparison ids and manifest entries (without their time): equal for equal ingests."""
    entries = [e.model_dump(exclude={"ingested_at"}) for e in lake.manifest().files]
    return lake.column("comparisons", "comparison_id"), entries


def leftovers(lake: Lake) -> list[str]:
    """Files under the lake that no commit refers to: temporaries, orphan parts, staging."""
    manifest = lake.manifest()
    kept = {lake.root / p for e in manifest.files for ps in e.parts.values() for p in ps} | {
        lake.manifest_path
    }
    return sorted(
        str(p.relative_to(lake.root))
        for p in lake.root.rglob("*")
        if p.is_file()
        and p not in kept
        and p.name != ".lock"
        and not {".duckdb", "pairs"} & set(p.relative_to(lake.root).parts)
    )


def staged(lake: Lake, count: int) -> Callable[[], bool]:
    return lambda: len(list((lake.root / "staging").glob("*/staged.json"))) >= count


def published(path: Path) -> Callable[[], bool]:
    return path.exists


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_killed_while_staging_or_committing_leaves_the_lake_and_a_rerun_finishes(large, tmp_path):
    # given a lake holding one committed file, and two large new files
    lake = copy_lake(large.base, tmp_path / "lake")
    before = Committed.of(lake)
    command = ["-m", "rmcore.cli", *ingest_command(lake.root, large.new)]
    # when ingest is killed at fixed times, while it starts and while it stages
    for delay in (0.3, 1.0, 2.0):
        proc = start(command, tmp_path)
        time.sleep(delay)
        assert proc.poll() is None, f"ingest ended within {delay} s: {(tmp_path / 'stderr').read_text()}"
        assert kill(proc) == KILLED
        # then the lake is as it was
        assert Committed.of(lake) == before, f"killed after {delay} s"
    # when it is killed once both files are staged (the commit begins), and once the first
    # file's part is published but not yet committed
    first_part = lake.part_path("comparisons", file_hash(large.new[0]), 0)
    for condition in (staged(lake, 2), published(first_part)):
        if kill_when(start(command, tmp_path), tmp_path, condition):
            # then the lake is as it was
            assert Committed.of(lake) == before
        else:  # it finished in the blink between two polls: then it committed everything
            assert content(lake) == content(large.reference)
    # when, with stale temporaries lying around, it is rerun to the end
    (lake.root / ".manifest.json.99999.tmp").write_text("{half a manifest")
    (lake.root / "comparisons" / ".orphan.parquet.99999.tmp").write_bytes(b"PAR1 half a part")
    proc = start(command, tmp_path)
    assert finish(proc) == 0, (tmp_path / "stderr").read_text()
    # then the lake is the one an uninterrupted ingest makes, and nothing else is left behind
    assert content(lake) == content(large.reference)
    assert leftovers(lake) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_killed_at_any_write_leaves_the_lake_unchanged_or_committed(small, tmp_path):
    # given every file one ingest publishes, in order: the manifest must come last
    rc, writes = run_killer(copy_lake(small.base, tmp_path / "count").root, small.new, tmp_path)
    assert rc == 0, (tmp_path / "stderr").read_text()
    assert Path(writes[-1]).name == "manifest.json"
    assert sum(Path(w).name == "manifest.json" for w in writes) == 1
    before = Committed.of(copy_lake(small.base, tmp_path / "before"))
    for k, write in enumerate(writes, start=1):
        for when in ("before", "after"):
            point = f"{when}:{k} ({write})"
            lake = copy_lake(small.base, tmp_path / f"{when}-{k}")
            # when ingest is killed just before or just after publishing its k-th file
            rc, _ = run_killer(lake.root, small.new, tmp_path, kill_at=f"{when}:{k}")
            assert rc == KILLED, point
            # then the lake is as it was, unless the manifest was published: then all is committed
            if when == "after" and k == len(writes):
                assert content(lake) == content(small.reference), point
            else:
                assert Committed.of(lake) == before, point
            # and a rerun gives the lake an uninterrupted ingest gives, with nothing left behind
            # (except staging after a kill past the commit: test_staging_of_a_committed_run_is_cleaned)
            ingest(lake, [str(p) for p in small.new], CONFIG)
            assert content(lake) == content(small.reference), point
            assert [p for p in leftovers(lake) if not p.startswith("staging")] == [], point


@pytest.mark.slow
def test_staging_of_a_committed_run_is_cleaned(small, tmp_path):
    # given an ingest killed right after its manifest write, before it removed its staging
    lake = copy_lake(small.base, tmp_path / "lake")
    _, writes = run_killer(copy_lake(small.base, tmp_path / "count").root, small.new, tmp_path)
    rc, _ = run_killer(lake.root, small.new, tmp_path, kill_at=f"after:{len(writes)}")
    assert rc == KILLED
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
    _, writes = run_killer(copy_lake(small.base, tmp_path / "count").root, small.new, tmp_path)
    last_staged = max(k for k, w in enumerate(writes, start=1) if Path(w).name == "staged.json")
    rc, _ = run_killer("lake", small.new, tmp_path, kill_at=f"after:{last_staged}", cwd=work)
    assert rc == KILLED
    # when it is rerun from the parent directory, naming the same lake
    rc, _ = run_killer("work/lake", small.new, tmp_path, cwd=tmp_path)
    assert rc == 0, (tmp_path / "stderr").read_text()
    # then the lake holds every judgment, as after an uninterrupted ingest
    assert content(Lake(work / "lake")) == content(small.reference)
