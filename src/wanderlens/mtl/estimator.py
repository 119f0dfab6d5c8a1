"""`MultiTaskClassifier` (Estimator) and `MultiTaskModel` (Model): multi-task torch networks as Spark ML stages.

fit: checks the input in one Spark pass, writes the training rows once as Parquet shards, and trains in-process
(one process) or with `TorchDistributor` (several, DDP over gloo). transform: Arrow batches through the network
loaded once per Python worker, giving MLlib-shaped `<task>_prediction`, `_probability`, `_rawPrediction` columns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasSeed
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsWritable,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from wanderlens.config import ModelConfig, Section, TrainingConfig, param_name
from wanderlens.errors import ConfigError, InputError
from wanderlens.io import write_json
from wanderlens.mtl.architectures import ARCHITECTURES, ArchConfig
from wanderlens.mtl.calibration import fit_calibration
from wanderlens.mtl.data import (
    FEATURES,
    class_weights,
    encode,
    feature_array,
    infer_classes,
    read_shard,
    validate_input,
    write_shards,
)
from wanderlens.mtl.local import LocalMultiTaskModel, cached_model
from wanderlens.mtl.tabular import TABULAR, HasTabularInputs
from wanderlens.mtl.tasks import TaskSpec, label_index_expr, parse_tasks
from wanderlens.mtl.trainer import TrainingRun, load_state, run_training
from wanderlens.mtl.weighting import WEIGHTINGS
from wanderlens.persistence import DataStage
from wanderlens.threads import torch_threads

SectionT = TypeVar("SectionT", bound=Section)


def _to_tasks(value: Any) -> list[dict[str, Any]]:
    """Type converter of the `tasks` Param: TaskSpecs or dicts (or their JSON) to a list of task dicts."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list | tuple):
        raise TypeError(f"tasks must be a list of TaskSpec or dicts, got {type(value).__name__}")
    return [t.to_dict() for t in parse_tasks(list(value))]


def _to_blocks(value: Any) -> list[list[int]]:
    """Type converter of `modalityBlocks`: a list of [start, stop, presence index or -1] integer triples."""
    if isinstance(value, str):
        value = json.loads(value)
    return [[int(v) for v in block] for block in value]


