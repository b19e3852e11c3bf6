"""Staging: one raw file read, validated and identified into Parquet under <lake>/staging/<hash>/.

Every row read is accepted or quarantined with its reason (rows_read = accepted + rejected).
An accepted row yields judgments (and, for rankings, the ranking and its implied pairs), each
named by a content hash so the same judgment in either A/B orientation has one id. A judgment
repeated within the file is counted as a duplicate here; duplicates of the lake are found at
commit. `staged.json` is written last: a staging folder without it is incomplete and redone.
"""

import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rmcore.config import IngestConfig
from rmcore.data import schemas
from rmcore.data.atomic import ParquetParts, write_text
from rmcore.data.containers import RawRecord, UnreadableFile, records
from rmcore.data.formats import Format, detected, formats
from rmcore.data.lake import Lake
from rmcore.data.normalize import digest, pair_id, prompt_id, text_id
from rmcore.data.records import Judgment, Label, Message, Ranking, RowRejected
from rmcore.data.validate import check

FLIPPED: dict[Label, Label] = {"a": "b", "b": "a", "tie": "tie"}
STAGED_TABLES = ("comparisons", "rankings", "rejects")


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
    directory: str
    ingested_at: str

    def table(self, name: str) -> Path:
        """The staged Parquet file of one table (it may not exist when the table is empty)."""
        return Path(self.directory) / f"{name}.parquet"


def staging_dir(
    lake: Lake, content_hash: str, config: IngestConfig, fmt_name: str | None, source: str | None
) -> Path:
    """Where one file is staged: named by its content and everything that shapes its staging."""
    key = digest(f"{content_hash}\x1f{config.model_dump_json()}\x1f{fmt_name}\x1f{source}")
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


def _pairs_of(ranks: tuple[int, ...]) -> Iterator[tuple[int, int, Label]]:
    """Every (i, j), i < j, of a ranking with its label: the lower rank wins, equal ranks tie."""
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            yield i, j, "a" if ranks[i] < ranks[j] else "b" if ranks[i] > ranks[j] else "tie"


