"""`rmcore lake check`, and the one line every command prints when a committed file is bad.

python -m pytest tests/data/test_lake_check.py

Each test copies one lake built from the built-in sample (one ingest of its four files, then
build-pairs), damages a file and runs the command line as a user would.
"""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from rmcore.cli import main
from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import PAIR_TABLES, TABLES, Lake
from rmcore.data.lake.maintain import compact
from rmcore.data.pairs import build_pairs
from rmcore.sample import write_sample

MAGIC = (
    "unreadable: Parquet magic bytes not found in footer. "
    "Either the file is corrupted or this is not a parquet file"
)
"""pyarrow's first line for a file whose last bytes are not Parquet's footer."""


def missing(path: Path) -> None:
    path.unlink()


def junk(path: Path) -> None:
    path.write_bytes(b"not parquet " * 1000)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (missing, "missing"),
    "junk": (junk, MAGIC),
    "truncated": (truncated, MAGIC),
}
"""How a file is damaged, and the reason `lake check` gives for it."""


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    write_sample(root / "raw")
    lake = Lake(root / "lake")
    ingest(lake, [root / "raw"], IngestConfig())
    build_pairs(lake, SplitConfig(), PairsConfig())
    return root / "lake"


@pytest.fixture
def lake_dir(sample_lake: Path, tmp_path: Path) -> Path:
    """A copy of the sample lake, this test's to damage."""
    return Path(shutil.copytree(sample_lake, tmp_path / "lake"))


def parts(lake_dir: Path, table: str) -> list[Path]:
    """The files the latest version of `table` commits."""
    return [Path(f) for f in DeltaTable(str(lake_dir / table)).file_uris()]


def part(lake_dir: Path, table: str, split: str | None = None) -> Path:
    """The largest file the latest version of `table` commits (of `split`, for a pair table)."""
    files = [f for f in parts(lake_dir, table) if split is None or f.parent.name == f"split={split}"]
    return max(files, key=lambda f: f.stat().st_size)


