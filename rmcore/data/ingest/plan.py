"""Plan: which inputs are new to the lake.

    files, folders, hf:// ids -> plan -> Plan (new files with their content hash, skipped, failed)

Folders are searched for label files; a file is new when the lake's `files` table holds no file
with its content hash (a hub id's hash is the hash of the id).
"""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rmcore.data.identity import digest
from rmcore.data.ingest.hub import HF_PREFIX
from rmcore.data.lake import Lake

DATA_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".xlsx"})


@dataclass
class Plan:
    """Inputs resolved to files: new ones with their content hash, skipped ones, failed ones."""

    new: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def file_hash(path: Path) -> str:
    """BLAKE2b-128 of a file's bytes: its identity in the lake's `files` table."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def is_data_file(path: Path) -> bool:
    """A label file by its name (gzip or not); folders are searched for these only."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in DATA_SUFFIXES and not path.name.startswith(".")


def expand_paths(inputs: Iterable[str | Path]) -> Iterator[str]:
    """Inputs with folders replaced by the label files under them (sorted); hf:// ids kept."""
    for item in inputs:
        name = str(item)
        path = Path(name)
        if not name.startswith(HF_PREFIX) and path.is_dir():
            yield from (str(p) for p in sorted(path.rglob("*")) if p.is_file() and is_data_file(p))
        else:
            yield name


def plan(lake: Lake, inputs: Iterable[str | Path]) -> Plan:
    """Which inputs are new to the lake (in order, each once), skipped, or missing."""
    result = Plan()
    done = lake.ingested()
    for name in expand_paths(inputs):
        if name.startswith(HF_PREFIX):
            content_hash = digest(name)
        elif not Path(name).is_file():
            result.failed[name] = "no such file or folder"
            continue
        else:
            try:
                content_hash = file_hash(Path(name))
            except OSError as error:
                result.failed[name] = f"cannot read: {error.strerror or error}"
                continue
        if content_hash in done:
            result.skipped.append(name)
        else:
            done.add(content_hash)
            result.new.append((name, content_hash))
    return result
