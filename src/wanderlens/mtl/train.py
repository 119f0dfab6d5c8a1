"""Training from a config: the features folder + a `WanderlensConfig` -> a saved model.

Reads the config's `tasks` (optional list; default: the labels.json beside the features table), `model`
(architecture and sizes) and `training` (weighting, optimiser, epochs, ...) sections; `wanderlens.config` owns
every setting, its type and its default (docs/mtl.md lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from wanderlens.config import WanderlensConfig, parse_config
from wanderlens.errors import InputError
from wanderlens.io import read_json
from wanderlens.mtl.estimator import MultiTaskClassifier, MultiTaskModel
from wanderlens.mtl.tasks import TaskSpec, parse_tasks


def features_table(features_dir: str | Path) -> Path:
    """The features Parquet table of a `featurize` output folder (or the table folder itself)."""
    d = Path(features_dir)
    table = d / "features" if (d / "features").is_dir() else d
    if not table.is_dir():
        raise InputError(f"features table not found at {d}; pass the folder written by 'wanderlens featurize --out'")
    return table


def config_tasks(features_dir: str | Path, config: WanderlensConfig | dict[str, Any] | None) -> list[TaskSpec]:
    """Tasks from the config's `tasks` list, else from labels.json beside (or in) the features table."""
    cfg = parse_config(config)
    if cfg.tasks:
        return parse_tasks(cfg.tasks)
    d = Path(features_dir)
    for candidate in (d / "labels.json", features_table(d).parent / "labels.json"):
        if candidate.is_file():
            return TaskSpec.from_labels(read_json(candidate))
    raise InputError(f"no tasks: {d}/labels.json is missing and the config has no 'tasks' list")


def with_modality_blocks(params: dict[str, Any], features_dir: str | Path, cfg: WanderlensConfig,
                         features_col: str | None = None) -> dict[str, Any]:
    """`params` with `modalityBlocks` read from the featurize run's fitted ModalityFusion, when modality dropout is
    on, the config names no blocks and the model reads only that fusion's output column (`features_col`, else
    `params["featuresCols"]`); else `params` unchanged."""
    if not params.get("modalityDropout") or params.get("modalityBlocks"):
        return params
    from wanderlens.features.fusion import fitted_fusion

    fusion = fitted_fusion(features_table(features_dir).parent)
    cols = [features_col] if features_col else list(params.get("featuresCols", []))
    if fusion is None or cols != [fusion.getOutputCol()]:
        return params  # the estimator names what is missing
    groups = {name: (m.columns, m.presence) for name, m in cfg.evaluation.modalities.items()}
    return {**params, "modalityBlocks": fusion.modality_blocks(groups)}


def train_from_config(
    spark: SparkSession, features_dir: str | Path, config: WanderlensConfig | dict[str, Any] | None,
    out_dir: str | Path, progress: Callable[[dict[str, Any]], None] | None = None, df: DataFrame | None = None,
) -> MultiTaskModel:
    """Fit a MultiTaskClassifier on the features table as the config says, save it to `out_dir`, return it.

    `config` is a `WanderlensConfig` (from `wanderlens.config.load_config`) or a plain mapping of its sections.
    """
    cfg = parse_config(config)
    tasks = config_tasks(features_dir, cfg)
    params = with_modality_blocks(cfg.estimator_params(), features_dir, cfg)
    data = df if df is not None else spark.read.parquet(str(features_table(features_dir)))
    est = MultiTaskClassifier(tasks=tasks, **params)
    est.setProgress(progress)
    model = est.fit(data)
    model.write().overwrite().save(str(out_dir))
    return model
