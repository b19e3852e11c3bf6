"""`rmcore lake migrate`: a lake of Parquet parts and manifest.json (schema 2) into Delta tables.

The old lake is built the way its writer left one: the built-in sample is ingested into a Delta lake,
and each file's rows of each table are written back out as that file's parts
(`<table>/<hash>-<chunk>.parquet`, two chunks where a file has two rows or more) under a schema-2
manifest.json, with the debris the old writer could leave: an unlisted part, temporary files, pair
files, its lock.
"""

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rmcore.cli import main
from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import IngestSummary, ingest
from rmcore.data.lake import DATA_TABLES, Lake, Snapshot
from rmcore.data.lake.lake import ADDED, file_app
from rmcore.data.lake.migrate import (
    MIGRATED,
    Migration,
    OldManifest,
    commit_point,
    copy,
    migrate_lake,
    read_manifest,
    reset,
)
from rmcore.data.pairs import build_pairs
from rmcore.data.pairs.load import lake_pairs_hash
from rmcore.sample import write_sample

SAMPLE_ROWS = {"comparisons": 2022, "rankings": 53, "rejects": 20}
"""The sample's rows per table: ingest's new comparisons, new rankings and rejected total for seed 0."""


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted JSON texts: compared as a multiset (maps and lists make dicts unhashable)."""
    return sorted(orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS).decode() for row in rows)


def write_old_lake(delta: Lake, root: Path) -> list[dict[str, Any]]:
    """Write `delta`'s rows as a schema-2 lake at `root`, its entries in reverse commit order; the
    manifest's entries."""
    entries = []
    for entry in reversed(delta.files()):
        parts: dict[str, list[str]] = {}
        for name in DATA_TABLES:
            rows = delta.read(name)
            mine = rows.filter(pa.compute.equal(rows.column("raw_file"), entry.path))
            half = mine.num_rows // 2
            chunks = [mine.slice(0, half), mine.slice(half)] if half else [mine] if mine.num_rows else []
            for chunk, table in enumerate(chunks):
                part = f"{name}/{entry.content_hash}-{chunk:04d}.parquet"
                (root / name).mkdir(parents=True, exist_ok=True)
                pq.write_table(table, root / part, compression="zstd")
                parts.setdefault(name, []).append(part)
        entries.append({**entry.model_dump(), "ingested_at": entry.ingested_at.isoformat(), "parts": parts})
    (root / "manifest.json").write_text(json.dumps({"schema_version": 2, "files": entries}))
    # debris: a part no commit listed (an old writer killed before its manifest write), temporary files
    listed = root / entries[0]["parts"]["comparisons"][0]
    shutil.copyfile(listed, root / "comparisons" / f"{'ab' * 16}-0000.parquet")
    shutil.copyfile(listed, root / "comparisons" / f".{'cd' * 16}-0000.parquet.123.tmp")
    (root / ".manifest.json.123.tmp").write_text("{")
    (root / ".lock").touch()
    # and build-pairs' files of the old layout
    (root / "pairs").mkdir()
    pq.write_table(pa.table({"pair_id": ["x"]}), root / "pairs" / "train.parquet")
    pq.write_table(pa.table({"ranking_id": ["x"]}), root / "pairs" / "rankings_train.parquet")
    return entries


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    """The built-in sample's raw files, and a Delta lake they were ingested into, its pairs built."""
    root = tmp_path_factory.mktemp("sample")
    write_sample(root / "raw", seed=0)
    lake = Lake(root / "direct")
    ingest(lake, [root / "raw"], IngestConfig())
    build_pairs(lake, SplitConfig(), PairsConfig())
    return root / "raw", lake


@pytest.fixture
def old_lake(sample: tuple[Path, Lake], tmp_path: Path) -> Callable[[str], Lake]:
    """`old_lake(name)`: a schema-2 lake under tmp_path/name holding the sample."""

    def make(name: str) -> Lake:
        write_old_lake(sample[1], tmp_path / name)
        return Lake(tmp_path / name)

    return make


