"""What makes the multi-task model good, tested on real training runs: per-task selection keeps each task's own
best epoch, decision thresholds and temperatures are learned on the validation rows only, seed ensembles average
their members."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from wanderlens.config import TrainingConfig
from wanderlens.mtl import LocalMultiTaskModel, MultiTaskClassifier, TaskSpec
from wanderlens.mtl.calibration import fit_calibration
from wanderlens.mtl.data import FEATURES
from wanderlens.mtl.trainer import TrainingRun, load_state, run_training

DIM = 12
TASKS = [TaskSpec("slow", "multiclass", classes=["a", "b", "c"]), TaskSpec("fast", "binary")]
ARCH = {"name": "shared_bottom", "expert_hidden": [64], "tower_hidden": [64], "dropout": 0.0}


def _write(path, x, slow, fast) -> None:
    path.mkdir(parents=True)
    pq.write_table(pa.table({
        FEATURES: pa.array(list(x.astype(np.float32)), pa.list_(pa.float32())),
        "slow": pa.array([float(v) for v in slow], pa.float64()),
        "fast": pa.array([None if v is None else float(v) for v in fast], pa.float64()),
    }), path / "part-00000.parquet")


def _data(n: int, seed: int, fast_labelled: float, noise: float):
    """`slow`: a smooth 3-class rule over most columns (learned over many epochs at a small learning rate);
    `fast`: a binary label on a few rows with label noise, which a wide network memorises within epochs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM))
    slow = np.argmax(x[:, :3] + 0.5 * x[:, 3:6] - 0.3 * x[:, 6:9], axis=1)
    clean = (x[:, 9] > 0).astype(float)
    flip = rng.random(n) < noise
    fast = [None if rng.random() > fast_labelled else float(c != f) for c, f in zip(clean, flip, strict=True)]
    return x, slow, fast


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory) -> TrainingRun:
    root = tmp_path_factory.mktemp("quality")
    _write(root / "train", *_data(1500, 1, fast_labelled=0.04, noise=0.35))
    _write(root / "val", *_data(600, 2, fast_labelled=1.0, noise=0.0))
    training = TrainingConfig(learning_rate=0.003, epochs=14, batch_size=32, seed=1, per_task_selection=True)
    return TrainingRun(tasks=[t.to_dict() for t in TASKS], arch=ARCH, training=training, input_dim=DIM,
                       train_path=str(root / "train"), val_path=str(root / "val"))


def test_a_task_that_peaks_early_keeps_its_early_weights(overfit_run):
    res = run_training(overfit_run)
    hist = res["history"]
    auc = [h["val"]["fast"]["auc"] for h in hist]
    acc = [h["val"]["slow"]["accuracy"] for h in hist]
    best = res["info"]["best_epoch"]
    # each task's best epoch is the first epoch with its best validation metric
    assert best == {"fast": int(np.argmax(auc)) + 1, "slow": int(np.argmax(acc)) + 1}
    assert best["fast"] < best["slow"] and auc[-1] < max(auc)  # the fast task peaked early, then overfitted
    # its predictions are those of the network after its best epoch: a run stopped there gives the same numbers
    short = dataclasses.replace(overfit_run, training=overfit_run.training.model_copy(
        update={"epochs": best["fast"], "per_task_selection": False}))
    x = np.random.default_rng(5).normal(size=(50, DIM))
    model = LocalMultiTaskModel(overfit_run.tasks, ARCH, DIM, load_state(res["state"]))
    stopped = LocalMultiTaskModel(overfit_run.tasks, ARCH, DIM, load_state(run_training(short)["state"]))
    np.testing.assert_array_equal(model.raw_outputs(x)[1], stopped.raw_outputs(x)[1])
    assert not np.array_equal(model.raw_outputs(x)[0], stopped.raw_outputs(x)[0])
    # the tasks sharing no best epoch run on two snapshots; without selection there is one
    assert len(load_state(res["state"])["states"]) == 2
    plain = dataclasses.replace(overfit_run, training=overfit_run.training.model_copy(
        update={"per_task_selection": False}))
    assert len(load_state(run_training(plain)["state"])["states"]) == 1


def _rows(n: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    out = []
    for i in range(n):
        hi = float(x[i, 0] + 0.5 * rng.normal() > 0.8)
        attrs = [a for k, a in enumerate(["p", "q", "r"]) if x[i, 1 + k] + 0.7 * rng.normal() > 0.9]
        out.append((Vectors.dense(x[i].tolist()), hi, attrs, bool(i % 4 == 0)))
    return out


@pytest.fixture(scope="module")
def calib_df(spark):
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("features", VectorUDT()), T.StructField("highlight", T.DoubleType()),
                           T.StructField("attrs", T.ArrayType(T.StringType())),
                           T.StructField("is_val", T.BooleanType())])
    return spark.createDataFrame(_rows(800, 3), schema).cache()


