"""The training loop: one function that runs in-process (1 process) or on every rank under TorchDistributor.

Each rank reads its own Parquet shard, wraps the network in DDP (gloo) when there are several ranks, and steps
the same number of batches per epoch so all-reduces line up. Per epoch it records each task's loss, the task
weights and validation metrics, applies early stopping, and (rank 0) writes a resumable checkpoint.

The pieces, in the order a run uses them: `TrainingRun` (what to train, picklable), `setup` (network, weighting,
optimizer, shards), `resume` (from a checkpoint), `train_epoch` -> `train_step` (one batch; the loss weighting's
`backward` hook turns the per-task losses into gradients), `end_epoch` (history, validation, early stopping,
checkpoint), `result`.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from wanderlens.config import TrainingConfig
from wanderlens.mtl.architectures import Standardized, build_network
from wanderlens.mtl.data import Shard, read_shard
from wanderlens.mtl.losses import task_loss
from wanderlens.mtl.metrics import PRIMARY, is_better, task_metric
from wanderlens.mtl.tasks import TaskSpec, parse_tasks
from wanderlens.mtl.warm_start import fit_linear_heads
from wanderlens.mtl.weighting import LossWeighting, TaskStep, finite_weights, weighting_from_config
from wanderlens.threads import torch_threads

CHECKPOINT = "last.pt"
# Training settings that may change between an interrupted fit and its resumption without invalidating the
# checkpoint (the shard paths and the thread count are not part of the fingerprint either).
_RESUMABLE_SETTINGS = {"epochs", "checkpoint_dir", "patience"}

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainingRun:
    """One training run: tasks (with their classes), network sizes, training settings, and where the shards are.

    Picklable, so `TorchDistributor` can ship it to every rank. `arch` is an `ArchConfig` as a dict (`name`,
    `expert_hidden`, ...); `class_weights` holds per task None or its class weights (`mtl.data.class_weights`);
    `num_threads` is torch's intra-op thread count while training (None: `WANDERLENS_TORCH_THREADS`, else 1).
    `result_path`, when set, receives rank 0's result as a pickle.
    """

    tasks: list[dict[str, Any]]
    arch: dict[str, Any]
    training: TrainingConfig
    input_dim: int
    train_path: str
    val_path: str | None = None
    class_weights: list[Any] | None = None
    num_threads: int | None = None
    result_path: str | None = None  # rank 0 also writes its result here (see `run_training`)

    def task_specs(self) -> list[TaskSpec]:
        """The tasks as TaskSpecs."""
        return parse_tasks(self.tasks)

    def task_class_weights(self) -> list[Any]:
        """Per task its class weights, or None."""
        return list(self.class_weights) if self.class_weights is not None else [None] * len(self.tasks)

    def fingerprint(self) -> str:
        """Hash of the settings that define this run (a checkpoint only resumes a run with the same one)."""
        core = {"tasks": self.tasks, "arch": self.arch, "input_dim": self.input_dim,
                "class_weights": self.task_class_weights(),
                "training": self.training.model_dump(exclude=_RESUMABLE_SETTINGS)}
        return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Trainable(nn.Module):
    """The network plus the loss weighting's learned parameters: the unit DDP synchronises."""

    def __init__(self, net: nn.Module, weighting: LossWeighting) -> None:
        super().__init__()
        self.net = net
        self.weighting = weighting

    def forward(self, x: torch.Tensor, offsets: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        return self.net(x) if offsets is None else self.net(x, offsets)


@dataclass(frozen=True)
class Ranks:
    """This process's rank and the world size, with the reductions the loop needs (identity in one process)."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """Average over ranks."""
        return self.sum(t) / self.world if self.distributed else t

    def sum(self, t: torch.Tensor, op: Any = None) -> torch.Tensor:
        """Sum (or `op`) over ranks."""
        if not self.distributed:
            return t
        t = t.clone()
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t


def build_trainable(run: TrainingRun) -> tuple[list[TaskSpec], Trainable]:
    """Tasks and a freshly initialised network + weighting for `run` (seeded, so every rank starts equal)."""
    tasks = run.task_specs()
    torch.manual_seed(int(run.training.seed))
    net = build_network(run.arch, int(run.input_dim), [t.num_outputs for t in tasks])
    return tasks, Trainable(net, weighting_from_config(run.training, len(tasks)))


def make_optimizer(training: TrainingConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum 0.9) with the configured learning rate and weight decay."""
    lr, wd = float(training.learning_rate), float(training.weight_decay)
    if training.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if training.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)


