"""Upkeep of the lake's tables: compaction of small files, and vacuum of files no version needs.

    Lake -> compact (one rewrite commit per table) / vacuum (deletes) -> per-table figures

Every ingest adds a few files to each table, so a lake fed daily gathers thousands of small files;
`compact` rewrites them into large ones in a commit that changes no row, so readers and
concurrent writers are unaffected. Neither the old files nor the versions that name them go away
until `vacuum`, which deletes files that no version younger than the retention names, and files no
version names at all (left by a writer killed mid-commit, or by a commit retried after a
conflict). Time travel (`build-pairs --as-of`) reaches back only as far as the retention.
"""

from dataclasses import dataclass

from rmcore.data.lake.lake import PAIR_TABLES, TABLES, WRITER, Lake

RETENTION_HOURS = 168
"""Delta's default retention: a week of versions stays readable after a vacuum."""


@dataclass(frozen=True)
class Upkeep:
    """What one upkeep command did to one table."""

    table: str
    files_removed: int
    files_added: int
    version: int

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "files_removed": self.files_removed,
            "files_added": self.files_added,
            "version": self.version,
        }


def compact(lake: Lake) -> list[Upkeep]:
    """Rewrite each table's small files into large ones (Delta OPTIMIZE); the table's figures."""
    done = []
    for name in (*TABLES, *PAIR_TABLES):
        table = lake.table(name)
        if table is None:
            continue
        with lake.reading():  # compaction reads every small file it rewrites
            metrics = table.optimize.compact(writer_properties=WRITER)
        done.append(Upkeep(name, metrics["numFilesRemoved"], metrics["numFilesAdded"], table.version()))
    return done


def vacuum(lake: Lake, retention_hours: int = RETENTION_HOURS) -> list[Upkeep]:
    """Delete the files of each table that no version younger than `retention_hours` names."""
    done = []
    for name in (*TABLES, *PAIR_TABLES):
        table = lake.table(name)
        if table is None:
            continue
        removed = table.vacuum(
            retention_hours=retention_hours,
            dry_run=False,
            enforce_retention_duration=retention_hours >= RETENTION_HOURS,
            full=True,
        )
        done.append(Upkeep(name, len(removed), 0, table.version()))
    return done
