"""Hyperparameter search: `wanderlens tune` (optuna TPE, trials as Spark tasks) writes a loadable config and the
table of trials; MultiTaskClassifier works inside pyspark.ml.tuning's TrainValidationSplit / CrossValidator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from wanderlens.config import load_config, parse_config
from wanderlens.errors import ConfigError

TASKS = [{"name": "y", "type": "binary"}, {"name": "k", "type": "multiclass", "classes": ["a", "b", "c"]}]


def _table(spark, n: int = 240, seed: int = 0):
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    pdf = pd.DataFrame({"f": list(x), "y": (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(float),
                        "k": np.array(["a", "b", "c"])[np.argmax(x[:, 1:4], axis=1)],
                        "city": rng.choice(["x", "y"], n), "age": rng.uniform(20, 60, n)})
    return spark.createDataFrame(pdf).withColumn("features", array_to_vector(F.col("f"))).drop("f")


def test_space_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"tuning.*space key 'model.widths'"):
        parse_config({"tuning": {"space": {"model.widths": [1, 2]}}}, "c.yaml")
    with pytest.raises(ConfigError, match="fixed for a whole search"):
        parse_config({"tuning": {"space": {"model.numeric_cols": [["a"]]}}}, "c.yaml")
    with pytest.raises(ConfigError, match="low must be below high"):
        parse_config({"tuning": {"space": {"training.learning_rate": {"low": 1, "high": 0.1}}}}, "c.yaml")


def test_tune_command_writes_loadable_config_and_trials(spark, tmp_path) -> None:
    """Three tiny trials (a batch of two, then one) through the CLI: best.yaml loads, trials.csv has every trial."""
    import typer

    from wanderlens.cli.tune import register

    features = tmp_path / "features"
    _table(spark).write.parquet(str(features))
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({
        "tasks": TASKS,
        "model": {"categorical_cols": ["city"], "numeric_cols": ["age"], "expert_hidden": [8], "tower_hidden": [4]},
        "training": {"epochs": 2, "batch_size": 64},
        "tuning": {"trials": 3, "parallelism": 2, "seed": 1, "space": {
            "model.architecture": ["mmoe", "shared_bottom"],
            "model.expert_hidden": [[8], [16, 8]],
            "model.embedding_dim": {"low": 2, "high": 6},
            "training.learning_rate": {"low": 1e-3, "high": 3e-2, "log": True}}},
    }))
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    out = tmp_path / "tuned"
    app(args=["tune", "--features", str(features), "--config", str(config), "--out", str(out)],
        standalone_mode=False)

    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) == {"complete"}
    assert {"model.architecture", "training.learning_rate", "val_y", "val_k", "value"} <= set(trials.columns)
    assert np.allclose(trials["value"], (trials["val_y"] + trials["val_k"]) / 2)
    best = load_config(out / "best.yaml")
    row = trials.loc[trials["value"].idxmax()]
    assert best.model.architecture == row["model.architecture"]
    assert best.training.learning_rate == pytest.approx(row["training.learning_rate"])
    assert best.model.expert_hidden in ([8], [16, 8]) and 2 <= best.model.embedding_dim <= 6
    assert best.model.categorical_cols == ["city"] and best.training.epochs == 2
    assert not (out / "shards").exists()


def test_train_validation_split_and_cross_validator_pick_a_model(spark) -> None:
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    from wanderlens.evaluation import MultiTaskEvaluator
    from wanderlens.mtl import MultiTaskClassifier

    df = _table(spark, n=200, seed=3)
    est = MultiTaskClassifier(tasks=TASKS, expertHidden=[8], towerHidden=[4], maxEpochs=3, batchSize=64)
    grid = ParamGridBuilder().addGrid(est.learningRate, [1e-5, 3e-2]).build()
    evaluator = MultiTaskEvaluator(tasks=TASKS, metricName="y:areaUnderROC")
    tvs = TrainValidationSplit(estimator=est, estimatorParamMaps=grid, evaluator=evaluator, trainRatio=0.7, seed=0)
    model = tvs.fit(df)
    assert len(model.validationMetrics) == 2
    assert model.validationMetrics[1] > model.validationMetrics[0]  # 1e-5 barely moves from its initialisation
    assert model.bestModel.getOrDefault("learningRate") == pytest.approx(3e-2)
    out = model.transform(df)
    assert {"y_prediction", "y_probability", "k_prediction"} <= set(out.columns)
    assert evaluator.evaluate(out) > 0.8

    cv = CrossValidator(estimator=est, estimatorParamMaps=grid[1:], evaluator=evaluator, numFolds=2, seed=0)
    cv_model = cv.fit(df)
    assert len(cv_model.avgMetrics) == 1 and cv_model.avgMetrics[0] > 0.8
    assert cv_model.transform(df).where("k_prediction IS NULL").count() == 0
