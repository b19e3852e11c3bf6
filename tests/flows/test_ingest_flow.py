"""The ingest flow end to end under a real (temporary) Prefect API."""

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from prefect.client.orchestration import get_client

from flows.ingest import config_overrides, ingest_flow, main, parser
from rmcore import cli
from rmcore.config import load_config
from rmcore.data.formats import detected, formats
from rmcore.data.lake import Lake
from rmcore.data.pairs import read_split
from rmcore.data.pairs.splits import SPLITS


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"data:\n  lake: {tmp_path / 'lake'}\n  raw: {tmp_path / 'raw'}\n")
    return path


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return str(path)


def _labelled(i: int) -> dict[str, Any]:
    """A row in the labelled form (prompt, response_a, response_b, label)."""
    return {
        "prompt": f"What is {i} plus {i}?",
        "response_a": f"labelled answer a to {i}",
        "response_b": f"labelled answer b to {i}",
        "label": "a",
    }


def _labelled_and_trl(i: int) -> dict[str, Any]:
    """A labelled row that also carries TRL's chosen and rejected, with texts of their own."""
    return {**_labelled(i), "chosen": f"trl chosen answer to {i}", "rejected": f"trl rejected answer to {i}"}


async def _artifact_markdown(key: str) -> str:
    async with get_client() as client:
        artifact = await client.read_latest_artifacts()
        return next(a.data for a in artifact if a.key == key)


@pytest.mark.slow
def test_flow_ingests_the_sample_then_a_rerun_adds_nothing(tmp_path: Path) -> None:
    # given a config whose lake and raw folders are temporary
    config = _config(tmp_path)

    # when the flow ingests the built-in sample
    first = ingest_flow(config_path=str(config), sample=True)

    # then every row read is accounted for, pairs are written per split, and the lake committed
    ingested = first["ingest"]
    assert ingested["rows_read"] > 0
    assert ingested["rows_read"] == ingested["accepted"] + ingested["rejected_total"]
    assert ingested["new_comparisons"] > 0 and ingested["duplicates"] > 0
    assert ingested["files_failed"] == {}
    lake = Lake(tmp_path / "lake")
    assert len(lake.files()) == len(ingested["files_ingested"])
    pair_ids = lake.column("comparisons", "pair_id")
    written = read_split(lake, "pairs", SPLITS).num_rows
    assert written == len(pair_ids) == sum(first["pairs"]["pairs"].values())
    assert first["pairs"]["lake_version"] == first["ingest"]["lake_version"] == lake.snapshot().version
    assert Path(first["report"]["markdown"]).exists()
    assert "Rows read" in asyncio.run(_artifact_markdown("ingest-summary"))

    # when it runs again with no new files
    second = ingest_flow(config_path=str(config), sample=True)

    # then nothing is added and the pairs are the same, built from the same lake version
    assert second["ingest"]["new_comparisons"] == 0
    assert second["ingest"]["files_skipped"] == len(ingested["files_ingested"])
    assert second["pairs"]["pairs"] == first["pairs"]["pairs"]
    assert second["pairs"]["lake_version"] == first["pairs"]["lake_version"]


def test_flow_without_inputs_is_refused(tmp_path: Path) -> None:
    # given no paths and no sample / when the flow runs / then it fails before touching the lake
    with pytest.raises(ValueError, match="nothing to ingest"):
        ingest_flow(config_path=str(_config(tmp_path)))
    assert not (tmp_path / "lake").exists()


def test_one_unreadable_file_is_listed_and_the_others_are_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two good label files and one that is not the Parquet its name says
    good = [
        _jsonl(tmp_path / "in" / f"day{d}.jsonl", [_labelled(10 * d + i) for i in range(3)]) for d in (1, 2)
    ]
    broken = tmp_path / "in" / "broken.parquet"
    broken.write_bytes(b"PAR1 and then nothing")

    # when the flow ingests all three (through its command line, as a scheduled run would)
    code = main([*good, str(broken), "--config", str(_config(tmp_path))])

    # then the flow finished: the good files are in the lake, the broken one is named with its reason,
    # and the exit status says that something failed, as `rmcore ingest`'s does
    assert code == 1
    lake = Lake(tmp_path / "lake")
    assert sorted(Path(entry.path).name for entry in lake.files()) == ["day1.jsonl", "day2.jsonl"]
    assert len(lake.column("comparisons", "comparison_id")) == 6
    assert f"ingest: error: {broken}: cannot read as parquet" in capsys.readouterr().err
    # and the flow's markdown artifact lists it
    summary = asyncio.run(_artifact_markdown("ingest-summary"))
    assert f"- `{broken}`: cannot read as parquet" in summary


