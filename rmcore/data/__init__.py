"""The comparison-label data layer: readers, validation, dedup, the Delta lake, splits, pairs.

Its subpackages follow the data, each importing only those above it here:

    records.py, identity.py   the row types every stage shares; content identity (normalized text, ids)
    formats/    raw file -> containers (raw records) -> a reader per format -> Judgment / Ranking
    lake/       the lake's Delta tables: schemas, versions, placing and committing files, DuckDB views,
                check, migrate (schema 2 -> Delta), compact and vacuum
    ingest/     files, folders, hf:// ids -> plan -> stage -> commit -> one commit per table, IngestSummary
    pairs/      lake version -> votes (or Dawid-Skene) -> build -> pairs, pair_rankings -> load -> PairSet
    quality/    lake + pairs -> annotator agreement, the data report (JSON, markdown, plots)
"""
