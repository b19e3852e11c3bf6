"""One Prefect test harness (a temporary local API and database) for every flow test."""

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API for the session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def write_labels() -> Callable[[Path, pa.Table], Path]:
    """`write_labels(path, pairs)`: the pairs as a TRL-format JSONL label file (prompt, chosen, rejected)."""

    def write(path: Path, pairs: pa.Table) -> Path:
        rows = [
            {"prompt": row["prompt"][0]["content"], "chosen": row["chosen"], "rejected": row["rejected"]}
            for row in pairs.to_pylist()
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        return path

    return write
