"""The lake's tables are plain Delta tables: a second engine, Polars (its own Delta reader), reads the
rows rmcore reads, on local disk and on S3 (moto, reached through the same environment variables).

DuckDB's `delta_scan` is not tested: its delta extension is downloaded on first use, and tests run
offline.
"""

from pathlib import Path

import polars as pl
import pytest

from rmcore.cli import main
from rmcore.data.lake import Lake
from rmcore.data.pairs import read_split
from rmcore.data.pairs.splits import SPLITS
from rmcore.sample import write_sample
from rmcore.sample.manifest import RANKINGS_FILE, TRL_FILE


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.slow)])
def test_polars_reads_what_rmcore_reads(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # given a lake of two ingests (the TRL file, then the rankings), with pairs built
    raw = tmp_path / "raw"
    write_sample(raw)
    lake = Lake(tmp_path / "lake" if where == "local" else request.getfixturevalue("s3_lake"))
    assert main(["ingest", str(raw / TRL_FILE), "--lake", lake.uri]) == 0
    first = lake.snapshot()
    assert main(["ingest", str(raw / RANKINGS_FILE), "--lake", lake.uri]) == 0
    assert main(["build-pairs", "--lake", lake.uri]) == 0
    assert first is not None

    # when Polars reads the comparisons table (latest, and at the first ingest's version)
    latest = pl.read_delta(lake.table_uri("comparisons"))
    earlier = pl.read_delta(lake.table_uri("comparisons"), version=first.tables["comparisons"])

    # then it reads the rows rmcore reads, with the same ids, at either version
    ours = lake.read("comparisons", columns=["comparison_id", "raw_file", "raw_row"])
    assert latest.height == ours.num_rows > earlier.height > 0
    assert set(latest["comparison_id"]) == set(ours.column("comparison_id").to_pylist())
    then = lake.read("comparisons", first, columns=["comparison_id"])
    assert set(earlier["comparison_id"]) == set(then.column("comparison_id").to_pylist())
    assert set(earlier["raw_file"]) == {str(raw / TRL_FILE)}

    # and the pairs table, partitioned by split, holds per split the pairs read_split reads
    pairs = pl.read_delta(lake.table_uri("pairs"))
    for split in SPLITS:
        ids = read_split(lake, "pairs", (split,)).column("pair_id").to_pylist()
        assert sorted(pairs.filter(pl.col("split") == split)["pair_id"]) == ids
    assert pairs.height == sum(len(read_split(lake, "pairs", (s,))) for s in SPLITS) > 0
