"""The data report: what the lake holds and what build-pairs made of it, as JSON and markdown.

Rows by reader (format), counts by source, rejects by reason, pairs by split, multi-turn pairs and
pairs a model labelled, pairs whose winner the Dawid-Skene posterior changed (p_votes < 1/2, by
source), the agreement histogram (p_chosen of pairs with two or more votes), the votes-per-pair and
K (responses per ranking) distributions, exact prompt overlap across sources, and per source with
annotator ids each annotator's agreement with the others and Krippendorff's alpha
(rmcore.data.quality.annotators), with the plot reports/annotators.png.
"""

import itertools
from pathlib import Path
from typing import Any

import orjson

from rmcore.atomic import write_text
from rmcore.data.lake import Lake
from rmcore.data.lake.duck import connect
from rmcore.data.pairs import built_from
from rmcore.data.pairs.votes import annotated_votes
from rmcore.data.quality.annotators import annotator_agreement, source_agreement
from rmcore.data.quality.annotators_report import annotators_figure, annotators_markdown
from rmcore.data.records import MODEL_LABELLED
from rmcore.figures import png_bytes, write_bytes

AGREEMENT_BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _rows(db: Any, query: str) -> list[tuple[Any, ...]]:
    return db.execute(query).fetchall()


def data_report(lake: Lake) -> dict[str, Any]:
    """The report's content: the pair tables and the lake version they were built from."""
    with lake.reading():  # DuckDB's views are lazy: the queries read the tables' files
        return _content(lake)


