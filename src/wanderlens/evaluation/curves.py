"""Data behind the report's plots, aggregated by Spark: only small summaries reach the driver.

ROC and PR curves come from score histograms (one-vs-rest per class for multiclass, per label for multilabel),
reliability diagrams and ECE from probability bins, confusion matrices from (label, prediction) counts, and
per-label F1 from MLlib's `MultilabelClassificationEvaluator` (`f1MeasureByLabel`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.evaluation.evaluator import EvalTask, labelled_rows

SCORE_BINS = 1000


@dataclass
class Curve:
    """One ROC and PR curve (one class or label of a task), with the AUC of the binned curve."""

    name: str
    fpr: np.ndarray
    tpr: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    positives: int
    auc: float


def _positives_expr(task: EvalTask, k: int) -> F.Column:
    label = F.col(f"{task.name}_label")
    if task.type == "multilabel":
        return F.array_contains(label, float(k)).cast("int")
    return (label == float(k)).cast("int")


def score_curves(df: DataFrame, task: EvalTask, bins: int = SCORE_BINS) -> list[Curve]:
    """ROC/PR curves per class (binary: the positive class only) from `t_probability`, binned to `bins` scores."""
    part = labelled_rows(df, task)
    classes = list(task.classes)
    ks = [1] if task.type == "binary" else list(range(len(classes)))
    prob = vector_to_array(F.col(f"{task.name}_probability"))
    exploded = part.select(F.explode(F.array(*[
        F.struct(F.lit(k).alias("k"), prob[k].alias("s"), _positives_expr(task, k).alias("y")) for k in ks
    ])).alias("e")).select("e.*")
    hist = (exploded.withColumn("b", F.least(F.floor(F.col("s") * bins), F.lit(bins - 1)).cast("int"))
            .groupBy("k", "b").agg(F.sum("y").alias("pos"), F.sum(1 - F.col("y")).alias("neg")).toPandas())
    curves = []
    for k in ks:
        h = hist[hist["k"] == k].sort_values("b", ascending=False)
        pos, neg = h["pos"].to_numpy(float), h["neg"].to_numpy(float)
        tp, fp = np.concatenate([[0.0], np.cumsum(pos)]), np.concatenate([[0.0], np.cumsum(neg)])
        p_total, n_total = tp[-1], fp[-1]
        if p_total == 0 or n_total == 0:
            continue
        tpr, fpr = tp / p_total, fp / n_total
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        name = classes[k] if k < len(classes) else str(k)
        curves.append(Curve(name, fpr, tpr, tpr, precision, int(p_total), float(np.trapezoid(tpr, fpr))))
    return curves


@dataclass
class Reliability:
    """Reliability diagram of a binary task: per probability bin, mean confidence, observed rate and count."""

    confidence: np.ndarray
    observed: np.ndarray
    count: np.ndarray
    ece: float


def reliability(df: DataFrame, task: EvalTask, bins: int = 10) -> Reliability:
    """Reliability bins and expected calibration error (ECE = Σ_b n_b/N |observed_b - confidence_b|)."""
    p1 = vector_to_array(F.col(f"{task.name}_probability"))[1]
    agg = (labelled_rows(df, task).select(p1.alias("p"), F.col(f"{task.name}_label").alias("y"))
           .withColumn("b", F.least(F.floor(F.col("p") * bins), F.lit(bins - 1)).cast("int"))
           .groupBy("b").agg(F.avg("p").alias("conf"), F.avg("y").alias("obs"), F.count(F.lit(1)).alias("n"))
           .orderBy("b").toPandas())
    n = agg["n"].to_numpy(float)
    conf, obs = agg["conf"].to_numpy(float), agg["obs"].to_numpy(float)
    ece = float(np.sum(n / n.sum() * np.abs(obs - conf))) if n.sum() else float("nan")
    return Reliability(conf, obs, n.astype(int), ece)


def confusion_matrix(df: DataFrame, task: EvalTask) -> np.ndarray:
    """Counts [true class, predicted class] of a multiclass task on its labelled rows."""
    k = len(task.classes)
    counts = (labelled_rows(df, task).groupBy(F.col(f"{task.name}_label").cast("int").alias("y"),
                                              F.col(f"{task.name}_prediction").cast("int").alias("p"))
              .count().collect())
    m = np.zeros((k, k), dtype=int)
    for r in counts:
        if 0 <= r["y"] < k and 0 <= r["p"] < k:
            m[r["y"], r["p"]] = r["count"]
    return m


def per_label_f1(df: DataFrame, task: EvalTask) -> dict[str, float]:
    """F1 of every label of a multilabel task on its labelled rows, from per-label TP/FP/FN counts.

    Same definition as MLlib's `f1MeasureByLabel` (2·TP / (2·TP + FP + FN)), which raises on a label with no true
    positive; here such a label gets F1 0 (or NaN when it never occurs in labels or predictions).
    """
    y, p = F.col(f"{task.name}_label"), F.col(f"{task.name}_prediction")
    aggs = []
    for k in range(len(task.classes)):
        in_y, in_p = F.array_contains(y, float(k)), F.coalesce(F.array_contains(p, float(k)), F.lit(False))
        aggs += [F.sum((in_y & in_p).cast("long")).alias(f"tp{k}"), F.sum((~in_y & in_p).cast("long")).alias(f"fp{k}"),
                 F.sum((in_y & ~in_p).cast("long")).alias(f"fn{k}")]
    r = labelled_rows(df, task).agg(*aggs).first()
    out = {}
    for k, name in enumerate(task.classes):
        tp, fp, fn = (int(r[f"{c}{k}"] or 0) for c in ("tp", "fp", "fn"))
        out[name] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return out
