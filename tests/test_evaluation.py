"""MultiTaskEvaluator, Δm, splits and the plot summaries, on hand-made MLlib-shaped prediction tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
    MultilabelClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.errors import ConfigError, InputError
from wanderlens.evaluation import DataSplitter, EvalTask, MultiTaskEvaluator, delta_m, relative_changes
from wanderlens.evaluation.curves import confusion_matrix, per_label_f1, reliability, score_curves

TASKS = [
    {"name": "highlight", "type": "binary"},
    {"name": "scene", "type": "multiclass", "classes": ["beach", "city", "forest"]},
    {"name": "attributes", "type": "multilabel", "classes": ["water", "people", "trees"]},
    {"name": "rating", "type": "regression"},
]
N = 240


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def preds(spark):
    """A prediction table with every task's MLlib-shaped columns, informative scores and some null labels."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N):
        y_b = float(rng.integers(0, 2))
        z = rng.normal(1.2 * (2 * y_b - 1), 1.0)
        p1 = 1 / (1 + math.exp(-z))
        y_c = int(rng.integers(0, 3))
        logits = rng.normal(0, 1, 3)
        logits[y_c] += 1.5
        pc = _softmax(logits)
        y_m = [float(k) for k in range(3) if rng.random() < 0.4]
        pm = [float(np.clip((k in y_m) * 0.5 + rng.random() * 0.6, 0, 1)) for k in range(3)]
        y_r = float(rng.normal(3, 1))
        rows.append({
            "photo_id": f"p{i}", "user_id": f"u{i % 17}",
            "highlight_label": None if i % 7 == 0 else y_b,
            "highlight_prediction": float(p1 > 0.5),
            "highlight_probability": Vectors.dense([1 - p1, p1]),
            "highlight_rawPrediction": Vectors.dense([-z, z]),
            "scene_label": None if i % 5 == 0 else float(y_c),
            "scene_prediction": float(np.argmax(pc)),
            "scene_probability": Vectors.dense(pc.tolist()),
            "scene_rawPrediction": Vectors.dense(logits.tolist()),
            "attributes_label": None if i % 9 == 0 else y_m,
            "attributes_prediction": [float(k) for k in range(3) if pm[k] > 0.5],
            "attributes_probability": Vectors.dense(pm),
            "attributes_rawPrediction": Vectors.dense(pm),
            "rating_label": None if i % 4 == 0 else y_r,
            "rating_prediction": y_r + float(rng.normal(0, 0.5)),
        })
    vec, dbl, arr = VectorUDT(), T.DoubleType(), T.ArrayType(T.DoubleType())
    schema = T.StructType([T.StructField(name, typ) for name, typ in [
        ("photo_id", T.StringType()), ("user_id", T.StringType()),
        ("highlight_label", dbl), ("highlight_prediction", dbl), ("highlight_probability", vec),
        ("highlight_rawPrediction", vec), ("scene_label", dbl), ("scene_prediction", dbl),
        ("scene_probability", vec), ("scene_rawPrediction", vec), ("attributes_label", arr),
        ("attributes_prediction", arr), ("attributes_probability", vec), ("attributes_rawPrediction", vec),
        ("rating_label", dbl), ("rating_prediction", dbl)]])
    df = spark.createDataFrame([[r[f.name] for f in schema.fields] for r in rows], schema=schema).cache()
    return df, pd.DataFrame(rows)


def _direct(df, task: str, metric: str) -> float:
    """MLlib's own evaluator, called directly on the labelled rows."""
    part = df.where(F.col(f"{task}_label").isNotNull())
    kind = {t["name"]: t["type"] for t in TASKS}[task]
    if kind == "binary":
        ev = BinaryClassificationEvaluator(rawPredictionCol=f"{task}_rawPrediction", labelCol=f"{task}_label",
                                           metricName=metric)
    elif kind == "multiclass":
        ev = MulticlassClassificationEvaluator(predictionCol=f"{task}_prediction", labelCol=f"{task}_label",
                                               probabilityCol=f"{task}_probability", metricName=metric)
    elif kind == "multilabel":
        ev = MultilabelClassificationEvaluator(predictionCol=f"{task}_prediction", labelCol=f"{task}_label",
                                               metricName=metric)
    else:
        ev = RegressionEvaluator(predictionCol=f"{task}_prediction", labelCol=f"{task}_label", metricName=metric)
    return ev.evaluate(part)


