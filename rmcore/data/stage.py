"""Staging: one raw file read, validated and identified into Parquet under <lake>/staging/<key>/.

Every row read is accepted or quarantined with its reason (rows_read = accepted + rejected).
An accepted row yields judgments (and, for rankings, the ranking and its implied pairs), each
named by a content hash so the same judgment in either A/B orientation has one id. A judgment
repeated within a chunk is counted as a duplicate here; duplicates across chunks and of the
lake are found at commit. `staged.json` is written last: a staging folder without it is
incomplete and redone.

A large plain JSONL file is cut at line boundaries into chunks staged by parallel worker
processes (one per core by default); other files are staged in one pass, streaming.
"""

import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rmcore.config import IngestConfig
from rmcore.data import schemas
from rmcore.data.atomic import ParquetParts, write_text
from rmcore.data.containers import (
    RawRecord,
    UnreadableFile,
    detect_container,
    is_gzip,
    jsonl_range,
    line_offsets,
    records,
)
from rmcore.data.formats import Format, detected, formats
from rmcore.data.lake import Lake
from rmcore.data.normalize import digest, pair_id, prompt_id, response_id, text_id
from rmcore.data.records import Judgment, Label, Message, Ranking, RowRejected
from rmcore.data.validate import check

FLIPPED: dict[Label, Label] = {"a": "b", "b": "a", "tie": "tie"}


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
    return lake.root / "staging" / key


def default_source(path: Path) -> str:
    """A file's source when its rows name none: folder and stem, e.g. pandalm/testset-v1."""
    stem = path.name.split(".", 1)[0]
    return f"{path.parent.name}/{stem}" if path.parent.name else stem


class _PromptIds:
    """Prompt ids, memoized: prompts repeat across many rows (bounded memory)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._known: dict[tuple[Message, ...], str] = {}

    def __call__(self, prompt: tuple[Message, ...]) -> str:
        known = self._known.get(prompt)
        if known is None:
            if len(self._known) >= self.capacity:
                self._known.clear()
            known = self._known[prompt] = prompt_id(prompt)
        return known


def _messages(prompt: tuple[Message, ...]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in prompt]


@dataclass
class ChunkCounts:
    """What staging one chunk of a file counted."""

    format: str = ""
    rows_read: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    comparisons: int = 0
    duplicates: int = 0
    rankings: int = 0

    def add(self, other: "ChunkCounts") -> None:
        """Sum another chunk's counts into these."""
        self.format = self.format or other.format
        self.rows_read += other.rows_read
        self.accepted += other.accepted
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        self.comparisons += other.comparisons
        self.duplicates += other.duplicates
        self.rankings += other.rankings


def _pairs_of(ranks: tuple[int, ...]) -> Iterator[tuple[int, int, Label]]:
    """Every (i, j), i < j, of a ranking with its label: the lower rank wins, equal ranks tie."""
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            yield i, j, "a" if ranks[i] < ranks[j] else "b" if ranks[i] > ranks[j] else "tie"


@dataclass(frozen=True, slots=True)
class _Side:
    """One response of a comparison as staged: its final reply, its id and its leading turns."""

    reply: str
    id: str
    turns: list[dict[str, str]]


