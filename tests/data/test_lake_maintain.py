"""Upkeep: `rmcore lake compact` rewrites small files into large ones and `rmcore lake vacuum`
deletes the files no version within the retention names; neither changes a row."""

import json
from pathlib import Path

import pytest
from lake_rows import write_jsonl

from rmcore.cli import main
from rmcore.data.lake import Lake
from rmcore.data.pairs import lake_pairs_hash


def _on_disk(lake: Path, table: str) -> set[Path]:
    return set((lake / table).rglob("*.parquet"))


def _named(lake: Lake, table: str) -> set[Path]:
    named = lake.table(table)
    assert named is not None
    return {Path(uri) for uri in named.file_uris()}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def test_compact_then_vacuum_keep_every_row_and_leave_only_named_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    lake = Lake(root)
    for day in range(3):
        rows = [
            {"prompt": f"day {day} question {i}", "chosen": f"yes {i}", "rejected": f"no {i}"}
            for i in range(20)
        ]
        _run(capsys, "ingest", str(write_jsonl(tmp_path / f"day{day}.jsonl", rows)), "--lake", str(root))
    _run(capsys, "build-pairs", "--lake", str(root))
    ids, pairs = lake.column("comparisons", "comparison_id"), lake_pairs_hash(lake)
    assert len(ids) == 60 and len(_named(lake, "comparisons")) == 3

    compacted = _run(capsys, "lake", "compact", "--lake", str(root))
    by_table = {t["table"]: t for t in compacted["tables"]}  # type: ignore[attr-defined]
    assert by_table["comparisons"]["files_removed"] == 3 and by_table["comparisons"]["files_added"] == 1
    assert len(_named(lake, "comparisons")) == 1
    assert lake.column("comparisons", "comparison_id") == ids
    # the three small files stay on disk: older versions name them, and the default retention keeps them
    assert len(_on_disk(root, "comparisons")) == 4
    kept = _run(capsys, "lake", "vacuum", "--lake", str(root))
    assert all(t["files_removed"] == 0 for t in kept["tables"])  # type: ignore[attr-defined]

    _run(capsys, "lake", "vacuum", "--lake", str(root), "--retain-hours", "0")
    for table in ("comparisons", "rankings", "rejects", "files", "pairs", "pair_rankings"):
        if lake.table(table) is not None:
            assert _on_disk(root, table) == _named(lake, table), table
    assert lake.column("comparisons", "comparison_id") == ids
    assert _run(capsys, "build-pairs", "--lake", str(root))["lake_version"] == Lake(root).snapshot().version  # type: ignore[union-attr]
    assert lake_pairs_hash(lake) == pairs
    assert main(["lake", "check", "--lake", str(root)]) == 0
