"""Ingest: label files, folders and `hf://` ids into the lake, as one commit.

    inputs -> plan.py (Plan: new, skipped, failed) -> stage.py (StagedFile under <lake>/staging;
    per row: formats/ reader, chunk_stager.py checks and identifies) -> commit.py (lake parts and
    one manifest write: IngestSummary)

    plan    files named or found in folders, hashed; files the manifest already holds are skipped
    stage   each new file read, validated and identified into <lake>/staging (hub.py: hf:// ids)
    commit  under the lake's lock: judgments the lake already holds are dropped as duplicates,
            the rest become the file's parts, and one manifest write commits every file

`ingest` (run.py) does the three in one call. A run killed at any point leaves the committed lake
unchanged; rerunning it finishes the job (finished stagings are reused).
"""

from rmcore.data.ingest.commit import IngestSummary, commit
from rmcore.data.ingest.plan import plan
from rmcore.data.ingest.run import ingest
from rmcore.data.ingest.stage import StagedFile, stage_input

__all__ = ["IngestSummary", "StagedFile", "commit", "ingest", "plan", "stage_input"]
