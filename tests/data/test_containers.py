"""Containers: JSONL, JSON, CSV, Parquet and XLSX files (gzipped or not) become raw records."""

import gzip
from pathlib import Path

import openpyxl
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rmcore.config import IngestConfig
from rmcore.data.formats.containers import RawRecord, UnreadableFile, detect_container, records
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.records import Reason

ROW = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}


def jsonl_bytes(*rows: object) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def summary(found: list[RawRecord]) -> list[tuple[int, str]]:
    """(row, reason or 'ok') per record."""
    return [(r.row, r.error.reason.value if r.error else "ok") for r in found]


# ---------------------------------------------------------------- JSONL


def test_jsonl_bad_lines_become_rejected_records_and_blank_lines_are_not_rows(tmp_path: Path) -> None:
    # given a JSONL file: good, blank, malformed, invalid UTF-8 (raw bytes), an array, whitespace, good
    path = tmp_path / "labels.jsonl"
    path.write_bytes(
        orjson.dumps(ROW)
        + b"\n"
        + b"\n"
        + b'{"prompt": "Hi", "chosen": \n'
        + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'
        + b"[1, 2]\n"
        + b"   \t \n"
        + orjson.dumps({**ROW, "prompt": "Bye"})
        + b"\n"
    )
    # when read
    found = list(records(path))
    # then rows are line numbers; blank lines are skipped; each bad line carries its reason
    assert summary(found) == [
        (1, "ok"),
        (3, "malformed"),
        (4, "invalid_utf8"),
        (5, "not_an_object"),
        (7, "ok"),
    ]
    assert found[0].value == ROW
    assert found[4].value == {**ROW, "prompt": "Bye"}
    # and the bad lines keep their raw bytes for the rejects table
    assert found[2].raw == b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'
    assert found[2].raw_text(1000).startswith('{"prompt": "caf\ufffd"')
    assert found[1].raw_text(5) == '{"pro'


def test_jsonl_last_line_without_newline(tmp_path: Path) -> None:
    # given a JSONL file whose last line has no trailing newline, when read, then it is a row
    path = tmp_path / "labels.jsonl"
    path.write_bytes(orjson.dumps(ROW) + b"\n" + orjson.dumps(ROW))
    assert summary(list(records(path))) == [(1, "ok"), (2, "ok")]


@pytest.mark.parametrize("name", ["labels.jsonl.gz", "labels.jsonl", "labels.data"])
def test_gzip_is_detected_by_content_whatever_the_name(tmp_path: Path, name: str) -> None:
    # given gzipped JSONL under a name with, or without, .gz
    path = tmp_path / name
    path.write_bytes(gzip.compress(jsonl_bytes(ROW, {**ROW, "prompt": "Yo"})))
    # when read, then the container is JSONL and both rows decode
    assert detect_container(path) == "jsonl"
    assert [r.value["prompt"] for r in records(path)] == ["Hi", "Yo"]


# ---------------------------------------------------------------- JSON


def test_json_list_with_a_non_object_item(tmp_path: Path) -> None:
    # given a JSON document that is a list of two objects and a string, pretty-printed
    path = tmp_path / "labels.json"
    path.write_bytes(orjson.dumps([ROW, "oops", ROW], option=orjson.OPT_INDENT_2))
    # when read
    found = list(records(path))
    # then the container is JSON and the string item is not_an_object at row 2
    assert detect_container(path) == "json"
    assert summary(found) == [(1, "ok"), (2, "not_an_object"), (3, "ok")]
    assert found[1].raw == b'"oops"'


def test_json_single_pretty_printed_object_is_one_record(tmp_path: Path) -> None:
    # given one pretty-printed JSON object (its first line alone is not JSON)
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(ROW, option=orjson.OPT_INDENT_2))
    # when read, then it is one record
    assert detect_container(path) == "json"
    assert [r.value for r in records(path)] == [ROW]


def test_invalid_json_document_is_unreadable(tmp_path: Path) -> None:
    # given a JSON list cut short
    path = tmp_path / "cut.json"
    path.write_bytes(b'[{"prompt": "Hi"}, {"pro')
    # when read, then the file is unreadable and the error names it
    with pytest.raises(UnreadableFile) as info:
        list(records(path))
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- CSV

CSV_TEXT = (
    "prompt,response_a,response_b,label,annotator\r\n"
    'List two fruits,"1. apple\n2. pear",banana,a,u1\r\n'
    "Hi,Hello,Bye,b\r\n"
    ",,,,\r\n"
    "Hi,Hello,Bye,tie,\r\n"
    'Quote,"He said ""hi""",x,a,u2\r\n'
)


