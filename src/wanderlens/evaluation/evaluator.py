"""`MultiTaskEvaluator`: every task through the MLlib evaluator that fits it, on the rows labelled for that task.

A task `t` is read from the MLlib-shaped columns of `MultiTaskModel.transform` (`t_prediction`, `t_probability`,
`t_rawPrediction`) and the `t_label` column of `wanderlens.mtl.tasks.index_labels`; a null label means "unknown for
this task", so that row is left out of t's metrics (never counted as a negative).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark import keyword_only
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    Evaluator,
    MulticlassClassificationEvaluator,
    MultilabelClassificationEvaluator,
    RegressionEvaluator,
)
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.errors import ConfigError, InputError

# Metrics per task type, in display order; the first one is the task's main metric (used by Δm).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("areaUnderROC", "areaUnderPR"),
    "multiclass": ("accuracy", "f1", "logLoss"),
    "multilabel": ("microF1Measure", "subsetAccuracy", "hammingLoss"),
    "regression": ("rmse", "r2"),
}
# Metrics where a smaller value is better (they flip sign in Δm).
LOWER_IS_BETTER = frozenset({"logLoss", "hammingLoss", "rmse", "mse", "mae"})


@dataclass(frozen=True)
class EvalTask:
    """What the evaluator needs to know of a task: its name, type and class names (index i = classes[i])."""

    name: str
    type: str
    classes: tuple[str, ...] = ()

    @staticmethod
    def of(task: Any) -> EvalTask:
        """Accept a `wanderlens.mtl.TaskSpec`, a dict with name/type/classes, or an `EvalTask`."""
        if isinstance(task, EvalTask):
            return task
        get = task.get if isinstance(task, Mapping) else lambda k, d=None: getattr(task, k, d)
        name, kind = get("name"), get("type")
        if not name or kind not in TASK_METRICS:
            raise ConfigError(f"task {name!r}: unknown task type {kind!r}; use one of {', '.join(TASK_METRICS)}")
        classes = get("classes") or ()
        if kind == "binary" and not classes:
            classes = ("0", "1")
        return EvalTask(str(name), str(kind), tuple(str(c) for c in classes))


def main_metric(task_type: str) -> str:
    """The metric that summarises a task of this type (AUC, accuracy, micro-F1, RMSE)."""
    return TASK_METRICS[task_type][0]


def is_larger_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better."""
    return metric not in LOWER_IS_BETTER


def mllib_evaluator(task: EvalTask, metric: str, label_col: str | None = None) -> Evaluator:
    """The MLlib evaluator computing `metric` for `task` from its MLlib-shaped columns."""
    t = task.name
    label = label_col or f"{t}_label"
    if task.type == "binary":
        return BinaryClassificationEvaluator(rawPredictionCol=f"{t}_rawPrediction", labelCol=label, metricName=metric)
    if task.type == "multiclass":
        return MulticlassClassificationEvaluator(predictionCol=f"{t}_prediction", labelCol=label,
                                                 probabilityCol=f"{t}_probability", metricName=metric)
    if task.type == "multilabel":
        return MultilabelClassificationEvaluator(predictionCol=f"{t}_prediction", labelCol=label, metricName=metric)
    return RegressionEvaluator(predictionCol=f"{t}_prediction", labelCol=label, metricName=metric)


def labelled_rows(df: DataFrame, task: EvalTask, label_col: str | None = None) -> DataFrame:
    """The rows of `df` that carry a label for `task` (null = unknown, left out)."""
    return df.where(F.col(label_col or f"{task.name}_label").isNotNull())


