"""Staging: one raw file read, validated and identified into Parquet under <lake>/staging/<key>/.

Every row read is accepted or quarantined with its reason (rows_read = accepted + rejected), by
`ChunkStager`. Duplicates within a chunk are counted there; duplicates across chunks and of the
lake are found at commit. `staged.json` is written last: a staging folder without it is
incomplete and redone.

A large plain JSONL file is cut at line boundaries into chunks staged by parallel worker
processes (one per core by default); other files are staged in one pass, streaming. `stage_input`
stages one planned input, a local file or an `hf://` dataset id (its rows streamed from the hub).
"""

import fcntl
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rmcore.atomic import write_text
from rmcore.config import IngestConfig
from rmcore.data.formats import Format, detected, formats
from rmcore.data.formats.containers import (
    RawRecord,
    UnreadableFile,
    detect_container,
    is_gzip,
    jsonl_range,
    line_offsets,
    records,
)
from rmcore.data.identity import digest
from rmcore.data.ingest.chunk_stager import ChunkCounts, ChunkStager
from rmcore.data.ingest.hub import HF_PREFIX, hub_dataset, hub_rows
from rmcore.data.lake import Lake, schemas
from rmcore.data.records import RowRejected


class StagedFile(BaseModel):
    """What staging one file produced: counts and where its staged tables are."""

    model_config = ConfigDict(extra="forbid")

    path: str
    content_hash: str
    format: str
    source: str
    rows_read: int
    accepted: int
    rejected: dict[str, int]
    comparisons: int
    duplicates_in_file: int
    rankings: int
    chunks: int
    directory: str
    ingested_at: str

    def tables(self, name: str) -> list[Path]:
        """The staged Parquet files of one table, a file per chunk that had rows, in file order."""
        candidates = (Path(self.directory) / f"{name}-{i:04d}.parquet" for i in range(self.chunks))
        return [path for path in candidates if path.exists()]


def staging_dir(
    lake: Lake, content_hash: str, config: IngestConfig, fmt_name: str | None, source: str | None
) -> Path:
    """Where one file is staged: named by its content and everything that shapes its staging."""
    shape = f"{schemas.SCHEMA_VERSION}\x1f{config.model_dump_json()}\x1f{fmt_name}\x1f{source}"
    key = digest(f"{content_hash}\x1f{shape}")
    return lake.work / "staging" / key


def default_source(path: Path) -> str:
    """A file's source when its rows name none: folder and stem, e.g. pandalm/testset-v1."""
    stem = path.name.split(".", 1)[0]
    return f"{path.parent.name}/{stem}" if path.parent.name else stem


@dataclass(frozen=True)
class _Job:
    """Everything one chunk's staging needs (picklable, for worker processes)."""

    directory: Path
    chunk: int
    path: Path
    source: str
    config: IngestConfig
    fmt_name: str | None
    now: datetime


def _unknown_format(path: Path, value: dict[str, object], names: Iterable[str]) -> UnreadableFile:
    fields = ", ".join(sorted(value)[:12])
    return UnreadableFile(
        path, f"unknown format (fields: {fields}); pass --format, one of {', '.join(names)}"
    )


def _stage_chunk(job: _Job, rows: Iterable[RawRecord]) -> ChunkCounts:
    """Stage one chunk of rows into `<table>-<chunk>.parquet` files; its counts."""
    known = formats(job.config)
    fmt: Format | None = known[job.fmt_name] if job.fmt_name else None
    stager = ChunkStager(
        job.directory,
        job.chunk,
        str(job.path),
        job.source,
        job.config.raw_text_chars,
        job.config.max_chars,
        job.now,
        job.fmt_name or "",
    )
    rows_read = 0
    try:
        for raw in rows:
            rows_read += 1
            if raw.error is not None:
                stager.reject(raw, raw.error)
                continue
            assert raw.value is not None
            if fmt is None:
                fmt = detected(raw.value, known)
                if fmt is None:
                    raise _unknown_format(job.path, raw.value, known)
                stager.format = fmt.name
            try:
                stager.accept(raw.row, fmt.parse(raw.value))
            except RowRejected as why:
                stager.reject(raw, why)
        stager.close()
    except BaseException:
        stager.abort()
        raise
    return stager.counts(rows_read)


def _stage_range(job: _Job, start: int, end: int, first_row: int) -> ChunkCounts:
    """Worker entry point: stage the JSONL lines in bytes [start, end) of the job's file."""
    return _stage_chunk(job, jsonl_range(job.path, start, end, first_row))


def _finish(
    lake_dir: Path,
    path: Path,
    content_hash: str,
    source: str,
    counts: ChunkCounts,
    chunks: int,
    now: datetime,
) -> StagedFile:
    staged = StagedFile(
        path=str(path),
        content_hash=content_hash,
        format=counts.format,
        source=source,
        rows_read=counts.rows_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        comparisons=counts.comparisons,
        duplicates_in_file=counts.duplicates,
        rankings=counts.rankings,
        chunks=chunks,
        directory=str(lake_dir),
        ingested_at=now.isoformat(),
    )
    assert staged.rows_read == staged.accepted + sum(staged.rejected.values())
    write_text(lake_dir / "staged.json", staged.model_dump_json(indent=1))
    return staged


