"""The `rmcore` command line, in-process through main(), plus one run of the installed console script."""

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from rmcore.cli import main
from rmcore.config import SplitConfig
from rmcore.data.identity import prompt_id
from rmcore.data.lake import Lake
from rmcore.data.pairs import read_split
from rmcore.data.pairs.splits import SPLITS, split_of
from rmcore.data.records import Message

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = ROOT / ".venv" / "bin" / "rmcore"

VOTES = [
    {
        "prompt": "Capital of France?",
        "response_a": "Paris",
        "response_b": "Lyon",
        "label": "a",
        "annotator": "u1",
    },
    {
        "prompt": "Capital of France?",
        "response_a": "Lyon",
        "response_b": "Paris",
        "label": "b",
        "annotator": "u1",
    },
    {
        "prompt": "Capital of France?",
        "response_a": "Paris",
        "response_b": "Lyon",
        "label": "b",
        "annotator": "u2",
    },
    {"prompt": "2+2?", "response_a": "4", "response_b": "5", "label": "a", "annotator": "u1"},
    {"prompt": "Colour of the sky?", "response_a": "blue", "response_b": "green", "label": "tie"},
    {"prompt": "Colour of the sky?", "response_a": "blue", "response_b": "blue ", "label": "a"},
    {"prompt": "Colour of the sky?", "response_a": "blue", "label": "a"},
]
PROMPTS = ("Capital of France?", "2+2?", "Colour of the sky?")


def write_votes(tmp_path: Path) -> Path:
    path = tmp_path / "raw" / "votes.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in VOTES))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one in-process command."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(out: str) -> dict[str, Any]:
    """The JSON object on the last line of `out`."""
    value = orjson.loads(out.strip().splitlines()[-1])
    assert isinstance(value, dict)
    return value


