"""The strongest baseline of the report: gradient-boosted trees on Spark, one model per task.

`xgboost.spark.SparkXGBClassifier` (the `xgboost-cpu` package) on the fused features: one model per binary or
multiclass task, one binary model per label of a multi-label task (binary relevance, as the LogisticRegression
baseline), `SparkXGBRegressor` for regression. Settings come from the typed `evaluation.xgboost` section. The
fitted models add the same MLlib-shaped `<task>_prediction` / `_probability` / `_rawPrediction` columns as
`MultiTaskModel`, so `MultiTaskEvaluator` scores them on the same test rows as every other variant.

XGBoost numbers the classes it saw (0..k-1): a multiclass task whose training rows miss some classes is trained on
the classes present and its outputs are widened back to every class (probability 0 for the unseen ones); a task or
label with a single class in training is predicted as that class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from wanderlens.config import XGBoostConfig
from wanderlens.evaluation.baselines import Apply, multilabel_columns
from wanderlens.evaluation.comparison import XGBOOST, Scores, score

_Y = "_xgb_y"


def _settings(settings: XGBoostConfig, features_col: str, seed: int) -> dict[str, Any]:
    """SparkXGB* keyword arguments from the typed section."""
    kw: dict[str, Any] = {"features_col": features_col, "max_depth": settings.max_depth,
                          "n_estimators": settings.n_estimators, "learning_rate": settings.learning_rate,
                          "min_child_weight": settings.min_child_weight, "subsample": settings.subsample,
                          "colsample_bytree": settings.colsample_bytree, "reg_lambda": settings.reg_lambda,
                          "tree_method": settings.tree_method, "num_workers": settings.num_workers,
                          "random_state": seed, "verbosity": 0}
    if settings.sparse:
        kw.update(enable_sparse_data_optim=True, missing=0.0)
    return kw


def _classifier(rows: DataFrame, label: Column, out: str, kw: dict[str, Any]) -> Callable[[DataFrame], DataFrame]:
    """One SparkXGBClassifier fitted on `rows` with target `label` (0..k-1); its transform writes `out` columns."""
    from xgboost.spark import SparkXGBClassifier

    est = SparkXGBClassifier(label_col=_Y, prediction_col=f"{out}_p", probability_col=f"{out}_prob",
                             raw_prediction_col=f"{out}_raw", **kw)
    return est.fit(rows.withColumn(_Y, label)).transform


def _present(rows: DataFrame, label: str) -> list[float]:
    return sorted(float(r[0]) for r in rows.select(label).distinct().collect())


def _one_hot(k: int, n: int) -> Column:
    return array_to_vector(F.array(*[F.lit(1.0 if i == k else 0.0) for i in range(n)]))


def _single_label(rows: DataFrame, task: Any, kw: dict[str, Any]) -> Apply:
    """A binary or multiclass task: one classifier on the classes present in training, widened to every class."""
    label, name = f"{task.name}_label", task.name
    n = 2 if task.type == "binary" else len(task.classes)
    present = _present(rows, label)
    if len(present) == 1:
        only = int(present[0])
        return lambda df: (df.withColumn(f"{name}_prediction", F.lit(float(only)))
                           .withColumn(f"{name}_probability", _one_hot(only, n))
                           .withColumn(f"{name}_rawPrediction", _one_hot(only, n)))
    index = {c: float(i) for i, c in enumerate(present)}
    dense = present == [float(i) for i in range(n)]
    target = F.col(label) if dense else F.create_map(*[F.lit(x) for kv in index.items() for x in kv])[F.col(label)]
    model = _classifier(rows, target, "_xgb", kw)

    def apply(df: DataFrame) -> DataFrame:
        df = model(df)
        if dense:
            return (df.withColumnRenamed("_xgb_p", f"{name}_prediction")
                    .withColumnRenamed("_xgb_prob", f"{name}_probability")
                    .withColumnRenamed("_xgb_raw", f"{name}_rawPrediction"))
        prob = vector_to_array(F.col("_xgb_prob"))
        full = [prob[int(index[float(k)])] if float(k) in index else F.lit(0.0) for k in range(n)]
        back = F.array(*[F.lit(c) for c in present])[F.col("_xgb_p").cast("int")]
        return (df.withColumn(f"{name}_prediction", back)
                .withColumn(f"{name}_probability", array_to_vector(F.array(*full)))
                .withColumn(f"{name}_rawPrediction", array_to_vector(F.array(
                    *[F.log(F.greatest(p, F.lit(1e-12))) for p in full])))
                .drop("_xgb_p", "_xgb_prob", "_xgb_raw"))
    return apply


def _multilabel(rows: DataFrame, task: Any, kw: dict[str, Any]) -> Apply:
    """Binary relevance: one binary classifier per label, assembled into the multilabel columns."""
    label = f"{task.name}_label"
    models: list[Callable[[DataFrame], DataFrame] | float] = []
    total = rows.count()
    for k in range(len(task.classes)):
        y = F.array_contains(F.col(label), float(k)).cast("double")
        positives = rows.where(y == 1.0).count()
        if positives in (0, total):
            models.append(float(positives > 0))  # one class only in training: that class, always
            continue
        models.append(_classifier(rows, y, f"_xgb{k}", kw))

    def apply(df: DataFrame) -> DataFrame:
        probs: list[Column] = []
        for k, m in enumerate(models):
            if isinstance(m, float):
                probs.append(F.lit(m))
                continue
            df = m(df).drop(f"_xgb{k}_p", f"_xgb{k}_raw")
            probs.append(vector_to_array(F.col(f"_xgb{k}_prob"))[1])
        out = multilabel_columns(df, task.name, probs)
        return out.drop(*[f"_xgb{k}_prob" for k in range(len(models))])
    return apply


def fit_xgboost(train: DataFrame, tasks: Sequence[Any], features_col: str, settings: XGBoostConfig, seed: int,
                notify: Callable[[str], None] | None = None) -> Apply:
    """One SparkXGB model per task (per label for multi-label) on the rows labelled for it.

    Returns a function adding MLlib-shaped `<t>_prediction/_probability/_rawPrediction` columns to a DataFrame.
    """
    from xgboost.spark import SparkXGBRegressor

    # xgboost.spark logs every fit's parameters at INFO on stderr; keep the terminal to our progress lines unless
    # the user configured that logger.
    log = logging.getLogger("XGBoost-PySpark")
    if log.level == logging.NOTSET:
        log.setLevel(logging.WARNING)
    kw = _settings(settings, features_col, seed)
    steps: list[Apply] = []
    for t in tasks:
        if notify:
            notify(f"XGBoost (SparkXGBClassifier) for {t.name} ({t.type})")
        label = f"{t.name}_label"
        rows = train.where(F.col(label).isNotNull()).cache()
        if t.type == "regression":
            steps.append(SparkXGBRegressor(label_col=label, prediction_col=f"{t.name}_prediction", **kw)
                         .fit(rows).transform)
        elif t.type == "multilabel":
            steps.append(_multilabel(rows, t, kw))
        else:
            steps.append(_single_label(rows, t, kw))
        rows.unpersist()

    def apply(df: DataFrame) -> DataFrame:
        for step in steps:
            df = step(df)
        return df
    return apply


def score_xgboost(train: DataFrame, test: DataFrame, tasks: Sequence[Any], features_col: str,
                  settings: XGBoostConfig, seed: int, scores: Scores,
                  notify: Callable[[str], None] | None = None) -> None:
    """Fit the XGBoost baseline on `train`, score it on `test` and record it under `seed`."""
    t0 = time.perf_counter()
    model = fit_xgboost(train, tasks, features_col, settings, seed, notify)
    scores.record(XGBOOST, seed, score(model(test), tasks), time.perf_counter() - t0)
