"""Benchmark suites scored as their authors score them.

Suite (rmcore.data.suites) -> run.py (every distinct completion scored once) -> rules.py
(rewardbench.py, rewardbench2.py, rmbench.py: the published rules) -> SuiteResult (results.py)
-> report.py (markdown, plots), compare.py (a challenger against the champion)
"""