class _MultiTaskParams(HasSeed, HasTabularInputs):
    """Params shared by the estimator and the model."""

    featuresCols = Param(Params._dummy(), "featuresCols", "feature columns (vectors, numeric arrays or numbers), "
                         "concatenated in order", typeConverter=TypeConverters.toListString)
    architecture = Param(Params._dummy(), "architecture", f"one of {', '.join(ARCHITECTURES)}",
                         typeConverter=TypeConverters.toString)
    expertHidden = Param(Params._dummy(), "expertHidden", "hidden widths of each expert (or of the shared bottom)",
                         typeConverter=TypeConverters.toListInt)
    towerHidden = Param(Params._dummy(), "towerHidden", "hidden widths of each task tower",
                        typeConverter=TypeConverters.toListInt)
    numExperts = Param(Params._dummy(), "numExperts", "experts (MMoE), or task-specific experts per task (PLE)",
                       typeConverter=TypeConverters.toInt)
    numSharedExperts = Param(Params._dummy(), "numSharedExperts", "shared experts per PLE level",
                             typeConverter=TypeConverters.toInt)
    numLevels = Param(Params._dummy(), "numLevels", "PLE extraction levels", typeConverter=TypeConverters.toInt)
    dropout = Param(Params._dummy(), "dropout", "dropout rate in experts and towers",
                    typeConverter=TypeConverters.toFloat)
    lossWeighting = Param(Params._dummy(), "lossWeighting", f"one of {', '.join(WEIGHTINGS)}",
                          typeConverter=TypeConverters.toString)
    gradnormAlpha = Param(Params._dummy(), "gradnormAlpha", "GradNorm asymmetry alpha",
                          typeConverter=TypeConverters.toFloat)
    dwaTemperature = Param(Params._dummy(), "dwaTemperature", "DWA temperature", typeConverter=TypeConverters.toFloat)
    optimizer = Param(Params._dummy(), "optimizer", "adam | adamw | sgd", typeConverter=TypeConverters.toString)
    learningRate = Param(Params._dummy(), "learningRate", "learning rate", typeConverter=TypeConverters.toFloat)
    weightDecay = Param(Params._dummy(), "weightDecay", "L2 weight decay", typeConverter=TypeConverters.toFloat)
    maxEpochs = Param(Params._dummy(), "maxEpochs", "maximum passes over the training rows",
                      typeConverter=TypeConverters.toInt)
    batchSize = Param(Params._dummy(), "batchSize", "rows per optimisation step (per process)",
                      typeConverter=TypeConverters.toInt)
    validationFraction = Param(Params._dummy(), "validationFraction", "fraction of rows held out for validation "
                               "and early stopping (0: none)", typeConverter=TypeConverters.toFloat)
    validationIndicatorCol = Param(Params._dummy(), "validationIndicatorCol", "boolean column marking validation "
                                   "rows (overrides validationFraction; empty: unused)",
                                   typeConverter=TypeConverters.toString)
    patience = Param(Params._dummy(), "patience", "epochs without improvement before stopping (0: never stop early)",
                     typeConverter=TypeConverters.toInt)
    monitor = Param(Params._dummy(), "monitor", "early stopping metric: 'loss' (validation loss), 'metric' (mean "
                    "of task metrics) or a task name (its AUC/accuracy/F1/RMSE)", typeConverter=TypeConverters.toString)
    classWeights = Param(Params._dummy(), "classWeights", "'none' or 'balanced' (inverse class frequency)",
                         typeConverter=TypeConverters.toString)
    numProcesses = Param(Params._dummy(), "numProcesses", "training processes: 1 trains in-process, more use "
                         "TorchDistributor (DDP, gloo)", typeConverter=TypeConverters.toInt)
    checkpointDir = Param(Params._dummy(), "checkpointDir", "folder for per-epoch checkpoints and the training "
                          "shards; a fit resumes from it (empty: no checkpoints)",
                          typeConverter=TypeConverters.toString)
    layerNorm = Param(Params._dummy(), "layerNorm", "LayerNorm after each hidden Linear",
                      typeConverter=TypeConverters.toBoolean)
    linearHead = Param(Params._dummy(), "linearHead", "add to each task's logits a linear map of the inputs (wide & "
                       "deep)", typeConverter=TypeConverters.toBoolean)
    standardization = Param(Params._dummy(), "standardization", "standardise each input column with the training "
                            "rows' mean and standard deviation (stored in the model)",
                            typeConverter=TypeConverters.toBoolean)
    cagradC = Param(Params._dummy(), "cagradC", "CAGrad radius c", typeConverter=TypeConverters.toFloat)
    lrSchedule = Param(Params._dummy(), "lrSchedule", "constant | cosine | onecycle (per step, after warm-up)",
                       typeConverter=TypeConverters.toString)
    warmupEpochs = Param(Params._dummy(), "warmupEpochs", "linear learning-rate warm-up in epochs",
                         typeConverter=TypeConverters.toFloat)
    labelSmoothing = Param(Params._dummy(), "labelSmoothing", "label smoothing of classification targets",
                           typeConverter=TypeConverters.toFloat)
    modalityDropout = Param(Params._dummy(), "modalityDropout", "chance a modality block of a training row is "
                            "blanked with its presence flag (needs modalityBlocks)",
                            typeConverter=TypeConverters.toFloat)
    modalityBlocks = Param(Params._dummy(), "modalityBlocks", "input blocks as [start, stop, presence index or -1] "
                           "column slices of the concatenated features", typeConverter=_to_blocks)
    linearWarmStart = Param(Params._dummy(), "linearWarmStart", "fit the linear head alone first (L-BFGS, as "
                            "MLlib LogisticRegression), freeze it, then train the network on what it misses",
                            typeConverter=TypeConverters.toBoolean)
    linearL2 = Param(Params._dummy(), "linearL2", "L2 penalty of the linear warm start (MLlib's regParam)",
                     typeConverter=TypeConverters.toFloat)
    perTaskSelection = Param(Params._dummy(), "perTaskSelection", "each task keeps its own best validation epoch's "
                             "weights", typeConverter=TypeConverters.toBoolean)
    calibration = Param(Params._dummy(), "calibration", "temperature scaling fitted on the validation rows",
                        typeConverter=TypeConverters.toBoolean)
    thresholds = Param(Params._dummy(), "thresholds", "none | global | per_label decision thresholds learned on "
                       "the validation rows", typeConverter=TypeConverters.toString)
    numModels = Param(Params._dummy(), "numModels", "seed ensemble size (probabilities averaged)",
                      typeConverter=TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        # Every default lives in wanderlens.config (one source for YAML, --set and these Params).
        self._setDefault(**ModelConfig().params(), **TrainingConfig().params())

    def _section(self, cls: type[SectionT]) -> SectionT:
        """The config section `cls` (ModelConfig / TrainingConfig) from these Params, validated by its model."""
        values = {key: self.getOrDefault(param_name(key)) for key in cls.model_fields}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError("; ".join(
                f"{type(self).__name__}: {param_name(str(e['loc'][0]))} {e.get('input')!r}: {e['msg']}"
                for e in exc.errors())) from None


class MultiTaskClassifier(Estimator, _MultiTaskParams, DefaultParamsReadable, DefaultParamsWritable):
    """Estimator training one torch network for several tasks; missing labels are masked out per task."""

    tasks = Param(Params._dummy(), "tasks", "tasks: list of {name, type, label_col, classes, weight}",
                  typeConverter=_to_tasks)

    def getTasks(self) -> list[TaskSpec]:
        """The declared tasks as TaskSpecs."""
        return parse_tasks(self.getOrDefault(self.tasks))

    def setTasks(self, value: list[TaskSpec | dict[str, Any]]) -> MultiTaskClassifier:
        """Set the tasks (TaskSpecs or dicts)."""
        return self._set(tasks=value)

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._progress: Callable[[dict[str, Any]], None] | None = None
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> MultiTaskClassifier:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def setProgress(self, callback: Callable[[dict[str, Any]], None] | None) -> MultiTaskClassifier:
        """Call `callback(epoch_record)` after each epoch (in-process training only; not persisted)."""
        self._progress = callback
        return self

    def _arch_config(self) -> dict[str, Any]:
        model = self._section(ModelConfig)
        cfg = ArchConfig(
            name=model.architecture, expert_hidden=model.expert_hidden, tower_hidden=model.tower_hidden,
            num_experts=model.num_experts, num_shared_experts=model.num_shared_experts, num_levels=model.num_levels,
            dropout=model.dropout, layer_norm=model.layer_norm, linear_head=model.linear_head,
            standardization=model.standardization, linear_gate=self._section(TrainingConfig).linear_warm_start,
        )
        return dict(cfg.__dict__)

    def _split(self, dataset: DataFrame, tasks: list[TaskSpec], training: TrainingConfig,
               ) -> tuple[DataFrame, DataFrame | None]:
        """Encoded training rows and validation rows (by indicator column, random fraction, or none)."""
        feature_cols = self._input_cols()
        vcol = training.validation_indicator_col
        if vcol:
            if vcol not in dataset.columns:
                raise InputError(f"validationIndicatorCol {vcol!r} is missing from the DataFrame")
            base = dataset.withColumn("__val", F.coalesce(F.col(vcol).cast("boolean"), F.lit(False)))
            return (encode(base.where(~F.col("__val")), feature_cols, tasks),
                    encode(base.where(F.col("__val")), feature_cols, tasks))
        table = encode(dataset, feature_cols, tasks)
        if training.validation_fraction > 0:
            frac = training.validation_fraction
            train_df, val_df = table.randomSplit([1.0 - frac, frac], seed=training.seed)
            return train_df, val_df
        return table, None

    def _train_members(self, dataset: DataFrame, run: TrainingRun) -> list[dict[str, Any]]:
        """Train the network, or the `numModels` seed-ensemble members: side by side as Spark tasks when each
        trains in one process (they read the shards from the work folder, which must be readable by the
        executors: a shared `checkpointDir` on a cluster), else one after the other."""
        n, n_proc = run.training.num_models, run.training.num_processes
        on_driver = dataset.sparkSession.sparkContext.master.startswith("local")
        if n == 1:
            return [run_training(run, self._progress) if n_proc == 1 else _train_one(run, on_driver)]
        runs = [member_run(run, k) for k in range(n)]
        if n_proc > 1:
            return [_train_one(r, on_driver) for r in runs]
        sc = dataset.sparkSession.sparkContext
        return sc.parallelize(runs, n).map(_train_one).collect()

    def _fit(self, dataset: DataFrame) -> MultiTaskModel:
        if not self.isDefined(self.tasks):
            raise ConfigError("MultiTaskClassifier needs tasks (setTasks / tasks=[...])")
        tasks = self.getTasks()
        training = self._section(TrainingConfig)
        if training.monitor not in ("loss", "metric") and training.monitor not in {t.name for t in tasks}:
            raise ConfigError(f"monitor {training.monitor!r} must be 'loss', 'metric' or a task name "
                              f"({[t.name for t in tasks]})")
        if training.linear_warm_start and not self._section(ModelConfig).linear_head:
            raise ConfigError("linearWarmStart needs linearHead: true (model.linear_head), the linear map it fits")
        if training.modality_dropout > 0 and not training.modality_blocks:
            raise ConfigError(f"modalityDropout is {training.modality_dropout} but modalityBlocks is empty: name the "
                              "modality blocks (model.modality_blocks), or train from a featurize output folder "
                              "(`wanderlens train`/`evaluate`), which reads them from the fitted feature pipeline")
        arch = self._arch_config()
        dataset = self._fit_tabular(dataset, arch)
        tasks = infer_classes(dataset, tasks)
        summary = validate_input(dataset, self._input_cols(), tasks)
        bad = [b for b in training.modality_blocks if not 0 <= b[0] < b[1] <= summary.input_dim
               or b[2] >= summary.input_dim]
        if bad:
            raise ConfigError(f"modalityBlocks {bad} lie outside the {summary.input_dim} input columns")
        train_df, val_df = self._split(dataset, tasks, training)
        ckpt = training.checkpoint_dir
        work = os.path.join(ckpt, "data") if ckpt else tempfile.mkdtemp(prefix="wanderlens-mtl-")
        run = TrainingRun(
            tasks=[t.to_dict() for t in tasks], arch=arch, training=training, input_dim=summary.input_dim,
            train_path=os.path.join(work, "train"), val_path=os.path.join(work, "val") if val_df is not None else None,
            class_weights=class_weights(tasks, summary, training.class_weights),
        )
        try:
            _write_training_data(train_df, val_df, work, run)
            results = self._train_members(dataset, run)
            weights = _serialize({"members": [load_state(r["state"]) for r in results]})
            calibration = _calibrate(run, meta_for(run, results[0]), weights, training) if run.val_path else {}
        finally:
            if not ckpt:
                shutil.rmtree(work, ignore_errors=True)
        info = {**results[0]["info"], "input_rows": summary.rows, "labelled": summary.labelled}
        if len(results) > 1:
            info["members"] = [{"seed": member_run(run, k).training.seed, "best_epoch": r["info"].get("best_epoch"),
                                "epochs": len(r["history"])} for k, r in enumerate(results)]
        meta = {**meta_for(run, results[0]), "info": info, "calibration": calibration}
        model = MultiTaskModel()._set_state(json.dumps(meta), weights)
        self._copyValues(model)
        return model


def member_run(run: TrainingRun, k: int) -> TrainingRun:
    """Member `k` of a seed ensemble: seed + k, and its own checkpoint folder (member 0 is the run itself)."""
    if k == 0:
        return run
    training = run.training
    update: dict[str, Any] = {"seed": training.seed + k}
    if training.checkpoint_dir:
        update["checkpoint_dir"] = os.path.join(training.checkpoint_dir, f"member{k}")
    return dataclasses.replace(run, training=training.model_copy(update=update))


def meta_for(run: TrainingRun, result: dict[str, Any]) -> dict[str, Any]:
    """The model metadata of a training result (tasks, architecture, input width, history, run facts)."""
    return {"tasks": run.tasks, "arch": run.arch, "input_dim": run.input_dim, "history": result["history"],
            "info": result["info"]}


def _calibrate(run: TrainingRun, meta: dict[str, Any], weights: bytes, training: TrainingConfig,
               ) -> dict[str, dict[str, Any]]:
    """Temperatures and thresholds fitted on the validation shards (all of them, read on the driver)."""
    if not training.calibration and training.thresholds == "none":
        return {}
    tasks = run.task_specs()
    val = read_shard(str(run.val_path), 0, 1, tasks, int(run.input_dim))
    if len(val) == 0:
        return {}
    local = LocalMultiTaskModel.from_bytes(json.dumps(meta), weights)
    with torch_threads(1):
        outputs = local.raw_outputs(val.x)
    return fit_calibration(tasks, outputs, val.targets, val.masks, training.calibration, training.thresholds)


def _train_one(run: TrainingRun, on_driver: bool = False) -> dict[str, Any]:
    """Train one ensemble member in this process, or with TorchDistributor when it asks for several processes.

    `on_driver` (a `local[...]` master, where the executors are the driver's own process): TorchDistributor's
    local mode, one torchrun with all processes under one elastic agent. Its cluster mode starts one agent per
    Spark barrier task, and back-to-back runs in one local JVM sometimes left an agent waiting out torch's
    300 s exit barrier; on a real cluster each process is a Spark task as intended.
    """
    if run.training.num_processes == 1:
        return run_training(run)
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=run.training.num_processes, local_mode=on_driver, use_gpu=False)
    if not on_driver:  # cluster mode returns the output of the task of rank 0
        return distributor.run(run_training, run)
    # Local mode has every process pickle its return value to one file, so the last process to finish wins;
    # rank 0 (the only one that returns the weights) writes its result to a file of its own instead.
    folder = tempfile.mkdtemp(prefix="wanderlens-result-")
    try:
        path = os.path.join(folder, "result.pkl")
        distributor.run(run_training, dataclasses.replace(run, result_path=path))
        with open(path, "rb") as fh:
            return pickle.load(fh)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _serialize(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _write_training_data(train_df: DataFrame, val_df: DataFrame | None, work: str, run: TrainingRun) -> None:
    """Write train/validation shards once; a checkpoint folder whose shards match the settings reuses them."""
    marker = os.path.join(work, "shards.json")
    n, seed = run.training.num_processes, run.training.seed
    key = {"tasks": run.tasks, "n": n, "seed": seed, "val": run.val_path is not None, "input_dim": run.input_dim}
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as fh:
            if json.load(fh) == key:
                return
    write_shards(train_df, run.train_path, n, seed)
    if val_df is not None:
        write_shards(val_df, run.val_path, n, seed + 1)
    write_json(key, marker)


class MultiTaskModel(Model, _MultiTaskParams, DataStage):
    """Fitted multi-task network: `transform` adds `<t>_prediction`, `<t>_probability`, `<t>_rawPrediction`, and
    `<t>_label` (the indexed label) when the input holds the task's label column."""

    def __init__(self) -> None:
        super().__init__()
        self._meta_json = "{}"
        self._weights = b""
        self._bcast: Any = None

    def _set_state(self, meta_json: str, weights: bytes) -> MultiTaskModel:
        self._meta_json, self._weights, self._bcast = meta_json, weights, None
        return self

    @property
    def _meta(self) -> dict[str, Any]:
        return json.loads(self._meta_json)

    @property
    def tasks(self) -> list[TaskSpec]:
        """Tasks with their classes as trained (class index i means classes[i])."""
        return parse_tasks(self._meta["tasks"])

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per epoch: each task's training loss, the task weights, validation losses and metrics."""
        return self._meta["history"]

    @property
    def trainingInfo(self) -> dict[str, Any]:
        """Facts of the fit: processes, rows, resumed epoch, largest parameter difference between ranks."""
        return self._meta["info"]

    def local_model(self) -> LocalMultiTaskModel:
        """The same network for use without Spark."""
        return LocalMultiTaskModel.from_bytes(self._meta_json, self._weights)

    def copy(self, extra: dict | None = None) -> MultiTaskModel:
        that = super().copy(extra)
        that._set_state(self._meta_json, self._weights)
        return that

    def _transform(self, dataset: DataFrame) -> DataFrame:
        tasks = self.tasks
        meta = self._meta
        dim = int(meta["input_dim"])
        spark = dataset.sparkSession
        # Spark 4.3 hands Arrow UDFs the scan's columnar batches whole, and fails on any vector (UDT) column in
        # them (e.g. a features table read from Parquet); the row path converts only the UDF's input.
        spark.conf.set("spark.sql.execution.arrow.pythonUDF.columnarInput.enabled", "false")
        if self._bcast is None:
            self._bcast = spark.sparkContext.broadcast((self._meta_json, self._weights))
        bcast = self._bcast
        key = f"{self.uid}-{hashlib.sha1(self._weights).hexdigest()[:12]}"
        fields = []
        for t in tasks:
            pred_type = T.ArrayType(T.DoubleType()) if t.type == "multilabel" else T.DoubleType()
            fields += [T.StructField(f"{t.name}_prediction", pred_type),
                       T.StructField(f"{t.name}_probability", T.ArrayType(T.DoubleType())),
                       T.StructField(f"{t.name}_rawPrediction", T.ArrayType(T.DoubleType()))]
        schema = T.StructType(fields)
        names = [t.name for t in tasks]

        @pandas_udf(schema)  # type: ignore[call-overload]
        def score(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            model = cached_model(key, *bcast.value)
            for s in batches:
                if len(s) == 0:
                    yield pd.DataFrame({f.name: pd.Series([], dtype=object) for f in schema.fields})
                    continue
                lengths = {len(v) for v in s}
                if lengths != {dim}:
                    raise InputError(f"feature vectors have length {sorted(lengths)}; this model needs {dim}")
                x = np.stack(s.to_numpy()).astype(np.float64)
                with torch_threads(1):
                    full = model.predict_full(x)
                cols: dict[str, Any] = {}
                for name in names:
                    r = full[name]
                    pred = r["prediction"]
                    cols[f"{name}_prediction"] = list(pred) if isinstance(pred, list) else pred
                    cols[f"{name}_probability"] = list(r["probability"])
                    cols[f"{name}_rawPrediction"] = list(r["rawPrediction"])
                yield pd.DataFrame(cols)

        dataset = self._with_tabular(dataset, meta["arch"])
        missing = [c for c in self._input_cols() if c not in dataset.columns]
        if missing:
            raise InputError(f"feature columns {missing} are missing from the DataFrame to transform")
        tmp = "__mtl_out"
        out = dataset.withColumn(tmp, score(feature_array(dataset, self._input_cols(), "double")))
        for t in tasks:
            out = out.withColumn(f"{t.name}_prediction", F.col(f"{tmp}.{t.name}_prediction"))
            if t.type != "regression":
                out = out.withColumn(f"{t.name}_probability", array_to_vector(F.col(f"{tmp}.{t.name}_probability")))
                out = out.withColumn(f"{t.name}_rawPrediction",
                                     array_to_vector(F.col(f"{tmp}.{t.name}_rawPrediction")))
        return _with_labels(out.drop(tmp, TABULAR), dataset, tasks)

    def _stage_data(self) -> dict[str, Any]:
        """Saved beside the Params: tasks, architecture, history and weights as the one-row record `data`."""
        return {"data": {"meta": self._meta_json, "weights": self._weights}}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        self._set_state(data["data"]["meta"], bytes(data["data"]["weights"]))


def _with_labels(out: DataFrame, dataset: DataFrame, tasks: list[TaskSpec]) -> DataFrame:
    """Add each task's indexed `<task>_label` (as `index_labels` makes it) where the input holds the task's label
    column and not yet the `_label` column, so MLlib evaluators and `MultiTaskEvaluator` read the output directly."""
    for t in tasks:
        label = f"{t.name}_label"
        if t.label_col in dataset.columns and label not in dataset.columns:
            out = out.withColumn(label, label_index_expr(dataset, t))
    return out


__all__ = ["MultiTaskClassifier", "MultiTaskModel", "FEATURES"]
