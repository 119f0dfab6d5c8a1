"""Training from a config file: the features folder + a `tasks`/`model`/`training` config -> a saved model.

Config sections (YAML/TOML; see configs/sample.yaml and docs/mtl.md):
`tasks` (optional list; default: the labels.json beside the features table), `model` (architecture and sizes),
`training` (weighting, optimiser, epochs, batch size, validation, early stopping, processes, checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from wanderlens.errors import ConfigError, InputError
from wanderlens.io import read_json
from wanderlens.mtl.estimator import MultiTaskClassifier, MultiTaskModel
from wanderlens.mtl.tasks import TaskSpec, parse_tasks

# Config key (snake_case) -> MultiTaskClassifier Param.
CONFIG_KEYS = {
    "features_cols": "featuresCols", "architecture": "architecture", "expert_hidden": "expertHidden",
    "tower_hidden": "towerHidden", "num_experts": "numExperts", "num_shared_experts": "numSharedExperts",
    "num_levels": "numLevels", "dropout": "dropout", "loss_weighting": "lossWeighting", "weighting": "lossWeighting",
    "gradnorm_alpha": "gradnormAlpha", "dwa_temperature": "dwaTemperature", "optimizer": "optimizer",
    "learning_rate": "learningRate", "lr": "learningRate", "weight_decay": "weightDecay", "epochs": "maxEpochs",
    "max_epochs": "maxEpochs", "batch_size": "batchSize", "validation_fraction": "validationFraction",
    "validation_indicator_col": "validationIndicatorCol", "patience": "patience", "monitor": "monitor",
    "class_weights": "classWeights", "seed": "seed", "num_processes": "numProcesses",
    "checkpoint_dir": "checkpointDir",
}


def estimator_params(config: dict[str, Any]) -> dict[str, Any]:
    """MultiTaskClassifier Params from the config's `model` and `training` sections (unknown keys are errors)."""
    params: dict[str, Any] = {}
    for section in ("model", "training"):
        body = config.get(section) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"config section {section!r} must be a mapping")
        for key, value in body.items():
            if key not in CONFIG_KEYS:
                raise ConfigError(f"config {section}.{key}: unknown key; known: {', '.join(sorted(CONFIG_KEYS))}")
            if value is not None:
                params[CONFIG_KEYS[key]] = value
    return params


def features_table(features_dir: str | Path) -> Path:
    """The features Parquet table of a `featurize` output folder (or the table folder itself)."""
    d = Path(features_dir)
    table = d / "features" if (d / "features").is_dir() else d
    if not table.is_dir():
        raise InputError(f"features table not found at {d}; pass the folder written by 'wanderlens featurize --out'")
    return table


def config_tasks(features_dir: str | Path, config: dict[str, Any]) -> list[TaskSpec]:
    """Tasks from the config's `tasks` list, else from labels.json beside (or in) the features table."""
    if config.get("tasks"):
        return parse_tasks(config["tasks"])
    d = Path(features_dir)
    for candidate in (d / "labels.json", features_table(d).parent / "labels.json"):
        if candidate.is_file():
            return TaskSpec.from_labels(read_json(candidate))
    raise InputError(f"no tasks: {d}/labels.json is missing and the config has no 'tasks' list")


def train_from_config(
    spark: SparkSession, features_dir: str | Path, config: dict[str, Any], out_dir: str | Path,
    progress: Callable[[dict[str, Any]], None] | None = None, df: DataFrame | None = None,
) -> MultiTaskModel:
    """Fit a MultiTaskClassifier on the features table as the config says, save it to `out_dir`, return it."""
    tasks = config_tasks(features_dir, config)
    params = estimator_params(config)
    data = df if df is not None else spark.read.parquet(str(features_table(features_dir)))
    est = MultiTaskClassifier(tasks=tasks, **params)
    est.setProgress(progress)
    model = est.fit(data)
    model.write().overwrite().save(str(out_dir))
    return model