CAL_TASKS = [TaskSpec("highlight", "binary"), TaskSpec("attrs", "multilabel", classes=["p", "q", "r"])]
CAL_PARAMS = {"expertHidden": [16], "towerHidden": [8], "numExperts": 2, "maxEpochs": 6, "learningRate": 0.01,
              "batchSize": 64, "validationIndicatorCol": "is_val", "seed": 2, "thresholds": "per_label"}


def _outputs(model, df):
    rows = df.collect()
    x = np.array([r["features"].toArray() for r in rows]).astype(np.float32)  # as the training shards hold them
    y_hi = np.array([r["highlight"] for r in rows])
    y_at = np.array([[c in r["attrs"] for c in ["p", "q", "r"]] for r in rows], dtype=float)
    return model.local_model().raw_outputs(x), [y_hi, y_at], [np.ones(len(rows))] * 2


def _flat(cal: dict) -> list[float]:
    return [float(v) for t in sorted(cal) for k in sorted(cal[t]) for v in np.atleast_1d(cal[t][k])]


def test_thresholds_and_temperature_are_learned_on_validation_rows_only(calib_df):
    model = MultiTaskClassifier(tasks=CAL_TASKS, **CAL_PARAMS).fit(calib_df)
    cal = json.loads(model._meta_json)["calibration"]
    assert set(cal["highlight"]) == {"temperature", "threshold"} and len(cal["attrs"]["threshold"]) == 3
    # recomputed from the validation rows, the stored values come back exactly; from the training rows, not
    val = fit_calibration(CAL_TASKS, *_outputs(model, calib_df.where("is_val")), True, "per_label")
    train = fit_calibration(CAL_TASKS, *_outputs(model, calib_df.where("not is_val")), True, "per_label")
    assert _flat(val) == pytest.approx(_flat(cal), rel=1e-6)  # (row order changes only the last bits)
    assert np.abs(np.array(_flat(train)) - np.array(_flat(cal))).max() > 1e-3
    # the prediction columns use the thresholds; the probabilities are calibrated
    out = model.transform(calib_df.where("is_val")).select("highlight_probability", "highlight_prediction",
                                                          "attrs_probability", "attrs_prediction").collect()
    for r in out:
        assert r["highlight_prediction"] == float(r["highlight_probability"][1] > cal["highlight"]["threshold"])
        expected = [float(j) for j, p in enumerate(r["attrs_probability"]) if p > cal["attrs"]["threshold"][j]]
        assert list(r["attrs_prediction"]) == expected
    local = model.local_model()
    x = np.zeros((1, 6))
    z = local.member_outputs(x)[0][0][0, 0] / cal["highlight"]["temperature"]
    assert local.predict(x)["highlight"][0, 1] == pytest.approx(1 / (1 + np.exp(-z)))


def test_changing_only_training_labels_keeps_the_validation_dependence(calib_df):
    """Training labels shape the network, but with the network fixed the thresholds are a function of the
    validation rows: flipping validation labels moves them, flipping training labels of the same network does not
    enter the calibration at all."""
    model = MultiTaskClassifier(tasks=CAL_TASKS, **CAL_PARAMS).fit(calib_df)
    cal = json.loads(model._meta_json)["calibration"]
    outs, ys, ms = _outputs(model, calib_df.where("is_val"))
    flipped = [1.0 - ys[0], ys[1]]
    assert fit_calibration(CAL_TASKS, outs, flipped, ms, True, "per_label")["highlight"] != cal["highlight"]
    relabelled = calib_df.withColumn("highlight", F.when(F.col("is_val"), F.col("highlight"))
                                     .otherwise(1.0 - F.col("highlight")))
    outs2, ys2, ms2 = _outputs(model, relabelled.where("is_val"))
    assert _flat(fit_calibration(CAL_TASKS, outs2, ys2, ms2, True, "per_label")) == pytest.approx(_flat(cal),
                                                                                                   rel=1e-6)


def test_seed_ensemble_trains_members_as_spark_tasks_and_averages(calib_df):
    params = {**CAL_PARAMS, "numModels": 2, "maxEpochs": 3}
    ens = MultiTaskClassifier(tasks=CAL_TASKS, **params).fit(calib_df)
    info = ens.trainingInfo
    assert [m["seed"] for m in info["members"]] == [2, 3]
    local = ens.local_model()
    assert len(local.members) == 2
    x = np.random.default_rng(0).normal(size=(20, 6))
    members = local.member_outputs(x)
    p = np.mean([1 / (1 + np.exp(-m[0][:, 0])) for m in members], axis=0)
    z = np.log(p) - np.log1p(-p)
    expected = 1 / (1 + np.exp(-z / json.loads(ens._meta_json)["calibration"]["highlight"]["temperature"]))
    np.testing.assert_allclose(local.predict(x)["highlight"][:, 1], expected, rtol=1e-12)
    single = MultiTaskClassifier(tasks=CAL_TASKS, **{**params, "numModels": 1}).fit(calib_df).local_model()
    np.testing.assert_array_equal(single.member_outputs(x)[0][0], members[0][0])  # member 0 = the seed's model
