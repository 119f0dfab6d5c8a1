"""The baseline a Spark user would reach for first: one MLlib `LogisticRegression` per task on the fused features.

Binary and multiclass tasks get one binomial / multinomial model; a multi-label task gets one binomial model per
label (binary relevance); a regression task gets a `LinearRegression`. The fitted models add the same MLlib-shaped
`<task>_prediction` / `_probability` / `_rawPrediction` columns as `MultiTaskModel`, so `MultiTaskEvaluator`
scores them like any other variant. They are deterministic, so the comparison fits them once.

The strongest baseline (opt-in, `evaluation.compare: [..., xgboost]`): gradient-boosted trees, one
`xgboost.spark.SparkXGBClassifier` per task (per label for multi-label; `SparkXGBRegressor` for regression), with the
settings of `evaluation.xgboost`, fitted once with the first model seed (see `wanderlens.evaluation.boosted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.regression import LinearRegression
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.config import LogisticConfig
from wanderlens.evaluation.comparison import LOGISTIC, Scores, score

Apply = Callable[[DataFrame], DataFrame]


def fit_logistic(train: DataFrame, tasks: Sequence[Any], features_col: str, settings: LogisticConfig) -> Apply:
    """One MLlib LogisticRegression per task (per label for multi-label; LinearRegression for regression).

    Returns a function adding MLlib-shaped `<t>_prediction/_probability/_rawPrediction` columns to a DataFrame.
    """
    kw = {"featuresCol": features_col, "regParam": float(settings.reg_param),
          "elasticNetParam": float(settings.elastic_net), "maxIter": int(settings.max_iter)}
    steps: list[Apply] = []
    for t in tasks:
        label = f"{t.name}_label"
        rows = train.where(F.col(label).isNotNull())
        if t.type == "regression":
            m = LinearRegression(labelCol=label, predictionCol=f"{t.name}_prediction", **kw).fit(rows)
            steps.append(m.transform)
        elif t.type in ("binary", "multiclass"):
            k = 2 if t.type == "binary" else len(t.classes)
            # Declaring the class count in the label's metadata keeps every class in the output vector.
            meta = {"ml_attr": {"type": "nominal", "num_vals": k, "name": label}}
            lab = F.col(label).alias(label, metadata=meta)
            m = LogisticRegression(labelCol=label, family="binomial" if k == 2 else "multinomial",
                                   predictionCol=f"{t.name}_prediction", probabilityCol=f"{t.name}_probability",
                                   rawPredictionCol=f"{t.name}_rawPrediction", **kw)
            steps.append(m.fit(rows.withColumn(label, lab)).transform)
        else:
            steps.append(_multilabel_logistic(rows, t, kw))

    def apply(df: DataFrame) -> DataFrame:
        for step in steps:
            df = step(df)
        return df
    return apply


def _multilabel_logistic(rows: DataFrame, task: Any, kw: dict[str, Any]) -> Apply:
    """Binary relevance: one binomial LogisticRegression per label, assembled into the multilabel columns."""
    label = f"{task.name}_label"
    models = []
    for k in range(len(task.classes)):
        y = F.array_contains(F.col(label), float(k)).cast("double")
        part = rows.withColumn("_y", y)
        if part.where(F.col("_y") == 1.0).limit(1).count() == 0:
            models.append(None)  # label never seen in training: always predicted absent
            continue
        models.append(LogisticRegression(labelCol="_y", predictionCol=f"_p{k}", probabilityCol=f"_prob{k}",
                                         rawPredictionCol=f"_raw{k}", **kw).fit(part))

    def apply(df: DataFrame) -> DataFrame:
        probs = []
        for k, m in enumerate(models):
            if m is None:
                probs.append(F.lit(0.0))
                continue
            df = m.transform(df)
            probs.append(vector_to_array(F.col(f"_prob{k}"))[1])
            df = df.drop(f"_p{k}", f"_raw{k}")
        return multilabel_columns(df, task.name, probs).drop(*[f"_prob{k}" for k in range(len(models))])
    return apply


def multilabel_columns(df: DataFrame, task_name: str, probs: Sequence[Any]) -> DataFrame:
    """The MLlib-shaped multilabel columns from one probability per label (binary relevance, threshold 0.5):
    `<t>_prediction` (array of label indices), `<t>_probability` and `<t>_rawPrediction` (the logits)."""
    df = df.withColumn("_probs", F.array(*probs))
    n = len(probs)
    pred = F.filter(F.array(*[F.when(F.col("_probs")[k] > 0.5, float(k)) for k in range(n)]),
                    lambda x: x.isNotNull())
    logit = F.transform(F.col("_probs"), lambda p: F.log(F.greatest(p, F.lit(1e-12)) /
                                                         F.greatest(1 - p, F.lit(1e-12))))
    return (df.withColumn(f"{task_name}_prediction", pred)
            .withColumn(f"{task_name}_probability", array_to_vector(F.col("_probs")))
            .withColumn(f"{task_name}_rawPrediction", array_to_vector(logit))
            .drop("_probs"))


def score_logistic(train: DataFrame, test: DataFrame, tasks: Sequence[Any], features_col: str,
                   settings: LogisticConfig, seed: int, scores: Scores) -> None:
    """Fit the LogisticRegression baseline on `train`, score it on `test` and record it under `seed`."""
    t0 = time.perf_counter()
    lr = fit_logistic(train, tasks, features_col, settings)
    scores.record(LOGISTIC, seed, score(lr(test), tasks), time.perf_counter() - t0)
