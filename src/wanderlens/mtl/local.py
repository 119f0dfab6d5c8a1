"""No-Spark inference: a saved `MultiTaskModel` as a plain torch module, for the REST service and batch code.

`MultiTaskModel.transform` runs this same class inside its Arrow UDF, so both paths give identical numbers.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np
import torch

from wanderlens.errors import InputError
from wanderlens.io import read_ml_metadata
from wanderlens.mtl.architectures import build_network
from wanderlens.mtl.tasks import TaskSpec, parse_tasks
from wanderlens.persistence import read_record_local
from wanderlens.worker_heap import load_once

_CACHE: dict[str, LocalMultiTaskModel] = {}


class LocalMultiTaskModel:
    """A trained multi-task network with its task list: `predict` maps a feature matrix to per-task outputs.

    `state` is a network state dict, or the fitted weights as `run_training` gives them (`{"states": [...],
    "task_state": [...]}`: per-task selection, one state per distinct best epoch), or a seed ensemble of those
    (`{"members": [...]}`). The network runs once per distinct state; each task reads its outputs from its own
    state; an ensemble averages the members' probabilities. `calibration` (per task name: `temperature`,
    `threshold`, learned on the validation rows) scales the probabilities and sets the decision thresholds.
    """

    def __init__(self, tasks: list[TaskSpec], arch: dict[str, Any], input_dim: int, state: dict[str, Any],
                 calibration: dict[str, dict[str, Any]] | None = None) -> None:
        self.tasks = parse_tasks(tasks)
        self.arch = dict(arch)
        self.input_dim = int(input_dim)
        self.calibration = dict(calibration or {})
        members = state["members"] if "members" in state else [state]
        self.members: list[tuple[list[torch.nn.Module], list[int]]] = []
        for member in members:
            states = member["states"] if "states" in member else [member]
            task_state = list(member.get("task_state", [0] * len(self.tasks)))
            nets = []
            for sd in states:
                net = build_network(self.arch, self.input_dim, [t.num_outputs for t in self.tasks])
                net.load_state_dict(sd)
                nets.append(net.double().eval())
            self.members.append((nets, task_state))
        self.net = self.members[0][0][0]

    @staticmethod
    def from_bytes(meta_json: str, weights: bytes) -> LocalMultiTaskModel:
        """Build from the persisted metadata JSON and serialised weights."""
        meta = json.loads(meta_json)
        state = torch.load(io.BytesIO(weights), weights_only=True)
        return LocalMultiTaskModel(meta["tasks"], meta["arch"], meta["input_dim"], state, meta.get("calibration"))

    @staticmethod
    def load(model_dir: str) -> LocalMultiTaskModel:
        """Load a saved MultiTaskModel folder, or the MultiTaskModel stage inside a saved PipelineModel folder."""
        row = read_record_local(_find_model_dir(str(model_dir)))
        return LocalMultiTaskModel.from_bytes(row["meta"], row["weights"])

    def member_outputs(self, features: np.ndarray) -> list[list[np.ndarray]]:
        """Per ensemble member, per task, the network's raw outputs (float32 values as float64 arrays)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise InputError(f"features must be rows of length {self.input_dim}, got shape {tuple(x.shape)}")
        # Computed in float64 and rounded to float32: the result no longer depends on batch size or thread
        # count (BLAS reduction order), so this and the Spark UDF give identical numbers.
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        out = []
        with torch.no_grad():
            for nets, task_state in self.members:
                runs = [[o.float().double().numpy() for o in net(xt)] for net in nets]
                out.append([runs[s][i] for i, s in enumerate(task_state)])
        return out

    def raw_outputs(self, features: np.ndarray) -> list[np.ndarray]:
        """Outputs per task before calibration: logits (values for regression); for an ensemble, the logits of
        the members' mean probabilities (log-probabilities for multiclass)."""
        members = self.member_outputs(features)
        if len(members) == 1:
            return members[0]
        return [_mean_logits(t.type, [m[i] for m in members]) for i, t in enumerate(self.tasks)]

    def predict_full(self, features: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Per task: `prediction`, `probability` and `rawPrediction` arrays shaped as the Spark output columns."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for t, z in zip(self.tasks, self.raw_outputs(features), strict=True):
            cal = self.calibration.get(t.name, {})
            if t.type in ("binary", "multiclass"):
                z = z / float(cal.get("temperature", 1.0))
            threshold = cal.get("threshold", 0.5)
            if t.type == "binary":
                p = 1.0 / (1.0 + np.exp(-z[:, 0]))
                out[t.name] = {
                    "rawPrediction": np.stack([-z[:, 0], z[:, 0]], axis=1),
                    "probability": np.stack([1.0 - p, p], axis=1),
                    "prediction": (p > threshold).astype(np.float64),
                }
            elif t.type == "multiclass":
                e = np.exp(z - z.max(axis=1, keepdims=True))
                prob = e / e.sum(axis=1, keepdims=True)
                out[t.name] = {"rawPrediction": z, "probability": prob,
                               "prediction": prob.argmax(axis=1).astype(np.float64)}
            elif t.type == "multilabel":
                prob = 1.0 / (1.0 + np.exp(-z))
                thr = np.asarray(threshold, dtype=np.float64)
                out[t.name] = {"rawPrediction": z, "probability": prob,
                               "prediction": [np.flatnonzero(r > thr).astype(np.float64) for r in prob]}
            else:
                out[t.name] = {"rawPrediction": z, "probability": z, "prediction": z[:, 0].copy()}
        return out

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per task the probabilities (binary: [n, 2]; multiclass: softmax; multilabel: per-class sigmoid;
        regression: the predicted value, [n, 1])."""
        return {name: v["probability"] for name, v in self.predict_full(features).items()}


def _mean_logits(task_type: str, outputs: list[np.ndarray]) -> np.ndarray:
    """The logits of the mean of the members' probabilities (the mean value for regression)."""
    if task_type == "multiclass":
        probs = []
        for z in outputs:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            probs.append(e / e.sum(axis=1, keepdims=True))
        return np.log(np.clip(np.mean(probs, axis=0), 1e-300, None))
    if task_type in ("binary", "multilabel"):
        p = np.clip(np.mean([1.0 / (1.0 + np.exp(-z)) for z in outputs], axis=0), 1e-15, 1 - 1e-15)
        return np.log(p) - np.log1p(-p)
    return np.mean(outputs, axis=0)


def cached_model(key: str, meta_json: str, weights: bytes) -> LocalMultiTaskModel:
    """One model per Python worker and key: built at the first Arrow batch, reused after."""
    return load_once(_CACHE, key, lambda: LocalMultiTaskModel.from_bytes(meta_json, weights))


def _find_model_dir(path: str) -> str:
    try:
        if read_ml_metadata(path)["class"].endswith("MultiTaskModel"):
            return path
    except InputError:
        pass
    stages = os.path.join(path, "stages")
    if os.path.isdir(stages):
        for name in sorted(os.listdir(stages)):
            try:
                return _find_model_dir(os.path.join(stages, name))
            except InputError:
                continue
    raise InputError(f"{path}: no saved MultiTaskModel here (expected a model or PipelineModel folder)")
