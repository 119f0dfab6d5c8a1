"""Validation metrics per task type, computed on labelled rows only (a missing label is never scored).

binary: AUC; multiclass: accuracy; multilabel: micro-F1 at 0.5; regression: RMSE (lower is better). The numbers
come from scikit-learn and equal MLlib's evaluators on the same rows (`tests/test_mtl.py` checks this).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, root_mean_squared_error

from wanderlens.mtl.tasks import TaskSpec

PRIMARY = {"binary": "auc", "multiclass": "accuracy", "multilabel": "f1", "regression": "rmse"}
LOWER_IS_BETTER = {"rmse", "loss"}


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present."""
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score)))


def micro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Micro-averaged F1 of multi-hot predictions; NaN when there is nothing predicted and nothing true."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if not pred.any() and not truth.any():
        return float("nan")
    return float(f1_score(truth, pred, average="micro"))


def task_metric(task: TaskSpec, output: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """The task's primary metric from raw outputs (logits, or values for regression) on its labelled rows."""
    keep = mask > 0
    if not keep.any():
        return float("nan")
    out, y = output[keep], target[keep]
    if task.type == "binary":
        return auc(y > 0.5, out[:, 0])
    if task.type == "multiclass":
        return float(accuracy_score(y, out.argmax(axis=1)))
    if task.type == "multilabel":
        return micro_f1(out > 0.0, y > 0.5)
    return float(root_mean_squared_error(y, out[:, 0]))


def is_better(metric: str, new: float, best: float | None) -> bool:
    """Whether `new` improves on `best` for `metric` (NaN never improves)."""
    if new is None or math.isnan(new):
        return False
    if best is None or math.isnan(best):
        return True
    return new < best if metric in LOWER_IS_BETTER else new > best
