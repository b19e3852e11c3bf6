"""Lake versions: each ingest is one version of the lake, build-pairs records the version it read,
and `--as-of` rebuilds the pairs of an older version exactly."""

import json
from pathlib import Path

import pytest
from lake_rows import write_jsonl

from rmcore.cli import main
from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs, lake_pairs_hash, read_split
from rmcore.data.pairs.splits import SPLITS


def _rows(prefix: str, n: int) -> list[dict[str, str]]:
    return [
        {"prompt": f"{prefix} question {i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}"}
        for i in range(n)
    ]


def _pairs(lake: Lake) -> list[dict[str, object]]:
    return read_split(lake, "pairs", SPLITS).to_pylist()


def _build_json(lake: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["build-pairs", "--lake", str(lake), "--json", *extra]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def test_pairs_as_of_an_older_version_equal_the_pairs_built_then(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = Lake(tmp_path / "lake")
    day1 = write_jsonl(tmp_path / "raw" / "day1.jsonl", _rows("first", 40))
    day2 = write_jsonl(tmp_path / "raw" / "day2.jsonl", _rows("second", 25) + _rows("first", 5))

    assert ingest(lake, [day1], IngestConfig()).lake_version == 1
    first = _build_json(tmp_path / "lake", capsys=capsys)
    assert first["lake_version"] == 1
    pairs_then, hash_then = _pairs(lake), lake_pairs_hash(lake)

    assert ingest(lake, [day2], IngestConfig()).lake_version == 2
    latest = _build_json(tmp_path / "lake", capsys=capsys)
    assert latest["lake_version"] == 2
    assert sum(latest["pairs"].values()) == 65  # type: ignore[attr-defined]  # 40 + 25 new prompts
    assert lake_pairs_hash(lake) != hash_then

    again = _build_json(tmp_path / "lake", "--as-of", "1", capsys=capsys)
    assert again["lake_version"] == 1
    assert again["pairs"] == first["pairs"]
    assert _pairs(lake) == pairs_then
    # the training key is a content hash: the same pairs rebuilt train nothing new
    assert lake_pairs_hash(lake) == hash_then


def test_a_version_reads_the_tables_as_its_ingest_left_them(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for day, n in (("a", 10), ("b", 7), ("c", 3)):
        ingest(lake, [write_jsonl(tmp_path / f"{day}.jsonl", _rows(day, n))], IngestConfig())
    counts = {}
    for version in (1, 2, 3):
        snapshot = lake.snapshot(version)
        assert snapshot is not None and snapshot.version == version
        counts[version] = lake.read("comparisons", snapshot).num_rows
        assert [Path(f.path).name for f in lake.files(snapshot)] == ["a.jsonl", "b.jsonl", "c.jsonl"][
            :version
        ]
    assert counts == {1: 10, 2: 17, 3: 20}
    summary = build_pairs(lake, SplitConfig(), PairsConfig(), as_of=2)
    assert summary.comparisons == 17 and summary.lake_version == 2


def test_a_version_the_lake_does_not_have_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    ingest(Lake(lake), [write_jsonl(tmp_path / "a.jsonl", _rows("a", 3))], IngestConfig())
    for version in ("0", "7"):
        assert main(["build-pairs", "--lake", str(lake), "--as-of", version]) == 1
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"no lake version {version}; its versions are 1 to 1" in line
