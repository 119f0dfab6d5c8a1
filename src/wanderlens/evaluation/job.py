"""The comparison job behind `wanderlens evaluate`: trains every variant on one seeded split and writes the report.

Variants, all scored on the same test rows by `MultiTaskEvaluator`: the multi-task model on fused inputs; one
single-task model per task; the multi-task model on image-only and on text-only inputs (`variants`); and the
baseline a Spark user would reach for first, one MLlib `LogisticRegression` per task (`baselines`); opt-in, the
strongest baseline, gradient-boosted trees (`SparkXGBClassifier`) per task (`boosted`). The metrics are
summarised and compared (`comparison`) and drawn into report.html (`assembly`, `report`). Every setting comes from
the typed config (`WanderlensConfig`: the `evaluation` section, and `model` / `training` as `wanderlens train` reads
them). The job returns data; printing is the CLI's (`wanderlens.cli.evaluation`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.config import WanderlensConfig, param_name, parse_config
from wanderlens.errors import InputError
from wanderlens.evaluation.assembly import Outcome, data_summary, descriptions, first_seed_metrics, report_content
from wanderlens.evaluation.baselines import score_logistic
from wanderlens.evaluation.comparison import Scores, deltas, summarise
from wanderlens.evaluation.report import write_report
from wanderlens.evaluation.splits import DataSplitter, record_split, split_summary
from wanderlens.evaluation.variants import VALIDATION_COL, VariantRun, add_modality_inputs, train_variants
from wanderlens.io import write_json
from wanderlens.mtl.train import features_table, with_modality_blocks

# MultiTaskClassifier settings the comparison sets itself: the seed, the input column, the validation rows (its
# own split) and no checkpoints.
OWN_SETTINGS = {"seed", "features_cols", "validation_fraction", "validation_indicator_col", "checkpoint_dir"}


@dataclass
class EvaluationResult:
    """What `evaluate_job` wrote and the tables a front end shows."""

    report: Path
    out_dir: Path
    metrics: pd.DataFrame  # every metric of every variant and seed
    comparison: pd.DataFrame  # main metric per task and variant, mean and std over seeds
    deltas: pd.DataFrame  # Δm of each comparison pair
    seconds: float


@dataclass
class _Prepared:
    """The labelled, split features with the single-modality inputs, cached, and what describes them."""

    df: DataFrame
    tasks: list[Any]
    splitter: DataSplitter
    modality_cols: dict[str, str]


def model_params(config: WanderlensConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """MultiTaskClassifier Params from the `model` and `training` sections less `OWN_SETTINGS`, and the subset the
    config sets explicitly (shown in the report; the rest are the defaults)."""
    params = config.estimator_params(exclude=OWN_SETTINGS)
    explicit = {param_name(k) for k in config.model.model_fields_set | config.training.model_fields_set}
    return params, {k: v for k, v in params.items() if k in explicit}


def _prepare(spark: SparkSession, features_dir: Path, config: WanderlensConfig) -> _Prepared:
    """Read the features, index the labels, split, add the single-modality inputs; keep only the columns used."""
    from wanderlens.mtl.data import infer_classes
    from wanderlens.mtl.tasks import index_labels
    from wanderlens.mtl.train import config_tasks

    cfg = config.evaluation
    raw = spark.read.parquet(str(features_table(features_dir)))
    tasks = infer_classes(raw, config_tasks(features_dir, config))
    fcol = cfg.features_col
    if fcol not in raw.columns:
        raise InputError(f"features column {fcol!r} missing from {features_dir}; set evaluation.features_col")
    splitter = DataSplitter(by=cfg.split.by, seed=cfg.split.seed, fractions=list(cfg.split.fractions),
                            splitCol=cfg.split.column or "")
    df = splitter.transform(index_labels(raw, tasks)).withColumn(VALIDATION_COL, F.col("split") == "validation")
    modality_cols: dict[str, str] = {}
    if "modality" in cfg.compare:
        df, modality_cols = add_modality_inputs(df, features_dir, cfg.modalities)
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "description") if c in df.columns]
    keep += [f"{t.name}_label" for t in tasks] + [t.label_col for t in tasks if t.label_col not in keep]
    keep += [fcol, *modality_cols.values(), "split", VALIDATION_COL]
    return _Prepared(df.select(*dict.fromkeys(keep)).cache(), tasks, splitter, modality_cols)


def _save_tables(out: Path, outcome: Outcome, main_model: Any, splitter: DataSplitter) -> None:
    """OUT/model (with its split), split.json, metrics.csv, comparison.csv, deltas.csv and metrics.json."""
    split_info = outcome.data_summary["split"]
    metrics = outcome.scores.metrics()
    main_model.write().overwrite().save(str(out / "model"))
    record_split(splitter, split_info, out / "model")
    write_json(split_info, out / "split.json")
    metrics.to_csv(out / "metrics.csv", index=False)
    (out / "metrics.partial.csv").unlink(missing_ok=True)
    outcome.comparison.to_csv(out / "comparison.csv", index=False)
    outcome.deltas.to_csv(out / "deltas.csv", index=False)
    first = first_seed_metrics(metrics, outcome.seeds[0])
    write_json({"tasks": [t.to_dict() for t in outcome.tasks], "metrics": first.to_dict("records"),
                "comparison": outcome.comparison.to_dict("records"), "deltas": outcome.deltas.to_dict("records")},
               out / "metrics.json")


def evaluate_job(spark: SparkSession, features_dir: str | Path, config: WanderlensConfig | dict[str, Any] | None,
                 out_dir: str | Path, travel_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """Train and compare every variant on one seeded split and write OUT/report.html; return the tables.

    Also writes OUT/metrics.csv (every metric of every variant and seed), OUT/comparison.csv, OUT/deltas.csv,
    OUT/metrics.json, OUT/model (the first seed's multi-task model, its split recorded beside it) and OUT/split.json.
    `progress` is called with a short message at each step (the CLI shows it).
    """
    t_start = time.perf_counter()
    notify = progress or (lambda _msg: None)
    config = parse_config(config)
    cfg = config.evaluation
    features_dir = Path(str(features_dir).removeprefix("file://")).resolve()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = _prepare(spark, features_dir, config)
    notify("splitting and summarising the data")
    split_info = split_summary(data.df, data.splitter)
    if split_info["counts"]["test"]["rows"] == 0 or split_info["counts"]["train"]["rows"] == 0:
        fix = (f"the column {cfg.split.column!r} needs train and test rows" if cfg.split.column
               else "use more data or other fractions")
        raise InputError(f"split {split_info['counts']}: train or test is empty; {fix}")
    summary = data_summary(data.df, data.tasks, features_dir, Path(cfg.photos_dir) if cfg.photos_dir else None)
    summary["split"] = split_info
    test = data.df.where(F.col("split") == "test").cache()
    params, explicit = model_params(config)
    params = with_modality_blocks(params, features_dir, config, features_col=cfg.features_col)
    scores = Scores()
    # The baselines first (fitted once): a setting or data problem in them shows before the long network fits.
    if "logistic" in cfg.compare:
        notify("MLlib LogisticRegression per task on fused inputs (deterministic: fitted once)")
        score_logistic(data.df.where(F.col("split") == "train"), test, data.tasks, cfg.features_col, cfg.logistic,
                       cfg.seeds[0], scores)
    if "xgboost" in cfg.compare:
        from wanderlens.evaluation.boosted import score_xgboost

        score_xgboost(data.df.where(F.col("split") == "train"), test, data.tasks, cfg.features_col, cfg.xgboost,
                      cfg.seeds[0], scores, notify)
    run = VariantRun(data.df.where(F.col("split") != "test"), test, data.tasks, cfg.features_col, params, notify)
    main_model, main_preds = train_variants(run, cfg.seeds, "single_task" in cfg.compare, data.modality_cols,
                                            scores, out / "metrics.partial.csv")
    metrics = scores.metrics()
    outcome = Outcome(features_dir, data.tasks, list(cfg.seeds), explicit, scores, summarise(metrics),
                      deltas(metrics), summary)
    notify("saving the model and the split, drawing the report")
    _save_tables(out, outcome, main_model, data.splitter)
    content = report_content(outcome, main_model, main_preds, cfg.gallery, descriptions(spark, travel_dir))
    path = write_report(content, out)
    main_preds.unpersist()
    test.unpersist()
    data.df.unpersist()
    return EvaluationResult(path, out, metrics, outcome.comparison, outcome.deltas, time.perf_counter() - t_start)
