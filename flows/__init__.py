"""Prefect flows: thin orchestration over rmcore; tasks pass paths and small summaries."""