@dataclass
class _Stager:
    """Writes one chunk's staged tables and counts what went where."""

    directory: Path
    chunk: int
    raw_file: str
    source: str
    raw_text_chars: int
    max_chars: int
    now: datetime
    format: str = ""
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    comparison_ids: set[str] = field(default_factory=set)
    ranking_ids: set[str] = field(default_factory=set)
    prompt_ids: _PromptIds = field(default_factory=_PromptIds)

    def __post_init__(self) -> None:
        self.parts = {
            name: ParquetParts(self.directory / f"{name}-{self.chunk:04d}.parquet", schema)
            for name, schema in (
                ("comparisons", schemas.COMPARISONS),
                ("rankings", schemas.RANKINGS),
                ("rejects", schemas.REJECTS),
            )
        }

    def reject(self, raw: RawRecord, why: RowRejected) -> None:
        """Quarantine one raw row with its reason."""
        self.rejected[why.reason.value] = self.rejected.get(why.reason.value, 0) + 1
        self.parts["rejects"].append(
            (
                why.reason.value,
                why.detail,
                self.format,
                self.raw_file,
                raw.row,
                raw.raw_text(self.raw_text_chars),
                self.now,
            )
        )

    def accept(self, row: int, items: list[Judgment | Ranking]) -> None:
        """Check every item of one row, then stage them all (a row is accepted whole or not at all)."""
        checked = []
        for item in items:
            if isinstance(item, Judgment):
                turns = (item.response_a_turns, item.response_b_turns)
                responses: tuple[str, ...] = (item.response_a, item.response_b)
                response_ids = [response_id(t, r) for t, r in zip(turns, responses, strict=True)]
                leading = [[m.content for m in t] for t in turns]
            else:
                responses, response_ids, leading = item.responses, [text_id(r) for r in item.responses], []
            check([m.content for m in item.prompt], responses, response_ids, self.max_chars, leading)
            checked.append((item, response_ids))
        self.accepted += 1
        for item, response_ids in checked:
            prompt_key = self.prompt_ids(item.prompt)
            prompt = _messages(item.prompt)
            if isinstance(item, Judgment):
                self._comparison(
                    row,
                    item,
                    prompt,
                    prompt_key,
                    _Side(item.response_a, response_ids[0], _messages(item.response_a_turns)),
                    _Side(item.response_b, response_ids[1], _messages(item.response_b_turns)),
                    item.label,
                    item.strength,
                    None,
                )
                continue
            ranking_key = self._ranking(row, item, prompt, prompt_key, response_ids)
            for i, j, label in _pairs_of(item.ranks):
                self._comparison(
                    row,
                    item,
                    prompt,
                    prompt_key,
                    _Side(item.responses[i], response_ids[i], []),
                    _Side(item.responses[j], response_ids[j], []),
                    label,
                    None,
                    ranking_key,
                )

    def _comparison(
        self,
        row: int,
        item: Judgment | Ranking,
        prompt: list[dict[str, str]],
        prompt_key: str,
        a: "_Side",
        b: "_Side",
        label: Label,
        strength: float | None,
        ranking_id: str | None,
    ) -> None:
        a_id, b_id = a.id, b.id
        pair = pair_id(prompt_key, a_id, b_id)
        canonical = label if a_id <= b_id else FLIPPED[label]
        key = digest(f"{pair}\x1f{canonical}\x1f{strength}\x1f{item.annotator or ''}")
        if key in self.comparison_ids:
            self.duplicates += 1
            return
        self.comparison_ids.add(key)
        self.parts["comparisons"].append(
            (
                key,
                pair,
                prompt_key,
                prompt,
                a.reply,
                b.reply,
                a_id,
                b_id,
                a.turns,
                b.turns,
                label,
                strength,
                item.annotator,
                item.source or self.source,
                item.category,
                dict(item.attributes),
                ranking_id,
                self.raw_file,
                row,
                self.now,
            )
        )

    def _ranking(
        self, row: int, item: Ranking, prompt: list[dict[str, str]], prompt_key: str, ids: list[str]
    ) -> str:
        order = sorted(zip(ids, item.ranks, strict=True))
        key = digest(f"{prompt_key}\x1f{order}\x1f{item.annotator or ''}")
        if key not in self.ranking_ids:
            self.ranking_ids.add(key)
            self.parts["rankings"].append(
                (
                    key,
                    prompt_key,
                    prompt,
                    list(item.responses),
                    ids,
                    list(item.ranks),
                    item.annotator,
                    item.source or self.source,
                    item.category,
                    dict(item.attributes),
                    self.raw_file,
                    row,
                    self.now,
                )
            )
        return key

    def counts(self, rows_read: int) -> ChunkCounts:
        """What this chunk staged."""
        return ChunkCounts(
            self.format,
            rows_read,
            self.accepted,
            self.rejected,
            len(self.comparison_ids),
            self.duplicates,
            len(self.ranking_ids),
        )

    def close(self) -> None:
        for part in self.parts.values():
            part.close()

    def abort(self) -> None:
        for part in self.parts.values():
            part.abort()


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
    stager = _Stager(
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
    """Stage one local file, or return its finished staging from an earlier, interrupted run."""
    directory = staging_dir(lake, content_hash, config, fmt_name, source)
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
