"""Hugging Face dataset ids: the real `datasets` path, tested for its error where the hub is unreachable."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from rmcore.data.lake import TABLES, Lake


def _ingest_hf(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "rmcore.cli",
        "ingest",
        "hf://Anthropic/hh-rlhf",
        "--lake",
        str(tmp_path / "lake"),
        "--json",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_offline_hub_id_fails_by_name_and_leaves_no_lake_commit(tmp_path: Path) -> None:
    # given the hub switched off / when an hf:// id is ingested
    result = _ingest_hf(tmp_path, {"HF_HUB_OFFLINE": "1"})

    # then the run fails with one reason naming the dataset, and nothing is committed
    assert result.returncode == 1
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert list(summary["files_failed"]) == ["hf://Anthropic/hh-rlhf"]
    assert "Hugging Face hub" in summary["files_failed"]["hf://Anthropic/hh-rlhf"]
    assert summary["rows_read"] == 0
    lake = Lake(tmp_path / "lake")
    assert summary["lake_version"] is None and lake.snapshot() is None
    assert {name: lake.read(name).num_rows for name in TABLES} == dict.fromkeys(TABLES, 0)
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_unreachable_hub_fails_with_a_clear_reason(tmp_path: Path) -> None:
    # given a machine that cannot reach the hub (this one) / when an hf:// id is ingested
    result = _ingest_hf(tmp_path, {"HF_HUB_OFFLINE": "0"})

    # then it fails by name, saying the hub could not be reached
    assert result.returncode == 1
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert "is this machine online?" in summary["files_failed"]["hf://Anthropic/hh-rlhf"]
    assert "Traceback" not in result.stderr
