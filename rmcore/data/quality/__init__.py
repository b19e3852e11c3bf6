"""Label quality: what the lake and its pairs hold, and how far its annotators agree.

    lake votes -> annotators.py (agreement, Krippendorff's alpha) -> annotators_report.py (plot, table)
    lake + pairs -> report.py -> reports/data_report.{json,md}, reports/annotators.png

No re-exports here: report.py draws with matplotlib, and rmcore.evaluation imports annotators.py
alone, so callers import the module they need.
"""
