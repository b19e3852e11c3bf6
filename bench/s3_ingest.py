""".venv/bin/python bench/s3_ingest.py --rows 100000

Ingest into an S3 lake versus a local lake: N synthetic comparisons (bench/ingest_scale.py's
generator, `labelled` format) ingested by `rmcore ingest` into a local lake and into an `s3://` lake
on moto's S3 server (tests/s3_server.py, started here on 127.0.0.1 in a process of its own), then
pairs built from each. Prints per lake: ingest s, rows/s, build-pairs s, and the lake's counts, which
must agree. deltalake reaches the server through AWS_ENDPOINT_URL and friends, as in a deployment.

moto keeps objects in its process's memory and serves them over local HTTP: the S3 figures measure
rmcore's object-store path (uploads, Delta log reads over HTTP), not a real network's latency.
"""

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]  # ingest_scale's generator, the S3 server

from ingest_scale import generate  # noqa: E402
from s3_server import moto_s3  # noqa: E402

from rmcore.config import IngestConfig, PairsConfig, SplitConfig  # noqa: E402
from rmcore.data.ingest import ingest  # noqa: E402
from rmcore.data.lake import Lake  # noqa: E402
from rmcore.data.pairs import build_pairs  # noqa: E402

TEXT_CHARS = (100, 300, 200, 800)
"""Prompt and response lengths (min, max each), ingest_scale.py's defaults."""


def timed(lake: Lake, source: Path) -> dict[str, float]:
    """Ingest `source` into `lake` and build its pairs; seconds of each and the lake's counts."""
    start = time.perf_counter()
    summary = ingest(lake, [source], IngestConfig())
    ingested = time.perf_counter()
    pairs = build_pairs(lake, SplitConfig(), PairsConfig())
    built = time.perf_counter()
    return {
        "ingest_s": ingested - start,
        "rows_per_s": summary.rows_read / (ingested - start),
        "build_pairs_s": built - ingested,
        "rows_read": summary.rows_read,
        "new_comparisons": summary.new_comparisons,
        "pairs": sum(pairs.pairs.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="comparisons to generate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rmcore-s3-bench-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # the S3 lake's local staging
    try:
        source = work / "labels.jsonl"
        start = time.perf_counter()
        generate(source, args.rows, "labelled", args.seed, TEXT_CHARS)
        megabytes = source.stat().st_size / 1e6
        print(f"generated {args.rows} rows, {megabytes:.0f} MB, in {time.perf_counter() - start:.1f} s")
        warm = work / "warm.jsonl"  # a first, small ingest pays the imports and DuckDB's start-up
        with source.open("rb") as lines:
            warm.write_bytes(b"".join(itertools.islice(lines, 1000)))
        timed(Lake(work / "warm-lake"), warm)
        with moto_s3() as s3:
            os.environ.update(s3.environment())
            figures = {
                "local": timed(Lake(work / "lake"), source),
                "s3": timed(Lake(s3.new_lake("bench")), source),
            }
        print(f"{'lake':<6} {'ingest s':>9} {'rows/s':>9} {'pairs s':>8} {'rows':>8} {'new':>8} {'pairs':>8}")
        for name, f in figures.items():
            print(
                f"{name:<6} {f['ingest_s']:>9.2f} {f['rows_per_s']:>9.0f} {f['build_pairs_s']:>8.2f}"
                f" {f['rows_read']:>8.0f} {f['new_comparisons']:>8.0f} {f['pairs']:>8.0f}"
            )
        print(f"S3 / local ingest time: {figures['s3']['ingest_s'] / figures['local']['ingest_s']:.2f}x")
        counts = ("rows_read", "new_comparisons", "pairs")
        if any(figures["s3"][c] != figures["local"][c] for c in counts):
            sys.exit("the S3 lake's counts differ from the local lake's")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
