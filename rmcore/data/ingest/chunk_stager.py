"""One chunk of a file's rows staged: each row checked, identified and written to Parquet, or quarantined.

`ChunkStager` writes a chunk's `comparisons`, `rankings` and `rejects` tables and counts what went
where. A row yields judgments (and, for rankings, the ranking and its implied pairs), each named by a
content hash so the same judgment in either A/B orientation has one id; a judgment repeated within
the chunk is counted as a duplicate here.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rmcore.atomic import ParquetParts
from rmcore.data.formats.containers import RawRecord
from rmcore.data.formats.validate import check
from rmcore.data.identity import digest, pair_id, prompt_id, response_id, text_id
from rmcore.data.lake import schemas
from rmcore.data.records import Judgment, Label, Message, Ranking, RowRejected

FLIPPED: dict[Label, Label] = {"a": "b", "b": "a", "tie": "tie"}


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
class ChunkStager:
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
            for name, (_, schema) in schemas.ROWS.items()
        }

    def reject(self, raw: RawRecord, why: RowRejected) -> None:
        """Quarantine one raw row with its reason."""
        self.rejected[why.reason.value] = self.rejected.get(why.reason.value, 0) + 1
        self.parts["rejects"].append(
            schemas.RejectRow(
                reason=why.reason.value,
                detail=why.detail,
                format=self.format,
                raw_file=self.raw_file,
                raw_row=raw.row,
                raw_text=raw.raw_text(self.raw_text_chars),
                ingested_at=self.now,
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
            schemas.ComparisonRow(
                comparison_id=key,
                pair_id=pair,
                prompt_id=prompt_key,
                prompt=prompt,
                response_a=a.reply,
                response_b=b.reply,
                response_a_id=a_id,
                response_b_id=b_id,
                response_a_turns=a.turns,
                response_b_turns=b.turns,
                label=label,
                strength=strength,
                annotator=item.annotator,
                source=item.source or self.source,
                category=item.category,
                attributes=dict(item.attributes),
                ranking_id=ranking_id,
                raw_file=self.raw_file,
                raw_row=row,
                ingested_at=self.now,
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
                schemas.RankingRow(
                    ranking_id=key,
                    prompt_id=prompt_key,
                    prompt=prompt,
                    responses=list(item.responses),
                    response_ids=ids,
                    ranks=list(item.ranks),
                    annotator=item.annotator,
                    source=item.source or self.source,
                    category=item.category,
                    attributes=dict(item.attributes),
                    raw_file=self.raw_file,
                    raw_row=row,
                    ingested_at=self.now,
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