class MultiTaskEvaluator(Evaluator, DefaultParamsReadable, DefaultParamsWritable):
    """Evaluates every task of a multi-task prediction table with MLlib's own evaluators.

    `evaluate_all(df)` gives the tidy metrics table; `evaluate(df)` gives one number (`metricName`, written
    `task:metric`, default the first task's main metric) so the evaluator also works in `CrossValidator`.
    """

    tasksJson = Param(Params._dummy(), "tasksJson", "JSON list of tasks: {name, type, classes}",
                      typeConverter=TypeConverters.toString)
    metricName = Param(Params._dummy(), "metricName", "'task:metric' that evaluate() returns; empty = first task's "
                       "main metric", typeConverter=TypeConverters.toString)

    @keyword_only
    def __init__(self, *, tasks: Sequence[Any] | None = None, metricName: str = "") -> None:
        super().__init__()
        self._setDefault(tasksJson="[]", metricName="")
        kwargs = dict(self._input_kwargs)
        tasks = kwargs.pop("tasks", None)
        self._set(**kwargs)
        if tasks is not None:
            self.setTasks(tasks)

    def setTasks(self, tasks: Sequence[Any]) -> MultiTaskEvaluator:
        """Set the tasks (TaskSpec objects or dicts with name, type, classes)."""
        specs = [EvalTask.of(t) for t in tasks]
        return self._set(tasksJson=json.dumps([{"name": s.name, "type": s.type, "classes": list(s.classes)}
                                               for s in specs]))

    def getTasks(self) -> list[EvalTask]:
        """The tasks this evaluator scores."""
        return [EvalTask.of(t) for t in json.loads(self.getOrDefault(self.tasksJson))]

    def setMetricName(self, value: str) -> MultiTaskEvaluator:
        """Set the 'task:metric' that `evaluate` returns."""
        return self._set(metricName=value)

    def getMetricName(self) -> str:
        """The 'task:metric' that `evaluate` returns (resolved to the first task's main metric when empty)."""
        name = self.getOrDefault(self.metricName)
        if name:
            return name
        tasks = self.getTasks()
        if not tasks:
            raise ConfigError("MultiTaskEvaluator has no tasks: call setTasks([...]) first")
        return f"{tasks[0].name}:{main_metric(tasks[0].type)}"

    def _resolve(self) -> tuple[EvalTask, str]:
        task_name, _, metric = self.getMetricName().partition(":")
        by_name = {t.name: t for t in self.getTasks()}
        if task_name not in by_name:
            raise ConfigError(f"metricName {self.getMetricName()!r}: unknown task {task_name!r}; "
                              f"tasks are {sorted(by_name)}")
        task = by_name[task_name]
        metric = metric or main_metric(task.type)
        return task, metric

    def _evaluate(self, dataset: DataFrame) -> float:
        task, metric = self._resolve()
        self._check_columns(dataset, [task])
        return float(mllib_evaluator(task, metric).evaluate(labelled_rows(dataset, task)))

    def isLargerBetter(self) -> bool:
        """Whether a larger `evaluate` value is better (for model selection)."""
        return is_larger_better(self._resolve()[1])

    def _check_columns(self, df: DataFrame, tasks: Iterable[EvalTask]) -> None:
        have = set(df.columns)
        for task in tasks:
            needed = [f"{task.name}_label", f"{task.name}_prediction"]
            if task.type in ("binary", "multiclass"):
                needed.append(f"{task.name}_rawPrediction" if task.type == "binary" else f"{task.name}_probability")
            missing = [c for c in needed if c not in have]
            if missing:
                raise InputError(f"task {task.name!r}: column(s) {missing} missing from the table to evaluate; "
                                 "run MultiTaskModel.transform and wanderlens.mtl.tasks.index_labels on it first")

    def evaluate_all(self, dataset: DataFrame) -> pd.DataFrame:
        """Tidy metrics table: one row per (task, metric) with value, rows labelled `n` and whether it is main."""
        tasks = self.getTasks()
        if not tasks:
            raise ConfigError("MultiTaskEvaluator has no tasks: call setTasks([...]) first")
        self._check_columns(dataset, tasks)
        rows: list[dict[str, Any]] = []
        for task in tasks:
            part = labelled_rows(dataset, task).cache()
            try:
                n = part.count()
                for metric in TASK_METRICS[task.type]:
                    value = float(mllib_evaluator(task, metric).evaluate(part)) if n else math.nan
                    rows.append({"task": task.name, "type": task.type, "metric": metric, "value": value, "n": n,
                                 "main": metric == main_metric(task.type),
                                 "larger_is_better": is_larger_better(metric)})
            finally:
                part.unpersist()
        return pd.DataFrame(rows, columns=["task", "type", "metric", "value", "n", "main", "larger_is_better"])


def main_metrics(table: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """{task: (main metric, value)} from a tidy metrics table."""
    main = table[table["main"]]
    return {r.task: (r.metric, float(r.value)) for r in main.itertuples()}


def relative_changes(candidate: pd.DataFrame, baseline: pd.DataFrame) -> dict[str, float]:
    """Per task, the signed relative change of its main metric against the baseline (positive = better)."""
    cand, base = main_metrics(candidate), main_metrics(baseline)
    out: dict[str, float] = {}
    for task, (metric, value) in cand.items():
        if task not in base:
            continue
        b_metric, b = base[task]
        if b_metric != metric:
            raise InputError(f"task {task!r}: candidate main metric {metric} differs from baseline's {b_metric}")
        if math.isnan(value) or math.isnan(b) or b == 0:
            continue
        sign = 1.0 if is_larger_better(metric) else -1.0
        out[task] = sign * (value - b) / abs(b)
    return out


def delta_m(candidate: pd.DataFrame, baseline: pd.DataFrame) -> float:
    """Δm: the mean over tasks of the signed relative change of each task's main metric against the baseline.

    As in Maninis et al. 2019 / Vandenhende et al. 2021: Δm = (1/T) Σ_t (-1)^{l_t} (M_t - B_t) / B_t, with l_t = 1
    when lower is better for task t's metric; positive means the candidate is better on average. Returned as a
    fraction (0.05 = +5 %); tasks without a value on both sides are left out; NaN when no task is comparable.
    """
    changes = relative_changes(candidate, baseline)
    return float(sum(changes.values()) / len(changes)) if changes else math.nan
