"""The training loop: one function that runs in-process (1 process) or on every rank under TorchDistributor.

Each rank reads its own Parquet shard, wraps the network in DDP (gloo) when there are several ranks, and steps
the same number of batches per epoch so all-reduces line up. Per epoch it records each task's loss, the task
weights and validation metrics, applies early stopping, and (rank 0) writes a resumable checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from wanderlens.mtl.architectures import build_network
from wanderlens.mtl.data import Shard, read_shard
from wanderlens.mtl.losses import task_loss
from wanderlens.mtl.metrics import PRIMARY, is_better, task_metric
from wanderlens.mtl.tasks import TaskSpec, parse_tasks
from wanderlens.mtl.weighting import LossWeighting, build_weighting, finite_weights

CHECKPOINT = "last.pt"
# Settings that may change between an interrupted fit and its resumption without invalidating the checkpoint.
_RESUMABLE_KEYS = {"epochs", "checkpoint_dir", "train_path", "val_path", "num_threads", "patience"}


class Trainable(nn.Module):
    """The network plus the loss weighting's learned parameters: the unit DDP synchronises."""

    def __init__(self, net: nn.Module, weighting: LossWeighting) -> None:
        super().__init__()
        self.net = net
        self.weighting = weighting

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(x)


def fingerprint(cfg: dict[str, Any]) -> str:
    """Hash of the settings that define a training run (a checkpoint only resumes a run with the same one)."""
    core = {k: v for k, v in cfg.items() if k not in _RESUMABLE_KEYS}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_trainable(cfg: dict[str, Any]) -> tuple[list[TaskSpec], Trainable]:
    """Tasks and a freshly initialised network + weighting for `cfg` (seeded, so every rank starts equal)."""
    tasks = parse_tasks(cfg["tasks"])
    torch.manual_seed(int(cfg["seed"]))
    net = build_network(cfg["arch"], int(cfg["input_dim"]), [t.num_outputs for t in tasks])
    weighting = build_weighting(cfg["weighting"], len(tasks), **cfg.get("weighting_options", {}))
    return tasks, Trainable(net, weighting)


def make_optimizer(cfg: dict[str, Any], params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum 0.9) with the configured learning rate and weight decay."""
    name, lr, wd = cfg["optimizer"], float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
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
    class_weights: list[torch.Tensor | None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task masked losses (times each task's static weight) and labelled-row counts, as vectors."""
    losses, counts = [], []
    for t, out, y, m, cw in zip(tasks, outputs, ys, ms, class_weights, strict=True):
        loss, n = task_loss(t, out, y, m, cw)
        losses.append(loss * t.weight)
        counts.append(n)
    return torch.stack(losses), torch.stack(counts)


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


