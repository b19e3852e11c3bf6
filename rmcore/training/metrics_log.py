"""The training's metrics log: output_dir/metrics.jsonl, one JSON object per optimizer step and per
held-out evaluation, each with its "step". `rmcore.tracking.log_history` sends it to MLflow.
"""

from pathlib import Path
from typing import Any

import orjson

from rmcore.data.atomic import write_text

METRICS = "metrics.jsonl"
"""The log's file name in the output directory."""


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One record as a line at the end of the log."""
    with path.open("ab") as f:
        f.write(orjson.dumps(record) + b"\n")


def forget_records_after(path: Path, step: int) -> None:
    """Keep the records of steps up to `step` only: an interrupted attempt may have logged steps after
    its last checkpoint (and half a line), and the resumed run logs those steps again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_bytes().splitlines():
        try:
            if orjson.loads(line)["step"] <= step:
                kept.append(line.decode() + "\n")
        except orjson.JSONDecodeError:
            continue
    write_text(path, "".join(kept))