def test_metrics_equal_mllib_evaluators_called_directly(preds):
    df, pdf = preds
    table = MultiTaskEvaluator(tasks=TASKS).evaluate_all(df)
    assert set(table["task"]) == {"highlight", "scene", "attributes", "rating"}
    assert len(table) == 2 + 3 + 3 + 2
    for r in table.itertuples():
        # Equal up to the order Spark sums partitions in (AUC differs in the last bit between two direct calls).
        assert r.value == pytest.approx(_direct(df, r.task, r.metric), rel=1e-12, abs=1e-15), (r.task, r.metric)
        assert r.n == int(pdf[f"{r.task}_label"].notna().sum())
    # One main metric per task, the documented one.
    mains = {r.task: r.metric for r in table[table["main"]].itertuples()}
    assert mains == {"highlight": "areaUnderROC", "scene": "accuracy", "attributes": "microF1Measure",
                     "rating": "rmse"}
    # Independent checks: null labels are left out, not counted as negatives.
    lab = pdf[pdf["scene_label"].notna()]
    acc = float((lab["scene_label"] == lab["scene_prediction"]).mean())
    assert table.query("task == 'scene' and metric == 'accuracy'")["value"].item() == pytest.approx(acc, abs=1e-12)
    lab = pdf[pdf["rating_label"].notna()]
    rmse = float(np.sqrt(((lab["rating_label"] - lab["rating_prediction"]) ** 2).mean()))
    assert table.query("task == 'rating' and metric == 'rmse'")["value"].item() == pytest.approx(rmse, rel=1e-9)
    lab = pdf[pdf["attributes_label"].notna()]
    hl = np.mean([len(set(a) ^ set(b)) / 3 for a, b in zip(lab["attributes_label"], lab["attributes_prediction"],
                                                           strict=True)])
    assert table.query("task == 'attributes' and metric == 'hammingLoss'")["value"].item() == pytest.approx(hl)
    # Informative scores: the hand-made tasks are learnable, well above chance.
    assert table.query("task == 'highlight' and metric == 'areaUnderROC'")["value"].item() > 0.75


def test_single_number_evaluate_and_persistence(preds, tmp_path):
    df, _ = preds
    ev = MultiTaskEvaluator(tasks=TASKS)
    assert ev.getMetricName() == "highlight:areaUnderROC" and ev.isLargerBetter()
    assert ev.evaluate(df) == pytest.approx(_direct(df, "highlight", "areaUnderROC"), rel=1e-12)
    ev.setMetricName("rating:rmse")
    assert not ev.isLargerBetter()
    assert ev.evaluate(df) == pytest.approx(_direct(df, "rating", "rmse"), rel=1e-12)
    ev.write().overwrite().save(str(tmp_path / "ev"))
    loaded = MultiTaskEvaluator.load(str(tmp_path / "ev"))
    assert loaded.getTasks() == ev.getTasks() and loaded.getMetricName() == "rating:rmse"
    assert loaded.getTasks()[1] == EvalTask("scene", "multiclass", ("beach", "city", "forest"))


def test_bad_input_names_the_problem(preds):
    df, _ = preds
    with pytest.raises(InputError, match="scene_probability"):
        MultiTaskEvaluator(tasks=TASKS).evaluate_all(df.drop("scene_probability"))
    with pytest.raises(ConfigError, match="unknown"):
        MultiTaskEvaluator(tasks=[{"name": "x", "type": "ranking"}])
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        MultiTaskEvaluator(tasks=TASKS, metricName="nope:accuracy").evaluate(df)


def _table(values: dict[str, tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"task": t, "type": "x", "metric": m, "value": v, "n": 10, "main": True,
                          "larger_is_better": m not in ("rmse", "logLoss", "hammingLoss")}
                         for t, (m, v) in values.items()])


def test_delta_m_on_a_hand_made_table():
    base = _table({"a": ("accuracy", 0.75), "b": ("areaUnderROC", 0.90), "c": ("rmse", 1.25),
                   "d": ("microF1Measure", 0.50)})
    cand = _table({"a": ("accuracy", 0.80), "b": ("areaUnderROC", 0.90), "c": ("rmse", 1.00),
                   "d": ("microF1Measure", 0.45)})
    changes = relative_changes(cand, base)
    assert changes == pytest.approx({"a": 0.05 / 0.75, "b": 0.0, "c": 0.25 / 1.25, "d": -0.05 / 0.5})
    assert delta_m(cand, base) == pytest.approx((0.05 / 0.75 + 0 + 0.2 - 0.1) / 4)
    assert delta_m(base, base) == 0.0
    # Lower-is-better metrics flip sign: a worse RMSE is a negative change.
    assert delta_m(_table({"c": ("rmse", 1.5)}), _table({"c": ("rmse", 1.0)})) == pytest.approx(-0.5)
    # A task with no value on one side is left out, not counted as zero.
    cand_nan = _table({"a": ("accuracy", 0.80), "b": ("areaUnderROC", math.nan)})
    assert delta_m(cand_nan, base) == pytest.approx(0.05 / 0.75)


