"""Ingest in one call: plan, stage each new input, commit them together.

files, folders, hf:// ids -> plan -> stage_input (each) -> commit -> IngestSummary
"""

from collections.abc import Callable, Iterable
from pathlib import Path

from rmcore.config import IngestConfig
from rmcore.data.formats.containers import UnreadableFile
from rmcore.data.ingest.commit import IngestSummary, commit
from rmcore.data.ingest.plan import plan
from rmcore.data.ingest.stage import stage_input
from rmcore.data.lake import Lake


def ingest(
    lake: Lake,
    inputs: Iterable[str | Path],
    config: IngestConfig,
    fmt_name: str | None = None,
    source: str | None = None,
    on_bytes: Callable[[str, int, int], None] | None = None,
) -> IngestSummary:
    """Plan, stage and commit: files, folders and `hf://` ids into the lake as one commit.

    `on_bytes(path, bytes_read, size)` is called as each local file is read (progress bars).
    """
    planned = plan(lake, inputs)
    staged, failed = [], dict(planned.failed)
    for name, content_hash in planned.new:
        try:
            staged.append(stage_input(lake, name, content_hash, config, fmt_name, source, on_bytes))
        except UnreadableFile as error:
            failed[name] = error.reason
    summary = commit(lake, staged)
    summary.files_skipped[:0] = planned.skipped
    summary.files_failed.update(failed)
    return summary
