"""Evaluation of a reward model on held-out pairs: score -> metrics -> report.

- `rmcore.evaluation.evaluate`: the one path, a model's rewards on pairs and their metrics.
- `rmcore.evaluation.metrics`: pure functions of the rewards and the pair table (accuracy with ties
  and conflicts apart, losses, calibration, groups, baselines).
- `rmcore.evaluation.markdown`: number formatting and the markdown report.
- `rmcore.evaluation.report`: the visual report (PNG plots and one HTML page).
"""
