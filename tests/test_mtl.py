"""MultiTaskClassifier on Spark: input checks, fit/transform with MLlib evaluators, persistence in a Pipeline and
in a new process, resume after an interrupted fit, two-process DDP, and the `train` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
    MultilabelClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from wanderlens.errors import ConfigError, InputError
from wanderlens.io import write_json
from wanderlens.mtl import LocalMultiTaskModel, MultiTaskClassifier, MultiTaskModel, TaskSpec, index_labels

SCENES = ["beach", "city", "mountain"]
ATTRS = ["water", "people", "boats"]
LABELS = {
    "scene": {"type": "multiclass", "classes": SCENES},
    "attributes": {"type": "multilabel", "classes": ATTRS},
    "highlight": {"type": "binary"},
}
DIM = 10
SMALL = {"expertHidden": [16], "towerHidden": [8], "numExperts": 2, "batchSize": 64, "learningRate": 0.02}


def _rows(n: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM))
    rows = []
    for i in range(n):
        v = x[i]
        scene = SCENES[int(np.argmax(v[2:5]))] if rng.random() > 0.2 else None
        attrs = [a for k, a in enumerate(ATTRS) if v[5 + k] > 0] if rng.random() > 0.3 else None
        hi = float(v[0] + v[1] > 0) if rng.random() > 0.4 else None
        rows.append((f"p{i}", Vectors.dense(v.tolist()), scene, attrs, hi))
    return rows


def _schema():
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    return T.StructType([T.StructField("photo_id", T.StringType()), T.StructField("features", VectorUDT()),
                         T.StructField("scene", T.StringType()),
                         T.StructField("attributes", T.ArrayType(T.StringType())),
                         T.StructField("highlight", T.DoubleType())])


@pytest.fixture(scope="module")
def synth(spark):
    """600 rows shaped like the features table: a `features` vector and the sample's three label columns."""
    return spark.createDataFrame(_rows(600, 11), _schema()).cache()


def tasks() -> list[TaskSpec]:
    return TaskSpec.from_labels(LABELS)


@pytest.fixture(scope="module")
def fitted(synth, tmp_path_factory):
    """A Pipeline holding a MultiTaskClassifier, fitted once in-process with a validation split."""
    est = MultiTaskClassifier(tasks=tasks(), architecture="mmoe", maxEpochs=8, validationFraction=0.2,
                              lossWeighting="uncertainty", seed=5, **SMALL)
    model = Pipeline(stages=[est]).fit(synth)
    return model


def _bad(spark, rows):
    return spark.createDataFrame(rows, _schema())


def test_bad_input_fails_before_training(spark, synth, tmp_path):
    ckpt = tmp_path / "ckpt"

    def fit(df, **kw):
        MultiTaskClassifier(tasks=kw.pop("tasks", tasks()), maxEpochs=1, checkpointDir=str(ckpt), **kw).fit(df)

    def r(x, scene="beach", attrs=("water",), hi=1.0):
        return ("id", Vectors.dense(x), scene, None if attrs is None else list(attrs), hi)

    with pytest.raises(ConfigError, match="unknown task type 'ranking'"):
        fit(synth, tasks=[{"name": "scene", "type": "ranking"}])
    with pytest.raises(InputError, match="label column 'mood' is missing"):
        fit(synth, tasks=[{"name": "mood", "type": "binary"}])
    with pytest.raises(InputError, match=r"task 'scene': 1 labels in column 'scene' are outside the declared "
                                         r"classes .*'desert'"):
        fit(_bad(spark, [r([0, 1]), r([1, 0], scene="desert")]))
    with pytest.raises(InputError, match="task 'attributes'.*outside the declared classes.*snow"):
        fit(_bad(spark, [r([0, 1], attrs=["water", "snow"])]))
    with pytest.raises(InputError, match="task 'highlight'.*not 0 or 1.*2.0"):
        fit(_bad(spark, [r([0, 1], hi=2.0)]))
    with pytest.raises(InputError, match="task 'highlight': every label in column 'highlight' is null"):
        fit(_bad(spark, [r([0, 1], hi=None), r([1, 0], hi=None)]))
    with pytest.raises(InputError, match="feature column 'features': 1 rows hold NaN or infinite"):
        fit(_bad(spark, [r([0, float("nan")]), r([1, 0])]))
    with pytest.raises(InputError, match="feature column 'features': 1 rows hold NaN or infinite"):
        fit(_bad(spark, [r([0, float("-inf")]), r([1, 0])]))
    with pytest.raises(InputError, match=r"feature column 'features': vectors have different lengths \(2 to 3\)"):
        fit(_bad(spark, [r([0, 1]), r([1, 0, 2])]))
    with pytest.raises(InputError, match="feature column 'pixels' is missing"):
        fit(synth, featuresCols=["pixels"])
    with pytest.raises(ConfigError, match="lossWeighting 'magic': Input should be 'equal'"):
        fit(synth, lossWeighting="magic")
    with pytest.raises(ConfigError, match="modalityDropout is 0.3 but modalityBlocks is empty"):
        fit(synth, modalityDropout=0.3)
    with pytest.raises(ConfigError, match=r"modalityBlocks \[\[4, 12, -1\]\] lie outside the 10 input columns"):
        fit(synth, modalityDropout=0.3, modalityBlocks=[[0, 4, -1], [4, 12, -1]])
    with pytest.raises(ConfigError, match="linearWarmStart needs linearHead: true"):
        fit(synth, linearWarmStart=True)
    assert not ckpt.exists()  # nothing was written, no training started