@pytest.mark.parametrize("name", ["votes.csv", "votes.csv.gz"])
def test_csv_rows(tmp_path: Path, name: str) -> None:
    # given a CSV (plain or gzipped) with a quoted multi-line cell, a short row, an empty row,
    # an empty cell and escaped quotes
    path = tmp_path / name
    data = CSV_TEXT.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    # when read
    found = list(records(path))
    # then rows count records after the header; the short row is malformed; the empty row is skipped
    assert detect_container(path) == "csv"
    assert summary(found) == [(1, "ok"), (2, "malformed"), (4, "ok"), (5, "ok")]
    assert found[0].value == {
        "prompt": "List two fruits",
        "response_a": "1. apple\n2. pear",
        "response_b": "banana",
        "label": "a",
        "annotator": "u1",
    }
    assert "4 fields, header has 5" in found[1].error.detail
    # and an empty cell is None, not ""
    assert found[2].value["annotator"] is None
    assert found[3].value["response_a"] == 'He said "hi"'


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    # given a CSV written with a UTF-8 BOM, when read, then the first header has no BOM
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt,response_a\r\nHi,Hello\r\n")
    assert [r.value for r in records(path)] == [{"prompt": "Hi", "response_a": "Hello"}]


def test_csv_invalid_utf8_cell(tmp_path: Path) -> None:
    # given a CSV row holding invalid UTF-8 bytes
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,response_a\r\nHi,caf\xe9\r\nYo,ok\r\n")
    # when read, then that row is invalid_utf8 and the next is fine
    assert summary(list(records(path))) == [(1, "invalid_utf8"), (2, "ok")]


def test_header_only_csv_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("prompt,response_a\n")
    assert list(records(path)) == []


# ---------------------------------------------------------------- Parquet and XLSX


@pytest.mark.parametrize("compress", [False, True])
def test_parquet_rows(tmp_path: Path, compress: bool) -> None:
    # given a Parquet file with a list column and a null (optionally gzipped, named .parquet)
    table = pa.table(
        {
            "prompt": ["Name a colour", "Name a fruit"],
            "responses": [["red", "blue"], ["apple", "pear"]],
            "ranks": [[0, 1], [1, 0]],
            "annotator": ["u1", None],
        }
    )
    path = tmp_path / "rankings.parquet"
    pq.write_table(table, path)
    if compress:
        path.write_bytes(gzip.compress(path.read_bytes()))
    # when read
    found = list(records(path))
    # then the container is Parquet and each row is a plain dict, rows numbered from 1
    assert detect_container(path) == "parquet"
    assert [(r.row, r.value) for r in found] == [
        (1, {"prompt": "Name a colour", "responses": ["red", "blue"], "ranks": [0, 1], "annotator": "u1"}),
        (2, {"prompt": "Name a fruit", "responses": ["apple", "pear"], "ranks": [1, 0], "annotator": None}),
    ]


def test_xlsx_rows(tmp_path: Path) -> None:
    # given an XLSX sheet with a header, a row, an empty row, and a row with an empty cell
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["prompt", "completion_a", "completion_b", "preference", "evaluator"])
    sheet.append(["Write a limerick.", "There once was...", "Roses...", "a-is-better", 3])
    sheet.append([None, None, None, None, None])
    sheet.append(["Hi", "Hello", "Bye", "tie", None])
    path = tmp_path / "tulu.xlsx"
    workbook.save(path)
    # when read
    found = list(records(path))
    # then rows are numbered after the header, the empty row is skipped, empty cells are None
    assert detect_container(path) == "xlsx"
    assert [(r.row, r.value) for r in found] == [
        (
            1,
            {
                "prompt": "Write a limerick.",
                "completion_a": "There once was...",
                "completion_b": "Roses...",
                "preference": "a-is-better",
                "evaluator": 3,
            },
        ),
        (
            3,
            {
                "prompt": "Hi",
                "completion_a": "Hello",
                "completion_b": "Bye",
                "preference": "tie",
                "evaluator": None,
            },
        ),
    ]


# ---------------------------------------------------------------- unreadable files


