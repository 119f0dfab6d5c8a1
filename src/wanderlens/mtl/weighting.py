"""Loss weighting families behind one interface: `equal`, `uncertainty` (Kendall et al. 2018), `gradnorm`
(Chen et al. 2018), `dwa` (Liu et al. 2019), and the gradient-conflict methods `pcgrad` (Yu et al. 2020) and
`cagrad` (Liu et al. 2021).

A strategy turns the vector of per-task losses into gradients: by default it back-propagates one weighted sum
(`combine`); through the `backward(TaskStep)` hook it may first take each task's gradient on the shared
parameters (`task_gradients`), as GradNorm does and gradient-conflict methods (PCGrad, CAGrad) would. Anything it
learns is either a parameter trained with the network (uncertainty, synchronised by DDP) or updated from quantities
that are averaged across ranks first (GradNorm's gradient norms, DWA's epoch losses), so every rank holds the same
weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from wanderlens.config import TrainingConfig
from wanderlens.errors import ConfigError

WEIGHTINGS = ("equal", "uncertainty", "gradnorm", "dwa", "pcgrad", "cagrad")

# Averages a tensor over training processes (identity when there is one).
AllReduceMean = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TaskStep:
    """One optimisation step as a loss weighting sees it.

    `losses`: per-task masked losses (static task weights applied), still attached to the graph; `present`: the task
    had labelled rows in this batch on this rank; `shared`: the network's shared parameters (the last shared layer,
    `MultiTaskNet.shared_parameters()`), filled only when the weighting sets `needs_task_gradients`; `reduce`:
    averages a tensor over the training processes (identity in one process).
    """

    losses: torch.Tensor
    present: torch.Tensor
    shared: list[nn.Parameter]
    reduce: AllReduceMean


def task_gradients(step: TaskStep) -> list[tuple[torch.Tensor | None, ...] | None]:
    """Each task's gradient on the shared parameters (None for a task without labelled rows in the batch).

    Uses `torch.autograd.grad`, which leaves `.grad` untouched and does not trigger DDP's all-reduce; the graph is
    kept, so the weighting can still back-propagate a combined loss afterwards.
    """
    out: list[tuple[torch.Tensor | None, ...] | None] = []
    for i in range(len(step.losses)):
        if step.present[i]:
            out.append(torch.autograd.grad(step.losses[i], step.shared, retain_graph=True, allow_unused=True))
        else:
            out.append(None)
    return out


def gradient_norm(grads: tuple[torch.Tensor | None, ...] | None) -> torch.Tensor:
    """L2 norm of one task's gradients over the shared parameters (0 for a task without labelled rows)."""
    if grads is None:
        return torch.tensor(0.0)
    return torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.tensor(0.0)))