def test_split_by_photo_is_seeded_and_stable(spark, preds):
    df, _ = preds
    s = DataSplitter(by="photo", seed=11, fractions=[0.6, 0.2, 0.2])
    a = {r.photo_id: r.split for r in s.transform(df).select("photo_id", "split").collect()}
    b = {r.photo_id: r.split for r in s.transform(df.repartition(5).orderBy(F.rand(1))).collect()}
    assert a == b and set(a.values()) == {"train", "validation", "test"}
    counts = pd.Series(list(a.values())).value_counts()
    assert abs(counts["train"] / N - 0.6) < 0.1 and abs(counts["test"] / N - 0.2) < 0.08
    other = {r.photo_id: r.split for r in DataSplitter(by="photo", seed=12).transform(df).collect()}
    assert sum(a[k] != other[k] for k in a) > N // 5


def test_split_by_user_keeps_users_whole_and_round_trips(spark, preds, tmp_path):
    df, _ = preds
    s = DataSplitter(by="user", seed=5, fractions=[0.7, 0.15, 0.15])
    out = s.transform(df).select("photo_id", "user_id", "split").toPandas()
    assert len(out) == N and out["split"].notna().all()
    per_user = out.groupby("user_id")["split"].nunique()
    assert (per_user == 1).all()
    users = out.drop_duplicates("user_id")["split"].value_counts()
    # Cumulative cuts at round(0.7 * 17) = 12 and round(0.85 * 17) = 14 users.
    assert users.to_dict() == {"train": 12, "validation": 2, "test": 3}
    s.write().overwrite().save(str(tmp_path / "split"))
    again = DataSplitter.load(str(tmp_path / "split")).transform(df).select("photo_id", "split").toPandas()
    assert again.set_index("photo_id")["split"].to_dict() == out.set_index("photo_id")["split"].to_dict()
    # Any column can be the unit (e.g. a trip id): naming the user column directly gives the same parts.
    by_col = DataSplitter(by="user_id", seed=5).transform(df).select("photo_id", "split").toPandas()
    assert by_col.set_index("photo_id")["split"].to_dict() == out.set_index("photo_id")["split"].to_dict()
    with pytest.raises(ConfigError, match="fractions"):
        DataSplitter(fractions=[0.5, 0.5, 0.5]).transform(df)
    with pytest.raises(InputError, match="user_id"):
        DataSplitter(by="user").transform(df.drop("user_id"))


def test_plot_summaries_match_mllib_and_numpy(preds):
    df, pdf = preds
    binary = EvalTask("highlight", "binary", ("0", "1"))
    (curve,) = score_curves(df, binary)
    assert curve.auc == pytest.approx(_direct(df, "highlight", "areaUnderROC"), abs=0.005)
    lab = pdf[pdf["highlight_label"].notna()]
    p = np.array([v[1] for v in lab["highlight_probability"]])
    y = lab["highlight_label"].to_numpy()
    rel = reliability(df, binary, bins=10)
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum((bins == b).sum() / len(p) * abs(y[bins == b].mean() - p[bins == b].mean()) for b in np.unique(bins))
    assert rel.ece == pytest.approx(ece, abs=1e-9) and rel.count.sum() == len(p)
    scene = EvalTask("scene", "multiclass", ("beach", "city", "forest"))
    m = confusion_matrix(df, scene)
    lab = pdf[pdf["scene_label"].notna()]
    assert m.sum() == len(lab)
    assert np.trace(m) / m.sum() == pytest.approx(_direct(df, "scene", "accuracy"))
    assert len(score_curves(df, scene)) == 3
    attrs = EvalTask("attributes", "multilabel", ("water", "people", "trees"))
    f1 = per_label_f1(df, attrs)
    lab = pdf[pdf["attributes_label"].notna()]
    yk = np.array([[k in a for k in range(3)] for a in lab["attributes_label"]])
    pk = np.array([[k in a for k in range(3)] for a in lab["attributes_prediction"]])
    for k, name in enumerate(attrs.classes):
        tp, fp, fn = (yk[:, k] & pk[:, k]).sum(), (~yk[:, k] & pk[:, k]).sum(), (yk[:, k] & ~pk[:, k]).sum()
        assert f1[name] == pytest.approx(2 * tp / (2 * tp + fp + fn))
