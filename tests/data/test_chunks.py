"""Chunked staging: a large plain JSONL file staged by parallel workers equals one pass over it."""

import json
from pathlib import Path

import pyarrow as pa

from rmcore.config import IngestConfig
from rmcore.data.formats.containers import line_offsets
from rmcore.data.ingest import ingest, stage_input
from rmcore.data.ingest.plan import file_hash
from rmcore.data.lake import Lake


def _votes(path: Path, rows: int) -> Path:
    """Labelled votes with duplicates spread across the file, a flipped copy and bad rows."""
    lines = []
    for i in range(rows):
        row = {
            "prompt": f"question {i % 40}",
            "response_a": f"answer {i % 7}",
            "response_b": f"other {i % 11}",
            "label": "ab"[i % 2],
            "annotator": f"a{i % 3}",
        }
        lines.append(json.dumps(row))
        if i % 9 == 0:
            flipped = {
                **row,
                "response_a": row["response_b"],
                "response_b": row["response_a"],
                "label": "ba"[i % 2],
            }
            lines.append(json.dumps(flipped))
        if i % 50 == 0:
            lines.append('{"prompt": "broken')
    path.write_text("\n".join(lines) + "\n")
    return path


def _table(lake: Lake, name: str) -> pa.Table:
    return lake.read(name)


def test_line_offsets_cut_at_line_starts_and_count_lines(tmp_path: Path) -> None:
    # given a file of 100 numbered lines
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(1, 101)))
    # when it is cut in three
    ranges = line_offsets(path, 3)
    # then the ranges tile the file, each starts a line, and first line numbers are right
    data = path.read_bytes()
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (start, end, line), (next_start, _, _) in zip(ranges, [*ranges[1:], (len(data), 0, 0)], strict=True):
        assert end == next_start
        assert start == 0 or data[start - 1 : start] == b"\n"
        assert data[start:].startswith(f'{{"n": {line}}}'.encode())


def test_chunked_staging_equals_one_pass(tmp_path: Path) -> None:
    # given one file of votes, ingested in one pass and in 3 worker chunks
    source = _votes(tmp_path / "votes.jsonl", 3000)
    one, chunked = Lake(tmp_path / "one"), Lake(tmp_path / "chunked")
    config = IngestConfig(workers=3, chunk_bytes=1000)
    staged = stage_input(chunked, str(source), file_hash(source), config)
    # (the parallel staging really made several chunks, each with judgments)
    assert staged.chunks == 3 and len(staged.tables("comparisons")) == 3
    single = ingest(one, [source], IngestConfig(workers=1))
    parallel = ingest(chunked, [source], config)

    # then the ingest committed that staging (and removed it)
    assert not Path(staged.directory).exists()
    # and every count is the same
    assert parallel.as_dict() | {"lake": ""} == single.as_dict() | {"lake": ""}
    assert single.duplicates > 0 and single.rejected == {"malformed": 60}
    # and the same judgments are stored, with the same raw row numbers, and the same rejects
    columns = ["comparison_id", "raw_row", "label"]
    assert (
        _table(chunked, "comparisons")
        .select(columns)
        .sort_by("comparison_id")
        .equals(_table(one, "comparisons").select(columns).sort_by("comparison_id"))
    )
    assert sorted(_table(chunked, "rejects").column("raw_row").to_pylist()) == sorted(
        _table(one, "rejects").column("raw_row").to_pylist()
    )