class ShardTensors:
    """A shard's arrays as tensors, converted once; `batch(idx)` gathers rows without further copies to numpy."""

    def __init__(self, shard: Shard) -> None:
        self.x = torch.from_numpy(shard.x)
        self.ys = [torch.from_numpy(np.ascontiguousarray(t)) for t in shard.targets]
        self.ms = [torch.from_numpy(np.ascontiguousarray(m)) for m in shard.masks]

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        i = torch.from_numpy(idx)
        return self.x[i], [y[i] for y in self.ys], [m[i] for m in self.ms]


def compute_losses(
    tasks: list[TaskSpec], outputs: list[torch.Tensor], ys: list[torch.Tensor], ms: list[torch.Tensor],
    class_weights: list[torch.Tensor | None], smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task masked losses (times each task's static weight) and labelled-row counts, as vectors."""
    losses, counts = [], []
    for t, out, y, m, cw in zip(tasks, outputs, ys, ms, class_weights, strict=True):
        loss, n = task_loss(t, out, y, m, cw, smoothing)
        losses.append(loss * t.weight)
        counts.append(n)
    return torch.stack(losses), torch.stack(counts)


def lr_factor(training: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    """The learning-rate multiplier at global step `step`: linear warm-up over `warmup_epochs`, then constant,
    cosine to 0 at the last epoch, or one-cycle (warm-up from 1/25, default 30 % of the run, then cosine down)."""
    total = max(1, int(training.epochs) * steps_per_epoch)
    warm = float(training.warmup_epochs) * steps_per_epoch
    if training.lr_schedule == "onecycle":
        warm = warm or 0.3 * total
        if step < warm:
            return 1.0 / 25 + (1.0 - 1.0 / 25) * step / warm
    elif step < warm:
        return (step + 1) / warm
    if training.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warm) / max(1.0, total - warm))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def drop_modalities(x: torch.Tensor, blocks: list[list[int]], p: float) -> torch.Tensor:
    """Modality dropout: each row's present blocks (`[start, stop, presence index or -1]` column slices) are
    blanked with chance `p`, together with their presence flag; a row always keeps one present block."""
    present = torch.stack([x[:, b[2]] > 0 if b[2] >= 0 else (x[:, b[0]: b[1]] != 0).any(dim=1) for b in blocks], 1)
    drop = (torch.rand(present.shape) < p) & present
    drop[(present & ~drop).sum(dim=1) == 0] = False
    if not drop.any():
        return x
    x = x.clone()
    for j, (start, stop, flag) in enumerate(blocks):
        keep = (~drop[:, j]).to(x.dtype)
        x[:, start:stop] *= keep[:, None]
        if flag >= 0:
            x[:, flag] *= keep
    return x


def predict_array(net: nn.Module, x: np.ndarray, batch: int = 8192) -> list[np.ndarray]:
    """Raw outputs of every task for `x`, in eval mode, as float64 arrays."""
    net.eval()
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            parts.append([o.double().numpy() for o in net(torch.from_numpy(np.ascontiguousarray(x[s: s + batch])))])
    net.train()
    if not parts:
        return []
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


@dataclass
class LoopState:
    """What a checkpoint holds besides the weights: the history so far, the best epoch, early stopping."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float | None = None
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    start_epoch: int = 0
    resumed_from: int | None = None
    # Per-task selection: each task's best validation value and epoch (0-based), and the network weights of
    # every epoch that is still some task's best.
    task_best: list[float | None] = field(default_factory=list)
    task_epoch: list[int | None] = field(default_factory=list)
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        """Whether early stopping ended the run (a resumed run that had stopped trains no further)."""
        return bool(self.history and self.history[-1].get("stop"))


@dataclass
class Loop:
    """One rank's training run: settings, network, optimizer, data, and the loop state."""

    run: TrainingRun
    ranks: Ranks
    tasks: list[TaskSpec]
    model: Trainable
    ddp: nn.Module
    optimizer: torch.optim.Optimizer
    train: ShardTensors
    rows: int
    steps: int
    val: Shard | None
    class_weights: list[torch.Tensor | None]
    shared: list[nn.Parameter]
    warm_start: dict[str, Any] | None = None
    logit_offsets: list[torch.Tensor] | None = None  # per task and training row: out-of-fold minus full linear logits
    state: LoopState = field(default_factory=LoopState)

    @property
    def weighting(self) -> LossWeighting:
        return self.model.weighting


def setup(run: TrainingRun, ranks: Ranks) -> Loop:
    """Build the network, weighting and optimizer, read this rank's shards, and agree on the steps per epoch."""
    tasks, model = build_trainable(run)
    dim = int(run.input_dim)
    train = read_shard(run.train_path, ranks.rank, ranks.world, tasks, dim)
    val = read_shard(run.val_path, ranks.rank, ranks.world, tasks, dim) if run.val_path else None
    cws = [None if cw is None else torch.tensor(cw, dtype=torch.float32) for cw in run.task_class_weights()]
    fit_input_statistics(model.net, train.x, ranks)
    tensors = ShardTensors(train)
    warm, offsets = None, None
    if run.training.linear_warm_start:  # before DDP and the optimizer: the frozen linear maps are not trained
        warm, offsets = fit_linear_heads(model.net, tensors.x, tensors.ys, tensors.ms, tasks,
                                         run.training.linear_l2, ranks.sum, ranks.world)
    ddp = nn.parallel.DistributedDataParallel(model) if ranks.distributed else model
    optimizer = make_optimizer(run.training, [p for p in model.parameters() if p.requires_grad])
    shared = model.net.shared_parameters() if model.weighting.needs_task_gradients else []
    steps = math.ceil(len(train) / int(run.training.batch_size))
    if ranks.distributed:
        steps = int(ranks.sum(torch.tensor([steps]), dist.ReduceOp.MAX).item())
    return Loop(run, ranks, tasks, model, ddp, optimizer, tensors, len(train), steps, val, cws, shared, warm, offsets)


def fit_input_statistics(net: nn.Module, x: np.ndarray, ranks: Ranks, block: int = 65536) -> None:
    """Give a `Standardized` network the column means and deviations of the training rows of all ranks (summed in
    float64 in row blocks, then reduced), so every rank holds the same statistics. Other networks: nothing."""
    if not isinstance(net, Standardized):
        return
    sums = torch.zeros(2, x.shape[1], dtype=torch.float64)
    for s in range(0, len(x), block):
        part = torch.from_numpy(x[s: s + block]).double()
        sums[0] += part.sum(0)
        sums[1] += (part * part).sum(0)
    sums = ranks.sum(sums)
    n = float(ranks.sum(torch.tensor([float(len(x))], dtype=torch.float64)).item())
    net.fit(sums[0], sums[1], n)


def resume(loop: Loop) -> None:
    """Continue from `checkpoint_dir/last.pt` when it was written by a run with the same fingerprint."""
    ckpt = loop.run.training.checkpoint_dir
    if not ckpt or not os.path.exists(os.path.join(ckpt, CHECKPOINT)):
        return
    saved = torch.load(os.path.join(ckpt, CHECKPOINT), weights_only=False)
    if saved["fingerprint"] != loop.run.fingerprint():
        return
    loop.model.load_state_dict(saved["model"])
    loop.optimizer.load_state_dict(saved["optimizer"])
    loop.state = LoopState(history=saved["history"], best_value=saved["best_value"],
                           best_state=saved["best_state"], bad_epochs=saved["bad_epochs"],
                           start_epoch=saved["epoch"] + 1, resumed_from=saved["epoch"] + 1,
                           task_best=saved.get("task_best", []), task_epoch=saved.get("task_epoch", []),
                           snapshots=saved.get("snapshots", {}))


def train_step(loop: Loop, idx: np.ndarray, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on the rows `idx` (global step `step`, for the learning-rate schedule); returns the
    detached per-task losses and labelled-row counts."""
    training = loop.run.training
    x, ys, ms = loop.train.batch(idx)
    if training.modality_dropout > 0 and training.modality_blocks:
        x = drop_modalities(x, training.modality_blocks, training.modality_dropout)
    factor = lr_factor(training, step, loop.steps)
    for group in loop.optimizer.param_groups:
        group["lr"] = float(training.learning_rate) * factor
    if loop.logit_offsets is None:
        outputs = loop.ddp(x)
    else:
        rows = torch.from_numpy(idx)
        outputs = loop.ddp(x, [off[rows] for off in loop.logit_offsets])
    losses, counts = compute_losses(loop.tasks, outputs, ys, ms, loop.class_weights, training.label_smoothing)
    loop.optimizer.zero_grad(set_to_none=True)
    loop.weighting.backward(TaskStep(losses, counts > 0, loop.shared, loop.ranks.mean))
    loop.optimizer.step()
    return losses.detach(), counts


def train_epoch(loop: Loop, epoch: int) -> tuple[list[float], int]:
    """One pass over this rank's rows (seeded per epoch and rank); the mean per-task losses over all ranks, and
    the rows stepped on this rank."""
    seed, rank, bs, n = int(loop.run.training.seed), loop.ranks.rank, int(loop.run.training.batch_size), loop.rows
    torch.manual_seed(seed * 7919 + epoch * 104729 + rank)
    perm = np.random.default_rng([seed, epoch, rank]).permutation(n) if n else np.zeros(0, np.int64)
    if loop.ranks.distributed and n:
        perm = np.resize(perm, loop.steps * bs)
    loss_sum = torch.zeros(len(loop.tasks), dtype=torch.float64)
    count_sum = torch.zeros(len(loop.tasks), dtype=torch.float64)
    for s in range(loop.steps):
        losses, counts = train_step(loop, perm[s * bs: (s + 1) * bs], epoch * loop.steps + s)
        loss_sum += losses.double() * counts.double()
        count_sum += counts.double()
    loss_sum, count_sum = loop.ranks.sum(loss_sum), loop.ranks.sum(count_sum)
    return (loss_sum / count_sum.clamp(min=1)).tolist(), len(perm)


def monitored(record: dict[str, Any], tasks: list[TaskSpec], monitor: str) -> tuple[float, str]:
    """The value early stopping watches in an epoch record, and its metric name ('loss', 'metric', 'auc', ...)."""
    if monitor == "loss":
        return record["val_loss"], "loss"
    if monitor == "metric":
        return record["val_metric"], "metric"
    metric = PRIMARY[next(t.type for t in tasks if t.name == monitor)]
    return record["val"][monitor][metric], metric


def early_stopping(loop: Loop, record: dict[str, Any]) -> None:
    """Validate, keep the best weights so far, and mark the record `stop` after `patience` epochs without gain."""
    st, training = loop.state, loop.run.training
    record.update(_validate(loop.model.net, loop.tasks, loop.val, loop.class_weights, loop.ranks))
    value, metric = monitored(record, loop.tasks, training.monitor)
    record["monitored"] = value
    if is_better(metric, value, st.best_value):
        st.best_value, st.bad_epochs = value, 0
        st.best_state = copy.deepcopy(loop.model.state_dict())
    else:
        st.bad_epochs += 1
    if training.per_task_selection:
        select_per_task(loop, record)
    if training.patience > 0 and st.bad_epochs >= training.patience:
        record["stop"] = True


def select_per_task(loop: Loop, record: dict[str, Any]) -> None:
    """Per-task selection: a task whose validation metric improved this epoch takes this epoch's weights as its
    own; snapshots no task uses any more are dropped. The record lists the tasks that improved."""
    st, epoch = loop.state, int(record["epoch"]) - 1
    n = len(loop.tasks)
    st.task_best = st.task_best or [None] * n
    st.task_epoch = st.task_epoch or [None] * n
    improved = []
    for i, t in enumerate(loop.tasks):
        metric = PRIMARY[t.type]
        value = record["val"][t.name][metric]
        if is_better(metric, value, st.task_best[i]):
            st.task_best[i], st.task_epoch[i] = value, epoch
            improved.append(t.name)
    if improved:
        st.snapshots[epoch] = copy.deepcopy(loop.model.net.state_dict())
    st.snapshots = {e: w for e, w in st.snapshots.items() if e in st.task_epoch}
    record["improved"] = improved


def assemble_weights(loop: Loop) -> dict[str, Any]:
    """The fitted weights as `{"states": [net state per distinct epoch], "task_state": [index per task],
    "best_epoch": [1-based epoch per task or None]}`: per-task selection groups the tasks that share a best epoch
    into one snapshot; otherwise (or for a task never validated) the monitored best (or last) weights."""
    st, n = loop.state, len(loop.tasks)
    fallback = loop.model.net.state_dict()
    if st.best_state is not None:
        fallback = {k[4:]: v for k, v in st.best_state.items() if k.startswith("net.")}
    epochs = st.task_epoch if loop.run.training.per_task_selection and st.task_epoch else [None] * n
    keys = sorted({e for e in epochs if e is not None})
    states = [st.snapshots[e] for e in keys]
    task_state = [keys.index(e) if e is not None else len(keys) for e in epochs]
    if any(e is None for e in epochs):
        states.append(fallback)
    return {"states": states, "task_state": task_state,
            "best_epoch": [None if e is None else e + 1 for e in epochs]}


def end_epoch(loop: Loop, epoch: int, epoch_losses: list[float], samples: int, t0: float) -> dict[str, Any]:
    """The epoch's history record (losses, weights, validation), after early stopping and the checkpoint."""
    loop.weighting.end_epoch(epoch_losses)
    names = [t.name for t in loop.tasks]
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "loss": dict(zip(names, epoch_losses, strict=True)),
        "weights": dict(zip(names, finite_weights(loop.weighting.current_weights()), strict=True)),
    }
    if loop.val is not None:
        early_stopping(loop, record)
    record["seconds"] = time.perf_counter() - t0
    record["samples"] = int(loop.ranks.sum(torch.tensor([samples])).item())
    loop.state.history.append(record)
    ckpt = loop.run.training.checkpoint_dir
    if ckpt and loop.ranks.rank == 0:
        st = loop.state
        _save_checkpoint(ckpt, {
            "fingerprint": loop.run.fingerprint(), "epoch": epoch, "model": loop.model.state_dict(),
            "optimizer": loop.optimizer.state_dict(), "history": st.history, "best_value": st.best_value,
            "best_state": st.best_state, "bad_epochs": st.bad_epochs,
            "task_best": st.task_best, "task_epoch": st.task_epoch, "snapshots": st.snapshots,
        })
    return record


def result(loop: Loop) -> dict[str, Any]:
    """Restore the best epoch's weights; rank 0 gets the weights (serialised), history and run facts."""
    model, ranks, st = loop.model, loop.ranks, loop.state
    weights = assemble_weights(loop)
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    flat = torch.cat([p.detach().reshape(-1) for p in model.state_dict().values() if p.is_floating_point()])
    max_diff = 0.0
    if ranks.distributed:
        gathered = [torch.zeros_like(flat) for _ in range(ranks.world)]
        dist.all_gather(gathered, flat)
        max_diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
    rows = int(ranks.sum(torch.tensor([loop.rows])).item())
    if ranks.rank != 0:
        return {}
    return {
        "state": _serialize({"states": weights["states"], "task_state": weights["task_state"]}),
        "history": st.history,
        "info": {
            "world_size": ranks.world, "train_rows": rows, "resumed_from_epoch": st.resumed_from,
            "rank_param_max_abs_diff": max_diff, "best_monitored": st.best_value,
            "task_weights": finite_weights(loop.weighting.current_weights()),
            "best_epoch": dict(zip([t.name for t in loop.tasks], weights["best_epoch"], strict=True)),
        },
    }


def run_training(run: TrainingRun, progress: Progress | None = None) -> dict[str, Any]:
    """Train `run` on this rank; rank 0 returns the weights (serialised), history and run facts.

    With WORLD_SIZE > 1 (set by TorchDistributor) it joins a gloo process group and trains under DDP. Torch's
    intra-op thread count is set for the run and restored after it.
    """
    ranks = Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    # Small multi-task nets train fastest on one intra-op thread; on a busy host, more threads spin and stall.
    threads = int(run.num_threads or os.environ.get("WANDERLENS_TORCH_THREADS", "1"))
    with torch_threads(threads):
        if ranks.distributed:
            dist.init_process_group("gloo")
        try:
            out = _train(run, ranks, progress)
            if run.result_path and ranks.rank == 0:
                _write_result(run.result_path, out)
            return out
        finally:
            if ranks.distributed:
                dist.destroy_process_group()


def validate_warm_start(loop: Loop) -> None:
    """Record the linearly warm-started model as epoch 0 (validated like any epoch), so early stopping and per-task
    selection can keep it for a task the network does not improve."""
    record: dict[str, Any] = {"epoch": 0, "linear_warm_start": loop.warm_start}
    early_stopping(loop, record)
    loop.state.history.append(record)


def _train(run: TrainingRun, ranks: Ranks, progress: Progress | None) -> dict[str, Any]:
    loop = setup(run, ranks)
    resume(loop)
    if loop.warm_start is not None and loop.val is not None and loop.state.start_epoch == 0:
        validate_warm_start(loop)
    for epoch in range(loop.state.start_epoch, int(run.training.epochs)):
        if loop.state.stopped:
            break
        t0 = time.perf_counter()
        epoch_losses, samples = train_epoch(loop, epoch)
        record = end_epoch(loop, epoch, epoch_losses, samples, t0)
        if progress is not None and ranks.rank == 0:
            progress(record)
    return result(loop)


def _write_result(path: str, out: dict[str, Any]) -> None:
    """Write `out` to `path` atomically (a reader never sees half a file)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        pickle.dump(out, fh)
    os.replace(tmp, path)


def _serialize(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _save_checkpoint(path: str, state: dict[str, Any]) -> None:
    os.makedirs(path, exist_ok=True)
    tmp = os.path.join(path, f".{CHECKPOINT}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(path, CHECKPOINT))


def _validate(net: nn.Module, tasks: list[TaskSpec], val: Shard, class_weights: list, ranks: Ranks) -> dict[str, Any]:
    """Validation losses and metrics over all ranks' validation shards (identical on every rank)."""
    outs = predict_array(net, val.x)
    if not outs:
        outs = [np.zeros((0, t.num_outputs)) for t in tasks]
    parts = [(outs, val.targets, val.masks)]
    if ranks.distributed:
        gathered: list[Any] = [None] * ranks.world
        dist.all_gather_object(gathered, parts[0])
        parts = gathered
    res: dict[str, Any] = {"val": {}}
    total = 0.0
    metrics = []
    for i, t in enumerate(tasks):
        out = np.concatenate([p[0][i] for p in parts])
        y = np.concatenate([p[1][i] for p in parts])
        m = np.concatenate([p[2][i] for p in parts])
        with torch.no_grad():
            cw = class_weights[i]
            loss, _ = task_loss(t, torch.from_numpy(out).float(), torch.from_numpy(y), torch.from_numpy(m), cw)
        value = task_metric(t, out, y, m)
        res["val"][t.name] = {"loss": float(loss), PRIMARY[t.type]: value, "n": int((m > 0).sum())}
        total += float(loss) * t.weight
        if t.type != "regression" and not math.isnan(value):
            metrics.append(value)
    res["val_loss"] = total
    res["val_metric"] = float(np.mean(metrics)) if metrics else float("nan")
    return res


def load_state(blob: bytes) -> dict[str, Any]:
    """Inverse of the serialised `state` in `run_training`'s result: `{"states": [...], "task_state": [...]}`
    (`LocalMultiTaskModel` takes it as it is)."""
    return torch.load(io.BytesIO(blob), weights_only=True)