def _content(lake: Lake) -> dict[str, Any]:
    built = built_from(lake)
    if built is None:
        raise FileNotFoundError(f"{lake.uri}: no pairs built yet; run `rmcore build-pairs --lake {lake.uri}`")
    snapshot = lake.snapshot(built)
    entries = lake.files(snapshot)
    db = connect(lake.work / ".duckdb")
    with lake.reading():
        lake.view(db, "comparisons", lake.at(snapshot, "comparisons"), "comparisons")
        lake.view(db, "rankings", lake.at(snapshot, "rankings"), "rankings")
        lake.view(db, "pairs", lake.table("pairs"), "pairs")
    rejected: dict[str, int] = {}
    by_file = []
    by_format: dict[str, dict[str, int]] = {}
    for entry in entries:
        for reason, count in entry.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
        counts = by_format.setdefault(
            entry.format, {"files": 0, "rows_read": 0, "accepted": 0, "rejected": 0}
        )
        counts["files"] += 1
        counts["rows_read"] += entry.rows_read
        counts["accepted"] += entry.accepted
        counts["rejected"] += sum(entry.rejected.values())
        by_file.append(
            {
                "path": entry.path,
                "format": entry.format,
                "rows_read": entry.rows_read,
                "accepted": entry.accepted,
                "rejected": sum(entry.rejected.values()),
                "new_comparisons": entry.new_comparisons,
                "duplicates": entry.duplicates,
            }
        )
    agreement = _rows(
        db,
        "SELECT p_chosen, count(*) FROM pairs WHERE n_votes >= 2 GROUP BY p_chosen ORDER BY 1",
    )
    histogram = {f"{low:.1f}-{high:.1f}": 0 for low, high in itertools.pairwise(AGREEMENT_BINS)}
    for p, count in agreement:
        index = min(int((p - 0.5) / 0.1 + 1e-9), len(histogram) - 1)
        histogram[list(histogram)[index]] += count
    k_distribution = dict(_rows(db, "SELECT len(responses), count(*) FROM rankings GROUP BY 1 ORDER BY 1"))
    overlap = _rows(
        db,
        """
        WITH ps AS (SELECT DISTINCT prompt_id, source FROM comparisons)
        SELECT a.source, b.source, count(*) FROM ps a JOIN ps b
          ON a.prompt_id = b.prompt_id AND a.source < b.source
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
        """,
    )
    votes = annotated_votes(db)
    leaked = _rows(
        db,
        "SELECT count(*) FROM (SELECT prompt_id FROM pairs GROUP BY 1 HAVING count(DISTINCT split) > 1)",
    )[0][0]
    report = {
        "files": by_file,
        "lake_version": built,
        "rows_read": sum(e.rows_read for e in entries),
        "accepted": sum(e.accepted for e in entries),
        "rejected": dict(sorted(rejected.items())),
        "rows_by_format": dict(sorted(by_format.items())),
        "multi_turn_pairs": _rows(db, "SELECT count(*) FROM pairs WHERE len(chosen_turns) > 0")[0][0],
        "model_labelled_pairs": _rows(db, f"SELECT count(*) FROM pairs WHERE category = '{MODEL_LABELLED}'")[
            0
        ][0],
        "comparisons_by_source": dict(
            _rows(db, "SELECT source, count(*) FROM comparisons GROUP BY 1 ORDER BY 1")
        ),
        "pairs_by_source": dict(_rows(db, "SELECT source, count(*) FROM pairs GROUP BY 1 ORDER BY 1")),
        "pairs_by_split": {s: n for s, n in _rows(db, "SELECT split, count(*) FROM pairs GROUP BY 1")},
        "prompts_by_split": {
            s: n for s, n in _rows(db, "SELECT split, count(DISTINCT prompt_id) FROM pairs GROUP BY 1")
        },
        "conflicts": _rows(db, "SELECT count(*) FROM pairs WHERE conflict")[0][0],
        "changed_winner": dict(
            _rows(db, "SELECT source, count(*) FROM pairs WHERE p_votes < 0.5 GROUP BY 1 ORDER BY 1")
        ),
        "votes_per_pair": {
            str(n): c for n, c in _rows(db, "SELECT n_votes, count(*) FROM pairs GROUP BY 1 ORDER BY 1")
        },
        "agreement_histogram": histogram,
        "rankings_k": {str(k): n for k, n in k_distribution.items()},
        "prompt_overlap": [{"sources": [a, b], "prompts": n} for a, b, n in overlap],
        "prompts_in_several_splits": leaked,
        "annotators": annotator_agreement(votes),
        "agreement": source_agreement(votes),
    }
    db.close()
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown page."""

    def table(title: str, header: tuple[str, str], rows: dict[str, Any]) -> list[str]:
        lines = [f"## {title}", "", f"| {header[0]} | {header[1]} |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in rows.items()] or ["| (none) | |"]
        return [*lines, ""]

    lines = [
        "# rmcore data report",
        "",
        f"Rows read {report['rows_read']}, accepted {report['accepted']}, "
        f"rejected {sum(report['rejected'].values())}. Conflicting pairs (p_chosen = 0.5): "
        f"{report['conflicts']}. Prompts in more than one split: {report['prompts_in_several_splits']}.",
        f"Multi-turn pairs (responses that continue a conversation): {report['multi_turn_pairs']}. "
        f"Pairs labelled by a model, not people ({MODEL_LABELLED}): {report['model_labelled_pairs']}.",
        f"Pairs whose winner the posterior changed against a strict vote majority (p_votes < 0.5): "
        f"{sum(report['changed_winner'].values())}"
        + "".join(f"; {source} {n}" for source, n in report["changed_winner"].items())
        + ".",
        "",
        "## Rows by reader",
        "",
        "| format | files | rows read | accepted | rejected |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {c['files']} | {c['rows_read']} | {c['accepted']} | {c['rejected']} |"
            for name, c in report["rows_by_format"].items()
        ),
        "",
    ]
    lines += table("Pairs by split", ("split", "pairs"), report["pairs_by_split"])
    lines += table("Comparisons by source", ("source", "comparisons"), report["comparisons_by_source"])
    lines += table("Pairs by source", ("source", "pairs"), report["pairs_by_source"])
    lines += table("Rejects by reason", ("reason", "rows"), report["rejected"])
    lines += table(
        "Agreement (p_chosen, pairs with 2+ votes)",
        ("p_chosen", "pairs"),
        report["agreement_histogram"],
    )
    lines += table("Votes per pair", ("votes", "pairs"), report["votes_per_pair"])
    lines += table("Responses per ranking (K)", ("K", "rankings"), report["rankings_k"])
    lines += table(
        "Exact prompt overlap across sources",
        ("sources", "shared prompts"),
        {" / ".join(o["sources"]): o["prompts"] for o in report["prompt_overlap"]},
    )
    lines += annotators_markdown(report)
    return "\n".join(lines)


def write_report(lake: Lake) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write reports/data_report.{json,md} and reports/annotators.png under the lake's work folder (the
    lake itself when local); the report and the three paths."""
    report = data_report(lake)
    paths = {
        "json": lake.work / "reports" / "data_report.json",
        "markdown": lake.work / "reports" / "data_report.md",
        "annotators_plot": lake.work / "reports" / "annotators.png",
    }
    write_text(paths["json"], orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    write_text(paths["markdown"], markdown(report))
    write_bytes(paths["annotators_plot"], png_bytes(annotators_figure(report)))
    return report, paths
