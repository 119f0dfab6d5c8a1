"""Evaluation: every task through MLlib's evaluators, seeded splits, model comparisons and the HTML report.

Works on any DataFrame with the MLlib-shaped prediction columns of `wanderlens.mtl.MultiTaskModel`; knows nothing
of travel.
"""

from wanderlens.evaluation.evaluator import (
    TASK_METRICS,
    EvalTask,
    MultiTaskEvaluator,
    delta_m,
    main_metric,
    relative_changes,
)
from wanderlens.evaluation.splits import DataSplitter, record_split, split_summary

__all__ = [
    "TASK_METRICS",
    "DataSplitter",
    "EvalTask",
    "MultiTaskEvaluator",
    "delta_m",
    "main_metric",
    "record_split",
    "relative_changes",
    "split_summary",
]