def committed(lake_dir: Path) -> tuple[int, str]:
    """How many files the latest versions of the tables commit, and the versions as the check lists them."""
    tables = {name: DeltaTable(str(lake_dir / name)) for name in (*TABLES, *PAIR_TABLES)}
    files = sum(len(table.file_uris()) for table in tables.values())
    return files, ", ".join(f"{name} v{table.version()}" for name, table in tables.items())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    """Exit status, stdout and the lines of stderr of one `rmcore` command."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def check(capsys: pytest.CaptureFixture[str], lake_dir: Path) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "lake", "check", "--lake", str(lake_dir), "--json")
    return code, orjson.loads(out.splitlines()[-1])


def new_label_file(tmp_path: Path) -> Path:
    """A label file the sample lake does not hold: one TRL pair."""
    path = tmp_path / "new_pairs.jsonl"
    row = {"prompt": "Name a prime above 100.", "chosen": "101 is prime.", "rejected": "100 is prime."}
    path.write_bytes(orjson.dumps(row) + b"\n")
    return path


def test_a_healthy_lake_checks_clean(capsys: pytest.CaptureFixture[str], lake_dir: Path) -> None:
    # given the sample lake as ingest and build-pairs left it: every table, each pair table a file or
    # more per split
    files, versions = committed(lake_dir)
    assert {f.parent.name for f in parts(lake_dir, "pairs")} == {
        "split=train",
        "split=validation",
        "split=test",
    }
    # when it is checked
    code, out, err = run(capsys, "lake", "check", "--lake", str(lake_dir))
    # then every file of every table passes
    assert (code, err) == (0, [])
    assert out.splitlines() == [
        f"{lake_dir}: {files} file(s) checked in {versions}: "
        "every file present, readable and of its committed row count"
    ]
    code, found = check(capsys, lake_dir)
    assert (code, found["healthy"], found["problems"], found["files_checked"]) == (0, True, [], files)
    assert list(found["tables"]) == [*TABLES, *PAIR_TABLES]


def test_a_lake_without_tables_has_nothing_to_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "lake", "check", "--lake", str(tmp_path / "none"))
    assert (code, out.splitlines()) == (0, [f"{tmp_path / 'none'}: no tables yet"])


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_bad_comparisons_file_is_named_with_what_to_do(
    capsys: pytest.CaptureFixture[str], lake_dir: Path, how: str
) -> None:
    # given a lake whose comparisons file is deleted, overwritten with junk, or cut in half
    bad = part(lake_dir, "comparisons")
    damage, reason = DAMAGE[how]
    damage(bad)
    # when the lake is checked
    code, out, _ = run(capsys, "lake", "check", "--lake", str(lake_dir))
    # then it fails and names that file, why, and what to do, then sums up
    files, versions = committed(lake_dir)
    assert code == 1
    first, summary = out.splitlines()
    assert first.startswith(f"{bad}: {reason}; restore it from a backup or the object store's versioning")
    assert f"DeltaTable('{lake_dir / 'comparisons'}').repair()" in first
    assert ("delete the file, then remove it" in first) == (how != "missing")
    assert summary == f"{lake_dir}: {files} file(s) checked in {versions}: 1 bad file(s)"
    code, found = check(capsys, lake_dir)
    assert (code, found["healthy"]) == (1, False)
    assert [(p["table"], p["path"], p["reason"]) for p in found["problems"]] == [
        ("comparisons", str(bad), reason)
    ]


def test_a_file_of_other_rows_is_named_with_both_counts(
    capsys: pytest.CaptureFixture[str], lake_dir: Path
) -> None:
    # given a comparisons file replaced by a sound Parquet file of its first 10 rows
    bad = part(lake_dir, "comparisons")
    committed = pq.read_metadata(bad).num_rows
    pq.write_table(pq.read_table(bad).slice(0, 10), bad)
    # when the lake is checked, then the row counts of the log and of the file are given
    code, found = check(capsys, lake_dir)
    assert code == 1
    assert [(p["path"], p["reason"]) for p in found["problems"]] == [
        (str(bad), f"rows: the log commits {committed}, the file holds 10")
    ]


def test_a_file_of_another_size_is_unreadable_though_its_footer_is_sound(
    capsys: pytest.CaptureFixture[str], lake_dir: Path
) -> None:
    # given a comparisons file whose first half is cut away: its footer (and row count) is intact, but
    # delta-rs reads a file by its committed size, so every reader of the table fails on it
    bad = part(lake_dir, "comparisons")
    size = bad.stat().st_size
    bad.write_bytes(bad.read_bytes()[size // 2 :])
    # when the lake is checked, then both sizes are given
    code, found = check(capsys, lake_dir)
    assert code == 1
    assert [(p["path"], p["reason"]) for p in found["problems"]] == [
        (str(bad), f"unreadable: the log commits {size} bytes, the file holds {size - size // 2}")
    ]
    # and a command reading it names it too
    code, _, err = run(capsys, "build-pairs", "--lake", str(lake_dir))
    assert (code, len(err)) == (1, 1)
    assert err[0].startswith(f"rmcore build-pairs: error: {bad}: unreadable: the log commits {size} bytes")


def test_giving_up_a_corrupt_file_as_the_check_says_leaves_a_healthy_lake(
    capsys: pytest.CaptureFixture[str], lake_dir: Path
) -> None:
    # given a lake whose (largest) comparisons file is junk
    bad = part(lake_dir, "comparisons")
    rows, lost = Lake(lake_dir).read("comparisons").num_rows, pq.read_metadata(bad).num_rows
    files, _ = committed(lake_dir)
    junk(bad)
    # when its rows are given up as the check's action says: delete the file, then Delta's FSCK
    bad.unlink()
    removed = DeltaTable(str(lake_dir / "comparisons")).repair()
    # then the log no longer names it, the lake checks clean and holds the other files' comparisons
    assert removed["files_removed"] == [bad.name]
    code, found = check(capsys, lake_dir)
    assert (code, found["problems"], found["files_checked"]) == (0, [], files - 1)
    assert Lake(lake_dir).read("comparisons").num_rows == rows - lost


def test_repair_leaves_a_corrupt_file_that_is_present_in_the_log(lake_dir: Path) -> None:
    # why the check's action deletes a corrupt file before the FSCK: it removes only missing files
    junk(part(lake_dir, "comparisons"))
    assert DeltaTable(str(lake_dir / "comparisons")).repair()["files_removed"] == []


@pytest.mark.parametrize("how", list(DAMAGE))
@pytest.mark.parametrize("command", ["build-pairs", "data-report", "ingest", "lake compact"])
def test_every_command_meeting_a_bad_file_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], lake_dir: Path, tmp_path: Path, command: str, how: str
) -> None:
    # given a lake whose comparisons (of several files) has a bad file
    assert len(parts(lake_dir, "comparisons")) > 1  # what compaction rewrites
    bad = part(lake_dir, "comparisons")
    damage, reason = DAMAGE[how]
    damage(bad)
    # when a command reads the comparisons (ingest: to drop the duplicates of a new file)
    inputs = [str(new_label_file(tmp_path))] if command == "ingest" else []
    code, _, err = run(capsys, *command.split(), *inputs, "--lake", str(lake_dir))
    # then it fails in one line naming the file, why, and `rmcore lake check`
    assert code == 1
    prog = command.split()[0]
    assert err == [f"rmcore {prog}: error: {bad}: {reason}; run `rmcore lake check --lake {lake_dir}`"]


def test_a_bad_pair_file_is_named_and_rebuilt_by_build_pairs(
    capsys: pytest.CaptureFixture[str], lake_dir: Path
) -> None:
    # given a lake whose train pairs file is junk
    bad = part(lake_dir, "pairs", "train")
    junk(bad)
    # when the lake is checked, then the file is named, with build-pairs as the fix
    code, out, _ = run(capsys, "lake", "check", "--lake", str(lake_dir))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{bad}: {MAGIC}; rerun `rmcore build-pairs --lake {lake_dir}` (it replaces the pair tables whole)"
    )
    # when build-pairs is rerun, then the lake checks clean
    assert run(capsys, "build-pairs", "--lake", str(lake_dir))[0] == 0
    assert check(capsys, lake_dir)[0] == 0


@pytest.mark.parametrize("how", list(DAMAGE))
def test_training_on_a_bad_pair_file_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], lake_dir: Path, tmp_path: Path, tiny_encoder_dir: Path, how: str
) -> None:
    # given a lake whose train pairs file is bad
    bad = part(lake_dir, "pairs", "train")
    damage, reason = DAMAGE[how]
    damage(bad)
    # when a model is trained on the lake's pairs
    code, _, err = run(
        capsys,
        "train",
        "--set",
        f"data.lake={lake_dir}",
        "--set",
        f"output_dir={tmp_path / 'run'}",
        "--set",
        f"model.name_or_path={tiny_encoder_dir}",
    )
    # then loading the pairs fails in one line naming the file and `rmcore lake check`
    assert code == 1
    assert err == [f"rmcore train: error: {bad}: {reason}; run `rmcore lake check --lake {lake_dir}`"]


def test_a_bad_file_of_an_older_version_is_named_by_a_read_of_that_version(
    capsys: pytest.CaptureFixture[str], lake_dir: Path, tmp_path: Path
) -> None:
    # given a lake of two ingests (version 2), compacted: its latest comparisons are in new files, and a
    # file of version 1 is deleted
    old = part(lake_dir, "comparisons")
    assert run(capsys, "ingest", str(new_label_file(tmp_path)), "--lake", str(lake_dir))[0] == 0
    compact(Lake(lake_dir))
    assert old not in parts(lake_dir, "comparisons")
    old.unlink()
    # when the lake is checked, then its latest versions are sound
    assert check(capsys, lake_dir)[0] == 0
    # when the pairs of lake version 1 are built, then the one line names the file that version needs
    code, _, err = run(capsys, "build-pairs", "--lake", str(lake_dir), "--as-of", "1")
    assert code == 1
    assert err == [
        f"rmcore build-pairs: error: {old}: missing; an older lake version needs it and the latest do not:"
        " versions older than `rmcore lake vacuum` kept cannot be read"
    ]
