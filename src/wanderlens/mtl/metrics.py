"""Validation metrics per task type, computed on labelled rows only (a missing label is never scored).

binary: AUC; multiclass: accuracy; multilabel: micro-F1 at 0.5; regression: RMSE (lower is better).
"""

from __future__ import annotations

import math

import numpy as np

from wanderlens.mtl.tasks import TaskSpec

PRIMARY = {"binary": "auc", "multiclass": "accuracy", "multilabel": "f1", "regression": "rmse"}
LOWER_IS_BETTER = {"rmse", "loss"}


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i: j + 1] = 0.5 * (i + j) + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def task_metric(task: TaskSpec, output: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """The task's primary metric from raw outputs (logits, or values for regression) on its labelled rows."""
    keep = mask > 0
    if not keep.any():
        return float("nan")
    out, y = output[keep], target[keep]
    if task.type == "binary":
        return auc(y > 0.5, out[:, 0])
    if task.type == "multiclass":
        return float((out.argmax(axis=1) == y).mean())
    if task.type == "multilabel":
        pred = out > 0.0
        truth = y > 0.5
        tp = float((pred & truth).sum())
        denom = float(pred.sum() + truth.sum())
        return 2.0 * tp / denom if denom > 0 else float("nan")
    return math.sqrt(float(((out[:, 0] - y) ** 2).mean()))


def is_better(metric: str, new: float, best: float | None) -> bool:
    """Whether `new` improves on `best` for `metric` (NaN never improves)."""
    if new is None or math.isnan(new):
        return False
    if best is None or math.isnan(best):
        return True
    return new < best if metric in LOWER_IS_BETTER else new > best
