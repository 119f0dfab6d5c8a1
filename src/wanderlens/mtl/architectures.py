"""Multi-task network families behind one interface: `single_task`, `shared_bottom`, `mmoe` and `ple`.

Each takes a batch of feature vectors and returns one logit tensor per task (`[batch, task.num_outputs]`);
`shared_parameters()` names the last shared layer, which GradNorm measures per-task gradient norms on.
`linear_head` wraps any of them with a per-task linear path from the inputs (`LinearHeads`); `standardization`
puts a fixed per-column standardisation in front (`Standardized`, its statistics set by the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from wanderlens.errors import ConfigError

ARCHITECTURES = ("single_task", "shared_bottom", "mmoe", "ple")


@dataclass
class ArchConfig:
    """Sizes of a network: expert/bottom widths, tower widths, experts, PLE levels, dropout."""

    name: str = "mmoe"
    expert_hidden: list[int] = field(default_factory=lambda: [64])
    tower_hidden: list[int] = field(default_factory=lambda: [32])
    num_experts: int = 4
    num_shared_experts: int = 2
    num_levels: int = 1
    dropout: float = 0.0
    layer_norm: bool = False
    linear_head: bool = False
    linear_gate: bool = False  # a learned per-task weight on the linear logits (set with training.linear_warm_start)
    standardization: bool = False

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {self.name!r}; use one of {', '.join(ARCHITECTURES)}")
        if not self.expert_hidden or any(int(w) <= 0 for w in self.expert_hidden):
            raise ConfigError(f"expert_hidden must be a non-empty list of positive widths, got {self.expert_hidden}")
        if any(int(w) <= 0 for w in self.tower_hidden):
            raise ConfigError(f"tower_hidden must hold positive widths, got {self.tower_hidden}")
        if self.num_experts < 1 or self.num_shared_experts < 1 or self.num_levels < 1:
            raise ConfigError("num_experts, num_shared_experts and num_levels must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


def mlp(in_dim: int, widths: list[int], dropout: float, layer_norm: bool = False) -> nn.Sequential:
    """Linear (+ LayerNorm) + ReLU (+ dropout) per width."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(in_dim, int(w)), *([nn.LayerNorm(int(w))] if layer_norm else []), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = int(w)
    return nn.Sequential(*layers)


def _last_linear(module: nn.Module) -> list[nn.Parameter]:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return list(linears[-1].parameters())


class Tower(nn.Module):
    """Task head: an MLP then a linear output layer of the task's width."""

    def __init__(self, in_dim: int, widths: list[int], out_dim: int, dropout: float, layer_norm: bool = False) -> None:
        super().__init__()
        self.body = mlp(in_dim, widths, dropout, layer_norm)
        self.out = nn.Linear(widths[-1] if widths else in_dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(h))


def _expert(cfg: ArchConfig, in_dim: int) -> nn.Sequential:
    """An expert (or bottom) MLP of the configured widths."""
    return mlp(in_dim, cfg.expert_hidden, cfg.dropout, cfg.layer_norm)


def _tower(cfg: ArchConfig, in_dim: int, out_dim: int) -> Tower:
    """A task tower of the configured widths."""
    return Tower(in_dim, cfg.tower_hidden, out_dim, cfg.dropout, cfg.layer_norm)


class MultiTaskNet(nn.Module):
    """Base class: `forward(x) -> list[Tensor]`, one per task, and the shared parameters GradNorm uses."""

    def shared_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


class SingleTaskNets(MultiTaskNet):
    """One independent bottom + tower per task: the no-sharing baseline trained in one pass."""

    def __init__(self, in_dim: int, outs: list[int], cfg: ArchConfig) -> None:
        super().__init__()
        self.bottoms = nn.ModuleList(_expert(cfg, in_dim) for _ in outs)
        self.towers = nn.ModuleList(_tower(cfg, cfg.expert_hidden[-1], o) for o in outs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [tower(bottom(x)) for bottom, tower in zip(self.bottoms, self.towers, strict=True)]

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for b in self.bottoms for p in _last_linear(b)]


