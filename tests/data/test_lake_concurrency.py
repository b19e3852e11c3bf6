"""Two processes ingesting into one lake at once, on local disk and on S3 (moto), lose nothing and add
nothing twice.

The writers' files are cut from the built-in sample so that they share many comparisons: two
overlapping halves of the TRL file, the votes CSV gzipped and plain (other bytes, the same rows), and
one file (the rankings) that both ingest. Each writer ingests its files one `rmcore ingest` at a time,
the shared file first, so that both stage and commit it at the same moment; a barrier starts them
together. The lake must then hold exactly what one writer ingesting every file one after the other
makes of them.
"""

import contextlib
import gzip
import io
import json
import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rmcore.cli import main
from rmcore.data.ingest.plan import file_hash
from rmcore.data.lake import Lake
from rmcore.sample import write_sample

START_SECONDS = 120
"""How long a writer waits at the barrier for the other (spawning imports rmcore afresh)."""


def ingest_each(lake: str, files: list[str], start: Barrier, results: Any) -> None:
    """Writer process: wait for the other writer, then `rmcore ingest FILE --lake LAKE --json` per file;
    puts [(exit status, printed output)] on `results`."""
    start.wait(START_SECONDS)
    done = []
    for path in files:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(["ingest", path, "--lake", lake, "--json"])
        done.append((status, out.getvalue()))
    results.put(done)


def writers_files(tmp_path: Path) -> tuple[list[str], list[str]]:
    """Two writers' files from the sample; the shared one first in both lists."""
    sample = tmp_path / "sample"
    write_sample(sample)
    lines = (sample / "pairs_trl.jsonl").read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    own = tmp_path / "raw"
    own.mkdir()
    (own / "trl_head.jsonl").write_bytes(b"".join(lines[: 2 * third]))
    (own / "trl_tail.jsonl").write_bytes(b"".join(lines[third:]))
    (own / "votes.csv").write_bytes(gzip.decompress((sample / "votes_labelled.csv.gz").read_bytes()))
    shared = str(sample / "rankings.jsonl")
    first = [shared, str(own / "trl_head.jsonl"), str(sample / "votes_labelled.csv.gz")]
    second = [
        shared,
        str(own / "trl_tail.jsonl"),
        str(own / "votes.csv"),
        str(sample / "hh_transcripts.jsonl.gz"),
    ]
    return first, second


def ingest_at_once(lake: str, first: list[str], second: list[str]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Both writers, started together in spawned processes (forked ones cannot use deltalake)."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    writers = [
        context.Process(target=ingest_each, args=(lake, files, start, results)) for files in (first, second)
    ]
    for writer in writers:
        writer.start()
    done = [results.get(timeout=300) for _ in writers]
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    assert all(status == 0 for runs in done for status, _ in runs), done
    return [[(status, json.loads(out.strip().splitlines()[-1])) for status, out in runs] for runs in done]


def lake_location(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return str(tmp_path / "lake") if where == "local" else request.getfixturevalue("s3_lake")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_writers_at_once_lose_nothing_and_add_nothing_twice(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # given two writers' files that share comparisons and one file, and what one writer makes of them all
    first, second = writers_files(tmp_path)
    every = list(dict.fromkeys(first + second))
    reference = Lake(tmp_path / "reference")
    assert main(["ingest", *every, "--lake", reference.uri]) == 0

    # when both writers ingest into one lake at the same time
    lake = Lake(lake_location(where, tmp_path, request))
    done = ingest_at_once(lake.uri, first, second)

    # then every ingest succeeded, and each file was ingested by exactly one writer (the other skipped it)
    summaries = [summary for runs in done for _, summary in runs]
    assert len(summaries) == len(first) + len(second)
    ingested = Counter(path for summary in summaries for path in summary["files_ingested"])
    skipped = Counter(path for summary in summaries for path in summary["skipped_paths"])
    assert ingested == Counter(every)
    assert skipped == Counter({first[0]: 1})

    # and the lake holds the union of the files' comparisons and rankings, each once
    ids = lake.read("comparisons", columns=["comparison_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids))
    assert set(ids) == reference.column("comparisons", "comparison_id")
    rankings = lake.read("rankings", columns=["ranking_id"]).column(0).to_pylist()
    assert len(rankings) == len(set(rankings)) == reference.read("rankings").num_rows > 0

    # and every quarantined row once: the rejects are the reference's, row for row
    def rejects(of: Lake) -> Counter[tuple[str, int, str]]:
        rows = of.read("rejects", columns=["raw_file", "raw_row", "reason"]).to_pylist()
        return Counter((row["raw_file"], row["raw_row"], row["reason"]) for row in rows)

    assert rejects(lake) == rejects(reference)
    assert max(rejects(lake).values()) == 1

    # and `files` has one row per file, whose new comparisons and rankings sum to the tables' rows
    entries = lake.files()
    assert sorted(entry.content_hash for entry in entries) == sorted(file_hash(Path(p)) for p in every)
    assert sum(entry.new_comparisons for entry in entries) == len(ids)
    assert sum(entry.new_rankings for entry in entries) == len(rankings)
    assert sum(summary["new_comparisons"] for summary in summaries) == len(ids)


def test_a_table_view_is_replaced_on_one_connection_whatever_it_was(tmp_path: Path) -> None:
    # given a lake whose comparisons table has files, and one DuckDB connection (a commit's, across retries)
    sample = tmp_path / "sample"
    write_sample(sample)
    lake = Lake(tmp_path / "lake")
    assert main(["ingest", str(sample / "pairs_trl.jsonl"), "--lake", lake.uri]) == 0
    table = lake.table("comparisons")
    held = lake.read("comparisons").num_rows
    db = duckdb.connect()

    def rows() -> int:
        ((count,),) = db.execute("SELECT count(*) FROM existing").fetchall()
        return int(count)

    # when the view named `existing` goes from files to an empty table and back, twice
    # then each read sees what the view was last made of (DuckDB refused an empty table's registration
    # after a view of files, which failed a retried commit meeting a table with no files yet)
    for _ in range(2):
        lake.view(db, "existing", table, "comparisons")
        assert rows() == held > 0
        lake.view(db, "existing", None, "comparisons")
        assert rows() == 0