def counts(summary: IngestSummary) -> dict[str, object]:
    """An ingest's figures, without where and at which version."""
    return {k: v for k, v in summary.as_dict().items() if k not in ("lake", "lake_version", "files_ingested")}


def assert_old_layout_gone(root: Path) -> None:
    """No manifest, no old part, pair file, temporary file or lock: only Delta tables' files remain."""
    assert not (root / "manifest.json").exists() and not (root / MIGRATED).exists()
    assert not (root / ".lock").exists() and not list(root.glob(".*.tmp"))
    assert not (root / "pairs").exists()
    for name in DATA_TABLES:
        names = {p.name for p in (root / name).iterdir()}
        assert "_delta_log" in names
        assert all(n.startswith("part-") for n in names - {"_delta_log"}), names


def test_a_manifest_lake_migrates_to_the_rows_files_and_pairs_of_a_direct_ingest(
    sample: tuple[Path, Lake], old_lake: Callable[[str], Lake]
) -> None:
    # given the sample ingested into a Delta lake, and the same rows in a schema-2 lake
    raw, direct = sample
    lake = old_lake("old")
    manifest = json.loads((Path(lake.uri) / "manifest.json").read_text())
    # when it is migrated
    migration = migrate_lake(lake)
    # then its figures are the sample's: 4 files, one commit per table, lake version 1
    assert migration == Migration(lake=lake.uri, rows=SAMPLE_ROWS, files=4, lake_version=1)
    assert lake.snapshot() == Snapshot(1, {"comparisons": 1, "rankings": 1, "rejects": 1})
    # and every table holds the direct lake's rows (the unlisted part is not among them)
    for name in DATA_TABLES:
        migrated = lake.read(name)
        assert migrated.num_rows == SAMPLE_ROWS[name]
        assert canonical(migrated.to_pylist()) == canonical(direct.read(name).to_pylist())
    # and in manifest order: the files' rows come in the order the manifest lists the files
    order = [e["path"] for e in manifest["files"]]
    raw_files = lake.read("comparisons", columns=["raw_file"]).column(0).to_pylist()
    assert list(dict.fromkeys(raw_files)) == order
    # and `files` records the same entries
    assert lake.files() == direct.files()
    # and each table's commit marks every file as an ingest does, with the rows it added
    for name in DATA_TABLES:
        table = lake.table(name)
        assert table is not None
        assert all(table.transaction_version(file_app(e["content_hash"])) == 1 for e in manifest["files"])
        (last,) = table.history(1)
        per_file = lake.read(name, columns=["raw_file"]).column(0).to_pylist()
        expected = {e["content_hash"]: per_file.count(e["path"]) for e in manifest["files"]}
        assert json.loads(last[ADDED]) == expected
    # and the old layout is gone
    assert_old_layout_gone(Path(lake.uri))
    # and build-pairs on the migrated lake gives the direct lake's pairs
    built = build_pairs(lake, SplitConfig(), PairsConfig())
    assert built.pairs == {"train": 1445, "validation": 211, "test": 162}
    assert lake_pairs_hash(lake) == lake_pairs_hash(direct)
    # and ingesting the sample again adds nothing: every file is skipped, the lake version stays
    again = ingest(lake, [raw], IngestConfig())
    assert len(again.files_skipped) == 4 and again.files_ingested == []
    assert again.new_comparisons == 0 and lake.snapshot() == Snapshot(1, {t: 1 for t in DATA_TABLES})


