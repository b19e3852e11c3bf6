"""The lake on an object store: the built-in sample through the command line into an `s3://` lake (moto's
S3 server, reached through the environment as a deployment reaches S3) gives what a local lake gives."""

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from rmcore.cli import main
from rmcore.data.lake import Lake
from rmcore.data.pairs import lake_pairs_hash, read_split
from rmcore.data.pairs.splits import SPLITS
from rmcore.sample import write_sample


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """`rmcore ARGV --json`: its exit status must be 0; the JSON object it prints last."""
    status = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads(out.strip().splitlines()[-1])


def pipeline(capsys: pytest.CaptureFixture[str], raw: Path, lake: str) -> dict[str, dict[str, Any]]:
    """ingest, build-pairs and data-report of one lake, each through the command line."""
    return {
        "ingest": run(capsys, "ingest", str(raw), "--lake", lake),
        "pairs": run(capsys, "build-pairs", "--lake", lake),
        "report": run(capsys, "data-report", "--lake", lake),
    }


def without(table: pa.Table, *columns: str) -> list[dict[str, Any]]:
    return table.drop_columns(list(columns)).to_pylist()


@pytest.mark.slow
def test_an_s3_lake_holds_what_a_local_lake_holds(
    s3_lake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the built-in sample, ingested, paired and reported into an S3 lake and into a local one
    raw = tmp_path / "raw"
    write_sample(raw)
    local = str(tmp_path / "local-lake")
    remote_run, local_run = pipeline(capsys, raw, s3_lake), pipeline(capsys, raw, local)
    remote, here = Lake(s3_lake), Lake(local)

    # then the command line reports the same counts of both, each lake under its own name
    assert remote_run["ingest"]["lake"] == s3_lake and remote_run["ingest"]["new_comparisons"] == 2022
    for step, lake in (("ingest", "lake"), ("pairs", "tables")):
        assert {**remote_run[step], lake: None} == {**local_run[step], lake: None}
    assert remote_run["pairs"]["tables"]["pairs"] == f"{s3_lake}/pairs"

    # and the tables hold the same rows (ingested_at is the time of each ingest)
    by_id = [("comparison_id", "ascending")]
    assert remote.read("comparisons").num_rows == 2022
    assert without(remote.read("comparisons").sort_by(by_id), "ingested_at") == without(
        here.read("comparisons").sort_by(by_id), "ingested_at"
    )
    by_row = [("raw_file", "ascending"), ("raw_row", "ascending")]
    assert without(remote.read("rejects").sort_by(by_row), "ingested_at") == without(
        here.read("rejects").sort_by(by_row), "ingested_at"
    )

    # and read_split reads the same pairs and rankings, split by split, from both
    for table in ("pairs", "pair_rankings"):
        for split in SPLITS:
            pairs = read_split(remote, table, (split,))
            assert pairs.num_rows == remote_run["pairs"][table.removeprefix("pair_")][split] > 0
            assert pairs.equals(read_split(here, table, (split,)))
    assert lake_pairs_hash(remote) == lake_pairs_hash(here)

    # and the data report of the S3 lake is written to its local work folder, the same report
    paths = {name: Path(path) for name, path in remote_run["report"].pop("paths").items()}
    local_run["report"].pop("paths")
    assert remote_run["report"] == local_run["report"]
    assert remote.work.is_relative_to(tmp_path / "cache" / "rmcore" / "lakes")
    assert set(paths.values()) == {
        remote.work / "reports" / name for name in ("data_report.json", "data_report.md", "annotators.png")
    }
    assert all(path.stat().st_size > 0 for path in paths.values())
