"""Benchmark suites: public reward-model benchmarks read into items, to be scored by their authors' rules.

    file or hf:// id -> read.py (detect_suite; rewardbench.py, rewardbench2.py, rmbench.py) -> Suite

A suite is scored, never trained on: its items never enter the lake (items.py says what one holds).
"""

from rmcore.data.suites.items import SUITE_NAMES, Suite, SuiteItem, SuiteName
from rmcore.data.suites.read import detect_suite, read_suite

__all__ = ["SUITE_NAMES", "Suite", "SuiteItem", "SuiteName", "detect_suite", "read_suite"]
