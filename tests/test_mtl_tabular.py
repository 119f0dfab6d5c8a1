"""Tabular inputs of wanderlens.mtl: categorical embeddings and numeric feature embeddings, learned in fit,
stored in the model, and applied the same way by transform and by LocalMultiTaskModel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from wanderlens.mtl.tabular import TABULAR, PiecewiseLinear, encode_frame


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "rome", "oslo"], n)
    x = rng.normal(size=n)
    dense = rng.normal(size=(n, 2))
    y = ((city == "rome") | (x > 1.0)).astype(float)
    pdf = pd.DataFrame({"city": city, "x": x, "y": y, "z": (city == "oslo").astype(float)})
    pdf["dense"] = list(dense)
    return pdf


def test_piecewise_linear_encoding_matches_the_paper() -> None:
    """Bins left of x are 1, the bin holding x its fraction, bins right of it 0; outside extrapolates linearly."""
    m = PiecewiseLinear([0.0, 1.0, 3.0], dim=1)
    x = torch.tensor([-1.0, 0.5, 2.0, 5.0])
    enc = torch.clamp((x.unsqueeze(1) - m.left) / m.width, min=m.lo, max=m.hi)
    assert enc.tolist() == [[-1.0, 0.0], [0.5, 0.0], [1.0, 0.5], [1.0, 2.0]]


def test_piecewise_bins_do_not_collapse_on_values_many_rows_share(spark) -> None:
    """A column that is 0 in 90 % of rows keeps 0 as an edge and spends its bins on the other values; a column of a
    few integers gets each of them; a continuous column gets plain quantiles; a constant one two edges."""
    from wanderlens.mtl.tabular import learn_spec

    rng = np.random.default_rng(0)
    n = 4000
    pdf = pd.DataFrame({"gains": np.where(rng.random(n) < 0.9, 0.0, rng.uniform(1, 100, n)),
                        "x": rng.normal(size=n), "kids": rng.integers(0, 4, n).astype(float), "one": np.ones(n)})
    spec = learn_spec(spark.createDataFrame(pdf), [], list(pdf.columns), bins=8)
    gains, x, kids, one = spec["edges"]
    assert gains[0] == 0.0 and len(gains) >= 9 and gains[1] < 15 and gains[-2] > 70  # quantiles over 1..100
    assert len(x) == 9 and np.allclose(x[1:-1], np.quantile(pdf["x"], np.arange(1, 8) / 8), atol=0.05)
    assert kids == [0.0, 1.0, 2.0, 3.0]
    assert one == [1.0, 2.0]


@pytest.mark.parametrize("numeric_embedding", ["piecewise", "periodic"])
def test_tabular_fit_transform_save_load_local(spark, tmp_path, numeric_embedding: str) -> None:
    from wanderlens.mtl import MultiTaskClassifier, MultiTaskModel
    from wanderlens.mtl.local import LocalMultiTaskModel

    df = spark.createDataFrame(_frame(400, 0).drop(columns=["dense"]))
    est = MultiTaskClassifier(
        tasks=[{"name": "y", "type": "binary"}, {"name": "z", "type": "binary"}], featuresCols=[],
        categoricalCols=["city"], numericCols=["x"], embeddingDim=4, numericEmbedding=numeric_embedding,
        numericBins=6, expertHidden=[16], towerHidden=[8], maxEpochs=30, learningRate=0.02, seed=1)
    model = est.fit(df)
    spec = model._meta["arch"]["tabular"]
    assert spec["vocab"] == [["oslo", "paris", "rome"]] or sorted(spec["vocab"][0]) == ["oslo", "paris", "rome"]
    assert spec["numeric"] == ["x"] and len(spec["edges"][0]) == 7

    test = spark.createDataFrame(pd.DataFrame({"city": ["rome", "paris", "tokyo", None], "x": [0.0, 2.5, 0.0, None],
                                               "y": [1.0, 1.0, 0.0, 0.0], "z": [0.0, 0.0, 0.0, 0.0]}))
    out = model.transform(test)
    assert TABULAR not in out.columns
    p = np.array([r["y_probability"][1] for r in out.orderBy("x", "city").collect()])
    assert np.all(np.isfinite(p))
    train_out = model.transform(df).select("y", "y_probability").toPandas()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(train_out["y"], train_out["y_probability"].map(lambda v: v[1])) > 0.9

    path = str(tmp_path / f"m-{numeric_embedding}")
    model.write().save(path)
    loaded = MultiTaskModel.load(path)
    a = model.transform(test).select("y_probability").collect()
    b = loaded.transform(test).select("y_probability").collect()
    assert [r[0] for r in a] == [r[0] for r in b]

    local = LocalMultiTaskModel.load(path)
    pdf = test.toPandas()
    x = encode_frame(spec, pdf)
    assert x[:, 0].tolist()[2:] == [0.0, 0.0]  # unknown city and null are the "unknown" index
    probs = local.predict(x)["y"][:, 1]
    assert probs.tolist() == [r[0][1] for r in a]


def test_tabular_with_dense_features_and_single_task_blocks(spark) -> None:
    """Dense vector columns come first and pass through; single_task gets one input block per task."""
    from wanderlens.mtl import MultiTaskClassifier

    df = spark.createDataFrame(_frame(200, 1))
    est = MultiTaskClassifier(
        tasks=[{"name": "y", "type": "binary"}, {"name": "z", "type": "binary"}], featuresCols=["dense"],
        categoricalCols=["city"], numericCols=["x"], numericEmbedding="none", architecture="single_task",
        expertHidden=[8], towerHidden=[4], maxEpochs=2)
    model = est.fit(df)
    local = model.local_model()
    assert local.input_dim == 4 and len(local.net.inputs) == 2
    assert model.transform(df).where("y_prediction IS NULL").count() == 0


def test_tabular_bad_columns_are_clear_errors(spark) -> None:
    from wanderlens.errors import InputError
    from wanderlens.mtl import MultiTaskClassifier

    df = spark.createDataFrame(_frame(20, 2).drop(columns=["dense"]))
    est = MultiTaskClassifier(tasks=[{"name": "y", "type": "binary"}], featuresCols=[], numericCols=["city"])
    with pytest.raises(InputError, match="numeric column 'city' has type string"):
        est.fit(df)
    est = MultiTaskClassifier(tasks=[{"name": "y", "type": "binary"}], featuresCols=[], categoricalCols=["town"])
    with pytest.raises(InputError, match="categorical column 'town' is missing"):
        est.fit(df)
