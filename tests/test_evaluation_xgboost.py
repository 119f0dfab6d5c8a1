"""The XGBoost baseline (SparkXGBClassifier per task) and official split columns, on a small learnable table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.config import XGBoostConfig
from wanderlens.errors import InputError
from wanderlens.evaluation import DataSplitter, MultiTaskEvaluator
from wanderlens.evaluation.boosted import fit_xgboost
from wanderlens.mtl.tasks import index_labels, parse_tasks

TASKS = [
    {"name": "highlight", "type": "binary", "label_col": "highlight"},
    # "snow" is never seen: its probability must be 0, and the vector keeps all four classes.
    {"name": "scene", "type": "multiclass", "label_col": "scene", "classes": ["beach", "city", "forest", "snow"]},
    {"name": "attributes", "type": "multilabel", "label_col": "attributes", "classes": ["water", "people", "night"]},
]
N, DIM, N_TRAIN = 400, 16, 300
FOLDS = ["Train", "train ", "TRAIN", "val", "VALID", "dev", "validation", "Test", "test"]


def _fold(i: int) -> str:
    """Official split of row i: rows 0..N_TRAIN-1 mostly train (some validation), the rest test."""
    if i >= N_TRAIN:
        return FOLDS[7 + i % 2]
    return FOLDS[3 + i % 4] if i % 5 == 0 else FOLDS[i % 3]


def _rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, DIM))
    x[:, 8:][rng.random((N, DIM - 8)) < 0.7] = 0.0  # a sparse block, like TF-IDF
    scene = np.array(["beach", "city", "forest"])[np.argmax(x[:, 2:5], axis=1)]
    rows = []
    for i in range(N):
        attrs = [a for a, on in (("water", x[i, 5] > 0), ("people", x[i, 6] > 0.3)) if on]
        vec = Vectors.dense(x[i]) if i % 2 else Vectors.sparse(DIM, {j: float(v) for j, v in enumerate(x[i]) if v})
        rows.append({"photo_id": f"p{i:03d}", "user_id": f"u{i % 11}", "features": vec,
                     "highlight": float(x[i, 0] + 0.5 * x[i, 1] + 0.3 * rng.normal() > 0),
                     "scene": None if i % 13 == 0 else str(scene[i]),
                     "attributes": None if i % 10 == 0 else attrs, "fold": _fold(i)})
    return pd.DataFrame(rows)


SCHEMA = T.StructType([T.StructField("photo_id", T.StringType()), T.StructField("user_id", T.StringType()),
                       T.StructField("features", VectorUDT()), T.StructField("highlight", T.DoubleType()),
                       T.StructField("scene", T.StringType()),
                       T.StructField("attributes", T.ArrayType(T.StringType())),
                       T.StructField("fold", T.StringType())])


@pytest.fixture(scope="module")
def table(spark):
    pdf = _rows()
    return spark.createDataFrame([[r[f.name] for f in SCHEMA.fields] for r in pdf.to_dict("records")], SCHEMA), pdf


def test_xgboost_baseline_is_scored_like_every_variant(spark, table):
    df, pdf = table
    tasks = parse_tasks(TASKS)
    labelled = index_labels(df, tasks)
    train, test = labelled.where(F.col("photo_id") < f"p{N_TRAIN}"), labelled.where(F.col("photo_id") >= f"p{N_TRAIN}")
    settings = XGBoostConfig(n_estimators=40, max_depth=3, subsample=1.0, colsample_bytree=1.0)
    preds = fit_xgboost(train, tasks, "features", settings, seed=0)(test).cache()
    table_ = MultiTaskEvaluator(tasks=tasks).evaluate_all(preds)
    main = table_[table_["main"]].set_index("task")["value"]
    # Learnt, not noise: well above chance on every task.
    assert main["highlight"] > 0.85 and main["scene"] > 0.7 and main["attributes"] > 0.7, main
    got = preds.select("photo_id", vector_to_array("scene_probability").alias("p"), "scene_prediction",
                       "attributes_prediction", vector_to_array("highlight_probability").alias("h")).toPandas()
    probs = np.stack(got["p"].to_numpy())
    assert probs.shape == (N - N_TRAIN, 4) and np.allclose(probs.sum(axis=1), 1.0) and (probs[:, 3] == 0).all()
    assert set(got["scene_prediction"]) <= {0.0, 1.0, 2.0}
    assert all(2.0 not in a for a in got["attributes_prediction"])  # "night" never seen: never predicted

    # The same model as plain xgboost on the same training rows (sparse input, zeros missing): same probabilities.
    import scipy.sparse as sp
    import xgboost

    rows = pdf.iloc[:N_TRAIN]
    dense = np.stack([v.toArray() for v in rows["features"]])
    plain = xgboost.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.1, tree_method="hist",
                                  missing=0.0, random_state=0, n_jobs=1)
    plain.fit(sp.csr_matrix(dense), rows["highlight"].to_numpy())
    test_x = sp.csr_matrix(np.stack([v.toArray() for v in pdf.iloc[N_TRAIN:]["features"]]))
    expected = plain.predict_proba(test_x)[:, 1]
    by_id = dict(zip(got["photo_id"], (h[1] for h in got["h"]), strict=True))
    assert [by_id[p] for p in pdf.iloc[N_TRAIN:]["photo_id"]] == pytest.approx(expected.tolist(), abs=1e-5)


def test_official_split_column_is_respected(spark, table, tmp_path):
    df, pdf = table
    expected = {p: {"train": "train", "val": "validation", "valid": "validation", "dev": "validation",
                    "validation": "validation", "test": "test"}[f.strip().lower()]
                for p, f in zip(pdf["photo_id"], pdf["fold"], strict=True)}
    splitter = DataSplitter(splitCol="fold", by="user", seed=3)  # the column wins over by/seed/fractions
    got = {r.photo_id: r.split for r in splitter.transform(df).select("photo_id", "split").collect()}
    assert got == expected and set(got.values()) == {"train", "validation", "test"}
    # Persisted with the model, it redoes exactly the same parts; a column named `split` is read in place.
    splitter.write().overwrite().save(str(tmp_path / "split"))
    again = DataSplitter.load(str(tmp_path / "split")).transform(df.repartition(3)).select("photo_id", "split")
    assert {r.photo_id: r.split for r in again.collect()} == expected
    in_place = DataSplitter(splitCol="split").transform(df.withColumnRenamed("fold", "split"))
    assert {r.photo_id: r.split for r in in_place.select("photo_id", "split").collect()} == expected


def test_bad_official_split_value_is_a_clear_error(spark, table):
    df, _ = table
    bad = df.withColumn("fold", F.when(F.col("photo_id").isin("p001", "p002", "p003"), "holdout")
                        .when(F.col("photo_id").isin("p004", "p005"), F.lit(None)).otherwise(F.col("fold")))
    with pytest.raises(InputError) as exc:
        DataSplitter(splitCol="fold").transform(bad)
    msg = str(exc.value)
    assert "split column 'fold'" in msg and "5 rows have no usable split value" in msg
    assert "'holdout' (3 rows)" in msg and "null (2 rows)" in msg and "validation (or val, valid, dev)" in msg
    with pytest.raises(InputError, match="column 'nope' is not in the data"):
        DataSplitter(splitCol="nope").transform(df)


def test_evaluate_job_uses_the_official_split_and_reports_xgboost(spark, table, tmp_path):
    from wanderlens.evaluation.comparison import MTL_FUSED, XGBOOST
    from wanderlens.evaluation.job import evaluate_job
    from wanderlens.io import read_json

    df, pdf = table
    features = tmp_path / "features"
    df.write.parquet(str(features / "features"))
    config = {"tasks": TASKS,
              "model": {"architecture": "mmoe", "expert_hidden": [16], "tower_hidden": [8], "num_experts": 2},
              "training": {"epochs": 2, "batch_size": 64},
              "evaluation": {"split": {"column": "fold"}, "seeds": [0], "compare": ["xgboost"],
                             "gallery": 0,
                             "xgboost": {"n_estimators": 20, "max_depth": 3}}}
    result = evaluate_job(spark, features, config, tmp_path / "report")
    parts = pdf["fold"].str.strip().str.lower().replace({"val": "validation", "valid": "validation",
                                                         "dev": "validation"})
    split = read_json(tmp_path / "report" / "split.json")
    assert split["column"] == "fold" and split["seed"] is None
    assert {s: c["rows"] for s, c in split["counts"].items()} == parts.value_counts().to_dict()
    assert set(result.comparison["variant"]) == {MTL_FUSED, XGBOOST}
    # Both variants scored on exactly the test rows labelled for each task.
    test = pdf[parts == "test"]
    n = result.metrics[result.metrics["main"]].set_index(["variant", "task"])["n"]
    for v in (MTL_FUSED, XGBOOST):
        assert n[(v, "scene")] == test["scene"].notna().sum() and n[(v, "highlight")] == len(test)
    assert "multi-task vs XGBoost (fused)" in set(result.deltas["comparison"])
    page = result.report.read_text(encoding="utf-8")
    assert "own column fold" in page and XGBOOST in page