class LossWeighting(nn.Module):
    """Base class, and the `equal` weighting: every task's loss counts with weight 1.

    The trainer calls, per optimisation step, `backward(step)` between `optimizer.zero_grad()` and
    `optimizer.step()`, and per epoch `end_epoch(losses)`. A subclass changes how the per-task losses become
    gradients by overriding `combine` (a scalar loss from the per-task losses: uncertainty) or `backward` (anything
    that fills `.grad`, e.g. from per-task gradients of the shared parameters: GradNorm; PCGrad/CAGrad-style
    gradient surgery), and may update its own state in `end_epoch` (DWA).

    Under DDP `backward` must back-propagate one loss built from `step.losses` exactly once (DDP averages the
    gradients over ranks during that call). A method that writes `.grad` of the shared parameters itself must
    first average what it computes per rank with `step.reduce`, so every rank applies the same update.
    """

    name = "equal"
    # Whether `backward` needs `step.shared` (per-task gradients on the shared parameters).
    needs_task_gradients = False

    def __init__(self, n_tasks: int, **_: Any) -> None:
        super().__init__()
        self.n_tasks = n_tasks

    def combine(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Scalar loss to back-propagate from per-task losses (`present`: task had labelled rows)."""
        return (self.current_weights().to(losses) * losses).sum()

    def backward(self, step: TaskStep) -> None:
        """Fill `.grad` of the trainable parameters for this step; by default back-propagates `combine`."""
        self.combine(step.losses, step.present).backward()

    def end_epoch(self, epoch_losses: list[float]) -> None:
        """Update any per-epoch state from the epoch's mean per-task losses (already averaged over ranks)."""

    def current_weights(self) -> torch.Tensor:
        """The weights applied to each task's loss now (for history and reports)."""
        return torch.ones(self.n_tasks)


class Uncertainty(LossWeighting):
    """Homoscedastic uncertainty weighting: loss_i / (2 exp(s_i)) + s_i / 2 with learned log-variances s_i."""

    name = "uncertainty"

    def __init__(self, n_tasks: int, **_: Any) -> None:
        super().__init__(n_tasks)
        self.log_vars = nn.Parameter(torch.zeros(n_tasks))

    def combine(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        terms = 0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars
        return torch.where(present, terms, 0.0 * self.log_vars).sum()

    def current_weights(self) -> torch.Tensor:
        return (0.5 * torch.exp(-self.log_vars)).detach()


class GradNorm(LossWeighting):
    """GradNorm: moves task weights so each task's gradient norm on the shared layer tracks its training rate.

    The weight gradient of |w_i g_i - target_i| is taken in closed form (g_i does not depend on w_i), from norms
    and losses averaged over ranks, so it needs no second-order graph and stays identical under DDP.
    """

    name = "gradnorm"
    needs_task_gradients = True

    def __init__(self, n_tasks: int, alpha: float = 1.5, lr: float = 0.025, **_: Any) -> None:
        super().__init__(n_tasks)
        self.alpha, self.lr = float(alpha), float(lr)
        self.register_buffer("weights", torch.ones(n_tasks))
        self.register_buffer("initial_losses", torch.full((n_tasks,), float("nan")))

    def backward(self, step: TaskStep) -> None:
        """Measure each task's gradient norm on the shared layer, back-propagate, then move the task weights."""
        norms = torch.stack([gradient_norm(g) for g in task_gradients(step)])
        super().backward(step)
        self._update(step.losses, norms, step.present, step.reduce)

    def _update(
        self, losses: torch.Tensor, grad_norms: torch.Tensor, present: torch.Tensor, reduce: AllReduceMean
    ) -> None:
        """The closed-form GradNorm step on the task weights, from rank-averaged losses and gradient norms."""
        losses = reduce(losses.detach().double())
        g = reduce(grad_norms.detach().double())
        present = reduce(present.double()) > 0
        first = torch.isnan(self.initial_losses) & present & (losses > 0)
        self.initial_losses[first] = losses[first].to(self.initial_losses)
        ok = present & ~torch.isnan(self.initial_losses) & (g > 0)
        if ok.sum() < 2:
            return
        w = self.weights.double()
        ratio = losses[ok] / self.initial_losses[ok].double()
        rel = ratio / ratio.mean()
        wg = w[ok] * g[ok]
        target = wg.mean() * rel**self.alpha
        grad = torch.sign(wg - target) * g[ok] / g[ok].mean()
        w[ok] = (w[ok] - self.lr * grad).clamp(min=1e-3)
        self.weights.copy_((w * self.n_tasks / w.sum()).to(self.weights))

    def current_weights(self) -> torch.Tensor:
        return self.weights.detach().clone()


class DWA(LossWeighting):
    """Dynamic weight average: weights from the ratio of each task's last two epoch losses, softened by T."""

    name = "dwa"

    def __init__(self, n_tasks: int, temperature: float = 2.0, **_: Any) -> None:
        super().__init__(n_tasks)
        self.temperature = float(temperature)
        self.register_buffer("weights", torch.ones(n_tasks))
        self.register_buffer("prev", torch.full((2, n_tasks), float("nan")))

    def end_epoch(self, epoch_losses: list[float]) -> None:
        self.prev[0] = self.prev[1].clone()
        self.prev[1] = torch.tensor(epoch_losses, dtype=self.prev.dtype)
        if torch.isnan(self.prev).any() or (self.prev[0] <= 0).any():
            return
        r = self.prev[1] / self.prev[0]
        e = torch.exp(r / self.temperature)
        self.weights.copy_(self.n_tasks * e / e.sum())

    def current_weights(self) -> torch.Tensor:
        return self.weights.detach().clone()


def flat_task_gradients(step: TaskStep) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task gradients on the shared parameters as a float64 `[tasks, params]` matrix averaged over ranks, and
    which tasks had labelled rows on any rank. A task without rows contributes a zero row on that rank."""
    sizes = [p.numel() for p in step.shared]
    rows = []
    for grads in task_gradients(step):
        if grads is None:
            rows.append(torch.zeros(sum(sizes), dtype=torch.float64))
        else:
            rows.append(torch.cat([torch.zeros(n, dtype=torch.float64) if g is None else g.detach().reshape(-1).double()
                                   for g, n in zip(grads, sizes, strict=True)]))
    present = step.reduce(step.present.double()) > 0
    return step.reduce(torch.stack(rows)), present


def write_shared_gradient(step: TaskStep, direction: torch.Tensor) -> None:
    """Overwrite `.grad` of the shared parameters with the flat `direction` (identical on every rank)."""
    offset = 0
    for p in step.shared:
        n = p.numel()
        p.grad = direction[offset: offset + n].reshape(p.shape).to(p.dtype).clone()
        offset += n


def pcgrad(grads: torch.Tensor, order: list[int] | None = None) -> torch.Tensor:
    """PCGrad's combined gradient: each task's gradient, projected in turn (in `order`) onto the normal plane of
    every other task's original gradient it conflicts with (negative dot product), then summed.

    g_i <- g_i - (g_i . g_j / |g_j|^2) g_j for each j != i with g_i . g_j < 0.
    """
    n = grads.shape[0]
    order = list(range(n)) if order is None else order
    out = grads.clone()
    for i in range(n):
        for j in order:
            if j == i:
                continue
            dot = out[i] @ grads[j]
            norm2 = grads[j] @ grads[j]
            if dot < 0 and norm2 > 0:
                out[i] = out[i] - dot / norm2 * grads[j]
    return out.sum(dim=0)


def cagrad(grads: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """CAGrad's update direction for the mean objective: g0 + (sqrt(phi) / |g_w|) g_w, with g_w the simplex
    combination of task gradients minimising g_w . g0 + sqrt(phi) |g_w|, phi = c^2 |g0|^2; rescaled by 1/(1+c^2)
    and multiplied by the number of tasks (the sum-of-losses scale the other weightings use)."""
    from scipy.optimize import minimize

    n = grads.shape[0]
    gg = (grads @ grads.T).numpy()
    g0_norm = float(np.sqrt(max(gg.mean(), 0.0) + 1e-12))
    radius = c * g0_norm
    b = np.full(n, 1.0 / n)
    ab = gg @ b

    def objective(w: np.ndarray) -> float:
        return float(w @ ab + radius * np.sqrt(max(w @ gg @ w, 0.0) + 1e-12))

    res = minimize(objective, b, bounds=[(0.0, 1.0)] * n, method="SLSQP",
                   constraints=({"type": "eq", "fun": lambda w: 1.0 - w.sum()},))
    w = torch.from_numpy(np.asarray(res.x, dtype=np.float64))
    gw = (w[:, None] * grads).sum(dim=0)
    direction = grads.mean(dim=0) + radius / (float(gw.norm()) + 1e-12) * gw
    return direction / (1.0 + c**2) * n


class GradientSurgery(LossWeighting):
    """Base of the gradient-conflict methods: the task-specific parameters get the plain sum of the task losses'
    gradients; the shared parameters get `combine_gradients` of the per-task gradients (rank-averaged first, so
    every rank writes the same `.grad`)."""

    needs_task_gradients = True

    def __init__(self, n_tasks: int, **_: Any) -> None:
        super().__init__(n_tasks)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def combine_gradients(self, grads: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, step: TaskStep) -> None:
        grads, present = flat_task_gradients(step)
        super().backward(step)  # once per step: task-specific parameters, and DDP's hooks
        if step.shared and int(present.sum()) > 0:
            write_shared_gradient(step, self.combine_gradients(grads[present], present))
        self.steps += 1


class PCGrad(GradientSurgery):
    """PCGrad (Yu et al., NeurIPS 2020): project away the conflicting components of task gradients."""

    name = "pcgrad"

    def combine_gradients(self, grads: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        # The projection order is shuffled per step, from the step count: the same on every rank.
        order = torch.randperm(grads.shape[0], generator=torch.Generator().manual_seed(int(self.steps))).tolist()
        return pcgrad(grads, order)


class CAGrad(GradientSurgery):
    """CAGrad (Liu et al., NeurIPS 2021): the direction closest to the mean gradient that improves the worst task."""

    name = "cagrad"

    def __init__(self, n_tasks: int, c: float = 0.5, **_: Any) -> None:
        super().__init__(n_tasks)
        self.c = float(c)

    def combine_gradients(self, grads: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if grads.shape[0] == 1:
            return grads[0]
        return cagrad(grads, self.c)


_STRATEGIES: dict[str, type[LossWeighting]] = {
    "equal": LossWeighting,
    "uncertainty": Uncertainty,
    "gradnorm": GradNorm,
    "dwa": DWA,
    "pcgrad": PCGrad,
    "cagrad": CAGrad,
}


def build_weighting(name: str, n_tasks: int, **options: Any) -> LossWeighting:
    """The loss weighting strategy `name` for `n_tasks` tasks (options: gradnorm alpha/lr, dwa temperature)."""
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown loss weighting {name!r}; use one of {', '.join(WEIGHTINGS)}")
    return _STRATEGIES[name](n_tasks, **options)


def weighting_from_config(training: TrainingConfig, n_tasks: int) -> LossWeighting:
    """The `training.loss_weighting` strategy with its settings (`gradnorm_alpha`, `dwa_temperature`)."""
    options = {"gradnorm": {"alpha": training.gradnorm_alpha},
               "dwa": {"temperature": training.dwa_temperature},
               "cagrad": {"c": training.cagrad_c}}.get(training.loss_weighting, {})
    return build_weighting(training.loss_weighting, n_tasks, **options)


def finite_weights(w: torch.Tensor) -> list[float]:
    """Weights as plain floats for JSON history."""
    return [float(x) if math.isfinite(float(x)) else float("nan") for x in w.tolist()]