@pytest.mark.slow
def test_a_forced_format_and_a_source_reach_the_lake(tmp_path: Path) -> None:
    # given a file that detection reads as labelled although its rows also carry TRL's fields,
    # and a file with the labelled fields only
    both = _jsonl(tmp_path / "in" / "both.jsonl", [_labelled_and_trl(i) for i in range(3)])
    labelled = _jsonl(tmp_path / "in" / "labelled.jsonl", [_labelled(i) for i in range(3)])
    detected_format = detected(_labelled_and_trl(0), formats())
    assert detected_format is not None and detected_format.name == "labelled"

    # when the flow ingests both with the format forced to trl and a source named
    result = ingest_flow([both, labelled], str(_config(tmp_path)), fmt="trl", source="vendor-x")

    # then the first file is read as TRL: its comparisons are chosen over rejected, with that source
    lake = Lake(tmp_path / "lake")
    entries = {Path(entry.path).name: entry for entry in lake.files()}
    assert (entries["both.jsonl"].format, entries["both.jsonl"].source) == ("trl", "vendor-x")
    assert entries["both.jsonl"].accepted == 3
    assert lake.column("comparisons", "source") == {"vendor-x"}
    responses = lake.column("comparisons", "response_a") | lake.column("comparisons", "response_b")
    assert responses == {f"trl {kind} answer to {i}" for kind in ("chosen", "rejected") for i in range(3)}

    # and the second, which lacks TRL's fields, is quarantined row by row, as `rmcore ingest` does
    quarantined = entries["labelled.jsonl"]
    assert quarantined.accepted == 0 and quarantined.rejected == {"missing_field": 3}
    assert result["ingest"]["files_failed"] == {}
    cli_lake = tmp_path / "cli-lake"
    assert cli.main(["ingest", labelled, "--format", "trl", "--lake", str(cli_lake), "--json"]) == 0
    assert Lake(cli_lake).files()[0].rejected == quarantined.rejected


@pytest.mark.slow
def test_main_passes_format_source_and_set_to_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a file detected as labelled, in a working directory where the default lake would land
    monkeypatch.chdir(tmp_path)
    both = _jsonl(tmp_path / "in" / "both.jsonl", [_labelled_and_trl(i) for i in range(3)])

    # when the command line forces trl, names a source and sets the lake with --set
    code = main(
        [both, "--format", "trl", "--source", "vendor-y", "--set", f"data.lake={tmp_path / 'set-lake'}"]
    )

    # then the flow read it as TRL, with that source, into the lake that --set named
    assert code == 0
    entries = Lake(tmp_path / "set-lake").files()
    assert [(e.format, e.source, e.accepted) for e in entries] == [("trl", "vendor-y", 3)]
    assert not (tmp_path / "data").exists()


def test_include_synthetic_is_a_config_override() -> None:
    # given a command line with --include-synthetic and a --set
    args = parser().parse_args(["labels.jsonl", "--include-synthetic", "--set", "data.lake=/tmp/lake"])

    # when its overrides are applied to the default config
    config = load_config(None, config_overrides(args))

    # then both hold
    assert config.data.ingest.include_synthetic
    assert config.data.lake == "/tmp/lake"


def test_main_reports_a_bad_set_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given an assignment without a value / when main runs / then it exits 1 and says what to write
    assert main([str(tmp_path / "labels.jsonl"), "--set", "data.lake"]) == 1
    assert "ingest: error: --set 'data.lake': expected KEY=VALUE" in capsys.readouterr().err


def test_flow_refuses_an_unknown_format(tmp_path: Path) -> None:
    # given a format no reader has / when the flow runs / then it fails before touching the lake
    with pytest.raises(ValueError, match="unknown format 'yaml'"):
        ingest_flow([str(tmp_path / "labels.jsonl")], str(_config(tmp_path)), fmt="yaml")
    assert not (tmp_path / "lake").exists()
