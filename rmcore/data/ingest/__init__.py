"""Ingest: label files, folders and `hf://` ids into the lake, one commit per table.

    inputs -> plan.py (Plan: new, skipped, failed) -> stage.py (StagedFile under the lake's
    staging/; per row: formats/ reader, chunk_stager.py checks and identifies) -> commit.py (a
    commit per data table, then the `files` table: IngestSummary)

    plan    files named or found in folders, hashed; files the `files` table holds are skipped
    stage   each new file read, validated and identified into staging/ (hub.py: hf:// ids)
    commit  judgments the lake already holds are dropped as duplicates, the new rows are placed in
            each table and committed (optimistically: recomputed if another writer commits
            first), then one row per file is recorded in `files`: the new lake version

`ingest` (run.py) does the three in one call. A run killed at any point leaves every table at a
whole commit; rerunning it finishes the job (finished stagings are reused, no file's rows are
written twice).
"""

from rmcore.data.ingest.commit import IngestSummary, commit
from rmcore.data.ingest.plan import plan
from rmcore.data.ingest.run import ingest
from rmcore.data.ingest.stage import StagedFile, stage_input

__all__ = ["IngestSummary", "StagedFile", "commit", "ingest", "plan", "stage_input"]
