"""The report's figures, drawn with matplotlib's Agg backend and returned as base64 PNG (embedded in the HTML).

Each function takes the small summaries of `wanderlens.evaluation.curves` (never a Spark DataFrame) and returns a
string for `<img src="data:image/png;base64,...">`, so the report is one self-contained file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from wanderlens.evaluation.curves import Curve, Reliability

MAX_CURVES = 12


def to_base64_png(fig: plt.Figure) -> str:
    """Render a figure to base64 PNG and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def roc_pr(curves: Sequence[Curve], title: str) -> str:
    """ROC and precision-recall curves side by side (one line per class or label, at most MAX_CURVES)."""
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4))
    shown = sorted(curves, key=lambda c: -c.positives)[:MAX_CURVES]
    for c in shown:
        ax_roc.plot(c.fpr, c.tpr, lw=1.4, label=f"{c.name} (AUC {c.auc:.3f})")
        ax_pr.plot(c.recall, c.precision, lw=1.4, label=c.name)
    ax_roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC", xlim=(0, 1),
               ylim=(0, 1.02))
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
    if shown:
        ax_roc.legend(fontsize=7, loc="lower right")
    if len(curves) > len(shown):
        ax_pr.text(0.02, 0.02, f"{len(curves) - len(shown)} smaller classes not drawn", fontsize=7,
                   transform=ax_pr.transAxes)
    return to_base64_png(fig)


def confusion(matrix: np.ndarray, classes: Sequence[str], title: str) -> str:
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    k = len(classes)
    size = max(4.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"{title}: confusion matrix")
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > top / 2 else "black")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return to_base64_png(fig)


def label_f1_bars(f1: Mapping[str, float], title: str) -> str:
    """Horizontal bars of each label's F1."""
    names = list(f1)
    values = [0.0 if math.isnan(f1[n]) else f1[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    ax.barh(names, values, color="#4c78a8")
    for y, v in enumerate(values):
        ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=7)
    ax.set(xlim=(0, 1.1), xlabel="F1", title=f"{title}: F1 per label")
    ax.invert_yaxis()
    return to_base64_png(fig)


def reliability_diagram(rel: Reliability, title: str) -> str:
    """Reliability diagram (observed positive rate against mean predicted probability per bin), with the ECE."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfect calibration")
    ax.plot(rel.confidence, rel.observed, marker="o", label=f"model (ECE {rel.ece:.3f})")
    for x, y, n in zip(rel.confidence, rel.observed, rel.count, strict=True):
        ax.annotate(str(n), (x, y), fontsize=6, textcoords="offset points", xytext=(3, -8))
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="observed positive rate",
           title=f"{title}: reliability")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return to_base64_png(fig)


def series_by_epoch(series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> str:
    """Lines over epochs, one per named series (per-task losses, task weights, validation metrics)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7)
    return to_base64_png(fig)


def comparison_bars(summary: pd.DataFrame, title: str) -> str:
    """Per task, the main metric of each variant: mean over seeds with the spread (std) as error bars."""
    tasks = list(dict.fromkeys(summary["task"]))
    variants = list(dict.fromkeys(summary["variant"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        part = summary[summary["task"] == task].set_index("variant")
        xs = np.arange(len(variants))
        means = [part["mean"].get(v, np.nan) for v in variants]
        stds = [part["std"].get(v, 0.0) for v in variants]
        ax.bar(xs, means, yerr=np.nan_to_num(stds), capsize=3, color=plt.cm.tab10(xs % 10))
        ax.set_xticks(xs, variants, rotation=35, ha="right", fontsize=7)
        finite = [m for m in means if not math.isnan(m)]
        if finite:
            lo = min(finite)
            ax.set_ylim(max(0.0, lo - 0.15 * (abs(lo) + 1e-9)), None)
        metric = part["metric"].iloc[0] if len(part) else ""
        ax.set(title=f"{task} ({metric})")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return to_base64_png(fig)