def one_line_error(err: str, command: str) -> str:
    """`err` checked to be exactly one line starting `rmcore COMMAND: error:`, with no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rmcore {command}: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


# ---------------------------------------------------------------- ingest


def test_ingest_json_summary(tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given 7 rows: 3 votes on one pair (one a flipped duplicate), 1 vote, 1 tie,
    # 1 pair of identical responses, 1 row missing response_b
    path = write_votes(tmp_path)
    # when ingested with --json
    code, out, err = run(capsys, "ingest", str(path), "--lake", str(lake_dir), "--json")
    # then exit 0 and the last line is the summary with hand-counted numbers
    assert (code, err) == (0, "")
    summary = last_json(out)
    assert summary["rows_read"] == 7
    assert summary["accepted"] == 5
    assert summary["rejected"] == {"identical_responses": 1, "missing_field": 1}
    assert summary["rejected_total"] == 2
    assert summary["new_comparisons"] == 4
    assert summary["duplicates"] == 1
    assert summary["files_skipped"] == 0
    assert summary["files_ingested"] == [str(path)]
    assert summary["files_failed"] == {}
    assert summary["lake"] == str(lake_dir)
    # when ingested again, then the file is skipped
    code, out, _ = run(capsys, "ingest", str(path), "--lake", str(lake_dir), "--json")
    again = last_json(out)
    assert (code, again["files_skipped"], again["rows_read"], again["new_comparisons"]) == (0, 1, 0, 0)
    assert again["skipped_paths"] == [str(path)]


def test_ingest_human_summary(tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given the votes file, when ingested without --json, then two readable lines
    code, out, _ = run(capsys, "ingest", str(write_votes(tmp_path)), "--lake", str(lake_dir))
    assert code == 0
    assert out.splitlines() == [
        f"ingested 1 file(s) into {lake_dir}: 7 rows read, 5 accepted, 2 rejected "
        "(identical_responses 1, missing_field 1)",
        "4 new comparisons, 1 duplicates, 0 new rankings, 0 file(s) already ingested",
    ]


def test_ingest_missing_path_fails_with_exit_1(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a good file and a path that does not exist
    good, missing = write_votes(tmp_path), tmp_path / "nope.jsonl"
    # when both are ingested
    code, out, err = run(capsys, "ingest", str(good), str(missing), "--lake", str(lake_dir))
    # then exit 1, one line names the missing path, no traceback, and the good file is ingested
    assert code == 1
    assert f"rmcore ingest: error: {missing}: no such file or folder" in err.splitlines()
    assert "Traceback" not in out + err
    assert len(Lake(lake_dir).files()) == 1
    # and with --json the failure is in the summary
    code, out, _ = run(capsys, "ingest", str(missing), "--lake", str(lake_dir), "--json")
    assert code == 1
    assert last_json(out)["files_failed"] == {str(missing): "no such file or folder"}


def test_ingest_failed_input_is_reported_on_stderr(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    code, _, err = run(capsys, "ingest", str(missing), "--lake", str(lake_dir))
    assert code == 1
    assert str(missing) in err


def test_format_override_and_source(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a TRL file
    path = tmp_path / "trl.jsonl"
    path.write_bytes(orjson.dumps({"prompt": "Hi", "chosen": "Hello", "rejected": "Bye"}) + b"\n")
    # when forced to be read as labelled, then its row lacks the labelled fields
    code, out, _ = run(
        capsys, "ingest", str(path), "--lake", str(tmp_path / "l1"), "--format", "labelled", "--json"
    )
    assert (code, last_json(out)["rejected"]) == (0, {"missing_field": 1})
    # when read as detected with --source, then its comparison carries that source
    code, out, _ = run(capsys, "ingest", str(path), "--lake", str(lake_dir), "--source", "team-x", "--json")
    assert (code, last_json(out)["accepted"]) == (0, 1)
    assert Lake(lake_dir).read("comparisons").column("source").to_pylist() == ["team-x"]


def test_bad_config_is_one_line_error(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a config with two problems
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  colour: blue\n  splits:\n    train: 0.5\n")
    # when any command uses it, then one error line lists both, exit 1
    code, out, err = run(
        capsys, "ingest", str(write_votes(tmp_path)), "--config", str(config), "--lake", str(lake_dir)
    )
    assert (code, out) == (1, "")
    line = one_line_error(err, "ingest")
    assert "2 problem(s)" in line
    assert "data.colour" in line
    assert "data.splits" in line


def test_missing_config_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "build-pairs", "--config", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "config file not found" in one_line_error(err, "build-pairs")


# ---------------------------------------------------------------- build-pairs and data-report


def expected_pairs_by_split() -> dict[str, int]:
    """One pair per prompt of VOTES (identical-response and incomplete rows are rejected)."""
    counts = Counter(split_of(prompt_id((Message("user", p),)), SplitConfig()) for p in PROMPTS)
    return {split: counts.get(split, 0) for split in ("train", "validation", "test")}


def test_build_pairs_json(tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given a lake holding the votes (3 pairs: a 1-1 conflict, one vote, one tie)
    run(capsys, "ingest", str(write_votes(tmp_path)), "--lake", str(lake_dir))
    # when pairs are built with --json
    code, out, err = run(capsys, "build-pairs", "--lake", str(lake_dir), "--json")
    # then pairs by split match split_of of each prompt, the pair tables are named, each split holds
    # its count of rows, and the pairs were built from the lake's one ingest (version 1)
    assert (code, err) == (0, "")
    result = last_json(out)
    assert result["pairs"] == expected_pairs_by_split()
    assert result["comparisons"] == 4
    assert result["conflicts"] == 2  # France 1-1 and the single tie
    assert result["conflicts_dropped"] == 0
    assert result["lake_version"] == 1
    assert result["tables"] == {name: str(lake_dir / name) for name in ("pairs", "pair_rankings")}
    for split in SPLITS:
        assert read_split(Lake(lake_dir), "pairs", (split,)).num_rows == result["pairs"][split]
    # when built again with --drop-conflicts, then the two conflicts are left out
    code, out, _ = run(capsys, "build-pairs", "--lake", str(lake_dir), "--drop-conflicts", "--json")
    dropped = last_json(out)
    assert (code, dropped["conflicts_dropped"], sum(dropped["pairs"].values())) == (0, 2, 1)


def crowd_rows() -> list[dict[str, str]]:
    """Six questions where u1, u2, u3 pick the right answer and x, y the wrong one, then one where x
    and y outvote u1: a majority Dawid-Skene overturns, since it learns that x and y are wrong."""
    rows = []
    for question, votes in [
        *((f"Q{i}", {"u1": "a", "u2": "a", "u3": "a", "x": "b", "y": "b"}) for i in range(6)),
        ("Q?", {"u1": "a", "x": "b", "y": "b"}),
    ]:
        rows += [
            {
                "prompt": question,
                "response_a": "right",
                "response_b": "wrong",
                "label": label,
                "annotator": who,
            }
            | {"source": "crowd"}
            for who, label in votes.items()
        ]
    return rows


def test_build_pairs_aggregate_dawid_skene_json(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the crowd in a lake, paired by vote shares (the default)
    crowd = tmp_path / "raw" / "crowd.jsonl"
    crowd.parent.mkdir(parents=True)
    crowd.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in crowd_rows()))
    run(capsys, "ingest", str(crowd), "--lake", str(lake_dir))
    _, out, _ = run(capsys, "build-pairs", "--lake", str(lake_dir), "--json")
    assert (last_json(out)["aggregate"], last_json(out)["changed_winner"]) == ("votes", {})
    # when paired with --aggregate dawid-skene (and --drop-conflicts: both options apply)
    code, out, err = run(
        capsys,
        "build-pairs",
        "--lake",
        str(lake_dir),
        "--aggregate",
        "dawid-skene",
        "--drop-conflicts",
        "--json",
    )
    # then the summary names the method and the one pair whose 2-1 majority was overturned
    assert (code, err) == (0, "")
    result = last_json(out)
    assert (result["aggregate"], result["changed_winner"], result["conflicts_resolved"]) == (
        "dawid-skene",
        {"crowd": 1},
        0,
    )
    (changed,) = [
        row for row in read_split(Lake(lake_dir), "pairs", SPLITS).to_pylist() if row["p_votes"] < 0.5
    ]
    assert (changed["prompt"][-1]["content"], changed["chosen"], changed["p_votes"]) == ("Q?", "right", 1 / 3)
    # and the human summary says it too
    _, out, _ = run(capsys, "build-pairs", "--lake", str(lake_dir), "--aggregate", "dawid-skene")
    assert "aggregate dawid-skene: changed winner 1, conflicts resolved 0" in out


def test_build_pairs_on_an_empty_lake_is_one_line_error(
    lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a lake with nothing ingested, when pairs are built, then one line says what to run
    code, out, err = run(capsys, "build-pairs", "--lake", str(lake_dir))
    assert (code, out) == (1, "")
    assert "rmcore ingest" in one_line_error(err, "build-pairs")


def test_data_report_writes_json_and_markdown(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a lake with pairs built
    run(capsys, "ingest", str(write_votes(tmp_path)), "--lake", str(lake_dir))
    run(capsys, "build-pairs", "--lake", str(lake_dir))
    # when the report is written with --json
    code, out, err = run(capsys, "data-report", "--lake", str(lake_dir), "--json")
    # then both files exist and the JSON file holds the printed report's counts
    assert (code, err) == (0, "")
    result = last_json(out)
    json_path, md_path = Path(result["paths"]["json"]), Path(result["paths"]["markdown"])
    assert (json_path, md_path) == (
        lake_dir / "reports" / "data_report.json",
        lake_dir / "reports" / "data_report.md",
    )
    report = orjson.loads(json_path.read_bytes())
    assert (report["rows_read"], report["accepted"]) == (7, 5)
    assert report["rejected"] == {"identical_responses": 1, "missing_field": 1}
    assert report["conflicts"] == 2
    assert report["votes_per_pair"] == {"1": 2, "2": 1}
    assert report["prompts_in_several_splits"] == 0
    assert report["rows_by_format"] == {
        "labelled": {"files": 1, "rows_read": 7, "accepted": 5, "rejected": 2}
    }
    assert (report["multi_turn_pairs"], report["model_labelled_pairs"]) == (0, 0)
    assert report == {k: v for k, v in result.items() if k != "paths"}
    assert md_path.read_text(encoding="utf-8").startswith("# rmcore data report")
    # and without --json the markdown is printed, then where the JSON went
    code, out, _ = run(capsys, "data-report", "--lake", str(lake_dir))
    assert code == 0
    assert out.startswith("# rmcore data report")
    assert out.strip().splitlines()[-1] == f"written: {json_path}"


def test_data_report_before_build_pairs_is_one_line_error(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "ingest", str(write_votes(tmp_path)), "--lake", str(lake_dir))
    code, _, err = run(capsys, "data-report", "--lake", str(lake_dir))
    assert code == 1
    assert "rmcore build-pairs" in one_line_error(err, "data-report")


def test_data_report_on_pair_files_of_an_earlier_rmcore_asks_for_build_pairs_in_one_line(
    tmp_path: Path, lake_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the pairs as an earlier rmcore wrote them: a Parquet file per split under pairs/, without
    # a Delta log and without the columns this version writes
    run(capsys, "ingest", str(write_votes(tmp_path)), "--lake", str(lake_dir))
    run(capsys, "build-pairs", "--lake", str(lake_dir))
    lake = Lake(lake_dir)
    old = {
        s: read_split(lake, "pairs", (s,)).drop_columns(["p_votes", "chosen_turns", "rejected_turns"])
        for s in SPLITS
    }
    for name in ("pairs", "pair_rankings"):
        shutil.rmtree(lake_dir / name)
    (lake_dir / "pairs").mkdir()
    for split, table in old.items():
        pq.write_table(table, lake_dir / "pairs" / f"{split}.parquet")
    # when the report is asked for, then one line says to build the pairs again
    code, _, err = run(capsys, "data-report", "--lake", str(lake_dir))
    assert code == 1
    assert "build-pairs --lake" in one_line_error(err, "data-report")


# ---------------------------------------------------------------- console script


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason=f"console script not installed at {CONSOLE_SCRIPT}")
def test_console_script(tmp_path: Path, lake_dir: Path) -> None:
    # given a good file and a missing one
    good, missing = write_votes(tmp_path), tmp_path / "nope.jsonl"
    # when the installed `rmcore` ingests both with --json
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "ingest", str(good), str(missing), "--lake", str(lake_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then the exit status is 1, the last line is the JSON summary, and there is no traceback
    assert done.returncode == 1, done.stderr
    summary = last_json(done.stdout)
    assert (summary["rows_read"], summary["accepted"], summary["new_comparisons"]) == (7, 5, 4)
    assert summary["files_failed"] == {str(missing): "no such file or folder"}
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "out", "--lake", "lake"],
        ["sample", "out", "--config", "pipeline.yaml"],
        ["score", "--model", "m", "rows.jsonl", "--output", "o.parquet", "--lake", "lake"],
        ["evaluate", "--model", "m", "--pairs", "p.parquet", "--lake", "lake"],
        ["data-report", "--set", "data.lake=x"],
    ],
)
def test_an_option_a_subcommand_would_ignore_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # given an option the subcommand has no use for / when it runs / then argparse refuses it by name
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "unrecognized arguments: " + argv[-2] in capsys.readouterr().err