@dataclass
class _Stager:
    """Writes one file's staged tables and counts what went where."""

    directory: Path
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
            "comparisons": ParquetParts(self.directory / "comparisons.parquet", schemas.COMPARISONS),
            "rankings": ParquetParts(self.directory / "rankings.parquet", schemas.RANKINGS),
            "rejects": ParquetParts(self.directory / "rejects.parquet", schemas.REJECTS),
        }

    def reject(self, raw: RawRecord, why: RowRejected) -> None:
        """Quarantine one raw row with its reason."""
        self.rejected[why.reason.value] = self.rejected.get(why.reason.value, 0) + 1
        self.parts["rejects"].append(
            {
                "reason": why.reason.value,
                "detail": why.detail,
                "format": self.format,
                "raw_file": self.raw_file,
                "raw_row": raw.row,
                "raw_text": raw.raw_text(self.raw_text_chars),
                "ingested_at": self.now,
            }
        )

    def accept(self, row: int, items: list[Judgment | Ranking]) -> None:
        """Check every item of one row, then stage them all (a row is accepted whole or not at all)."""
        checked = []
        for item in items:
            responses = (item.response_a, item.response_b) if isinstance(item, Judgment) else item.responses
            response_ids = [text_id(r) for r in responses]
            check([m.content for m in item.prompt], responses, response_ids, self.max_chars)
            checked.append((item, response_ids))
        self.accepted += 1
        for item, response_ids in checked:
            prompt_key = self.prompt_ids(item.prompt)
            if isinstance(item, Judgment):
                self._comparison(
                    row,
                    item,
                    prompt_key,
                    (0, 1),
                    (item.response_a, item.response_b),
                    response_ids,
                    item.label,
                    item.strength,
                    None,
                )
                continue
            ranking_key = self._ranking(row, item, prompt_key, response_ids)
            for i, j, label in _pairs_of(item.ranks):
                self._comparison(
                    row,
                    item,
                    prompt_key,
                    (i, j),
                    item.responses,
                    response_ids,
                    label,
                    None,
                    ranking_key,
                )

    def _comparison(
        self,
        row: int,
        item: Judgment | Ranking,
        prompt_key: str,
        which: tuple[int, int],
        texts: tuple[str, ...],
        ids: list[str],
        label: Label,
        strength: float | None,
        ranking_id: str | None,
    ) -> None:
        a_id, b_id = ids[which[0]], ids[which[1]]
        pair = pair_id(prompt_key, a_id, b_id)
        canonical = label if a_id <= b_id else FLIPPED[label]
        key = digest(f"{pair}\x1f{canonical}\x1f{strength}\x1f{item.annotator or ''}")
        if key in self.comparison_ids:
            self.duplicates += 1
            return
        self.comparison_ids.add(key)
        self.parts["comparisons"].append(
            {
                "comparison_id": key,
                "pair_id": pair,
                "prompt_id": prompt_key,
                "prompt": _messages(item.prompt),
                "response_a": texts[which[0]],
                "response_b": texts[which[1]],
                "response_a_id": a_id,
                "response_b_id": b_id,
                "label": label,
                "strength": strength,
                "annotator": item.annotator,
                "source": item.source or self.source,
                "category": item.category,
                "ranking_id": ranking_id,
                "raw_file": self.raw_file,
                "raw_row": row,
                "ingested_at": self.now,
            }
        )

    def _ranking(self, row: int, item: Ranking, prompt_key: str, ids: list[str]) -> str:
        order = sorted(zip(ids, item.ranks, strict=True))
        key = digest(f"{prompt_key}\x1f{order}\x1f{item.annotator or ''}")
        if key not in self.ranking_ids:
            self.ranking_ids.add(key)
            self.parts["rankings"].append(
                {
                    "ranking_id": key,
                    "prompt_id": prompt_key,
                    "prompt": _messages(item.prompt),
                    "responses": list(item.responses),
                    "response_ids": ids,
                    "ranks": list(item.ranks),
                    "annotator": item.annotator,
                    "source": item.source or self.source,
                    "category": item.category,
                    "raw_file": self.raw_file,
                    "raw_row": row,
                    "ingested_at": self.now,
                }
            )
        return key

    def close(self) -> None:
        for part in self.parts.values():
            part.close()

    def abort(self) -> None:
        for part in self.parts.values():
            part.abort()


def stage_rows(
    lake: Lake,
    path: Path,
    content_hash: str,
    rows: Iterable[RawRecord],
    config: IngestConfig,
    fmt_name: str | None = None,
    source: str | None = None,
) -> StagedFile:
    """Stage one file's rows; raises UnreadableFile when the file as a whole cannot be read."""
    known = formats(config.include_synthetic)
    fmt: Format | None = known[fmt_name] if fmt_name else None
    directory = staging_dir(lake, content_hash, config, fmt_name, source)
    shutil.rmtree(directory, ignore_errors=True)
    now = datetime.now(UTC)
    stager = _Stager(
        directory,
        str(path),
        source or default_source(path),
        config.raw_text_chars,
        config.max_chars,
        now,
        fmt_name or "",
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
                    fields = ", ".join(sorted(raw.value)[:12])
                    raise UnreadableFile(
                        path,
                        f"unknown format (fields: {fields}); pass --format, one of {', '.join(known)}",
                    )
                stager.format = fmt.name
            try:
                stager.accept(raw.row, fmt.parse(raw.value))
            except RowRejected as why:
                stager.reject(raw, why)
        stager.close()
    except BaseException:
        stager.abort()
        raise
    staged = StagedFile(
        path=str(path),
        content_hash=content_hash,
        format=stager.format,
        source=stager.source,
        rows_read=rows_read,
        accepted=stager.accepted,
        rejected=stager.rejected,
        comparisons=len(stager.comparison_ids),
        duplicates_in_file=stager.duplicates,
        rankings=len(stager.ranking_ids),
        directory=str(directory),
        ingested_at=now.isoformat(),
    )
    assert staged.rows_read == staged.accepted + sum(staged.rejected.values())
    write_text(directory / "staged.json", staged.model_dump_json(indent=1))
    return staged


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
    return stage_rows(lake, path, content_hash, records(path, on_bytes=on_bytes), config, fmt_name, source)
