"""The Parquet lake: where ingest commits and what pairs and quality read.

lake parts + manifest.json -> lake.py (Lake: paths, manifest, lock, vacuum) -> Lake
schemas.py   the Arrow schema of each table and the lake's schema version
duck.py      DuckDB connections and views over a lake's Parquet parts
"""

from rmcore.data.lake.lake import TABLES, FileEntry, Lake, Manifest

__all__ = ["TABLES", "FileEntry", "Lake", "Manifest"]