def _serialize(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _save_checkpoint(path: str, state: dict[str, Any]) -> None:
    os.makedirs(path, exist_ok=True)
    tmp = os.path.join(path, f".{CHECKPOINT}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(path, CHECKPOINT))


def run_training(cfg: dict[str, Any], progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train per `cfg` on this rank; rank 0 returns the weights (serialised), history and run facts.

    With WORLD_SIZE > 1 (set by TorchDistributor) it joins a gloo process group and trains under DDP.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    # Small multi-task nets train fastest on one intra-op thread; on a busy host, more threads spin and stall.
    threads = int(cfg.get("num_threads") or os.environ.get("WANDERLENS_TORCH_THREADS", "1"))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    if distributed:
        dist.init_process_group("gloo")
    try:
        return _train(cfg, rank, world, progress)
    finally:
        if distributed:
            dist.destroy_process_group()
        torch.set_num_threads(previous)


def _train(cfg: dict[str, Any], rank: int, world: int, progress: Callable | None) -> dict[str, Any]:
    distributed = world > 1
    tasks, model = build_trainable(cfg)
    net, weighting = model.net, model.weighting
    dim = int(cfg["input_dim"])
    train = read_shard(cfg["train_path"], rank, world, tasks, dim)
    val = read_shard(cfg["val_path"], rank, world, tasks, dim) if cfg.get("val_path") else None
    class_weights = [None if cw is None else torch.tensor(cw, dtype=torch.float32) for cw in cfg["class_weights"]]
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg, params)
    shared = net.shared_parameters() if weighting.needs_task_gradients() else []

    def reduce_mean(t: torch.Tensor) -> torch.Tensor:
        if not distributed:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / world

    def reduce_sum(t: torch.Tensor, op: Any = None) -> torch.Tensor:
        if not distributed:
            return t
        t = t.clone()
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t

    history: list[dict[str, Any]] = []
    start_epoch, best_value, best_state, bad_epochs = 0, None, None, 0
    ckpt_dir, fp = cfg.get("checkpoint_dir"), fingerprint(cfg)
    resumed_from = None
    if ckpt_dir and os.path.exists(os.path.join(ckpt_dir, CHECKPOINT)):
        state = torch.load(os.path.join(ckpt_dir, CHECKPOINT), weights_only=False)
        if state["fingerprint"] == fp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, best_value, bad_epochs = state["history"], state["best_value"], state["bad_epochs"]
            best_state = state["best_state"]
            start_epoch = resumed_from = state["epoch"] + 1

    bs = int(cfg["batch_size"])
    n = len(train)
    tensors = ShardTensors(train)
    steps = math.ceil(n / bs)
    if distributed:
        steps = int(reduce_sum(torch.tensor([steps]), dist.ReduceOp.MAX).item())
    monitor = cfg.get("monitor", "loss")
    patience = int(cfg.get("patience", 0))
    stopped_early = bool(history and history[-1].get("stop"))
    seed = int(cfg["seed"])
    for epoch in range(start_epoch, int(cfg["epochs"])):
        if stopped_early:
            break
        t0 = time.perf_counter()
        torch.manual_seed(seed * 7919 + epoch * 104729 + rank)
        perm = np.random.default_rng([seed, epoch, rank]).permutation(n) if n else np.zeros(0, np.int64)
        if distributed and n:
            perm = np.resize(perm, steps * bs)
        loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
        count_sum = torch.zeros(len(tasks), dtype=torch.float64)
        for s in range(steps):
            idx = perm[s * bs: (s + 1) * bs]
            x, ys, ms = tensors.batch(idx)
            outputs = ddp(x)
            losses, counts = compute_losses(tasks, outputs, ys, ms, class_weights)
            present = counts > 0
            grad_norms = None
            if shared:
                norms = []
                for i in range(len(tasks)):
                    if present[i]:
                        g = torch.autograd.grad(losses[i], shared, retain_graph=True, allow_unused=True)
                        norms.append(torch.sqrt(sum((gi.pow(2).sum() for gi in g if gi is not None),
                                                    torch.tensor(0.0))))
                    else:
                        norms.append(torch.tensor(0.0))
                grad_norms = torch.stack(norms)
            total = weighting.combine(losses, present)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            weighting.after_step(losses, grad_norms, present, reduce_mean)
            loss_sum += losses.detach().double() * counts.double()
            count_sum += counts.double()
        loss_sum, count_sum = reduce_sum(loss_sum), reduce_sum(count_sum)
        epoch_losses = (loss_sum / count_sum.clamp(min=1)).tolist()
        weighting.end_epoch(epoch_losses)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": {t.name: epoch_losses[i] for i, t in enumerate(tasks)},
            "weights": dict(zip([t.name for t in tasks], finite_weights(weighting.current_weights()), strict=True)),
        }
        if val is not None:
            record.update(_validate(net, tasks, val, class_weights, distributed, world))
            value = record["val_loss"] if monitor == "loss" else (
                record["val_metric"] if monitor == "metric" else record["val"][monitor][PRIMARY[
                    next(t.type for t in tasks if t.name == monitor)]])
            metric_name = "loss" if monitor == "loss" else ("metric" if monitor == "metric" else PRIMARY[
                next(t.type for t in tasks if t.name == monitor)])
            record["monitored"] = value
            if is_better(metric_name, value, best_value):
                best_value, bad_epochs = value, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            if patience > 0 and bad_epochs >= patience:
                record["stop"] = True
                stopped_early = True
        record["seconds"] = time.perf_counter() - t0
        record["samples"] = int(reduce_sum(torch.tensor([len(perm)])).item())
        history.append(record)
        if ckpt_dir and rank == 0:
            _save_checkpoint(ckpt_dir, {
                "fingerprint": fp, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "history": history, "best_value": best_value,
                "best_state": best_state, "bad_epochs": bad_epochs,
            })
        if progress is not None and rank == 0:
            progress(record)
    if best_state is not None:
        model.load_state_dict(best_state)
    flat = torch.cat([p.detach().reshape(-1) for p in model.state_dict().values() if p.is_floating_point()])
    max_diff = 0.0
    if distributed:
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        max_diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
    rows = int(reduce_sum(torch.tensor([n])).item())
    if rank != 0:
        return {}
    return {
        "state": _serialize(net.state_dict()),
        "history": history,
        "info": {
            "world_size": world, "train_rows": rows, "resumed_from_epoch": resumed_from,
            "rank_param_max_abs_diff": max_diff, "best_monitored": best_value,
            "task_weights": finite_weights(weighting.current_weights()),
        },
    }


def _validate(
    net: nn.Module, tasks: list[TaskSpec], val: Shard, class_weights: list, distributed: bool, world: int
) -> dict[str, Any]:
    """Validation losses and metrics over all ranks' validation shards (identical on every rank)."""
    outs = predict_array(net, val.x)
    if not outs:
        outs = [np.zeros((0, t.num_outputs)) for t in tasks]
    parts = [(outs, val.targets, val.masks)]
    if distributed:
        gathered: list[Any] = [None] * world
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


def load_state(blob: bytes) -> dict[str, torch.Tensor]:
    """Inverse of the serialised `state` in `run_training`'s result."""
    return torch.load(io.BytesIO(blob), weights_only=True)
