"""The ingest flow end to end under a real (temporary) Prefect API."""

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client

from flows.ingest import ingest_flow
from rmcore.data.lake import Lake


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"data:\n  lake: {tmp_path / 'lake'}\n  raw: {tmp_path / 'raw'}\n")
    return path


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
    assert len(lake.manifest().files) == len(ingested["files_ingested"])
    pair_ids = lake.column("comparisons", "pair_id")
    written = sum(pq.read_metadata(p).num_rows for p in first["pairs"]["paths"].values())
    assert written == len(pair_ids) == sum(first["pairs"]["pairs"].values())
    assert Path(first["report"]["markdown"]).exists()
    assert "Rows read" in asyncio.run(_artifact_markdown("ingest-summary"))

    # when it runs again with no new files
    second = ingest_flow(config_path=str(config), sample=True)

    # then nothing is added and the pairs are the same
    assert second["ingest"]["new_comparisons"] == 0
    assert second["ingest"]["files_skipped"] == len(ingested["files_ingested"])
    assert second["pairs"]["pairs"] == first["pairs"]["pairs"]


def test_flow_without_inputs_is_refused(tmp_path: Path) -> None:
    # given no paths and no sample / when the flow runs / then it fails before touching the lake
    with pytest.raises(ValueError, match="nothing to ingest"):
        ingest_flow(config_path=str(_config(tmp_path)))
    assert not (tmp_path / "lake").exists()