def test_dedup_holds_across_the_migration(
    sample: tuple[Path, Lake], old_lake: Callable[[str], Lake], tmp_path: Path
) -> None:
    # given a migrated lake, and a copy of the lake the sample went into directly
    raw, direct = sample
    lake = old_lake("old")
    migrate_lake(lake)
    shutil.copytree(direct.uri, tmp_path / "direct")
    direct = Lake(tmp_path / "direct")
    # and a new file of the sample's TRL lines in reverse order (another content hash, the same rows)
    lines = (raw / "pairs_trl.jsonl").read_bytes().splitlines(keepends=True)
    reversed_file = tmp_path / "new" / "reversed_trl.jsonl"
    reversed_file.parent.mkdir()
    reversed_file.write_bytes(b"".join(reversed(lines)))
    # when it is ingested into both
    into_migrated = ingest(lake, [reversed_file], IngestConfig())
    into_direct = ingest(direct, [reversed_file], IngestConfig())
    # then both find every accepted judgment a duplicate, the same way
    assert into_migrated.new_comparisons == 0 and into_migrated.duplicates == into_migrated.accepted == 922
    assert counts(into_migrated) == counts(into_direct)


def test_a_migration_killed_before_its_commit_point_reruns_to_the_same_result(
    old_lake: Callable[[str], Lake],
) -> None:
    # given a clean migration of one old lake
    clean_run = old_lake("clean")
    expected = migrate_lake(clean_run)
    # and another killed in the middle of its copy: tables created, comparisons committed, the rest
    # not, and a data file Delta wrote but never committed; its manifest still there
    lake = old_lake("killed")
    root = Path(lake.uri)
    manifest = read_manifest(root / "manifest.json")
    halfway = OldManifest(schema_version=2, files=manifest.files)
    for entry in halfway.files:
        entry.parts = {"comparisons": entry.parts.get("comparisons", [])}
    copy(lake, halfway)
    uncommitted = root / "comparisons" / "part-00000-dead-c000.zstd.parquet"
    shutil.copyfile(root / manifest.files[0].parts["comparisons"][0], uncommitted)
    assert (root / "files" / "_delta_log").is_dir()
    # when the migration runs again
    migration = migrate_lake(lake)
    # then it started over: each table's rows committed once, in one commit, as in the clean run
    assert {**migration.as_dict(), "lake": ""} == {**expected.as_dict(), "lake": ""}
    assert lake.snapshot() == clean_run.snapshot() == Snapshot(1, {t: 1 for t in DATA_TABLES})
    for name in (*DATA_TABLES, "files"):
        assert canonical(lake.read(name).to_pylist()) == canonical(clean_run.read(name).to_pylist())
    assert_old_layout_gone(root)


def test_a_migration_killed_after_its_commit_point_finishes_its_cleanup_on_rerun(
    old_lake: Callable[[str], Lake],
) -> None:
    # given a migration killed after deleting the manifest, before deleting the old parts
    lake = old_lake("old")
    root = Path(lake.uri)
    manifest = read_manifest(root / "manifest.json")
    reset(root, manifest)
    committed = copy(lake, manifest)
    commit_point(root, committed)
    # then the lake already reads as Delta tables, old parts beside them
    assert lake.read("comparisons").num_rows == SAMPLE_ROWS["comparisons"]
    assert (root / manifest.files[0].parts["comparisons"][0]).exists()
    # when the migration runs again, then it finishes the cleanup and reports the same migration
    assert migrate_lake(lake) == committed
    assert_old_layout_gone(root)
    assert lake.read("comparisons").num_rows == SAMPLE_ROWS["comparisons"]
    # and a third run finds nothing to migrate
    with pytest.raises(ValueError, match="nothing to migrate: already Delta tables"):
        migrate_lake(lake)