def test_modality_dropout_takes_its_blocks_from_the_fitted_feature_pipeline(featurized_dir):
    from wanderlens.config import parse_config
    from wanderlens.features.fusion import fitted_fusion
    from wanderlens.mtl.train import with_modality_blocks

    cfg = parse_config({"training": {"modality_dropout": 0.3}})
    params = with_modality_blocks(cfg.estimator_params(), featurized_dir, cfg)
    sizes = fitted_fusion(featurized_dir).input_sizes()
    image, inputs = sizes["image_embedding"], sum(sizes.values())
    # image | text (TF-IDF + sentence, one block) | has_image, has_text
    assert params["modalityBlocks"] == [[0, image, inputs], [image, inputs, inputs + 1]]
    named = parse_config({"training": {"modality_dropout": 0.3, "modality_blocks": [[0, 5, -1]]}})
    assert with_modality_blocks(named.estimator_params(), featurized_dir, named)["modalityBlocks"] == [[0, 5, -1]]


def test_transform_feeds_mllib_evaluators(fitted, synth):
    mtl = fitted.stages[-1]
    assert isinstance(mtl, MultiTaskModel)
    assert [t.name for t in mtl.tasks] == ["scene", "attributes", "highlight"]
    pred = index_labels(fitted.transform(synth), mtl.tasks).cache()
    hi = pred.where(F.col("highlight_label").isNotNull())
    auc = BinaryClassificationEvaluator(labelCol="highlight_label",
                                        rawPredictionCol="highlight_rawPrediction").evaluate(hi)
    sc = pred.where(F.col("scene_label").isNotNull())
    acc = MulticlassClassificationEvaluator(labelCol="scene_label", predictionCol="scene_prediction",
                                            probabilityCol="scene_probability", metricName="accuracy").evaluate(sc)
    at = pred.where(F.col("attributes_label").isNotNull())
    f1 = MultilabelClassificationEvaluator(labelCol="attributes_label", predictionCol="attributes_prediction",
                                           metricName="microF1Measure").evaluate(at)
    assert auc > 0.9 and acc > 0.75 and f1 > 0.7, (auc, acc, f1)
    # each output column has the MLlib shape
    row = pred.select("highlight_probability", "highlight_rawPrediction", "scene_probability",
                      "attributes_probability", "attributes_prediction").first()
    assert len(row[0]) == 2 and abs(sum(row[0]) - 1) < 1e-9 and row[1][0] == -row[1][1]
    assert len(row[2]) == 3 and abs(sum(row[2]) - 1) < 1e-9
    assert len(row[3]) == 3 and all(float(i) in range(3) for i in row[4])


