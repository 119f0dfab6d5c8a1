"""Calibration and decision thresholds learned on the validation rows only.

Temperature scaling (Guo et al. 2017) divides a binary or multiclass task's logits by one T > 0 that minimises
the validation negative log-likelihood; it changes no ranking (AUC, accuracy), only how sure the probabilities
say the model is. Thresholds: a binary task's decision threshold maximises validation F1; a multi-label task's
threshold(s) maximise validation micro-F1, one for all labels (`global`) or one per label (`per_label`; a label
with fewer than `MIN_POSITIVES` positive validation rows keeps the global one). Both are stored in the model
metadata (`calibration`) and applied by `LocalMultiTaskModel`, so `transform`, the descriptions and the REST
service read the same calibrated probabilities and thresholded predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from wanderlens.mtl.tasks import TaskSpec

MIN_POSITIVES = 5


def fit_temperature(task_type: str, z: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the validation NLL of logits `z` (binary: [n, 1]; multiclass: [n, K])."""
    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        if task_type == "binary":
            v = s[:, 0]
            return float(np.mean(np.logaddexp(0.0, v) - y * v))
        m = s.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(s - m).sum(axis=1)))
        return float(np.mean(lse - s[np.arange(len(y)), y.astype(int)]))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x)) if res.success else 1.0


def f1_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The threshold on scores `p` maximising F1 of `p > threshold` against 0/1 `y`, and that F1.

    Every cut between two distinct sorted scores is tried (cumulative true positives); the threshold is the
    midpoint between the last score kept and the next one.
    """
    p, y = np.asarray(p, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    positives = y.sum()
    if len(p) == 0 or positives == 0:
        return 0.5, float("nan")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    last = np.r_[ps[1:] != ps[:-1], True]  # cut only after the last of equal scores
    f1 = np.where(last, 2 * tp / (k + positives), -1.0)
    best = int(np.argmax(f1))
    nxt = ps[best + 1] if best + 1 < len(ps) else ps[best] - 1e-6
    return float((ps[best] + nxt) / 2), float(f1[best])


def fit_calibration(tasks: list[TaskSpec], outputs: list[np.ndarray], targets: list[np.ndarray],
                    masks: list[np.ndarray], temperature: bool, thresholds: str) -> dict[str, dict[str, Any]]:
    """Per task name its `temperature` and/or `threshold`, from validation outputs (logits), targets and masks."""
    out: dict[str, dict[str, Any]] = {}
    for t, z, y, m in zip(tasks, outputs, targets, masks, strict=True):
        keep = np.asarray(m) > 0
        z, y = np.asarray(z, dtype=np.float64)[keep], np.asarray(y)[keep]
        if t.type == "regression" or len(y) == 0:
            continue
        cal: dict[str, Any] = {}
        if temperature and t.type in ("binary", "multiclass"):
            cal["temperature"] = fit_temperature(t.type, z, y)
        if thresholds != "none" and t.type == "binary":
            p = 1.0 / (1.0 + np.exp(-z[:, 0] / cal.get("temperature", 1.0)))
            cal["threshold"] = f1_threshold(p, y > 0.5)[0]
        if thresholds != "none" and t.type == "multilabel":
            cal["threshold"] = _multilabel_thresholds(1.0 / (1.0 + np.exp(-z)), y > 0.5, thresholds)
        if cal:
            out[t.name] = cal
    return out


def _multilabel_thresholds(p: np.ndarray, y: np.ndarray, mode: str) -> float | list[float]:
    """One micro-F1 threshold, or one F1 threshold per label (the global one where a label has few positives)."""
    glob = f1_threshold(p, y)[0]
    if mode == "global":
        return glob
    per = []
    for j in range(p.shape[1]):
        per.append(f1_threshold(p[:, j], y[:, j])[0] if y[:, j].sum() >= MIN_POSITIVES else glob)
    return per