def test_lakes_with_nothing_to_migrate_or_of_another_schema_are_refused(
    sample: tuple[Path, Lake], tmp_path: Path
) -> None:
    # given a Delta lake, an empty folder, and a lake of schema version 1
    _, direct = sample
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "manifest.json").write_text('{"schema_version": 1, "files": []}')
    # when each is migrated, then each is refused with what to do
    with pytest.raises(ValueError, match="nothing to migrate: already Delta tables"):
        migrate_lake(direct)
    with pytest.raises(ValueError, match="no lake at"):
        migrate_lake(Lake(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"schema version 1; .* must be re-ingested from the raw files"):
        migrate_lake(Lake(tmp_path / "v1"))
    # and the version 1 lake is left as it was
    assert [p.name for p in (tmp_path / "v1").iterdir()] == ["manifest.json"]


def test_a_listed_part_missing_refuses_the_migration_and_changes_nothing(
    old_lake: Callable[[str], Lake],
) -> None:
    # given an old lake whose manifest lists a part that is gone
    lake = old_lake("old")
    root = Path(lake.uri)
    gone = read_manifest(root / "manifest.json").files[1].parts["rejects"][0]
    (root / gone).unlink()
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    # when it is migrated, then it is refused naming the part, and nothing was written or deleted
    with pytest.raises(ValueError, match=rf"1 listed part.* missing, first {re.escape(gone)}"):
        migrate_lake(lake)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_migrate_command_prints_what_it_moved_and_what_to_run_next(
    old_lake: Callable[[str], Lake], capsys: pytest.CaptureFixture[str]
) -> None:
    # given an old lake
    lake = old_lake("old")
    # when `rmcore lake migrate` runs, then it says what moved, that it is Delta now, and to build pairs
    code, out, err = run(capsys, "lake", "migrate", "--lake", lake.uri)
    assert code == 0 and err == ""
    assert "migrated 4 ingested file(s)" in out and "2022 comparisons, 53 rankings, 20 rejects" in out
    assert "now Delta tables" in out and f"run `rmcore build-pairs --lake {lake.uri}`" in out
    # and run again, it fails in one line: nothing to migrate
    code, out, err = run(capsys, "lake", "migrate", "--lake", lake.uri, "--json")
    assert code == 1 and out == ""
    assert err == f"rmcore lake: error: {lake.uri}: nothing to migrate: already Delta tables\n"


def test_the_migrate_command_json(
    old_lake: Callable[[str], Lake], capsys: pytest.CaptureFixture[str]
) -> None:
    lake = old_lake("old")
    code, out, _ = run(capsys, "lake", "migrate", "--lake", lake.uri, "--json")
    assert code == 0
    assert json.loads(out) == {"lake": lake.uri, "rows": SAMPLE_ROWS, "files": 4, "lake_version": 1}


def test_every_other_command_refuses_an_old_lake_in_one_line_naming_the_migration(
    sample: tuple[Path, Lake],
    old_lake: Callable[[str], Lake],
    tiny_encoder_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given an old lake, and a training config whose pairs come from it
    raw, _ = sample
    lake = old_lake("old")
    root = Path(lake.uri)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data:\n  lake: {lake.uri}\nmodel:\n  name_or_path: {tiny_encoder_dir}\n"
        f"train:\n  max_steps: 1\noutput_dir: {tmp_path / 'run'}\n"
    )
    fix = f"run `rmcore lake migrate --lake {lake.uri}` once, then rerun"
    # when ingest, build-pairs, data-report and train meet it
    for argv in (
        ("ingest", str(raw), "--lake", lake.uri),
        ("build-pairs", "--lake", lake.uri),
        ("data-report", "--lake", lake.uri),
        ("train", "--config", str(config)),
    ):
        code, out, err = run(capsys, *argv)
        # then each fails in one line with the command that migrates it
        assert code == 1 and out == "", argv
        assert err.startswith(f"rmcore {argv[0]}: error: ") and err.count("\n") == 1, err
        assert fix in err, err
    # and the old lake is as it was
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_a_manifest_of_no_files_migrates_to_empty_tables(tmp_path: Path) -> None:
    # given an old lake that never ingested a file
    root = tmp_path / "old"
    root.mkdir()
    (root / "manifest.json").write_text('{"schema_version": 2, "files": []}')
    # when it is migrated, then its tables exist, empty, at lake version 0
    migration = migrate_lake(Lake(root))
    assert migration == Migration(lake=str(root), rows=dict.fromkeys(DATA_TABLES, 0), files=0, lake_version=0)
    lake = Lake(root)
    assert lake.snapshot() is None and lake.files() == []
    assert all(lake.table(name) is not None and lake.read(name).num_rows == 0 for name in DATA_TABLES)
    assert sorted(p.name for p in root.iterdir()) == ["comparisons", "files", "rankings", "rejects"]
