"""Task declarations (`TaskSpec`) and label indexing: the contract between label columns and the model.

A task names a label column, its type and its classes; `index_labels` turns the label column into the numeric
`<task>_label` column MLlib evaluators read (null stays null: a missing label is unknown, never negative).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.errors import ConfigError

TASK_TYPES = ("binary", "multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task: `name`, `type` (binary|multiclass|multilabel|regression), label column, classes, weight."""

    name: str
    type: str
    label_col: str | None = None
    classes: list[Any] | None = field(default=None)
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"task name {self.name!r} must be a plain identifier (letters, digits, _)")
        if self.type not in TASK_TYPES:
            raise ConfigError(
                f"task {self.name!r}: unknown task type {self.type!r}; use one of {', '.join(TASK_TYPES)}"
            )
        if self.label_col is None:
            object.__setattr__(self, "label_col", self.name)
        if self.type == "binary":
            if self.classes is not None and [float(c) for c in self.classes] != [0.0, 1.0]:
                raise ConfigError(f"task {self.name!r}: binary tasks have classes [0, 1], got {self.classes}")
            object.__setattr__(self, "classes", [0, 1])
        elif self.type == "regression":
            object.__setattr__(self, "classes", None)
        elif self.classes is not None:
            classes = list(self.classes)
            if len(classes) < 2 or len(set(map(str, classes))) != len(classes):
                raise ConfigError(f"task {self.name!r}: classes must be at least 2 distinct values, got {classes}")
            object.__setattr__(self, "classes", classes)
        try:
            w = float(self.weight)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"task {self.name!r}: weight must be a number, got {self.weight!r}") from exc
        if not math.isfinite(w) or w < 0:
            raise ConfigError(f"task {self.name!r}: weight must be a finite number >= 0, got {self.weight!r}")
        object.__setattr__(self, "weight", w)

    @property
    def num_outputs(self) -> int:
        """Width of the task's output layer (1 for binary and regression, one per class otherwise)."""
        if self.type in ("binary", "regression"):
            return 1
        if self.classes is None:
            raise ConfigError(f"task {self.name!r}: classes are not known yet (declare them or fit on data)")
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the inverse of `TaskSpec.from_dict`)."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any] | TaskSpec) -> TaskSpec:
        """Build from a dict with keys name, type, label_col|label, classes, weight."""
        if isinstance(d, TaskSpec):
            return d
        if not isinstance(d, dict):
            raise ConfigError(f"a task must be a mapping with name and type, got {d!r}")
        unknown = set(d) - {"name", "type", "label_col", "label", "classes", "weight"}
        if unknown:
            raise ConfigError(f"task {d.get('name')!r}: unknown keys {sorted(unknown)}")
        if "name" not in d or "type" not in d:
            raise ConfigError(f"task {d!r} needs at least 'name' and 'type'")
        return TaskSpec(
            name=d["name"],
            type=d["type"],
            label_col=d.get("label_col", d.get("label")),
            classes=d.get("classes"),
            weight=d.get("weight", 1.0),
        )

    @staticmethod
    def from_labels(labels: dict[str, Any]) -> list[TaskSpec]:
        """Tasks from a labels.json / labels.yaml declaration: `{column: {type: ..., classes: [...]}}`."""
        if not isinstance(labels, dict) or not labels:
            raise ConfigError("label declaration must be a non-empty mapping {column: {type: ..., classes: ...}}")
        out = []
        for col, spec in labels.items():
            spec = dict(spec or {})
            if "type" not in spec:
                raise ConfigError(f"label {col!r}: declaration needs a 'type' ({', '.join(TASK_TYPES)})")
            out.append(
                TaskSpec(
                    name=spec.get("name", col),
                    type=spec["type"],
                    label_col=spec.get("label_col", col),
                    classes=spec.get("classes"),
                    weight=spec.get("weight", 1.0),
                )
            )
        return out


def parse_tasks(tasks: list[Any]) -> list[TaskSpec]:
    """Normalise a list of TaskSpec/dicts, checking names are unique."""
    specs = [TaskSpec.from_dict(t) for t in tasks]
    if not specs:
        raise ConfigError("at least one task is needed")
    names = [t.name for t in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"task names must be unique; repeated: {sorted(dup)}")
    return specs


def _class_array(task: TaskSpec, dtype: T.DataType) -> Column:
    return F.array(*[F.lit(c).cast(dtype) for c in task.classes])


def label_index_expr(df: DataFrame, task: TaskSpec) -> Column:
    """Column expression for `<task>_label`: double (class index or value) or array<double> of class indices."""
    col = F.col(task.label_col)
    field_type = df.schema[task.label_col].dataType
    if task.type in ("binary", "regression"):
        return col.cast("double")
    if task.type == "multiclass":
        pos = F.array_position(_class_array(task, field_type), col)
        return F.when(col.isNull(), F.lit(None)).otherwise(
            F.when(pos > 0, (pos - 1).cast("double")).otherwise(F.lit(float("nan")))
        )
    elem = field_type.elementType if isinstance(field_type, T.ArrayType) else T.StringType()
    classes = _class_array(task, elem)
    return F.transform(
        F.filter(col, lambda x: x.isNotNull()),
        lambda x: F.when(F.array_position(classes, x) > 0, (F.array_position(classes, x) - 1).cast("double"))
        .otherwise(F.lit(float("nan"))),
    )


def index_labels(df: DataFrame, tasks: list[TaskSpec | dict]) -> DataFrame:
    """Add `<t>_label` for each task: double for binary/multiclass/regression, array<double> for multilabel.

    A null label stays null; a value outside the declared classes becomes NaN (fit rejects those up front).
    """
    out = df
    for task in parse_tasks(tasks):
        out = out.withColumn(f"{task.name}_label", label_index_expr(df, task))
    return out
