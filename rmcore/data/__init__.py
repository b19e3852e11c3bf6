"""The comparison-label data layer: readers, validation, dedup, the Parquet lake, splits, pairs.

Its subpackages follow the data, each importing only those above it here:

    records.py, identity.py   the row types every stage shares; content identity (normalized text, ids)
    formats/    raw file -> containers (raw records) -> a reader per format -> Judgment / Ranking
    lake/       the Parquet lake: its tables' schemas, the manifest that commits parts, DuckDB views
    ingest/     files, folders, hf:// ids -> plan -> stage -> commit -> lake parts, IngestSummary
    pairs/      lake -> votes (or Dawid-Skene) -> build -> pairs/<split>.parquet -> load -> PairSet
    quality/    lake + pairs -> annotator agreement, the data report (JSON, markdown, plots)
"""
