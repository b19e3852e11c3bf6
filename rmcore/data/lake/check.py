"""Check: every file the latest version of each lake table commits, verified, and what to do per bad file.

rmcore lake check --lake data/lake

    Lake -> check_lake (verify.verify_table per table) -> LakeCheck (problems, each with its action)

A file is bad when it is missing, its Parquet footer is unreadable, it holds another row count than
its commit says, or another size (see rmcore.data.lake.verify). What to do:
- a data table's file (comparisons, rankings, rejects, files) holds rows nothing else has: restore it,
  byte for byte, from a backup or the object store's versioning. When its rows are given up instead,
  Delta's FSCK (`DeltaTable(uri).repair()`, deltalake 1.6) commits a removal of every file of the
  table that the store no longer holds; it leaves a file that is present but corrupt in the log, so
  that one is deleted first. The rows are then gone for good: their input files stay recorded as
  ingested, so ingesting them again adds nothing (`files` rows excepted: a file whose row was lost is
  recorded again by a new ingest of it, its rows already in the lake are not added twice).
- a pair table's file: build-pairs replaces both pair tables whole, so rerunning it is the whole fix.
A table that does not exist yet is skipped.
"""

from dataclasses import asdict, dataclass

from rmcore.data.lake.lake import PAIR_TABLES, TABLES, Lake
from rmcore.data.lake.verify import MISSING, Damage, verify_table


@dataclass(frozen=True)
class Problem:
    """One bad file: its table, its full path or URI, why, and what to do."""

    table: str
    path: str
    reason: str
    action: str


@dataclass(frozen=True)
class LakeCheck:
    """The verdict on a lake: its bad files, how many files were checked, each table's version."""

    lake: str
    problems: list[Problem]
    files_checked: int
    tables: dict[str, int]

    @property
    def healthy(self) -> bool:
        """Whether every committed file is present, readable and of its committed row count and size."""
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        """JSON-ready verdict."""
        return {
            "lake": self.lake,
            "healthy": self.healthy,
            "files_checked": self.files_checked,
            "tables": self.tables,
            "problems": [asdict(p) for p in self.problems],
        }

    def lines(self) -> list[str]:
        """One line per bad file (the file, why, what to do), then a summary line."""
        found = [f"{p.path}: {p.reason}; {p.action}" for p in self.problems]
        if not self.tables:
            return [f"{self.lake}: no tables yet"]
        verdict = (
            f"{len(self.problems)} bad file(s)"
            if self.problems
            else "every file present, readable and of its committed row count"
        )
        versions = ", ".join(f"{name} v{version}" for name, version in self.tables.items())
        return [*found, f"{self.lake}: {self.files_checked} file(s) checked in {versions}: {verdict}"]


def action(lake: Lake, table: str, damage: Damage) -> str:
    """What to do about one bad file of `table` (the module docstring gives the reasons)."""
    if table in PAIR_TABLES:
        return f"rerun `rmcore build-pairs --lake {lake.uri}` (it replaces the pair tables whole)"
    delete = "" if damage.reason == MISSING else "delete the file, then "
    repair = f"python -c \"from deltalake import DeltaTable; DeltaTable('{lake.table_uri(table)}').repair()\""
    lost = (
        "ingest its input files again to record them"
        if table == "files"
        else "its rows are lost: ingesting their files again adds nothing"
    )
    return (
        "restore it from a backup or the object store's versioning; or, to give up its rows, "
        f"{delete}remove it from the table's log with Delta's FSCK: `{repair}` ({lost})"
    )


def check_lake(lake: Lake) -> LakeCheck:
    """Verify every file the latest version of each existing table of the lake commits."""
    problems: list[Problem] = []
    tables: dict[str, int] = {}
    checked = 0
    for name in (*TABLES, *PAIR_TABLES):
        table = lake.table(name)
        if table is None:
            continue
        tables[name] = table.version()
        found = verify_table(table, lake.table_uri(name))
        checked += found.checked
        problems += [Problem(name, d.path, d.reason, action(lake, name, d)) for d in found.damaged]
    return LakeCheck(lake.uri, problems, checked, tables)
