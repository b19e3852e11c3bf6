"""The comparison-label data layer: readers, validation, dedup, the Parquet lake, splits, pairs."""