def test_evaluator_reads_transform_output_straight_from_features(fitted, synth):
    """`transform` adds `<task>_label` from the label columns, so no `index_labels` call is needed."""
    from wanderlens.evaluation.evaluator import MultiTaskEvaluator

    mtl = fitted.stages[-1]
    test = synth.limit(200)
    out = fitted.transform(test)
    assert {"scene_label", "attributes_label", "highlight_label"} <= set(out.columns)
    auc = MultiTaskEvaluator(tasks=mtl.tasks, metricName="highlight:areaUnderROC").evaluate(out)
    table = MultiTaskEvaluator(tasks=mtl.tasks).evaluate_all(out)
    assert set(table["task"]) == {"scene", "attributes", "highlight"} and table["value"].notna().all()
    # the same numbers as after an explicit index_labels
    indexed = MultiTaskEvaluator(tasks=mtl.tasks).evaluate_all(index_labels(fitted.transform(test), mtl.tasks))
    assert table["value"].tolist() == indexed["value"].tolist()
    assert auc == table.query("task == 'highlight' and metric == 'areaUnderROC'")["value"].item()
    # a `_label` column already present is kept, and rows without the label column get none
    kept = fitted.transform(test.withColumn("highlight_label", F.lit(1.0)))
    assert kept.select("highlight_label").distinct().collect()[0][0] == 1.0
    assert "scene_label" not in fitted.transform(test.drop("scene")).columns


def test_training_metrics_equal_mllib_evaluators(spark):
    """The scikit-learn metrics of the training loop give MLlib's evaluator values on the same rows."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    from wanderlens.mtl.metrics import task_metric

    rng = np.random.default_rng(4)
    n = 150
    y_bin = (rng.random(n) > 0.6).astype(float)
    z_bin = np.round(y_bin + rng.normal(scale=0.8, size=n), 1)  # rounded: ties between scores
    y_mc = rng.integers(0, 3, n)
    z_mc = rng.normal(size=(n, 3)) + np.eye(3)[y_mc]
    y_ml = (rng.random((n, 3)) > 0.5).astype(float)
    z_ml = rng.normal(size=(n, 3)) + (y_ml - 0.5)
    y_reg = rng.normal(size=n)
    z_reg = y_reg + rng.normal(scale=0.3, size=n)
    rows = [(Vectors.dense([-z_bin[i], z_bin[i]]), float(y_bin[i]), Vectors.dense(z_mc[i].tolist()),
             float(z_mc[i].argmax()), float(y_mc[i]), [float(k) for k in np.flatnonzero(z_ml[i] > 0)],
             [float(k) for k in np.flatnonzero(y_ml[i])], float(z_reg[i]), float(y_reg[i])) for i in range(n)]
    schema = T.StructType([T.StructField("raw", VectorUDT()), T.StructField("y_bin", T.DoubleType()),
                           T.StructField("prob", VectorUDT()), T.StructField("pred", T.DoubleType()),
                           T.StructField("y_mc", T.DoubleType()),
                           T.StructField("pred_ml", T.ArrayType(T.DoubleType())),
                           T.StructField("y_ml", T.ArrayType(T.DoubleType())),
                           T.StructField("z_reg", T.DoubleType()), T.StructField("y_reg", T.DoubleType())])
    df = spark.createDataFrame(rows, schema)
    mllib = {
        "auc": BinaryClassificationEvaluator(labelCol="y_bin", rawPredictionCol="raw", numBins=0).evaluate(df),
        "accuracy": MulticlassClassificationEvaluator(labelCol="y_mc", predictionCol="pred",
                                                      metricName="accuracy").evaluate(df),
        "f1": MultilabelClassificationEvaluator(labelCol="y_ml", predictionCol="pred_ml",
                                                metricName="microF1Measure").evaluate(df),
        "rmse": RegressionEvaluator(labelCol="y_reg", predictionCol="z_reg", metricName="rmse").evaluate(df),
    }
    ones = np.ones(n)
    ours = {
        "auc": task_metric(TaskSpec("b", "binary"), z_bin.reshape(-1, 1), y_bin, ones),
        "accuracy": task_metric(TaskSpec("m", "multiclass", classes=[0, 1, 2]), z_mc, y_mc, ones),
        "f1": task_metric(TaskSpec("l", "multilabel", classes=[0, 1, 2]), z_ml, y_ml, ones),
        "rmse": task_metric(TaskSpec("r", "regression"), z_reg.reshape(-1, 1), y_reg, ones),
    }
    assert ours == pytest.approx(mllib, rel=1e-12), (ours, mllib)


def test_history_records_losses_weights_and_validation(fitted):
    hist = fitted.stages[-1].history
    assert [h["epoch"] for h in hist] == list(range(1, 9))
    for h in hist:
        assert set(h["loss"]) == set(h["weights"]) == set(h["val"]) == {"scene", "attributes", "highlight"}
        assert {"auc", "n", "loss"} <= set(h["val"]["highlight"]) and "accuracy" in h["val"]["scene"]
    assert hist[-1]["loss"]["scene"] < hist[0]["loss"]["scene"]
    assert hist[-1]["weights"] != hist[0]["weights"]  # uncertainty weighting learns the weights
    # masked metrics count only labelled validation rows
    assert 0 < hist[0]["val"]["highlight"]["n"] < hist[0]["val"]["scene"]["n"]


def test_local_model_matches_transform_exactly(fitted, synth):
    mtl = fitted.stages[-1]
    out = fitted.transform(synth).select(
        vector_to_array("features").alias("x"), vector_to_array("scene_probability").alias("s"),
        vector_to_array("highlight_rawPrediction").alias("h"), "attributes_prediction").limit(50).collect()
    local = mtl.local_model().predict_full(np.array([r["x"] for r in out]))
    np.testing.assert_array_equal(local["scene"]["probability"], np.array([r["s"] for r in out]))
    np.testing.assert_array_equal(local["highlight"]["rawPrediction"], np.array([r["h"] for r in out]))
    assert [list(p) for p in local["attributes"]["prediction"]] == [list(r[3]) for r in out]


NEW_PROCESS = """
import json, sys
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from wanderlens.session import get_spark
from wanderlens.mtl import LocalMultiTaskModel
spark = get_spark(master="local[1]", app_name="mtl-reload")
model = PipelineModel.load(sys.argv[1])
df = spark.read.parquet(sys.argv[2])
rows = model.transform(df).orderBy("photo_id").select(
    vector_to_array("scene_probability").alias("s"), vector_to_array("highlight_probability").alias("h"),
    "attributes_prediction", vector_to_array("features").alias("x")).collect()
