"""Linear warm start: fit the linear head alone, as MLlib's LogisticRegression would, before the network trains.

With `training.linear_warm_start` and `model.linear_head`, each task's linear map of the (standardised) inputs is
fitted first by full-batch L-BFGS on that task's plain loss (logistic, softmax cross-entropy, squared error; no class
weights, no label smoothing) with an L2 penalty `linear_l2` on the weights (not the intercepts): the objective of
MLlib's `LogisticRegression(regParam=linear_l2)` per task, and per label for multi-label tasks. The linear maps are
then frozen and the output layers of the network's towers start at zero, so before the first epoch the model *is*
that linear model; the experts and towers then learn only what it misses (stacking a network on a linear model's
logits), and per-task selection can keep the linear model for a task the network does not improve on validation.

Under DDP every rank evaluates its own rows; the losses are weighted by the global labelled-row counts and the
gradients summed over ranks before each L-BFGS step, so all ranks take identical steps.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from wanderlens.errors import ConfigError
from wanderlens.mtl.architectures import LinearHeads, Standardized, Tower
from wanderlens.mtl.losses import task_loss
from wanderlens.mtl.tasks import TaskSpec
from wanderlens.threads import default_threads

FOLDS = 5  # out-of-fold linear logits for stacking (the usual 5-fold cross-fitting)
# L-BFGS iterations of a fold's fit: it starts from the full fit's weights, 80 % of whose rows it shares, so it
# needs far fewer than the full fit (30 instead of 100 halves the warm start's time on the demo's 1,390 x 5,762)
FOLD_ITERATIONS = 30


def linear_heads_of(net: nn.Module) -> LinearHeads:
    """The `LinearHeads` inside `net` (possibly behind `Standardized`), or a ConfigError naming the fix."""
    inner = net.net if isinstance(net, Standardized) else net
    if not isinstance(inner, LinearHeads):
        raise ConfigError("training.linear_warm_start needs model.linear_head: true (the linear map it fits)")
    return inner


def zero_tower_outputs(net: nn.Module) -> None:
    """Start every task tower's output layer at zero: the network adds nothing to the linear logits until it
    has learned something (its hidden layers still receive gradients through the output weights)."""
    for module in net.modules():
        if isinstance(module, Tower):
            nn.init.zeros_(module.out.weight)
            nn.init.zeros_(module.out.bias)


def _penalty_factor(task: TaskSpec) -> float:
    """Per-task L2 factor that gives each label the penalty MLlib gives it: the multi-label loss is the mean over
    labels, so its penalty is divided by the label count too; a task's static weight scales both."""
    return float(task.weight) / (task.num_outputs if task.type == "multilabel" else 1)


def _minimise(params: list[torch.Tensor], logits: Any, penalty: Any, ys: list[torch.Tensor],
              ms: list[torch.Tensor], tasks: list[TaskSpec], reduce: Any, max_iter: int) -> float:
    """Minimise by L-BFGS the tasks' mean losses over their labelled rows of all ranks (`logits()` gives each
    task's logits) plus `penalty()` (computed the same on every rank, so added after the reduction); returns the
    final objective. Gradients are summed over ranks before each step, so every rank takes the same steps."""
    counts = reduce(torch.stack([m.sum() for m in ms]).double()).clamp(min=1)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        data = torch.zeros((), dtype=torch.float64)
        for t, out, y, m, n in zip(tasks, logits(), ys, ms, counts, strict=True):
            loss, local = task_loss(t, out, y, m)
            data = data + loss.double() * local.double() / n * float(t.weight)
        data.backward()
        for p in params:
            p.grad.copy_(reduce(p.grad))
        reg = penalty()
        if reg.requires_grad:
            reg.backward()
        return (reduce(data.detach()) + reg.detach()).float()

    opt.step(closure)
    return float(closure())


