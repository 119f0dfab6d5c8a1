"""Per-task losses with missing-label masking: a row without a label for task t adds nothing to t's loss.

Each loss is the mean over the batch rows labelled for the task (0 when none are), so rows with a null label
change neither the value nor the gradient of that task's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wanderlens.mtl.tasks import TaskSpec


def task_loss(
    task: TaskSpec,
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean loss of one task over a batch, and the number of rows that carried its label.

    binary: logistic loss (`class_weight` = positive-class weight); multiclass: cross-entropy (per-class weights);
    multilabel: logistic loss averaged over classes (per-class positive weights); regression: squared error.
    `smoothing` (label smoothing, training only) moves classification targets towards uniform: binary and
    multi-label targets y -> y (1 - s) + s / 2, multiclass as `F.cross_entropy(label_smoothing=s)`.
    """
    keep = mask.bool()
    n = keep.sum()
    if task.type == "binary":
        per_row = F.binary_cross_entropy_with_logits(
            logits[:, 0], _smooth(torch.where(keep, target, 0.0), smoothing), pos_weight=class_weight, reduction="none"
        )
    elif task.type == "multiclass":
        safe = torch.where(keep, target, torch.zeros_like(target))
        per_row = F.cross_entropy(logits, safe, weight=class_weight, reduction="none",
                                  label_smoothing=float(smoothing))
    elif task.type == "multilabel":
        safe = torch.where(keep.unsqueeze(1), target, 0.0)
        per_row = F.binary_cross_entropy_with_logits(
            logits, _smooth(safe, smoothing), pos_weight=class_weight, reduction="none"
        ).mean(dim=1)
    else:
        per_row = (logits[:, 0] - torch.where(keep, target, 0.0)) ** 2
    total = torch.where(keep, per_row, torch.zeros_like(per_row)).sum()
    return total / n.clamp(min=1), n


def _smooth(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """0/1 targets pulled towards 1/2 by `smoothing`."""
    return target if smoothing <= 0 else target * (1.0 - smoothing) + 0.5 * smoothing