def big_truncated_gzip(path: Path) -> Path:
    """A gzipped JSONL file cut in half, larger than detection's 4 KiB look-ahead."""
    rows = [{**ROW, "prompt": f"Question number {i}?"} for i in range(2000)]
    data = gzip.compress(jsonl_bytes(*rows))
    path.write_bytes(data[: len(data) // 2])
    return path


def small_truncated_gzip(path: Path) -> Path:
    """A gzipped JSONL file cut in half, smaller than detection's 4 KiB look-ahead."""
    data = gzip.compress(jsonl_bytes(ROW, ROW, ROW))
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_gzip_is_unreadable_and_named(tmp_path: Path) -> None:
    # given a gzip file cut short after its first 4 KiB of content
    path = big_truncated_gzip(tmp_path / "cut.jsonl.gz")
    # when read to the end, then UnreadableFile names the path
    with pytest.raises(UnreadableFile) as info:
        list(records(path))
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_small_truncated_gzip_is_unreadable_and_named(tmp_path: Path) -> None:
    # given a small gzip file cut short (detection itself hits the end of the stream)
    path = small_truncated_gzip(tmp_path / "cut.jsonl.gz")
    # when read, then UnreadableFile names the path
    with pytest.raises(UnreadableFile) as info:
        list(records(path))
    assert info.value.path == str(path)


def test_ingest_names_a_truncated_file_and_ingests_the_rest(tmp_path: Path) -> None:
    # given a good file and a truncated gzip file
    good = tmp_path / "raw" / "good.jsonl"
    good.parent.mkdir()
    good.write_bytes(jsonl_bytes(ROW))
    cut = big_truncated_gzip(tmp_path / "raw" / "cut.jsonl.gz")
    # when both are ingested
    result = ingest(Lake(tmp_path / "lake"), [good, cut], IngestConfig())
    # then the truncated one is failed with its reason, and the good one is committed
    assert list(result.files_failed) == [str(cut)]
    assert "cannot read as jsonl" in result.files_failed[str(cut)]
    assert result.files_ingested == [str(good)]
    assert (result.rows_read, result.accepted, result.new_comparisons) == (1, 1, 1)


def test_ingest_names_a_small_truncated_file_and_ingests_the_rest(tmp_path: Path) -> None:
    good = tmp_path / "raw" / "good.jsonl"
    good.parent.mkdir()
    good.write_bytes(jsonl_bytes(ROW))
    cut = small_truncated_gzip(tmp_path / "raw" / "cut.jsonl.gz")
    result = ingest(Lake(tmp_path / "lake"), [good, cut], IngestConfig())
    assert list(result.files_failed) == [str(cut)]
    assert result.files_ingested == [str(good)]


def test_unknown_record_shape_fails_the_file_with_the_fix(tmp_path: Path) -> None:
    # given a JSONL file whose records match no format
    path = tmp_path / "odd.jsonl"
    path.write_bytes(jsonl_bytes({"question": "q", "answer": "a"}))
    # when ingested, then the file fails naming its fields and --format
    result = ingest(Lake(tmp_path / "lake"), [path], IngestConfig())
    assert "unknown format (fields: answer, question)" in result.files_failed[str(path)]
    assert "--format" in result.files_failed[str(path)]
    assert result.rows_read == 0


def test_rows_read_counts_undecodable_lines(tmp_path: Path) -> None:
    # given a JSONL file with 2 good rows, 1 malformed, 1 invalid UTF-8, 1 array and a blank line
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        jsonl_bytes(ROW)
        + b"\n"
        + b"{oops\n"
        + b'{"prompt": "\xff"}\n'
        + b"[]\n"
        + jsonl_bytes({**ROW, "prompt": "Yo"})
    )
    # when ingested
    result = ingest(Lake(tmp_path / "lake"), [path], IngestConfig())
    # then rows_read = accepted + rejected, each bad line under its reason, the blank line not counted
    assert result.rows_read == 5
    assert result.accepted == 2
    assert result.rejected == {
        Reason.MALFORMED.value: 1,
        Reason.INVALID_UTF8.value: 1,
        Reason.NOT_AN_OBJECT.value: 1,
    }


def test_corrupt_parquet_is_unreadable_and_named(tmp_path: Path) -> None:
    # given a file with Parquet magic bytes but no valid footer
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1" + b"x" * 100)
    # when read, then UnreadableFile names the path
    with pytest.raises(UnreadableFile) as info:
        list(records(path))
    assert info.value.path == str(path)


def test_truncated_xlsx_is_unreadable_and_named(tmp_path: Path) -> None:
    # given an XLSX file cut in half
    workbook = openpyxl.Workbook()
    workbook.active.append(["prompt", "completion_a"])
    workbook.active.append(["Hi", "Hello"])
    whole = tmp_path / "whole.xlsx"
    workbook.save(whole)
    path = tmp_path / "cut.xlsx"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # when read, then UnreadableFile names the path
    with pytest.raises(UnreadableFile) as info:
        list(records(path))
    assert info.value.path == str(path)


def test_jsonl_with_byte_order_mark(tmp_path: Path) -> None:
    # given a JSONL file written with a UTF-8 BOM
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl_bytes(ROW, ROW))
    # when read, then both rows decode
    assert detect_container(path) == "jsonl"
    assert summary(list(records(path))) == [(1, "ok"), (2, "ok")]


def test_json_with_byte_order_mark(tmp_path: Path) -> None:
    # given a JSON list written with a UTF-8 BOM
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps([ROW]))
    # when read, then its record decodes
    assert detect_container(path) == "json"
    assert [r.value for r in records(path)] == [ROW]