def _fit_linear(linear: nn.ModuleList, z: torch.Tensor, ys: list[torch.Tensor], ms: list[torch.Tensor],
                tasks: list[TaskSpec], l2: float, reduce: Any, max_iter: int) -> float:
    """Each task's L2-regularised linear model of the inputs `z` (MLlib's LogisticRegression objective)."""
    def penalty() -> torch.Tensor:
        return sum((0.5 * l2 * _penalty_factor(t) * lin.weight.pow(2).sum() for t, lin in
                    zip(tasks, linear, strict=True)), torch.zeros(()))

    return _minimise(list(linear.parameters()), lambda: [lin(z) for lin in linear], penalty, ys, ms, tasks, reduce,
                     max_iter)


def out_of_fold_logits(linear: nn.ModuleList, z: torch.Tensor, ys: list[torch.Tensor], ms: list[torch.Tensor],
                       tasks: list[TaskSpec], l2: float, reduce: Any, max_iter: int) -> list[torch.Tensor]:
    """Per task, each training row's logits from a linear fit without the row's fold (`FOLDS` folds)."""
    fold = torch.from_numpy(np.random.default_rng(len(z)).permutation(len(z)) % FOLDS)
    oof = [torch.zeros(len(z), lin.out_features) for lin in linear]
    for k in range(FOLDS):
        held = fold == k
        fitted = copy.deepcopy(linear).requires_grad_(True)
        _fit_linear(fitted, z, ys, [m * (~held).to(m.dtype) for m in ms], tasks, l2, reduce,
                    min(max_iter, FOLD_ITERATIONS))
        with torch.no_grad():
            for o, lin in zip(oof, fitted, strict=True):
                o[held] = lin(z[held])
    return oof


def fit_gate(gate: nn.Parameter, oof: list[torch.Tensor], ys: list[torch.Tensor], ms: list[torch.Tensor],
             tasks: list[TaskSpec], reduce: Any) -> None:
    """Set each task's weight on its linear logits to the one that fits the out-of-fold logits best (a stacking
    weight, >= 0): a linear model that overfits its rows gets a small weight, a sound one about 1."""
    weights = torch.ones(len(tasks), requires_grad=True)
    _minimise([weights], lambda: [w * o for w, o in zip(weights, oof, strict=True)], lambda: torch.zeros(()),
              ys, ms, tasks, reduce, 50)
    with torch.no_grad():
        gate.copy_(weights.detach().clamp(min=0.0))


def fit_linear_heads(net: nn.Module, x: torch.Tensor, ys: list[torch.Tensor], ms: list[torch.Tensor],
                     tasks: list[TaskSpec], l2: float, reduce: Any, world: int = 1, max_iter: int = 100,
                     ) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Fit the linear maps of `net` on rows `x` (targets `ys`, masks `ms`) by L-BFGS, freeze them, fit their gate
    and zero the towers' outputs. `reduce(t)` sums a tensor over ranks (identity in one process).

    Returns the fit's facts and, per task, a logit correction per training row: the out-of-fold logits minus the
    full fit's. Training adds it to the linear logits (`LinearHeads.forward`), so the network learns on top of honest
    linear predictions: the full fit nearly interpolates wide inputs with few rows, and a network stacked on its
    in-sample logits would see almost no error left to learn from.
    """
    heads = linear_heads_of(net)
    z = net.standardize(x) if isinstance(net, Standardized) else x
    # Large matrix products: this process's share of the cores, not the training loop's 1 thread. Set directly:
    # `threads.torch_threads` nested inside run_training's block keeps the outer block's count.
    saved = torch.get_num_threads()
    torch.set_num_threads(max(1, default_threads() // max(1, world)))
    try:
        objective = _fit_linear(heads.linear, z, ys, ms, tasks, l2, reduce, max_iter)
        heads.linear.requires_grad_(False)
        oof = out_of_fold_logits(heads.linear, z, ys, ms, tasks, l2, reduce, max_iter)
        if heads.gate is not None:
            fit_gate(heads.gate, oof, ys, ms, tasks, reduce)
    finally:
        torch.set_num_threads(saved)
    zero_tower_outputs(heads.deep)
    with torch.no_grad():
        deltas = [o - lin(z) for o, lin in zip(oof, heads.linear, strict=True)]
    gate = None if heads.gate is None else [round(float(g), 4) for g in heads.gate.detach()]
    return {"objective": objective, "folds": FOLDS, "gate": gate}, deltas