class SharedBottom(MultiTaskNet):
    """One shared bottom MLP feeding a tower per task (Caruana 1997)."""

    def __init__(self, in_dim: int, outs: list[int], cfg: ArchConfig) -> None:
        super().__init__()
        self.bottom = _expert(cfg, in_dim)
        self.towers = nn.ModuleList(_tower(cfg, cfg.expert_hidden[-1], o) for o in outs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.bottom(x)
        return [tower(h) for tower in self.towers]

    def shared_parameters(self) -> list[nn.Parameter]:
        return _last_linear(self.bottom)


class MMoE(MultiTaskNet):
    """Multi-gate mixture of experts (Ma et al., KDD 2018): shared experts, one softmax gate per task."""

    def __init__(self, in_dim: int, outs: list[int], cfg: ArchConfig) -> None:
        super().__init__()
        self.experts = nn.ModuleList(_expert(cfg, in_dim) for _ in range(cfg.num_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, cfg.num_experts) for _ in outs)
        self.towers = nn.ModuleList(_tower(cfg, cfg.expert_hidden[-1], o) for o in outs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e = torch.stack([expert(x) for expert in self.experts], dim=1)  # [B, E, H]
        outs = []
        for gate, tower in zip(self.gates, self.towers, strict=True):
            g = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # [B, E, 1]
            outs.append(tower((g * e).sum(dim=1)))
        return outs

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for ex in self.experts for p in _last_linear(ex)]


class _CGCLevel(nn.Module):
    """One customized gate control level of PLE: task-specific and shared experts, gated per task."""

    def __init__(self, in_dim: int, n_tasks: int, cfg: ArchConfig, last: bool) -> None:
        super().__init__()
        k, s = cfg.num_experts, cfg.num_shared_experts
        self.task_experts = nn.ModuleList(
            nn.ModuleList(_expert(cfg, in_dim) for _ in range(k)) for _ in range(n_tasks)
        )
        self.shared_experts = nn.ModuleList(_expert(cfg, in_dim) for _ in range(s))
        self.task_gates = nn.ModuleList(nn.Linear(in_dim, k + s) for _ in range(n_tasks))
        self.shared_gate = None if last else nn.Linear(in_dim, n_tasks * k + s)

    def forward(self, task_in: list[torch.Tensor], shared_in: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        shared = [ex(shared_in) for ex in self.shared_experts]
        per_task = [[ex(h) for ex in experts] for experts, h in zip(self.task_experts, task_in, strict=True)]
        outs = []
        for i, gate in enumerate(self.task_gates):
            e = torch.stack(per_task[i] + shared, dim=1)
            g = torch.softmax(gate(task_in[i]), dim=-1).unsqueeze(-1)
            outs.append((g * e).sum(dim=1))
        shared_out = shared_in
        if self.shared_gate is not None:
            e = torch.stack([x for xs in per_task for x in xs] + shared, dim=1)
            g = torch.softmax(self.shared_gate(shared_in), dim=-1).unsqueeze(-1)
            shared_out = (g * e).sum(dim=1)
        return outs, shared_out


class PLE(MultiTaskNet):
    """Progressive layered extraction (Tang et al., RecSys 2020): stacked CGC levels, then a tower per task."""

    def __init__(self, in_dim: int, outs: list[int], cfg: ArchConfig) -> None:
        super().__init__()
        h = cfg.expert_hidden[-1]
        self.levels = nn.ModuleList(
            _CGCLevel(in_dim if i == 0 else h, len(outs), cfg, last=i == cfg.num_levels - 1)
            for i in range(cfg.num_levels)
        )
        self.towers = nn.ModuleList(_tower(cfg, h, o) for o in outs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        task_in, shared = [x] * len(self.towers), x
        for level in self.levels:
            task_in, shared = level(task_in, shared)
        return [tower(h) for tower, h in zip(self.towers, task_in, strict=True)]

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for ex in self.levels[-1].shared_experts for p in _last_linear(ex)]


class LinearHeads(MultiTaskNet):
    """A network plus, per task, a linear map from the inputs to the task's logits (wide & deep, Cheng et al.
    2016). On wide embedding inputs with few labelled rows a linear model is hard to beat; with this path the
    network contains one and its hidden layers learn what the linear map misses."""

    def __init__(self, deep: MultiTaskNet, in_dim: int, outs: list[int], gated: bool = False) -> None:
        super().__init__()
        self.deep = deep
        self.linear = nn.ModuleList(nn.Linear(in_dim, o) for o in outs)
        # With a fixed (warm-started) linear map, a learned per-task weight on its logits lets the network turn a
        # task's linear part down where it misleads; starts at 1.
        self.gate = nn.Parameter(torch.ones(len(outs))) if gated else None

    def forward(self, x: torch.Tensor, offsets: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Per task the network's logits plus the (gated) linear logits; `offsets`, in training only, are added to
        the linear logits first (the out-of-fold correction of `mtl.warm_start`)."""
        lins = [lin(x) for lin in self.linear]
        if offsets is not None:
            lins = [z + o for z, o in zip(lins, offsets, strict=True)]
        if self.gate is not None:
            lins = [g * z for g, z in zip(self.gate, lins, strict=True)]
        return [h + z for h, z in zip(self.deep(x), lins, strict=True)]

    def shared_parameters(self) -> list[nn.Parameter]:
        return self.deep.shared_parameters()


class Standardized(MultiTaskNet):
    """A network whose inputs are standardised per column, `(x - mean) / std`, with statistics of the training
    rows. MLlib's LogisticRegression standardises its inputs too: on wide embeddings whose blocks differ in scale
    (image activations, TF-IDF weights, unit-norm sentence vectors) every column then starts on an equal footing.
    The statistics are buffers, so they are saved and loaded with the weights; `fit` sets them."""

    def __init__(self, net: MultiTaskNet, in_dim: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))

    def fit(self, total: torch.Tensor, total_sq: torch.Tensor, n: float) -> None:
        """Set the statistics from column sums and sums of squares over `n` rows (float64; summed over ranks).
        A constant column keeps scale 1, so it passes through centred at zero."""
        if n <= 0:
            return
        mean = total / n
        std = (total_sq / n - mean * mean).clamp(min=0.0).sqrt()
        self.mean.copy_(mean.float())
        self.scale.copy_(torch.where(std > 1e-8, 1.0 / std.clamp(min=1e-8), torch.ones_like(std)).float())

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """`x` with every column standardised."""
        return (x - self.mean) * self.scale

    def forward(self, x: torch.Tensor, offsets: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        z = self.standardize(x)
        return self.net(z) if offsets is None else self.net(z, offsets)

    def shared_parameters(self) -> list[nn.Parameter]:
        return self.net.shared_parameters()


_FAMILIES: dict[str, type[MultiTaskNet]] = {
    "single_task": SingleTaskNets,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
}


def build_network(cfg: ArchConfig | dict[str, Any], in_dim: int, outs: list[int]) -> MultiTaskNet:
    """Instantiate the architecture named in `cfg` for `in_dim` inputs and one output width per task."""
    if isinstance(cfg, dict):
        if cfg.get("tabular"):  # categorical / numeric embeddings in front (wanderlens.mtl.tabular)
            from wanderlens.mtl.tabular import TabularNet

            return TabularNet(cfg, in_dim, outs)
        cfg = ArchConfig(**{k: v for k, v in cfg.items() if k != "tabular"})
    net = _FAMILIES[cfg.name](in_dim, outs, cfg)
    if cfg.linear_head:
        net = LinearHeads(net, in_dim, outs, cfg.linear_gate)
    return Standardized(net, in_dim) if cfg.standardization else net
