"""No-Spark inference: a saved `MultiTaskModel` as a plain torch module, for the REST service and batch code.

`MultiTaskModel.transform` runs this same class inside its Arrow UDF, so both paths give identical numbers.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from wanderlens.errors import InputError
from wanderlens.io import read_ml_metadata
from wanderlens.mtl.architectures import build_network
from wanderlens.mtl.tasks import TaskSpec, parse_tasks
from wanderlens.persistence import read_record_local

_CACHE: dict[str, LocalMultiTaskModel] = {}


class LocalMultiTaskModel:
    """A trained multi-task network with its task list: `predict` maps a feature matrix to per-task outputs."""

    def __init__(self, tasks: list[TaskSpec], arch: dict[str, Any], input_dim: int, state: dict[str, Any]) -> None:
        self.tasks = parse_tasks(tasks)
        self.arch = dict(arch)
        self.input_dim = int(input_dim)
        self.net = build_network(self.arch, self.input_dim, [t.num_outputs for t in self.tasks])
        self.net.load_state_dict(state)
        self.net.double().eval()

    @staticmethod
    def from_bytes(meta_json: str, weights: bytes) -> LocalMultiTaskModel:
        """Build from the persisted metadata JSON and serialised state dict."""
        meta = json.loads(meta_json)
        state = torch.load(io.BytesIO(weights), weights_only=True)
        return LocalMultiTaskModel(meta["tasks"], meta["arch"], meta["input_dim"], state)

    @staticmethod
    def load(model_dir: str) -> LocalMultiTaskModel:
        """Load a saved MultiTaskModel folder, or the MultiTaskModel stage inside a saved PipelineModel folder."""
        row = read_record_local(_find_model_dir(str(model_dir)))
        return LocalMultiTaskModel.from_bytes(row["meta"], row["weights"])

    def raw_outputs(self, features: np.ndarray) -> list[np.ndarray]:
        """Network outputs per task (logits; values for regression) as float64 arrays."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise InputError(f"features must be rows of length {self.input_dim}, got shape {tuple(x.shape)}")
        # Computed in float64 and rounded to float32: the result no longer depends on batch size or thread
        # count (BLAS reduction order), so this and the Spark UDF give identical numbers.
        with torch.no_grad():
            outs = self.net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)))
        outs = [o.float() for o in outs]
        return [o.double().numpy() for o in outs]

    def predict_full(self, features: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Per task: `prediction`, `probability` and `rawPrediction` arrays shaped as the Spark output columns."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for t, z in zip(self.tasks, self.raw_outputs(features), strict=True):
            if t.type == "binary":
                p = 1.0 / (1.0 + np.exp(-z[:, 0]))
                out[t.name] = {
                    "rawPrediction": np.stack([-z[:, 0], z[:, 0]], axis=1),
                    "probability": np.stack([1.0 - p, p], axis=1),
                    "prediction": (p > 0.5).astype(np.float64),
                }
            elif t.type == "multiclass":
                e = np.exp(z - z.max(axis=1, keepdims=True))
                prob = e / e.sum(axis=1, keepdims=True)
                out[t.name] = {"rawPrediction": z, "probability": prob,
                               "prediction": prob.argmax(axis=1).astype(np.float64)}
            elif t.type == "multilabel":
                prob = 1.0 / (1.0 + np.exp(-z))
                out[t.name] = {"rawPrediction": z, "probability": prob,
                               "prediction": [np.flatnonzero(r > 0.5).astype(np.float64) for r in prob]}
            else:
                out[t.name] = {"rawPrediction": z, "probability": z, "prediction": z[:, 0].copy()}
        return out

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per task the probabilities (binary: [n, 2]; multiclass: softmax; multilabel: per-class sigmoid;
        regression: the predicted value, [n, 1])."""
        return {name: v["probability"] for name, v in self.predict_full(features).items()}


def cached_model(key: str, meta_json: str, weights: bytes) -> LocalMultiTaskModel:
    """One model per Python worker and key: built at the first Arrow batch, reused after."""
    model = _CACHE.get(key)
    if model is None:
        model = _CACHE[key] = LocalMultiTaskModel.from_bytes(meta_json, weights)
    return model


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch using `n` intra-op threads, restoring the previous count afterwards.

    Small multi-task networks run fastest on one thread (more threads spin on a busy host); scoping the setting
    keeps a library call from changing the process-wide thread count of its caller.
    """
    previous = torch.get_num_threads()
    if n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