def _new_job(
    lake: Lake, path: Path, content_hash: str, config: IngestConfig, fmt_name: str | None, source: str | None
) -> _Job:
    directory = staging_dir(lake, content_hash, config, fmt_name, source)
    shutil.rmtree(directory, ignore_errors=True)
    return _Job(directory, 0, path, source or default_source(path), config, fmt_name, datetime.now(UTC))


def stage_rows(
    lake: Lake,
    path: Path,
    content_hash: str,
    rows: Iterable[RawRecord],
    config: IngestConfig,
    fmt_name: str | None = None,
    source: str | None = None,
) -> StagedFile:
    """Stage rows in one pass; raises UnreadableFile when the file as a whole cannot be read."""
    job = _new_job(lake, path, content_hash, config, fmt_name, source)
    counts = _stage_chunk(job, rows)
    return _finish(job.directory, path, content_hash, job.source, counts, 1, job.now)


def workers(config: IngestConfig) -> int:
    """How many processes stage a large file."""
    return config.workers or os.cpu_count() or 1


def _first_format(path: Path, config: IngestConfig) -> str:
    """The format of a file, detected from its first decodable record."""
    known = formats(config)
    for raw in records(path, "jsonl"):
        if raw.value is not None:
            fmt = detected(raw.value, known)
            if fmt is None:
                raise _unknown_format(path, raw.value, known)
            return fmt.name
    return ""


def _stage_in_chunks(
    lake: Lake,
    path: Path,
    content_hash: str,
    config: IngestConfig,
    fmt_name: str | None,
    source: str | None,
    processes: int,
) -> StagedFile:
    """Stage a large plain JSONL file as `processes` chunks in parallel worker processes."""
    job = _new_job(lake, path, content_hash, config, fmt_name, source)
    job = _Job(
        job.directory, 0, path, job.source, config, fmt_name or _first_format(path, config) or None, job.now
    )
    ranges = line_offsets(path, processes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(ranges), mp_context=context) as pool:
        futures = [
            pool.submit(
                _stage_range,
                _Job(job.directory, i, path, job.source, config, job.fmt_name, job.now),
                start,
                end,
                first_row,
            )
            for i, (start, end, first_row) in enumerate(ranges)
        ]
        total = ChunkCounts()
        for future in futures:
            total.add(future.result())
    return _finish(job.directory, path, content_hash, job.source, total, len(ranges), job.now)


def stage_file(
    lake: Lake,
    path: Path,
    content_hash: str,
    config: IngestConfig,
    fmt_name: str | None = None,
    source: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> StagedFile:
    """Stage one local file, or return its finished staging from an earlier, interrupted run (or from
    another ingest on this machine that staged it first)."""
    directory = staging_dir(lake, content_hash, config, fmt_name, source)
    with _staging_lock(directory):
        return _stage_file(lake, directory, path, content_hash, config, fmt_name, source, on_bytes)


@contextmanager
def _staging_lock(directory: Path) -> Iterator[None]:
    """Hold the lock of the lake's staging folder (the operating system's `flock` on the folder itself,
    which leaves no file behind): two ingests on one machine stage in turns, so that the second reuses
    a file's finished staging instead of deleting it half-written (their commits still run at once)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory.parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _stage_file(
    lake: Lake,
    directory: Path,
    path: Path,
    content_hash: str,
    config: IngestConfig,
    fmt_name: str | None,
    source: str | None,
    on_bytes: Callable[[int], None] | None,
) -> StagedFile:
    done = directory / "staged.json"
    if done.exists():
        staged = StagedFile.model_validate_json(done.read_bytes())
        return staged.model_copy(update={"directory": str(directory), "path": str(path)})
    size = path.stat().st_size
    processes = min(workers(config), size // config.chunk_bytes)
    if processes > 1 and not is_gzip(path) and detect_container(path) == "jsonl":
        staged = _stage_in_chunks(lake, path, content_hash, config, fmt_name, source, processes)
        if on_bytes:
            on_bytes(size)
        return staged
    return stage_rows(lake, path, content_hash, records(path, on_bytes=on_bytes), config, fmt_name, source)


def stage_input(
    lake: Lake,
    name: str,
    content_hash: str,
    config: IngestConfig,
    fmt_name: str | None = None,
    source: str | None = None,
    on_bytes: Callable[[str, int, int], None] | None = None,
) -> StagedFile:
    """Stage one planned input, a local file or an `hf://` dataset id."""
    if name.startswith(HF_PREFIX):
        try:
            dataset = hub_dataset(name.removeprefix(HF_PREFIX))
        except ValueError as error:
            raise UnreadableFile(name, str(error)) from None
        rows = hub_rows(dataset)
        return stage_rows(lake, Path(name), content_hash, rows, config, fmt_name or dataset.format, source)
    path = Path(name)
    size = path.stat().st_size
    progress = (lambda n: on_bytes(name, n, size)) if on_bytes else None
    return stage_file(lake, path, content_hash, config, fmt_name, source, progress)