local = LocalMultiTaskModel.load(sys.argv[1]).predict([r["x"] for r in rows])
json.dump({"s": [r["s"] for r in rows], "h": [r["h"] for r in rows],
           "a": [r["attributes_prediction"] for r in rows], "local_s": local["scene"].tolist()}, open(sys.argv[3], "w"))
"""


def test_pipeline_round_trip_in_new_process(fitted, synth, tmp_path):
    path = str(tmp_path / "pipeline")
    fitted.write().overwrite().save(path)
    sample = synth.orderBy("photo_id").limit(40)
    sample.write.parquet(str(tmp_path / "rows"))
    loaded = PipelineModel.load(path)
    assert loaded.stages[-1].history == fitted.stages[-1].history
    assert loaded.stages[-1].getOrDefault("architecture") == "mmoe"
    expected = fitted.transform(sample).orderBy("photo_id").select(
        vector_to_array("scene_probability").alias("s"), vector_to_array("highlight_probability").alias("h"),
        "attributes_prediction").collect()
    script = tmp_path / "reload.py"
    script.write_text(NEW_PROCESS)
    res = subprocess.run([sys.executable, str(script), path, str(tmp_path / "rows"), str(tmp_path / "out.json")],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["s"] == [list(r["s"]) for r in expected]
    assert got["h"] == [list(r["h"]) for r in expected]
    assert got["a"] == [list(r["attributes_prediction"]) for r in expected]
    assert got["local_s"] == got["s"]
    # the unfitted estimator round-trips too, inside a Pipeline
    Pipeline(stages=[MultiTaskClassifier(tasks=tasks(), architecture="ple", numLevels=2)]).write().save(
        str(tmp_path / "est"))
    est = Pipeline.load(str(tmp_path / "est")).getStages()[0]
    assert est.getOrDefault("numLevels") == 2 and [t.name for t in est.getTasks()] == ["scene", "attributes",
                                                                                        "highlight"]


class Interrupt(Exception):
    pass


def test_resume_after_interrupted_fit(synth, tmp_path):
    def est(ckpt: Path) -> MultiTaskClassifier:
        return MultiTaskClassifier(tasks=tasks(), architecture="shared_bottom", maxEpochs=4, dropout=0.1,
                                   validationFraction=0.2, checkpointDir=str(ckpt), seed=9, **SMALL)

    whole = est(tmp_path / "a").fit(synth)

    def stop_after_two(rec):
        if rec["epoch"] == 2:
            raise Interrupt("killed")

    with pytest.raises(Interrupt):
        est(tmp_path / "b").setProgress(stop_after_two).fit(synth)
    seen = []
    resumed = est(tmp_path / "b").setProgress(lambda r: seen.append(r["epoch"])).fit(synth)
    assert seen == [3, 4]
    assert resumed.trainingInfo["resumed_from_epoch"] == 2
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    a, b = whole.local_model().net.state_dict(), resumed.local_model().net.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_ddp_two_processes_keep_ranks_identical(synth):
    """TorchDistributor, 2 processes on local[2], GradNorm (per-task gradients) under DDP."""
    model = MultiTaskClassifier(tasks=tasks(), architecture="mmoe", lossWeighting="gradnorm", maxEpochs=5,
                                numProcesses=2, validationFraction=0.2, seed=3, **SMALL).fit(synth)
    info = model.trainingInfo
    assert info["world_size"] == 2
    assert info["rank_param_max_abs_diff"] == 0.0
    labelled = sum(1 for r in _rows(600, 11) if any(x is not None for x in r[2:]))
    assert 0.7 * labelled < info["train_rows"] < labelled  # the rest is the validation split
    hist = model.history
    assert len(hist) == 5 and sum(hist[-1]["weights"].values()) == pytest.approx(3.0)
    assert hist[-1]["weights"] != {"scene": 1.0, "attributes": 1.0, "highlight": 1.0}
    assert hist[-1]["val"]["highlight"]["auc"] > 0.85 and hist[-1]["val"]["scene"]["accuracy"] > 0.6


def test_ddp_linear_warm_start_keeps_ranks_identical(synth):
    """The linear warm start under DDP: statistics, L-BFGS fits (full and out-of-fold) and the gate are reduced over
    ranks, so both ranks hold the same standardisation, linear maps and gate, and end with the same parameters."""
    model = MultiTaskClassifier(tasks=tasks(), architecture="mmoe", maxEpochs=2, numProcesses=2, linearHead=True,
                                standardization=True, linearWarmStart=True, validationFraction=0.2, seed=3,
                                **SMALL).fit(synth)
    info, hist = model.trainingInfo, model.history
    assert info["world_size"] == 2 and info["rank_param_max_abs_diff"] == 0.0
    assert [h["epoch"] for h in hist] == [0, 1, 2] and len(hist[0]["linear_warm_start"]["gate"]) == 3
    assert hist[0]["val"]["highlight"]["auc"] > 0.85  # epoch 0: the linear model alone


@pytest.mark.parametrize("weighting", ["pcgrad", "cagrad"])
def test_ddp_gradient_conflict_methods_keep_ranks_identical(synth, weighting):
    """PCGrad / CAGrad under DDP: per-task gradients are averaged over ranks before the projection, so both ranks
    write the same shared gradient and end with the same parameters."""
    model = MultiTaskClassifier(tasks=tasks(), architecture="mmoe", lossWeighting=weighting, maxEpochs=3,
                                numProcesses=2, validationFraction=0.2, seed=3, **SMALL).fit(synth)
    info = model.trainingInfo
    assert info["world_size"] == 2
    assert info["rank_param_max_abs_diff"] < 1e-6
    assert model.history[-1]["val"]["highlight"]["auc"] > 0.8


def test_train_command(spark, synth, tmp_path, capsys):
    from wanderlens.cli.main import main

    feats = tmp_path / "feats"
    synth.write.parquet(str(feats / "features"))
    write_json(LABELS, feats / "labels.json")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {architecture: ple, expert_hidden: [16], tower_hidden: [8], num_experts: 1}\n"
                   "training: {epochs: 2, batch_size: 128, learning_rate: 0.02}\n")
    with pytest.raises(SystemExit) as ex:
        main(["train", "--features", str(feats), "--config", str(cfg), "--out", str(tmp_path / "m")])
    assert ex.value.code == 0
    model = MultiTaskModel.load(str(tmp_path / "m"))
    assert len(model.history) == 2 and model.getOrDefault("architecture") == "ple"
    assert LocalMultiTaskModel.load(str(tmp_path / "m")).predict(np.zeros((1, DIM)))["scene"].shape == (1, 3)
    err = capsys.readouterr().err
    assert "epoch 2" in err and "saved model" in err
    cfg.write_text("tasks: [{name: scene, type: ordinal}]\n")
    with pytest.raises(SystemExit) as ex:
        main(["train", "--features", str(feats), "--config", str(cfg), "--out", str(tmp_path / "m2")])
    assert ex.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: task 'scene': unknown task type 'ordinal'")
    assert math.isfinite(model.history[-1]["loss"]["scene"])
